//! Issue 20's ten ways that bad input broke the promise "every row placed or reported, never a
//! panic, errors that say where": one regression test (or more) for each.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use shequ::{Build, Error, IssueKind, Job, Layer, Severity};

use crate::fixtures::*;

/// A copy of the bundled sample district in a temporary directory.
fn sample_copy() -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("data-samples/sample-city");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&src, dir.path());
    dir
}

/// Copies a directory's files and subdirectories (the sample's `registers/`).
fn copy_dir(src: &Path, to: &Path) {
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            std::fs::create_dir_all(to.join(e.file_name())).unwrap();
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn build_at(dir: &Path) -> shequ::Result<Build> {
    shequ::build(&Job::from_toml(dir.join("job.toml"))?)
}

/// (index, kind, id) of every issue of a layer, for comparing two builds.
fn issues(b: &Build, layer: Layer) -> Vec<(Option<usize>, IssueKind, Option<String>)> {
    b.report
        .for_layer(layer)
        .map(|i| (i.index, i.kind, i.id.clone()))
        .collect()
}

/// Inserts `extra` after the `after`-th line break of a file.
fn insert_line(path: &Path, after: usize, extra: &[u8]) {
    let bytes = std::fs::read(path).unwrap();
    let at = bytes
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == b'\n')
        .nth(after - 1)
        .unwrap()
        .0
        + 1;
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(extra);
    out.extend_from_slice(&bytes[at..]);
    std::fs::write(path, out).unwrap();
}

fn original() -> Build {
    build_at(sample_copy().path()).unwrap()
}

#[test]
fn item1_empty_line_in_households_csv_is_skipped_without_panic() {
    let base = original();
    let dir = sample_copy();
    insert_line(&dir.path().join("households.csv"), 2000, b"\n");
    let b = build_at(dir.path()).unwrap();
    assert_eq!(
        b.report.counts()[&Layer::Household],
        base.report.counts()[&Layer::Household]
    );
    assert_eq!(
        issues(&b, Layer::Household),
        issues(&base, Layer::Household)
    );
}

#[test]
fn item2_empty_line_in_residents_keeps_row_numbers_and_a_comma_line_is_one_row() {
    let base = original();
    let dir = sample_copy();
    let p = dir.path().join("residents.csv");
    insert_line(&p, 10, b"\r\n");
    let b = build_at(dir.path()).unwrap();
    assert_eq!(
        b.report.counts()[&Layer::Resident],
        base.report.counts()[&Layer::Resident]
    );
    assert_eq!(issues(&b, Layer::Resident), issues(&base, Layer::Resident));

    // A line of separators only is a data row with every field empty: one more row, reported
    // once (no id) at its own index; every other row keeps its number.
    let dir = sample_copy();
    let p = dir.path().join("residents.csv");
    insert_line(&p, 10, b",,,,,,,,,,,\r\n");
    let b = build_at(dir.path()).unwrap();
    let (c, c0) = (
        b.report.counts()[&Layer::Resident],
        base.report.counts()[&Layer::Resident],
    );
    assert_eq!(
        (c.read, c.placed, c.rejected),
        (c0.read + 1, c0.placed, c0.rejected + 1)
    );
    let mut expected: Vec<_> = issues(&base, Layer::Resident)
        .into_iter()
        .map(|(i, k, id)| (i.map(|i| if i >= 9 { i + 1 } else { i }), k, id))
        .collect();
    expected.push((Some(9), IssueKind::MissingId, None));
    expected.sort_by_key(|(i, k, _)| (*i, *k));
    let mut got = issues(&b, Layer::Resident);
    got.sort_by_key(|(i, k, _)| (*i, *k));
    assert_eq!(got, expected);
}

/// The sample's residents file with every line break turned into a lone CR.
fn cr_only(dir: &Path) {
    let p = dir.join("residents.csv");
    let bytes = std::fs::read(&p).unwrap();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(if bytes[i] == b'\n' { b'\r' } else { bytes[i] });
        i += 1;
    }
    std::fs::write(&p, out).unwrap();
}

#[test]
fn item3_cr_only_line_ends_and_a_padded_header_read_every_resident() {
    let base = original();
    let dir = sample_copy();
    cr_only(dir.path());
    // Pad one header name (GB18030: the header's ASCII separators are unchanged).
    let p = dir.path().join("residents.csv");
    let mut bytes = std::fs::read(&p).unwrap();
    let comma = bytes.iter().position(|&c| c == b',').unwrap();
    bytes.splice(comma..comma, *b"   ");
    bytes.splice(0..0, *b"  ");
    std::fs::write(&p, bytes).unwrap();
    let b = build_at(dir.path()).unwrap();
    assert_eq!(
        b.report.counts()[&Layer::Resident],
        base.report.counts()[&Layer::Resident]
    );
    assert_eq!(b.model.residents.len(), base.model.residents.len());
}

#[test]
fn item4_no_error_message_prints_roster_values() {
    let dir = sample_copy();
    cr_only(dir.path());
    // CR-only ends are lines now: the build equals the original's.
    let b = build_at(dir.path()).unwrap();
    assert_eq!(b.model.residents.len(), original().model.residents.len());

    // A roster without a header row: its first person would be the "header". The message
    // names the missing column but prints none of the row's values.
    let dir = sample_copy();
    let p = dir.path().join("residents.csv");
    let text = encoding_rs::GB18030
        .decode(&std::fs::read(&p).unwrap())
        .0
        .into_owned();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    let first: Vec<&str> = rows[0].split(',').collect();
    std::fs::write(&p, encoding_rs::GB18030.encode(&rows.join("\n")).0).unwrap();
    let err = build_at(dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::ColumnNotFound { .. }), "{msg}");
    for value in first.iter().filter(|v| v.chars().count() >= 2) {
        assert!(!msg.contains(value), "{value:?} in {msg}");
    }
    assert!(msg.len() < 400, "{msg}");
    // A very wide header is listed in part, each name cut short.
    let names: Vec<String> = (0..500)
        .map(|i| format!("column_{i}_{}", "x".repeat(60)))
        .collect();
    let list = shequ::error::column_list(&names);
    assert!(
        list.len() < 1500 && list.ends_with("and 470 more"),
        "{list}"
    );
}

#[test]
fn item5_one_column_for_two_keys_is_a_job_error_naming_both() {
    let dir = sample_copy();
    let job = std::fs::read_to_string(dir.path().join("job.toml")).unwrap();
    for (from, to, keys) in [
        (
            "household = \"户编号\"",
            "household = \"居民编号\"",
            ["`id`", "`household`"],
        ),
        (
            "parent = \"grid_code\"",
            "parent = \"code\"",
            ["`id`", "`parent`"],
        ),
        ("kind = \"type\"", "kind = \"name\"", ["`name`", "`kind`"]),
    ] {
        assert!(job.contains(from));
        let err = Job::from_toml_str(&job.replacen(from, to, 1), dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Job { .. }), "{msg}");
        assert!(
            msg.contains("twice") && keys.iter().all(|k| msg.contains(k)),
            "{msg}"
        );
    }
}

fn shequ_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shequ"))
}

#[test]
fn item6_crs_errors_name_the_file_or_key_and_proj_stays_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let mut v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string({
            write_layer(
                &dir.path().join("grids.geojson"),
                &[(Some(square(0.0, 0.0, 100.0)), json!({"id": "A"}))],
            );
            dir.path().join("grids.geojson")
        })
        .unwrap(),
    )
    .unwrap();
    v["crs"] = json!({"type": "name", "properties": {"name": "garbage"}});
    std::fs::write(dir.path().join("grids.geojson"), v.to_string()).unwrap();
    let job = "[layers.grids]\npath = \"grids.geojson\"\n";
    std::fs::write(dir.path().join("job.toml"), job).unwrap();
    let err = shequ::build(&Job::from_toml_str(job, dir.path()).unwrap()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("grids.geojson")
            && msg.contains("garbage")
            && !msg.contains("unknown location"),
        "{msg}"
    );
    let o = shequ_bin()
        .arg("validate")
        .arg(dir.path().join("job.toml"))
        .env_remove("PROJ_DEBUG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains("grids.geojson"), "{stderr}");
    assert!(!stderr.contains("proj_create"), "{stderr}");
    assert!(
        !stderr.contains("{ kind") && !stderr.contains("Error {"),
        "{stderr}"
    );

    for (key, value) in [
        ("working_crs", "   "),
        ("working_crs", "garbage"),
        ("output_crs", "EPSG:999999"),
        ("geojson_crs", "nonsense"),
    ] {
        let text = format!("[options]\n{key} = {value:?}\n{job}");
        let err = Job::from_toml_str(&text, dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Job { .. }), "{msg}");
        assert!(msg.contains(&format!("options.{key}")), "{msg}");
        assert!(!msg.contains("unknown location"), "{msg}");
    }
    let text = format!("{job}crs = \"garbage\"\n");
    let msg = Job::from_toml_str(&text, dir.path())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("layers.grids.crs"), "{msg}");
}

/// A square ring (closed) with corners `x0..x1`, `y0..y1` in metres from the origin, wound
/// counter-clockwise or clockwise.
fn ring(x0: f64, y0: f64, x1: f64, y1: f64, ccw: bool) -> geo::LineString<f64> {
    let mut c = vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)];
    if !ccw {
        c.reverse();
    }
    c.into_iter()
        .map(|(x, y)| (LON0 + x * DEG, LAT0 + y * DEG))
        .collect()
}

#[test]
fn item7_derived_street_keeps_children_of_either_winding() {
    use geo::{Geometry, MultiPolygon, Polygon, Winding};
    let dir = tempfile::tempdir().unwrap();
    // C1: counter-clockwise with a clockwise hole; C2 beside it: clockwise with a
    // counter-clockwise hole (holes wound "wrongly" too); C3: a multipolygon of two parts,
    // one each way. All declare street S1.
    let c1 = Polygon::new(
        ring(0.0, 0.0, 1000.0, 1000.0, true),
        vec![ring(200.0, 200.0, 300.0, 300.0, false)],
    );
    let c2 = Polygon::new(
        ring(1000.0, 0.0, 2000.0, 1000.0, false),
        vec![ring(1200.0, 200.0, 1300.0, 300.0, true)],
    );
    assert!(c2.exterior().is_cw() && c1.exterior().is_ccw());
    let c3 = MultiPolygon(vec![
        Polygon::new(ring(0.0, 1000.0, 900.0, 2000.0, false), vec![]),
        Polygon::new(ring(1100.0, 1000.0, 2000.0, 2000.0, true), vec![]),
    ]);
    // Written as raw GeoJSON: shequ's own writer would orient the rings.
    let features: Vec<serde_json::Value> = [
        (Geometry::Polygon(c1), "C1"),
        (Geometry::Polygon(c2), "C2"),
        (Geometry::MultiPolygon(c3), "C3"),
    ]
    .into_iter()
    .map(|(g, code)| {
        json!({"type": "Feature", "properties": {"code": code, "street": "S1"},
               "geometry": serde_json::to_value(geojson::Geometry::from(&g)).unwrap()})
    })
    .collect();
    let fc = json!({"type": "FeatureCollection", "features": features});
    std::fs::write(dir.path().join("communities.geojson"), fc.to_string()).unwrap();
    let text = std::fs::read_to_string(dir.path().join("communities.geojson")).unwrap();
    let first = format!("[{},{}]", LON0 + 1000.0 * DEG, LAT0);
    assert!(text.contains(&first), "C2's clockwise ring as written");
    let job = "[layers.streets]\nderive = true\n[layers.communities]\npath = \"communities.geojson\"\nid = \"code\"\nparent = \"street\"\n";
    let b = shequ::build(&Job::from_toml_str(job, dir.path()).unwrap()).unwrap();
    assert_eq!(
        b.report.count(IssueKind::OutsideParent),
        0,
        "{:?}",
        b.report.issues()
    );
    assert_eq!(b.model.communities.len(), 3);
    assert!(
        b.model
            .communities
            .iter()
            .all(|c| c.lineage.street == Some(0))
    );
    let street = b.model.streets[0].area_m2;
    let children: f64 = b.model.communities.iter().map(|c| c.area_m2).sum();
    assert!(
        (street - children).abs() / children < 1e-6,
        "{street} vs {children}"
    );
    // C1 and C2 are the same shape wound opposite ways: the same area, its hole left out;
    // C3 is 1.8 squares.
    let area = |id: &str| {
        b.model
            .communities
            .iter()
            .find(|c| c.id.as_str() == id)
            .unwrap()
            .area_m2
    };
    assert!((area("C2") / area("C1") - 1.0).abs() < 1e-3);
    assert!((area("C3") / area("C1") - 1.8 / 0.99).abs() < 1e-2);
}

#[test]
fn item8_region_china_holds_all_of_china_and_one_stray_vertex_is_a_warning() {
    use geo::{Geometry, Polygon};
    let dir = tempfile::tempdir().unwrap();
    let poly = |pts: &[(f64, f64)]| {
        let mut c = pts.to_vec();
        c.push(pts[0]);
        Geometry::Polygon(Polygon::new(c.into(), vec![]))
    };
    write_layer(
        &dir.path().join("provinces.geojson"),
        &[
            // Hainan reaching the southern islands (3.84° N).
            (
                Some(poly(&[
                    (108.6, 3.84),
                    (117.8, 10.0),
                    (111.0, 20.1),
                    (108.6, 18.0),
                ])),
                json!({"code": "46"}),
            ),
            // Heilongjiang reaching 135.006° E.
            (
                Some(poly(&[
                    (121.2, 44.0),
                    (135.006, 48.4),
                    (126.0, 53.5),
                    (121.2, 50.0),
                ])),
                json!({"code": "23"}),
            ),
            // One stray vertex far east (a digitising slip): kept, reported.
            (
                Some(poly(&[
                    (100.0, 30.0),
                    (102.0, 30.0),
                    (160.0, 31.0),
                    (102.0, 32.0),
                    (100.0, 32.0),
                ])),
                json!({"code": "51"}),
            ),
            // Wholly outside (Paris): rejected.
            (
                Some(poly(&[(2.0, 48.0), (3.0, 48.0), (3.0, 49.0)])),
                json!({"code": "99"}),
            ),
        ],
    );
    let job = "[options]\nworking_crs = \"EPSG:3857\"\n[layers.streets]\npath = \"provinces.geojson\"\nid = \"code\"\n";
    let b = shequ::build(&Job::from_toml_str(job, dir.path()).unwrap()).unwrap();
    let ids: Vec<&str> = b.model.streets.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids.len(), 3, "{ids:?} {:?}", b.report.issues());
    assert!(["46", "23", "51"].iter().all(|c| ids.contains(c)));
    let of = |id: &str| {
        b.report
            .issues()
            .iter()
            .filter(|i| i.id.as_deref() == Some(id))
            .map(|i| (i.kind, i.severity))
            .collect::<Vec<_>>()
    };
    assert_eq!(of("46"), vec![]);
    assert_eq!(of("23"), vec![]);
    assert_eq!(of("51"), vec![(IssueKind::OutOfRange, Severity::Warning)]);
    assert_eq!(of("99"), vec![(IssueKind::OutOfRange, Severity::Rejected)]);
    let warning = b
        .report
        .issues()
        .iter()
        .find(|i| i.id.as_deref() == Some("51"))
        .unwrap();
    assert!(
        warning.detail.contains("1 of 6 vertices"),
        "{}",
        warning.detail
    );
}

#[test]
fn item9_a_straddling_building_goes_to_the_grid_with_the_larger_part() {
    use geo::{Geometry, Polygon};
    let dir = tempfile::tempdir().unwrap();
    write_layer(
        &dir.path().join("grids.geojson"),
        &[
            (Some(square(0.0, 0.0, 100.0)), json!({"code": "G1"})),
            (Some(square(100.0, 0.0, 100.0)), json!({"code": "G2"})),
        ],
    );
    // A 30 × 30 m block in G1 (900 m²) with a 54 × 3 m bar into G2 (162 m²) at mid height:
    // the footprint's interior point (the middle of the widest run across its middle line)
    // lies in the bar, in G2.
    let l = Polygon::new(
        vec![
            (70.0, 0.0),
            (100.0, 0.0),
            (100.0, 14.0),
            (154.0, 14.0),
            (154.0, 17.0),
            (100.0, 17.0),
            (100.0, 30.0),
            (70.0, 30.0),
            (70.0, 0.0),
        ]
        .into_iter()
        .map(|(x, y)| (LON0 + x * DEG, LAT0 + y * DEG))
        .collect::<Vec<_>>()
        .into(),
        vec![],
    );
    {
        use geo::InteriorPoint;
        let ip = l.interior_point().unwrap();
        assert!(ip.x() > LON0 + 100.0 * DEG, "the interior point lies in G2");
    }
    write_layer(
        &dir.path().join("buildings.geojson"),
        &[(Some(Geometry::Polygon(l)), json!({"code": "B1"}))],
    );
    let job = "[layers.grids]\npath = \"grids.geojson\"\nid = \"code\"\n[layers.buildings]\npath = \"buildings.geojson\"\nid = \"code\"\n";
    let b = shequ::build(&Job::from_toml_str(job, dir.path()).unwrap()).unwrap();
    let g = b.model.buildings[0].lineage.grid.unwrap();
    assert_eq!(b.model.grids[g as usize].id.as_str(), "G1");
    let straddle: Vec<_> = b.report.for_layer(Layer::Building).collect();
    assert_eq!(straddle.len(), 1, "{straddle:?}");
    assert_eq!(
        (straddle[0].kind, straddle[0].severity),
        (IssueKind::CrossesParent, Severity::Warning)
    );
    assert!(
        straddle[0].detail.contains("straddles"),
        "{}",
        straddle[0].detail
    );
}

/// The sample's job with `[options] working_crs` and `region` replaced by the given lines.
fn sample_job_with(dir: &Path, replace: &[(&str, &str)]) -> PathBuf {
    let p = dir.join("job.toml");
    let mut job = std::fs::read_to_string(&p).unwrap();
    for (from, to) in replace {
        assert!(job.contains(from), "{from}");
        job = job.replacen(from, to, 1);
    }
    std::fs::write(&p, job).unwrap();
    p
}

#[test]
fn item10a_manifest_says_utm_when_the_utm_fallback_was_taken() {
    let dir = tempfile::tempdir().unwrap();
    // Grids near Paris: outside China's Gauss-Krüger zones.
    let at = |x: f64| {
        geo::Geometry::Polygon(geo::Polygon::new(
            vec![
                (2.0 + x, 48.0),
                (2.01 + x, 48.0),
                (2.01 + x, 48.01),
                (2.0 + x, 48.01),
                (2.0 + x, 48.0),
            ]
            .into(),
            vec![],
        ))
    };
    write_layer(
        &dir.path().join("grids.geojson"),
        &[
            (Some(at(0.0)), json!({"id": "A"})),
            (Some(at(0.01)), json!({"id": "B"})),
        ],
    );
    std::fs::write(
        dir.path().join("job.toml"),
        "[options]\nregion = \"world\"\n[layers.grids]\npath = \"grids.geojson\"\n[privacy]\noutput = \"research\"\n",
    )
    .unwrap();
    let job = Job::from_toml(dir.path().join("job.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let (b, _) = shequ::run::run(&job, out.path(), &shequ::NoProgress).unwrap();
    assert_eq!(b.model.working_crs.definition(), "EPSG:32631");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("manifest.json")).unwrap()).unwrap();
    let chosen = m["crs"]["working_chosen"].as_str().unwrap();
    assert!(
        chosen.contains("UTM") && !chosen.contains("Gauss"),
        "{chosen}"
    );
}

#[test]
fn item10b_privacy_street_in_a_research_run_is_refused() {
    let dir = sample_copy();
    let p = sample_job_with(dir.path(), &[("k = 5", "k = 5\nstreet = \"500103001\"")]);
    let err = Job::from_toml(p).unwrap_err();
    assert!(
        matches!(err, Error::Job { .. }) && err.to_string().contains("privacy.street"),
        "{err}"
    );
}

#[test]
fn item10d_a_coordinate_proj_rejects_is_reported_at_its_roster_row() {
    let dir = tempfile::tempdir().unwrap();
    write_layer(
        &dir.path().join("grids.geojson"),
        &[(Some(square(0.0, 0.0, 1000.0)), json!({"id": "G"}))],
    );
    // Coordinates in a Gauss-Krüger zone; row 2 is not a number PROJ can invert. Row 0 is
    // unlocated (no coordinates), so located rows and roster rows differ.
    let t = shequ::crs::Transformer::new(
        &shequ::Crs::lonlat(),
        &shequ::Crs::parse("EPSG:4545").unwrap(),
    )
    .unwrap();
    let mut p = vec![geo::coord! { x: LON0 + 500.0 * DEG, y: LAT0 + 500.0 * DEG }];
    t.transform_coords(&mut p).unwrap();
    let (x, y) = (p[0].x, p[0].y);
    std::fs::write(
        dir.path().join("hh.csv"),
        format!("id,x,y\nH0,,\nH1,{x},{y}\nH2,1e308,1e308\nH3,{x},{y}\n"),
    )
    .unwrap();
    let job = "[layers.grids]\npath = \"grids.geojson\"\n[layers.households]\npath = \"hh.csv\"\nlon = \"x\"\nlat = \"y\"\ncrs = \"EPSG:4545\"\n";
    let b = shequ::build(&Job::from_toml_str(job, dir.path()).unwrap()).unwrap();
    let c = b.report.counts()[&Layer::Household];
    assert_eq!((c.read, c.placed, c.rejected), (4, 2, 2));
    let rejected: Vec<(Option<usize>, IssueKind)> = b
        .report
        .for_layer(Layer::Household)
        .map(|i| (i.index, i.kind))
        .collect();
    assert!(
        rejected.contains(&(Some(2), IssueKind::OutOfRange)),
        "{rejected:?}"
    );
    assert!(
        rejected.contains(&(Some(0), IssueKind::Unlocated)),
        "{rejected:?}"
    );
}

#[test]
fn item10e_siting_candidates_without_prj_are_refused_like_layers() {
    use dbase::{FieldName, FieldValue, Record, TableWriterBuilder};
    let dir = sample_copy();
    let table =
        TableWriterBuilder::new().add_character_field(FieldName::try_from("code").unwrap(), 20);
    let mut w = shapefile::Writer::from_path(dir.path().join("sites.shp"), table).unwrap();
    let mut rec = Record::default();
    rec.insert("code".into(), FieldValue::Character(Some("S1".into())));
    w.write_shape_and_record(&shapefile::Point::new(106.57, 29.55), &rec)
        .unwrap();
    drop(w);
    let p = sample_job_with(
        dir.path(),
        &[(
            "k = 3 ",
            "k = 3\ncandidates = { path = \"sites.shp\", id = \"code\" }\n#",
        )],
    );
    let job = Job::from_toml(p).unwrap();
    let mut b = shequ::build(&job).unwrap();
    let policy = shequ::run::policy(&job).unwrap();
    let err = shequ::run::analyse(&job, &mut b, policy).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Crs { .. }), "{msg}");
    assert!(
        msg.contains("sites.shp") && msg.contains("declares no CRS"),
        "{msg}"
    );
}

#[test]
fn accounting_invariant_is_checked_by_every_build() {
    // The invariant itself: a report whose numbers do not add up names the layer.
    let mut r = shequ::QualityReport::default();
    r.set_count(
        Layer::Resident,
        shequ::LayerCount {
            read: 3,
            placed: 1,
            rejected: 1,
        },
    );
    let (layer, why) = r.check_accounting().unwrap_err();
    assert_eq!(layer, Layer::Resident);
    assert!(why.contains("read 3"), "{why}");
    let e = Error::Internal {
        at: shequ::Location::layer("residents"),
        message: why,
    };
    assert!(
        e.to_string()
            .starts_with("internal error (layer residents)"),
        "{e}"
    );
}

/// Found by the fuzz harness (`job_toml`): households located by coordinates in a job with
/// building footprints and no polygon level indexed an empty table.
#[test]
fn fuzz_found_households_by_coordinates_without_polygon_levels() {
    let dir = tempfile::tempdir().unwrap();
    write_layer(
        &dir.path().join("buildings.geojson"),
        &[(Some(square(0.0, 0.0, 50.0)), json!({"code": "B1"}))],
    );
    let (x, y) = (LON0 + 10.0 * DEG, LAT0 + 10.0 * DEG);
    std::fs::write(
        dir.path().join("hh.csv"),
        format!("id,lon,lat\nH1,{x},{y}\nH2,{},{y}\n", LON0 + 500.0 * DEG),
    )
    .unwrap();
    let job = "[layers.buildings]\npath = \"buildings.geojson\"\nid = \"code\"\n[layers.households]\npath = \"hh.csv\"\nlon = \"lon\"\nlat = \"lat\"\n";
    let b = shequ::build(&Job::from_toml_str(job, dir.path()).unwrap()).unwrap();
    let c = b.report.counts()[&Layer::Household];
    assert_eq!((c.read, c.placed + c.rejected), (2, 2));
    assert_eq!(b.model.households[0].lineage.building, Some(0));
}

/// Found by the fuzz harness (`geoparquet`): a damaged GeoParquet file made the `parquet`
/// crate index out of bounds; it is a located error now. Every truncation of a real file is
/// tried.
#[test]
fn fuzz_found_damaged_geoparquet_is_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    let good = crate::fuzz::geoparquet_seed();
    let p = dir.path().join("grids.parquet");
    for cut in (0..good.len()).step_by(7) {
        let mut bad = good.clone();
        bad.drain(cut..(cut + 172).min(bad.len()));
        std::fs::write(&p, &bad).unwrap();
        match shequ::io::read_features("grids", &p, &["code"], Default::default()) {
            Ok(fl) => assert!(fl.columns[0].len() == fl.len()),
            Err(e) => assert!(e.to_string().contains("grids.parquet"), "{e}"),
        }
    }
}
