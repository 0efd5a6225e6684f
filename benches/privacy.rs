//! Suppression benchmarks: research tables of a generated district.
//!
//! `cargo bench --bench privacy` (set `SHEQU_BENCH_HOUSEHOLDS`, default 100,000).

use criterion::{Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use shequ::output::release::Release;
use shequ::privacy::Policy;
use shequ::privacy::suppress::{Group, Table};

mod common;

/// A street → community → grid → building table with residents split by sex and by three age
/// bands (two partitions of one total), buildings of 0–120 residents.
fn synthetic(streets: usize, per: usize, buildings: usize) -> Table {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut t = Table::new([
        "residents",
        "male",
        "female",
        "young",
        "adult",
        "old",
        "disabled",
    ]);
    let mut leaves = Vec::new();
    let mut rows: Vec<(Option<usize>, [u64; 7])> = Vec::new();
    for _ in 0..streets {
        let s = rows.len();
        rows.push((None, [0; 7]));
        for _ in 0..per {
            let c = rows.len();
            rows.push((Some(s), [0; 7]));
            for _ in 0..per {
                let g = rows.len();
                rows.push((Some(c), [0; 7]));
                for _ in 0..buildings {
                    let n = rng.random_range(0..120u64);
                    let m = rng.random_range(0..=n);
                    let y = rng.random_range(0..=n);
                    let a = rng.random_range(0..=n - y);
                    let d = rng.random_range(0..=n / 10);
                    leaves.push(rows.len());
                    rows.push((Some(g), [n, m, n - m, y, a, n - y - a, d]));
                }
            }
        }
    }
    for r in (0..rows.len()).rev() {
        if let Some(p) = rows[r].0 {
            let v = rows[r].1;
            for (x, y) in rows[p].1.iter_mut().zip(v) {
                *x += y;
            }
        }
    }
    for (p, v) in rows {
        t.add_row(p, v).expect("row");
    }
    t.add_group(Group {
        total: 0,
        parts: vec![1, 2],
    })
    .expect("group");
    t.add_group(Group {
        total: 0,
        parts: vec![3, 4, 5],
    })
    .expect("group");
    t
}

fn bench_suppress(c: &mut Criterion) {
    let mut g = c.benchmark_group("suppress");
    g.sample_size(10);
    // 10 streets × 10 communities × 10 grids × 20 buildings: 21,110 units, 7 columns.
    let t = synthetic(10, 10, 20);
    g.bench_function(
        "21,110 units × 7 columns, two partitions of one total",
        |b| b.iter(|| t.suppress(5).expect("suppress")),
    );
    let n = common::households(100_000);
    let (_dir, job) = common::district(n, 0);
    let built = shequ::build(&job).expect("build");
    g.bench_function(format!("research tables of {n} households"), |b| {
        b.iter(|| Release::new(&built.model, &Policy::research(5)).expect("tables"))
    });
}

criterion_group!(benches, bench_suppress);
criterion_main!(benches);
