//! The bundled sample district: determinism, every planted problem, accounting, the CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use shequ::{IssueKind, Job, Layer, Severity};

/// The bundled sample's job file.
pub fn sample_job_path() -> PathBuf {
    sample_dir().join("job.toml")
}

fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data-samples/sample-city")
}

fn built() -> shequ::Build {
    let job = Job::from_toml(sample_dir().join("job.toml")).unwrap();
    shequ::build(&job).unwrap()
}

#[test]
fn bundled_sample_is_what_the_generator_writes() {
    let dir = tempfile::tempdir().unwrap();
    shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::default()).unwrap();
    for name in [
        "communities.geojson",
        "grids.geojson",
        "buildings.geojson",
        "facilities.geojson",
        "households.csv",
        "residents.csv",
        "job.toml",
        "events.csv",
        "visits.csv",
        "visit_rules.csv",
    ] {
        let a = std::fs::read(dir.path().join(name)).unwrap();
        let b = std::fs::read(sample_dir().join(name)).unwrap();
        assert!(
            a == b,
            "{name} differs from a fresh `shequ sample` (regenerate data-samples)"
        );
    }
}

#[test]
fn every_planted_problem_is_found() {
    let b = built();
    let r = &b.report;
    // Household and resident ids are masked in the report.
    let find = |layer: Layer, id: &str, kind: IssueKind| {
        let shown = match layer {
            Layer::Household | Layer::Resident => shequ::privacy::mask_identifier(id),
            _ => id.to_owned(),
        };
        r.for_layer(layer)
            .any(|i| i.id.as_deref() == Some(shown.as_str()) && i.kind == kind)
    };
    assert!(find(
        Layer::Building,
        "PLANTED-BOWTIE",
        IssueKind::InvalidGeometry
    ));
    assert!(find(
        Layer::Building,
        "PLANTED-UNKNOWN-GRID",
        IssueKind::UnknownParent
    ));
    assert!(find(
        Layer::Building,
        "PLANTED-CONFLICT",
        IssueKind::ParentConflict
    ));
    assert!(find(
        Layer::Building,
        "PLANTED-STRADDLE",
        IssueKind::CrossesParent
    ));
    assert!(find(
        Layer::Building,
        "PLANTED-OUTSIDE",
        IssueKind::OutsideParent
    ));
    assert!(find(
        Layer::Building,
        "PLANTED-NOGEOM",
        IssueKind::MissingGeometry
    ));
    assert!(find(
        Layer::Building,
        "50010300100101001",
        IssueKind::DuplicateId
    ));
    assert!(find(Layer::Household, "HX000001", IssueKind::Unlocated));
    assert!(find(Layer::Household, "HX000002", IssueKind::OutOfRange));
    assert!(find(Layer::Household, "HX000003", IssueKind::SwappedLatLon));
    assert!(find(Layer::Household, "HX000005", IssueKind::BadValue));
    assert!(find(
        Layer::Household,
        "HX000006",
        IssueKind::UnknownReference
    ));
    assert!(find(Layer::Household, "HX000007", IssueKind::OutsideParent));
    assert!(find(Layer::Household, "H0000001", IssueKind::DuplicateId));
    assert!(find(Layer::Resident, "RX0000002", IssueKind::BadIdNumber));
    assert!(find(Layer::Facility, "F-PLANTED-CAP", IssueKind::BadValue));
    assert!(find(
        Layer::Facility,
        "F-PLANTED-NOGEOM",
        IssueKind::MissingGeometry
    ));
    let grid_ids: Vec<&str> = b.model.grids.iter().map(|g| g.id.as_str()).collect();
    assert!(
        r.issues()
            .iter()
            .any(|i| i.kind == IssueKind::Overlap && i.layer == Layer::Grid)
    );
    assert!(
        r.issues()
            .iter()
            .any(|i| i.kind == IssueKind::Gap && i.layer == Layer::Community)
    );
    assert!(
        r.issues()
            .iter()
            .any(|i| i.kind == IssueKind::CrossesParent && i.layer == Layer::Grid)
    );
    assert_eq!(grid_ids.len(), 28);
    // Every kind the report knows occurs at least once.
    use IssueKind::*;
    for kind in [
        InvalidGeometry,
        MissingGeometry,
        DuplicateId,
        MissingId,
        UnknownParent,
        ParentConflict,
        Overlap,
        Gap,
        CrossesParent,
        OutsideParent,
        Unlocated,
        OutOfRange,
        SwappedLatLon,
        UnreadableRow,
        BadValue,
        UnknownReference,
    ] {
        assert!(r.count(kind) > 0, "no {kind} found");
    }
    // Resident identifiers never appear in plain form in the report.
    let residents = std::fs::read(sample_dir().join("residents.csv")).unwrap();
    let (text, _, _) = encoding_rs::GB18030.decode(&residents);
    let first_id = text
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    for i in r.for_layer(Layer::Resident) {
        assert_ne!(i.id.as_deref(), Some(first_id.as_str()));
        assert!(!i.detail.contains(&first_id));
    }
    assert!(r.for_layer(Layer::Resident).any(|i| i.kind == DuplicateId));
}

#[test]
fn every_row_is_accounted_for() {
    let b = built();
    b.report.check_accounting().unwrap();
    // Rows read, counted independently of shequ's readers.
    let features = |name: &str| -> usize {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(sample_dir().join(name)).unwrap()).unwrap();
        v["features"].as_array().unwrap().len()
    };
    let lines = |bytes: Vec<u8>| {
        bytes
            .split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .count()
            - 1
    };
    let c = b.report.counts();
    assert_eq!(c[&Layer::Community].read, features("communities.geojson"));
    assert_eq!(c[&Layer::Grid].read, features("grids.geojson"));
    assert_eq!(c[&Layer::Building].read, features("buildings.geojson"));
    assert_eq!(c[&Layer::Facility].read, features("facilities.geojson"));
    assert_eq!(
        c[&Layer::Household].read,
        lines(std::fs::read(sample_dir().join("households.csv")).unwrap())
    );
    assert_eq!(
        c[&Layer::Resident].read,
        lines(std::fs::read(sample_dir().join("residents.csv")).unwrap())
    );
    for (layer, n) in c {
        assert_eq!(n.read, n.placed + n.rejected, "{layer}");
        let rejected_rows: std::collections::BTreeSet<_> = b
            .report
            .for_layer(*layer)
            .filter(|i| i.severity == Severity::Rejected)
            .map(|i| i.index.unwrap())
            .collect();
        assert_eq!(rejected_rows.len(), n.rejected, "{layer}");
    }
    // Placed households sum to the grids' households.
    let placed = b.model.households.iter().filter(|h| h.placed).count();
    let tally = shequ::output::Tally::of(&b.model);
    let by_grid: u64 = tally
        .grids
        .iter()
        .map(|g| g[shequ::output::Tally::HOUSEHOLDS])
        .sum();
    assert_eq!(by_grid as usize, placed);
    let by_street: u64 = tally
        .streets
        .iter()
        .map(|s| s[shequ::output::Tally::RESIDENTS])
        .sum();
    assert_eq!(by_street as usize, b.model.residents.len());
}

fn shequ_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shequ"))
}

#[test]
fn cli_run_writes_every_output_and_embeds_proj_data() {
    let out = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    // No PROJ files anywhere: EPSG codes must resolve from the database embedded in the binary.
    let o = shequ_bin()
        .args(["run", "--quiet"])
        .arg(sample_dir().join("job.toml"))
        .arg("--out")
        .arg(out.path())
        .env("PROJ_DATA", empty.path())
        .env("PROJ_LIB", empty.path())
        .env_remove("PROJ_NETWORK")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("working CRS: EPSG:4545"), "{stdout}");
    for f in [
        "streets.parquet",
        "communities.parquet",
        "grids.parquet",
        "buildings.parquet",
        "facilities.parquet",
        "suppression.parquet",
        "quality.parquet",
        "manifest.json",
    ] {
        assert!(out.path().join(f).is_file(), "{f} missing");
    }
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["crs"]["working"], "EPSG:4545");
    assert_eq!(
        m["crs"]["working_name"],
        "CGCS2000 / 3-degree Gauss-Kruger CM 108E"
    );
    let b = built();
    for (layer, c) in b.report.counts() {
        assert_eq!(m["counts"][layer.name()]["read"], c.read, "{layer}");
        assert_eq!(m["counts"][layer.name()]["placed"], c.placed, "{layer}");
    }
    let inputs = m["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 6);
    assert!(
        inputs
            .iter()
            .all(|i| i["sha256"].as_str().unwrap().len() == 64)
    );
    // Research output: grid counts are published (with suppression) and add up to the
    // street's where nothing is suppressed.
    let grids = std::fs::File::open(out.path().join("grids.parquet")).unwrap();
    use polars::prelude::{ChunkAgg, SerReader};
    let df = polars::prelude::ParquetReader::new(grids).finish().unwrap();
    assert_eq!(df.height(), b.model.grids.len());
    let residents = df.column("residents").unwrap().u64().unwrap();
    assert_eq!(
        residents.null_count(),
        0,
        "sample grids are large enough to publish"
    );
    let tally = shequ::output::Tally::of(&b.model);
    let total: u64 = tally
        .grids
        .iter()
        .map(|g| g[shequ::output::Tally::RESIDENTS])
        .sum();
    assert_eq!(residents.sum().unwrap(), total);
    assert_eq!(m["privacy"]["output"], "research");
    assert_eq!(m["privacy"]["k"], 5);
}

#[test]
fn cli_reports_errors_with_location_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("job.toml"),
        "[layers.grids]\npath = \"missing.geojson\"\n",
    )
    .unwrap();
    let o = shequ_bin()
        .arg("validate")
        .arg(dir.path().join("job.toml"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("missing.geojson") && err.contains("layer grids"),
        "{err}"
    );
}

#[test]
fn cli_sample_generates_a_runnable_district() {
    let dir = tempfile::tempdir().unwrap();
    let o = shequ_bin()
        .args([
            "sample",
            "--quiet",
            "--households",
            "500",
            "--communities",
            "2",
            "--seed",
            "9",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let job = Job::from_toml(dir.path().join("job.toml")).unwrap();
    let b = shequ::build(&job).unwrap();
    assert_eq!(b.model.communities.len(), 2);
    assert_eq!(b.model.grids.len(), 8);
    b.report.check_accounting().unwrap();
}

#[test]
fn sample_is_the_same_on_any_number_of_threads() {
    // Grids and resident chunks are generated in parallel from their own generator streams:
    // the files must not depend on how the work is split.
    let cfg = shequ::sample::SampleConfig {
        households: 30_000,
        communities: 3,
        ..shequ::sample::SampleConfig::default()
    };
    let write = |threads: usize| {
        let dir = tempfile::tempdir().unwrap();
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| shequ::sample::write_sample(dir.path(), &cfg))
            .unwrap();
        dir
    };
    let (one, three) = (write(1), write(3));
    for f in [
        "households.csv",
        "residents.csv",
        "buildings.geojson",
        "facilities.geojson",
    ] {
        let a = std::fs::read(one.path().join(f)).unwrap();
        let b = std::fs::read(three.path().join(f)).unwrap();
        assert!(a == b, "{f} differs between 1 and 3 threads");
    }
    // Grids hold about the same number of households each (none is left with the rounding):
    // a building code starts with its grid's code (14 digits).
    let hh = std::fs::read_to_string(one.path().join("households.csv")).unwrap();
    let mut per_grid: std::collections::BTreeMap<&str, usize> = Default::default();
    for line in hh.lines().skip(1) {
        let building = line.split(',').nth(1).unwrap_or("");
        if building.len() > 14 && building.bytes().all(|b| b.is_ascii_digit()) {
            *per_grid.entry(&building[..14]).or_default() += 1;
        }
    }
    assert_eq!(per_grid.len(), 12);
    let mean = per_grid.values().sum::<usize>() as f64 / per_grid.len() as f64;
    for (grid, n) in &per_grid {
        assert!(
            (*n as f64) > 0.7 * mean && (*n as f64) < 1.3 * mean,
            "{grid}: {n} vs {mean}"
        );
    }
}
