//! Reading and writing layers: GeoParquet and GeoJSON, points and detailed polygons.
//!
//! `cargo bench --bench io` (`SHEQU_BENCH_POINTS` changes the point count, default 1,000,000;
//! GeoJSON uses a fifth of it).

use std::sync::Arc;

use arrow_array::{ArrayRef, StringArray};
use criterion::{Criterion, criterion_group, criterion_main};
use geo::{Coord, Geometry, LineString, Point, Polygon};
use shequ::Crs;
use shequ::io::{geojson, geoparquet};

fn points(n: usize) -> Vec<Option<Geometry<f64>>> {
    (0..n)
        .map(|i| {
            let x = 106.45 + (i % 1000) as f64 * 2.1e-4 + (i % 7) as f64 * 1.3e-6;
            let y = 29.50 + (i / 1000) as f64 * 1.7e-4 + (i % 11) as f64 * 1.1e-6;
            Some(Geometry::Point(Point::new(x, y)))
        })
        .collect()
}

/// `n` polygons of 120 vertices each (surveyed-boundary detail).
fn polygons(n: usize) -> Vec<Option<Geometry<f64>>> {
    (0..n)
        .map(|i| {
            let (cx, cy) = (
                106.45 + (i % 100) as f64 * 2e-3,
                29.5 + (i / 100) as f64 * 2e-3,
            );
            let ring: Vec<Coord<f64>> = (0..=120)
                .map(|k| {
                    let a = (k % 120) as f64 / 120.0 * std::f64::consts::TAU;
                    let r = 8e-4 * (1.0 + 0.05 * ((k * 7 % 13) as f64 / 13.0));
                    Coord {
                        x: cx + r * a.cos(),
                        y: cy + r * a.sin(),
                    }
                })
                .collect();
            Some(Geometry::Polygon(Polygon::new(
                LineString::new(ring),
                vec![],
            )))
        })
        .collect()
}

fn codes(n: usize) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(
        (0..n).map(|i| format!("5001030010010{i:08}")),
    ))
}

fn bench_geoparquet(c: &mut Criterion) {
    let n: usize = std::env::var("SHEQU_BENCH_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let crs = Crs::lonlat();
    let mut g = c.benchmark_group("geoparquet");
    g.sample_size(10);
    for (name, geoms) in [
        (format!("{n} points"), points(n)),
        (
            "20000 polygons of 120 vertices".to_owned(),
            polygons(20_000),
        ),
    ] {
        let p = dir.path().join("layer.parquet");
        let ids = codes(geoms.len());
        g.bench_function(format!("write {name}"), |b| {
            b.iter(|| {
                geoparquet::write(&p, vec![("code".into(), ids.clone())], &geoms, &crs, None)
                    .expect("write")
            })
        });
        g.bench_function(format!("read {name}"), |b| {
            b.iter(|| geoparquet::read("layer", &p, &["code"], None).expect("read"))
        });
    }
    g.finish();

    let m = n / 5;
    let mut g = c.benchmark_group("geojson");
    g.sample_size(10);
    for (name, geoms) in [
        (format!("{m} points"), points(m)),
        (
            "20000 polygons of 120 vertices".to_owned(),
            polygons(20_000),
        ),
    ] {
        let p = dir.path().join("layer.geojson");
        g.bench_function(format!("write {name}"), |b| {
            b.iter(|| {
                let features = geoms.iter().enumerate().map(|(i, g)| {
                    let mut props = serde_json::Map::new();
                    props.insert("code".into(), format!("H{i:08}").into());
                    (g.as_ref(), props)
                });
                geojson::write(&p, features, None, 7).expect("write")
            })
        });
        g.bench_function(format!("read {name}"), |b| {
            b.iter(|| geojson::read("layer", &p, &["code"]).expect("read"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_geoparquet);
criterion_main!(benches);
