//! Coordinate systems: GCJ-02/BD-09, mixed-CRS jobs, provenance, exports, areas of use.

use geo::Coord;
use serde_json::json;
use shequ::crs::{Shift, Transformer};
use shequ::{Crs, IssueKind, Job};

use crate::fixtures::*;

/// Metres between two lon/lat points (equirectangular; fine at these distances).
fn metres(a: (f64, f64), b: (f64, f64)) -> f64 {
    let k = (a.1.to_radians()).cos();
    (((a.0 - b.0) * 111_320.0 * k).powi(2) + ((a.1 - b.1) * 110_574.0).powi(2)).sqrt()
}

#[test]
fn gcj02_and_bd09_round_trips_stay_under_a_centimetre_across_mainland_china() {
    let mut checked = 0;
    for lon10 in (740..1350).step_by(7) {
        for lat10 in (185..535).step_by(7) {
            let p = (lon10 as f64 / 10.0 + 0.0123, lat10 as f64 / 10.0 + 0.0456);
            if !coordtransform::is_in_gcj02_region(p.0, p.1) {
                continue;
            }
            for s in [Shift::Gcj02, Shift::Bd09] {
                let q = s.from_wgs84(p.0, p.1);
                assert!(metres(p, q) > 1.0, "{s:?} shifts {p:?}");
                let back = s.to_wgs84(q.0, q.1);
                assert!(
                    metres(p, back) < 0.01,
                    "{s:?} round trip at {p:?}: {} m",
                    metres(p, back)
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 300, "only {checked} mainland points");
}

#[test]
fn published_reference_conversions_match() {
    // The reference values published with the widely used coordtransform (JavaScript) library:
    // wgs84togcj02(116.404, 39.915) and gcj02tobd09(116.404, 39.915).
    let g = Shift::Gcj02.from_wgs84(116.404, 39.915);
    assert!(
        (g.0 - 116.410_244_499_169_38).abs() < 1e-9 && (g.1 - 39.916_404_281_501_64).abs() < 1e-9
    );
    let t = Transformer::new(&Crs::gcj02(), &Crs::bd09()).unwrap();
    let mut c = vec![Coord {
        x: 116.404,
        y: 39.915,
    }];
    t.transform_coords(&mut c).unwrap();
    assert!(
        (c[0].x - 116.410_369_493_710_29).abs() < 1e-8
            && (c[0].y - 39.921_336_993_510_22).abs() < 1e-8,
        "{c:?}"
    );
}

#[test]
fn points_abroad_in_hong_kong_macau_and_taiwan_are_not_shifted() {
    for p in [
        (114.1694, 22.3193), // Hong Kong
        (113.5439, 22.1987), // Macau
        (121.5654, 25.0330), // Taipei
        (126.9780, 37.5665), // Seoul
        (105.8342, 21.0278), // Hanoi
        (139.6917, 35.6895), // Tokyo
        (2.3522, 48.8566),   // Paris
    ] {
        for s in [Shift::Gcj02, Shift::Bd09] {
            assert_eq!(s.from_wgs84(p.0, p.1), p, "{s:?} {p:?}");
            assert_eq!(s.to_wgs84(p.0, p.1), p, "{s:?} {p:?}");
        }
    }
    // Shenzhen, across the border from Hong Kong, is shifted.
    assert_ne!(
        Shift::Gcj02.from_wgs84(114.0579, 22.5431),
        (114.0579, 22.5431)
    );
}

#[test]
fn pseudo_crs_names_parse() {
    for t in ["gcj02", "GCJ-02", "gcj_02"] {
        assert_eq!(Crs::parse(t).unwrap(), Crs::gcj02());
    }
    for t in ["bd09", "BD-09", "bd09ll"] {
        assert_eq!(Crs::parse(t).unwrap(), Crs::bd09());
    }
    let e = Crs::gcj02().projjson().unwrap_err().to_string();
    assert!(e.contains("GCJ-02") && e.contains("GeoJSON"), "{e}");
}

/// Buildings in WGS84, facilities in GCJ-02 at the same places: after the build they coincide.
#[test]
fn a_job_mixing_gcj02_facilities_with_wgs84_buildings_gets_distances_right() {
    let dir = tempfile::tempdir().unwrap();
    let spots = [(100.0, 100.0), (400.0, 250.0), (800.0, 700.0)];
    let wgs: Vec<(f64, f64)> = spots
        .iter()
        .map(|&(x, y)| (LON0 + x * DEG, LAT0 + y * DEG))
        .collect();
    let lonlat = |p: (f64, f64)| geo::Geometry::Point(geo::Point::new(p.0, p.1));
    write_layer(
        &dir.path().join("b.geojson"),
        &wgs.iter()
            .enumerate()
            .map(|(i, p)| (Some(lonlat(*p)), json!({"id": format!("B{i}")})))
            .collect::<Vec<_>>(),
    );
    write_layer(
        &dir.path().join("f.geojson"),
        &wgs.iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    Some(lonlat(Shift::Gcj02.from_wgs84(p.0, p.1))),
                    json!({"id": format!("F{i}"), "type": "clinic"}),
                )
            })
            .collect::<Vec<_>>(),
    );
    let job_text = |crs: &str| {
        format!(
            "[layers.buildings]\npath = \"b.geojson\"\n[layers.facilities]\npath = \"f.geojson\"\ncrs = \"{crs}\"\n"
        )
    };
    let built = shequ::build(&Job::from_toml_str(&job_text("gcj02"), dir.path()).unwrap()).unwrap();
    let m = &built.model;
    for (b, f) in m.buildings.iter().zip(&m.facilities) {
        let d = ((b.point.x - f.point.x).powi(2) + (b.point.y - f.point.y).powi(2)).sqrt();
        assert!(d < 0.01, "{} to {}: {d} m", b.id, f.id);
    }
    // Declared as WGS84 by mistake, the same facilities are hundreds of metres off.
    let wrong =
        shequ::build(&Job::from_toml_str(&job_text("EPSG:4326"), dir.path()).unwrap()).unwrap();
    let (b, f) = (&wrong.model.buildings[0], &wrong.model.facilities[0]);
    let d = ((b.point.x - f.point.x).powi(2) + (b.point.y - f.point.y).powi(2)).sqrt();
    assert!(d > 100.0 && d < 1000.0, "{d}");
    // Provenance names every conversion.
    let fac = built
        .inputs
        .iter()
        .find(|i| i.layer == shequ::Layer::Facility)
        .unwrap();
    assert_eq!(fac.crs.as_deref(), Some("GCJ02"));
    assert!(
        fac.conversions[0].starts_with("GCJ-02 -> WGS84"),
        "{:?}",
        fac.conversions
    );
    assert!(
        fac.conversions
            .last()
            .unwrap()
            .contains(m.working_crs.definition())
    );
}

#[test]
fn geojson_exports_in_wgs84_gcj02_and_bd09_are_flagged() {
    let dir = tempfile::tempdir().unwrap();
    write_layer(
        &dir.path().join("g.geojson"),
        &[(Some(square(0.0, 0.0, 300.0)), json!({"id": "G1"}))],
    );
    let run = |geojson_crs: &str| -> serde_json::Value {
        let mut job =
            Job::from_toml_str("[layers.grids]\npath = \"g.geojson\"", dir.path()).unwrap();
        job.options.geojson_crs = geojson_crs.parse().unwrap();
        job.privacy = Some(shequ::PrivacyOptions::research());
        let out = dir.path().join(format!("out-{geojson_crs}"));
        shequ::run::run(&job, &out, &shequ::NoProgress).unwrap();
        serde_json::from_slice(&std::fs::read(out.join("grids.geojson")).unwrap()).unwrap()
    };
    let first = |v: &serde_json::Value| {
        let c = &v["features"][0]["geometry"]["coordinates"][0][0][0];
        (c[0].as_f64().unwrap(), c[1].as_f64().unwrap())
    };
    let wgs = run("EPSG:4326");
    assert!(
        wgs["shequ:coordinate_system"]
            .as_str()
            .unwrap()
            .contains("RFC 7946")
    );
    assert!(
        (first(&wgs).0 - LON0).abs() < 1e-6 && (first(&wgs).1 - LAT0).abs() < 1e-6,
        "{:?}",
        first(&wgs)
    );
    assert_eq!(wgs["features"][0]["properties"]["grid_id"], "G1");
    for (name, shift) in [("gcj02", Shift::Gcj02), ("bd09", Shift::Bd09)] {
        let v = run(name);
        assert!(
            v["shequ:coordinate_system"]
                .as_str()
                .unwrap()
                .starts_with(shift.name())
        );
        let expect = shift.from_wgs84(first(&wgs).0, first(&wgs).1);
        let got = first(&v);
        assert!(metres(expect, got) < 0.02, "{name}: {got:?} vs {expect:?}");
        let conv = v["shequ:provenance"]["shequ:conversions"]
            .as_array()
            .unwrap();
        assert!(
            conv.last()
                .unwrap()
                .as_str()
                .unwrap()
                .contains(shift.name())
        );
    }
    // GeoParquet cannot carry a pseudo-CRS: a clear error, not a silently wrong file.
    let mut job = Job::from_toml_str("[layers.grids]\npath = \"g.geojson\"", dir.path()).unwrap();
    job.options.output_crs = "gcj02".parse().unwrap();
    job.privacy = Some(shequ::PrivacyOptions::research());
    let e = shequ::run::run(&job, &dir.path().join("bad"), &shequ::NoProgress)
        .unwrap_err()
        .to_string();
    assert!(e.contains("GCJ-02"), "{e}");
}

#[test]
fn outside_the_crs_area_of_use_is_reported_for_non_chinese_data() {
    let dir = tempfile::tempdir().unwrap();
    // UTM zone 32N (6E-12E); one point in it (Frankfurt), one far outside (Beijing's lon/lat
    // projected into zone 32 would be absurd, so use a lon/lat 40 degrees east).
    let to_utm = Transformer::new(&Crs::lonlat(), &Crs::parse("EPSG:32632").unwrap()).unwrap();
    let mut pts = vec![Coord { x: 8.68, y: 50.11 }, Coord { x: 48.0, y: 50.11 }];
    to_utm.transform_coords(&mut pts).unwrap();
    write_layer(
        &dir.path().join("f.geojson"),
        &[
            (
                Some(geo::Geometry::Point(pts[0].into())),
                json!({"id": "in", "type": "clinic"}),
            ),
            (
                Some(geo::Geometry::Point(pts[1].into())),
                json!({"id": "out", "type": "clinic"}),
            ),
        ],
    );
    let job = Job::from_toml_str(
        "[options]\nregion = \"world\"\n[layers.facilities]\npath = \"f.geojson\"\ncrs = \"EPSG:32632\"",
        dir.path(),
    )
    .unwrap();
    let built = shequ::build(&job).unwrap();
    assert_eq!(built.model.facilities.len(), 1);
    assert_eq!(built.model.facilities[0].id.as_str(), "in");
    let issue = &built.report.issues()[0];
    assert_eq!(
        (issue.kind, issue.id.as_deref()),
        (IssueKind::OutOfRange, Some("out"))
    );
    assert_eq!(built.model.working_crs.definition(), "EPSG:32632");
}

/// `n` longitude/latitude points on a lattice `cols` wide from (`x0`, `y0`) in steps `dx`, `dy`.
fn lattice(n: usize, cols: usize, (x0, y0): (f64, f64), (dx, dy): (f64, f64)) -> Vec<Coord<f64>> {
    (0..n)
        .map(|i| Coord {
            x: x0 + (i % cols) as f64 * dx,
            y: y0 + (i / cols) as f64 * dy,
        })
        .collect()
}

/// Worker threads build their PROJ objects from the pipeline the first thread found: every
/// point comes out exactly as from a PROJ object of its own, on any number of threads.
#[test]
fn parallel_transforms_match_a_fresh_proj_object_per_point() {
    let pts = lattice(40_000, 200, (103.0, 25.0), (0.03, 0.05));
    for to in ["EPSG:4545", "EPSG:32648", "EPSG:3857"] {
        let fresh = proj::Proj::new_known_crs("EPSG:4326", to, None).unwrap();
        let want: Vec<(f64, f64)> = pts
            .iter()
            .map(|c| fresh.convert((c.x, c.y)).unwrap())
            .collect();
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut got = pts.clone();
            let t = Transformer::new(&Crs::parse("EPSG:4326").unwrap(), &Crs::parse(to).unwrap())
                .unwrap();
            pool.install(|| t.transform_coords(&mut got)).unwrap();
            for (g, w) in got.iter().zip(&want) {
                assert_eq!((g.x, g.y), *w, "{to} on {threads} threads");
            }
        }
    }
}

/// Longitude/latitude (OGC:CRS84) goes to PROJ as EPSG:4326 with normalised axes: the same
/// numbers as PROJ's own CRS84 operation.
#[test]
fn crs84_transforms_like_proj_does() {
    let pts = lattice(2_000, 50, (73.0, 18.0), (1.1, 0.8));
    for to in ["EPSG:4545", "EPSG:4490", "EPSG:32650"] {
        let fresh = proj::Proj::new_known_crs("OGC:CRS84", to, None).unwrap();
        let t = Transformer::new(&Crs::lonlat(), &Crs::parse(to).unwrap()).unwrap();
        let mut got = pts.clone();
        t.transform_coords(&mut got).unwrap();
        for (g, c) in got.iter().zip(&pts) {
            let w = fresh.convert((c.x, c.y)).unwrap();
            assert!(
                (g.x - w.0).abs() < 1e-6 && (g.y - w.1).abs() < 1e-6,
                "{to}: {g:?} vs {w:?}"
            );
        }
    }
}
