//! The sample's planted data-quality problems, one of every kind the quality report knows.

use std::fmt::Write as _;

use ::geojson::JsonObject;
use geo::{Coord, Geometry, LineString, Point, Polygon};
use serde_json::json;

use super::id_check_char;
use super::lattice::{Lattice, lonlat_geom, props, rect, to_lonlat};

/// Appends one deliberate problem of each kind the quality report knows to the buildings,
/// households and facilities (the residents' are [`planted_residents`]).
#[allow(clippy::too_many_arguments)]
pub(super) fn plant(
    lat: &Lattice,
    grid_cells: &[(String, i64, i64)],
    b_geoms: &mut Vec<Option<Geometry<f64>>>,
    b_props: &mut Vec<JsonObject>,
    hh: &mut String,
    f_geoms: &mut Vec<Option<Geometry<f64>>>,
    f_props: &mut Vec<JsonObject>,
    households: &[(String, String, Option<Coord<f64>>)],
) {
    plant_buildings(lat, grid_cells, b_geoms, b_props);
    let (_, ci, cj) = &grid_cells[0];
    plant_households(lat, (*ci, *cj), hh, households);
    plant_facilities(lat, (*ci, *cj), f_geoms, f_props);
}

/// Buildings: a bow tie, a repeated code, an unknown grid, a parent conflict, a footprint
/// across two grids, one outside the district, one without geometry.
fn plant_buildings(
    lat: &Lattice,
    grid_cells: &[(String, i64, i64)],
    b_geoms: &mut Vec<Option<Geometry<f64>>>,
    b_props: &mut Vec<JsonObject>,
) {
    let (g0, ci, cj) = &grid_cells[0];
    let (g1, _, _) = &grid_cells[1];
    let first_code = b_props[0]["code"].as_str().unwrap_or_default().to_owned();
    let mut building = |geom: Geometry<f64>, code: &str, grid: &str| {
        b_geoms.push(Some(lonlat_geom(geom)));
        b_props.push(props(
            json!({"code": code, "name": "planted", "grid_code": grid}),
        ));
    };
    // invalid_geometry: a bow-tie footprint.
    let c = lat.inside(*ci, *cj, 0.1, 0.1);
    let bow = Polygon::new(
        LineString(vec![
            c,
            Coord {
                x: c.x + 10.0,
                y: c.y + 10.0,
            },
            Coord {
                x: c.x + 10.0,
                y: c.y,
            },
            Coord {
                x: c.x,
                y: c.y + 10.0,
            },
            c,
        ]),
        vec![],
    );
    building(Geometry::Polygon(bow), "PLANTED-BOWTIE", g0);
    // duplicate_id: the first building's code again, elsewhere in its grid.
    building(
        Geometry::Polygon(rect(lat.inside(*ci, *cj, 0.9, 0.1), 8.0, 8.0)),
        &first_code,
        g0,
    );
    // unknown_parent (placed by location): a grid code that does not exist.
    building(
        Geometry::Polygon(rect(lat.inside(*ci, *cj, 0.1, 0.9), 8.0, 8.0)),
        "PLANTED-UNKNOWN-GRID",
        "99999999999999",
    );
    // parent_conflict: lies in grid 0 but declares grid 1.
    building(
        Geometry::Polygon(rect(lat.inside(*ci, *cj, 0.9, 0.9), 8.0, 8.0)),
        "PLANTED-CONFLICT",
        g1,
    );
    // crosses_parent: a footprint straddling the edge between grid 0 and grid 1.
    let edge_mid = lat.inside(*ci, *cj, 1.0, 0.5);
    building(
        Geometry::Polygon(rect(edge_mid, 30.0, 8.0)),
        "PLANTED-STRADDLE",
        g0,
    );
    // outside_parent: 3 km south of the district.
    let far = lat.inside(*ci, *cj, 0.5, 0.5);
    building(
        Geometry::Polygon(rect(
            Coord {
                x: far.x,
                y: far.y - 3000.0,
            },
            10.0,
            10.0,
        )),
        "PLANTED-OUTSIDE",
        g0,
    );
    // missing_geometry: a building without geometry.
    b_geoms.push(None);
    b_props.push(props(
        json!({"code": "PLANTED-NOGEOM", "name": "planted", "grid_code": g0}),
    ));
}

/// Household rows of every kind the quality report knows, in the first grid's cell.
fn plant_households(
    lat: &Lattice,
    (ci, cj): (i64, i64),
    hh: &mut String,
    households: &[(String, String, Option<Coord<f64>>)],
) {
    let far = lat.inside(ci, cj, 0.5, 0.5);
    let good = to_lonlat(lat.inside(ci, cj, 0.5, 0.5));
    let lines = [
        // unlocated: no building, no coordinates.
        "HX000001,,,".to_owned(),
        // out_of_range: an extra digit in the longitude.
        format!("HX000002,,{:.7},{:.7}", good.x * 10.0, good.y),
        // swapped_lat_lon.
        format!("HX000003,,{:.7},{:.7}", good.y, good.x),
        // unreadable_row: a field missing.
        "HX000004,".to_owned(),
        // bad_value: coordinates that are not numbers.
        "HX000005,,abc,def".to_owned(),
        // unknown_reference: a building that does not exist, no coordinates.
        "HX000006,NO-SUCH-BUILDING,,".to_owned(),
        // missing_id.
        format!(",{},,", households[0].1),
        // duplicate_id: the first household again.
        format!("{},{},,", households[0].0, households[0].1),
        // outside_parent: a valid coordinate 3 km outside the district.
        {
            let p = to_lonlat(Coord {
                x: far.x,
                y: far.y - 3000.0,
            });
            format!("HX000007,,{:.7},{:.7}", p.x, p.y)
        },
    ];
    for l in lines {
        hh.push_str(&l);
        hh.push('\n');
    }
}

/// Facilities: a capacity that is not a number (kept), one without geometry (rejected).
fn plant_facilities(
    lat: &Lattice,
    (ci, cj): (i64, i64),
    f_geoms: &mut Vec<Option<Geometry<f64>>>,
    f_props: &mut Vec<JsonObject>,
) {
    // Facility problems: bad capacity (kept), no geometry (rejected).
    let p = lat.inside(ci, cj, 0.4, 0.6);
    f_geoms.push(Some(lonlat_geom(Geometry::Point(Point(p)))));
    f_props.push(props(
        json!({"code": "F-PLANTED-CAP", "name": "planted", "type": "clinic", "capacity": "many"}),
    ));
    f_geoms.push(None);
    f_props.push(props(
        json!({"code": "F-PLANTED-NOGEOM", "name": "planted", "type": "clinic", "capacity": 5}),
    ));
}

/// Geometries and their properties, as [`geojson::write`] takes them.
pub(super) fn pairs<'a>(
    geoms: &'a [Option<Geometry<f64>>],
    props: &'a [JsonObject],
) -> impl Iterator<Item = (Option<&'a Geometry<f64>>, JsonObject)> + 'a {
    geoms.iter().map(Option::as_ref).zip(props.iter().cloned())
}

/// The planted resident rows: one of an unknown household, a repeat of the first resident
/// (`first`, its row), and one whose ID number has a wrong check character (kept, reported
/// masked).
pub(super) fn planted_residents(first: &str) -> String {
    let mut residents = String::new();
    let _ = writeln!(
        residents,
        "RX0000001,H9999999,测试,,男,19800101,,户籍,,,否,否"
    );
    residents.push_str(first);
    residents.push('\n');
    let first17 = "50010319800101002";
    let right = id_check_char(first17);
    let wrong = if right == '0' { '1' } else { '0' };
    let _ = writeln!(
        residents,
        "RX0000002,H0000001,测试乙,{first17}{wrong},女,19800101,,户籍,,,否,否"
    );
    residents
}
