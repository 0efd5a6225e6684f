//! Departmental registers linked to a generated district's roster: five registers of
//! `SHEQU_BENCH_REGISTER_ROWS` rows (default 500,000) each, read, normalised and linked while
//! the roster is read again in chunks.
//!
//! `cargo bench --bench registers` (release; set `SHEQU_BENCH_HOUSEHOLDS`, default 3,750,000
//! households: about 10 million residents). The rows: 90% residents' ID numbers, 3% of them in
//! their 15-digit form, 3% strangers, 4% without an ID number (linked by name and birth date).

use std::fmt::Write as _;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use shequ::registry::{Linker, RegisterOptions, RosterKeys, read_registers_from};

mod common;

// The allocator of the CLI and the Python module, which run this work in `shequ run`,
// `shequ registry` and `shequ.Job`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// (ID number, name) of every roster row, decoded independently.
fn roster(dir: &Path) -> Vec<(String, String)> {
    let bytes = std::fs::read(dir.join("residents.csv")).expect("roster");
    let (text, _, _) = encoding_rs::GB18030.decode(&bytes);
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[3].to_owned(), f[2].to_owned())
        })
        .collect()
}

fn write_register(path: &Path, people: &[(String, String)], rows: usize, seed: u64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut s = String::with_capacity(rows * 48);
    s.push_str("身份证号,姓名,出生日期\n");
    for i in 0..rows {
        let (id, name) = &people[rng.random_range(0..people.len())];
        let birth = format!("{}-{}-{}", &id[6..10], &id[10..12], &id[12..14]);
        match rng.random_range(0..100) {
            0..3 => {
                let _ = writeln!(s, "{}{},{name},{birth}", &id[..6], &id[8..17]);
            }
            3..6 => {
                let first17 = format!(
                    "{:06}19600101{:03}",
                    100_000 + (i / 1000) % 900_000,
                    i % 1000
                );
                let check = shequ::privacy::id_check_char(&first17).expect("17 digits");
                let _ = writeln!(s, "{first17}{check},外来{i},1960-01-01");
            }
            6..10 => {
                let _ = writeln!(s, ",{name},{birth}");
            }
            _ => {
                let _ = writeln!(s, "{id},{name},{birth}");
            }
        }
    }
    std::fs::write(path, s).expect("register");
}

fn bench_registers(c: &mut Criterion) {
    let n = common::households(3_750_000);
    let rows: usize = std::env::var("SHEQU_BENCH_REGISTER_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    let (dir, job) = common::district(n, 0);
    let built = shequ::build(&job).expect("build");
    let people = roster(dir.path());
    let options: Vec<RegisterOptions> = (0..5)
        .map(|k| {
            let path = dir.path().join(format!("register{k}.csv"));
            write_register(&path, &people, rows, k);
            toml::from_str(&format!(
                "id = 'r{k}'\npath = '{}'\n[columns]\nid_number = '身份证号'\nname = '姓名'\nbirth_date = '出生日期'",
                path.display()
            ))
            .expect("options")
        })
        .collect();
    drop(people);
    let residents = built.model.residents.len();
    let mut g = c.benchmark_group("registers");
    g.sample_size(10);
    g.bench_function(
        format!("5 x {rows} rows read and linked to {residents} residents"),
        |b| {
            b.iter(|| {
                let regs = read_registers_from(&options, dir.path()).expect("registers");
                let mut linker = Linker::new(regs, RosterKeys::of(&job));
                shequ::restream(&built, &mut [&mut linker]).expect("link");
                let links = linker.finish(&built.model);
                assert!(links.summaries.iter().all(|s| s.accounted()));
                links
            })
        },
    );
}

criterion_group!(benches, bench_registers);
criterion_main!(benches);
