//! Bad input gives an error or a report entry that says where and what, never a panic.

use serde_json::json;
use shequ::{Error, IssueKind, Job, Layer};

use crate::fixtures::*;

fn grids(dir: &std::path::Path) {
    write_layer(
        &dir.join("grids.geojson"),
        &[
            (Some(square(0.0, 0.0, 100.0)), json!({"id": "A"})),
            (Some(square(100.0, 0.0, 100.0)), json!({"id": "B"})),
        ],
    );
}

#[test]
fn unknown_column_names_file_column_and_alternatives() {
    let dir = tempfile::tempdir().unwrap();
    grids(dir.path());
    let job = Job::from_toml_str(
        "[layers.grids]\npath = \"grids.geojson\"\nid = \"code\"",
        dir.path(),
    )
    .unwrap();
    let err = shequ::build(&job).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::ColumnNotFound { .. }), "{msg}");
    assert!(
        msg.contains("grids.geojson") && msg.contains("\"code\"") && msg.contains("id"),
        "{msg}"
    );
}

#[test]
fn truncated_geojson_is_an_error_with_position() {
    let dir = tempfile::tempdir().unwrap();
    grids(dir.path());
    let p = dir.path().join("grids.geojson");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, &text[..text.len() / 2]).unwrap();
    let job = Job::from_toml_str("[layers.grids]\npath = \"grids.geojson\"", dir.path()).unwrap();
    let err = shequ::build(&job).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Data { .. }), "{msg}");
    assert!(
        msg.contains("grids.geojson") && msg.contains("line"),
        "{msg}"
    );
}

#[test]
fn wrong_encoding_is_an_error_with_line_and_auto_detects_gbk() {
    let dir = tempfile::tempdir().unwrap();
    grids(dir.path());
    let text = format!(
        "户编号,经度,纬度\nh1,{},{}\n",
        LON0 + 50.0 * DEG,
        LAT0 + 50.0 * DEG
    );
    let (gbk, _, _) = encoding_rs::GBK.encode(&text);
    std::fs::write(dir.path().join("hh.csv"), &gbk).unwrap();
    let job_text = |enc: &str| {
        format!(
            "[layers.grids]\npath = \"grids.geojson\"\n[layers.households]\npath = \"hh.csv\"\n\
             encoding = \"{enc}\"\nid = \"户编号\"\nlon = \"经度\"\nlat = \"纬度\""
        )
    };
    let job = Job::from_toml_str(&job_text("utf-8"), dir.path()).unwrap();
    let msg = shequ::build(&job).unwrap_err().to_string();
    assert!(
        msg.contains("hh.csv") && msg.contains("line 1") && msg.contains("gb18030"),
        "{msg}"
    );
    for enc in ["auto", "gbk", "gb18030"] {
        let job = Job::from_toml_str(&job_text(enc), dir.path()).unwrap();
        let built = shequ::build(&job).unwrap();
        assert_eq!(built.model.households.len(), 1, "{enc}");
        assert!(built.model.households[0].placed);
    }
}

#[test]
fn unusable_crs_is_an_error_naming_the_layer() {
    let dir = tempfile::tempdir().unwrap();
    grids(dir.path());
    // Read from a job file: refused when the job is read, naming the key.
    let err = Job::from_toml_str(
        "[layers.grids]\npath = \"grids.geojson\"\ncrs = \"EPSG:999999\"",
        dir.path(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Job { .. }), "{msg}");
    assert!(
        msg.contains("layers.grids.crs") && msg.contains("999999"),
        "{msg}"
    );
    // Set in code after reading: the build names the layer and the file.
    let mut job =
        Job::from_toml_str("[layers.grids]\npath = \"grids.geojson\"", dir.path()).unwrap();
    job.layers.grids.as_mut().unwrap().crs = Some("EPSG:999999".into());
    let err = shequ::build(&job).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Crs { .. }), "{msg}");
    assert!(
        msg.contains("grids.geojson") && msg.contains("999999"),
        "{msg}"
    );
}

#[test]
fn swapped_and_out_of_range_coordinates_are_reported_per_feature() {
    let dir = tempfile::tempdir().unwrap();
    let swap =
        |g: geo::Geometry<f64>| geo::MapCoords::map_coords(&g, |c| geo::Coord { x: c.y, y: c.x });
    write_layer(
        &dir.path().join("grids.geojson"),
        &[
            (Some(swap(square(0.0, 0.0, 100.0))), json!({"id": "A"})),
            (Some(square(100.0, 0.0, 100.0)), json!({"id": "B"})),
            (
                Some(geo::Geometry::Point(geo::Point::new(2.35, 48.85))),
                json!({"id": "C"}),
            ),
            (None, json!({"id": "D"})),
        ],
    );
    let job = Job::from_toml_str("[layers.grids]\npath = \"grids.geojson\"", dir.path()).unwrap();
    let built = shequ::build(&job).unwrap();
    let r = &built.report;
    let kind_of = |id: &str| {
        r.issues()
            .iter()
            .find(|i| i.id.as_deref() == Some(id))
            .map(|i| i.kind)
    };
    assert_eq!(kind_of("A"), Some(IssueKind::SwappedLatLon));
    assert_eq!(kind_of("B"), None);
    assert_eq!(kind_of("C"), Some(IssueKind::OutOfRange));
    assert_eq!(kind_of("D"), Some(IssueKind::MissingGeometry));
    let idx: Vec<_> = r.issues().iter().map(|i| i.index).collect();
    assert_eq!(idx, vec![Some(0), Some(2), Some(3)]);
    assert_eq!(built.model.grids.len(), 1);
    r.check_accounting().unwrap();
}

#[test]
fn ragged_csv_rows_are_reported_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    grids(dir.path());
    let (x, y) = (LON0 + 50.0 * DEG, LAT0 + 50.0 * DEG);
    std::fs::write(
        dir.path().join("hh.csv"),
        format!("id,lon,lat\nh1,{x},{y}\nh2,{x}\nh3,{x},{y},extra\n\"h4\",{x},{y}\nh5,{x}"),
    )
    .unwrap();
    let job = Job::from_toml_str(
        "[layers.grids]\npath = \"grids.geojson\"\n[layers.households]\npath = \"hh.csv\"\nlon = \"lon\"\nlat = \"lat\"",
        dir.path(),
    )
    .unwrap();
    let built = shequ::build(&job).unwrap();
    let r = &built.report;
    let bad: Vec<_> = r
        .for_layer(Layer::Household)
        .filter(|i| i.kind == IssueKind::UnreadableRow)
        .collect();
    assert_eq!(
        bad.iter().map(|i| i.index).collect::<Vec<_>>(),
        vec![Some(1), Some(2), Some(4)]
    );
    assert!(bad[0].detail.contains("line 3"), "{}", bad[0].detail);
    let ids: Vec<_> = built
        .model
        .households
        .iter()
        .map(|h| h.id.as_str())
        .collect();
    assert_eq!(ids, vec!["h1", "h4"]);
    assert_eq!(built.model.households[1].source_index, 3);
    let c = r.counts()[&Layer::Household];
    assert_eq!((c.read, c.placed, c.rejected), (5, 2, 3));
    r.check_accounting().unwrap();
}

#[test]
fn truncated_parquet_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    grids(dir.path());
    let mut job =
        Job::from_toml_str("[layers.grids]\npath = \"grids.geojson\"", dir.path()).unwrap();
    job.privacy = Some(shequ::PrivacyOptions::research());
    let out = dir.path().join("out");
    shequ::run::run(&job, &out, &shequ::NoProgress).unwrap();
    let p = out.join("grids.parquet");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 20]).unwrap();
    let job = Job::from_toml_str(
        "[layers.grids]\npath = \"out/grids.parquet\"\nid = \"grid_id\"",
        dir.path(),
    )
    .unwrap();
    let msg = shequ::build(&job).unwrap_err().to_string();
    assert!(msg.contains("grids.parquet"), "{msg}");
}

#[test]
fn geoparquet_output_reads_back_as_input() {
    let dir = tempfile::tempdir().unwrap();
    grids(dir.path());
    let mut job =
        Job::from_toml_str("[layers.grids]\npath = \"grids.geojson\"", dir.path()).unwrap();
    job.privacy = Some(shequ::PrivacyOptions::research());
    let out = dir.path().join("out");
    let (first, _) = shequ::run::run(&job, &out, &shequ::NoProgress).unwrap();
    let job = Job::from_toml_str(
        "[layers.grids]\npath = \"out/grids.parquet\"\nid = \"grid_id\"",
        dir.path(),
    )
    .unwrap();
    let again = shequ::build(&job).unwrap();
    assert_eq!(again.model.grids.len(), 2);
    for (a, b) in first.model.grids.iter().zip(&again.model.grids) {
        assert_eq!(a.id, b.id);
        assert!(
            (a.area_m2 - b.area_m2).abs() < 1e-3,
            "{} vs {}",
            a.area_m2,
            b.area_m2
        );
    }
}

#[test]
fn job_file_errors_say_what_is_wrong() {
    let e =
        Job::from_toml_str("[layers.grids]\npath = \"g.geojson\"\nidd = \"x\"", ".").unwrap_err();
    assert!(e.to_string().contains("idd"), "{e}");
    let e = Job::from_toml_str("[layers.grids]\nid = \"x\"", ".").unwrap_err();
    assert!(e.to_string().contains("derive"), "{e}");
    let e = Job::from_toml_str("[layers.households]\npath = \"h.csv\"", ".").unwrap_err();
    assert!(e.to_string().contains("building"), "{e}");
}
