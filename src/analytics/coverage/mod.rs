//! Service coverage, accessibility and siting: who is within reach of the services they need,
//! how accessible the services are, and where the next facility should go.
//!
//! * [`rules`] — the rules table (facility type → target population → distance thresholds,
//!   with the source of each), versioned; jobs override entries.
//! * [`reach`] — nearest facility and facilities within each threshold, per home, in straight
//!   lines (R-tree) or over a walking [`network`].
//! * [`fca`] — 2SFCA, enhanced 2SFCA and Gaussian 2SFCA as PySAL `access` defines them; Gini
//!   and Lorenz curves.
//! * [`siting`] — the maximal covering location problem, greedy and exact.
//!
//! [`Coverage::compute`] runs all of it for a built model; `output` writes `coverage/`.

pub mod fca;
pub mod network;
pub mod reach;
pub mod rules;
pub mod siting;

use std::collections::BTreeSet;
use std::path::PathBuf;

use geo::{Coord, Geometry, LineString};
use polars::prelude::*;
use rayon::prelude::*;
use rstar::RTree;
use rstar::primitives::GeomWithData;
use serde::{Deserialize, Serialize};

pub use reach::DistanceMode;
pub use rules::{RuleSet, ServiceRule};

use crate::analytics::SpecialNeeds;
use crate::crs::{Crs, Transformer};
use crate::error::{Error, Location, Result};
use crate::io::table::clean_code;
use crate::io::{ReadOptions, read_features};
use crate::model::Model;
use crate::model::build::Build;
use crate::model::level::Layer;
use crate::model::quality::{IssueKind, QualityIssue, Severity};
use fca::{Decay, two_step_many};
use network::{Network, PointsByEdge, Snap};
use reach::{NetworkReach, Reach, Reached, StraightReach};

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

/// One computed coverage measure: a rule under one distance.
#[derive(Debug, Clone)]
pub struct Measure {
    /// Index into [`Coverage::rules`].
    pub rule: usize,
    /// The distance used.
    pub mode: DistanceMode,
    /// Column prefix: the rule id, plus `_network` for network distance.
    pub id: String,
    /// Index into [`Coverage::reached`].
    pub reach: usize,
    /// Index into [`Coverage::targets`].
    pub target: usize,
    /// Per household: the index of the first of the rule's thresholds its nearest facility is
    /// within; `thresholds.len()` when beyond all (or none reachable), `thresholds.len() + 1`
    /// when the household has no location.
    pub bands: Vec<u8>,
    /// Per household and per method of [`AccessibilityOptions::methods`]: the 2SFCA score
    /// (`None`: no facility within the catchment, or no target residents). The three are
    /// empty when accessibility is not computed (`enabled = false`).
    pub access: [Vec<Option<f64>>; 3],
}

/// Distances from every home to the facilities of one type, under one distance.
#[derive(Debug, Clone)]
pub struct KindReach {
    /// The facility type.
    pub kind: String,
    /// The distance used.
    pub mode: DistanceMode,
    /// The facilities (indices into `model.facilities`); `reached.nearest` points into this.
    pub facilities: Vec<u32>,
    /// Nearest facility and counts within the thresholds of every rule of this type.
    pub reached: Reached,
}

/// A target population: residents per household.
#[derive(Debug, Clone)]
pub struct Target {
    /// `all`, a category id or an age group.
    pub id: String,
    /// Per household: target residents in it (0 for unplaced households).
    pub weights: Vec<u32>,
    /// Per resident (model order): in the target and placed.
    pub members: Vec<bool>,
}

/// A candidate site.
#[derive(Debug, Clone)]
pub struct Site {
    /// Its code (a building code or the candidate layer's id).
    pub id: String,
    /// `building` or `candidate`.
    pub source: &'static str,
    /// Its point in the working CRS.
    pub point: Coord<f64>,
}

/// The result of siting.
#[derive(Debug, Clone)]
pub struct Siting {
    /// The rule.
    pub rule: String,
    /// The distance used.
    pub mode: DistanceMode,
    /// Covering distance (m).
    pub distance_m: f64,
    /// Facilities asked for.
    pub k: usize,
    /// The candidate sites.
    pub sites: Vec<Site>,
    /// Target residents in the district.
    pub target_total: u64,
    /// Target residents not within `distance_m` of an existing facility (located ones).
    pub uncovered_before: u64,
    /// Greedy picks: (site, newly covered target residents), in order.
    pub greedy: Vec<siting::Pick>,
    /// Exact picks, or why there are none.
    pub exact: std::result::Result<Vec<siting::Pick>, String>,
}

/// What the walking network held.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkSummary {
    /// The file.
    pub path: PathBuf,
    /// Features read.
    pub features: usize,
    /// Features used (lines).
    pub used: usize,
    /// Nodes and edges.
    pub nodes: usize,
    /// Edges.
    pub edges: usize,
    /// Snapping distance (m).
    pub snap_m: f64,
    /// Located households farther than `snap_m` from every path.
    pub households_off_network: usize,
    /// Facilities farther than `snap_m` from every path.
    pub facilities_off_network: usize,
}

/// Coverage, accessibility and siting for a built model.
#[derive(Debug, Clone)]
pub struct Coverage {
    /// The rules in force.
    pub rules: RuleSet,
    /// Rules not computed, with the reason.
    pub unavailable: Vec<(String, String)>,
    /// Distances used.
    pub modes: Vec<DistanceMode>,
    /// Per facility type and distance.
    pub reached: Vec<KindReach>,
    /// Target populations.
    pub targets: Vec<Target>,
    /// Measures, rule by rule, straight before network.
    pub measures: Vec<Measure>,
    /// Per household: where it is (its location, else its building's point).
    pub homes: Vec<Option<Coord<f64>>>,
    /// Accessibility parameters.
    pub accessibility: AccessibilityOptions,
    /// Blind-spot share.
    pub blind_spot_below: f64,
    /// Facilities with no capacity (they supply nothing in the 2SFCA measures).
    pub facilities_without_capacity: usize,
    /// Siting, when asked for.
    pub siting: Option<Siting>,
    /// The walking network, when given.
    pub network: Option<NetworkSummary>,
    /// Problems found in the network and candidate layers.
    pub issues: Vec<QualityIssue>,
}

impl Coverage {
    /// Computes every rule's coverage under every distance, the accessibility measures and,
    /// when asked, siting.
    ///
    /// Targets other than `all` need `special` (the special-needs labels); a rule whose
    /// target was not computed is listed in [`Coverage::unavailable`] with the reason.
    ///
    /// # Errors
    /// [`Error::Job`] for invalid options or an unknown target; read errors for the network
    /// or candidate layers; [`Error::Crs`].
    ///
    /// # Examples
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(5))?;
    /// let job = shequ::Job::from_toml(dir.path().join("job.toml"))?;
    /// let built = shequ::build(&job)?;
    /// let sn = shequ::SpecialNeeds::compute(&built, job.special_needs.as_ref().unwrap(), false)?;
    /// let opts = shequ::analytics::coverage::CoverageOptions::default();
    /// let cov = shequ::analytics::coverage::Coverage::compute(&built, &opts, Some(&sn))?;
    /// // The default rules: clinics for everyone, day care for the 60+, ...
    /// let m = cov.measures.iter().find(|m| m.id == "clinic_all").unwrap();
    /// assert_eq!(m.bands.len(), built.model.households.len());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Panics
    /// Never on a build of shequ's: a network measure is made only when the network was read (an internal invariant).
    pub fn compute(
        build: &Build,
        opts: &CoverageOptions,
        special: Option<&SpecialNeeds>,
    ) -> Result<Coverage> {
        let job_err = |message: String| build.job.error(format!("[coverage] {message}"));
        let model = &build.model;
        let rules = RuleSet::merge(opts.replace_default_rules, &opts.rules).map_err(job_err)?;
        check_options(opts).map_err(job_err)?;
        // Homes: the household's location, else its building's point.
        let homes: Vec<Option<Coord<f64>>> = model
            .households
            .iter()
            .map(|h| {
                if !h.placed {
                    return None;
                }
                h.location.or_else(|| {
                    h.lineage
                        .building
                        .map(|b| model.buildings[b as usize].point)
                })
            })
            .collect();
        // Targets.
        let mut targets: Vec<Target> = Vec::new();
        let mut unavailable = Vec::new();
        let mut rule_target: Vec<Option<usize>> = Vec::new();
        for r in &rules.rules {
            if let Some(t) = targets.iter().position(|t| t.id == r.target) {
                rule_target.push(Some(t));
                continue;
            }
            match target_members(model, special, &r.target).map_err(job_err)? {
                Ok(members) => {
                    let mut weights = vec![0u32; model.households.len()];
                    for (p, m) in model.residents.iter().zip(&members) {
                        if *m {
                            weights[p.household as usize] += 1;
                        }
                    }
                    targets.push(Target {
                        id: r.target.clone(),
                        weights,
                        members,
                    });
                    rule_target.push(Some(targets.len() - 1));
                }
                Err(why) => {
                    unavailable.push((r.id(), why));
                    rule_target.push(None);
                }
            }
        }
        let mut issues = Vec::new();
        // The network.
        let mut modes = vec![DistanceMode::Straight];
        let mut net: Option<(Network, Vec<Option<Snap>>, NetworkSummary)> = None;
        if let Some(n) = &opts.network {
            let (lines, features, mut found) = read_lines(build, n)?;
            issues.append(&mut found);
            let network = Network::from_lines(&lines, n.tolerance_m, n.snap_m);
            let snaps: Vec<Option<Snap>> = homes
                .par_iter()
                .map(|h| h.and_then(|p| network.snap(p)))
                .collect();
            let off = homes
                .iter()
                .zip(&snaps)
                .filter(|(h, s)| h.is_some() && s.is_none())
                .count();
            let summary = NetworkSummary {
                path: build.job.resolve(&n.path),
                features,
                used: lines.len(),
                nodes: network.nodes(),
                edges: network.edges(),
                snap_m: n.snap_m,
                households_off_network: off,
                facilities_off_network: model
                    .facilities
                    .iter()
                    .filter(|f| network.snap(f.point).is_none())
                    .count(),
            };
            modes.push(DistanceMode::Network);
            net = Some((network, snaps, summary));
        }
        let facilities_without_capacity = model
            .facilities
            .iter()
            .filter(|f| f.capacity.is_none())
            .count();
        let acc = &opts.accessibility;
        let methods = acc.methods();
        // Facility types and their thresholds.
        let kinds: BTreeSet<&str> = rules
            .rules
            .iter()
            .zip(&rule_target)
            .filter(|(_, t)| t.is_some())
            .map(|(r, _)| r.facility.as_str())
            .collect();
        let mut reached = Vec::new();
        let mut measures: Vec<Measure> = Vec::new();
        for kind in kinds {
            let facilities: Vec<u32> = (0..model.facilities.len() as u32)
                .filter(|f| model.facilities[*f as usize].kind == kind)
                .collect();
            let sites: Vec<Coord<f64>> = facilities
                .iter()
                .map(|f| model.facilities[*f as usize].point)
                .collect();
            let supply: Vec<f64> = facilities
                .iter()
                .map(|f| model.facilities[*f as usize].capacity.unwrap_or(0.0))
                .collect();
            let mut thresholds: Vec<f64> = rules
                .rules
                .iter()
                .filter(|r| r.facility == kind)
                .flat_map(|r| r.thresholds_m.iter().copied())
                .collect();
            thresholds.sort_by(f64::total_cmp);
            thresholds.dedup();
            for &mode in &modes {
                let reach: Box<dyn Reach + '_> =
                    match mode {
                        DistanceMode::Straight => {
                            let cutoff = thresholds.last().copied().unwrap_or(0.0).max(
                                if methods.is_empty() {
                                    0.0
                                } else {
                                    acc.catchment_m
                                },
                            );
                            Box::new(StraightReach::for_cutoff(&sites, &homes, cutoff))
                        }
                        DistanceMode::Network => {
                            let (network, snaps, _) = net.as_ref().expect("network mode");
                            let site_snaps: Vec<Option<Snap>> =
                                sites.iter().map(|p| network.snap(*p)).collect();
                            let cutoff = thresholds
                                .last()
                                .copied()
                                .unwrap_or(0.0)
                                .max(acc.catchment_m);
                            Box::new(NetworkReach::new(network, &site_snaps, snaps, cutoff))
                        }
                    };
                let r = Reached::compute(reach.as_ref(), homes.len(), &thresholds);
                let ri = reached.len();
                for (i, rule) in rules.rules.iter().enumerate() {
                    let Some(t) = rule_target[i] else { continue };
                    if rule.facility != kind {
                        continue;
                    }
                    let nt = rule.thresholds_m.len();
                    let bands: Vec<u8> = (0..homes.len())
                        .map(|h| {
                            if homes[h].is_none() {
                                return (nt + 1) as u8;
                            }
                            match r.nearest[h] {
                                Some((_, d)) => {
                                    rule.thresholds_m
                                        .iter()
                                        .position(|th| d <= *th)
                                        .unwrap_or(nt) as u8
                                }
                                None => nt as u8,
                            }
                        })
                        .collect();
                    let demand: Vec<f64> =
                        targets[t].weights.iter().map(|w| f64::from(*w)).collect();
                    let decays: Vec<Decay> = methods.iter().map(|m| m.1.clone()).collect();
                    let mut a = if decays.is_empty() {
                        Vec::new()
                    } else {
                        two_step_many(reach.as_ref(), &demand, &supply, acc.catchment_m, &decays)
                    };
                    a.resize_with(3, Vec::new);
                    let access: [Vec<Option<f64>>; 3] = [
                        std::mem::take(&mut a[0]),
                        std::mem::take(&mut a[1]),
                        std::mem::take(&mut a[2]),
                    ];
                    measures.push(Measure {
                        rule: i,
                        mode,
                        id: format!("{}{}", rule.id(), mode.suffix()),
                        reach: ri,
                        target: t,
                        bands,
                        access,
                    });
                }
                reached.push(KindReach {
                    kind: kind.to_owned(),
                    mode,
                    facilities: facilities.clone(),
                    reached: r,
                });
            }
        }
        measures.sort_by_key(|m| (m.rule, m.mode));
        let siting = match &opts.siting {
            Some(s) => {
                let (site, mut found) = site_facilities(
                    build,
                    s,
                    &rules,
                    &measures,
                    &targets,
                    &reached,
                    &homes,
                    net.as_ref().map(|(n, snaps, _)| (n, snaps.as_slice())),
                )?;
                issues.append(&mut found);
                Some(site)
            }
            None => None,
        };
        Ok(Coverage {
            rules,
            unavailable,
            modes,
            reached,
            targets,
            measures,
            homes,
            accessibility: opts.accessibility.clone(),
            blind_spot_below: opts.blind_spot_below,
            facilities_without_capacity,
            siting,
            network: net.map(|(_, _, s)| s),
            issues,
        })
    }

    /// The rule of a measure.
    pub fn rule(&self, m: &Measure) -> &ServiceRule {
        &self.rules.rules[m.rule]
    }

    /// The index of the rule's standard among its thresholds.
    ///
    /// # Panics
    /// If `m` is a measure of another [`Coverage`] whose rule has no such standard (rules are
    /// checked when read: a rule's standard is one of its thresholds).
    pub fn standard_band(&self, m: &Measure) -> usize {
        let rule = self.rule(m);
        rule.thresholds_m
            .iter()
            .position(|t| *t == rule.standard_m)
            .expect("checked: the standard is a threshold")
    }

    /// Household `h` is within the rule's standard of a facility (`None`: no location).
    ///
    /// # Panics
    /// If `h` is not a household index of the model.
    pub fn covered(&self, m: &Measure, h: usize) -> Option<bool> {
        let b = m.bands[h] as usize;
        (b <= self.rule(m).thresholds_m.len()).then_some(b <= self.standard_band(m))
    }

    /// Facilities of the measure's type within `threshold` (one of the rule's) of household
    /// `h` (`None`: no location).
    ///
    /// # Panics
    /// If `threshold` is not one of the thresholds of the measure's facility type (the rule's
    /// `thresholds_m`), or `h` is not a household index of the model.
    pub fn within(&self, m: &Measure, h: usize, threshold: f64) -> Option<u32> {
        let r = &self.reached[m.reach].reached;
        let t = r
            .thresholds
            .iter()
            .position(|x| *x == threshold)
            .expect("a kind's thresholds include its rules'");
        self.homes[h].map(|_| r.count(h, t))
    }

    /// The code of household `h`'s nearest facility of the measure's type, and its distance.
    pub fn nearest<'a>(&self, model: &'a Model, m: &Measure, h: usize) -> Option<(&'a str, f64)> {
        let kr = &self.reached[m.reach];
        kr.reached.nearest[h].map(|(f, d)| {
            let i = kr.facilities[f as usize] as usize;
            (model.facilities[i].id.as_str(), d)
        })
    }

    /// The per-household reach of a measure as a polars `DataFrame`: `household` (model
    /// index), `street_id`, `community_id`, `grid_id`, `building_id`, `target` (target
    /// residents), `nearest_facility` (code), `nearest_m`, `within_<T>m` (facilities within
    /// each threshold), `covered` (nearest within the standard) and the three accessibility
    /// scores. Households without target residents are left out. No identifiers.
    ///
    /// # Errors
    /// [`Error::Polars`].
    pub fn households(&self, model: &Model, m: &Measure) -> Result<DataFrame> {
        let rule = self.rule(m);
        let w = &self.targets[m.target].weights;
        let rows: Vec<usize> = (0..w.len()).filter(|h| w[*h] > 0).collect();
        let mut cols: Vec<Column> = vec![Column::new(
            "household".into(),
            rows.iter().map(|h| *h as u32).collect::<Vec<u32>>(),
        )];
        for level in crate::output::release::LEVELS {
            let v: Vec<Option<&str>> = rows
                .iter()
                .map(|h| {
                    model.households[*h]
                        .lineage
                        .at(level)
                        .map(|u| model.code(level, u))
                })
                .collect();
            cols.push(Column::new(format!("{}_id", level.singular()).into(), v));
        }
        cols.push(Column::new(
            "target".into(),
            rows.iter().map(|h| w[*h]).collect::<Vec<u32>>(),
        ));
        let nearest: Vec<Option<(&str, f64)>> =
            rows.iter().map(|h| self.nearest(model, m, *h)).collect();
        cols.push(Column::new(
            "nearest_facility".into(),
            nearest
                .iter()
                .map(|n| n.map(|x| x.0))
                .collect::<Vec<Option<&str>>>(),
        ));
        cols.push(Column::new(
            "nearest_m".into(),
            nearest
                .iter()
                .map(|n| n.map(|x| x.1))
                .collect::<Vec<Option<f64>>>(),
        ));
        for th in &rule.thresholds_m {
            cols.push(Column::new(
                format!("within_{th}m").into(),
                rows.iter()
                    .map(|h| self.within(m, *h, *th))
                    .collect::<Vec<Option<u32>>>(),
            ));
        }
        cols.push(Column::new(
            "covered".into(),
            rows.iter()
                .map(|h| self.covered(m, *h))
                .collect::<Vec<Option<bool>>>(),
        ));
        for (k, (name, _)) in self.accessibility.methods().iter().enumerate() {
            cols.push(Column::new(
                (*name).into(),
                rows.iter()
                    .map(|h| m.access[k][*h])
                    .collect::<Vec<Option<f64>>>(),
            ));
        }
        DataFrame::new_infer_height(cols).map_err(|e| Error::Polars {
            at: Location::layer("coverage"),
            source: Box::new(e),
        })
    }
}

fn check_options(o: &CoverageOptions) -> std::result::Result<(), String> {
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

/// Per resident, whether they are in a target population; `Ok(Err(why))` when the target is
/// known but not computed in this run.
fn target_members(
    model: &Model,
    special: Option<&SpecialNeeds>,
    target: &str,
) -> std::result::Result<std::result::Result<Vec<bool>, String>, String> {
    let placed = |i: usize| model.households[model.residents[i].household as usize].placed;
    if target == "all" {
        return Ok(Ok((0..model.residents.len())
            .into_par_iter()
            .map(placed)
            .collect()));
    }
    let Some(sn) = special else {
        return Ok(Err(format!(
            "target {target:?} needs [special_needs] (the residents' category labels)"
        )));
    };
    let known = sn.categories.iter().any(|c| c.id == target)
        || sn.unavailable.iter().any(|(id, _)| id == target);
    if !known {
        return Err(format!(
            "unknown target {target:?}: use \"all\" or a special-needs category id"
        ));
    }
    if let Some((_, why)) = sn.unavailable.iter().find(|(id, _)| id == target) {
        return Ok(Err(format!("category {target:?} not computed: {why}")));
    }
    let df = sn.residents();
    let col = df
        .column(&format!("cat_{target}"))
        .and_then(|c| c.bool().cloned())
        .map_err(|e| e.to_string())?;
    let col = col.rechunk();
    let members: Vec<bool> = match col.downcast_iter().next() {
        Some(arr) if col.chunks().len() == 1 => (0..model.residents.len())
            .into_par_iter()
            .map(|i| arr.get(i) == Some(true) && placed(i))
            .collect(),
        _ => col
            .iter()
            .enumerate()
            .map(|(i, v)| v == Some(true) && placed(i))
            .collect(),
    };
    Ok(Ok(members))
}

/// A point or line layer's CRS and a transformer to the working CRS.
fn layer_transformer(
    layer: Layer,
    path: &std::path::Path,
    job_crs: Option<&str>,
    file_crs: Option<&Crs>,
    working: &Crs,
) -> Result<Transformer> {
    let (crs, _) = crate::io::layer_crs(layer.name(), path, job_crs, file_crs)?;
    Transformer::new(&crs, working).map_err(|e| e.located(Location::layer(layer.name()).file(path)))
}

fn issue(
    layer: Layer,
    i: usize,
    id: Option<String>,
    kind: IssueKind,
    detail: String,
) -> QualityIssue {
    QualityIssue {
        layer,
        index: Some(i),
        id,
        kind,
        severity: Severity::Rejected,
        detail,
    }
}

/// Reads the network's lines in the working CRS; other features are reported.
fn read_lines(
    build: &Build,
    n: &NetworkOptions,
) -> Result<(Vec<LineString<f64>>, usize, Vec<QualityIssue>)> {
    let path = build.job.resolve(&n.path);
    let opts = ReadOptions {
        geometry_column: n.geometry_column.as_deref(),
        encoding: None,
    };
    let fl = read_features(Layer::Path.name(), &path, &[], opts)?;
    let t = layer_transformer(
        Layer::Path,
        &path,
        n.crs.as_deref(),
        fl.crs.as_ref(),
        &build.model.working_crs,
    )?;
    let features = fl.len();
    let mut issues = Vec::new();
    let mut geoms: Vec<Option<Geometry<f64>>> = Vec::with_capacity(features);
    for (i, g) in fl.geometries.into_iter().enumerate() {
        match g {
            Ok(g @ (Geometry::LineString(_) | Geometry::MultiLineString(_))) => geoms.push(Some(g)),
            Ok(other) => {
                issues.push(issue(
                    Layer::Path,
                    i,
                    None,
                    IssueKind::MissingGeometry,
                    format!(
                        "a {} is not a path: the network takes LineStrings and MultiLineStrings",
                        crate::model::build::type_name(&other)
                    ),
                ));
                geoms.push(None);
            }
            Err(why) => {
                issues.push(issue(Layer::Path, i, None, IssueKind::MissingGeometry, why));
                geoms.push(None);
            }
        }
    }
    for (i, why) in t.transform_geometries(&mut geoms)? {
        issues.push(issue(
            Layer::Path,
            i,
            None,
            IssueKind::OutOfRange,
            format!("cannot transform to the working CRS: {why}"),
        ));
        geoms[i] = None;
    }
    let mut lines = Vec::new();
    for g in geoms.into_iter().flatten() {
        match g {
            Geometry::LineString(l) => lines.push(l),
            Geometry::MultiLineString(m) => lines.extend(m.0),
            _ => {}
        }
    }
    issues.sort_by_key(|i| i.index);
    Ok((lines, features, issues))
}

/// Candidate sites: the buildings' points, or a point layer (bad features reported).
fn candidate_sites(
    build: &Build,
    c: Option<&CandidateLayer>,
) -> Result<(Vec<Site>, Vec<QualityIssue>)> {
    let model = &build.model;
    let Some(c) = c else {
        return Ok((
            model
                .buildings
                .iter()
                .map(|b| Site {
                    id: b.id.to_string(),
                    source: "building",
                    point: b.point,
                })
                .collect(),
            Vec::new(),
        ));
    };
    let path = build.job.resolve(&c.path);
    let opts = ReadOptions {
        geometry_column: c.geometry_column.as_deref(),
        encoding: c.encoding.as_deref(),
    };
    let fl = read_features(Layer::Site.name(), &path, &[c.id.as_str()], opts)?;
    // Only the id is read: undecodable text there makes the site unusable.
    let unreadable: std::collections::HashMap<usize, String> = fl
        .unreadable
        .iter()
        .map(|(i, _, why)| (*i, why.clone()))
        .collect();
    let t = layer_transformer(
        Layer::Site,
        &path,
        c.crs.as_deref(),
        fl.crs.as_ref(),
        &model.working_crs,
    )?;
    let ids: Vec<Option<String>> = fl.columns[0]
        .iter()
        .map(|v| v.as_deref().and_then(clean_code))
        .collect();
    let mut issues = Vec::new();
    let mut geoms: Vec<Option<Geometry<f64>>> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, g) in fl.geometries.into_iter().enumerate() {
        let id = ids[i].clone();
        let bad = |kind, detail: String| issue(Layer::Site, i, id.clone(), kind, detail);
        match (g, &id) {
            (_, _) if unreadable.contains_key(&i) => {
                issues.push(bad(IssueKind::UnreadableRow, unreadable[&i].clone()));
                geoms.push(None);
            }
            (_, None) => {
                issues.push(bad(IssueKind::MissingId, format!("no {:?}", c.id)));
                geoms.push(None);
            }
            (_, Some(code)) if !seen.insert(code.clone()) => {
                issues.push(bad(
                    IssueKind::DuplicateId,
                    format!("site {code:?} given before"),
                ));
                geoms.push(None);
            }
            (Ok(g @ Geometry::Point(_)), _) => geoms.push(Some(g)),
            (Ok(other), _) => {
                issues.push(bad(
                    IssueKind::MissingGeometry,
                    format!(
                        "a {} is not a candidate site: give Points",
                        crate::model::build::type_name(&other)
                    ),
                ));
                geoms.push(None);
            }
            (Err(why), _) => {
                issues.push(bad(IssueKind::MissingGeometry, why));
                geoms.push(None);
            }
        }
    }
    for (i, why) in t.transform_geometries(&mut geoms)? {
        issues.push(issue(
            Layer::Site,
            i,
            ids[i].clone(),
            IssueKind::OutOfRange,
            format!("cannot transform to the working CRS: {why}"),
        ));
        geoms[i] = None;
    }
    let sites = geoms
        .into_iter()
        .zip(ids)
        .filter_map(|(g, id)| match (g, id) {
            (Some(Geometry::Point(p)), Some(id)) => Some(Site {
                id,
                source: "candidate",
                point: p.0,
            }),
            _ => None,
        })
        .collect();
    issues.sort_by_key(|i| i.index);
    Ok((sites, issues))
}

#[allow(clippy::too_many_arguments)]
fn site_facilities(
    build: &Build,
    s: &SitingOptions,
    rules: &RuleSet,
    measures: &[Measure],
    targets: &[Target],
    reached: &[KindReach],
    homes: &[Option<Coord<f64>>],
    net: Option<(&Network, &[Option<Snap>])>,
) -> Result<(Siting, Vec<QualityIssue>)> {
    let job_err = |message: String| build.job.error(format!("[coverage] {message}"));
    let Some(ri) = rules.rules.iter().position(|r| r.id() == s.rule) else {
        return Err(job_err(format!(
            "siting.rule {:?} is not a rule; rules: {}",
            s.rule,
            rules
                .rules
                .iter()
                .map(|r| r.id())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let Some(m) = measures
        .iter()
        .find(|m| m.rule == ri && m.mode == s.distance)
    else {
        return Err(job_err(format!(
            "siting.rule {:?} was not computed (its target is not available)",
            s.rule
        )));
    };
    let rule = &rules.rules[ri];
    let d = s.distance_m.unwrap_or(rule.standard_m);
    if !(d.is_finite() && d > 0.0) {
        return Err(job_err(format!(
            "siting.distance_m must be positive, got {d}"
        )));
    }
    let (sites, issues) = candidate_sites(build, s.candidates.as_ref())?;
    let w = &targets[m.target].weights;
    let kr = &reached[m.reach];
    // Demand not yet covered: located target households beyond `d` of every facility.
    let demand: Vec<u32> = (0..w.len() as u32)
        .filter(|h| {
            let h = *h as usize;
            w[h] > 0 && homes[h].is_some() && kr.reached.nearest[h].is_none_or(|(_, x)| x > d)
        })
        .collect();
    let weights: Vec<u64> = demand.iter().map(|h| u64::from(w[*h as usize])).collect();
    let sets: Vec<Vec<u32>> = match s.distance {
        DistanceMode::Straight => {
            let tree: RTree<GeomWithData<[f64; 2], u32>> = RTree::bulk_load(
                demand
                    .iter()
                    .enumerate()
                    .map(|(i, h)| {
                        let p = homes[*h as usize].expect("located");
                        GeomWithData::new([p.x, p.y], i as u32)
                    })
                    .collect(),
            );
            sites
                .par_iter()
                .map(|site| {
                    let mut v: Vec<u32> = tree
                        .locate_within_distance([site.point.x, site.point.y], d * d)
                        .map(|e| e.data)
                        .collect();
                    v.sort_unstable();
                    v
                })
                .collect()
        }
        DistanceMode::Network => {
            let (network, snaps) = net.expect("checked");
            let points: Vec<Option<Snap>> = demand.iter().map(|h| snaps[*h as usize]).collect();
            let by_edge = PointsByEdge::new(network, &points);
            sites
                .par_iter()
                .map(|site| match network.snap(site.point) {
                    Some(sn) => network
                        .reach(&[sn], d, &points, &by_edge)
                        .into_iter()
                        .map(|(p, _)| p)
                        .collect(),
                    None => Vec::new(),
                })
                .collect()
        }
    };
    let greedy = siting::greedy(&sets, &weights, s.k);
    let useful: Vec<u32> = (0..sets.len() as u32)
        .filter(|c| !sets[*c as usize].is_empty())
        .collect();
    let exact = if useful.len() > s.exact_max_candidates {
        Err(format!(
            "{} candidates cover someone; exact solving is limited to {} \
             (siting.exact_max_candidates)",
            useful.len(),
            s.exact_max_candidates
        ))
    } else {
        let sub: Vec<Vec<u32>> = useful.iter().map(|c| sets[*c as usize].clone()).collect();
        siting::exact(&sub, &weights, s.k).map(|p| {
            p.into_iter()
                .map(|(c, g)| (useful[c as usize], g))
                .collect()
        })
    };
    let target_total = w.iter().map(|x| u64::from(*x)).sum();
    Ok((
        Siting {
            rule: s.rule.clone(),
            mode: s.distance,
            distance_m: d,
            k: s.k,
            sites,
            target_total,
            uncovered_before: weights.iter().sum(),
            greedy,
            exact,
        },
        issues,
    ))
}
