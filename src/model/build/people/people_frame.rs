//! The frame as the folds of people read it: what the processes that place residents and
//! cases need of the small layers, without the building footprints.
//!
//! Residents are placed by their household (the households are given), and the analyses of
//! people read the units' lineages and counts; cases are placed by building code, by unit
//! code or by point in an area of the finest level. None of them reads a footprint. A
//! province's footprints are what does not fit on one executor (`docs/scale-out.md`), so in
//! the by-street mode the driver, which builds the whole frame to cut it, also makes a
//! [`PeopleFrame`] from it: every area of every level with its boundary, every building's
//! code, point and lineage, and no facilities. The folds against it give the bytes they
//! give against the whole frame.

use geo::Coord;
use serde::{Deserialize, Serialize};

use super::wire::{Rings, lineage_array, lineage_of, multipolygon, rings};
use crate::crs::Crs;
use crate::error::{Error, Location, Result};
use crate::model::ids::BuildingId;
use crate::model::level::Layer;
use crate::model::{Area, Building, Model};

/// An area as it travels: every field of the model's.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FrameArea {
    id: String,
    name: Option<String>,
    polygon: Rings,
    area_m2: f64,
    declared_parent: Option<String>,
    lineage: [Option<u32>; 4],
    source_index: Option<usize>,
}

/// A building as it travels: every field of the model's but its footprint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FrameBuilding {
    id: String,
    name: Option<String>,
    point: (f64, f64),
    declared_parent: Option<String>,
    lineage: [Option<u32>; 4],
    source_index: usize,
}

/// The small layers as residents and cases are folded against them: the areas of every
/// level, the buildings without their footprints, no facilities (see the module's notes).
///
/// # Examples
/// ```
/// use shequ::PeopleFrame;
/// let job = shequ::Job::from_toml("data-samples/sample-city/job.toml")?;
/// let whole = shequ::build(&job)?.model;
/// let frame = PeopleFrame::from_bytes(&PeopleFrame::of(&whole).to_bytes())?;
/// let model = frame.model(whole.working_crs.clone());
/// assert_eq!(model.buildings.len(), whole.buildings.len());
/// assert!(model.buildings.iter().all(|b| b.footprint.is_none()));
/// assert!(model.households.is_empty() && model.facilities.is_empty());
/// assert!(PeopleFrame::from_bytes(b"\xff").is_err());
/// # Ok::<(), shequ::Error>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeopleFrame {
    levels: Vec<Layer>,
    streets: Vec<FrameArea>,
    communities: Vec<FrameArea>,
    grids: Vec<FrameArea>,
    buildings: Vec<FrameBuilding>,
}

fn area<I: AsRef<str>>(a: &Area<I>) -> FrameArea {
    FrameArea {
        id: a.id.as_ref().to_owned(),
        name: a.name.clone(),
        polygon: rings(&a.geometry),
        area_m2: a.area_m2,
        declared_parent: a.declared_parent.clone(),
        lineage: lineage_array(&a.lineage),
        source_index: a.source_index,
    }
}

fn area_of<I: for<'a> From<&'a str>>(a: &FrameArea) -> Area<I> {
    Area {
        id: I::from(a.id.as_str()),
        name: a.name.clone(),
        geometry: multipolygon(&a.polygon),
        area_m2: a.area_m2,
        declared_parent: a.declared_parent.clone(),
        lineage: lineage_of(a.lineage),
        source_index: a.source_index,
    }
}

impl PeopleFrame {
    /// The frame of people of a model: its areas and buildings (footprints left out); its
    /// households, residents and facilities are not taken.
    pub fn of(model: &Model) -> PeopleFrame {
        let people = [Layer::Household, Layer::Resident, Layer::Facility];
        PeopleFrame {
            levels: (model.levels.iter().copied())
                .filter(|l| !people.contains(l))
                .collect(),
            streets: model.streets.iter().map(area).collect(),
            communities: model.communities.iter().map(area).collect(),
            grids: model.grids.iter().map(area).collect(),
            buildings: (model.buildings.iter())
                .map(|b| FrameBuilding {
                    id: b.id.as_str().to_owned(),
                    name: b.name.clone(),
                    point: (b.point.x, b.point.y),
                    declared_parent: b.declared_parent.clone(),
                    lineage: lineage_array(&b.lineage),
                    source_index: b.source_index,
                })
                .collect(),
        }
    }

    /// The model it holds, in `working` (the CRS of the model it was made of): no
    /// households, residents or facilities.
    pub fn model(&self, working: Crs) -> Model {
        let mut model = Model::empty(working);
        model.levels = self.levels.clone();
        model.streets = self.streets.iter().map(area_of).collect();
        model.communities = self.communities.iter().map(area_of).collect();
        model.grids = self.grids.iter().map(area_of).collect();
        model.buildings = (self.buildings.iter())
            .map(|b| Building {
                id: BuildingId::new(&b.id),
                name: b.name.clone(),
                footprint: None,
                point: Coord {
                    x: b.point.0,
                    y: b.point.1,
                },
                declared_parent: b.declared_parent.clone(),
                lineage: lineage_of(b.lineage),
                source_index: b.source_index,
            })
            .collect();
        model
    }

    /// Buildings it holds (every building of the frame).
    pub fn buildings(&self) -> usize {
        self.buildings.len()
    }

    /// The frame as bytes (postcard), to send between processes.
    ///
    /// # Panics
    /// Never: every field serialises.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("a frame of people always serialises")
    }

    /// A frame from [`to_bytes`](Self::to_bytes).
    ///
    /// # Errors
    /// [`Error::Data`] if the bytes are not a frame of people.
    pub fn from_bytes(bytes: &[u8]) -> Result<PeopleFrame> {
        postcard::from_bytes(bytes).map_err(|e| {
            Error::data(
                Location::layer(Layer::Resident.name()),
                format!("not a frame of people: {e}"),
            )
        })
    }
}
