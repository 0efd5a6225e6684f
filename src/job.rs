//! The declarative batch job: a TOML file naming the layers, their column mappings, CRS and
//! options. See `docs/job.md` for every key.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::table::Encoding;

/// Which parent wins when the declared parent code and the spatial parent differ.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParentRule {
    /// The code the input declares (the conflict is reported).
    #[default]
    Declared,
    /// The polygon the child lies in (the conflict is reported).
    Spatial,
}

/// The region coordinates are expected in, for out-of-range and swapped lat/lon checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionName {
    /// Mainland China and margins: lon 73–135, lat 18–54.
    #[default]
    China,
    /// Anywhere on Earth (only validity is checked).
    World,
}

/// Job-wide options.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// The metric working CRS (`EPSG:4545`), or `auto` to choose the CGCS2000 3-degree
    /// Gauss-Krüger zone nearest the data.
    pub working_crs: String,
    /// The CRS of GeoParquet outputs (`EPSG:4326` by default; `working` for the working CRS).
    pub output_crs: String,
    /// The CRS of GeoJSON outputs: `EPSG:4326` (RFC 7946, the default), `gcj02` (AMap,
    /// Tencent) or `bd09` (Baidu); `none` writes no GeoJSON.
    pub geojson_crs: String,
    /// Which parent wins on conflict.
    pub parent_rule: ParentRule,
    /// Where coordinates are expected.
    pub region: RegionName,
    /// Overlaps, gaps and crossings smaller than this (m²) are not reported.
    pub area_tolerance_m2: f64,
    /// A household located by coordinates, in a district with building points (not
    /// footprints), is assigned the nearest building within this distance (m).
    pub building_search_m: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            working_crs: "auto".into(),
            output_crs: "EPSG:4326".into(),
            geojson_crs: "EPSG:4326".into(),
            parent_rule: ParentRule::Declared,
            region: RegionName::China,
            area_tolerance_m2: 1.0,
            building_search_m: 30.0,
        }
    }
}

/// A spatial layer: streets, communities, grids or buildings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpatialLayer {
    /// GeoJSON or GeoParquet file, relative to the job file. Absent for a derived level.
    pub path: Option<PathBuf>,
    /// The layer's CRS, overriding the file's (`EPSG:4490`, a PROJ string, WKT, PROJJSON).
    pub crs: Option<String>,
    /// The WKB column of a Parquet file without `geo` metadata.
    pub geometry_column: Option<String>,
    /// Column with the unit's code.
    #[serde(default = "default_id")]
    pub id: String,
    /// Column with the unit's name.
    pub name: Option<String>,
    /// Column with the parent's code (a grid's community code, a building's grid code).
    pub parent: Option<String>,
    /// Take the parent code from the first N characters of the unit's own code (national
    /// statistical codes: a community's first 9 digits are its street's code).
    pub parent_prefix: Option<usize>,
    /// Derive this level by dissolving its children by their declared parent codes.
    #[serde(default)]
    pub derive: bool,
}

/// The facilities point layer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacilityLayer {
    /// GeoJSON or GeoParquet file.
    pub path: PathBuf,
    /// The layer's CRS.
    pub crs: Option<String>,
    /// The WKB column of a Parquet file without `geo` metadata.
    pub geometry_column: Option<String>,
    /// Column with the facility's code.
    #[serde(default = "default_id")]
    pub id: String,
    /// Column with the facility's name.
    pub name: Option<String>,
    /// Column with the facility's type.
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Column with its capacity.
    pub capacity: Option<String>,
}

/// The households roster.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HouseholdLayer {
    /// CSV or Parquet file.
    pub path: PathBuf,
    /// Text encoding of a CSV file.
    #[serde(default)]
    pub encoding: Encoding,
    /// Column with the household's code.
    #[serde(default = "default_id")]
    pub id: String,
    /// Column with the building code.
    pub building: Option<String>,
    /// Column with the longitude (or x).
    pub lon: Option<String>,
    /// Column with the latitude (or y).
    pub lat: Option<String>,
    /// CRS of the coordinate columns (default longitude/latitude WGS84).
    pub crs: Option<String>,
}

/// The residents roster.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResidentLayer {
    /// CSV or Parquet file.
    pub path: PathBuf,
    /// Text encoding of a CSV file.
    #[serde(default)]
    pub encoding: Encoding,
    /// Column with the resident's id.
    #[serde(default = "default_id")]
    pub id: String,
    /// Column with the household code.
    pub household: String,
}

fn default_id() -> String {
    "id".into()
}
fn default_kind() -> String {
    "type".into()
}

/// The layers of a job; any may be absent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layers {
    /// Streets (街道).
    pub streets: Option<SpatialLayer>,
    /// Communities (社区).
    pub communities: Option<SpatialLayer>,
    /// Grids (网格).
    pub grids: Option<SpatialLayer>,
    /// Buildings (楼栋).
    pub buildings: Option<SpatialLayer>,
    /// Households (户).
    pub households: Option<HouseholdLayer>,
    /// Residents (居民).
    pub residents: Option<ResidentLayer>,
    /// Facilities (设施).
    pub facilities: Option<FacilityLayer>,
}

/// A job: what to read and how.
///
/// # Examples
/// ```
/// let job = shequ::Job::from_toml_str(r#"
///     name = "demo"
///     [layers.grids]
///     path = "grids.geojson"
///     id = "code"
///     parent = "community_code"
///     [layers.communities]
///     derive = true
/// "#, ".").unwrap();
/// assert_eq!(job.layers.grids.as_ref().unwrap().id, "code");
/// assert!(job.layers.communities.as_ref().unwrap().derive);
/// // Unknown keys are errors, so typos do not pass silently:
/// assert!(shequ::Job::from_toml_str("[layers.grid]\npath = 'x'", ".").is_err());
/// ```
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// A name for the run.
    pub name: Option<String>,
    /// Options.
    #[serde(default)]
    pub options: Options,
    /// The layers.
    #[serde(default)]
    pub layers: Layers,
    /// The directory relative paths are resolved against (the job file's directory).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The job file, if read from one.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

impl Job {
    /// Reads a job file.
    ///
    /// # Errors
    /// [`Error::Io`] if unreadable, [`Error::Job`] if it is not a valid job (unknown keys,
    /// wrong types, a layer without a file that is not derived).
    pub fn from_toml(path: impl AsRef<Path>) -> Result<Job> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut job = Self::parse(&text, base, path)?;
        job.source = Some(path.to_owned());
        Ok(job)
    }

    /// Parses a job from TOML text; relative paths are resolved against `base_dir`.
    ///
    /// # Errors
    /// [`Error::Job`] as for [`Job::from_toml`].
    pub fn from_toml_str(text: &str, base_dir: impl AsRef<Path>) -> Result<Job> {
        Self::parse(text, base_dir.as_ref(), Path::new("<string>"))
    }

    fn parse(text: &str, base: &Path, path: &Path) -> Result<Job> {
        let mut job: Job = toml::from_str(text).map_err(|e| Error::Job {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        job.base_dir = base.to_owned();
        job.validate(path)?;
        Ok(job)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let err = |m: String| Error::Job {
            path: path.to_owned(),
            message: m,
        };
        let l = &self.layers;
        for (name, layer) in [
            ("streets", &l.streets),
            ("communities", &l.communities),
            ("grids", &l.grids),
            ("buildings", &l.buildings),
        ] {
            if let Some(layer) = layer {
                match (&layer.path, layer.derive) {
                    (None, false) => {
                        return Err(err(format!(
                            "[layers.{name}] needs `path`, or `derive = true`"
                        )));
                    }
                    (Some(_), true) => {
                        return Err(err(format!(
                            "[layers.{name}] has both `path` and `derive = true`"
                        )));
                    }
                    _ => {}
                }
                if layer.parent.is_some() && layer.parent_prefix.is_some() {
                    return Err(err(format!(
                        "[layers.{name}] has both `parent` and `parent_prefix`"
                    )));
                }
            }
        }
        if l.buildings.as_ref().is_some_and(|b| b.derive) {
            return Err(err("buildings cannot be derived".into()));
        }
        if let Some(h) = &l.households {
            if h.building.is_none() && (h.lon.is_none() || h.lat.is_none()) {
                return Err(err(
                    "[layers.households] needs `building`, or both `lon` and `lat`".into(),
                ));
            }
            if h.lon.is_some() != h.lat.is_some() {
                return Err(err("[layers.households] needs both `lon` and `lat`".into()));
            }
        }
        if l.residents.is_some() && l.households.is_none() {
            return Err(err("[layers.residents] needs [layers.households]".into()));
        }
        let bad = |v: f64| v.is_nan() || v < 0.0;
        if bad(self.options.area_tolerance_m2) || bad(self.options.building_search_m) {
            return Err(err("tolerances must be non-negative numbers".into()));
        }
        Ok(())
    }

    /// A path from the job resolved against the job's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base_dir.join(p)
        }
    }
}
