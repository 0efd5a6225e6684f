//! Departmental registers: spreadsheets with planted defects linked to the sample roster;
//! every defect is found with its kind and nothing else is flagged.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use rust_xlsxwriter::{Format, Workbook};
use shequ::privacy::{IdNumberProblem, check_id_number, id_check_char, link_id_number};
use shequ::registry::{FindingKind, Linker, Links, RegisterOptions, RosterKeys, read_register};
use shequ::{Job, Model};

/// A roster row: (data row, name, ID number, sex, birth).
struct Person {
    row: usize,
    name: String,
    id: String,
    sex: String,
}

/// Residents of the sample roster with a valid 18-character ID number, decoded independently.
fn people(dir: &Path) -> Vec<Person> {
    let bytes = std::fs::read(dir.join("residents.csv")).unwrap();
    let (text, _, _) = encoding_rs::GB18030.decode(&bytes);
    text.lines()
        .skip(1)
        .enumerate()
        .filter_map(|(row, l)| {
            let f: Vec<&str> = l.split(',').collect();
            check_id_number(f[3]).ok()?;
            Some(Person {
                row,
                name: f[2].to_owned(),
                id: f[3].to_owned(),
                sex: f[4].to_owned(),
            })
        })
        .collect()
}

/// A valid ID number no roster resident has.
fn stranger(people: &[Person]) -> String {
    (0..1000)
        .map(|i| {
            let first17 = format!("5001031950010{:04}", 1000 + i);
            format!("{first17}{}", id_check_char(&first17).unwrap())
        })
        .find(|id| people.iter().all(|p| &p.id != id))
        .unwrap()
}

fn community_of(model: &Model, p: &Person) -> u32 {
    let r = model
        .residents
        .iter()
        .find(|r| r.source_index == p.row)
        .unwrap();
    model.households[r.household as usize]
        .lineage
        .community
        .unwrap()
}

/// A planted row: (person, name, ID number, sex, status, planted kind).
type Planted<'a> = (Option<usize>, String, String, String, &'a str, FindingKind);

/// The disabled persons' federation's list, as an office keeps it: a merged title row, a date
/// line, the header on row 3, one ID stored as a number, a 15-digit ID, a deceased person, one
/// listed in the wrong community, a duplicate, a name that differs, a name with stray spaces,
/// a sex contradicting the ID number, someone not in the roster, and a note below.
fn write_disabled(path: &Path, p: &[Person], model: &Model, wrong: &str) -> Vec<FindingKind> {
    let mut book = Workbook::new();
    let s = book.add_worksheet();
    let f = Format::new();
    s.merge_range(0, 0, 0, 6, "渝中区持证残疾人名册", &f)
        .unwrap();
    s.write(1, 0, "填报日期：2026年1月").unwrap();
    s.write_row(
        2,
        0,
        [
            "序号",
            "姓名",
            "身份证号",
            "性别",
            "残疾类别",
            "残疾等级",
            "所属社区",
            "状态",
        ],
    )
    .unwrap();
    let name_of = |i: usize| {
        model.communities[community_of(model, &p[i]) as usize]
            .name
            .clone()
            .unwrap()
    };
    let old = &p[2].id; // a first-generation form of a 19xx-born resident
    assert_eq!(&old[6..8], "19");
    let fifteen = format!("{}{}", &old[..6], &old[8..17]);
    let flipped = if p[7].sex == "男" { "女" } else { "男" };
    let stranger = stranger(p);
    let stranger_sex = if link_id_number(&stranger).unwrap().id.male() {
        "男"
    } else {
        "女"
    };
    // (person, name, ID number, sex, status, community, planted kind)
    let same = |i: usize| {
        (
            Some(i),
            p[i].name.clone(),
            p[i].id.clone(),
            p[i].sex.clone(),
        )
    };
    let spaced: String = p[6].name.chars().flat_map(|c| [c, ' ']).collect();
    let rows: Vec<Planted> = vec![
        (
            same(0).0,
            same(0).1,
            same(0).2,
            same(0).3,
            "",
            FindingKind::Matched,
        ),
        (
            Some(1),
            p[1].name.clone(),
            String::new(),
            p[1].sex.clone(),
            "",
            FindingKind::UnrecoverableId,
        ),
        (
            Some(2),
            p[2].name.clone(),
            fifteen,
            p[2].sex.clone(),
            "",
            FindingKind::Matched,
        ),
        (
            same(3).0,
            same(3).1,
            same(3).2,
            same(3).3,
            "死亡",
            FindingKind::InactiveInRegister,
        ),
        (
            same(4).0,
            same(4).1,
            same(4).2,
            same(4).3,
            "",
            FindingKind::CommunityMismatch,
        ),
        (
            same(0).0,
            same(0).1,
            same(0).2,
            same(0).3,
            "",
            FindingKind::Duplicate,
        ),
        (
            Some(5),
            format!("{}某", p[5].name),
            p[5].id.clone(),
            p[5].sex.clone(),
            "",
            FindingKind::NameMismatch,
        ),
        (
            Some(6),
            format!(" {spaced}"),
            p[6].id.to_lowercase(),
            p[6].sex.clone(),
            "",
            FindingKind::Matched,
        ),
        (
            Some(7),
            p[7].name.clone(),
            p[7].id.clone(),
            flipped.into(),
            "",
            FindingKind::SexConflict,
        ),
        (
            None,
            "外来人".into(),
            stranger.clone(),
            stranger_sex.into(),
            "",
            FindingKind::IdNotFound,
        ),
    ];
    for (i, (who, name, id, sex, status, kind)) in rows.iter().enumerate() {
        let r = 3 + i as u32;
        s.write(r, 0, i as u32 + 1).unwrap();
        s.write(r, 1, name.as_str()).unwrap();
        if *kind == FindingKind::UnrecoverableId {
            s.write_number(r, 2, p[1].id[..17].parse::<f64>().unwrap() * 10.0)
                .unwrap();
        } else {
            s.write(r, 2, id.as_str()).unwrap();
        }
        s.write(r, 3, sex.as_str()).unwrap();
        s.write(r, 4, "肢体").unwrap();
        s.write(r, 5, "二级").unwrap();
        match (*kind, who) {
            (FindingKind::CommunityMismatch, _) => s.write(r, 6, wrong).map(|_| ()).unwrap(),
            (_, Some(w)) => s.write(r, 6, name_of(*w).as_str()).map(|_| ()).unwrap(),
            _ => {}
        }
        s.write(r, 7, *status).unwrap();
    }
    s.write(
        3 + rows.len() as u32 + 1,
        0,
        "注：本表由区残联提供，仅供核对。",
    )
    .unwrap();
    book.save(path).unwrap();
    let mut kinds: Vec<FindingKind> = rows.iter().map(|r| r.5).collect();
    kinds.push(FindingKind::NotAPerson);
    kinds
}

fn disabled_options() -> RegisterOptions {
    toml::from_str(
        r#"
        id = "disabled_federation"
        department = "区残联"
        path = "disabled.xlsx"
        category = "disabled"
        fields = { disability_type = "残疾类别", disability_grade = "残疾等级" }
        [columns]
        id_number = "身份证号"
        name = "姓名"
        sex = "性别"
        community = "所属社区"
        status = "状态"
        "#,
    )
    .unwrap()
}

fn link(dir: &Path, registers: Vec<shequ::registry::Register>) -> (Links, shequ::Build) {
    let job = Job::from_toml(dir.join("job.toml")).unwrap();
    let mut linker = Linker::new(registers, RosterKeys::of(&job));
    let built = shequ::build_with_people(&job, &shequ::NoProgress, &mut [&mut linker]).unwrap();
    (linker.finish(&built.model), built)
}

#[test]
fn every_planted_defect_is_found_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = shequ::sample::SampleConfig {
        communities: 2,
        households: 400,
        ..shequ::sample::SampleConfig::small(3)
    };
    shequ::sample::write_sample(dir.path(), &cfg).unwrap();
    let job = Job::from_toml(dir.path().join("job.toml")).unwrap();
    let model = shequ::build(&job).unwrap().model;
    let p = people(dir.path());
    // Residents in placed households, distinct names, the third born in the 1900s.
    let mut chosen: Vec<Person> = Vec::new();
    for q in p {
        let placed = model.residents.iter().any(|r| r.source_index == q.row);
        let ok = placed
            && chosen.iter().all(|c| c.name != q.name)
            && (chosen.len() != 2 || &q.id[6..8] == "19");
        if ok {
            chosen.push(q);
        }
        if chosen.len() == 8 {
            break;
        }
    }
    let home = community_of(&model, &chosen[4]);
    let wrong = model
        .communities
        .iter()
        .enumerate()
        .find(|(i, _)| *i as u32 != home)
        .and_then(|(_, c)| c.name.clone())
        .unwrap();
    let planted = write_disabled(&dir.path().join("disabled.xlsx"), &chosen, &model, &wrong);
    let reg = read_register(&disabled_options(), dir.path()).unwrap();
    assert_eq!(
        reg.sheet.as_ref().unwrap().1,
        (3, 3),
        "the header is found below the title rows"
    );
    let (links, built) = link(dir.path(), vec![reg]);
    let s = &links.summaries[0];
    assert!(s.accounted(), "{s:?}");
    assert_eq!(s.rows, planted.len());
    assert_eq!(s.upgraded_ids, 1);
    // Each planted row's kind, by sheet row; matched rows are not listed.
    let mut found: BTreeMap<usize, Vec<FindingKind>> = BTreeMap::new();
    for f in &links.findings {
        found.entry(f.row).or_default().push(f.kind);
    }
    for (i, kind) in planted.iter().enumerate() {
        let row = if *kind == FindingKind::NotAPerson {
            4 + planted.len()
        } else {
            4 + i
        };
        let got = found.remove(&row).unwrap_or_default();
        // Plain matches are counted, not listed; a conflict is listed beside its match.
        let want: Vec<FindingKind> = match kind {
            FindingKind::Matched => vec![],
            k => vec![*k],
        };
        assert_eq!(got, want, "row {row}");
    }
    assert!(found.is_empty(), "nothing else is flagged: {found:?}");
    // Memberships: the linked rows, minus the deceased.
    let linked = planted
        .iter()
        .filter(|k| !k.is_outcome() || **k == FindingKind::Matched)
        .count();
    assert_eq!(links.memberships.len(), linked - 1);
    for &(_, _, resident) in &links.memberships {
        assert!((resident as usize) < built.model.residents.len());
    }
    // No identifier appears in any finding.
    for f in &links.findings {
        for q in &chosen {
            assert!(
                !f.id.contains(&q.id) && !f.detail.contains(&q.id) && !f.detail.contains(&q.name)
            );
        }
    }
}

#[test]
fn a_missing_id_number_falls_back_to_name_and_birth_date() {
    let dir = tempfile::tempdir().unwrap();
    shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(5)).unwrap();
    let job = Job::from_toml(dir.path().join("job.toml")).unwrap();
    let model = shequ::build(&job).unwrap().model;
    let p: Vec<Person> = people(dir.path())
        .into_iter()
        .filter(|q| model.residents.iter().any(|r| r.source_index == q.row))
        .collect();
    let birth = |id: &str| format!("{}-{}-{}", &id[6..10], &id[10..12], &id[12..14]);
    let csv = format!(
        "身份证号,姓名,出生日期\n,{},{}\n,无此人,{}\n{}X,{},{}\n",
        p[0].name,
        birth(&p[0].id),
        birth(&p[1].id),
        &p[1].id[..17],
        p[1].name,
        birth(&p[1].id),
    );
    std::fs::write(dir.path().join("dibao.csv"), csv).unwrap();
    let options: RegisterOptions = toml::from_str(
        "id = 'dibao'\npath = 'dibao.csv'\n[columns]\nid_number = '身份证号'\nname = '姓名'\nbirth_date = '出生日期'",
    )
    .unwrap();
    let reg = read_register(&options, dir.path()).unwrap();
    let (links, _) = link(dir.path(), vec![reg]);
    let s = &links.summaries[0];
    // p[1]'s check character is replaced by X: invalid unless it was X (then a plain match).
    let third = if p[1].id.ends_with('X') {
        FindingKind::Matched
    } else {
        FindingKind::WeakMatch
    };
    let mut want = BTreeMap::from([(FindingKind::WeakMatch, 1), (FindingKind::InvalidId, 1)]);
    *want.entry(third).or_insert(0) += 1;
    assert_eq!(s.counts, want);
}

#[test]
fn a_damaged_or_protected_workbook_gives_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("list.xlsx");
    let mut book = Workbook::new();
    book.add_worksheet()
        .write_row(0, 0, ["姓名", "身份证号"])
        .unwrap();
    book.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = shequ::io::sheet::read_sheet("registers.x", &path, None, &["姓名"], &[]).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("list.xlsx") && msg.contains("registers.x"),
        "{msg}"
    );
    // An encrypted workbook is a compound file holding an EncryptedPackage stream.
    let protected = dir.path().join("protected.xlsx");
    encrypted_package(&protected);
    let msg = shequ::io::sheet::read_sheet("registers.x", &protected, None, &["姓名"], &[])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("protected.xlsx") && msg.contains("password"),
        "{msg}"
    );
}

/// A compound file (CFB) holding an `EncryptedPackage` stream: how Excel stores a
/// password-protected workbook.
fn encrypted_package(path: &Path) {
    use std::io::Write;
    let mut c = cfb::create(path).unwrap();
    c.create_stream("EncryptionInfo")
        .unwrap()
        .write_all(&[4, 0, 4, 0, 0x40, 0, 0, 0])
        .unwrap();
    c.create_stream("EncryptedPackage")
        .unwrap()
        .write_all(&[0u8; 4096])
        .unwrap();
    c.flush().unwrap();
}

#[test]
fn the_standards_examples_upgrade_and_check() {
    // GB 11643-1999's example: 11010519491231002X; its 15-digit form 110105491231002.
    let l = link_id_number("110105491231002").unwrap();
    assert!(l.upgraded);
    assert_eq!(l.id.to_string(), "11010519491231002X");
    assert_eq!(
        link_id_number("440524188001010014").unwrap().id.to_string(),
        "440524188001010014"
    );
    assert_eq!(
        link_id_number("1.10105E+17"),
        Err(IdNumberProblem::StoredAsNumber)
    );
}

proptest! {
    /// Distinct valid numbers never normalise to one key, in whatever form they are written;
    /// a 15-digit number and its 18-digit form are the same key.
    #[test]
    fn normalisation_never_merges_two_numbers(a in 0u64..100_000_000_000_000_000, b in 0u64..100_000_000_000_000_000, fw in any::<bool>()) {
        let make = |n: u64| {
            let first17 = format!("{:017}", n);
            // Any region, a valid date: keep digits 7-14 a real date.
            let first17 = format!("{}19{:02}0{}{:02}{}", &first17[..6], n % 100, 1 + n % 9, 1 + n % 28, &first17[14..]);
            format!("{first17}{}", id_check_char(&first17).unwrap())
        };
        let (x, y) = (make(a), make(b));
        let written = |s: &str| if fw { s.chars().map(|c| match c { '0'..='9' => char::from_u32(c as u32 + 0xFEE0).unwrap(), 'X' => 'x', c => c }).collect::<String>() } else { format!(" {s} ") };
        let kx = link_id_number(&written(&x)).unwrap().id;
        let ky = link_id_number(&written(&y)).unwrap().id;
        prop_assert_eq!(kx == ky, x == y);
        prop_assert_eq!(kx.to_string(), x.clone());
        let fifteen = format!("{}{}", &x[..6], &x[8..17]);
        prop_assert_eq!(link_id_number(&fifteen).unwrap().id, kx);
    }
}

/// The sample city's registers linked as `shequ run` links them.
fn sample_links(dir: &Path, job: &Job) -> (Links, shequ::SpecialNeeds, shequ::Build) {
    let opts = job.special_needs.clone().unwrap();
    let mut pass =
        shequ::analytics::special_needs::SpecialNeedsPass::new(job, &opts, false).unwrap();
    let mut linker = Linker::new(
        shequ::registry::read_registers(job).unwrap(),
        RosterKeys::of(job),
    );
    let built =
        shequ::build_with_people(job, &shequ::NoProgress, &mut [&mut pass, &mut linker]).unwrap();
    let mut links = linker.finish(&built.model);
    pass.apply_registers(&mut links);
    let sn = pass.finish(&built.model).unwrap();
    let _ = dir;
    (links, sn, built)
}

#[test]
fn the_sample_registers_planted_defects_are_found_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::default()).unwrap();
    let job = Job::from_toml(dir.path().join("job.toml")).unwrap();
    assert_eq!(job.registers.len(), 4);
    let (links, _, built) = sample_links(dir.path(), &job);
    let shared = shared_id_flags(dir.path(), &built.model);
    let kinds = |id: &str| -> BTreeMap<FindingKind, usize> {
        let s = links.summaries.iter().find(|s| s.id == id).unwrap();
        assert!(s.accounted(), "{s:?}");
        s.counts
            .iter()
            .filter(|(k, _)| **k != FindingKind::Matched)
            .map(|(k, v)| (*k, *v))
            .collect()
    };
    use FindingKind::*;
    assert_eq!(
        kinds("disabled_federation"),
        BTreeMap::from([
            (UnrecoverableId, 1),
            (InactiveInRegister, 1),
            (CommunityMismatch, 1),
            (Duplicate, 1),
            (NameMismatch, 1),
            (NotAPerson, 1),
            // The residents behind the unusable row and the deceased one: flagged by the
            // roster, confirmed by no register; and the roster's residents who share an ID
            // number (no department lists them).
            (UnconfirmedRosterFlag, 2 + shared["disabled"]),
        ])
    );
    let with_shared = |mut m: BTreeMap<FindingKind, usize>, c: &str| {
        if shared[c] > 0 {
            m.insert(UnconfirmedRosterFlag, shared[c]);
        }
        m
    };
    let fed = links
        .summaries
        .iter()
        .find(|s| s.id == "disabled_federation")
        .unwrap();
    assert_eq!(fed.upgraded_ids, 1);
    assert_eq!(fed.header_rows, Some((3, 3)));
    assert_eq!(
        kinds("civil_affairs_dibao"),
        with_shared(BTreeMap::from([(WeakMatch, 1)]), "dibao")
    );
    assert_eq!(
        links.summaries[1].header_rows,
        Some((3, 3)),
        "below a merged two-row header"
    );
    assert_eq!(
        kinds("ageing_allowance"),
        with_shared(BTreeMap::from([(IdNotFound, 1)]), "old")
    );
    assert_eq!(
        kinds("unemployment"),
        with_shared(BTreeMap::from([(SexConflict, 1)]), "unemployed")
    );
}

/// Per category, the placed residents flagged by the roster whose ID number another resident
/// has too, counted from the roster here.
fn shared_id_flags(dir: &Path, model: &Model) -> std::collections::HashMap<&'static str, usize> {
    let bytes = std::fs::read(dir.join("residents.csv")).unwrap();
    let (text, _, _) = encoding_rs::GB18030.decode(&bytes);
    let mut seen = std::collections::HashSet::new();
    let rows: Vec<(usize, Vec<String>)> = text
        .lines()
        .skip(1)
        .enumerate()
        .map(|(i, l)| (i, l.split(',').map(str::to_owned).collect::<Vec<_>>()))
        .filter(|(_, f)| seen.insert(f[0].clone()))
        .collect();
    let mut uses: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (_, f) in &rows {
        *uses.entry(f[3].as_str()).or_insert(0) += 1;
    }
    let placed: std::collections::HashSet<usize> =
        model.residents.iter().map(|r| r.source_index).collect();
    let reference = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let mut out = std::collections::HashMap::from([
        ("disabled", 0),
        ("dibao", 0),
        ("old", 0),
        ("unemployed", 0),
    ]);
    for (i, f) in &rows {
        let Ok(id) = check_id_number(&f[3]) else {
            continue;
        };
        if uses[f[3].as_str()] < 2 || !placed.contains(i) {
            continue;
        }
        let age = shequ::analytics::special_needs::age_at(id.birth, reference).unwrap_or(0);
        for (c, yes) in [
            ("disabled", !f[8].is_empty()),
            ("dibao", f[10] == "是"),
            ("old", age >= 80),
            ("unemployed", f[11] == "是"),
        ] {
            *out.get_mut(c).unwrap() += usize::from(yes);
        }
    }
    out
}

/// A register's ID numbers as the test reads them: calamine's cells, normalised here.
fn sheet_ids(path: &Path, id_col: &str, status_col: Option<&str>) -> Vec<Option<String>> {
    use calamine::{Data, Reader};
    let mut book = calamine::open_workbook_auto(path).unwrap();
    let name = book.sheet_names()[0].clone();
    let range = book.worksheet_range(&name).unwrap();
    let rows: Vec<Vec<Data>> = range.rows().map(<[Data]>::to_vec).collect();
    let text = |d: &Data| match d {
        Data::String(s) => s.clone(),
        _ => String::new(),
    };
    let header = rows
        .iter()
        .position(|r| r.iter().any(|c| text(c) == id_col))
        .unwrap();
    let col = |n: &str| rows[header].iter().position(|c| text(c) == n);
    let (ic, sc) = (col(id_col).unwrap(), status_col.and_then(col));
    rows[header + 1..]
        .iter()
        .filter(|r| sc.is_none_or(|s| text(&r[s]) != "死亡"))
        .map(|r| match &r[ic] {
            Data::String(s) => {
                let s: String = s
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .map(|c| match c {
                        '０'..='９' => char::from_u32(c as u32 - 0xFEE0).unwrap(),
                        c => c.to_ascii_uppercase(),
                    })
                    .collect();
                match s.len() {
                    15 => {
                        let first17 = format!("{}19{}", &s[..6], &s[6..]);
                        Some(format!("{first17}{}", id_check_char(&first17).unwrap()))
                    }
                    _ => Some(s),
                }
            }
            _ => None, // a number: digits lost
        })
        .collect()
}

#[test]
fn counts_from_the_sample_registers_equal_counts_from_the_spreadsheets() {
    let dir = tempfile::tempdir().unwrap();
    shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::default()).unwrap();
    let mut job = Job::from_toml(dir.path().join("job.toml")).unwrap();
    // The categories from the registers alone: the roster's own columns unmapped.
    let sn_opts = job.special_needs.as_mut().unwrap();
    for f in [
        "disability_type",
        "disability_grade",
        "minimum_living_allowance",
        "unemployed",
    ] {
        sn_opts.fields.remove(f);
    }
    let (_, sn, built) = sample_links(dir.path(), &job);
    let model = &built.model;
    // Independent: roster ID → the grid of its placed resident.
    let p = people(dir.path());
    let grid_of: std::collections::HashMap<&str, &str> = p
        .iter()
        .filter_map(|q| {
            let r = model.residents.iter().find(|r| r.source_index == q.row)?;
            let g = model.households[r.household as usize].lineage.grid?;
            Some((q.id.as_str(), model.grids[g as usize].id.as_str()))
        })
        .collect();
    let regs = dir.path().join("registers");
    for (file, id_col, status, category) in [
        (
            "残联持证残疾人名册.xlsx",
            "公民身份号码",
            Some("人员状态"),
            "disabled",
        ),
        ("失业登记名册.xlsx", "身份证号", None, "unemployed"),
    ] {
        let mut ids: Vec<String> = sheet_ids(&regs.join(file), id_col, status)
            .into_iter()
            .flatten()
            .collect();
        ids.sort();
        ids.dedup();
        let mut want: BTreeMap<String, u64> = BTreeMap::new();
        for id in &ids {
            if let Some(g) = grid_of.get(id.as_str()) {
                *want.entry((*g).to_owned()).or_default() += 1;
            }
        }
        let got = sn.per_unit(shequ::Layer::Grid).collect().unwrap();
        let codes = got.column("grid_id").unwrap().str().unwrap().clone();
        let counts = got.column(category).unwrap().u64().unwrap().clone();
        let got: BTreeMap<String, u64> = codes
            .iter()
            .zip(counts.iter())
            .filter_map(|(c, n)| Some((c?.to_owned(), n?)))
            .filter(|(_, n)| *n > 0)
            .collect();
        assert_eq!(got, want, "{category}");
    }
}

#[test]
fn the_registry_keeps_every_label_with_its_sources_and_reports_the_month_s_changes() {
    use arrow_array::{Array, BooleanArray, StringArray};
    let dir = tempfile::tempdir().unwrap();
    shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::default()).unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "the street office's registry key 2026").unwrap();
    let mut job = Job::from_toml(dir.path().join("job.toml")).unwrap();
    job.privacy = Some(shequ::PrivacyOptions {
        output: shequ::privacy::OutputKind::Operational,
        street: Some("500103001".into()),
        secret_file: Some(key),
        ..shequ::PrivacyOptions::research()
    });
    // A research job writes no registry.
    let research = Job::from_toml(dir.path().join("job.toml")).unwrap();
    assert!(
        shequ::run::write_registry(&research, &dir.path().join("x"), None, &shequ::NoProgress)
            .is_err()
    );
    let first = dir.path().join("m1");
    let s = shequ::run::write_registry(&job, &first, None, &shequ::NoProgress).unwrap();
    let (links, sn, built) = sample_links(dir.path(), &job);
    assert!(!links.summaries.is_empty());
    let placed = built.model.residents.len();
    assert_eq!(
        s.residents, placed,
        "the street's every placed resident, once"
    );
    let batches = crate::fixtures::read_batches(&first.join("registry.parquet"));
    let b = &arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap();
    let col = |n: &str| b.column_by_name(n).unwrap().clone();
    let disabled = col("disabled");
    let disabled = disabled.as_any().downcast_ref::<BooleanArray>().unwrap();
    let sources = col("disabled_sources");
    let sources = sources.as_any().downcast_ref::<StringArray>().unwrap();
    let members = sn.members("disabled").unwrap();
    assert_eq!(
        disabled.iter().filter(|v| *v == Some(true)).count(),
        members.iter().filter(|m| **m).count()
    );
    let both = (0..b.num_rows())
        .filter(|&i| sources.is_valid(i) && sources.value(i) == "roster;disabled_federation")
        .count();
    let roster_only = (0..b.num_rows())
        .filter(|&i| sources.is_valid(i) && sources.value(i) == "roster")
        .count();
    // Two disabled residents lack a usable federation row (unrecoverable, deceased), and the
    // federation lists no one whose ID number another resident shares.
    assert_eq!(
        roster_only,
        2 + shared_id_flags(dir.path(), &built.model)["disabled"]
    );
    assert_eq!(both + roster_only, s.labelled["disabled"]);
    // No plain identifier without plain_identifiers.
    assert!(b.column_by_name("resident_id").is_none());
    // Next month: one resident fewer in the roster, one more disabled.
    let roster = std::fs::read(dir.path().join("residents.csv")).unwrap();
    let (text, _, _) = encoding_rs::GB18030.decode(&roster);
    let lines: Vec<&str> = text.lines().collect();
    let victim = lines
        .iter()
        .position(|l| l.starts_with("R00000010,"))
        .unwrap();
    let newly = lines
        .iter()
        .position(|l| {
            let f: Vec<&str> = l.split(',').collect();
            f.len() > 9
                && f[0].starts_with('R')
                && f[8].is_empty()
                && f[0] != "R00000010"
                && f[0] > "R00000100"
        })
        .unwrap();
    let mut next: Vec<String> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if i == victim {
            continue;
        }
        let mut f: Vec<String> = l.split(',').map(str::to_owned).collect();
        if i == newly {
            f[8] = "肢体".into();
            f[9] = "三级".into();
        }
        next.push(f.join(","));
    }
    let text = next.join("\n") + "\n";
    let (bytes, _, _) = encoding_rs::GB18030.encode(&text);
    std::fs::write(dir.path().join("residents.csv"), bytes).unwrap();
    let second = dir.path().join("m2");
    let s2 = shequ::run::write_registry(
        &job,
        &second,
        Some(&first.join("registry.parquet")),
        &shequ::NoProgress,
    )
    .unwrap();
    let changes = s2.changes.unwrap();
    assert_eq!(changes.get("moved_out"), Some(&1), "{changes:?}");
    assert_eq!(changes.get("moved_in"), None);
    assert!(
        changes.get("gained").is_some_and(|n| *n >= 1),
        "{changes:?}"
    );
}
