//! The people stage reads the roster in chunks: every output is the same for any chunk size
//! (values, suppression pattern, quality report, manifest counts).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use shequ::io::chunks::ChunkRows;
use shequ::{Job, NoProgress};

/// The chunk sizes compared: one row, a prime, a round number, the whole roster.
const SIZES: [&str; 4] = ["1", "997", "100000", "all"];

/// Every file a run of `job` writes with `chunk` rows per chunk, by path. The manifest is
/// compared without what differs between any two runs (times, the chunk size itself).
fn outputs(job: &Job, chunk: &str, out: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut job = job.clone();
    job.options.chunk_rows = chunk.parse::<ChunkRows>().expect("chunk size");
    shequ::run::run(&job, out, &NoProgress).expect("run");
    crate::parts::output_files(out, |m| {
        crate::parts::without_times(m);
        m["job"]["options"]
            .as_object_mut()
            .expect("options")
            .remove("chunk_rows");
    })
}

/// Runs `job` at every chunk size and checks the outputs are identical.
fn same_for_every_size(job: &Job, tmp: &Path) -> usize {
    same_for_sizes(job, tmp, &SIZES)
}

/// Runs `job` at each of `sizes` and checks the outputs are identical.
fn same_for_sizes(job: &Job, tmp: &Path, sizes: &[&str]) -> usize {
    let first = outputs(job, sizes[0], &tmp.join("c0"));
    assert!(first.contains_key("grids.parquet") && first.contains_key("quality.parquet"));
    for (k, size) in sizes.iter().enumerate().skip(1) {
        let other = outputs(job, size, &tmp.join(format!("c{k}")));
        assert_eq!(
            first.keys().collect::<Vec<_>>(),
            other.keys().collect::<Vec<_>>(),
            "chunk size {size}: the files written"
        );
        for (name, bytes) in &first {
            assert!(
                &other[name] == bytes,
                "{name} differs between chunk sizes {} and {size}",
                sizes[0]
            );
        }
    }
    first.len()
}

fn sample_city() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data-samples/sample-city")
}

#[test]
fn sample_city_outputs_do_not_depend_on_the_chunk_size() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let job = Job::from_toml(sample_city().join("job.toml")).expect("job");
    let n = same_for_every_size(&job, tmp.path());
    assert!(n > 30, "the research job writes its tables ({n})");
    // The differentially private release: the noise is drawn per unit, not per chunk.
    let mut dp = Job::from_toml(sample_city().join("job-dp.toml")).expect("job");
    let key = tmp.path().join("noise.key");
    std::fs::write(&key, "a noise key for the chunk test 2026").expect("key");
    if let Some(p) = dp.privacy.as_mut() {
        p.secret_file = Some(key);
    }
    same_for_every_size(&dp, &tmp.path().join("dp"));
}

#[test]
fn operational_lists_do_not_depend_on_the_chunk_size() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut job = Job::from_toml(sample_city().join("job-grid-worker.toml")).expect("job");
    let key = tmp.path().join("key");
    std::fs::write(&key, "the grid worker's secret key 2026").expect("key");
    if let Some(p) = job.privacy.as_mut() {
        p.secret_file = Some(key);
    }
    same_for_every_size(&job, tmp.path());
}

/// A generated district of 100,000 households (about 268,000 residents, with every kind of
/// planted problem): the chunks cross households, duplicate ids fall in different chunks.
#[test]
fn a_district_of_100000_households_is_the_same_in_any_chunks() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let cfg = shequ::sample::SampleConfig {
        households: 100_000,
        ..Default::default()
    };
    let data = tmp.path().join("data");
    shequ::sample::write_sample(&data, &cfg).expect("sample");
    let job = Job::from_toml(data.join("job.toml")).expect("job");
    let reports: Vec<_> = ["997", "all"]
        .iter()
        .map(|c| {
            let mut j = job.clone();
            j.options.chunk_rows = c.parse().expect("size");
            shequ::build(&j).expect("build").report
        })
        .collect();
    let duplicates = reports[0]
        .issues()
        .iter()
        .filter(|i| i.kind == shequ::IssueKind::DuplicateId)
        .count();
    assert!(duplicates > 0, "the district has repeated ids to find");
    assert_eq!(reports[0].issues(), reports[1].issues());
    same_for_every_size(&job, &tmp.path().join("runs"));
}

/// A Parquet roster of several row groups is read by row ranges: chunks that start and end
/// inside row groups give the same outputs as one chunk.
#[test]
fn a_parquet_roster_is_the_same_in_any_chunks() {
    use polars::prelude::ParquetWriter;
    let tmp = tempfile::tempdir().expect("temp dir");
    let cfg = shequ::sample::SampleConfig {
        households: 3000,
        ..Default::default()
    };
    let data = tmp.path().join("data");
    shequ::sample::write_sample(&data, &cfg).expect("sample");
    let csv = data.join("residents.csv");
    let enc = shequ::io::table::Encoding::Auto;
    let header = shequ::io::chunks::TableChunks::open("residents", &csv, &[], &[], &[], enc, 1)
        .expect("header")
        .header()
        .to_vec();
    let columns: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut df = shequ::io::table::read_table("residents", &csv, &columns, enc)
        .expect("roster")
        .frame;
    assert!(df.height() > 5000);
    ParquetWriter::new(std::fs::File::create(data.join("residents.parquet")).expect("file"))
        .with_row_group_size(Some(700))
        .finish(&mut df)
        .expect("parquet");
    let text = std::fs::read_to_string(data.join("job.toml"))
        .expect("job")
        .replace("path = \"residents.csv\"", "path = \"residents.parquet\"");
    std::fs::write(data.join("job.toml"), text).expect("job");
    let job = Job::from_toml(data.join("job.toml")).expect("job");
    assert!(
        job.layers
            .residents
            .as_ref()
            .expect("residents")
            .path
            .ends_with("residents.parquet")
    );
    same_for_sizes(&job, &tmp.path().join("runs"), &["333", "997", "all"]);
}
