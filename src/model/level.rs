//! The five levels of the hierarchy and the other layers a job reads.

use std::fmt;

/// A layer of input, in hierarchy order, plus the non-hierarchy layers.
///
/// The five levels are street 街道 → community 社区 → grid 网格 → building 楼栋 →
/// household 户; residents 居民 belong to households; facilities 设施 are points of service.
///
/// # Examples
/// ```
/// use shequ::Layer;
/// assert_eq!(Layer::Grid.name(), "grids");
/// assert_eq!(Layer::Grid.parent_polygon_levels(), &[Layer::Community, Layer::Street]);
/// assert!(Layer::Street < Layer::Household);
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(into = "&'static str", try_from = "String")]
pub enum Layer {
    /// Streets (街道).
    Street,
    /// Communities (社区).
    Community,
    /// Grids (网格).
    Grid,
    /// Buildings (楼栋).
    Building,
    /// Households (户).
    Household,
    /// Residents (居民).
    Resident,
    /// Service facilities (设施).
    Facility,
    /// Walking paths of a coverage network (路网).
    Path,
    /// Candidate sites for new facilities (候选点).
    Site,
    /// Cases of the grid work loop (事件, 案件).
    Event,
    /// Visits to special-needs residents (走访).
    Visit,
}

impl Layer {
    /// The three polygon levels, top down.
    pub const POLYGON_LEVELS: [Layer; 3] = [Layer::Street, Layer::Community, Layer::Grid];

    /// All layers in the order a job processes them.
    pub const ALL: [Layer; 7] = [
        Layer::Street,
        Layer::Community,
        Layer::Grid,
        Layer::Building,
        Layer::Household,
        Layer::Resident,
        Layer::Facility,
    ];

    /// The layer's name in job files, reports and output file names (plural, lower case).
    pub fn name(self) -> &'static str {
        match self {
            Layer::Street => "streets",
            Layer::Community => "communities",
            Layer::Grid => "grids",
            Layer::Building => "buildings",
            Layer::Household => "households",
            Layer::Resident => "residents",
            Layer::Facility => "facilities",
            Layer::Path => "paths",
            Layer::Site => "sites",
            Layer::Event => "events",
            Layer::Visit => "visits",
        }
    }

    /// The singular name used in column names (`street_id`, `grid_id`, ...).
    pub fn singular(self) -> &'static str {
        match self {
            Layer::Street => "street",
            Layer::Community => "community",
            Layer::Grid => "grid",
            Layer::Building => "building",
            Layer::Household => "household",
            Layer::Resident => "resident",
            Layer::Facility => "facility",
            Layer::Path => "path",
            Layer::Site => "site",
            Layer::Event => "event",
            Layer::Visit => "visit",
        }
    }

    /// The polygon levels above this layer, nearest first.
    pub fn parent_polygon_levels(self) -> &'static [Layer] {
        match self {
            Layer::Street => &[],
            Layer::Community => &[Layer::Street],
            Layer::Grid => &[Layer::Community, Layer::Street],
            _ => &[Layer::Grid, Layer::Community, Layer::Street],
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl TryFrom<String> for Layer {
    type Error = String;

    /// The layer of a [`Layer::name`].
    fn try_from(name: String) -> std::result::Result<Layer, String> {
        (Layer::ALL.into_iter())
            .chain([Layer::Path, Layer::Site, Layer::Event, Layer::Visit])
            .find(|l| l.name() == name)
            .ok_or_else(|| format!("no layer is named {name:?}"))
    }
}

impl From<Layer> for &'static str {
    fn from(l: Layer) -> Self {
        l.name()
    }
}
