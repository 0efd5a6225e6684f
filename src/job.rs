//! The declarative batch job: a TOML file naming the layers, their column mappings, CRS and
//! options. See `docs/job.md` for every key.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::crs::{GeojsonCrs, OutputCrs, WorkingCrs};
use crate::error::{Error, Result};
use crate::io::table::Encoding;
use crate::privacy::{Finest, OutputKind};

mod checks;

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
    /// China's territory: lon 73–135.2, lat 3.5–54 ([`Region::china`](crate::crs::Region::china)).
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
    pub working_crs: WorkingCrs,
    /// The CRS of GeoParquet outputs (`EPSG:4326` by default; `working` for the working CRS).
    pub output_crs: OutputCrs,
    /// The CRS of GeoJSON outputs: `EPSG:4326` (RFC 7946, the default), `gcj02` (AMap,
    /// Tencent) or `bd09` (Baidu); `none` writes no GeoJSON.
    pub geojson_crs: GeojsonCrs,
    /// Which parent wins on conflict.
    pub parent_rule: ParentRule,
    /// Where coordinates are expected.
    pub region: RegionName,
    /// Overlaps, gaps and crossings smaller than this (m²) are not reported.
    pub area_tolerance_m2: f64,
    /// A household located by coordinates, in a district with building points (not
    /// footprints), is assigned the nearest building within this distance (m).
    pub building_search_m: f64,
    /// Roster rows read at a time by the people stage (`"all"` for the whole roster at once).
    /// Every result is the same for any value; peak memory grows with it.
    pub chunk_rows: crate::io::chunks::ChunkRows,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            working_crs: WorkingCrs::Auto,
            output_crs: OutputCrs::default(),
            geojson_crs: GeojsonCrs::default(),
            parent_rule: ParentRule::Declared,
            region: RegionName::China,
            area_tolerance_m2: 1.0,
            building_search_m: 30.0,
            chunk_rows: crate::io::chunks::ChunkRows::default(),
        }
    }
}

/// The `[output]` section: layout of the output directory beyond the privacy policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputOptions {
    /// Write the household and resident tables of operational runs (`households`,
    /// `residents`, `coverage/residents`, `coverage/uncovered_households`) as Hive-style
    /// partitions `<table>/street_id=<code>/community_id=<code>/part-0.parquet` instead of one
    /// file each.
    pub partitioned: bool,
    /// Write `map.html` (see `shequ map`) at the end of the run.
    pub map: bool,
    /// The grid indicator the map colours by (a column of a grid-level output); default: the
    /// first coverage share at the standard distance, else residents.
    pub map_indicator: Option<String>,
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
    /// The text encoding of a shapefile's DBF (`gbk`, `gb18030`, `utf-8`, `936`), overriding
    /// its `.cpg`.
    pub encoding: Option<String>,
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
    /// The text encoding of a shapefile's DBF (`gbk`, `gb18030`, `utf-8`, `936`), overriding
    /// its `.cpg`.
    pub encoding: Option<String>,
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
    /// Column with the resident's name (a direct identifier: only operational runs with
    /// `privacy.plain_identifiers` write it).
    pub name: Option<String>,
    /// Column with the citizen ID number (公民身份号码): checked against GB 11643, bad numbers
    /// reported masked; gives sex when `sex` is not mapped. A direct identifier.
    pub id_number: Option<String>,
    /// Column with the phone number (a direct identifier).
    pub phone: Option<String>,
    /// Column with sex (男/女, M/F, male/female, 1/2).
    pub sex: Option<String>,
    /// Further roster columns copied to operational named lists.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Roster columns of the restricted (public-security) tier: copied to operational lists
    /// only when `privacy.allow_restricted` is set, never to research outputs.
    #[serde(default)]
    pub restricted_columns: Vec<String>,
}

/// The `[privacy]` section: which kind of output the run writes and how it is protected.
/// See `docs/privacy.md`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyOptions {
    /// `research` (aggregates only, suppressed, publishable) or `operational` (named lists for
    /// one grid or community). Required: there is no default.
    pub output: OutputKind,
    /// Research: sensitive counts below `k` are suppressed (default 5).
    #[serde(default = "default_k")]
    pub k: u64,
    /// Research: low-sensitivity counts (people by place, sex and age; coverage of all
    /// residents) below `k_low` are suppressed (default 0: all are published).
    #[serde(default)]
    pub k_low: u64,
    /// Research: hide zero counts below the threshold too (default: a zero is published).
    #[serde(default)]
    pub suppress_zeros: bool,
    /// Research: how complementary cells are chosen, `optimal` (default) or `heuristic`.
    #[serde(default)]
    pub complementary: crate::privacy::suppress::Method,
    /// Research-dp: the budget, its split and the mechanism.
    pub dp: Option<crate::privacy::dp::DpOptions>,
    /// Research: the finest level of counts and geometry, `building` (default) or `grid`.
    #[serde(default)]
    pub finest: Finest,
    /// The environment variable holding the pseudonym secret (default `SHEQU_SECRET`).
    #[serde(default = "default_secret_env")]
    pub secret_env: String,
    /// A file holding the pseudonym secret (instead of the environment variable).
    pub secret_file: Option<PathBuf>,
    /// Operational: the grid (code) the named lists are limited to.
    pub grid: Option<String>,
    /// Operational: the community (code) the named lists are limited to.
    pub community: Option<String>,
    /// Operational: the street (code) the named lists are limited to (a street office's lists).
    pub street: Option<String>,
    /// Operational: write resident ids, names, ID numbers and phones in plain form (and plain
    /// household ids) instead of pseudonyms. Off by default.
    #[serde(default)]
    pub plain_identifiers: bool,
    /// Operational: copy restricted-tier columns to named lists. Off by default.
    #[serde(default)]
    pub allow_restricted: bool,
}

fn default_k() -> u64 {
    5
}
fn default_secret_env() -> String {
    "SHEQU_SECRET".into()
}

impl PrivacyOptions {
    /// Research defaults: `k` = 5, building level.
    ///
    /// # Examples
    /// ```
    /// let p = shequ::PrivacyOptions::research();
    /// assert_eq!(p.k, 5);
    /// ```
    pub fn research() -> PrivacyOptions {
        PrivacyOptions {
            output: OutputKind::Research,
            k: default_k(),
            k_low: 0,
            suppress_zeros: false,
            complementary: crate::privacy::suppress::Method::Optimal,
            dp: None,
            finest: Finest::Building,
            secret_env: default_secret_env(),
            secret_file: None,
            grid: None,
            community: None,
            street: None,
            plain_identifiers: false,
            allow_restricted: false,
        }
    }

    /// Operational defaults for the named lists of one grid.
    pub fn operational_grid(grid: impl Into<String>) -> PrivacyOptions {
        PrivacyOptions {
            output: OutputKind::Operational,
            grid: Some(grid.into()),
            ..Self::research()
        }
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.output.is_aggregate() {
            if self.grid.is_some() || self.community.is_some() || self.street.is_some() {
                return Err(format!(
                    "privacy.grid, privacy.community and privacy.street limit operational named lists; a {} run has none",
                    self.output.code()
                ));
            }
            if self.plain_identifiers || self.allow_restricted {
                return Err("privacy.plain_identifiers and privacy.allow_restricted are for operational runs only"
                    .into());
            }
        }
        if self.output != OutputKind::ResearchDp && self.dp.is_some() {
            return Err("[privacy.dp] is for output = \"research-dp\"".into());
        }
        match self.output {
            OutputKind::Research => {
                if self.k < 1 {
                    return Err("privacy.k must be at least 1".into());
                }
                if self.k_low > self.k {
                    return Err("privacy.k_low must not exceed privacy.k".into());
                }
            }
            OutputKind::ResearchDp => match &self.dp {
                Some(dp) => dp.check()?,
                None => {
                    return Err("output = \"research-dp\" needs a [privacy.dp] section with its budget (rho, or epsilon and delta)"
                        .into());
                }
            },
            OutputKind::Operational => {
                let scopes = [&self.grid, &self.community, &self.street]
                    .iter()
                    .filter(|s| s.is_some())
                    .count();
                if scopes != 1 {
                    return Err("an operational run needs exactly one of privacy.grid, privacy.community or privacy.street: named lists are limited to one unit"
                        .into());
                }
            }
        }
        Ok(())
    }
}

/// A TOML error as "line L, column C: what", without the echo of the whole line that the
/// `toml` crate prints (a job file with lone-CR line ends is one long line).
fn toml_message(text: &str, e: &toml::de::Error) -> String {
    let what = crate::error::plain(e.message());
    match e.span() {
        Some(span) => {
            let end = (0..=span.start.min(text.len()))
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            let before = &text[..end];
            let line = before.matches(['\n', '\r']).count() - before.matches("\r\n").count() + 1;
            let start = before.rfind(['\n', '\r']).map_or(0, |i| i + 1);
            let column = before[start..].chars().count() + 1;
            format!("TOML parse error at line {line}, column {column}: {what}")
        }
        None => format!("TOML parse error: {what}"),
    }
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
    /// Cases of the grid work loop (事件, `docs/events.md`).
    pub events: Option<crate::analytics::events::EventLayer>,
    /// Visits to special-needs residents (走访).
    pub visits: Option<crate::analytics::events::VisitLayer>,
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
    /// Which kind of output to write and how to protect it; `run` requires it.
    pub privacy: Option<PrivacyOptions>,
    /// Special-needs analytics: when present, `run` writes `special_needs/`.
    pub special_needs: Option<crate::analytics::SpecialNeedsOptions>,
    /// Service coverage, accessibility and siting: when present, `run` writes `coverage/`.
    pub coverage: Option<crate::analytics::CoverageOptions>,
    /// Departmental registers linked to the roster (`[[registers]]`, `docs/registers.md`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registers: Vec<crate::registry::RegisterOptions>,
    /// The grid work loop's options (`[events]`, `docs/events.md`).
    pub events: Option<crate::analytics::events::EventsOptions>,
    /// How outputs are laid out: partitioned person-level tables, the HTML map.
    #[serde(default)]
    pub output: OutputOptions,
    /// The directory relative paths are resolved against (the job file's directory).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The job file, if read from one.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

impl Job {
    /// An [`Error::Job`] about this job (its file, or `<string>`).
    pub(crate) fn error(&self, message: impl Into<String>) -> Error {
        Error::Job {
            path: self.source.clone().unwrap_or_else(|| "<string>".into()),
            message: message.into(),
        }
    }

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

    /// Parses a job from JSON text with the same structure as the TOML file (for bindings
    /// that hold a job as a dictionary); relative paths are resolved against `base_dir`.
    ///
    /// # Examples
    /// ```
    /// let job = shequ::Job::from_json_str(
    ///     r#"{"layers": {"grids": {"path": "grids.geojson", "id": "code"}}}"#, "/data")?;
    /// assert_eq!(job.resolve("grids.geojson".as_ref()), std::path::Path::new("/data/grids.geojson"));
    /// assert!(shequ::Job::from_json_str(r#"{"layers": {"grid": {}}}"#, ".").is_err());
    /// # Ok::<(), shequ::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Job`] as for [`Job::from_toml`].
    pub fn from_json_str(text: &str, base_dir: impl AsRef<Path>) -> Result<Job> {
        let path = Path::new("<dict>");
        let mut job: Job = serde_json::from_str(text).map_err(|e| Error::Job {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        job.base_dir = base_dir.as_ref().to_owned();
        job.validate(path)?;
        Ok(job)
    }

    fn parse(text: &str, base: &Path, path: &Path) -> Result<Job> {
        let mut job: Job = toml::from_str(text).map_err(|e| Error::Job {
            path: path.to_owned(),
            message: toml_message(text, &e),
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
        if let Some(p) = &self.privacy {
            p.check().map_err(err)?;
        }
        if let Some(s) = &self.special_needs {
            s.check().map_err(err)?;
            if l.residents.is_none() {
                return Err(err("[special_needs] needs [layers.residents]".into()));
            }
            if s.include_restricted
                && !self
                    .privacy
                    .as_ref()
                    .is_some_and(|p| p.output == OutputKind::Operational && p.allow_restricted)
            {
                return Err(err(
                    "special_needs.include_restricted needs an operational run \
                     with privacy.allow_restricted: restricted-tier categories never appear in \
                     research outputs"
                        .into(),
                ));
            }
        }
        if l.residents.is_some() && l.households.is_none() {
            return Err(err("[layers.residents] needs [layers.households]".into()));
        }
        let bad = |v: f64| v.is_nan() || v < 0.0;
        if bad(self.options.area_tolerance_m2) || bad(self.options.building_search_m) {
            return Err(err("tolerances must be non-negative numbers".into()));
        }
        self.check_columns().map_err(err)?;
        self.check_crs().map_err(err)?;
        crate::registry::check_registers(self).map_err(err)?;
        crate::analytics::events::check_events(self).map_err(err)?;
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
