//! The differentially private release (`output = "research-dp"`, issue 21).

use std::collections::HashMap;
use std::path::Path;

use shequ::output::release::{CountColumns, Release};
use shequ::privacy::dp::sample::mass_within;
use shequ::privacy::dp::{DpOptions, Mechanism, Plan, apportion};
use shequ::privacy::{OutputKind, Policy, Secret};
use shequ::{Job, Layer, PrivacyOptions};

use crate::privacy::{Keyed, all_output_text, identifiers, leaks, level_rows, sample_job};

const KEY: &str = "a noise key of enough bytes for the tests";

/// The sample job as a research-dp job with budget `rho`, keyed by `KEY` in `dir`.
fn dp_job(dir: &Path, rho: f64, release: &str) -> Job {
    let mut job = sample_job(dir);
    std::fs::write(dir.join("noise.key"), KEY).unwrap();
    let mut p = PrivacyOptions::research();
    p.output = OutputKind::ResearchDp;
    p.secret_file = Some("noise.key".into());
    p.dp = Some(DpOptions {
        rho: Some(rho),
        release: release.into(),
        ..DpOptions::default()
    });
    job.privacy = Some(p);
    job
}

fn dp_policy(options: DpOptions) -> Policy {
    let mut p = Policy::research(5);
    p.kind = OutputKind::ResearchDp;
    p.dp = Some(Plan::new(options, &Secret::from_bytes(KEY.as_bytes()).unwrap()).unwrap());
    p
}

#[test]
fn the_error_of_many_releases_follows_the_stated_distribution() {
    let dir = tempfile::tempdir().unwrap();
    let job = sample_job(dir.path());
    let built = shequ::build(&job).unwrap();
    let truth = CountColumns::base(&built.model);
    for mechanism in [Mechanism::Gaussian, Mechanism::Laplace] {
        let (mut errors, mut within, mut scale, mut ci95) = (Vec::new(), 0usize, 0.0, 0);
        for release in 0..300 {
            let options = DpOptions {
                mechanism,
                rho: (mechanism == Mechanism::Gaussian).then_some(0.5),
                epsilon: (mechanism == Mechanism::Laplace).then_some(1.0),
                release: release.to_string(),
                ..DpOptions::default()
            };
            let r =
                Release::with_columns(&built.model, &dp_policy(options), truth.clone()).unwrap();
            let noise = r.noise().unwrap();
            // The street's counts (the root: published as noisy, never clamped at these
            // sizes) of households, residents, male and female.
            for c in 0..4 {
                let stated = noise
                    .noise
                    .iter()
                    .find(|n| n.level == "street" && n.column == c)
                    .unwrap();
                (scale, ci95) = (stated.scale, stated.ci95);
                let published = r.count(Layer::Street, 0, &truth.names[c]).unwrap() as i64;
                let e = published - truth.values[0][0][c] as i64;
                within += usize::from(e.unsigned_abs() <= stated.ci95);
                errors.push(e as f64);
            }
        }
        let n = errors.len() as f64;
        let share = within as f64 / n;
        let mean = errors.iter().sum::<f64>() / n;
        let var = errors.iter().map(|e| e * e).sum::<f64>() / n;
        // The discrete distributions' variances: σ² (Gaussian, close for σ ≥ 1) and
        // 2q/(1−q)² with q = exp(−1/s) (Laplace).
        let expected = match mechanism {
            Mechanism::Gaussian => scale * scale,
            Mechanism::Laplace => {
                let q = (-1.0 / scale).exp();
                2.0 * q / (1.0 - q).powi(2)
            }
        };
        eprintln!(
            "{mechanism:?}: scale {scale}, ci95 {ci95}, share within {share}, var {var} vs {expected}"
        );
        // The stated interval holds at least 95% (more: the distributions are discrete).
        let p = mass_within(mechanism == Mechanism::Gaussian, scale, ci95);
        assert!(p >= 0.95);
        let tolerance = 4.0 * (p * (1.0 - p) / n).sqrt();
        assert!(
            (share - p).abs() <= tolerance,
            "{mechanism:?}: {share} vs {p}"
        );
        assert!(
            mean.abs() < 4.0 * (expected / n).sqrt(),
            "{mechanism:?}: mean {mean}"
        );
        assert!(
            (var / expected - 1.0).abs() < 0.15,
            "{mechanism:?}: {var} vs {expected}"
        );
    }
}

/// Every row's children (and remainder) add up to it, in every column; every value is a
/// non-negative integer (UInt64, never null).
fn assert_consistent(rows: &Keyed, cols: &[String], label: &str) {
    let mut sums: HashMap<(String, String), Vec<u64>> = HashMap::new();
    for (key, (parent, values)) in rows {
        for v in values {
            assert!(v.is_some(), "{label}: {key:?} has a null count");
        }
        if let Some(p) = parent {
            let e = sums.entry(p.clone()).or_insert_with(|| vec![0; cols.len()]);
            for (s, v) in e.iter_mut().zip(values) {
                *s += v.unwrap();
            }
        }
    }
    assert!(!sums.is_empty());
    for (p, s) in &sums {
        let own = &rows[p].1;
        for (c, (a, b)) in own.iter().zip(s).enumerate() {
            assert_eq!(a.unwrap(), *b, "{label}: children of {p:?} in {}", cols[c]);
        }
    }
}

#[test]
fn a_release_adds_up_is_reproducible_and_spends_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let job = dp_job(dir.path(), 1.0, "2026-12");
    let out = dir.path().join("a");
    let (_, summary) = shequ::run::run(&job, &out, &shequ::NoProgress).unwrap();
    // Children add up to parents at every level, in the special-needs and coverage tables.
    let special: Vec<String> = [
        "households",
        "residents",
        "disabled",
        "elderly_alone",
        "empty_nest",
        "disabled_physical",
        "age_80_plus",
    ]
    .map(String::from)
    .to_vec();
    assert_consistent(
        &level_rows(&out, "special_needs", &special),
        &special,
        "special",
    );
    let coverage: Vec<String> = [
        "clinic_all_within_300m",
        "rehabilitation_disabled_within_500m",
    ]
    .map(String::from)
    .to_vec();
    assert_consistent(
        &level_rows(&out, "coverage", &coverage),
        &coverage,
        "coverage",
    );
    // Nothing is suppressed: there is no suppression table and no `suppressed` column.
    assert!(!out.join("suppression.parquet").exists());
    assert!(
        crate::fixtures::read_batches(&out.join("grids.parquet"))[0]
            .column_by_name("suppressed")
            .is_none()
    );
    // Every table states the error of its counts: the geo metadata of the GeoParquet file and
    // a member of the GeoJSON file, as dp_accuracy.parquet has it.
    let accuracy = crate::fixtures::read_batches(&out.join("dp_accuracy.parquet"));
    let text = |b: &arrow_array::RecordBatch, n: &str, i: usize| {
        b.column_by_name(n)
            .unwrap()
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap()
            .value(i)
            .to_owned()
    };
    let stated = |level: &str, column: &str| -> u64 {
        let b = &accuracy[0];
        let ci = b
            .column_by_name("ci95_half_width")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow_array::UInt64Array>()
            .unwrap();
        (0..b.num_rows())
            .find(|i| text(b, "level", *i) == level && text(b, "column", *i) == column)
            .map(|i| ci.value(i))
            .unwrap()
    };
    let file = std::fs::File::open(out.join("special_needs/grid.parquet")).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
    let kv = parquet::file::reader::FileReader::metadata(&reader)
        .file_metadata()
        .key_value_metadata()
        .unwrap()
        .iter()
        .find(|kv| kv.key == "geo")
        .and_then(|kv| kv.value.clone())
        .unwrap();
    let geo: serde_json::Value = serde_json::from_str(&kv).unwrap();
    let table = &geo["columns"]["geometry"]["shequ:dp_accuracy"];
    assert_eq!(
        table["disabled"]["ci95_half_width"],
        stated("grid", "disabled")
    );
    assert_eq!(
        table["residents"]["ci95_half_width"],
        stated("grid", "residents")
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("grids.geojson")).unwrap()).unwrap();
    assert_eq!(
        json["shequ:dp_accuracy"]["residents"]["ci95_half_width"],
        stated("grid", "residents")
    );
    // The manifest's budget adds up; no split spends more than it is given.
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let dp = &m["privacy"]["dp"];
    assert_eq!(dp["budget"], 1.0);
    let split = dp["split"].as_array().unwrap();
    assert_eq!(split.len(), 4 * 3, "four levels, three tables");
    let allotted: f64 = split.iter().map(|s| s["allotted"].as_f64().unwrap()).sum();
    assert!((allotted - 1.0).abs() < 1e-12, "{allotted}");
    for s in split {
        assert!(s["spent"].as_f64().unwrap() <= s["allotted"].as_f64().unwrap());
    }
    assert!(dp["spent_total"].as_f64().unwrap() <= 1.0);
    assert!(
        m["counts"].is_null(),
        "no exact counts in a noisy release's manifest"
    );
    // The run reports the error against the truth; no file holds it.
    assert_eq!(summary.written.dp_errors.len(), 12);
    assert!(
        summary
            .written
            .dp_errors
            .iter()
            .all(|e| e.mean_abs_error > 0.0)
    );
    // The same key and label: the same release. Another label: another.
    let again = dir.path().join("b");
    shequ::run::run(&job, &again, &shequ::NoProgress).unwrap();
    let other = dir.path().join("c");
    shequ::run::run(
        &dp_job(dir.path(), 1.0, "2027-01"),
        &other,
        &shequ::NoProgress,
    )
    .unwrap();
    let grid = |o: &Path| level_rows(o, "special_needs", &special);
    assert_eq!(grid(&out), grid(&again));
    assert_ne!(grid(&out), grid(&other));
}

#[test]
fn a_noisy_release_holds_no_identifier_and_no_exact_only_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let job = dp_job(dir.path(), 0.5, "scan");
    let out = dir.path().join("out");
    shequ::run::run(&job, &out, &shequ::NoProgress).unwrap();
    let ids = identifiers(dir.path());
    for (p, texts) in &all_output_text(&out) {
        let found = leaks(texts, &ids);
        assert!(found.is_empty(), "{}: {found:?}", p.display());
    }
    for f in [
        "households.parquet",
        "residents.parquet",
        "coverage/siting.parquet",
    ] {
        assert!(!out.join(f).exists(), "{f}");
    }
    // Rates come from the noisy counts only.
    let sn = crate::fixtures::read_batches(&out.join("special_needs/grid.parquet"));
    let col = |n: &str| -> Vec<f64> {
        let c = sn[0].column_by_name(n).unwrap();
        match c.as_any().downcast_ref::<arrow_array::UInt64Array>() {
            Some(u) => u.values().iter().map(|v| *v as f64).collect(),
            None => c
                .as_any()
                .downcast_ref::<arrow_array::Float64Array>()
                .unwrap()
                .values()
                .to_vec(),
        }
    };
    let (d, r, share) = (col("disabled"), col("residents"), col("disabled_share"));
    for i in 0..d.len() {
        assert!((share[i] - d[i] / r[i]).abs() < 1e-12);
    }
    // Means and scores need exact data: null in a noisy release.
    let grid = crate::fixtures::read_batches(&out.join("coverage/grid.parquet"));
    for b in &grid {
        for (f, c) in b.schema().fields().iter().zip(b.columns()) {
            if f.name().contains("nearest") || f.name().contains("2sfca") {
                assert_eq!(c.null_count(), c.len(), "{}", f.name());
            }
        }
    }
}

#[test]
fn the_budget_and_its_mechanism_are_checked_when_the_job_is_read() {
    let dir = tempfile::tempdir().unwrap();
    shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(3)).unwrap();
    let base = std::fs::read_to_string(dir.path().join("job.toml")).unwrap();
    for (section, needle) in [
        ("output = \"research-dp\"\n", "[privacy.dp]"),
        ("output = \"research-dp\"\n[privacy.dp]\nrho = -1\n", "rho"),
        (
            "output = \"research-dp\"\n[privacy.dp]\nmechanism = \"laplace\"\nrho = 1\n",
            "epsilon",
        ),
        (
            "output = \"research-dp\"\n[privacy.dp]\nepsilon = 1\n",
            "delta",
        ),
        (
            "output = \"research-dp\"\n[privacy.dp]\nrho = 1\nlevels = { floor = 1 }\n",
            "floor",
        ),
        (
            "output = \"research\"\n[privacy.dp]\nrho = 1\n",
            "research-dp",
        ),
    ] {
        let text = base.replace("output = \"research\"\nk = 5\n", section);
        assert_ne!(text, base);
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let e = Job::from_toml(&path).unwrap_err().to_string();
        assert!(e.contains(needle), "{section}: {e}");
    }
}

#[test]
fn apportioning_keeps_the_total_and_stays_close() {
    // Exhaustive small cases: the result adds up, is non-negative, and no move of one unit
    // between two children brings it closer to the noisy counts.
    for total in 0..12u64 {
        for a in -4i64..10 {
            for b in -4i64..10 {
                for c in [-2i64, 0, 3] {
                    let y = [a, b, c];
                    let x = apportion(total, &y);
                    assert_eq!(x.iter().sum::<u64>(), total);
                    let d = |x: &[u64]| -> f64 {
                        x.iter()
                            .zip(&y)
                            .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
                            .sum()
                    };
                    for i in 0..3 {
                        for j in 0..3 {
                            if i != j && x[i] > 0 {
                                let mut z = x.clone();
                                z[i] -= 1;
                                z[j] += 1;
                                assert!(d(&z) >= d(&x) - 1e-9, "{total} {y:?}: {x:?} vs {z:?}");
                            }
                        }
                    }
                }
            }
        }
    }
}
