//! People: households placed in the frame (by building code or coordinates) and residents
//! joined to their households.

mod households;
mod locate;
mod partial;
mod people_frame;
mod residents;
mod restream;
mod street;
mod travel;
mod wire;

pub(crate) use households::HouseholdRows;
pub use partial::{HouseholdPlacer, HouseholdsPartial, household_extent, resolve_working_crs};
pub use people_frame::PeopleFrame;
pub use residents::{PeopleSink, Placed};
pub(crate) use residents::{Placer, RosterPart, stream_roster};
pub use restream::restream;
pub use street::{StreetFrame, StreetKeys, StreetPiece, street_keys};
pub use travel::{ResidentFolder, ResidentsPartial};
pub(crate) use travel::{absorb, from_part, merge, part_bytes, renumber, renumbering, scatter};
