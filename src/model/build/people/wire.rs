//! The forms in which the frame's areas and buildings travel between processes: polygons as
//! plain rings of points and lineages as four optional numbers. The street pieces
//! ([`super::StreetPiece`]) and the frame of people ([`super::PeopleFrame`]) both use them.

use geo::{Coord, LineString, MultiPolygon, Polygon};

use crate::model::Lineage;

/// Polygons, each a list of rings (the exterior first), each a list of points.
pub(super) type Rings = Vec<Vec<Vec<(f64, f64)>>>;

/// `m`'s polygons as rings of points.
pub(super) fn rings(m: &MultiPolygon<f64>) -> Rings {
    let points = |r: &LineString<f64>| r.0.iter().map(|c| (c.x, c.y)).collect();
    m.0.iter()
        .map(|p| {
            std::iter::once(p.exterior())
                .chain(p.interiors())
                .map(points)
                .collect()
        })
        .collect()
}

/// The multipolygon of `r`; a polygon with no ring is empty.
pub(super) fn multipolygon(r: &Rings) -> MultiPolygon<f64> {
    let ring = |pts: &Vec<(f64, f64)>| {
        LineString::from(pts.iter().map(|&(x, y)| Coord { x, y }).collect::<Vec<_>>())
    };
    MultiPolygon::new(
        r.iter()
            .map(|p| {
                let mut all = p.iter().map(ring);
                let exterior = all.next().unwrap_or_else(|| LineString::new(Vec::new()));
                Polygon::new(exterior, all.collect())
            })
            .collect(),
    )
}

/// `l` as four numbers: street, community, grid, building.
pub(super) fn lineage_array(l: &Lineage) -> [Option<u32>; 4] {
    [l.street, l.community, l.grid, l.building]
}

/// The lineage of four numbers made by [`lineage_array`].
pub(super) fn lineage_of(a: [Option<u32>; 4]) -> Lineage {
    let [street, community, grid, building] = a;
    Lineage {
        street,
        community,
        grid,
        building,
    }
}
