//! Sensitivity classes, the optimal complementary pass and the information research outputs
//! keep (issue 21).

use std::path::Path;

use arrow_array::{Array, UInt64Array};
use arrow_schema::DataType;
use proptest::prelude::*;
use shequ::analytics::special_needs::DetailLevel;
use shequ::privacy::optimal;
use shequ::privacy::suppress::{Group, Method, Table, Threshold};
use shequ::{Job, PrivacyOptions};

use crate::fixtures::read_batches;
use crate::privacy::{random_table, rank_attack, relations, subtraction_attack};

/// The bundled sample's job.
fn sample_job() -> Job {
    Job::from_toml(Path::new(env!("CARGO_MANIFEST_DIR")).join("data-samples/sample-city/job.toml"))
        .unwrap()
}

fn research(job: &Job) -> &PrivacyOptions {
    job.privacy.as_ref().unwrap()
}

/// Of the count columns (UInt64) of a table: (published cells, all cells), and per column
/// the number hidden.
fn published(path: &Path) -> (usize, usize, Vec<(String, usize)>) {
    let (mut p, mut all, mut hidden) = (0, 0, Vec::new());
    for b in read_batches(path) {
        for (f, c) in b.schema().fields().iter().zip(b.columns()) {
            if f.data_type() == &DataType::UInt64 {
                all += c.len();
                p += c.len() - c.null_count();
                hidden.push((f.name().clone(), c.null_count()));
            }
        }
    }
    (p, all, hidden)
}

fn column(path: &Path, name: &str) -> Vec<Option<u64>> {
    read_batches(path)
        .iter()
        .flat_map(|b| {
            let c = b
                .column_by_name(name)
                .unwrap_or_else(|| panic!("{name}"))
                .as_any()
                .downcast_ref::<UInt64Array>()
                .unwrap()
                .clone();
            (0..c.len()).map(move |i| c.is_valid(i).then(|| c.value(i)))
        })
        .collect()
}

#[test]
fn the_sample_publishes_every_low_count_and_most_of_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let job = sample_job();
    assert_eq!(research(&job).k, 5);
    let out = dir.path().join("out");
    let (_, summary) = shequ::run::run(&job, &out, &shequ::NoProgress).unwrap();
    // Every low-sensitivity grid count is published: people and households by place, sex and
    // age; empty-nest and oldest-old; coverage of all residents.
    for (file, low) in [
        (
            "grids.parquet",
            vec!["households", "residents", "residents_male"],
        ),
        (
            "special_needs/grid.parquet",
            vec![
                "households",
                "residents",
                "age_0_14",
                "age_60_plus",
                "age_80_plus",
                "empty_nest",
                "oldest_old",
            ],
        ),
        (
            "coverage/grid.parquet",
            vec![
                "clinic_all_within_300m",
                "clinic_all_network_within_300m",
                "activity_centre_all_within_300m",
                "clinic_all_within_1000m",
            ],
        ),
    ] {
        for c in low {
            let v = column(&out.join(file), c);
            assert_eq!(v.len(), 28);
            assert!(v.iter().all(Option::is_some), "{file} {c}");
        }
    }
    // At least 85% of the grid-level count cells of both tables are published.
    let (p1, a1, _) = published(&out.join("special_needs/grid.parquet"));
    let (p2, a2, _) = published(&out.join("coverage/grid.parquet"));
    let share = (p1 + p2) as f64 / (a1 + a2) as f64;
    assert!(
        p1 as f64 >= 0.85 * a1 as f64,
        "special_needs/grid {p1}/{a1}"
    );
    assert!(p2 as f64 >= 0.85 * a2 as f64, "coverage/grid {p2}/{a2}");
    assert!(share >= 0.85, "{share}");
    // The run reports the same shares (its own count of released cells).
    let grid = summary
        .written
        .published
        .iter()
        .find(|p| p.table == "coverage/grid")
        .unwrap();
    assert_eq!(grid.cells, 28 * 24);
    assert!(grid.share() >= 0.85);
    // Sensitive counts are still protected: something is hidden, and every published one
    // is 0 or at least k.
    let (_, _, hidden) = published(&out.join("special_needs/grid.parquet"));
    assert!(hidden.iter().any(|(_, n)| *n > 0));
    for c in [
        "elderly_alone",
        "minimum_living_allowance",
        "elderly_alone_and_disabled",
    ] {
        let v = column(&out.join("special_needs/grid.parquet"), c);
        assert!(v.iter().flatten().all(|x| *x == 0 || *x >= 5), "{c}");
    }
    // The manifest records the rule and the shares.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["privacy"]["k_low"], 0);
    let shares = manifest["privacy"]["published_cells"].as_array().unwrap();
    assert!(shares.iter().any(|s| s["table"] == "special_needs/grid"));
}

#[test]
fn disability_detail_stops_at_the_community_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut job = sample_job();
    let out = dir.path().join("default");
    shequ::run::run(&job, &out, &shequ::NoProgress).unwrap();
    let has = |out: &Path, file: &str, c: &str| {
        read_batches(&out.join(file))[0].column_by_name(c).is_some()
    };
    assert!(has(
        &out,
        "special_needs/community.parquet",
        "disabled_physical"
    ));
    assert!(has(&out, "special_needs/grid.parquet", "disabled"));
    assert!(!has(
        &out,
        "special_needs/grid.parquet",
        "disabled_physical"
    ));
    assert!(!has(
        &out,
        "special_needs/building.parquet",
        "disabled_grade_1"
    ));
    // Withheld cells are listed nowhere as suppressed.
    let sup = read_batches(&out.join("special_needs/suppression.parquet"));
    for b in &sup {
        let level = b.column_by_name("level").unwrap();
        let level = level
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        let col = b.column_by_name("column").unwrap();
        let col = col
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        for i in 0..b.num_rows() {
            assert!(
                !(level.value(i) == "grids" && col.value(i).starts_with("disabled_p")),
                "a withheld cell is listed"
            );
        }
    }
    // Asked for: the breakdown reaches the grids (and is mostly suppressed there).
    job.special_needs.as_mut().unwrap().disability_detail_finest = DetailLevel::Grid;
    let out = dir.path().join("grid");
    shequ::run::run(&job, &out, &shequ::NoProgress).unwrap();
    assert!(has(&out, "special_needs/grid.parquet", "disabled_physical"));
    assert!(!has(
        &out,
        "special_needs/building.parquet",
        "disabled_physical"
    ));
}

#[test]
fn k_low_and_suppress_zeros_are_the_jobs_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let mut job = sample_job();
    let p = job.privacy.as_mut().unwrap();
    p.k_low = 5;
    p.suppress_zeros = true;
    let out = dir.path().join("out");
    shequ::run::run(&job, &out, &shequ::NoProgress).unwrap();
    // Small low-sensitivity building counts are now hidden, and zeros of sensitive ones.
    let oldest = column(&out.join("special_needs/building.parquet"), "age_80_plus");
    assert!(oldest.iter().any(Option::is_none));
    assert!(oldest.iter().flatten().all(|x| *x >= 5));
    let alone = column(&out.join("special_needs/building.parquet"), "elderly_alone");
    assert!(alone.iter().flatten().all(|x| *x >= 5));
    // Refused: a k_low above k.
    let mut job = sample_job();
    let text = std::fs::read_to_string(job.source.take().unwrap()).unwrap();
    let bad = text.replace("k = 5\n", "k = 5\nk_low = 6\n");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, bad).unwrap();
    let e = Job::from_toml(&path).unwrap_err().to_string();
    assert!(e.contains("k_low"), "{e}");
}

/// The complementary cells (hidden, not primary) of a research run with `method`.
fn complementary(job: &Job, method: Method, dir: &Path) -> usize {
    let mut job = job.clone();
    job.privacy.as_mut().unwrap().complementary = method;
    let out = dir.join(format!("{method:?}"));
    let (_, s) = shequ::run::run(&job, &out, &shequ::NoProgress).unwrap();
    s.written.suppressed.unwrap().1
}

#[test]
fn the_optimal_pass_hides_fewer_cells_than_the_heuristic() {
    let dir = tempfile::tempdir().unwrap();
    let job = sample_job();
    let heuristic = complementary(&job, Method::Heuristic, dir.path());
    let optimal = complementary(&job, Method::Optimal, dir.path());
    eprintln!("sample: heuristic {heuristic}, optimal {optimal}");
    assert!(optimal < heuristic, "sample: {optimal} vs {heuristic}");
    // A generated district twice the sample's size, with another seed and five communities.
    let gen_dir = dir.path().join("generated");
    let cfg = shequ::sample::SampleConfig {
        households: 8_000,
        seed: 5,
        communities: 5,
        ..shequ::sample::SampleConfig::default()
    };
    shequ::sample::write_sample(&gen_dir, &cfg).unwrap();
    let job = Job::from_toml(gen_dir.join("job.toml")).unwrap();
    let heuristic = complementary(&job, Method::Heuristic, &gen_dir);
    let optimal = complementary(&job, Method::Optimal, &gen_dir);
    eprintln!("generated: heuristic {heuristic}, optimal {optimal}");
    assert!(optimal < heuristic, "generated: {optimal} vs {heuristic}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// On random hierarchies (a total split two ways, and a free column), with per-column
    /// thresholds: the optimal pass hides no more than the heuristic, hides every unsafe
    /// count, and no hidden cell can be recovered by subtraction or linear algebra.
    #[test]
    fn optimal_never_hides_more_and_withstands_attack(
        seed in any::<u64>(),
        k in 2u64..8,
        zeros_unsafe in any::<bool>(),
    ) {
        let rt = random_table(seed);
        let mut t = Table::new(["total", "a1", "a2", "a3", "b1", "b2", "other"]);
        for (p, v) in rt.parents.iter().zip(&rt.values) {
            t.add_row(*p, v.iter().copied()).unwrap();
        }
        let groups = vec![(0usize, vec![1usize, 2, 3]), (0, vec![4, 5])];
        for (total, parts) in groups.clone() {
            t.add_group(Group { total, parts }).unwrap();
        }
        // The grouped columns low (k_low = 1), the free column sensitive.
        let mut th = vec![Threshold { k: 1, zeros_unsafe }; 6];
        th.push(Threshold { k, zeros_unsafe });
        let h = t.suppress_with(&th, Method::Heuristic).unwrap();
        let o = t.suppress_with(&th, Method::Optimal).unwrap();
        let ncols = 7;
        let count = |s: &shequ::privacy::suppress::Suppressed| {
            (0..rt.values.len() * ncols).filter(|c| s.is_hidden(c / ncols, c % ncols)).count()
        };
        prop_assert!(count(&o) <= count(&h), "{} > {}", count(&o), count(&h));
        prop_assert_eq!(o.count(true), h.count(true));
        let truth: Vec<i64> = rt.values.iter().flatten().map(|v| *v as i64).collect();
        let hidden: Vec<bool> = (0..truth.len()).map(|c| o.is_hidden(c / ncols, c % ncols)).collect();
        for (c, v) in truth.iter().enumerate() {
            prop_assert!(!th[c % ncols].is_unsafe(*v as u64) || hidden[c], "unsafe {v} published");
        }
        let rels = relations(&rt.parents, ncols, &groups);
        let sub = subtraction_attack(&rels, &truth, &hidden);
        prop_assert!(sub.is_empty(), "recovered by subtraction: {sub:?}");
        let alg = rank_attack(&rels, &hidden);
        prop_assert!(alg.is_empty(), "determined by linear algebra: {alg:?}");
    }

    /// The combinatorial check agrees with exact linear algebra on one column: a hidden
    /// cell is protected exactly when the rank attack cannot determine it.
    #[test]
    fn the_cycle_check_is_the_rank_test(seed in any::<u64>(), mask in any::<u64>()) {
        let rt = random_table(seed);
        let n = rt.parents.len();
        let hidden: Vec<bool> = (0..n).map(|r| mask >> (r % 64) & 1 == 1).collect();
        let rels = relations(&rt.parents, 1, &[]);
        let determined = rank_attack(&rels, &hidden);
        prop_assert_eq!(optimal::protected(&rt.parents, &hidden), determined.is_empty());
    }
}

/// Small tables with groups (a total split two ways) are solved exactly: never more cells
/// than the heuristic, fewer on some, and nothing recoverable.
#[test]
fn small_grouped_tables_are_solved_exactly() {
    let groups = vec![(0usize, vec![1usize, 2, 3]), (0, vec![4, 5])];
    let (mut small, mut fewer) = (0, 0);
    for seed in 0..400u64 {
        let rt = random_table(seed);
        if rt.parents.len() * 6 > optimal::MAX_SMALL_CELLS {
            continue;
        }
        small += 1;
        let mut t = Table::new(["total", "a1", "a2", "a3", "b1", "b2"]);
        for (p, v) in rt.parents.iter().zip(&rt.values) {
            t.add_row(*p, v[..6].iter().copied()).unwrap();
        }
        for (total, parts) in groups.clone() {
            t.add_group(Group { total, parts }).unwrap();
        }
        let th = vec![Threshold::strict(5); 6];
        let count = |s: &shequ::privacy::suppress::Suppressed| {
            (0..rt.parents.len() * 6)
                .filter(|c| s.is_hidden(c / 6, c % 6))
                .count()
        };
        let h = t.suppress_with(&th, Method::Heuristic).unwrap();
        let o = t.suppress_with(&th, Method::Optimal).unwrap();
        assert!(count(&o) <= count(&h), "seed {seed}");
        fewer += usize::from(count(&o) < count(&h));
        let hidden: Vec<bool> = (0..rt.parents.len() * 6)
            .map(|c| o.is_hidden(c / 6, c % 6))
            .collect();
        let truth: Vec<i64> = rt
            .values
            .iter()
            .flat_map(|v| v[..6].iter().map(|x| *x as i64))
            .collect();
        let rels = relations(&rt.parents, 6, &groups);
        assert!(
            subtraction_attack(&rels, &truth, &hidden).is_empty(),
            "seed {seed}"
        );
        assert!(rank_attack(&rels, &hidden).is_empty(), "seed {seed}");
    }
    eprintln!("{small} small tables, {fewer} with fewer cells");
    assert!(small > 50 && fewer > 0, "{small} small, {fewer} fewer");
}
