//! Coverage's count columns: per unit and measure, target residents within each threshold,
//! counted from every household's band and merged into the release's count columns; and the
//! per-unit sums (nearest distance, accessibility) the published means are divided from.

use rayon::prelude::*;

use super::fca::Scores;
use super::{Coverage, Measure};
use crate::analytics::counts::{CountColumns, LEVELS};
use crate::model::Model;
use crate::model::level::Layer;

/// The count column holding a measure's target population: `residents` or the category's.
pub fn total_name(cov: &Coverage, m: &Measure) -> String {
    match cov.targets[m.target].id.as_str() {
        "all" => "residents".into(),
        t => t.to_owned(),
    }
}

/// A measure's count columns: target residents whose nearest facility is within each
/// threshold (cumulative, so each is within the next and the last within the target).
pub fn within_names(cov: &Coverage, m: &Measure) -> Vec<String> {
    cov.rule(m)
        .thresholds_m
        .iter()
        .map(|t| format!("{}_within_{t}m", m.id))
        .collect()
}

/// The coverage count columns for the release, appended to `base` (which holds the base and
/// special-needs columns). Each measure's cumulative counts are nested: within the first
/// threshold ⊂ within the next ⊂ … ⊂ the target population, so a count is published only
/// when its difference to the next (the residents between two thresholds, or beyond the
/// last) is at least k as well. No difference of two published counts is a small count.
///
/// # Panics
/// If `base` lacks the released columns of the coverage's targets (made by the special-needs columns or the base tally).
pub fn columns(cov: &Coverage, model: &Model, mut base: CountColumns) -> CountColumns {
    let names: Vec<Vec<String>> = cov.measures.iter().map(|m| within_names(cov, m)).collect();
    let ncols: usize = names.iter().map(Vec::len).sum();
    // One task per (level, measure): a pass over the households into that measure's columns.
    let offsets: Vec<usize> = names
        .iter()
        .scan(0, |off, n| {
            let o = *off;
            *off += n.len();
            Some(o)
        })
        .collect();
    let tasks: Vec<(usize, usize)> = (0..LEVELS.len())
        .filter(|li| model.has(LEVELS[*li]))
        .flat_map(|li| (0..cov.measures.len()).map(move |m| (li, m)))
        .collect();
    let counted: Vec<Vec<u64>> = tasks
        .par_iter()
        .map(|&(li, mi)| {
            let (m, nt) = (&cov.measures[mi], names[mi].len());
            let weights = &cov.targets[m.target].weights;
            let mut c = vec![0u64; model.units(LEVELS[li]) * nt];
            for (h, hh) in model.households.iter().enumerate() {
                let (Some(u), w) = (hh.lineage.at(LEVELS[li]), weights[h]) else {
                    continue;
                };
                if w > 0 {
                    // Within every threshold from the household's band on.
                    for t in (m.bands[h] as usize)..nt {
                        c[u as usize * nt + t] += u64::from(w);
                    }
                }
            }
            c
        })
        .collect();
    let mut values: [Vec<Vec<u64>>; 4] = Default::default();
    for (li, level) in LEVELS.iter().enumerate() {
        values[li] = vec![vec![0u64; ncols]; model.units(*level)];
    }
    for (&(li, mi), c) in tasks.iter().zip(&counted) {
        let nt = names[mi].len();
        for (u, row) in values[li].iter_mut().enumerate() {
            row[offsets[mi]..offsets[mi] + nt].copy_from_slice(&c[u * nt..(u + 1) * nt]);
        }
    }
    let off = base.names.len();
    let mut nested = Vec::new();
    let mut classes = Vec::with_capacity(ncols);
    let mut bounds = Vec::with_capacity(ncols);
    let mut at = off;
    for (m, n) in cov.measures.iter().zip(&names) {
        // A measure's counts are as sensitive as its target population's.
        let target = base
            .index(&total_name(cov, m))
            .expect("target columns are released");
        classes.extend(std::iter::repeat_n(base.classes[target], n.len()));
        bounds.extend(std::iter::repeat_n(base.bound[target], n.len()));
        for t in 0..n.len() {
            let sup = if t + 1 < n.len() {
                at + t + 1
            } else {
                base.index(&total_name(cov, m))
                    .expect("target columns are released")
            };
            nested.push((at + t, sup));
        }
        at += n.len();
    }
    base.append(CountColumns {
        names: names.into_iter().flatten().collect(),
        finest: vec![Layer::Building; classes.len()],
        table: vec!["coverage"; classes.len()],
        bound: bounds,
        classes,
        groups: Vec::new(),
        nested: Vec::new(),
        values,
    });
    base.nested.extend(nested);
    base
}

/// Per unit of a level: target residents, and sums over them of the nearest distance and of
/// each accessibility score, from the unsuppressed model (published only where the target
/// count is).
#[derive(Debug, Clone, Default)]
pub struct UnitSums {
    /// Target residents.
    pub target: Vec<u64>,
    /// Target residents with a nearest facility.
    pub with_nearest: Vec<u64>,
    /// Sum of their nearest distances, each weighted by its household's target residents.
    pub nearest: Vec<f64>,
    /// Sums of the accessibility scores, weighted likewise (zeros when not computed).
    pub access: [Vec<f64>; 3],
}

/// [`UnitSums`] of `m` at each of `levels`: the sums the measure made when it was computed.
pub fn unit_sums(_cov: &Coverage, _model: &Model, levels: &[Layer], m: &Measure) -> Vec<UnitSums> {
    levels
        .iter()
        .map(|l| {
            LEVELS
                .iter()
                .position(|x| x == l)
                .and_then(|k| m.sums.get(k).cloned())
                .unwrap_or_default()
        })
        .collect()
}

/// What a measure is reduced from: per home, its target residents, its nearest facility's
/// distance (`None` without one or without a location) and its scores.
pub(super) struct HomeValues<'a> {
    pub(super) weights: &'a [u32],
    pub(super) nearest: &'a dyn Fn(usize) -> Option<f64>,
    pub(super) access: &'a [Scores; 3],
}

/// [`UnitSums`] at every level of [`LEVELS`], in one pass over the households in their order
/// (so the floating sums are added in a fixed order).
pub(super) fn measure_sums(model: &Model, v: &HomeValues<'_>) -> Vec<UnitSums> {
    let mut sums: Vec<UnitSums> = LEVELS
        .iter()
        .map(|l| {
            let n = if model.has(*l) { model.units(*l) } else { 0 };
            UnitSums {
                target: vec![0; n],
                with_nearest: vec![0; n],
                nearest: vec![0.0; n],
                access: [vec![0.0; n], vec![0.0; n], vec![0.0; n]],
            }
        })
        .collect();
    for (h, hh) in model.households.iter().enumerate() {
        let wh = v.weights[h];
        if wh == 0 {
            continue;
        }
        let nearest = (v.nearest)(h);
        for (l, s) in LEVELS.iter().zip(sums.iter_mut()) {
            let Some(u) = hh.lineage.at(*l) else {
                continue;
            };
            let u = u as usize;
            s.target[u] += u64::from(wh);
            if let Some(d) = nearest {
                s.with_nearest[u] += u64::from(wh);
                s.nearest[u] += f64::from(wh) * d;
            }
            // Empty when accessibility is not computed.
            for (k, a) in v.access.iter().enumerate() {
                if let Some(x) = a.get(h) {
                    s.access[k][u] += f64::from(wh) * x;
                }
            }
        }
    }
    sums
}
