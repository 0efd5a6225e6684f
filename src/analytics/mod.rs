//! Analytics over the model.
//!
//! * [`categories`] — the special-needs category registry (categories as data).
//! * [`counts`] — counts per unit (the tally and the count columns every table is published
//!   from).
//! * [`special_needs`] — labels per resident and counts per building, grid, community and
//!   street, with polars.
//! * [`coverage`] — service coverage per home and per unit, 2SFCA accessibility, equity and
//!   siting (maximal covering).
//! * [`events`] — the grid work loop: the working-day calendar, deadlines per step, yellow
//!   and red cards.
//! * [`hotspots`] — queen contiguity, sibling z-scores and the Getis-Ord Gi* statistic.

pub mod categories;
pub mod counts;
pub mod coverage;
pub mod events;
pub mod hotspots;
pub mod special_needs;

pub use coverage::{Coverage, CoverageOptions};
pub use special_needs::{SpecialNeeds, SpecialNeedsOptions};
