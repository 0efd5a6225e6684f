//! The fuzz targets of `fuzz/src/targets.rs` run on stable: a mutation harness driven by
//! proptest over the bundled sample's real files. Each case takes a seed file and applies one to
//! eight mutations (bit flips, inserted or deleted bytes, copied spans, truncation, blank and
//! separator-only lines, line-end changes, and tokens that readers treat specially); proptest
//! shrinks a failing case to a small one and the test saves its bytes under
//! `target/fuzz-failures/`.
//!
//! `cargo test fuzz_` runs a short round of each target (`SHEQU_FUZZ_CASES`, default 24). For
//! a long run set `SHEQU_FUZZ_SECONDS` (rounds are repeated with new seeds until the time is
//! up; the number of inputs is printed), e.g. ten minutes a target:
//! `SHEQU_FUZZ_SECONDS=600 cargo test --test all fuzz_ -- --test-threads 2 --nocapture`.
//! The same targets run coverage-guided under libFuzzer with `cargo fuzz` (see `fuzz/README.md`).

use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};

#[path = "../../fuzz/src/targets.rs"]
#[allow(dead_code)]
mod targets;

/// One change to an input; positions are taken modulo the input's length.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: u32, bit: u8 },
    Insert { at: u32, bytes: Vec<u8> },
    Delete { at: u32, len: u16 },
    Copy { from: u32, len: u16, to: u32 },
    Token { at: u32, token: usize },
    Truncate { at: u32 },
    LineEnds { cr_only: bool },
}

/// Bytes that readers treat specially.
const TOKENS: &[&[u8]] = &[
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b",",
    b",,,,,,,,,,,\n",
    b"\"",
    b"\"\"",
    b"\t",
    b" ",
    "\u{3000}".as_bytes(),
    "\u{FEFF}".as_bytes(),
    "０１２".as_bytes(),
    "户编号".as_bytes(),
    b"\xff\xfe",
    b"\0",
    b"{",
    b"}",
    b"[",
    b"]",
    b"[]",
    b"null",
    b"true",
    b":",
    b"NaN",
    b"-1",
    b"1e308",
    b"-0",
    b"180.5",
    b"99999999999999999999",
    b"0.000000000000000000001",
    b"\"type\":\"Point\"",
    b"\"coordinates\":[[[]]]",
    b"\"crs\":{\"type\":\"name\",\"properties\":{\"name\":\"garbage\"}}",
    b"\"properties\":null",
    b"=",
    b"[layers.grids]",
    b"derive = true",
    b"crs = \"EPSG:4545\"",
    b"working_crs = \"   \"",
    b"11010519491231002X",
    b"110105491231002",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<u32>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<u32>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<u32>(), 1u16..512).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<u32>(), 1u16..512, any::<u32>()).prop_map(|(from, len, to)| Mutation::Copy {
            from,
            len,
            to
        }),
        (any::<u32>(), 0..TOKENS.len()).prop_map(|(at, token)| Mutation::Token { at, token }),
        any::<u32>().prop_map(|at| Mutation::Truncate { at }),
        any::<bool>().prop_map(|cr_only| Mutation::LineEnds { cr_only }),
    ]
}

fn apply(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut v = seed.to_vec();
    let at = |v: &Vec<u8>, p: u32| p as usize % (v.len() + 1);
    for m in mutations {
        match m {
            Mutation::Flip { at: p, bit } => {
                if !v.is_empty() {
                    let i = *p as usize % v.len();
                    v[i] ^= 1 << bit;
                }
            }
            Mutation::Insert { at: p, bytes } => {
                let i = at(&v, *p);
                v.splice(i..i, bytes.iter().copied());
            }
            Mutation::Delete { at: p, len } => {
                let i = at(&v, *p);
                let j = (i + *len as usize).min(v.len());
                v.drain(i..j);
            }
            Mutation::Copy { from, len, to } => {
                let i = at(&v, *from);
                let j = (i + *len as usize).min(v.len());
                let span = v[i..j].to_vec();
                let k = at(&v, *to);
                v.splice(k..k, span);
            }
            Mutation::Token { at: p, token } => {
                let i = at(&v, *p);
                v.splice(i..i, TOKENS[*token].iter().copied());
            }
            Mutation::Truncate { at: p } => {
                let i = at(&v, *p);
                v.truncate(i.max(1).min(v.len()));
            }
            Mutation::LineEnds { cr_only } => {
                let from: &[u8] = if *cr_only { b"\n" } else { b"\r" };
                let to = if *cr_only { b'\r' } else { b'\n' };
                for c in v.iter_mut() {
                    if *c == from[0] {
                        *c = to;
                    }
                }
            }
        }
    }
    v
}

/// A case that runs longer than this is a hang.
const HANG: Duration = Duration::from_secs(120);

/// Runs a target on its own thread and fails if it panics or does not return within [`HANG`].
fn run_with_deadline(name: &'static str, data: Vec<u8>) -> bool {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(|| targets::run(name, &data));
        let _ = tx.send(r);
    });
    match rx.recv_timeout(HANG) {
        Ok(Ok(built)) => built,
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("{name}: no answer within {} s (a hang)", HANG.as_secs()),
    }
}

fn sample_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data-samples/sample-city")
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Runs a target on mutated seeds: one round of `SHEQU_FUZZ_CASES` cases, or rounds until
/// `SHEQU_FUZZ_SECONDS` have passed. A failure is shrunk, saved and reported.
fn harness(name: &'static str) {
    let seeds = targets::seeds(name);
    let cases = env_number("SHEQU_FUZZ_CASES").unwrap_or(24) as u32;
    let budget = env_number("SHEQU_FUZZ_SECONDS").map(Duration::from_secs);
    let strategy = (0..seeds.len(), prop::collection::vec(mutation(), 1..8));
    let started = Instant::now();
    let mut inputs = 0u64;
    let built = std::sync::atomic::AtomicU64::new(0);
    for round in 0u64.. {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&round.to_le_bytes());
        seed[8..16].copy_from_slice(&(name.len() as u64).to_le_bytes());
        let config = Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
        let result = runner.run(&strategy, |(s, muts)| {
            if run_with_deadline(name, apply(&seeds[s], &muts)) {
                built.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        });
        inputs += u64::from(cases);
        if let Err(e) = result {
            let (why, (s, muts)) = match e {
                TestError::Fail(why, value) => (why.to_string(), value),
                TestError::Abort(why) => panic!("{name}: proptest aborted: {why}"),
            };
            let data = apply(&seeds[s], &muts);
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join(format!("{name}-round{round}.bin"));
            std::fs::write(&file, &data).unwrap();
            panic!(
                "{name}: {why}\n(seed {s}, mutations {muts:?}; input saved to {})",
                file.display()
            );
        }
        if budget.is_none_or(|b| started.elapsed() >= b) {
            break;
        }
    }
    eprintln!(
        "fuzz {name}: {inputs} inputs in {:.1} s ({} read and built, the others refused with \
         a clean error), no failure",
        started.elapsed().as_secs_f64(),
        built.into_inner()
    );
}

#[test]
fn fuzz_roster_csv() {
    harness("roster_csv");
}

#[test]
fn fuzz_roster_parquet() {
    harness("roster_parquet");
}

#[test]
fn fuzz_geojson() {
    harness("geojson");
}

#[test]
fn fuzz_geoparquet() {
    harness("geoparquet");
}

#[test]
fn fuzz_shapefile() {
    harness("shapefile");
}

#[test]
fn fuzz_job_toml() {
    harness("job_toml");
}

#[test]
fn fuzz_validate_sample() {
    harness("validate_sample");
}

/// Every seed passes its target unchanged, and builds what the seed describes. With
/// `SHEQU_FUZZ_CORPUS=DIR` the seeds are also written as `DIR/<target>/seed-<n>`, the corpus
/// of `cargo fuzz run`.
#[test]
fn fuzz_seeds_pass_their_targets() {
    let corpus = std::env::var_os("SHEQU_FUZZ_CORPUS");
    for name in targets::TARGETS {
        let seeds = targets::seeds(name);
        assert!(!seeds.is_empty(), "{name}");
        for (i, s) in seeds.iter().enumerate() {
            assert!(s.len() > 16, "{name} seed {i}");
            assert!(targets::run(name, s), "{name} seed {i} does not build");
            if let Some(dir) = &corpus {
                let d = Path::new(dir).join(name);
                std::fs::create_dir_all(&d).unwrap();
                std::fs::write(d.join(format!("seed-{i}")), s).unwrap();
            }
        }
    }
    // The converted seeds hold the sample's data: the GeoParquet and shapefile grids read back
    // with every grid.
    let grids = shequ::io::read_features(
        "grids",
        &sample_dir().join("grids.geojson"),
        &["code"],
        Default::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("g.parquet");
    std::fs::write(&pq, &targets::seeds("geoparquet")[0]).unwrap();
    let back = shequ::io::read_features("grids", &pq, &["code"], Default::default()).unwrap();
    assert_eq!(back.columns[0], grids.columns[0]);
    assert_eq!(back.len(), grids.len());
}

/// The GeoParquet seed (the sample's grids), for regression tests of the reader.
pub fn geoparquet_seed() -> Vec<u8> {
    targets::seeds("geoparquet").remove(0)
}
