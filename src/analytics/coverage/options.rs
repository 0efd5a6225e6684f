//! The `[coverage]` section of a job: rules, network, accessibility and siting options.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::fca::Decay;
use super::reach::DistanceMode;
use super::rules::ServiceRule;

/// The `[coverage]` section of a job.
///
/// # Examples
/// ```
/// let o: shequ::analytics::coverage::CoverageOptions = toml::from_str(r#"
///     blind_spot_below = 0.8
///     [[rules]]
///     facility = "clinic"
///     target = "disabled"
///     thresholds_m = [300, 500]
///     standard_m = 300
///     source = "district plan 2026"
///     [siting]
///     rule = "elderly_daycare_empty_nest"
///     k = 3
/// "#)?;
/// assert_eq!(o.accessibility.catchment_m, 1000.0);
/// assert_eq!(o.siting.unwrap().k, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverageOptions {
    /// Use only the job's rules, not the defaults.
    #[serde(default)]
    pub replace_default_rules: bool,
    /// Rules added to the defaults; one with a default's facility and target replaces it.
    #[serde(default)]
    pub rules: Vec<ServiceRule>,
    /// A grid is a blind spot (盲区) for a rule when less than this share of its target
    /// population is within the rule's standard distance (default 0.5).
    #[serde(default = "half")]
    pub blind_spot_below: f64,
    /// A walking network: coverage is then reported over it as well as in straight lines.
    pub network: Option<NetworkOptions>,
    /// The 2SFCA family's parameters.
    #[serde(default)]
    pub accessibility: AccessibilityOptions,
    /// Choose sites for new facilities.
    pub siting: Option<SitingOptions>,
}

fn half() -> f64 {
    0.5
}

impl Default for CoverageOptions {
    fn default() -> Self {
        CoverageOptions {
            replace_default_rules: false,
            rules: Vec::new(),
            blind_spot_below: half(),
            network: None,
            accessibility: AccessibilityOptions::default(),
            siting: None,
        }
    }
}

/// A walking network layer (lines, e.g. OpenStreetMap footways and streets).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkOptions {
    /// GeoJSON or GeoParquet file of LineStrings / MultiLineStrings.
    pub path: PathBuf,
    /// The layer's CRS, overriding the file's (default: the file's, else EPSG:4326).
    pub crs: Option<String>,
    /// The WKB column of a Parquet file without `geo` metadata.
    pub geometry_column: Option<String>,
    /// Vertices closer than this (m) are one node (default 1).
    #[serde(default = "one")]
    pub tolerance_m: f64,
    /// Homes, facilities and sites farther than this (m) from every path are not on the
    /// network (default 150).
    #[serde(default = "snap_default")]
    pub snap_m: f64,
}

fn one() -> f64 {
    1.0
}
fn snap_default() -> f64 {
    150.0
}

/// Parameters of the two-step floating catchment measures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessibilityOptions {
    /// Compute the three measures (default true). `enabled = false` leaves them out: no
    /// `_2sfca`/`_e2sfca`/`_g2sfca` columns, no equity or Lorenz rows, and coverage skips the
    /// two catchment passes over every home (reach within the thresholds is still computed).
    pub enabled: bool,
    /// The catchment `d0` (m); pairs at `d > d0` take no part (default 1000, the 15-minute
    /// life circle).
    pub catchment_m: f64,
    /// E2SFCA bands: `[upper bound m, weight]`, ascending (default Luo & Qi's weights 1,
    /// 0.68, 0.22 on the 300/500/1000 m life circles).
    pub bands: Vec<(f64, f64)>,
    /// σ (m) of the Gaussian 2SFCA weight `exp(−d²/2σ²)` (default 500).
    pub gaussian_sigma_m: f64,
}

impl Default for AccessibilityOptions {
    fn default() -> Self {
        AccessibilityOptions {
            enabled: true,
            catchment_m: 1000.0,
            bands: vec![(300.0, 1.0), (500.0, 0.68), (1000.0, 0.22)],
            gaussian_sigma_m: 500.0,
        }
    }
}

impl AccessibilityOptions {
    /// The measures' names and weight functions: the three, or none when not `enabled`.
    ///
    /// # Examples
    /// ```
    /// use shequ::analytics::coverage::AccessibilityOptions;
    /// let on = AccessibilityOptions::default();
    /// assert_eq!(on.methods().iter().map(|m| m.0).collect::<Vec<_>>(), ["2sfca", "e2sfca", "g2sfca"]);
    /// let off = AccessibilityOptions { enabled: false, ..on };
    /// assert!(off.methods().is_empty());
    /// ```
    pub fn methods(&self) -> Vec<(&'static str, Decay)> {
        if !self.enabled {
            return Vec::new();
        }
        vec![
            ("2sfca", Decay::None),
            ("e2sfca", Decay::Steps(self.bands.clone())),
            ("g2sfca", Decay::Gaussian(self.gaussian_sigma_m)),
        ]
    }
}

/// The `[coverage.siting]` section: where `k` new facilities of a rule's type would newly
/// cover the most of its target population.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SitingOptions {
    /// The rule (`<facility>_<target>`, e.g. `elderly_daycare_empty_nest`).
    pub rule: String,
    /// How many new facilities.
    pub k: usize,
    /// Covering distance (m); default the rule's standard.
    pub distance_m: Option<f64>,
    /// Candidate sites: a point layer; default the buildings' points (footprint centroids).
    pub candidates: Option<CandidateLayer>,
    /// Distance used (default straight; `network` needs `[coverage.network]`).
    #[serde(default = "straight")]
    pub distance: DistanceMode,
    /// Solve exactly too when at most this many candidates cover anything (default 80).
    #[serde(default = "exact_default")]
    pub exact_max_candidates: usize,
}

fn straight() -> DistanceMode {
    DistanceMode::Straight
}
fn exact_default() -> usize {
    80
}

impl<'de> Deserialize<'de> for DistanceMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "straight" => Ok(DistanceMode::Straight),
            "network" => Ok(DistanceMode::Network),
            other => Err(serde::de::Error::custom(format!(
                "unknown distance {other:?}: use \"straight\" or \"network\""
            ))),
        }
    }
}

/// A point layer of candidate sites.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandidateLayer {
    /// GeoJSON, GeoParquet or Shapefile of points.
    pub path: PathBuf,
    /// Column with the site's code.
    pub id: String,
    /// The layer's CRS, overriding the file's.
    pub crs: Option<String>,
    /// The WKB column of a Parquet file without `geo` metadata.
    pub geometry_column: Option<String>,
    /// The text encoding of a shapefile's DBF, overriding its `.cpg`.
    pub encoding: Option<String>,
}

/// Checks what serde cannot: shares in [0, 1], positive distances and catchments, ascending
/// bands, a network where siting or the network options need one.
pub(super) fn check_options(o: &CoverageOptions) -> std::result::Result<(), String> {
    if !(0.0..=1.0).contains(&o.blind_spot_below) {
        return Err(format!(
            "blind_spot_below must be a share in [0, 1], got {}",
            o.blind_spot_below
        ));
    }
    let a = &o.accessibility;
    if !(a.catchment_m.is_finite() && a.catchment_m > 0.0) {
        return Err(format!(
            "accessibility.catchment_m must be positive, got {}",
            a.catchment_m
        ));
    }
    if !(a.gaussian_sigma_m.is_finite() && a.gaussian_sigma_m > 0.0) {
        return Err(format!(
            "accessibility.gaussian_sigma_m must be positive, got {}",
            a.gaussian_sigma_m
        ));
    }
    if a.bands.is_empty()
        || a.bands.windows(2).any(|w| w[0].0 >= w[1].0)
        || a.bands
            .iter()
            .any(|(d, w)| !(d.is_finite() && *d > 0.0 && w.is_finite() && *w >= 0.0))
    {
        return Err(format!(
            "accessibility.bands must be [upper bound m, weight ≥ 0] pairs with ascending \
             bounds, got {:?}",
            a.bands
        ));
    }
    if let Some(n) = &o.network
        && !(n.snap_m > 0.0 && n.tolerance_m > 0.0)
    {
        return Err("network.snap_m and network.tolerance_m must be positive".into());
    }
    if let Some(s) = &o.siting {
        if s.k == 0 {
            return Err("siting.k must be at least 1".into());
        }
        if s.distance == DistanceMode::Network && o.network.is_none() {
            return Err("siting.distance = \"network\" needs [coverage.network]".into());
        }
    }
    Ok(())
}
