//! Small hand-made layers for tests, written as GeoJSON near Chongqing (106.5E, 29.5N).

use std::path::Path;

use geo::{Geometry, LineString, Polygon};
use serde_json::{Value, json};

/// Degrees per metre, roughly, at 29.5N.
pub const DEG: f64 = 1.0 / 100_000.0;
pub const LON0: f64 = 106.5;
pub const LAT0: f64 = 29.5;

/// A square in lon/lat with its lower-left corner `(x, y)` metres east/north of the origin.
pub fn square(x: f64, y: f64, size: f64) -> Geometry<f64> {
    rect(x, y, size, size)
}

/// A `w` × `h` rectangle with its south-west corner at (`x`, `y`), in the units of [`square`].
pub fn rect(x: f64, y: f64, w: f64, h: f64) -> Geometry<f64> {
    let (x0, y0) = (LON0 + x * DEG, LAT0 + y * DEG);
    let (w, h) = (w * DEG, h * DEG);
    Geometry::Polygon(Polygon::new(
        LineString::from(vec![
            (x0, y0),
            (x0 + w, y0),
            (x0 + w, y0 + h),
            (x0, y0 + h),
            (x0, y0),
        ]),
        vec![],
    ))
}

pub fn point(x: f64, y: f64) -> Geometry<f64> {
    Geometry::Point(geo::Point::new(LON0 + x * DEG, LAT0 + y * DEG))
}

pub fn write_layer(path: &Path, feats: &[(Option<Geometry<f64>>, Value)]) {
    let features = feats
        .iter()
        .map(|f| (f.0.as_ref(), f.1.as_object().expect("object").clone()));
    shequ::io::geojson::write(path, features, None, 9).expect("write fixture");
}

/// Two communities side by side (C1 west, C2 east), 1 km each, with grids:
/// G1 in C1 declaring C2 (conflict), G2 in C2 declaring unknown C9, G3 in C1 declaring nothing,
/// G4 far away declaring nothing.
pub fn two_communities(dir: &Path) {
    write_layer(
        &dir.join("communities.geojson"),
        &[
            (
                Some(square(0.0, 0.0, 1000.0)),
                json!({"code": "C1", "street": "S1"}),
            ),
            (
                Some(square(1000.0, 0.0, 1000.0)),
                json!({"code": "C2", "street": "S1"}),
            ),
        ],
    );
    write_layer(
        &dir.join("grids.geojson"),
        &[
            (
                Some(square(100.0, 100.0, 300.0)),
                json!({"code": "G1", "community": "C2"}),
            ),
            (
                Some(square(1100.0, 100.0, 300.0)),
                json!({"code": "G2", "community": "C9"}),
            ),
            (
                Some(square(100.0, 500.0, 300.0)),
                json!({"code": "G3", "community": null}),
            ),
            (
                Some(square(5000.0, 5000.0, 300.0)),
                json!({"code": "G4", "community": null}),
            ),
        ],
    );
}

pub const TWO_COMMUNITIES_JOB: &str = r#"
[layers.communities]
path = "communities.geojson"
id = "code"
parent = "street"
[layers.grids]
path = "grids.geojson"
id = "code"
parent = "community"
"#;

/// Every record batch of a Parquet file.
pub fn read_batches(path: &Path) -> Vec<arrow_array::RecordBatch> {
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(path).expect("open"),
    )
    .expect("parquet")
    .build()
    .expect("reader")
    .map(|b| b.expect("batch"))
    .collect()
}
