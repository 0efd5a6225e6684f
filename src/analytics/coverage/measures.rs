//! The steps of coverage: homes, target populations, the walking network, and for each
//! facility type and distance the reach of every home and the measures of every rule.

use std::collections::BTreeSet;

use geo::Coord;
use rayon::prelude::*;

use super::counts::{HomeValues, measure_sums};
use super::fca::{Decay, Scores, two_step_many};
use super::halo::GivenReach;
use super::network::{Network, Snap};
use super::reach::{NetworkReach, Reach, Reached, StraightReach};
use super::{
    AccessibilityOptions, DistanceMode, HomeDetail, KindReach, Measure, NetworkOptions,
    NetworkSummary, RuleSet, ServiceRule, Target, read_lines,
};
use crate::analytics::SpecialNeeds;
use crate::error::Result;
use crate::model::Model;
use crate::model::build::Build;
use crate::model::quality::QualityIssue;

/// Per household: where it is (its location, else its building's point); `None` when it is
/// not placed.
pub(super) fn homes(model: &Model) -> Vec<Option<Coord<f64>>> {
    model
        .households
        .iter()
        .map(|h| {
            crate::model::home(h.placed, h.location, || {
                h.lineage
                    .building
                    .map(|b| model.buildings[b as usize].point)
            })
        })
        .collect()
}

/// Target populations, each rule's target index, and the rules not computed with the reason.
type Targets = (Vec<Target>, Vec<Option<usize>>, Vec<(String, String)>);

/// The target populations of the rules (each once), each rule's target, and the rules whose
/// target is not computed in this run with the reason.
///
/// # Errors
/// A message for the job: a rule names an unknown target.
pub(super) fn targets(
    model: &Model,
    special: Option<&SpecialNeeds>,
    rules: &RuleSet,
) -> std::result::Result<Targets, String> {
    let mut targets: Vec<Target> = Vec::new();
    let mut unavailable = Vec::new();
    let mut rule_target: Vec<Option<usize>> = Vec::new();
    for r in &rules.rules {
        if let Some(t) = targets.iter().position(|t| t.id == r.target) {
            rule_target.push(Some(t));
            continue;
        }
        match target_members(model, special, &r.target)? {
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
    Ok((targets, rule_target, unavailable))
}

/// The walking network: read, built, every home snapped to it, and what it held.
///
/// # Errors
/// Reading the network layer.
pub(super) fn network(
    build: &Build,
    n: &NetworkOptions,
    homes: &[Option<Coord<f64>>],
    issues: &mut Vec<QualityIssue>,
) -> Result<(Network, Vec<Option<Snap>>, NetworkSummary)> {
    let model = &build.model;
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
    Ok((network, snaps, summary))
}

/// What measuring needs: the model, the rules with their targets, homes and the network.
pub(super) struct Measuring<'a> {
    pub(super) model: &'a Model,
    pub(super) rules: &'a RuleSet,
    pub(super) rule_target: &'a [Option<usize>],
    pub(super) targets: &'a [Target],
    pub(super) homes: &'a [Option<Coord<f64>>],
    pub(super) network: Option<(&'a Network, &'a [Option<Snap>])>,
    pub(super) accessibility: &'a AccessibilityOptions,
    pub(super) detail: HomeDetail,
    /// The straight-line reach of homes measured apart, street by street.
    pub(super) given: std::cell::RefCell<Option<GivenReach>>,
    /// The facility type and distance siting reads each home's nearest facility of.
    pub(super) siting: Option<(&'a str, DistanceMode)>,
}

impl Measuring<'_> {
    /// Every facility type a computed rule names, under every distance: the reach of every
    /// home and every rule's measure. Measures are sorted rule by rule, straight first.
    pub(super) fn all(&self, modes: &[DistanceMode]) -> (Vec<KindReach>, Vec<Measure>) {
        let kinds: BTreeSet<&str> = self
            .rules
            .rules
            .iter()
            .zip(self.rule_target)
            .filter(|(_, t)| t.is_some())
            .map(|(r, _)| r.facility.as_str())
            .collect();
        let mut reached = Vec::new();
        let mut measures = Vec::new();
        for kind in kinds {
            for &mode in modes {
                self.kind(kind, mode, &mut reached, &mut measures);
            }
        }
        measures.sort_by_key(|m| (m.rule, m.mode));
        (reached, measures)
    }

    /// One facility type under one distance.
    fn kind(
        &self,
        kind: &str,
        mode: DistanceMode,
        reached: &mut Vec<KindReach>,
        measures: &mut Vec<Measure>,
    ) {
        let model = self.model;
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
        let thresholds = self.rules.thresholds_of(kind);
        let reach = self.reach(mode, &sites, &thresholds);
        let n = self.homes.len();
        let given = match (mode, self.given.borrow_mut().as_mut()) {
            (DistanceMode::Straight, Some(g)) => g.reached(kind, &thresholds, reach.as_ref(), n),
            _ => None,
        };
        let mut r = given.unwrap_or_else(|| Reached::compute(reach.as_ref(), n, &thresholds));
        let ri = reached.len();
        for (i, rule) in self.rules.rules.iter().enumerate() {
            let Some(t) = self.rule_target[i] else {
                continue;
            };
            if rule.facility != kind {
                continue;
            }
            let demand: Vec<f64> = self.targets[t]
                .weights
                .iter()
                .map(|w| f64::from(*w))
                .collect();
            let mut access = self.access(reach.as_ref(), &demand, &supply);
            let homes = self.homes;
            let nearest = |h: usize| match (homes[h], r.nearest[h]) {
                (Some(_), Some((_, d))) => Some(d),
                _ => None,
            };
            let values = HomeValues {
                weights: &self.targets[t].weights,
                nearest: &nearest,
                access: &access,
            };
            let sums = measure_sums(self.model, &values);
            if self.detail == HomeDetail::Units {
                access = Default::default();
            }
            measures.push(Measure {
                rule: i,
                mode,
                id: format!("{}{}", rule.id(), mode.suffix()),
                reach: ri,
                target: t,
                bands: self.bands(rule, &r),
                access,
                sums,
            });
        }
        if self.detail == HomeDetail::Units {
            r.counts = Vec::new();
            if self.siting != Some((kind, mode)) {
                r.nearest = Vec::new();
            }
        }
        reached.push(KindReach {
            kind: kind.to_owned(),
            mode,
            facilities,
            reached: r,
        });
    }

    /// Distances from the homes to `sites` under `mode`, up to the largest threshold (or
    /// the 2SFCA catchment, where that is larger and 2SFCA is computed).
    fn reach(
        &self,
        mode: DistanceMode,
        sites: &[Coord<f64>],
        thresholds: &[f64],
    ) -> Box<dyn Reach + '_> {
        let acc = self.accessibility;
        let largest = thresholds.last().copied().unwrap_or(0.0);
        match mode {
            DistanceMode::Straight => {
                let catchment = if acc.methods().is_empty() {
                    0.0
                } else {
                    acc.catchment_m
                };
                let cutoff = largest.max(catchment);
                Box::new(StraightReach::for_cutoff(sites, self.homes, cutoff))
            }
            DistanceMode::Network => {
                let (network, snaps) = self.network.expect("network mode");
                let site_snaps: Vec<Option<Snap>> =
                    sites.iter().map(|p| network.snap(*p)).collect();
                let cutoff = largest.max(acc.catchment_m);
                Box::new(NetworkReach::new(network, &site_snaps, snaps, cutoff))
            }
        }
    }

    /// Per home, the band of the nearest facility's distance among the rule's thresholds
    /// (`thresholds` = beyond the last, `thresholds + 1` = no home).
    fn bands(&self, rule: &ServiceRule, r: &Reached) -> Vec<u8> {
        let nt = rule.thresholds_m.len();
        (0..self.homes.len())
            .map(|h| {
                if self.homes[h].is_none() {
                    return (nt + 1) as u8;
                }
                match r.nearest[h] {
                    Some((_, d)) => rule
                        .thresholds_m
                        .iter()
                        .position(|th| d <= *th)
                        .unwrap_or(nt) as u8,
                    None => nt as u8,
                }
            })
            .collect()
    }

    /// The 2SFCA family's accessibility per home (empty vectors for methods not computed).
    fn access(&self, reach: &dyn Reach, demand: &[f64], supply: &[f64]) -> [Scores; 3] {
        let acc = self.accessibility;
        let decays: Vec<Decay> = acc.methods().iter().map(|m| m.1.clone()).collect();
        let mut a = if decays.is_empty() {
            Vec::new()
        } else {
            two_step_many(reach, demand, supply, acc.catchment_m, &decays)
        };
        a.resize_with(3, Scores::default);
        [
            std::mem::take(&mut a[0]),
            std::mem::take(&mut a[1]),
            std::mem::take(&mut a[2]),
        ]
    }
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
    let Some(mut members) = sn.members(target) else {
        return Ok(Err(format!("category {target:?} not computed")));
    };
    members
        .par_iter_mut()
        .enumerate()
        .for_each(|(i, m)| *m = *m && placed(i));
    Ok(Ok(members))
}
