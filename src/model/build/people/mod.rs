//! People: households placed in the frame (by building code or coordinates) and residents
//! joined to their households.

mod households;
mod locate;
mod residents;

pub(crate) use households::HouseholdRows;
pub use residents::{PeopleSink, Placed};
pub(crate) use residents::{Placer, RosterPart, stream_roster};
