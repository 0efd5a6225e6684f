//! Special-needs analytics: totals against the rosters, roll-ups, derived categories on edge
//! cases, Gi* by hand, restricted tier.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use arrow_array::{Array, BooleanArray, RecordBatch, StringArray, UInt64Array};
use polars::prelude::*;
use shequ::analytics::SpecialNeeds;
use shequ::{Job, Layer, PrivacyOptions};

use crate::fixtures::read_batches as batches;

/// The sample's resident rows: (resident id, household id, ID number, birth, disability
/// type, minimum living allowance), decoded independently of shequ.
fn roster(dir: &Path) -> Vec<Vec<String>> {
    let bytes = std::fs::read(dir.join("residents.csv")).unwrap();
    let (text, _, _) = encoding_rs::GB18030.decode(&bytes);
    text.lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

#[test]
fn totals_match_independent_counts_from_the_rosters() {
    let dir = tempfile::tempdir().unwrap();
    shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::default()).unwrap();
    let job = Job::from_toml(dir.path().join("job.toml")).unwrap();
    let built = shequ::build(&job).unwrap();
    let sn = SpecialNeeds::compute(&built, job.special_needs.as_ref().unwrap(), false).unwrap();
    // Independent: residents whose household is placed, first occurrence of their id; age
    // from the ID number's birth date (characters 7-14) at 2026-01-01.
    let placed: HashSet<&str> = built
        .model
        .households
        .iter()
        .filter(|h| h.placed)
        .map(|h| h.id.as_str())
        .collect();
    let mut seen = HashSet::new();
    let mut members: HashMap<String, Vec<u32>> = HashMap::new();
    let (mut n, mut mla, mut disabled, mut old80, mut unemployed) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for r in roster(dir.path()) {
        if r.len() < 12
            || r[0].is_empty()
            || !seen.insert(r[0].clone())
            || !placed.contains(r[1].as_str())
        {
            continue;
        }
        n += 1;
        mla += u64::from(r[10] == "是");
        unemployed += u64::from(r[11] == "是");
        disabled += u64::from(!r[8].is_empty());
        let y: i32 = r[3][6..10].parse().unwrap();
        let md: u32 = r[3][10..14].parse().unwrap();
        let age = (2026 - y - i32::from(md > 101)) as u32;
        old80 += u64::from(age >= 80);
        members.entry(r[1].clone()).or_default().push(age);
    }
    let alone = members
        .values()
        .filter(|a| a.len() == 1 && a[0] >= 60)
        .count() as u64;
    let empty_nest: u64 = members
        .values()
        .filter(|a| a.iter().all(|x| *x >= 60))
        .map(|a| a.len() as u64)
        .sum();
    let streets = sn.per_unit(Layer::Street).collect().unwrap();
    let total = |c: &str| -> u64 { streets.column(c).unwrap().u64().unwrap().sum().unwrap() };
    assert_eq!(total("residents"), n);
    assert_eq!(total("minimum_living_allowance"), mla);
    assert_eq!(total("unemployed"), unemployed);
    assert_eq!(total("disabled"), disabled);
    assert_eq!(total("oldest_old"), old80);
    assert_eq!(total("elderly_alone"), alone);
    assert_eq!(total("empty_nest"), empty_nest);
    assert!(
        mla > 100 && disabled > 300 && alone > 50,
        "the sample has people in each"
    );
    // Disability type and grade partition the disabled.
    let types: u64 = shequ::analytics::special_needs::DISABILITY_TYPES
        .iter()
        .map(|(_, en)| total(&format!("disabled_{en}")))
        .sum();
    assert_eq!(types, disabled);
    let grades: u64 = (1..=4)
        .map(|g| total(&format!("disabled_grade_{g}")))
        .sum::<u64>()
        + total("disabled_grade_unknown");
    assert_eq!(grades, disabled);
}

fn u64_col(b: &RecordBatch, name: &str) -> Vec<Option<u64>> {
    let c = b.column_by_name(name).unwrap_or_else(|| panic!("{name}"));
    let c = c.as_any().downcast_ref::<UInt64Array>().unwrap();
    (0..c.len())
        .map(|i| c.is_valid(i).then(|| c.value(i)))
        .collect()
}
fn str_col(b: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let Some(c) = b.column_by_name(name) else {
        return vec![None; b.num_rows()];
    };
    let c = c.as_any().downcast_ref::<StringArray>().unwrap();
    (0..c.len())
        .map(|i| c.is_valid(i).then(|| c.value(i).to_owned()))
        .collect()
}

#[test]
fn roll_ups_are_consistent_at_every_level() {
    let dir = tempfile::tempdir().unwrap();
    shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::default()).unwrap();
    let mut job = Job::from_toml(dir.path().join("job.toml")).unwrap();
    std::fs::write(dir.path().join("key"), "a secret for the roll-up test").unwrap();
    let mut p = PrivacyOptions::operational_grid("50010300100101");
    p.secret_file = Some("key".into());
    job.privacy = Some(p);
    // Households located in a community but in no grid, so remainders exist.
    let out = dir.path().join("out");
    shequ::run::run(&job, &out, &shequ::NoProgress).unwrap();
    let sn = out.join("special_needs");
    let levels = [
        ("street", None),
        ("community", Some("street")),
        ("grid", Some("community")),
        ("building", Some("grid")),
    ];
    let tables: HashMap<&str, RecordBatch> = levels
        .iter()
        .map(|(l, _)| (*l, batches(&sn.join(format!("{l}.parquet"))).remove(0)))
        .collect();
    let counts: Vec<String> = tables["grid"]
        .schema()
        .fields()
        .iter()
        .filter(|f| f.data_type() == &arrow_schema::DataType::UInt64)
        .map(|f| f.name().clone())
        .collect();
    assert!(counts.len() > 25, "{counts:?}");
    // Each column's remainders are in its own table's file: the base counts (households,
    // residents) in the top-level one.
    let mut remainders = Vec::new();
    for rem in [
        sn.join("remainders.parquet"),
        out.join("remainders.parquet"),
    ] {
        if rem.exists() {
            remainders.extend(batches(&rem));
        }
    }
    let mut checked = 0;
    for w in levels.windows(2) {
        let (parent, _) = w[0];
        let (child, Some(_)) = w[1] else {
            unreachable!()
        };
        let pt = &tables[parent];
        let ct = &tables[child];
        let pids = str_col(pt, &format!("{parent}_id"));
        let cparent = str_col(ct, &format!("{parent}_id"));
        // A child whose nearest parent is higher up (a building in no grid) sits under that
        // level's remainder instead.
        let between = if child == "building" {
            str_col(ct, "grid_id")
        } else {
            vec![Some(String::new()); ct.num_rows()]
        };
        for c in &counts {
            let pv = u64_col(pt, c);
            let cv = u64_col(ct, c);
            for (i, pid) in pids.iter().enumerate() {
                let children: u64 = (0..ct.num_rows())
                    .filter(|j| cparent[*j] == *pid && between[*j].is_some())
                    .map(|j| cv[j].unwrap())
                    .sum();
                let mut rest = 0;
                for b in remainders.iter().filter(|b| b.column_by_name(c).is_some()) {
                    let pl = str_col(b, "parent_level");
                    let pi = str_col(b, "parent_id");
                    let v = u64_col(b, c);
                    for k in 0..b.num_rows() {
                        if pl[k].as_deref() == Some(layer_name(parent)) && pi[k] == *pid {
                            rest += v[k].unwrap();
                        }
                    }
                }
                assert_eq!(pv[i].unwrap(), children + rest, "{parent} {pid:?} {c}");
                checked += 1;
            }
        }
    }
    assert!(checked > 1000);
}

fn layer_name(singular: &str) -> &'static str {
    match singular {
        "street" => "streets",
        "community" => "communities",
        "grid" => "grids",
        _ => "buildings",
    }
}

/// A small district whose roster is replaced by hand-made residents.
fn hand_made(rows: &[&str]) -> (tempfile::TempDir, Job, shequ::Build) {
    let dir = tempfile::tempdir().unwrap();
    shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(3)).unwrap();
    let mut text = String::from(
        "居民编号,户编号,姓名,公民身份号码,性别,出生日期,联系电话,人员类型,残疾类别,残疾等级,是否低保,是否失业\n",
    );
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    let (gb, _, _) = encoding_rs::GB18030.encode(&text);
    std::fs::write(dir.path().join("residents.csv"), &gb).unwrap();
    let job = Job::from_toml(dir.path().join("job.toml")).unwrap();
    let built = shequ::build(&job).unwrap();
    (dir, job, built)
}

#[test]
fn derived_categories_on_edge_cases() {
    // Reference date 2026-01-01. No ID numbers, so ages come from the birth date column only.
    let (_dir, job, built) = hand_made(&[
        "A1,H0000001,甲,,男,1966-01-01,,户籍,,,否,否", // 60 today, alone
        "A2,H0000002,乙,,女,1966-01-02,,户籍,,,否,否", // 59: one day short, alone
        "A3,H0000003,丙,,男,19600505,,户籍,,,否,否",   // 65, with A4
        "A4,H0000003,丁,,女,1950年1月1日,,户籍,肢体,2级,是,否", // 76
        "A5,H0000004,戊,,男,1950/1/1,,户籍,,,否,否",   // 76, with A6 of unknown age
        "A6,H0000004,己,,女,,,户籍,,,否,否",           // no birth date: reported, not guessed
        "A7,H0000005,庚,,女,1946-01-01,,户籍,,,否,否", // 80 today
    ]);
    let sn = SpecialNeeds::compute(&built, job.special_needs.as_ref().unwrap(), false).unwrap();
    let df = sn.residents(&built.model).unwrap();
    let by_row: HashMap<usize, usize> = built
        .model
        .residents
        .iter()
        .enumerate()
        .map(|(i, r)| (r.source_index, i))
        .collect();
    let flag = |c: &str, row: usize| -> bool {
        df.column(&format!("cat_{c}"))
            .unwrap()
            .bool()
            .unwrap()
            .get(by_row[&row])
            .unwrap()
    };
    let age = |row: usize| df.column("age").unwrap().u32().unwrap().get(by_row[&row]);
    assert_eq!(age(0), Some(60));
    assert_eq!(age(1), Some(59));
    assert_eq!(age(3), Some(76));
    assert_eq!(age(5), None);
    assert!(
        flag("elderly_alone", 0),
        "a birthday on the reference date counts"
    );
    assert!(!flag("elderly_alone", 1));
    assert!(flag("empty_nest", 0) && !flag("empty_nest", 1));
    assert!(flag("empty_nest", 2) && flag("empty_nest", 3) && !flag("elderly_alone", 2));
    // A household member of unknown age: not all members are known to be 60+.
    assert!(!flag("empty_nest", 4) && !flag("empty_nest", 5));
    assert!(flag("oldest_old", 6) && !flag("oldest_old", 3));
    assert!(flag("disabled", 3) && flag("minimum_living_allowance", 3) && !flag("disabled", 2));
    // The missing birth date is reported with its row, and nothing else is.
    assert_eq!(sn.issues.len(), 1);
    assert_eq!(sn.issues[0].index, Some(5));
    assert_eq!(sn.issues[0].kind, shequ::IssueKind::BadValue);
    let grade = df
        .column("disability_grade")
        .unwrap()
        .u32()
        .unwrap()
        .get(by_row[&3]);
    assert_eq!(grade, Some(2));
    let kind = df
        .column("disability_type")
        .unwrap()
        .str()
        .unwrap()
        .get(by_row[&3])
        .map(str::to_owned);
    assert_eq!(kind.as_deref(), Some("physical"));
}

#[test]
fn gi_star_matches_a_hand_computed_example() {
    // Five grids in a row with rates 1, 2, 3, 4, 10. n = 5, mean 4, population variance
    // (1 + 4 + 9 + 16 + 100) / 5 - 16 = 10, s = sqrt(10).
    // Grid 4 (neighbour 3): W = 2, sum = 4 + 10 = 14;
    //   Gi* = (14 - 4 * 2) / (sqrt(10) * sqrt((5 * 2 - 2^2) / 4)) = 6 / sqrt(15) = 1.549193...
    // Grid 2 (neighbours 1, 3): W = 3, sum = 9;
    //   Gi* = (9 - 12) / (sqrt(10) * sqrt((15 - 9) / 4)) = -3 / sqrt(15) = -0.774597...
    use shequ::analytics::hotspots::gi_star;
    let nb = vec![vec![1], vec![0, 2], vec![1, 3], vec![2, 4], vec![3]];
    let g = gi_star(&[1.0, 2.0, 3.0, 4.0, 10.0].map(Some), &nb);
    assert!((g[4].unwrap() - 6.0 / 15f64.sqrt()).abs() < 1e-12);
    assert!((g[2].unwrap() + 3.0 / 15f64.sqrt()).abs() < 1e-12);
    // A unit without a value drops out, with its links: the others are computed over four.
    let g = gi_star(&[Some(1.0), Some(2.0), None, Some(4.0), Some(10.0)], &nb);
    assert_eq!(g[2], None);
    // Grid 4 over {1, 2, 4, 10}: mean 4.25, var = (1+4+16+100)/4 - 4.25^2 = 12.1875,
    // W = 2, sum = 14: (14 - 8.5) / (sqrt(12.1875) * sqrt((8 - 4) / 3)).
    let want = 5.5 / (12.1875f64.sqrt() * (4.0f64 / 3.0).sqrt());
    assert!((g[4].unwrap() - want).abs() < 1e-12);
}

#[test]
fn queen_contiguity_on_the_sample_grids() {
    let dir = tempfile::tempdir().unwrap();
    shequ::sample::write_sample(
        dir.path(),
        &shequ::sample::SampleConfig {
            plant_problems: false,
            ..Default::default()
        },
    )
    .unwrap();
    let built = shequ::build(&Job::from_toml(dir.path().join("job.toml")).unwrap()).unwrap();
    let polys: Vec<_> = built
        .model
        .grids
        .iter()
        .map(|g| g.geometry.clone())
        .collect();
    let nb = shequ::analytics::hotspots::queen_neighbours(&polys, 0.01);
    // Neighbourhood is symmetric and every grid of the lattice touches at least two others.
    for (i, n) in nb.iter().enumerate() {
        assert!(n.len() >= 2, "grid {i}: {n:?}");
        for j in n {
            assert!(nb[*j].contains(&i));
        }
    }
    // Queen (shared corner) finds more pairs than rook would in a lattice: some grid has 5+.
    assert!(nb.iter().any(|n| n.len() >= 5));
}

#[test]
fn the_sample_job_writes_special_needs_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let job = Job::from_toml(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data-samples/sample-city/job.toml"),
    )
    .unwrap();
    assert!(
        job.special_needs.is_some(),
        "the bundled job asks for special needs"
    );
    let out = dir.path().join("out");
    shequ::run::run(&job, &out, &shequ::NoProgress).unwrap();
    for l in ["building", "grid", "community", "street"] {
        assert!(out.join(format!("special_needs/{l}.parquet")).is_file());
        assert!(out.join(format!("special_needs/{l}.geojson")).is_file());
    }
    let summary = std::fs::read_to_string(out.join("special_needs/summary.md")).unwrap();
    assert!(summary.contains("独居老人") && summary.contains("Gi*"));
    let grid = batches(&out.join("special_needs/grid.parquet")).remove(0);
    for c in [
        "disabled",
        "disabled_share",
        "elderly_alone_gi",
        "elderly_alone_hot",
        "old_age_dependency_ratio",
        "residents_per_km2",
        "suppressed",
    ] {
        assert!(grid.column_by_name(c).is_some(), "{c}");
    }
    let hot = grid.column_by_name("empty_nest_hot").unwrap();
    let hot = hot.as_any().downcast_ref::<BooleanArray>().unwrap();
    assert!(hot.len() == 28);
    // Research: no restricted category; every low-sensitivity count (people by age, the
    // empty-nest and oldest-old, defined by age and household make-up) published; every
    // published sensitive count 0 or at least k.
    let low = |name: &str| {
        ["households", "residents", "empty_nest", "oldest_old"].contains(&name)
            || name.starts_with("age_")
    };
    for b in batches(&out.join("special_needs/building.parquet")) {
        assert!(b.column_by_name("released_prisoner").is_none());
        for f in b.schema().fields() {
            if f.data_type() == &arrow_schema::DataType::UInt64 {
                let v = u64_col(&b, f.name());
                if low(f.name()) {
                    assert!(v.iter().all(Option::is_some), "{} published", f.name());
                } else {
                    assert!(
                        v.iter().flatten().all(|x| *x == 0 || *x >= 5),
                        "{}",
                        f.name()
                    );
                }
            }
        }
    }
}

#[test]
fn user_categories_and_the_restricted_tier() {
    let dir = tempfile::tempdir().unwrap();
    shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::default()).unwrap();
    let base = std::fs::read_to_string(dir.path().join("job.toml")).unwrap();
    let extra = r#"
[[special_needs.categories]]
id = "migrant"
zh = "流动人口"
en = "migrant resident"
tier = "care"
field = "人员类型"
values = ["流动"]

[[special_needs.categories]]
id = "watched"
zh = "重点人员"
en = "watched person"
tier = "restricted"
field = "人员类型"
values = ["流动"]
"#;
    let job = Job::from_toml_str(&format!("{base}{extra}"), dir.path()).unwrap();
    let built = shequ::build(&job).unwrap();
    let sn = SpecialNeeds::compute(&built, job.special_needs.as_ref().unwrap(), false).unwrap();
    assert!(sn.categories.iter().any(|c| c.id == "migrant"));
    assert!(!sn.categories.iter().any(|c| c.id == "watched"));
    let migrants = roster(dir.path())
        .iter()
        .filter(|r| r.len() > 7 && r[7] == "流动")
        .count() as u64;
    let streets = sn.per_unit(Layer::Street).collect().unwrap();
    let n = streets
        .column("migrant")
        .unwrap()
        .u64()
        .unwrap()
        .sum()
        .unwrap();
    assert!(n > 0 && n <= migrants);
    // Enabling the restricted tier in a research job is an error.
    let text = format!("{base}{extra}").replace(
        "[special_needs]\n",
        "[special_needs]\ninclude_restricted = true\n",
    );
    let e = Job::from_toml_str(&text, dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("restricted"), "{e}");
    // An operational job that allows it gets the column.
    let sn = SpecialNeeds::compute(&built, job.special_needs.as_ref().unwrap(), true).unwrap();
    assert!(sn.categories.iter().any(|c| c.id == "watched"));
    // A bad reference date is a job error.
    let text = base.replace("2026-01-01", "2026-13-01");
    assert!(
        Job::from_toml_str(&text, dir.path())
            .unwrap_err()
            .to_string()
            .contains("reference_date")
    );
}
