//! # shequ (社区): a community data hub
//!
//! shequ turns a city district's GIS and population layers into one validated five-level model,
//! street 街道 → community 社区 → grid 网格 → building 楼栋 → household 户 (and its residents),
//! with service facilities, and writes it as GeoParquet for batch jobs and GeoJSON for maps.
//!
//! * [`Job`] — the declarative job (TOML): layers, column mappings, CRS, options.
//! * [`build`] — read, check, transform and place every row; returns the [`Model`] and the
//!   [`QualityReport`] in which every input row is accounted for.
//! * [`run()`](crate::run::run) — build and write every output with a `manifest.json`.
//! * [`Crs`], [`crs::Transformer`] — PROJ transformations and the metric working CRS.
//! * [`index::PolygonIndex`] — R-tree + edge-indexed point-in-polygon with a deterministic
//!   boundary rule.
//! * [`analytics`] — special-needs categories (a registry as data), counts per unit with
//!   polars, hot spots (Getis-Ord Gi*); service coverage (rules as data, straight and network
//!   distance), 2SFCA accessibility, equity and siting ([`analytics::coverage`]).
//! * [`privacy`] — research vs operational outputs, keyed pseudonyms, ID-number checks,
//!   small-cell and complementary suppression.
//! * [`registry`] — departmental registers linked to the roster by ID number, with a
//!   reconciliation report.
//! * [`sample`] — a deterministic synthetic district.
//!
//! # Example
//! ```
//! use shequ::{sample, Job, Layer};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let dir = tempfile::tempdir()?;
//!     sample::write_sample(dir.path(), &sample::SampleConfig::small(42))?;
//!     let job = Job::from_toml(dir.path().join("job.toml"))?;
//!     let built = shequ::build(&job)?;
//!     // Every household is placed or reported.
//!     let c = built.report.counts()[&Layer::Household];
//!     assert_eq!(c.read, c.placed + c.rejected);
//!     // All geometry is in a metric CRS chosen from the data.
//!     assert!(built.model.working_crs.definition().starts_with("EPSG:45"));
//!     Ok(())
//! }
//! ```
#![deny(missing_docs)]
// Every public function that can panic says when (issue 20).
#![warn(clippy::missing_panics_doc)]
// One audited FFI call (PROJ's log level, in `crs::quiet_proj`) is the only unsafe code.
#![deny(unsafe_code)]

pub mod analytics;
pub mod crs;
pub mod error;
pub mod index;
pub mod io;
mod job;
mod model;
pub mod output;
pub mod privacy;
pub mod process;
mod progress;
pub mod registry;
pub mod run;
pub mod sample;
mod trace;

pub use analytics::{SpecialNeeds, SpecialNeedsOptions};
pub use crs::Crs;
pub use error::{Error, Location, Result};
pub use job::{
    FacilityLayer, HouseholdLayer, Job, Layers, Options, ParentRule, PrivacyOptions, RegionName,
    ResidentLayer, SpatialLayer,
};
pub use model::build::{
    Build, HouseholdPlacer, HouseholdsPartial, InputInfo, PeopleFrame, PeopleSink, Placed,
    ResidentFolder, ResidentsPartial, StepTime, StreetFrame, StreetKeys, StreetPiece, build,
    build_with_households, build_with_partials, build_with_people, build_with_progress,
    household_extent, resolve_working_crs, restream, street_keys,
};
pub use model::ids::{BuildingId, CommunityId, FacilityId, GridId, HouseholdId, StreetId};
pub use model::level::Layer;
pub use model::quality::{IssueKind, LayerCount, QualityIssue, QualityReport, Severity};
pub use model::{
    Area, Building, Community, Facility, Grid, Household, Lineage, Model, Resident, Sex, Street,
    home,
};
pub use progress::{NoProgress, Progress};

/// The README's examples, run as doctests on the bundled sample.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The examples of `docs/coverage.md`, run as doctests on the bundled sample.
#[cfg(doctest)]
#[doc = include_str!("../docs/coverage.md")]
pub struct CoverageDoctests;

/// The examples of `docs/special-needs.md`, run as doctests on the bundled sample.
#[cfg(doctest)]
#[doc = include_str!("../docs/special-needs.md")]
pub struct SpecialNeedsDoctests;
