//! Spatial indexes built once and queried in parallel.

/// Point-in-polygon with an R-tree of boxes and edge-indexed polygons.
pub mod polygon;

pub use polygon::{PolygonIndex, ranks_by_id};

use geo::{Coord, Rect};

/// The smallest box holding `a` and `b`.
pub(crate) fn union(a: Rect<f64>, b: Rect<f64>) -> Rect<f64> {
    Rect::new(
        Coord {
            x: a.min().x.min(b.min().x),
            y: a.min().y.min(b.min().y),
        },
        Coord {
            x: a.max().x.max(b.max().x),
            y: a.max().y.max(b.max().y),
        },
    )
}
