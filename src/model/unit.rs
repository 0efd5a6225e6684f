//! A polygon unit while the model is built, before it is stored as a street, community or grid.

use geo::MultiPolygon;

use crate::model::Lineage;

/// A polygon unit before it is stored in the model.
#[derive(Debug, Clone)]
pub(crate) struct Unit {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) geometry: MultiPolygon<f64>,
    pub(crate) area_m2: f64,
    pub(crate) declared_parent: Option<String>,
    pub(crate) lineage: Lineage,
    pub(crate) source_index: Option<usize>,
}
