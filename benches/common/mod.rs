//! A generated district shared by the benchmarks.

use shequ::sample::{SampleConfig, write_sample};

/// Households to generate: `SHEQU_BENCH_HOUSEHOLDS`, else `default`.
pub fn households(default: usize) -> usize {
    std::env::var("SHEQU_BENCH_HOUSEHOLDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A sample district of `n` households (one community per 1,600 households, four grids
/// each) with `edge_detail` extra vertices per boundary edge, and its job.
pub fn district(n: usize, edge_detail: usize) -> (tempfile::TempDir, shequ::Job) {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = SampleConfig {
        streets: 1,
        seed: 1,
        households: n,
        communities: (n / 1600).max(1),
        grids_per_community: 4,
        edge_detail,
        plant_problems: false,
    };
    write_sample(dir.path(), &cfg).expect("sample");
    let job = shequ::Job::from_toml(dir.path().join("job.toml")).expect("job");
    (dir, job)
}
