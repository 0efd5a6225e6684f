//! Formats in and out: GeoJSON (RFC 7946, streaming), GeoParquet 1.1 (and WKB Parquet without
//! `geo` metadata), GBK shapefiles, Hive-partitioned rosters and the HTML map.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BinaryArray, RecordBatch, StringArray, StructArray};
use arrow_schema::{DataType, Field, Schema};
use geo::{Coord, Geometry, LineString, MultiPolygon, Polygon};
use proptest::prelude::*;
use serde_json::{Value, json};
use shequ::io::{FeatureLayer, ReadOptions, geojson, geoparquet, read_features};
use shequ::sample::{SampleConfig, write_sample};
use shequ::{Crs, Error, IssueKind, Job, Layer, Severity};

use crate::fixtures::read_batches;

fn two_community_sample(dir: &Path) {
    let cfg = SampleConfig {
        communities: 2,
        households: 400,
        ..SampleConfig::small(11)
    };
    write_sample(dir, &cfg).unwrap();
}

/// Exterior and hole rings of every polygon of a GeoJSON geometry value.
fn polygon_rings(g: &Value) -> Vec<Vec<Vec<[f64; 2]>>> {
    let ring = |r: &Value| -> Vec<[f64; 2]> {
        r.as_array()
            .unwrap()
            .iter()
            .map(|c| [c[0].as_f64().unwrap(), c[1].as_f64().unwrap()])
            .collect()
    };
    let poly = |p: &Value| p.as_array().unwrap().iter().map(ring).collect::<Vec<_>>();
    match g["type"].as_str().unwrap() {
        "Polygon" => vec![poly(&g["coordinates"])],
        "MultiPolygon" => g["coordinates"]
            .as_array()
            .unwrap()
            .iter()
            .map(poly)
            .collect(),
        _ => Vec::new(),
    }
}

fn signed_area(r: &[[f64; 2]]) -> f64 {
    r.windows(2)
        .map(|w| w[0][0] * w[1][1] - w[1][0] * w[0][1])
        .sum::<f64>()
        / 2.0
}

/// Digits after the decimal point in the shortest representation of `x` (what serde_json
/// writes).
fn decimals(x: f64) -> usize {
    let s = format!("{x}");
    s.split_once('.').map_or(0, |(_, f)| f.len())
}

/// Every coordinate of a GeoJSON geometry value.
fn coords(g: &Value, out: &mut Vec<[f64; 2]>) {
    match g {
        Value::Array(a) if a.len() >= 2 && a[0].is_number() => {
            out.push([a[0].as_f64().unwrap(), a[1].as_f64().unwrap()]);
        }
        Value::Array(a) => a.iter().for_each(|x| coords(x, out)),
        Value::Object(o) => {
            if let Some(c) = o.get("coordinates") {
                coords(c, out);
            }
            if let Some(gs) = o.get("geometries") {
                coords(gs, out);
            }
        }
        _ => {}
    }
}

/// Checks a GeoJSON file against RFC 7946's rules; returns the number of features.
fn assert_rfc7946(path: &Path) -> usize {
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
    assert_eq!(v["type"], "FeatureCollection", "{}", path.display());
    assert!(v.get("crs").is_none(), "RFC 7946 has no crs member");
    let features = v["features"].as_array().unwrap();
    for f in features {
        assert_eq!(f["type"], "Feature");
        let g = &f["geometry"];
        if g.is_null() {
            continue;
        }
        for poly in polygon_rings(g) {
            for (k, r) in poly.iter().enumerate() {
                assert_eq!(r.first(), r.last(), "closed ring");
                let a = signed_area(r);
                if k == 0 {
                    assert!(
                        a > 0.0,
                        "{}: exterior ring not counter-clockwise",
                        path.display()
                    );
                } else {
                    assert!(a < 0.0, "{}: hole not clockwise", path.display());
                }
            }
        }
        let mut cs = Vec::new();
        coords(g, &mut cs);
        for c in cs {
            assert!(decimals(c[0]) <= 7 && decimals(c[1]) <= 7, "{c:?}");
        }
    }
    features.len()
}

fn star(cx: f64, cy: f64, r: f64, n: usize, jitter: &[f64]) -> LineString<f64> {
    let mut pts: Vec<Coord<f64>> = (0..n)
        .map(|i| {
            let a = i as f64 / n as f64 * std::f64::consts::TAU;
            let rr = r * (0.6 + 0.4 * jitter[i % jitter.len()]);
            Coord {
                x: cx + rr * a.cos(),
                y: cy + rr * a.sin(),
            }
        })
        .collect();
    pts.push(pts[0]);
    LineString::new(pts)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever the input orientation and precision, written GeoJSON has counter-clockwise
    /// exteriors, clockwise holes, at most 7 decimals, the coordinates within 0.5e-7 of the
    /// input, and properties of the types given.
    #[test]
    fn geojson_writer_follows_rfc7946(
        cx in 73.5f64..134.5, cy in 18.5f64..53.5,
        n in 3usize..40,
        jitter in proptest::collection::vec(0.0f64..1.0, 1..40),
        flip_outer in any::<bool>(), flip_hole in any::<bool>(), with_hole in any::<bool>(),
        count in 0u64..1_000_000, share in 0.0f64..1.0, two in any::<bool>(),
    ) {
        let mut outer = star(cx, cy, 0.01, n, &jitter);
        let mut hole = star(cx, cy, 0.002, n.max(3), &[1.0]);
        if flip_outer { outer.0.reverse(); }
        if !flip_hole { hole.0.reverse(); }
        let poly = Polygon::new(outer, if with_hole { vec![hole] } else { vec![] });
        let g: Geometry<f64> = if two {
            let other = Polygon::new(star(cx + 0.05, cy, 0.01, 5, &[0.5]), vec![]);
            MultiPolygon(vec![poly.clone(), other]).into()
        } else {
            poly.clone().into()
        };
        let mut props = serde_json::Map::new();
        props.insert("count".into(), json!(count));
        props.insert("share".into(), json!(share));
        props.insert("name".into(), json!("七星岗"));
        props.insert("flag".into(), json!(true));
        props.insert("hidden".into(), Value::Null);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.geojson");
        let mut foreign = serde_json::Map::new();
        foreign.insert("shequ:note".into(), json!("x"));
        geojson::write(&p, [(Some(&g), props)], Some(foreign), 7).unwrap();
        prop_assert_eq!(assert_rfc7946(&p), 1);
        let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        let got = &v["features"][0]["properties"];
        prop_assert_eq!(got["count"].as_u64(), Some(count));
        prop_assert!(got["share"].is_f64());
        prop_assert_eq!(got["name"].as_str(), Some("七星岗"));
        prop_assert_eq!(got["flag"].as_bool(), Some(true));
        prop_assert!(got["hidden"].is_null());
        // Rounded, not moved: the first vertex of the exterior is within half a unit of the 7th
        // decimal of some input vertex.
        let back = geojson::read("x", &p, &[]).unwrap();
        let first = match back.geometries[0].as_ref().unwrap() {
            Geometry::Polygon(q) => q.exterior().0[0],
            Geometry::MultiPolygon(m) => m.0[0].exterior().0[0],
            other => panic!("{other:?}"),
        };
        let near = poly.exterior().0.iter().any(|c| {
            (c.x - first.x).abs() <= 0.5e-7 + 1e-12 && (c.y - first.y).abs() <= 0.5e-7 + 1e-12
        });
        prop_assert!(near);
    }
}

#[test]
fn geojson_with_foreign_members_and_no_features_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.geojson");
    let mut foreign = serde_json::Map::new();
    foreign.insert("a".into(), json!(1));
    foreign.insert("b".into(), json!({"c": [1, 2]}));
    geojson::write(&p, std::iter::empty(), Some(foreign), 7).unwrap();
    assert_eq!(assert_rfc7946(&p), 0);
    assert_eq!(geojson::read("x", &p, &["code"]).unwrap().len(), 0);
}

#[test]
fn geojson_reader_streams_members_in_any_order_and_reports_bad_features() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.geojson");
    // A bbox member (with '[') before the features, the crs after them, a feature without
    // geometry, one with an unknown geometry type, one that is not a Feature.
    std::fs::write(
        &p,
        r#"{"bbox":[106,29,107,30],"name":"x[1]","type":"FeatureCollection","features":[
        {"type":"Feature","properties":{"code":"A","n":1.5},"geometry":{"type":"Point","coordinates":[106.5,29.5]}},
        {"type":"Feature","properties":{"code":"B"},"geometry":null},
        {"type":"Feature","properties":{"code":"C"},"geometry":{"type":"Circle","coordinates":[1,2]}},
        {"type":"Point","coordinates":[1,2]}],
        "crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::4490"}}}"#,
    )
    .unwrap();
    let l = geojson::read("grids", &p, &["code", "n"]).unwrap();
    assert_eq!(l.len(), 4);
    assert!(l.geometries[0].is_ok());
    assert!(
        l.geometries[1]
            .as_ref()
            .unwrap_err()
            .contains("no geometry")
    );
    assert!(l.geometries[2].as_ref().unwrap_err().contains("unusable"));
    assert!(
        l.geometries[3]
            .as_ref()
            .unwrap_err()
            .contains("not a GeoJSON Feature")
    );
    assert_eq!(l.columns[0][2].as_deref(), Some("C"));
    assert_eq!(l.columns[1][0].as_deref(), Some("1.5"));
    assert_eq!(l.crs, Some(Crs::parse("EPSG:4490").unwrap()));

    // A single Feature is a layer of one.
    std::fs::write(
        &p,
        r#"{"properties":{"code":"Z"},"geometry":{"type":"Point","coordinates":[106.5,29.5]},"type":"Feature"}"#,
    )
    .unwrap();
    let l = geojson::read("grids", &p, &["code"]).unwrap();
    assert_eq!((l.len(), l.columns[0][0].as_deref()), (1, Some("Z")));

    // Truncated: an error with the position, not a panic and not a partial layer.
    let full = std::fs::read_to_string(dir.path().join("a.geojson")).unwrap();
    std::fs::write(&p, &full[..full.len() / 2]).unwrap();
    let e = geojson::read("grids", &p, &["code"]).unwrap_err();
    assert!(matches!(e, Error::Data { .. }), "{e}");
    assert!(e.to_string().contains("line"), "{e}");

    // Not UTF-8 (a GBK-encoded file): an error, not mojibake.
    let (gbk, _, _) = encoding_rs::GBK.encode(
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"解放碑"},"geometry":null}]}"#,
    );
    std::fs::write(&p, &gbk).unwrap();
    let e = geojson::read("grids", &p, &["name"]).unwrap_err();
    assert!(matches!(e, Error::Data { .. }), "{e}");

    // A bare geometry has no properties.
    std::fs::write(&p, r#"{"type":"Point","coordinates":[1,2]}"#).unwrap();
    let e = geojson::read("grids", &p, &[]).unwrap_err();
    assert!(e.to_string().contains("FeatureCollection"), "{e}");
}

#[test]
fn every_geojson_output_of_the_sample_follows_rfc7946() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let job = Job::from_toml(crate::sample_city::sample_job_path()).unwrap();
    shequ::run::run(&job, &out, &shequ::NoProgress).unwrap();
    let mut files = 0;
    let mut stack = vec![out.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "geojson") {
                assert_rfc7946(&p);
                // Longitude first, in China.
                let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                let mut cs = Vec::new();
                coords(&v["features"], &mut cs);
                assert!(
                    cs.iter()
                        .all(|c| (105.0..108.0).contains(&c[0]) && (29.0..30.0).contains(&c[1]))
                );
                files += 1;
            }
        }
    }
    assert!(files >= 12, "{files} GeoJSON files");
}

fn meta(path: &Path) -> Value {
    let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(path).unwrap(),
    )
    .unwrap();
    let kv = b.metadata().file_metadata().key_value_metadata().unwrap();
    let geo = kv.iter().find(|k| k.key == "geo").unwrap();
    serde_json::from_str(geo.value.as_deref().unwrap()).unwrap()
}

#[test]
fn geoparquet_round_trips_with_covering_bbox_row_groups_and_zstd() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pts.parquet");
    // 70,000 points: two row groups.
    let n = 70_000;
    let geoms: Vec<Option<Geometry<f64>>> = (0..n)
        .map(|i| {
            (i % 1000 != 7).then(|| {
                Geometry::Point(geo::Point::new(
                    106.0 + (i % 300) as f64 * 1e-3,
                    29.0 + (i / 300) as f64 * 1e-4,
                ))
            })
        })
        .collect();
    let codes: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..n).map(|i| format!("H{i:06}")),
    ));
    let crs = Crs::parse("EPSG:4490").unwrap();
    geoparquet::write(&p, vec![("code".into(), codes)], &geoms, &crs, None).unwrap();

    let m = meta(&p);
    assert_eq!(m["version"], "1.1.0");
    assert_eq!(m["primary_column"], "geometry");
    let col = &m["columns"]["geometry"];
    assert_eq!(col["encoding"], "WKB");
    assert_eq!(col["geometry_types"], json!(["Point"]));
    assert_eq!(col["crs"]["id"]["code"], 4490, "PROJJSON with the EPSG id");
    assert_eq!(col["covering"]["bbox"]["xmin"], json!(["bbox", "xmin"]));
    let bbox: Vec<f64> = serde_json::from_value(col["bbox"].clone()).unwrap();
    assert_eq!(bbox, vec![106.0, 29.0, 106.299, 29.0 + 233.0 * 1e-4]);

    let reader =
        parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&p).unwrap()).unwrap();
    use parquet::file::reader::FileReader;
    let md = reader.metadata();
    assert_eq!(md.num_row_groups(), 2);
    assert!(md.row_groups().iter().all(|rg| rg.num_rows() <= 65_536));
    for rg in md.row_groups() {
        for c in rg.columns() {
            assert!(
                c.compression().to_string().starts_with("ZSTD"),
                "{}",
                c.column_path()
            );
        }
    }

    // The covering column agrees with every geometry, row by row.
    let mut row = 0;
    for b in read_batches(&p) {
        let bb = b
            .column_by_name("bbox")
            .unwrap()
            .as_any()
            .downcast_ref::<StructArray>()
            .unwrap();
        let xmin = bb
            .column(0)
            .as_any()
            .downcast_ref::<arrow_array::Float64Array>()
            .unwrap();
        let ymax = bb
            .column(3)
            .as_any()
            .downcast_ref::<arrow_array::Float64Array>()
            .unwrap();
        for i in 0..b.num_rows() {
            match &geoms[row] {
                Some(Geometry::Point(pt)) => {
                    assert_eq!((xmin.value(i), ymax.value(i)), (pt.x(), pt.y()));
                }
                _ => assert!(xmin.is_null(i)),
            }
            row += 1;
        }
    }
    assert_eq!(row, n);

    // And back: the same geometry, ids and CRS.
    let l = geoparquet::read("households", &p, &["code"], None).unwrap();
    assert_eq!(l.len(), n);
    for (i, g) in l.geometries.iter().enumerate() {
        match (&geoms[i], g) {
            (Some(a), Ok(b)) => assert_eq!(a, b),
            (None, Err(why)) => assert!(why.contains("null")),
            other => panic!("row {i}: {other:?}"),
        }
    }
    assert_eq!(l.columns[0][69_999].as_deref(), Some("H069999"));
    // The CRS comes back as PROJJSON that PROJ takes for EPSG:4490 (no shift).
    let back = l.crs.unwrap();
    let t = shequ::crs::Transformer::new(&back, &crs).unwrap();
    let mut c = [Coord { x: 106.5, y: 29.5 }];
    t.transform_coords(&mut c).unwrap();
    assert!((c[0].x - 106.5).abs() < 1e-12 && (c[0].y - 29.5).abs() < 1e-12);
}

/// The small sample with its grids as a WKB Parquet file (EPSG:4490, no `geo` metadata) in
/// column `wkb`.
fn grids_as_plain_wkb(dir: &Path) -> PathBuf {
    let grids = geojson::read(
        "grids",
        &dir.join("grids.geojson"),
        &["code", "name", "community_code"],
    )
    .unwrap();
    let wkb: BinaryArray = grids
        .geometries
        .iter()
        .map(|g| g.as_ref().ok().map(geoparquet::to_wkb))
        .collect();
    let text = |c: usize| -> ArrayRef {
        Arc::new(
            grids.columns[c]
                .iter()
                .map(|v| v.as_deref())
                .collect::<StringArray>(),
        )
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("code", DataType::Utf8, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("community_code", DataType::Utf8, true),
        Field::new("wkb", DataType::Binary, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![text(0), text(1), text(2), Arc::new(wkb)],
    )
    .unwrap();
    let p = dir.join("grids_wkb.parquet");
    geoparquet::write_batch(&p, schema, &batch).unwrap();
    p
}

#[test]
fn wkb_parquet_without_geo_metadata_reads_when_the_job_names_column_and_crs() {
    let dir = tempfile::tempdir().unwrap();
    two_community_sample(dir.path());
    grids_as_plain_wkb(dir.path());
    let base = std::fs::read_to_string(dir.path().join("job.toml")).unwrap();
    let reference = shequ::build(&Job::from_toml_str(&base, dir.path()).unwrap()).unwrap();
    let with = |extra: &str| {
        base.replace(
            "[layers.grids]\npath = \"grids.geojson\"",
            &format!("[layers.grids]\npath = \"grids_wkb.parquet\"\n{extra}"),
        )
    };
    let text = with("geometry_column = \"wkb\"\ncrs = \"EPSG:4490\"");
    assert!(
        text.contains("grids_wkb.parquet"),
        "the sample job's grids section changed"
    );
    let b = shequ::build(&Job::from_toml_str(&text, dir.path()).unwrap()).unwrap();
    let ids = |m: &shequ::Model| m.grids.iter().map(|g| g.id.to_string()).collect::<Vec<_>>();
    assert_eq!(ids(&b.model), ids(&reference.model));
    let placed = |m: &shequ::Model| m.households.iter().filter(|h| h.placed).count();
    assert_eq!(placed(&b.model), placed(&reference.model));

    // Without a CRS: a CRS error naming the fix.
    let e =
        shequ::build(&Job::from_toml_str(&with("geometry_column = \"wkb\""), dir.path()).unwrap())
            .unwrap_err();
    assert!(
        matches!(e, Error::Crs { .. }) && e.to_string().contains("set `crs`"),
        "{e}"
    );
    // Without the column: a data error naming the key.
    let e = shequ::build(&Job::from_toml_str(&with("crs = \"EPSG:4490\""), dir.path()).unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("geometry_column"), "{e}");
    // A wrong column: the columns there are.
    let e = shequ::build(
        &Job::from_toml_str(
            &with("geometry_column = \"geom\"\ncrs = \"EPSG:4490\""),
            dir.path(),
        )
        .unwrap(),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::ColumnNotFound { .. }) && e.to_string().contains("wkb"),
        "{e}"
    );
}

const CGCS2000_PRJ: &str = r#"GEOGCS["GCS_China_Geodetic_Coordinate_System_2000",DATUM["D_China_2000",SPHEROID["CGCS2000",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]"#;

/// Writes a polygon layer of `fl` as a shapefile whose DBF is in `encoding`; `cpg` is the text
/// of the `.cpg` file, if any. Columns are written as character fields under `names` (DBF
/// names have at most 10 characters).
fn write_shapefile(
    shp: &Path,
    fl: &FeatureLayer,
    names: &[&str],
    encoding: &'static encoding_rs::Encoding,
    cpg: Option<&str>,
) {
    use dbase::{FieldName, FieldValue, Record, TableWriterBuilder};
    let mut table = TableWriterBuilder::with_encoding(dbase::encoding::EncodingRs::from(encoding));
    for n in names {
        table = table.add_character_field(FieldName::try_from(*n).unwrap(), 60);
    }
    let mut w = shapefile::Writer::from_path(shp, table).unwrap();
    for (i, g) in fl.geometries.iter().enumerate() {
        let mut rec = Record::default();
        for (c, n) in names.iter().enumerate() {
            rec.insert(
                (*n).to_owned(),
                FieldValue::Character(fl.columns[c][i].clone()),
            );
        }
        let shape: shapefile::Polygon = match g.as_ref().unwrap() {
            Geometry::Polygon(p) => p.clone().into(),
            Geometry::MultiPolygon(m) => m.clone().into(),
            other => panic!("{other:?}"),
        };
        w.write_shape_and_record(&shape, &rec).unwrap();
    }
    drop(w);
    if let Some(c) = cpg {
        std::fs::write(shp.with_extension("cpg"), c).unwrap();
    }
    std::fs::write(shp.with_extension("prj"), CGCS2000_PRJ).unwrap();
}

fn sample_layer(dir: &Path, name: &str, cols: &[&str]) -> FeatureLayer {
    geojson::read(name, &dir.join(format!("{name}.geojson")), cols).unwrap()
}

#[test]
fn gbk_shapefiles_build_the_same_model_as_geojson() {
    let dir = tempfile::tempdir().unwrap();
    two_community_sample(dir.path());
    let grids = sample_layer(dir.path(), "grids", &["code", "name", "community_code"]);
    let grid_cols = ["code", "name", "comm_code"];
    let communities = sample_layer(dir.path(), "communities", &["code", "name", "street_code"]);
    assert!(
        grids.columns[1].iter().flatten().any(|n| !n.is_ascii()),
        "Chinese names"
    );
    // Grids: GBK with a .cpg; communities: GB18030 declared only by the DBF header's
    // language driver (no .cpg) — dbase marks GBK as code page 936.
    write_shapefile(
        &dir.path().join("grids.shp"),
        &grids,
        &grid_cols,
        encoding_rs::GBK,
        Some("GBK"),
    );
    write_shapefile(
        &dir.path().join("communities.shp"),
        &communities,
        &["code", "name", "street_code"],
        encoding_rs::GBK,
        None,
    );
    let dbf = std::fs::read(dir.path().join("communities.dbf")).unwrap();
    assert!(
        [0x4D, 0x7A].contains(&dbf[29]),
        "LDID of code page 936: {:#x}",
        dbf[29]
    );

    let base = std::fs::read_to_string(dir.path().join("job.toml")).unwrap();
    let text = base
        .replace("path = \"grids.geojson\"", "path = \"grids.shp\"")
        .replace("parent = \"community_code\"", "parent = \"comm_code\"")
        .replace(
            "path = \"communities.geojson\"",
            "path = \"communities.shp\"",
        );
    assert!(
        text.contains("comm_code"),
        "the sample job's grid parent column"
    );
    let shp = shequ::build(&Job::from_toml_str(&text, dir.path()).unwrap()).unwrap();
    let reference = shequ::build(&Job::from_toml_str(&base, dir.path()).unwrap()).unwrap();
    let names = |m: &shequ::Model| {
        m.grids
            .iter()
            .map(|g| (g.id.to_string(), g.name.clone(), g.lineage.community))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&shp.model), names(&reference.model));
    assert_eq!(
        shp.model
            .communities
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>(),
        reference
            .model
            .communities
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
    );
    let placed = |m: &shequ::Model| {
        m.households
            .iter()
            .map(|h| h.lineage.grid)
            .collect::<Vec<_>>()
    };
    assert_eq!(placed(&shp.model), placed(&reference.model));
    assert_eq!(shp.report.count(IssueKind::UnreadableRow), 0);
    // The CRS came from the .prj.
    let input = &shp.inputs.iter().find(|i| i.layer == Layer::Grid).unwrap();
    assert_eq!(input.crs_source, Some("file"));
}

#[test]
fn undecodable_dbf_text_is_reported_and_the_job_encoding_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    two_community_sample(dir.path());
    let grids = sample_layer(dir.path(), "grids", &["code", "name", "community_code"]);
    let cols = ["code", "name", "comm_code"];
    // GBK bytes, but the .cpg claims UTF-8.
    write_shapefile(
        &dir.path().join("grids.shp"),
        &grids,
        &cols,
        encoding_rs::GBK,
        Some("UTF-8"),
    );
    let base = std::fs::read_to_string(dir.path().join("job.toml")).unwrap();
    let text = base
        .replace("path = \"grids.geojson\"", "path = \"grids.shp\"")
        .replace("parent = \"community_code\"", "parent = \"comm_code\"");
    let b = shequ::build(&Job::from_toml_str(&text, dir.path()).unwrap()).unwrap();
    let bad: Vec<_> = b
        .report
        .for_layer(Layer::Grid)
        .filter(|i| i.kind == IssueKind::UnreadableRow)
        .collect();
    let chinese = grids.columns[1]
        .iter()
        .flatten()
        .filter(|n| !n.is_ascii())
        .count();
    assert_eq!(bad.len(), chinese, "one entry per undecodable name");
    for i in &bad {
        // A name is not worth a grid: kept, with a warning that says where and what.
        assert_eq!(i.severity, Severity::Warning);
        assert!(
            i.detail.contains("\"name\"")
                && i.detail.contains("UTF-8")
                && i.detail.contains(".cpg"),
            "{}",
            i.detail
        );
        assert!(i.index.is_some() && i.id.is_some());
    }
    assert_eq!(b.model.grids.len(), grids.len());

    // The job's encoding overrides the .cpg.
    let fixed = text.replace(
        "path = \"grids.shp\"",
        "path = \"grids.shp\"\nencoding = \"gbk\"",
    );
    let b = shequ::build(&Job::from_toml_str(&fixed, dir.path()).unwrap()).unwrap();
    assert_eq!(b.report.count(IssueKind::UnreadableRow), 0);
    let want: Vec<Option<String>> = grids.columns[1].clone();
    let got: Vec<Option<String>> = b.model.grids.iter().map(|g| g.name.clone()).collect();
    assert_eq!(got, want);

    // Undecodable text in the id: the feature is rejected.
    let mut by_code = grids.clone();
    by_code.columns[0][0] = Some("网格一".into());
    write_shapefile(
        &dir.path().join("grids.shp"),
        &by_code,
        &cols,
        encoding_rs::GBK,
        Some("UTF-8"),
    );
    let b = shequ::build(&Job::from_toml_str(&text, dir.path()).unwrap()).unwrap();
    let first = b
        .report
        .for_layer(Layer::Grid)
        .find(|i| i.index == Some(0))
        .unwrap();
    assert_eq!(
        (first.kind, first.severity),
        (IssueKind::UnreadableRow, Severity::Rejected)
    );
    assert_eq!(b.model.grids.len(), grids.len() - 1);
}

#[test]
fn broken_shapefiles_are_errors_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    two_community_sample(dir.path());
    let grids = sample_layer(dir.path(), "grids", &["code", "name", "community_code"]);
    let cols = ["code", "name", "comm_code"];
    let shp = dir.path().join("grids.shp");
    write_shapefile(&shp, &grids, &cols, encoding_rs::GBK, Some("936"));
    let ok = read_features("grids", &shp, &cols, ReadOptions::default()).unwrap();
    assert_eq!(ok.len(), grids.len());
    assert_eq!(
        ok.columns[1], grids.columns[1],
        "code page 936 from the .cpg"
    );

    // Truncated .shp.
    let bytes = std::fs::read(&shp).unwrap();
    std::fs::write(&shp, &bytes[..bytes.len() - 40]).unwrap();
    let e = read_features("grids", &shp, &cols, ReadOptions::default()).unwrap_err();
    assert!(
        matches!(e, Error::Data { .. }) && e.to_string().contains("grids.shp"),
        "{e}"
    );
    std::fs::write(&shp, &bytes).unwrap();

    // A missing .dbf.
    std::fs::rename(shp.with_extension("dbf"), dir.path().join("x.dbf")).unwrap();
    let e = read_features("grids", &shp, &cols, ReadOptions::default()).unwrap_err();
    assert!(e.to_string().contains(".dbf"), "{e}");
    std::fs::rename(dir.path().join("x.dbf"), shp.with_extension("dbf")).unwrap();

    // An unknown column lists the ones there are; an unknown code page is named.
    let e = read_features("grids", &shp, &["nope"], ReadOptions::default()).unwrap_err();
    assert!(
        matches!(e, Error::ColumnNotFound { .. }) && e.to_string().contains("comm_code"),
        "{e}"
    );
    std::fs::write(shp.with_extension("cpg"), "klingon").unwrap();
    let e = read_features("grids", &shp, &cols, ReadOptions::default()).unwrap_err();
    assert!(e.to_string().contains("klingon"), "{e}");
}

/// The operational street-office job of the two-community sample, partitioned or not.
fn street_job(dir: &Path, partitioned: bool) -> Job {
    let base = std::fs::read_to_string(dir.join("job.toml")).unwrap();
    let research = "[privacy]\noutput = \"research\"\nk = 5\n";
    assert!(base.contains(research));
    let mut text = base.replace(
        research,
        "[privacy]\noutput = \"operational\"\nstreet = \"500103001\"\nsecret_file = \"key.txt\"\n",
    );
    std::fs::write(dir.join("key.txt"), "the street office's secret 2026").unwrap();
    if partitioned {
        assert!(text.contains("[output]\nmap = true\n"));
        text = text.replace(
            "[output]\nmap = true\n",
            "[output]\nmap = true\npartitioned = true\n",
        );
    }
    Job::from_toml_str(&text, dir).unwrap()
}

fn column_strings(batches: &[RecordBatch], name: &str) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b
                .column_by_name(name)
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            (0..a.len())
                .map(|i| a.value(i).to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn partitioned_rosters_are_hive_partitions_by_street_and_community() {
    let dir = tempfile::tempdir().unwrap();
    two_community_sample(dir.path());
    let flat = dir.path().join("flat");
    let parts = dir.path().join("parts");
    let (b, _) =
        shequ::run::run(&street_job(dir.path(), false), &flat, &shequ::NoProgress).unwrap();
    let (_, summary) =
        shequ::run::run(&street_job(dir.path(), true), &parts, &shequ::NoProgress).unwrap();
    assert!(!parts.join("households.parquet").exists());

    let mut per_community: BTreeMap<String, usize> = BTreeMap::new();
    for h in b.model.households.iter().filter(|h| h.placed) {
        if let Some(c) = h.lineage.community {
            *per_community
                .entry(b.model.communities[c as usize].id.to_string())
                .or_default() += 1;
        }
    }
    assert_eq!(per_community.len(), 2);
    for table in [
        "households",
        "residents",
        "coverage/residents",
        "coverage/uncovered_households",
    ] {
        let whole = read_batches(&flat.join(format!("{table}.parquet")));
        let mut keys_parts: Vec<String> = Vec::new();
        let mut files = 0;
        for (community, n) in &per_community {
            let p = parts.join(format!(
                "{table}/street_id=500103001/community_id={community}/part-0.parquet"
            ));
            if !p.exists() && table.contains("uncovered") {
                // A community with no uncovered household has no partition.
                continue;
            }
            assert!(
                summary.written.files.iter().any(|f| parts.join(f) == p),
                "{} listed",
                p.display()
            );
            let batches = read_batches(&p);
            let schema = batches[0].schema();
            assert!(
                schema.field_with_name("street_id").is_err()
                    && schema.field_with_name("community_id").is_err(),
                "partition keys live in the path"
            );
            if table == "households" {
                let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
                assert_eq!(rows, *n, "{community}");
            }
            let key = if table.ends_with("households") {
                "household_key"
            } else {
                "resident_key"
            };
            keys_parts.extend(column_strings(&batches, key));
            files += 1;
        }
        let key = if table.ends_with("households") {
            "household_key"
        } else {
            "resident_key"
        };
        let mut keys_whole = column_strings(&whole, key);
        keys_whole.sort();
        keys_parts.sort();
        assert_eq!(
            keys_parts, keys_whole,
            "{table}: the partitions hold the same rows"
        );
        assert!(
            files == 2 || (table.contains("uncovered") && files >= 1),
            "{table}: {files}"
        );
    }
}

#[test]
fn the_map_embeds_every_grid_and_loads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let job = Job::from_toml(crate::sample_city::sample_job_path()).unwrap();
    assert!(job.output.map, "the sample job asks for the map");
    let (b, summary) = shequ::run::run(&job, &out, &shequ::NoProgress).unwrap();
    assert!(summary.written.files.contains(&"map.html".to_owned()));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert!(
        manifest["outputs"]
            .as_array()
            .unwrap()
            .contains(&json!("map.html"))
    );
    let html = std::fs::read_to_string(out.join("map.html")).unwrap();
    // Nothing fetched: no src/href but data: URIs, no CSS url() but local fragments, no imports.
    for (i, _) in html
        .match_indices("src=")
        .chain(html.match_indices("href="))
    {
        assert!(
            html[i..].starts_with("src=\"data:") || html[i..].starts_with("href=\"data:"),
            "{}",
            &html[i..i + 40]
        );
    }
    for (i, _) in html.match_indices("url(") {
        assert!(html[i..].starts_with("url(#"), "{}", &html[i..i + 30]);
    }
    assert!(
        !html.contains("@import") && !html.contains("fetch(") && !html.contains("XMLHttpRequest")
    );
    let start =
        html.find("type=\"application/json\">").unwrap() + "type=\"application/json\">".len();
    let end = start + html[start..].find("</script>").unwrap();
    let data: Value = serde_json::from_str(&html[start..end]).unwrap();
    let grids = data["grids"].as_array().unwrap();
    assert_eq!(grids.len(), b.model.grids.len());
    let ids: std::collections::HashSet<&str> = grids
        .iter()
        .map(|g| g["p"]["grid_id"].as_str().unwrap())
        .collect();
    assert!(b.model.grids.iter().all(|g| ids.contains(g.id.as_str())));
    let indicator = data["indicator"].as_str().unwrap();
    assert!(
        indicator.contains("_share_"),
        "a coverage share by default: {indicator}"
    );
    assert!(grids.iter().any(|g| g["p"][indicator].is_number()));
    assert_eq!(
        data["facilities"].as_array().unwrap().len(),
        b.model.facilities.len()
    );
    // Merged columns: special needs and coverage, and the blind-spot flags.
    assert!(grids[0]["p"].get("disabled").is_some());
    assert!(!data["blind_spot_columns"].as_array().unwrap().is_empty());

    // The CLI, with a chosen indicator, to another file; an unknown one is an error.
    let to = dir.path().join("m.html");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_shequ"))
        .args(["map", "--indicator", "residents"])
        .arg(&out)
        .arg("--to")
        .arg(&to)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        std::fs::read_to_string(&to)
            .unwrap()
            .contains("\"indicator\":\"residents\"")
    );
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_shequ"))
        .args(["map", "--indicator", "nope"])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("nope") && err.contains("residents_per_km2"),
        "{err}"
    );
    // No GeoJSON outputs: the map says why.
    let e = shequ::output::map::write_map(dir.path(), None, None).unwrap_err();
    assert!(e.to_string().contains("geojson_crs"), "{e}");
}

/// Files of the small sample in every readable format, as bytes: (name, bytes) for the
/// GeoJSON, the GeoParquet and the shapefile's parts of its grids.
fn grid_files() -> &'static Vec<(String, Vec<u8>)> {
    static FILES: std::sync::OnceLock<Vec<(String, Vec<u8>)>> = std::sync::OnceLock::new();
    FILES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        write_sample(dir.path(), &SampleConfig::small(3)).unwrap();
        let cols = ["code", "name", "community_code"];
        let grids = sample_layer(dir.path(), "grids", &cols);
        let geoms: Vec<Option<Geometry<f64>>> = grids
            .geometries
            .iter()
            .map(|g| g.as_ref().ok().cloned())
            .collect();
        let codes: ArrayRef = Arc::new(
            grids.columns[0]
                .iter()
                .map(|v| v.as_deref())
                .collect::<StringArray>(),
        );
        let gp = dir.path().join("grids.parquet");
        geoparquet::write(
            &gp,
            vec![("code".into(), codes)],
            &geoms,
            &Crs::lonlat(),
            None,
        )
        .unwrap();
        write_shapefile(
            &dir.path().join("grids.shp"),
            &grids,
            &["code", "name", "comm_code"],
            encoding_rs::GBK,
            Some("GBK"),
        );
        [
            "grids.geojson",
            "grids.parquet",
            "grids.shp",
            "grids.shx",
            "grids.dbf",
        ]
        .iter()
        .map(|n| (n.to_string(), std::fs::read(dir.path().join(n)).unwrap()))
        .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Truncated or corrupted files of every format give a layer or an error, never a panic.
    #[test]
    fn damaged_files_never_panic(
        which in 0usize..5,
        cut in 0.0f64..1.0,
        flips in proptest::collection::vec((0.0f64..1.0, any::<u8>()), 0..8),
    ) {
        let files = grid_files();
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in files.iter() {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let (name, bytes) = &files[which];
        let mut damaged = bytes[..((bytes.len() as f64 * cut) as usize).max(1)].to_vec();
        if flips.is_empty() {
            // Truncation only.
        } else {
            damaged = bytes.clone();
            for (at, b) in &flips {
                let i = ((damaged.len() - 1) as f64 * at) as usize;
                damaged[i] = *b;
            }
        }
        std::fs::write(dir.path().join(name), &damaged).unwrap();
        let target = match name.as_str() {
            "grids.geojson" => "grids.geojson",
            "grids.parquet" => "grids.parquet",
            _ => "grids.shp",
        };
        let cols: &[&str] = if target == "grids.shp" { &["code", "name"] } else { &["code"] };
        let path = dir.path().join(target);
        let r = std::panic::catch_unwind(|| read_features("grids", &path, cols, ReadOptions::default()));
        prop_assert!(r.is_ok(), "{name} damaged ({} of {} bytes, {} flips) panicked", damaged.len(), bytes.len(), flips.len());
        if let Ok(Err(e)) = r {
            // The error names the file it is about.
            let text = e.to_string();
            prop_assert!(text.contains("grids."), "{text}");
        }
    }
}

fn arb_coords(n: std::ops::Range<usize>) -> impl Strategy<Value = Vec<(f64, f64)>> {
    proptest::collection::vec((-180.0f64..180.0, -90.0f64..90.0), n)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The streaming decoder gives the same geometries as the geojson crate's conversion, for
    /// every geometry type (with z values, which are dropped, and foreign members, which are
    /// skipped).
    #[test]
    fn geojson_decoder_agrees_with_the_geojson_crate(
        pts in arb_coords(1..6),
        rings in proptest::collection::vec(arb_coords(4..9), 1..4),
        kind in 0usize..7,
        with_z in any::<bool>(),
    ) {
        let ls = |v: &Vec<(f64, f64)>| LineString::from(v.clone());
        let poly = || Polygon::new(ls(&rings[0]), rings[1..].iter().map(ls).collect());
        let g: Geometry<f64> = match kind {
            0 => geo::Point::new(pts[0].0, pts[0].1).into(),
            1 => geo::MultiPoint::from(pts.clone()).into(),
            2 => ls(&pts).into(),
            3 => geo::MultiLineString(rings.iter().map(ls).collect()).into(),
            4 => poly().into(),
            5 => MultiPolygon(vec![poly(), poly()]).into(),
            _ => Geometry::GeometryCollection(geo::GeometryCollection(vec![poly().into(), ls(&pts).into()])),
        };
        let mut value = serde_json::to_value(::geojson::Geometry::from(&g)).unwrap();
        if with_z {
            fn add_z(v: &mut Value) {
                match v {
                    Value::Array(a) if a.len() == 2 && a[0].is_number() => a.push(json!(12.5)),
                    Value::Array(a) => a.iter_mut().for_each(add_z),
                    Value::Object(o) => o.values_mut().for_each(add_z),
                    _ => {}
                }
            }
            add_z(&mut value);
        }
        value["foreign"] = json!({"nested": [[1, 2], "x"]});
        let doc = json!({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"a": 1}, "geometry": value}]});
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.geojson");
        std::fs::write(&p, doc.to_string()).unwrap();
        let ours = geojson::read("x", &p, &["a"]).unwrap().geometries.remove(0).unwrap();
        let theirs = Geometry::<f64>::try_from(
            serde_json::from_value::<::geojson::Geometry>(doc["features"][0]["geometry"].clone()).unwrap(),
        )
        .unwrap();
        prop_assert_eq!(&ours, &g);
        prop_assert_eq!(ours, theirs);
    }
}

/// Households from Parquet with numeric longitude/latitude: coordinates are taken as numbers,
/// and a NaN or a lone null is reported where it is (a warning for a household with a
/// building code, which places it), never dropped silently.
#[test]
fn numeric_parquet_coordinates_are_read_as_numbers_and_bad_ones_reported() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    write_sample(dir.path(), &SampleConfig::small(5)).unwrap();
    let csv = dir.path().join("households.csv");
    let mut df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .try_into_reader_with_file_path(Some(csv.clone()))
        .unwrap()
        .finish()
        .unwrap();
    let n = df.height();
    let num = |c: &str| -> Vec<Option<f64>> {
        df.column(c)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.and_then(|s| s.trim().parse().ok()))
            .collect()
    };
    let (mut lon, mut lat) = (num("lon"), num("lat"));
    let located: Vec<usize> = (0..n).filter(|&i| lon[i].is_some()).collect();
    assert!(located.len() >= 2, "the sample locates some households");
    let (a, b) = (located[0], located[1]);
    lon[a] = Some(f64::NAN);
    lat[b] = None;
    df.with_column(Column::new("lon".into(), lon)).unwrap();
    df.with_column(Column::new("lat".into(), lat)).unwrap();
    let pq = dir.path().join("households.parquet");
    ParquetWriter::new(std::fs::File::create(&pq).unwrap())
        .finish(&mut df)
        .unwrap();
    let text = std::fs::read_to_string(dir.path().join("job.toml"))
        .unwrap()
        .replace("path = \"households.csv\"", "path = \"households.parquet\"");
    std::fs::write(dir.path().join("job.toml"), text).unwrap();
    let job = Job::from_toml(dir.path().join("job.toml")).unwrap();
    let built = shequ::build(&job).unwrap();
    let bad: Vec<_> = built
        .report
        .issues()
        .iter()
        .filter(|i| i.layer == Layer::Household && i.kind == IssueKind::BadValue)
        .collect();
    for row in [a, b] {
        let i = bad
            .iter()
            .find(|i| i.index == Some(row))
            .unwrap_or_else(|| panic!("row {row} reported: {bad:?}"));
        assert!(i.detail.contains("not finite numbers"), "{}", i.detail);
    }
    let c = &built.report.counts()[&Layer::Household];
    assert_eq!(c.read, n);
    assert_eq!(c.placed + c.rejected, n, "every household accounted for");
}
