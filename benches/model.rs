//! Model build and point-in-polygon benchmarks on generated districts.
//!
//! `cargo bench --bench model` (set `SHEQU_BENCH_HOUSEHOLDS` to change the size, default 100,000).

use criterion::{Criterion, criterion_group, criterion_main};
use geo::{Contains, Coord, MultiPolygon};
use shequ::index::{PolygonIndex, ranks_by_id};

mod common;

fn households() -> usize {
    common::households(100_000)
}

fn district(edge_detail: usize) -> (tempfile::TempDir, shequ::Job) {
    common::district(households(), edge_detail)
}

fn bench_build(c: &mut Criterion) {
    let mut g = c.benchmark_group("build");
    g.sample_size(10);
    for (name, detail) in [("simple grids", 0), ("detailed grids (120+ vertices)", 30)] {
        let (_dir, job) = district(detail);
        g.bench_function(format!("{} households, {name}", households()), |b| {
            b.iter(|| shequ::build(&job).expect("build"))
        });
    }
    g.finish();
}

fn bench_point_in_polygon(c: &mut Criterion) {
    let (_dir, job) = district(30);
    let built = shequ::build(&job).expect("build");
    let grids: Vec<MultiPolygon<f64>> = built
        .model
        .grids
        .iter()
        .map(|g| g.geometry.clone())
        .collect();
    let ids: Vec<&str> = built.model.grids.iter().map(|g| g.id.as_str()).collect();
    let points: Vec<Option<Coord<f64>>> = built
        .model
        .buildings
        .iter()
        .map(|b| Some(b.point))
        .cycle()
        .take(households())
        .collect();
    let mut g = c.benchmark_group("point-in-polygon");
    g.sample_size(10);
    g.bench_function(
        "PolygonIndex: build + locate (cells, then interval-tree edges)",
        |b| {
            b.iter(|| {
                let refs: Vec<Option<&MultiPolygon<f64>>> = grids.iter().map(Some).collect();
                let index = PolygonIndex::new(&refs, &ranks_by_id(&ids));
                index.locate_all(&points)
            })
        },
    );
    let refs: Vec<Option<&MultiPolygon<f64>>> = grids.iter().map(Some).collect();
    let index = PolygonIndex::new(&refs, &ranks_by_id(&ids));
    g.bench_function("PolygonIndex: locate only (cell accelerator)", |b| {
        b.iter(|| index.locate_all(&points))
    });
    g.bench_function(
        "PolygonIndex: locate_exact only (R-tree + interval-tree edges, no cells)",
        |b| {
            use rayon::prelude::*;
            b.iter(|| {
                points
                    .par_iter()
                    .map(|p| p.and_then(|p| index.locate_exact(p)))
                    .collect::<Vec<_>>()
            })
        },
    );
    g.bench_function("naive: R-tree of boxes + edge walk per candidate", |b| {
        use geo::BoundingRect;
        use rstar::primitives::{GeomWithData, Rectangle};
        b.iter(|| {
            let tree = rstar::RTree::bulk_load(
                grids
                    .iter()
                    .enumerate()
                    .map(|(i, g)| {
                        let r = g.bounding_rect().expect("non-empty");
                        GeomWithData::new(
                            Rectangle::from_corners(r.min().into(), r.max().into()),
                            i,
                        )
                    })
                    .collect(),
            );
            use rayon::prelude::*;
            points
                .par_iter()
                .map(|p| {
                    let p = p.expect("point");
                    tree.locate_all_at_point(&[p.x, p.y])
                        .find(|e| grids[e.data].contains(&p))
                        .map(|e| e.data)
                })
                .collect::<Vec<_>>()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_build, bench_point_in_polygon);
criterion_main!(benches);
