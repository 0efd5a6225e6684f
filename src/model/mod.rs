//! The community model: street → community → grid → building → household (→ resident), plus
//! facilities, all in one metric working CRS.

/// Building the model from a job's layers.
pub mod build;
/// Topology checks between polygon levels (overlaps, gaps, crossings).
pub mod checks;
/// Repeated ids among many rows.
pub(crate) mod duplicates;
/// Typed identifiers.
pub mod ids;
/// Layers and levels.
pub mod level;
/// The data-quality report.
pub mod quality;
/// A polygon unit while the model is built.
mod unit;

use geo::{Coord, MultiPolygon};

use crate::crs::Crs;
use ids::{BuildingId, CommunityId, FacilityId, GridId, HouseholdId, StreetId};
use level::Layer;

/// The chain of polygon parents (and building) an entity was placed in, as indices into the
/// model's vectors. `None` where the level is absent or the entity could not be placed there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lineage {
    /// Index into [`Model::streets`].
    pub street: Option<u32>,
    /// Index into [`Model::communities`].
    pub community: Option<u32>,
    /// Index into [`Model::grids`].
    pub grid: Option<u32>,
    /// Index into [`Model::buildings`].
    pub building: Option<u32>,
}

impl Lineage {
    /// The index at a polygon level or building.
    pub fn at(&self, layer: Layer) -> Option<u32> {
        match layer {
            Layer::Street => self.street,
            Layer::Community => self.community,
            Layer::Grid => self.grid,
            Layer::Building => self.building,
            _ => None,
        }
    }

    /// Sets the index at a level.
    pub fn set(&mut self, layer: Layer, index: Option<u32>) {
        match layer {
            Layer::Street => self.street = index,
            Layer::Community => self.community = index,
            Layer::Grid => self.grid = index,
            Layer::Building => self.building = index,
            _ => {}
        }
    }
}

/// A polygon unit: a street, community or grid.
#[derive(Debug, Clone)]
pub struct Area<I> {
    /// The unit's code.
    pub id: I,
    /// Its name, if the layer has one.
    pub name: Option<String>,
    /// Its boundary in the working CRS.
    pub geometry: MultiPolygon<f64>,
    /// Area in square metres.
    pub area_m2: f64,
    /// The parent code the input declared, if any.
    pub declared_parent: Option<String>,
    /// The parents it was placed in (its own level is `None`).
    pub lineage: Lineage,
    /// Feature index in the input; `None` for units derived by dissolving their children.
    pub source_index: Option<usize>,
}

/// A street (街道).
pub type Street = Area<StreetId>;
/// A community (社区).
pub type Community = Area<CommunityId>;
/// A grid (网格).
pub type Grid = Area<GridId>;

/// A building (楼栋): a footprint polygon or a point.
#[derive(Debug, Clone)]
pub struct Building {
    /// The building's code.
    pub id: BuildingId,
    /// Its name or address, if given.
    pub name: Option<String>,
    /// Footprint in the working CRS, when the layer has polygons.
    pub footprint: Option<MultiPolygon<f64>>,
    /// A point inside the footprint (or the point itself), in the working CRS.
    pub point: Coord<f64>,
    /// The grid code the input declared, if any.
    pub declared_parent: Option<String>,
    /// The units it was placed in.
    pub lineage: Lineage,
    /// Feature index in the input.
    pub source_index: usize,
}

/// A household (户).
#[derive(Debug, Clone)]
pub struct Household {
    /// The household's code.
    pub id: HouseholdId,
    /// Its location in the working CRS, when the roster gives coordinates.
    pub location: Option<Coord<f64>>,
    /// The building and units it was placed in.
    pub lineage: Lineage,
    /// True if it was placed (at the finest polygon level present, or in a building or at a
    /// valid location when there are no polygon levels). Unplaced households are in the
    /// quality report.
    pub placed: bool,
    /// Number of residents placed in it.
    pub residents: u32,
    /// Data-row index in the roster.
    pub source_index: usize,
}

/// Where a household is for measuring distances (coverage's home): its location, else its
/// building's point (`building`, asked only without a location); `None` when it is not placed.
///
/// # Examples
/// ```
/// use geo::coord;
/// let at = coord! { x: 1.0, y: 2.0 };
/// let b = coord! { x: 5.0, y: 5.0 };
/// assert_eq!(shequ::home(true, Some(at), || Some(b)), Some(at));
/// assert_eq!(shequ::home(true, None, || Some(b)), Some(b));
/// assert_eq!(shequ::home(false, Some(at), || Some(b)), None);
/// ```
pub fn home(
    placed: bool,
    location: Option<Coord<f64>>,
    building: impl FnOnce() -> Option<Coord<f64>>,
) -> Option<Coord<f64>> {
    if !placed {
        return None;
    }
    location.or_else(building)
}

/// A resident (居民), reduced to what the model needs. No identifier is kept: names, ID
/// numbers and phones stay in the roster and are read again only for operational lists.
#[derive(Debug, Clone)]
pub struct Resident {
    /// Index into [`Model::households`].
    pub household: u32,
    /// Sex, from the roster's sex column or else the ID number.
    pub sex: Sex,
    /// Data-row index in the roster.
    pub source_index: usize,
}

/// A resident's sex (性别).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Sex {
    /// 男.
    Male,
    /// 女.
    Female,
    /// Not given or not recognised.
    Unknown,
}

impl Sex {
    /// Parses a roster value: 男/女, M/F, male/female, 1/2 (GB/T 2261.1); `None` if not
    /// recognised (blank is [`Sex::Unknown`]).
    ///
    /// # Examples
    /// ```
    /// use shequ::Sex;
    /// assert_eq!(Sex::parse(" 女 "), Some(Sex::Female));
    /// assert_eq!(Sex::parse("M"), Some(Sex::Male));
    /// assert_eq!(Sex::parse(""), Some(Sex::Unknown));
    /// assert_eq!(Sex::parse("x"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Sex> {
        let s = s.trim();
        let is = |words: &[&str]| words.iter().any(|w| w.eq_ignore_ascii_case(s));
        if is(&["男", "m", "male", "1", "男性"]) {
            Some(Sex::Male)
        } else if is(&["女", "f", "female", "2", "女性"]) {
            Some(Sex::Female)
        } else if is(&["", "未知", "0", "9"]) {
            Some(Sex::Unknown)
        } else {
            None
        }
    }
}

/// A service facility: clinic, elderly day-care centre, rehabilitation centre, ...
#[derive(Debug, Clone)]
pub struct Facility {
    /// The facility's code.
    pub id: FacilityId,
    /// Its name, if given.
    pub name: Option<String>,
    /// Its type as written in the input (`clinic`, `elderly_daycare`, ...).
    pub kind: String,
    /// Capacity (beds, places, staff), if given and valid.
    pub capacity: Option<f64>,
    /// Location in the working CRS.
    pub point: Coord<f64>,
    /// The units it lies in (a facility outside every grid still serves residents).
    pub lineage: Lineage,
    /// Feature index in the input.
    pub source_index: usize,
}

/// The validated five-level model of a district.
///
/// Built by [`build`](crate::build) from a [`Job`](crate::Job); every geometry is in
/// [`Model::working_crs`], a projected CRS in metres.
#[derive(Debug, Clone)]
pub struct Model {
    /// The metric CRS all geometry is in.
    pub working_crs: Crs,
    /// Streets (街道), empty if the level is absent.
    pub streets: Vec<Street>,
    /// Communities (社区).
    pub communities: Vec<Community>,
    /// Grids (网格).
    pub grids: Vec<Grid>,
    /// Buildings (楼栋).
    pub buildings: Vec<Building>,
    /// Households (户), placed or not (an unplaced one has an empty lineage).
    pub households: Vec<Household>,
    /// Residents placed in a household.
    pub residents: Vec<Resident>,
    /// Service facilities.
    pub facilities: Vec<Facility>,
    /// The levels the model has (read or derived).
    pub levels: Vec<Layer>,
}

impl Model {
    /// A model with no units yet, in `working_crs`.
    pub(crate) fn empty(working_crs: Crs) -> Model {
        Model {
            working_crs,
            streets: Vec::new(),
            communities: Vec::new(),
            grids: Vec::new(),
            buildings: Vec::new(),
            households: Vec::new(),
            residents: Vec::new(),
            facilities: Vec::new(),
            levels: Vec::new(),
        }
    }

    /// True if the model has this level (read from a file or derived).
    pub fn has(&self, layer: Layer) -> bool {
        self.levels.contains(&layer)
    }

    /// The polygon of unit `index` of an area level (`Layer::Street`, `Community` or
    /// `Grid`; any other layer gives the grid's).
    ///
    /// # Examples
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(3))?;
    /// let m = shequ::build(&shequ::Job::from_toml(dir.path().join("job.toml"))?)?.model;
    /// let g = m.area_geometry(shequ::Layer::Grid, 0);
    /// assert_eq!(g, &m.grids[0].geometry);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Panics
    /// If `index` is not below the level's number of units.
    pub fn area_geometry(&self, layer: Layer, index: u32) -> &geo::MultiPolygon<f64> {
        let u = index as usize;
        match layer {
            Layer::Street => &self.streets[u].geometry,
            Layer::Community => &self.communities[u].geometry,
            _ => &self.grids[u].geometry,
        }
    }

    /// The id of the unit at `index` of a polygon level or building, as a string.
    ///
    /// # Panics
    /// If `index` is not below the layer's number of units ([`units`](Self::units); for
    /// households and facilities, their count).
    pub fn code(&self, layer: Layer, index: u32) -> &str {
        let i = index as usize;
        match layer {
            Layer::Street => self.streets[i].id.as_str(),
            Layer::Community => self.communities[i].id.as_str(),
            Layer::Grid => self.grids[i].id.as_str(),
            Layer::Building => self.buildings[i].id.as_str(),
            Layer::Household => self.households[i].id.as_str(),
            Layer::Facility => self.facilities[i].id.as_str(),
            Layer::Resident | Layer::Path | Layer::Site | Layer::Event | Layer::Visit => "",
        }
    }

    /// The number of units of a polygon level or of buildings (0 for other layers).
    pub fn units(&self, layer: Layer) -> usize {
        match layer {
            Layer::Street => self.streets.len(),
            Layer::Community => self.communities.len(),
            Layer::Grid => self.grids.len(),
            Layer::Building => self.buildings.len(),
            _ => 0,
        }
    }

    /// The lineage of unit `index` of a polygon level or of a building (it includes the unit
    /// itself).
    ///
    /// # Panics
    /// If `index` is not below [`units`](Self::units)`(layer)`.
    ///
    /// # Examples
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(5))?;
    /// let m = shequ::build(&shequ::Job::from_toml(dir.path().join("job.toml"))?)?.model;
    /// let l = m.lineage(shequ::Layer::Grid, 2);
    /// assert_eq!(l.grid, Some(2));
    /// assert_eq!(l.community, m.grids[2].lineage.community);
    /// assert_eq!(m.units(shequ::Layer::Grid), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lineage(&self, layer: Layer, index: u32) -> Lineage {
        let i = index as usize;
        let mut l = match layer {
            Layer::Street => self.streets[i].lineage,
            Layer::Community => self.communities[i].lineage,
            Layer::Grid => self.grids[i].lineage,
            Layer::Building => self.buildings[i].lineage,
            _ => Lineage::default(),
        };
        l.set(layer, Some(index));
        l
    }

    /// The lowest polygon level present (grids, else communities, else streets).
    pub fn finest_polygon_level(&self) -> Option<Layer> {
        [Layer::Grid, Layer::Community, Layer::Street]
            .into_iter()
            .find(|l| self.has(*l))
    }
}
