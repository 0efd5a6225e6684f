//! The sample's area and network layers: communities of a street and their grids on the
//! lattice, the facilities, and the walking network along the cell edges.

use ::geojson::JsonObject;
use geo::{Coord, Geometry, LineString, Point, Polygon};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::lattice::{Lattice, lonlat_geom, props, push_edge};
use super::{STREET, SampleConfig};

const COMMUNITY_NAMES: &[&str] = &[
    "七星岗",
    "解放碑",
    "较场口",
    "望龙门",
    "朝天门",
    "南纪门",
    "菜园坝",
    "两路口",
    "上清寺",
    "大溪沟",
    "化龙桥",
    "石油路",
];

/// Features of one layer: geometries and their properties.
pub(super) type Features = (Vec<Option<Geometry<f64>>>, Vec<JsonObject>);

/// The code of community `c`'s street: the communities are dealt to `cfg.streets` streets in
/// contiguous runs; the first street is [`STREET`].
fn street_code(cfg: &SampleConfig, c: usize) -> String {
    let streets = cfg.streets.clamp(1, cfg.communities.max(1));
    let s = c * streets / cfg.communities.max(1);
    if s == 0 {
        STREET.to_owned()
    } else {
        format!("{}{:03}", &STREET[..6], s + 1)
    }
}

/// The communities and grids: communities side by side, each a block of `gx` × `gy` cells
/// holding its grids; with planted problems, one grid overlaps its neighbour and one leaves
/// a gap. Returns the communities, the grids, and each grid's (code, cell column, cell row).
pub(super) fn areas(
    cfg: &SampleConfig,
    lat: &Lattice,
) -> (Features, Features, Vec<(String, i64, i64)>) {
    let gx = 2i64;
    let gy = (cfg.grids_per_community as i64 + 1) / 2;
    let cx = (cfg.communities as f64).sqrt().ceil() as i64;
    let (mut community_geoms, mut community_props) = (Vec::new(), Vec::new());
    let mut grid_cells: Vec<(String, i64, i64)> = Vec::new();
    let mut grid_polys: Vec<Polygon<f64>> = Vec::new();
    let mut grid_props = Vec::new();
    for c in 0..cfg.communities {
        let (a, b) = (c as i64 % cx, c as i64 / cx);
        let street = street_code(cfg, c);
        let code = format!("{street}{:03}", c + 1);
        let name = format!("{}社区", COMMUNITY_NAMES[c % COMMUNITY_NAMES.len()]);
        let poly = lat.block(a * gx, (a + 1) * gx, b * gy, (b + 1) * gy);
        community_geoms.push(Some(lonlat_geom(Geometry::Polygon(poly))));
        community_props.push(props(
            json!({"code": code, "name": name, "street_code": street}),
        ));
        let mut k = 0;
        for j in 0..gy {
            for i in 0..gx {
                if k >= cfg.grids_per_community {
                    break;
                }
                k += 1;
                let (ci, cj) = (a * gx + i, b * gy + j);
                let gcode = format!("{code}{k:02}");
                grid_polys.push(lat.block(ci, ci + 1, cj, cj + 1));
                grid_props.push(props(json!({
                    "code": gcode, "name": format!("{name}第{k}网格"), "community_code": code
                })));
                grid_cells.push((gcode, ci, cj));
            }
        }
    }
    if cfg.plant_problems && grid_polys.len() >= 6 {
        // Overlap (and crossing into the next community): push grid 2's east edge 30 m east.
        push_edge(&mut grid_polys[1], Coord { x: 1.0, y: 0.0 }, 30.0);
        // Gap: pull grid 5's north edge 30 m south, away from its sibling above.
        push_edge(&mut grid_polys[4], Coord { x: 0.0, y: 1.0 }, -30.0);
    }
    let grid_geoms = grid_polys
        .into_iter()
        .map(|p| Some(lonlat_geom(Geometry::Polygon(p))))
        .collect();
    (
        (community_geoms, community_props),
        (grid_geoms, grid_props),
        grid_cells,
    )
}

/// Clinics, day-care, rehabilitation and activity centres in proportion to the communities,
/// each in a random grid with a capacity.
pub(super) fn facilities(
    cfg: &SampleConfig,
    lat: &Lattice,
    grid_cells: &[(String, i64, i64)],
    rng: &mut ChaCha8Rng,
) -> Features {
    let mut f_geoms = Vec::new();
    let mut f_props = Vec::new();
    let kinds = [
        ("clinic", "社区卫生服务站", 0.5, 8.0),
        ("elderly_daycare", "日间照料中心", 0.8, 30.0),
        ("rehabilitation", "康复中心", 0.3, 20.0),
        ("activity_centre", "党群服务中心", 1.0, 100.0),
    ];
    for (kind, cname, per_community, cap) in kinds {
        let n = ((cfg.communities as f64 * per_community).round() as usize).max(1);
        for k in 0..n {
            let &(_, ci, cj) = &grid_cells[rng.random_range(0..grid_cells.len())];
            let p = lat.inside(
                ci,
                cj,
                rng.random_range(0.2..0.8),
                rng.random_range(0.2..0.8),
            );
            f_geoms.push(Some(lonlat_geom(Geometry::Point(Point(p)))));
            f_props.push(props(json!({
                "code": format!("F-{kind}-{:02}", k + 1),
                "name": format!("{cname}{}", k + 1),
                "type": kind,
                "capacity": (cap * rng.random_range(0.6..1.6f64)).round(),
            })));
        }
    }
    (f_geoms, f_props)
}

/// Walking paths: streets along every cell edge and two diagonal footpaths across each cell,
/// meeting at its centre (they share the lattice's vertices, so they connect); with planted
/// problems, a point that is not a path.
pub(super) fn paths(
    cfg: &SampleConfig,
    lat: &Lattice,
    grid_cells: &[(String, i64, i64)],
) -> Features {
    let mut p_geoms = Vec::new();
    let mut p_props = Vec::new();
    let mut seen_edges = std::collections::BTreeSet::new();
    for (_, ci, cj) in grid_cells {
        let (i, j) = (*ci, *cj);
        for (a, b) in [
            ((i, j), (i + 1, j)),
            ((i + 1, j), (i + 1, j + 1)),
            ((i, j + 1), (i + 1, j + 1)),
            ((i, j), (i, j + 1)),
        ] {
            if seen_edges.insert((a, b)) {
                let mut pts = Vec::new();
                lat.edge(a, b, &mut pts);
                pts.push(lat.vertex(b.0, b.1));
                p_geoms.push(Some(lonlat_geom(Geometry::LineString(LineString(pts)))));
                p_props.push(props(json!({"kind": "street"})));
            }
        }
        let centre = lat.inside(i, j, 0.5, 0.5);
        for (a, b) in [((i, j), (i + 1, j + 1)), ((i + 1, j), (i, j + 1))] {
            let line = vec![lat.vertex(a.0, a.1), centre, lat.vertex(b.0, b.1)];
            p_geoms.push(Some(lonlat_geom(Geometry::LineString(LineString(line)))));
            p_props.push(props(json!({"kind": "footway"})));
        }
    }
    if cfg.plant_problems && !grid_cells.is_empty() {
        // A point is not a path: reported, not used.
        let (_, ci, cj) = &grid_cells[0];
        p_geoms.push(Some(lonlat_geom(Geometry::Point(Point(
            lat.inside(*ci, *cj, 0.3, 0.3),
        )))));
        p_props.push(props(json!({"kind": "planted: not a line"})));
    }
    (p_geoms, p_props)
}
