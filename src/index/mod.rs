//! Spatial indexes built once and queried in parallel.

/// Point-in-polygon with an R-tree of boxes and edge-indexed polygons.
pub mod polygon;

pub use polygon::{PolygonIndex, ranks_by_id};
