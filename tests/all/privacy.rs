//! Privacy: no identifiers in research outputs, suppression that withstands attack, keyed
//! pseudonyms, scoped operational lists, clean logs.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use arrow_array::{Array, RecordBatch, StringArray, UInt64Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use shequ::privacy::suppress::{Group, Table};
use shequ::privacy::{OutputKind, Policy};
use shequ::{Job, PrivacyOptions};

use crate::fixtures::read_batches;

// ---------------------------------------------------------------------------------------------
// The attacker: knows every published cell and every published relation (hierarchy sums and
// category sums), and tries to recover hidden cells.

/// A relation: the cells with coefficients that sum to zero.
pub(crate) type Relation = Vec<(usize, i64)>;

/// Hierarchy relations (parent − Σ children = 0, per column) and category relations
/// (total − Σ parts = 0, per row).
pub(crate) fn relations(
    parents: &[Option<usize>],
    ncols: usize,
    groups: &[(usize, Vec<usize>)],
) -> Vec<Relation> {
    let mut out = Vec::new();
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    for (r, p) in parents.iter().enumerate() {
        if let Some(p) = p {
            children.entry(*p).or_default().push(r);
        }
    }
    for (p, kids) in &children {
        for c in 0..ncols {
            let mut rel = vec![(p * ncols + c, 1)];
            rel.extend(kids.iter().map(|k| (k * ncols + c, -1)));
            out.push(rel);
        }
    }
    for r in 0..parents.len() {
        for (t, parts) in groups {
            let mut rel = vec![(r * ncols + t, 1)];
            rel.extend(parts.iter().map(|p| (r * ncols + p, -1)));
            out.push(rel);
        }
    }
    out
}

/// Repeated subtraction: any relation with one unknown cell gives it. Returns the recovered
/// hidden cells and checks each recovered value against the truth.
pub(crate) fn subtraction_attack(rels: &[Relation], truth: &[i64], hidden: &[bool]) -> Vec<usize> {
    let mut known: Vec<Option<i64>> = truth
        .iter()
        .zip(hidden)
        .map(|(v, h)| (!h).then_some(*v))
        .collect();
    let mut recovered = Vec::new();
    loop {
        let mut progress = false;
        for rel in rels {
            let unknown: Vec<&(usize, i64)> =
                rel.iter().filter(|(c, _)| known[*c].is_none()).collect();
            if let [(x, a)] = unknown[..] {
                let rest: i64 = rel
                    .iter()
                    .filter(|(c, _)| c != x)
                    .map(|(c, b)| b * known[*c].expect("known"))
                    .sum();
                let v = -rest / a;
                assert_eq!(v, truth[*x], "the attack's arithmetic is wrong");
                known[*x] = Some(v);
                recovered.push(*x);
                progress = true;
            }
        }
        if !progress {
            return recovered;
        }
    }
}

const P: u64 = (1 << 61) - 1;

fn mul(a: u64, b: u64) -> u64 {
    ((a as u128 * b as u128) % P as u128) as u64
}
fn inv(a: u64) -> u64 {
    let (mut r, mut b, mut e) = (1u64, a, P - 2);
    while e > 0 {
        if e & 1 == 1 {
            r = mul(r, b);
        }
        b = mul(b, b);
        e >>= 1;
    }
    r
}

/// Exact linear algebra (modulo a large prime): a hidden cell is determined if its unit
/// vector lies in the row space of the relations restricted to the hidden cells. Returns the
/// determined hidden cells.
pub(crate) fn rank_attack(rels: &[Relation], hidden: &[bool]) -> Vec<usize> {
    let unknowns: Vec<usize> = (0..hidden.len()).filter(|c| hidden[*c]).collect();
    let col: HashMap<usize, usize> = unknowns.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    let n = unknowns.len();
    let mut rows: Vec<Vec<u64>> = rels
        .iter()
        .filter(|r| r.iter().any(|(c, _)| hidden[*c]))
        .map(|r| {
            let mut v = vec![0u64; n];
            for (c, a) in r {
                if let Some(&j) = col.get(c) {
                    v[j] = (v[j] + if *a >= 0 { *a as u64 } else { P - (-*a) as u64 }) % P;
                }
            }
            v
        })
        .collect();
    let mut pivots: Vec<(usize, usize)> = Vec::new(); // (row, column)
    let mut r0 = 0;
    for j in 0..n {
        let Some(p) = (r0..rows.len()).find(|&i| rows[i][j] != 0) else {
            continue;
        };
        rows.swap(r0, p);
        let f = inv(rows[r0][j]);
        for x in rows[r0].iter_mut() {
            *x = mul(*x, f);
        }
        let pivot = rows[r0].clone();
        let nz: Vec<usize> = (0..n).filter(|&k| pivot[k] != 0).collect();
        for (i, row) in rows.iter_mut().enumerate() {
            if i != r0 && row[j] != 0 {
                let m = row[j];
                for &k in &nz {
                    row[k] = (row[k] + P - mul(m, pivot[k])) % P;
                }
            }
        }
        pivots.push((r0, j));
        r0 += 1;
    }
    pivots
        .into_iter()
        .filter(|&(r, j)| (0..n).all(|k| k == j || rows[r][k] == 0))
        .map(|(_, j)| unknowns[j])
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Random hierarchical tables: a total split two ways (3 parts and 2 parts) and a standalone
// column, over a random forest of depth up to 3.

pub(crate) struct Random {
    pub(crate) parents: Vec<Option<usize>>,
    pub(crate) values: Vec<Vec<u64>>,
}

pub(crate) fn random_table(seed: u64) -> Random {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let scale = rng.random_range(3..40u64);
    let mut parents = Vec::new();
    let mut depth = Vec::new();
    for _ in 0..rng.random_range(1..=2) {
        parents.push(None);
        depth.push(0);
    }
    let mut i = 0;
    while i < parents.len() {
        if depth[i] < 3 {
            for _ in 0..rng.random_range(0..=3) {
                parents.push(Some(i));
                depth.push(depth[i] + 1);
            }
        }
        i += 1;
    }
    let n = parents.len();
    let mut values = vec![vec![0u64; 7]; n];
    let has_kids: HashSet<usize> = parents.iter().flatten().copied().collect();
    for r in (0..n).rev() {
        if !has_kids.contains(&r) {
            let t = rng.random_range(0..=scale);
            let a1 = rng.random_range(0..=t);
            let a2 = rng.random_range(0..=t - a1);
            let b1 = rng.random_range(0..=t);
            values[r] = vec![
                t,
                a1,
                a2,
                t - a1 - a2,
                b1,
                t - b1,
                rng.random_range(0..=scale),
            ];
        }
        if let Some(p) = parents[r] {
            let child = values[r].clone();
            for (v, x) in values[p].iter_mut().zip(child) {
                *v += x;
            }
        }
    }
    Random { parents, values }
}

fn groups() -> Vec<(usize, Vec<usize>)> {
    vec![(0, vec![1, 2, 3]), (0, vec![4, 5])]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Every count below k is hidden, and no hidden cell can be recovered by subtraction or by
    /// any linear combination of the published relations.
    #[test]
    fn suppression_withstands_subtraction_and_linear_attacks(seed in any::<u64>(), k in 2u64..8) {
        let rt = random_table(seed);
        let mut t = Table::new(["total", "a1", "a2", "a3", "b1", "b2", "other"]);
        for (p, v) in rt.parents.iter().zip(&rt.values) {
            t.add_row(*p, v.iter().copied()).unwrap();
        }
        for (total, parts) in groups() {
            t.add_group(Group { total, parts }).unwrap();
        }
        let s = t.suppress(k).unwrap();
        let ncols = 7;
        let truth: Vec<i64> = rt.values.iter().flatten().map(|v| *v as i64).collect();
        let hidden: Vec<bool> = (0..truth.len()).map(|c| s.is_hidden(c / ncols, c % ncols)).collect();
        for (c, v) in truth.iter().enumerate() {
            prop_assert!(*v >= k as i64 || hidden[c], "count {v} below k={k} published");
        }
        let rels = relations(&rt.parents, ncols, &groups());
        let by_subtraction = subtraction_attack(&rels, &truth, &hidden);
        prop_assert!(by_subtraction.is_empty(), "recovered by subtraction: {by_subtraction:?}");
        let by_algebra = rank_attack(&rels, &hidden);
        prop_assert!(by_algebra.is_empty(), "determined by linear algebra: {by_algebra:?}");
    }
}

#[test]
fn the_attacks_do_recover_naive_suppression() {
    // Hiding only the small cells is not enough: the attack must find them.
    let rt = Random {
        parents: vec![None, Some(0), Some(0), Some(0)],
        values: vec![
            vec![30, 10, 10, 10, 15, 15, 30],
            vec![3, 1, 1, 1, 2, 1, 3],
            vec![13, 4, 4, 5, 6, 7, 13],
            vec![14, 5, 5, 4, 7, 7, 14],
        ],
    };
    let truth: Vec<i64> = rt.values.iter().flatten().map(|v| *v as i64).collect();
    let hidden: Vec<bool> = truth.iter().map(|v| *v < 5).collect();
    let rels = relations(&rt.parents, 7, &groups());
    assert!(!subtraction_attack(&rels, &truth, &hidden).is_empty());
    assert!(!rank_attack(&rels, &hidden).is_empty());
    // A pattern with a rectangle hides its cells from both attacks.
    let mut hidden = vec![false; truth.len()];
    for (r, c) in [(1, 1), (1, 2), (2, 1), (2, 2)] {
        hidden[r * 7 + c] = true;
    }
    assert!(subtraction_attack(&rels, &truth, &hidden).is_empty());
    assert!(rank_attack(&rels, &hidden).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Runs of the sample.

pub(crate) fn sample_job(dir: &Path) -> Job {
    shequ::sample::write_sample(dir, &shequ::sample::SampleConfig::default()).unwrap();
    Job::from_toml(dir.join("job.toml")).unwrap()
}

/// Every cell of every column of a Parquet file, and its key-value metadata, as text.
fn parquet_text(path: &Path) -> Vec<String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let mut out: Vec<String> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
        .filter_map(|kv| kv.value.clone())
        .collect();
    let opts = arrow_cast::display::FormatOptions::default();
    for b in builder.build().unwrap() {
        let b = b.unwrap();
        for c in b.columns() {
            let f = arrow_cast::display::ArrayFormatter::try_new(c.as_ref(), &opts).unwrap();
            for i in 0..c.len() {
                out.push(f.value(i).to_string());
            }
        }
    }
    out
}

fn json_strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| json_strings(x, out)),
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                out.push(k.clone());
                json_strings(x, out);
            }
        }
        other => out.push(other.to_string()),
    }
}

/// The direct identifiers of the sample's rosters: resident ids, names, ID numbers, phones,
/// household ids.
pub(crate) struct Identifiers {
    exact: HashSet<String>,
    long: Vec<String>,
}

pub(crate) fn identifiers(dir: &Path) -> Identifiers {
    let bytes = std::fs::read(dir.join("residents.csv")).unwrap();
    let (text, _, _) = encoding_rs::GB18030.decode(&bytes);
    let mut exact = HashSet::new();
    let mut long = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        for (i, v) in f.iter().enumerate().take(7) {
            if v.is_empty() || [4, 5].contains(&i) {
                continue; // sex and birth date are attributes, not identifiers
            }
            exact.insert(v.to_string());
            if v.len() >= 8 {
                long.push(v.to_string());
            }
        }
    }
    let hh = std::fs::read_to_string(dir.join("households.csv")).unwrap();
    for line in hh.lines().skip(1) {
        let id = line.split(',').next().unwrap();
        if !id.is_empty() {
            exact.insert(id.to_owned());
            long.push(id.to_owned());
        }
    }
    register_identifiers(dir, &mut exact, &mut long);
    event_identifiers(dir, &mut exact, &mut long);
    Identifiers { exact, long }
}

/// The cases' free text and the residents they name (the scan covers events): a research
/// output holding a case's description or its resident id leaks it.
fn event_identifiers(dir: &Path, exact: &mut HashSet<String>, long: &mut Vec<String>) {
    let Ok(text) = std::fs::read_to_string(dir.join("events.csv")) else {
        return;
    };
    let header: Vec<&str> = text.lines().next().unwrap_or_default().split(',').collect();
    let col = |n: &str| {
        header
            .iter()
            .position(|h| *h == n)
            .expect("events.csv column")
    };
    let (resident, description) = (col("居民编号"), col("问题描述"));
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if let Some(r) = f.get(resident).filter(|r| r.len() >= 8) {
            exact.insert((*r).to_owned());
            long.push((*r).to_owned());
        }
        if let Some(d) = f.get(description).filter(|d| d.contains("电话")) {
            exact.insert((*d).to_owned());
        }
    }
}

/// The names and ID numbers of the sample's registers (a register can name someone the roster
/// does not, or spell a name otherwise), read with calamine.
fn register_identifiers(dir: &Path, exact: &mut HashSet<String>, long: &mut Vec<String>) {
    use calamine::{Data, Reader};
    let Ok(entries) = std::fs::read_dir(dir.join("registers")) else {
        return;
    };
    for e in entries {
        let path = e.unwrap().path();
        let mut book = calamine::open_workbook_auto(&path).unwrap();
        for name in book.sheet_names() {
            let range = book.worksheet_range(&name).unwrap();
            let rows: Vec<&[Data]> = range.rows().collect();
            let is_key = |h: &str| h.contains("姓名") || h.contains("身份");
            let Some(header) = rows
                .iter()
                .position(|r| r.iter().any(|c| matches!(c, Data::String(s) if is_key(s))))
            else {
                continue;
            };
            let keys: Vec<usize> = (0..rows[header].len())
                .filter(|&c| matches!(&rows[header][c], Data::String(s) if is_key(s)))
                .collect();
            for r in &rows[header + 1..] {
                for &c in &keys {
                    if let Some(Data::String(v)) = r.get(c) {
                        let v: String = v.chars().filter(|c| !c.is_whitespace()).collect();
                        if v.chars().count() >= 2 {
                            if v.len() >= 8 && v.is_ascii() {
                                long.push(v.clone());
                            }
                            exact.insert(v);
                        }
                    }
                }
            }
        }
    }
}

/// Identifiers found in `texts`: a text equal to any identifier, containing a name, or
/// containing a long (ASCII) identifier anywhere (found by checking every window of an
/// identifier's length within each run of letters and digits).
pub(crate) fn leaks(texts: &[String], ids: &Identifiers) -> Vec<String> {
    let long: HashSet<&str> = ids.long.iter().map(String::as_str).collect();
    let mut lengths: Vec<usize> = long.iter().map(|s| s.len()).collect();
    lengths.sort_unstable();
    lengths.dedup();
    let names: Vec<&str> = ids
        .exact
        .iter()
        .filter(|s| !s.is_ascii() && s.chars().count() >= 2)
        .map(String::as_str)
        .collect();
    let mut found = Vec::new();
    for t in texts {
        if ids.exact.contains(t.trim()) {
            found.push(t.clone());
        }
        if !t.is_ascii() {
            found.extend(
                names
                    .iter()
                    .filter(|n| t.contains(**n))
                    .map(|n| format!("{n} in {t:.60}")),
            );
        }
        for run in t.split(|c: char| !c.is_ascii_alphanumeric()) {
            for &n in &lengths {
                for start in 0..=run.len().saturating_sub(n) {
                    if run.len() >= n && long.contains(&run[start..start + n]) {
                        found.push(format!("{} in {t:.60}", &run[start..start + n]));
                    }
                }
            }
        }
        if found.len() > 5 {
            break;
        }
    }
    found
}

pub(crate) fn all_output_text(out: &Path) -> Vec<(PathBuf, Vec<String>)> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(out).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files.extend(all_output_text(&p));
            continue;
        }
        let texts = match p.extension().and_then(|e| e.to_str()) {
            Some("parquet") => parquet_text(&p),
            Some("json") | Some("geojson") => {
                let v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                let mut t = Vec::new();
                json_strings(&v, &mut t);
                t
            }
            _ => vec![std::fs::read_to_string(&p).unwrap()],
        };
        files.push((p, texts));
    }
    files
}

#[test]
fn research_outputs_hold_no_identifier_and_no_person_rows() {
    let dir = tempfile::tempdir().unwrap();
    let job = sample_job(dir.path());
    assert_eq!(job.privacy.as_ref().unwrap().output, OutputKind::Research);
    let out = dir.path().join("out");
    let (_, summary) = shequ::run::run(&job, &out, &shequ::NoProgress).unwrap();
    let ids = identifiers(dir.path());
    assert!(
        ids.exact.len() > 30_000,
        "the scan has identifiers to look for"
    );
    let files = all_output_text(&out);
    assert!(files.len() >= 12);
    for (p, texts) in &files {
        let found = leaks(texts, &ids);
        assert!(found.is_empty(), "{}: {found:?}", p.display());
    }
    for f in ["households.parquet", "residents.parquet"] {
        assert!(!out.join(f).exists(), "{f} written by a research run");
        assert!(!summary.written.files.contains(&f.to_string()));
    }
    // The finest geometry is the building: no point other than building points and
    // facilities, and no household coordinates.
    for layer in ["streets", "communities", "grids"] {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join(format!("{layer}.geojson"))).unwrap())
                .unwrap();
        for f in v["features"].as_array().unwrap() {
            assert_eq!(f["geometry"]["type"], "MultiPolygon");
        }
    }
    // The quality report leaves person-level ids out entirely.
    let q = read_batches(&out.join("quality.parquet"));
    for b in &q {
        let layer = b
            .column_by_name("layer")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let id = b.column_by_name("id").unwrap();
        for i in 0..b.num_rows() {
            if ["households", "residents"].contains(&layer.value(i)) {
                assert!(id.is_null(i));
            }
        }
    }
}

#[test]
fn finest_grid_writes_no_building_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut job = sample_job(dir.path());
    job.privacy.as_mut().unwrap().finest = shequ::privacy::Finest::Grid;
    let out = dir.path().join("out");
    shequ::run::run(&job, &out, &shequ::NoProgress).unwrap();
    assert!(!out.join("buildings.parquet").exists());
    assert!(!out.join("buildings.geojson").exists());
    assert!(out.join("grids.parquet").exists());
}

/// One published row: level, own id, nearest parent (level, id), and the count columns.
struct Published {
    key: (String, Option<String>),
    parent: Option<(String, String)>,
    values: Vec<Option<u64>>,
}

const COUNTS: [&str; 5] = [
    "households",
    "residents",
    "residents_male",
    "residents_female",
    "residents_sex_unknown",
];

fn published_rows(out: &Path) -> Vec<Published> {
    let mut rows = Vec::new();
    let text = |b: &RecordBatch, n: &str, i: usize| -> Option<String> {
        let c = b.column_by_name(n)?;
        let c = c.as_any().downcast_ref::<StringArray>().unwrap();
        (!c.is_null(i)).then(|| c.value(i).to_owned())
    };
    let counts = |b: &RecordBatch, i: usize| -> Vec<Option<u64>> {
        COUNTS
            .iter()
            .map(|n| {
                let c = b.column_by_name(n).unwrap();
                let c = c.as_any().downcast_ref::<UInt64Array>().unwrap();
                (!c.is_null(i)).then(|| c.value(i))
            })
            .collect()
    };
    let ups: [(&str, &[&str]); 4] = [
        ("streets", &[]),
        ("communities", &["street"]),
        ("grids", &["community", "street"]),
        ("buildings", &["grid", "community", "street"]),
    ];
    for (layer, up) in ups {
        let p = out.join(format!("{layer}.parquet"));
        if !p.exists() {
            continue;
        }
        let own = format!(
            "{}_id",
            layer
                .trim_end_matches('s')
                .replace("communitie", "community")
        );
        for b in read_batches(&p) {
            for i in 0..b.num_rows() {
                let parent = up.iter().find_map(|u| {
                    text(&b, &format!("{u}_id"), i).map(|id| {
                        let l = if *u == "community" {
                            "communities".to_owned()
                        } else {
                            format!("{u}s")
                        };
                        (l, id)
                    })
                });
                rows.push(Published {
                    key: (layer.to_owned(), text(&b, &own, i)),
                    parent,
                    values: counts(&b, i),
                });
            }
        }
    }
    let rem = out.join("remainders.parquet");
    if rem.exists() {
        for b in read_batches(&rem) {
            for i in 0..b.num_rows() {
                rows.push(Published {
                    key: (text(&b, "level", i).unwrap(), None),
                    parent: Some((
                        text(&b, "parent_level", i).unwrap(),
                        text(&b, "parent_id", i).unwrap(),
                    )),
                    values: counts(&b, i),
                });
            }
        }
    }
    rows
}

/// Attacks a research run's published tables with the relations a reader can rebuild from
/// them (parent ids, remainders, residents = male + female + unknown).
fn attack_outputs(out: &Path, truth_of: &dyn Fn(&Published, usize) -> u64, k: u64) {
    let rows = published_rows(out);
    assert!(!rows.is_empty());
    let index: HashMap<(String, String), usize> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.key.1.clone().map(|id| ((r.key.0.clone(), id), i)))
        .collect();
    let parents: Vec<Option<usize>> = rows
        .iter()
        .map(|r| r.parent.as_ref().map(|p| index[p]))
        .collect();
    let n = COUNTS.len();
    let mut truth = Vec::new();
    let mut hidden = Vec::new();
    for r in &rows {
        for (c, name) in COUNTS.iter().enumerate() {
            let t = truth_of(r, c);
            if let Some(v) = r.values[c] {
                assert_eq!(v, t, "published value differs from the truth");
                assert!(
                    v >= k || v == 0,
                    "published {v} < k in {:?} {}",
                    r.key,
                    name
                );
            }
            truth.push(t as i64);
            hidden.push(r.values[c].is_none());
        }
    }
    assert!(
        hidden.iter().any(|h| *h),
        "the run should have suppressed something"
    );
    let rels = relations(&parents, n, &[(1, vec![2, 3, 4])]);
    let sub = subtraction_attack(&rels, &truth, &hidden);
    assert!(sub.is_empty(), "recovered by subtraction: {sub:?}");
    let alg = rank_attack(&rels, &hidden);
    assert!(alg.is_empty(), "determined by linear algebra: {alg:?}");
}

/// True counts from an operational run of the same job (full counts per unit) and the
/// remainders computed from them.
fn truth_from(model: &shequ::Model) -> impl Fn(&Published, usize) -> u64 + '_ {
    let tally = shequ::output::Tally::of(model);
    let idx = [
        shequ::output::Tally::HOUSEHOLDS,
        shequ::output::Tally::RESIDENTS,
        shequ::output::Tally::MALE,
        shequ::output::Tally::FEMALE,
        shequ::output::Tally::SEX_UNKNOWN,
    ];
    let layer_of = |name: &str| match name {
        "streets" => shequ::Layer::Street,
        "communities" => shequ::Layer::Community,
        "grids" => shequ::Layer::Grid,
        _ => shequ::Layer::Building,
    };
    let lineages = |l: shequ::Layer| -> Vec<shequ::Lineage> {
        match l {
            shequ::Layer::Street => model.streets.iter().map(|u| u.lineage).collect(),
            shequ::Layer::Community => model.communities.iter().map(|u| u.lineage).collect(),
            shequ::Layer::Grid => model.grids.iter().map(|u| u.lineage).collect(),
            _ => model.buildings.iter().map(|u| u.lineage).collect(),
        }
    };
    move |r: &Published, c: usize| {
        let find = |l: shequ::Layer, id: &str| -> usize {
            (0..lineages(l).len())
                .find(|&i| model.code(l, i as u32) == id)
                .expect("unit in model")
        };
        let unit = |level: &str, id: &str| -> u64 {
            let l = layer_of(level);
            tally.at(l)[find(l, id)][idx[c]]
        };
        match &r.key.1 {
            Some(id) => unit(&r.key.0, id),
            None => {
                // A remainder: the parent's count less its published children's is checked by
                // the relation itself; the truth is the parent's count minus its children's.
                let (pl, pid) = r.parent.as_ref().unwrap();
                let parent = unit(pl, pid);
                let l = layer_of(pl);
                let pi = find(l, pid) as u32;
                let mut kids = 0;
                for child in [
                    shequ::Layer::Community,
                    shequ::Layer::Grid,
                    shequ::Layer::Building,
                ] {
                    if child <= l {
                        continue;
                    }
                    for (i, lin) in lineages(child).iter().enumerate() {
                        // Nearest published ancestor is the parent.
                        let nearest = [
                            shequ::Layer::Grid,
                            shequ::Layer::Community,
                            shequ::Layer::Street,
                        ]
                        .into_iter()
                        .filter(|a| *a < child && model.has(*a))
                        .find_map(|a| lin.at(a).map(|j| (a, j)));
                        if nearest == Some((l, pi)) {
                            kids += tally.at(child)[i][idx[c]];
                        }
                    }
                }
                parent - kids
            }
        }
    }
}

#[test]
fn published_sample_tables_withstand_attack_across_levels_and_categories() {
    for (households, k, seed) in [(4000, 5, 2024), (600, 5, 7), (900, 10, 11)] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = shequ::sample::SampleConfig {
            households,
            seed,
            ..shequ::sample::SampleConfig::default()
        };
        shequ::sample::write_sample(dir.path(), &cfg).unwrap();
        let mut job = Job::from_toml(dir.path().join("job.toml")).unwrap();
        // The base counts are low-sensitivity; k_low = k puts them through the engine.
        let p = job.privacy.as_mut().unwrap();
        p.k = k;
        p.k_low = k;
        let out = dir.path().join("out");
        let (built, _) = shequ::run::run(&job, &out, &shequ::NoProgress).unwrap();
        attack_outputs(&out, &truth_from(&built.model), k);
    }
}

// ---------------------------------------------------------------------------------------------
// Operational runs.

fn operational(dir: &Path, secret: &str, plain: bool) -> (PathBuf, shequ::Build) {
    let mut job = Job::from_toml(dir.join("job.toml")).unwrap();
    let key = dir.join(format!("key-{}", secret.len()));
    std::fs::write(&key, secret).unwrap();
    let mut p = PrivacyOptions::operational_grid("50010300100101");
    p.secret_file = Some(key);
    p.plain_identifiers = plain;
    job.privacy = Some(p);
    let out = dir.join(format!("op-{}-{plain}", secret.len()));
    let (b, _) = shequ::run::run(&job, &out, &shequ::NoProgress).unwrap();
    (out, b)
}

fn column(path: &Path, name: &str) -> Vec<String> {
    read_batches(path)
        .iter()
        .flat_map(|b| {
            let c = b
                .column_by_name(name)
                .unwrap_or_else(|| panic!("{name} missing"));
            let c = c.as_any().downcast_ref::<StringArray>().unwrap().clone();
            (0..c.len()).map(move |i| c.value(i).to_owned())
        })
        .collect()
}

#[test]
fn pseudonyms_are_stable_with_one_secret_and_differ_with_another() {
    let dir = tempfile::tempdir().unwrap();
    shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::default()).unwrap();
    let (a, built) = operational(dir.path(), "first secret of the district office", false);
    let (a2, _) = operational(dir.path(), "first secret of the district office ", false);
    let (b, _) = operational(dir.path(), "another secret, another district office", false);
    let keys_a = column(&a.join("residents.parquet"), "resident_key");
    assert!(!keys_a.is_empty());
    // The same secret (whitespace around it ignored) gives the same pseudonyms.
    assert_eq!(
        keys_a,
        column(&a2.join("residents.parquet"), "resident_key")
    );
    let keys_b = column(&b.join("residents.parquet"), "resident_key");
    assert_eq!(keys_a.len(), keys_b.len());
    assert!(keys_a.iter().zip(&keys_b).all(|(x, y)| x != y));
    assert_eq!(
        keys_a.iter().collect::<HashSet<_>>().len(),
        keys_a.len(),
        "pseudonyms collide"
    );
    // The manifest names the key by fingerprint only.
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["privacy"]["output"], "operational");
    assert_eq!(m["privacy"]["key_fingerprint"].as_str().unwrap().len(), 16);
    let text = std::fs::read_to_string(a.join("manifest.json")).unwrap();
    assert!(!text.contains("first secret"));

    // The list holds exactly the placed residents of the grid, and no identifier.
    let grid = built
        .model
        .grids
        .iter()
        .position(|g| g.id.as_str() == "50010300100101")
        .unwrap();
    let expected = built
        .model
        .residents
        .iter()
        .filter(|r| built.model.households[r.household as usize].lineage.grid == Some(grid as u32))
        .count();
    assert_eq!(keys_a.len(), expected);
    assert!(
        column(&a.join("residents.parquet"), "grid_id")
            .iter()
            .all(|g| g == "50010300100101")
    );
    let ids = identifiers(dir.path());
    for (p, texts) in all_output_text(&a) {
        let found = leaks(&texts, &ids);
        assert!(found.is_empty(), "{}: {found:?}", p.display());
    }
}

#[test]
fn plain_identifiers_only_when_asked_and_restricted_columns_only_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::default()).unwrap();
    let (out, _) = operational(dir.path(), "first secret of the district office", true);
    let names = column(&out.join("residents.parquet"), "name");
    let ids = identifiers(dir.path());
    assert!(names.iter().all(|n| ids.exact.contains(n)));
    let numbers = column(&out.join("residents.parquet"), "id_number");
    assert!(numbers.iter().all(|n| n.len() == 18));
    // Restricted-tier columns: dropped unless allowed.
    let mut job = Job::from_toml(dir.path().join("job.toml")).unwrap();
    job.layers.residents.as_mut().unwrap().restricted_columns = vec!["人员类型".into()];
    job.layers.residents.as_mut().unwrap().columns = vec![];
    std::fs::write(
        dir.path().join("key"),
        "first secret of the district office",
    )
    .unwrap();
    for allow in [false, true] {
        let mut p = PrivacyOptions::operational_grid("50010300100101");
        p.secret_file = Some("key".into());
        p.allow_restricted = allow;
        job.privacy = Some(p);
        let o = dir.path().join(format!("restricted-{allow}"));
        shequ::run::run(&job, &o, &shequ::NoProgress).unwrap();
        let has = read_batches(&o.join("residents.parquet"))[0]
            .schema()
            .column_with_name("人员类型")
            .is_some();
        assert_eq!(has, allow);
    }
}

#[test]
fn the_privacy_choice_is_explicit_and_research_refuses_person_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut job = sample_job(dir.path());
    // Research never writes named lists, even when asked through the API.
    let built = shequ::build(&job).unwrap();
    let e = shequ::output::operational::write_lists(&built, dir.path(), &Policy::research(5))
        .unwrap_err();
    assert!(matches!(e, shequ::Error::Privacy { .. }), "{e}");
    assert!(!dir.path().join("residents.parquet").exists());
    // No [privacy] section: no run.
    job.privacy = None;
    let e = shequ::run::run(&job, &dir.path().join("o1"), &shequ::NoProgress).unwrap_err();
    assert!(e.to_string().contains("[privacy]"), "{e}");
    assert!(!dir.path().join("o1").exists());
    // Operational without a secret: refused before any work, naming where the secret goes.
    let mut p = PrivacyOptions::operational_grid("50010300100101");
    p.secret_env = "SHEQU_TEST_SECRET_THAT_IS_NOT_SET".into();
    job.privacy = Some(p);
    let e = shequ::run::run(&job, &dir.path().join("o2"), &shequ::NoProgress).unwrap_err();
    assert!(
        e.to_string().contains("SHEQU_TEST_SECRET_THAT_IS_NOT_SET"),
        "{e}"
    );
    // A short secret is refused.
    std::fs::write(dir.path().join("short"), "abc").unwrap();
    let mut p = PrivacyOptions::operational_grid("50010300100101");
    p.secret_file = Some("short".into());
    job.privacy = Some(p);
    assert!(shequ::run::run(&job, &dir.path().join("o3"), &shequ::NoProgress).is_err());
    // A scope that is not in the model is refused.
    std::fs::write(
        dir.path().join("key"),
        "first secret of the district office",
    )
    .unwrap();
    let mut p = PrivacyOptions::operational_grid("NO-SUCH-GRID");
    p.secret_file = Some("key".into());
    job.privacy = Some(p);
    let e = shequ::run::run(&job, &dir.path().join("o4"), &shequ::NoProgress).unwrap_err();
    assert!(e.to_string().contains("NO-SUCH-GRID"), "{e}");
    // Job-file checks.
    let base = std::fs::read_to_string(dir.path().join("job.toml")).unwrap();
    for (extra, msg) in [
        ("grid = \"G1\"\n", "research run has none"),
        ("plain_identifiers = true\n", "operational runs only"),
        ("k = 0\n", "at least 1"),
    ] {
        let text = base
            .replace("k = 5\n", "")
            .replace("[privacy]\n", &format!("[privacy]\n{extra}"));
        let e = Job::from_toml_str(&text, dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains(msg), "{e}");
    }
    let text = base.replace("output = \"research\"", "output = \"operational\"");
    let e = Job::from_toml_str(&text, dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("exactly one of privacy.grid, privacy.community or privacy.street"),
        "{e}"
    );
    let text = base.replace("output = \"research\"", "output = \"public\"");
    assert!(Job::from_toml_str(&text, dir.path()).is_err());
}

#[test]
fn logs_errors_and_reports_hold_no_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::default()).unwrap();
    let ids = identifiers(dir.path());
    let job = dir.path().join("job.toml");
    let mut texts = Vec::new();
    for args in [
        vec![
            "run".to_owned(),
            job.display().to_string(),
            "--out".into(),
            dir.path().join("o").display().to_string(),
        ],
        vec![
            "validate".to_owned(),
            job.display().to_string(),
            "--limit".into(),
            "1000".into(),
        ],
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_shequ"))
            .args(&args)
            .output()
            .unwrap();
        assert!(o.status.success());
        let stdout = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(stdout.contains("residents"));
        texts.extend(stdout.lines().map(str::to_owned));
        texts.extend(
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .map(str::to_owned),
        );
    }
    let found = leaks(&texts, &ids);
    assert!(found.is_empty(), "{found:?}");
    // The quality report masks the bad ID number it reports.
    let built = shequ::build(&Job::from_toml(&job).unwrap()).unwrap();
    let bad: Vec<_> = built
        .report
        .issues()
        .iter()
        .filter(|i| i.kind == shequ::IssueKind::BadIdNumber)
        .collect();
    assert_eq!(bad.len(), 1);
    assert!(
        bad[0].detail.contains("50**************"),
        "{}",
        bad[0].detail
    );
    let all: Vec<String> = built
        .report
        .issues()
        .iter()
        .map(|i| i.to_string())
        .collect();
    assert!(leaks(&all, &ids).is_empty());
    // A roster error names the place, not the person.
    let bytes = std::fs::read(dir.path().join("residents.csv")).unwrap();
    std::fs::write(dir.path().join("residents.csv"), &bytes[..bytes.len() / 2]).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_shequ"))
        .args(["validate", &job.display().to_string()])
        .output()
        .unwrap();
    let text: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&o.stderr).lines())
        .map(str::to_owned)
        .collect();
    assert!(leaks(&text, &ids).is_empty(), "{text:?}");
}

/// Rows of the special-needs tables keyed by (level, unit id or remainder parent), with the
/// values of `cols` (None where null or absent).
pub(crate) type Keyed = HashMap<(String, String), (Option<(String, String)>, Vec<Option<u64>>)>;

fn special_rows(out: &Path, cols: &[String]) -> Keyed {
    level_rows(out, "special_needs", cols)
}

/// Rows of the level tables in `dir` (and of every remainders file whose parent's children are
/// published there), keyed as in [`special_rows`].
pub(crate) fn level_rows(out: &Path, dir: &str, cols: &[String]) -> Keyed {
    let text = |b: &RecordBatch, n: &str, i: usize| -> Option<String> {
        let c = b.column_by_name(n)?;
        let c = c.as_any().downcast_ref::<StringArray>().unwrap();
        (!c.is_null(i)).then(|| c.value(i).to_owned())
    };
    let vals = |b: &RecordBatch, i: usize| -> Vec<Option<u64>> {
        cols.iter()
            .map(|n| {
                let c = b.column_by_name(n)?;
                let c = c.as_any().downcast_ref::<UInt64Array>().unwrap();
                (!c.is_null(i)).then(|| c.value(i))
            })
            .collect()
    };
    let mut rows: Keyed = HashMap::new();
    let ups: [(&str, &[&str]); 4] = [
        ("street", &[]),
        ("community", &["street"]),
        ("grid", &["community", "street"]),
        ("building", &["grid", "community", "street"]),
    ];
    for (level, up) in ups {
        let p = out.join(format!("{dir}/{level}.parquet"));
        if !p.exists() {
            continue;
        }
        for b in read_batches(&p) {
            for i in 0..b.num_rows() {
                let parent = up
                    .iter()
                    .find_map(|u| text(&b, &format!("{u}_id"), i).map(|id| ((*u).to_owned(), id)));
                let id = text(&b, &format!("{level}_id"), i).unwrap();
                rows.insert((level.to_owned(), id), (parent, vals(&b, i)));
            }
        }
    }
    // Remainders: the base file has residents, the special-needs file the rest.
    let singular = |s: &str| match s {
        "streets" => "street",
        "communities" => "community",
        "grids" => "grid",
        _ => "building",
    };
    let child = |level: &str| match level {
        "street" => "community",
        "community" => "grid",
        _ => "building",
    };
    for f in [
        "remainders.parquet",
        "special_needs/remainders.parquet",
        "coverage/remainders.parquet",
    ] {
        let p = out.join(f);
        if !p.exists() {
            continue;
        }
        for b in read_batches(&p) {
            for i in 0..b.num_rows() {
                let pl = singular(&text(&b, "parent_level", i).unwrap()).to_owned();
                // People in a unit outside its children relate to the children only where
                // the children are published in `dir`.
                if !out.join(format!("{dir}/{}.parquet", child(&pl))).exists() {
                    continue;
                }
                let pid = text(&b, "parent_id", i).unwrap();
                let key = (format!("rest of {pl}"), pid.clone());
                let v = vals(&b, i);
                let e = rows
                    .entry(key)
                    .or_insert_with(|| (Some((pl, pid)), vec![None; cols.len()]));
                for (x, y) in e.1.iter_mut().zip(v) {
                    if y.is_some() {
                        *x = y;
                    }
                }
            }
        }
    }
    rows
}

/// A research run and an operational run (the truth: full counts) of the sample job on a
/// district of `households`.
fn research_and_truth(households: usize) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = shequ::sample::SampleConfig {
        households,
        ..shequ::sample::SampleConfig::default()
    };
    shequ::sample::write_sample(dir.path(), &cfg).unwrap();
    let mut job = Job::from_toml(dir.path().join("job.toml")).unwrap();
    let research = dir.path().join("research");
    shequ::run::run(&job, &research, &shequ::NoProgress).unwrap();
    std::fs::write(dir.path().join("key"), "a secret for the attack test").unwrap();
    let mut p = PrivacyOptions::operational_grid("50010300100101");
    p.secret_file = Some("key".into());
    job.privacy = Some(p);
    let full = dir.path().join("full");
    shequ::run::run(&job, &full, &shequ::NoProgress).unwrap();
    (dir, research, full)
}

/// Attacks the published rows of `cols` with the hierarchy and `groups`; returns the number
/// of hidden cells. Published values must equal the truth.
fn attack_keyed(
    published: &Keyed,
    truth: &Keyed,
    cols: usize,
    groups: &[(usize, Vec<usize>)],
    label: &str,
) -> usize {
    let keys: Vec<&(String, String)> = published.keys().collect();
    let index: HashMap<&(String, String), usize> =
        keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    let parents: Vec<Option<usize>> = keys
        .iter()
        .map(|k| published[*k].0.as_ref().map(|p| index[p]))
        .collect();
    let mut values = Vec::new();
    let mut hidden = Vec::new();
    for k in &keys {
        let t = &truth[*k].1;
        for (c, v) in published[*k].1.iter().enumerate() {
            values.push(t[c].expect("operational counts are complete") as i64);
            hidden.push(v.is_none());
            if let Some(v) = v {
                assert_eq!(*v as i64, *values.last().unwrap());
            }
        }
    }
    let rels = relations(&parents, cols, groups);
    let sub = subtraction_attack(&rels, &values, &hidden);
    assert!(sub.is_empty(), "{label}: recovered by subtraction: {sub:?}");
    let alg = rank_attack(&rels, &hidden);
    assert!(
        alg.is_empty(),
        "{label}: determined by linear algebra: {alg:?}"
    );
    hidden.iter().filter(|h| **h).count()
}

#[test]
fn published_special_needs_tables_withstand_attack() {
    for households in [4000, 600] {
        let (_dir, research, full) = research_and_truth(households);
        let types: Vec<String> = shequ::analytics::special_needs::DISABILITY_TYPES
            .iter()
            .map(|(_, en)| format!("disabled_{en}"))
            .collect();
        let grades: Vec<String> = (1..=4)
            .map(|g| format!("disabled_grade_{g}"))
            .chain(["disabled_grade_unknown".to_owned()])
            .collect();
        let mut cols: Vec<String> = vec!["disabled".into()];
        cols.extend(types.iter().cloned());
        cols.extend(grades.iter().cloned());
        cols.extend(
            [
                "elderly_alone",
                "empty_nest",
                "minimum_living_allowance",
                "unemployed",
                "elderly_alone_and_disabled",
            ]
            .map(String::from),
        );
        let groups = vec![
            (0, (1..=types.len()).collect()),
            (0, (types.len() + 1..=types.len() + grades.len()).collect()),
        ];
        let hidden = attack_keyed(
            &special_rows(&research, &cols),
            &special_rows(&full, &cols),
            cols.len(),
            &groups,
            &households.to_string(),
        );
        assert!(hidden > 50);
    }
}

#[test]
fn published_coverage_tables_withstand_attack() {
    for households in [4000, 600] {
        let (_dir, research, full) = research_and_truth(households);
        let mut cols: Vec<String> = Vec::new();
        for m in [
            "clinic_all",
            "clinic_all_network",
            "elderly_daycare_empty_nest",
            "rehabilitation_disabled_network",
        ] {
            for t in [300, 500, 1000] {
                cols.push(format!("{m}_within_{t}m"));
            }
        }
        let hidden = attack_keyed(
            &level_rows(&research, "coverage", &cols),
            &level_rows(&full, "coverage", &cols),
            cols.len(),
            &[],
            &households.to_string(),
        );
        assert!(hidden > 0, "{households}: something is suppressed");
    }
}
