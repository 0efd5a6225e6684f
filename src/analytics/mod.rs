//! Analytics over the model.
//!
//! * [`categories`] — the special-needs category registry (categories as data).
//! * [`special_needs`] — labels per resident and counts per building, grid, community and
//!   street, with polars.
//! * [`hotspots`] — queen contiguity, sibling z-scores and the Getis-Ord Gi* statistic.

pub mod categories;
pub mod hotspots;
pub mod special_needs;

pub use special_needs::{SpecialNeeds, SpecialNeedsOptions};
