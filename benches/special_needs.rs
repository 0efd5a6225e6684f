//! The full special-needs pass on a generated city: labels for every resident (a second read
//! of the roster), counts per building, grid, community and street with polars, and one
//! research suppression pass over every count column.
//!
//! `cargo bench --profile dev --bench special_needs` (set `SHEQU_BENCH_HOUSEHOLDS`, default
//! 400,000 households: about 1.07 million residents).

use criterion::{Criterion, criterion_group, criterion_main};
use shequ::analytics::SpecialNeeds;
use shequ::output::release::{CountColumns, Release};
use shequ::privacy::Policy;

mod common;

fn bench_special_needs(c: &mut Criterion) {
    let n = common::households(400_000);
    let (_dir, job) = common::district(n, 0);
    let built = shequ::build(&job).expect("build");
    let opts = job
        .special_needs
        .clone()
        .expect("the sample job asks for special needs");
    let residents = built.model.residents.len();
    let mut g = c.benchmark_group("special_needs");
    g.sample_size(10);
    g.bench_function(
        format!("labels + counts + suppression, {residents} residents"),
        |b| {
            b.iter(|| {
                let sn = SpecialNeeds::compute(&built, &opts, false).expect("labels");
                let cols = sn
                    .columns(&built.model, CountColumns::base(&built.model))
                    .expect("counts");
                Release::with_columns(&built.model, &Policy::research(5), cols).expect("release")
            })
        },
    );
    let sn = SpecialNeeds::compute(&built, &opts, false).expect("labels");
    g.bench_function(format!("labels only, {residents} residents"), |b| {
        b.iter(|| SpecialNeeds::compute(&built, &opts, false).expect("labels"))
    });
    g.bench_function("counts per grid (polars lazy group-by)", |b| {
        b.iter(|| sn.per_unit(shequ::Layer::Grid).collect().expect("counts"))
    });
}

criterion_group!(benches, bench_special_needs);
criterion_main!(benches);
