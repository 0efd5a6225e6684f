//! The frame: the small layers (polygon levels, buildings, facilities) read, checked, placed
//! and indexed once, before any person is read.

mod buildings;
mod facilities;
mod polygons;
mod spatial;

pub(crate) use polygons::{derive_by_dissolve, model_units, store_units};
pub(crate) use spatial::{Staged, coord_issue};
