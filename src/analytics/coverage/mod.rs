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

pub mod counts;
pub mod fca;
pub mod halo;
mod inputs;
mod measures;
pub mod network;
pub mod reach;
pub mod rules;
pub mod siting;

mod options;

use std::path::PathBuf;

use geo::Coord;
use polars::prelude::*;
use serde::Serialize;

pub use reach::DistanceMode;
pub use rules::{RuleSet, ServiceRule};

use crate::analytics::SpecialNeeds;
use crate::error::{Error, Location, Result};
use crate::model::Model;
use crate::model::build::Build;
use crate::model::quality::QualityIssue;
use inputs::{read_lines, site_facilities};
use options::check_options;
pub use options::{
    AccessibilityOptions, CandidateLayer, CoverageOptions, NetworkOptions, SitingOptions,
};
use reach::Reached;

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
    /// empty when accessibility is not computed (`enabled = false`) and when the homes'
    /// detail is not kept ([`HomeDetail::Units`]).
    pub access: [fca::Scores; 3],
    /// Per level of [`LEVELS`](crate::analytics::counts::LEVELS): the target residents and the
    /// sums of nearest distances and scores per unit, made as the measure was computed.
    pub sums: Vec<counts::UnitSums>,
}

/// How much of each home's reach a coverage run keeps once its per-unit sums are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HomeDetail {
    /// Everything: the counts of facilities within each threshold and the 2SFCA scores of
    /// every home ([`Coverage::within`], [`Coverage::households`], operational lists).
    #[default]
    Homes,
    /// What aggregate outputs need: per home only the bands; the nearest facility, the counts
    /// within the thresholds and the scores are kept per unit only (siting reads its rule's
    /// nearest facilities before they go). Research runs use it: at city scale it takes
    /// coverage's memory from 2.4 GB to under 1 GB.
    Units,
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
        Coverage::compute_with(build, opts, special, HomeDetail::Homes)
    }

    /// [`compute`](Self::compute), keeping `detail` of every home.
    ///
    /// # Errors
    /// As [`compute`](Self::compute).
    ///
    /// # Examples
    /// ```
    /// use shequ::analytics::coverage::{Coverage, CoverageOptions, HomeDetail};
    /// let dir = tempfile::tempdir()?;
    /// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(5))?;
    /// let job = shequ::Job::from_toml(dir.path().join("job.toml"))?;
    /// let built = shequ::build(&job)?;
    /// let opts = CoverageOptions::default();
    /// let all = Coverage::compute_with(&built, &opts, None, HomeDetail::Homes)?;
    /// let units = Coverage::compute_with(&built, &opts, None, HomeDetail::Units)?;
    /// let (a, u) = (&all.measures[0], &units.measures[0]);
    /// assert_eq!(a.bands, u.bands);
    /// assert_eq!(a.sums[2].nearest, u.sums[2].nearest); // the grids' sums
    /// assert!(u.access.iter().all(|s| s.is_empty()));
    /// assert_eq!(units.within(u, 0, 300.0), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Panics
    /// As [`compute`](Self::compute).
    pub fn compute_with(
        build: &Build,
        opts: &CoverageOptions,
        special: Option<&SpecialNeeds>,
        detail: HomeDetail,
    ) -> Result<Coverage> {
        Coverage::compute_given(build, opts, special, detail, None)
    }

    /// [`compute_with`](Self::compute_with), with the straight-line reach of the homes
    /// measured apart (street by street, against each street's
    /// [`FacilityHalo`](halo::FacilityHalo)) taken from `given`; the homes it does not know
    /// are measured here. The result is [`compute_with`](Self::compute_with)'s.
    ///
    /// # Errors
    /// As [`compute`](Self::compute).
    ///
    /// # Examples
    /// See [`GivenReach`](halo::GivenReach).
    ///
    /// # Panics
    /// As [`compute`](Self::compute).
    pub fn compute_given(
        build: &Build,
        opts: &CoverageOptions,
        special: Option<&SpecialNeeds>,
        detail: HomeDetail,
        given: Option<halo::GivenReach>,
    ) -> Result<Coverage> {
        let job_err = |message: String| build.job.error(format!("[coverage] {message}"));
        let model = &build.model;
        let rules = RuleSet::merge(opts.replace_default_rules, &opts.rules).map_err(job_err)?;
        check_options(opts).map_err(job_err)?;
        let homes = measures::homes(model);
        let (targets, rule_target, unavailable) =
            measures::targets(model, special, &rules).map_err(job_err)?;
        let mut issues = Vec::new();
        let mut modes = vec![DistanceMode::Straight];
        let net = match &opts.network {
            Some(n) => {
                modes.push(DistanceMode::Network);
                Some(measures::network(build, n, &homes, &mut issues)?)
            }
            None => None,
        };
        let facilities_without_capacity = model
            .facilities
            .iter()
            .filter(|f| f.capacity.is_none())
            .count();
        let m = measures::Measuring {
            model,
            rules: &rules,
            rule_target: &rule_target,
            targets: &targets,
            homes: &homes,
            network: net.as_ref().map(|(n, snaps, _)| (n, snaps.as_slice())),
            accessibility: &opts.accessibility,
            detail,
            given: std::cell::RefCell::new(given),
            siting: opts.siting.as_ref().and_then(|s| {
                let rule = rules.rules.iter().find(|r| r.id() == s.rule)?;
                Some((rule.facility.as_str(), s.distance))
            }),
        };
        let (mut reached, measures) = m.all(&modes);
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
        if detail == HomeDetail::Units {
            // Siting has read what it needed.
            for kr in &mut reached {
                kr.reached.nearest = Vec::new();
            }
        }
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
    ///
    /// `None` too when the counts were not kept ([`HomeDetail::Units`]).
    pub fn within(&self, m: &Measure, h: usize, threshold: f64) -> Option<u32> {
        let r = &self.reached[m.reach].reached;
        if r.counts.is_empty() {
            return None;
        }
        let t = r
            .thresholds
            .iter()
            .position(|x| *x == threshold)
            .expect("a kind's thresholds include its rules'");
        self.homes[h].map(|_| r.count(h, t))
    }

    /// The code of household `h`'s nearest facility of the measure's type, and its distance.
    /// `None` too when the homes' detail was not kept ([`HomeDetail::Units`]).
    pub fn nearest<'a>(&self, model: &'a Model, m: &Measure, h: usize) -> Option<(&'a str, f64)> {
        let kr = &self.reached[m.reach];
        kr.reached.nearest.get(h).copied().flatten().map(|(f, d)| {
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
        for level in crate::analytics::counts::LEVELS {
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
                    .map(|h| m.access[k].get(*h))
                    .collect::<Vec<Option<f64>>>(),
            ));
        }
        DataFrame::new_infer_height(cols).map_err(|e| Error::Polars {
            at: Location::layer("coverage"),
            source: Box::new(e),
        })
    }
}
