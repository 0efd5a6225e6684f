//! Parent rules and partial hierarchies on hand-made layers.

use serde_json::json;
use shequ::{IssueKind, Job, Layer, ParentRule, Severity};

use crate::fixtures::*;

fn grid_community(built: &shequ::Build, grid: &str) -> Option<String> {
    let m = &built.model;
    let g = m.grids.iter().find(|g| g.id.as_str() == grid)?;
    g.lineage
        .community
        .map(|c| m.communities[c as usize].id.to_string())
}

#[test]
fn declared_rule_keeps_declared_parent_and_reports_conflict() {
    let dir = tempfile::tempdir().unwrap();
    two_communities(dir.path());
    let job = Job::from_toml_str(TWO_COMMUNITIES_JOB, dir.path()).unwrap();
    let built = shequ::build(&job).unwrap();
    assert_eq!(grid_community(&built, "G1").as_deref(), Some("C2"));
    assert_eq!(grid_community(&built, "G2").as_deref(), Some("C2"));
    assert_eq!(grid_community(&built, "G3").as_deref(), Some("C1"));
    assert_eq!(grid_community(&built, "G4"), None);
    let r = &built.report;
    let conflict: Vec<_> = r
        .issues()
        .iter()
        .filter(|i| i.kind == IssueKind::ParentConflict)
        .collect();
    assert_eq!(conflict.len(), 1);
    assert_eq!(conflict[0].id.as_deref(), Some("G1"));
    assert_eq!(conflict[0].severity, Severity::Warning);
    let unknown: Vec<_> = r
        .issues()
        .iter()
        .filter(|i| i.kind == IssueKind::UnknownParent)
        .collect();
    assert_eq!(unknown.len(), 1);
    assert!(unknown[0].detail.contains("C9"));
    // G4 lies in no community and declares none: rejected, and accounted for.
    let g4: Vec<_> = r
        .for_layer(Layer::Grid)
        .filter(|i| i.id.as_deref() == Some("G4"))
        .collect();
    assert_eq!(g4.len(), 1);
    assert_eq!(
        (g4[0].kind, g4[0].severity),
        (IssueKind::OutsideParent, Severity::Rejected)
    );
    assert_eq!(r.counts()[&Layer::Grid].placed, 3);
    assert_eq!(r.counts()[&Layer::Grid].rejected, 1);
    r.check_accounting().unwrap();
    // G1 declared C2 but lies in C1: under the declared rule it crosses C2's boundary entirely.
    assert!(
        r.issues()
            .iter()
            .any(|i| i.kind == IssueKind::CrossesParent && i.id.as_deref() == Some("G1"))
    );
}

#[test]
fn spatial_rule_uses_location() {
    let dir = tempfile::tempdir().unwrap();
    two_communities(dir.path());
    let mut job = Job::from_toml_str(TWO_COMMUNITIES_JOB, dir.path()).unwrap();
    job.options.parent_rule = ParentRule::Spatial;
    let built = shequ::build(&job).unwrap();
    assert_eq!(grid_community(&built, "G1").as_deref(), Some("C1"));
    assert!(
        built
            .report
            .issues()
            .iter()
            .any(|i| i.kind == IssueKind::ParentConflict && i.detail.contains("spatial wins"))
    );
    assert!(
        !built
            .report
            .issues()
            .iter()
            .any(|i| i.kind == IssueKind::CrossesParent)
    );
}

/// Overlapping children can cover more than their parent's area and still leave a gap: the
/// gap is found (the build skips the union of the children only when their areas and overlaps
/// prove there is none).
#[test]
fn gap_beside_overlapping_children_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_layer(
        &dir.path().join("communities.geojson"),
        &[(
            Some(square(0.0, 0.0, 1000.0)),
            json!({"code": "C1", "street": "S1"}),
        )],
    );
    // 60% + 54% of C1, overlapping by 18%: the north-east 4% is covered by neither.
    write_layer(
        &dir.path().join("grids.geojson"),
        &[
            (
                Some(rect(0.0, 0.0, 600.0, 1000.0)),
                json!({"code": "G1", "community": "C1"}),
            ),
            (
                Some(rect(400.0, 0.0, 600.0, 900.0)),
                json!({"code": "G2", "community": "C1"}),
            ),
        ],
    );
    let job = Job::from_toml_str(TWO_COMMUNITIES_JOB, dir.path()).unwrap();
    let built = shequ::build(&job).unwrap();
    let issues = built.report.issues();
    let gap = issues
        .iter()
        .find(|i| i.kind == IssueKind::Gap && i.id.as_deref() == Some("C1"))
        .expect("the north-east corner is covered by no grid");
    let area: f64 = gap.detail.split(' ').next().unwrap().parse().unwrap();
    let c1 = &built.model.communities[0];
    assert!((area / c1.area_m2 - 0.04).abs() < 0.001, "{}", gap.detail);
    let overlap = issues
        .iter()
        .find(|i| i.kind == IssueKind::Overlap)
        .expect("G1 and G2 overlap");
    let by: f64 = overlap
        .detail
        .rsplit(" by ")
        .next()
        .unwrap()
        .trim_end_matches(" m²")
        .parse()
        .unwrap();
    assert!((by / c1.area_m2 - 0.18).abs() < 0.001, "{}", overlap.detail);
}

#[test]
fn gaps_inside_parents_are_reported_with_area() {
    let dir = tempfile::tempdir().unwrap();
    two_communities(dir.path());
    let job = Job::from_toml_str(TWO_COMMUNITIES_JOB, dir.path()).unwrap();
    let built = shequ::build(&job).unwrap();
    let gap = built
        .report
        .issues()
        .iter()
        .find(|i| i.kind == IssueKind::Gap && i.id.as_deref() == Some("C2"))
        .expect("C2 is mostly not covered by grids");
    // Only G2 (9% of C2) lies in C2; G1 is assigned to it but lies in C1.
    let area: f64 = gap.detail.split(' ').next().unwrap().parse().unwrap();
    let c2 = built
        .model
        .communities
        .iter()
        .find(|c| c.id.as_str() == "C2")
        .unwrap();
    assert!(
        (area / c2.area_m2 - 0.91).abs() < 0.001,
        "{} of {}",
        gap.detail,
        c2.area_m2
    );
}

#[test]
fn grids_only_with_households_by_coordinates() {
    let dir = tempfile::tempdir().unwrap();
    write_layer(
        &dir.path().join("grids.geojson"),
        &[
            (Some(square(0.0, 0.0, 100.0)), json!({"id": "A"})),
            (Some(square(100.0, 0.0, 100.0)), json!({"id": "B"})),
        ],
    );
    let csv = format!(
        "hid,x,y\nh1,{},{}\nh2,{},{}\nh3,{},{}\nh4,,\n",
        LON0 + 50.0 * DEG,
        LAT0 + 50.0 * DEG,
        LON0 + 150.0 * DEG,
        LAT0 + 50.0 * DEG,
        LON0 + 500.0 * DEG,
        LAT0 + 50.0 * DEG,
    );
    std::fs::write(dir.path().join("hh.csv"), csv).unwrap();
    let job = Job::from_toml_str(
        r#"
        [layers.grids]
        path = "grids.geojson"
        [layers.households]
        path = "hh.csv"
        id = "hid"
        lon = "x"
        lat = "y"
        "#,
        dir.path(),
    )
    .unwrap();
    let built = shequ::build(&job).unwrap();
    let m = &built.model;
    assert_eq!(m.levels, vec![Layer::Grid, Layer::Household]);
    let grid_of = |id: &str| {
        let h = m.households.iter().find(|h| h.id.as_str() == id).unwrap();
        h.lineage.grid.map(|g| m.grids[g as usize].id.to_string())
    };
    assert_eq!(grid_of("h1").as_deref(), Some("A"));
    assert_eq!(grid_of("h2").as_deref(), Some("B"));
    assert_eq!(grid_of("h3"), None);
    assert!(m.households.iter().all(|h| h.lineage.community.is_none()));
    let c = built.report.counts()[&Layer::Household];
    assert_eq!((c.read, c.placed, c.rejected), (4, 2, 2));
    built.report.check_accounting().unwrap();
    assert_eq!(built.report.count(IssueKind::Unlocated), 1);
    assert_eq!(built.report.count(IssueKind::OutsideParent), 1);
}

#[test]
fn derived_levels_dissolve_children() {
    let dir = tempfile::tempdir().unwrap();
    write_layer(
        &dir.path().join("grids.geojson"),
        &[
            (
                Some(square(0.0, 0.0, 100.0)),
                json!({"id": "g1", "c": "500103001001"}),
            ),
            (
                Some(square(100.0, 0.0, 100.0)),
                json!({"id": "g2", "c": "500103001001"}),
            ),
            (
                Some(square(200.0, 0.0, 100.0)),
                json!({"id": "g3", "c": "500103001002"}),
            ),
            (
                Some(square(300.0, 0.0, 100.0)),
                json!({"id": "g4", "c": "500103002001"}),
            ),
        ],
    );
    let job = Job::from_toml_str(
        r#"
        [layers.streets]
        derive = true
        [layers.communities]
        derive = true
        parent_prefix = 9
        [layers.grids]
        path = "grids.geojson"
        parent = "c"
        "#,
        dir.path(),
    )
    .unwrap();
    let built = shequ::build(&job).unwrap();
    let m = &built.model;
    assert_eq!(m.communities.len(), 3);
    assert_eq!(m.streets.len(), 2);
    let c1 = m
        .communities
        .iter()
        .find(|c| c.id.as_str() == "500103001001")
        .unwrap();
    assert_eq!(
        c1.geometry.0.len(),
        1,
        "two adjacent grids dissolve into one polygon"
    );
    let g_area: f64 = m.grids[..2].iter().map(|g| g.area_m2).sum();
    assert!(
        (c1.area_m2 - g_area).abs() < 1.0,
        "{} vs {}",
        c1.area_m2,
        g_area
    );
    assert!(c1.source_index.is_none());
    let s1 = m
        .streets
        .iter()
        .position(|s| s.id.as_str() == "500103001")
        .unwrap();
    assert_eq!(c1.lineage.street, Some(s1 as u32));
    for g in &m.grids {
        assert!(g.lineage.community.is_some() && g.lineage.street.is_some());
    }
    assert_eq!(built.report.counts()[&Layer::Grid].placed, 4);
    assert!(
        built.report.issues().is_empty(),
        "{:?}",
        built.report.issues()
    );
}

#[test]
fn buildings_as_points_without_polygons() {
    let dir = tempfile::tempdir().unwrap();
    write_layer(
        &dir.path().join("b.geojson"),
        &[
            (Some(point(0.0, 0.0)), json!({"id": "B1"})),
            (Some(point(100.0, 0.0)), json!({"id": "B2"})),
        ],
    );
    std::fs::write(dir.path().join("hh.csv"), "id,b\nh1,B1\nh2,B2\nh3,B3\n").unwrap();
    let job = Job::from_toml_str(
        r#"
        [layers.buildings]
        path = "b.geojson"
        [layers.households]
        path = "hh.csv"
        building = "b"
        "#,
        dir.path(),
    )
    .unwrap();
    let built = shequ::build(&job).unwrap();
    let m = &built.model;
    assert_eq!(m.buildings.len(), 2);
    assert!(m.buildings.iter().all(|b| b.footprint.is_none()));
    assert_eq!(m.households.iter().filter(|h| h.placed).count(), 2);
    let r = &built.report;
    assert_eq!(r.count(IssueKind::UnknownReference), 1);
    r.check_accounting().unwrap();
}

#[test]
fn rosters_can_be_parquet_with_typed_columns() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    write_layer(
        &dir.path().join("grids.geojson"),
        &[(Some(square(0.0, 0.0, 100.0)), json!({"id": "A"}))],
    );
    // Numeric ids and float coordinates, as a database export would type them.
    let mut df = df!(
        "hid" => [1i64, 2, 3],
        "x" => [LON0 + 10.0 * DEG, LON0 + 20.0 * DEG, LON0 + 900.0 * DEG],
        "y" => [LAT0 + 10.0 * DEG, LAT0 + 20.0 * DEG, LAT0 + 10.0 * DEG],
    )
    .unwrap();
    let f = std::fs::File::create(dir.path().join("hh.parquet")).unwrap();
    ParquetWriter::new(f).finish(&mut df).unwrap();
    let mut res = df!("rid" => ["r1", "r2", "r3"], "hid" => [1i64, 1, 3]).unwrap();
    let f = std::fs::File::create(dir.path().join("res.parquet")).unwrap();
    ParquetWriter::new(f).finish(&mut res).unwrap();
    let job = Job::from_toml_str(
        r#"
        [layers.grids]
        path = "grids.geojson"
        [layers.households]
        path = "hh.parquet"
        id = "hid"
        lon = "x"
        lat = "y"
        [layers.residents]
        path = "res.parquet"
        id = "rid"
        household = "hid"
        "#,
        dir.path(),
    )
    .unwrap();
    let built = shequ::build(&job).unwrap();
    let m = &built.model;
    let placed: Vec<&str> = m
        .households
        .iter()
        .filter(|h| h.placed)
        .map(|h| h.id.as_str())
        .collect();
    assert_eq!(placed, vec!["1", "2"]);
    assert_eq!(m.households[0].residents, 2);
    // r3 belongs to household 3, which lies outside every grid.
    assert_eq!(m.residents.len(), 2);
    let c = built.report.counts()[&Layer::Resident];
    assert_eq!((c.read, c.placed, c.rejected), (3, 2, 1));
    built.report.check_accounting().unwrap();
}

#[test]
fn a_household_in_a_straddling_building_follows_the_building() {
    // Grids A (x 0-100) and B (x 100-200); building F straddles them, declared in B. A
    // household located by coordinates at x = 70 lies in grid A's part of F's footprint: it
    // belongs to F and so to B, and every count still rolls up exactly.
    let dir = tempfile::tempdir().unwrap();
    write_layer(
        &dir.path().join("grids.geojson"),
        &[
            (Some(square(0.0, 0.0, 100.0)), json!({"id": "A"})),
            (Some(square(100.0, 0.0, 100.0)), json!({"id": "B"})),
        ],
    );
    write_layer(
        &dir.path().join("buildings.geojson"),
        &[(
            Some(square(60.0, 20.0, 120.0 - 60.0 + 60.0)),
            json!({"id": "F", "grid": "B"}),
        )],
    );
    let csv = format!(
        "hid,x,y\nh1,{},{}\nh2,{},{}\n",
        LON0 + 70.0 * DEG,
        LAT0 + 30.0 * DEG,
        LON0 + 30.0 * DEG,
        LAT0 + 10.0 * DEG,
    );
    std::fs::write(dir.path().join("hh.csv"), csv).unwrap();
    let job = Job::from_toml_str(
        r#"
        [layers.grids]
        path = "grids.geojson"
        [layers.buildings]
        path = "buildings.geojson"
        parent = "grid"
        [layers.households]
        path = "hh.csv"
        id = "hid"
        lon = "x"
        lat = "y"
        "#,
        dir.path(),
    )
    .unwrap();
    let built = shequ::build(&job).unwrap();
    let m = &built.model;
    let h1 = m.households.iter().find(|h| h.id.as_str() == "h1").unwrap();
    let b = h1.lineage.building.expect("in building F") as usize;
    assert_eq!(m.buildings[b].id.as_str(), "F");
    assert_eq!(h1.lineage.grid, m.buildings[b].lineage.grid);
    let release =
        shequ::output::release::Release::new(m, &shequ::privacy::Policy::research(1)).unwrap();
    let grid = |g: &str| m.grids.iter().position(|x| x.id.as_str() == g).unwrap() as u32;
    assert_eq!(
        release.count(
            Layer::Grid,
            grid(
                m.grids[m.buildings[b].lineage.grid.unwrap() as usize]
                    .id
                    .as_str()
            ),
            "households"
        ),
        Some(1)
    );
    assert_eq!(
        release.count(Layer::Building, b as u32, "households"),
        Some(1)
    );
}
