//! Two-step floating catchment area accessibility (2SFCA, enhanced 2SFCA, Gaussian 2SFCA)
//! with the definitions of PySAL `access`, and equity summaries (Gini, Lorenz curve).
//!
//! With demand `P_i` at location `i`, supply `S_j` at facility `j`, distance `d_ij`,
//! catchment `d0` and weight function `w`:
//!
//! * step 1: `R_j = S_j / Σ_{i: d_ij ≤ d0} P_i · w(d_ij)`;
//! * step 2: `A_i = Σ_{j: d_ij ≤ d0} R_j · w(d_ij)`.
//!
//! As in PySAL `access` 1.1 (`fca.two_stage_fca` / `weighted_catchment`), the catchment is
//! inclusive (`d ≤ d0`; versions before 1.1 used `d < d0`), `A_i` is undefined (null) where
//! no facility is within the catchment, and a facility with no demand within its catchment
//! takes no part. 2SFCA uses `w = 1`;
//! E2SFCA a step function over distance bands (`access.weights.step_fn`: the weight of the
//! first band whose upper bound is `≥ d`, 0 beyond the last); Gaussian 2SFCA
//! `w = exp(−d² / 2σ²)` (`access.weights.gaussian`).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::reach::Reach;

/// A distance-decay weight function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decay {
    /// Weight 1 within the catchment (2SFCA).
    None,
    /// Step weights over distance bands `(upper bound m, weight)`, ascending (E2SFCA).
    Steps(Vec<(f64, f64)>),
    /// `exp(−d² / 2σ²)` with σ in metres (Gaussian 2SFCA).
    Gaussian(f64),
}

impl Decay {
    /// The weight at distance `d` (m).
    ///
    /// # Examples
    /// ```
    /// use shequ::analytics::coverage::fca::Decay;
    /// let steps = Decay::Steps(vec![(300.0, 1.0), (500.0, 0.68), (1000.0, 0.22)]);
    /// assert_eq!(steps.weight(300.0), 1.0);
    /// assert_eq!(steps.weight(300.5), 0.68);
    /// assert_eq!(steps.weight(1200.0), 0.0);
    /// assert!((Decay::Gaussian(20.0).weight(20.0) - 0.6065306597126334).abs() < 1e-15);
    /// ```
    pub fn weight(&self, d: f64) -> f64 {
        match self {
            Decay::None => 1.0,
            Decay::Steps(s) => s
                .iter()
                .find(|(upper, _)| d <= *upper)
                .map_or(0.0, |(_, w)| *w),
            Decay::Gaussian(sigma) => (-d * d / (2.0 * sigma * sigma)).exp(),
        }
    }
}

/// Two-step floating catchment accessibility for demand points `0..demand.len()`.
///
/// `reach` gives the distances from demand points to facilities (`supply.len()` of them).
/// Returns `A_i` per demand point with positive demand; `None` where no facility with a
/// defined ratio lies within the catchment (PySAL gives NaN there) and for points without
/// demand (they take no part).
///
/// # Examples
/// Two homes and two clinics on a line (a hand-computed example):
/// ```
/// use geo::coord;
/// use shequ::analytics::coverage::{fca::{two_step, Decay}, reach::StraightReach};
/// let homes = vec![Some(coord! { x: 0.0, y: 0.0 }), Some(coord! { x: 1000.0, y: 0.0 })];
/// let clinics = [coord! { x: 100.0, y: 0.0 }, coord! { x: 900.0, y: 0.0 }];
/// let reach = StraightReach::new(&clinics, &homes);
/// // Catchment 500 m: each clinic serves one home. R = 10/100 and 20/50.
/// let a = two_step(&reach, &[100.0, 50.0], &[10.0, 20.0], 500.0, &Decay::None);
/// assert_eq!(a, vec![Some(0.1), Some(0.4)]);
/// ```
///
/// # Panics
/// If `supply` has fewer entries than the reach has facilities, or `demand` more than it has
/// demand points.
pub fn two_step(
    reach: &dyn Reach,
    demand: &[f64],
    supply: &[f64],
    catchment_m: f64,
    decay: &Decay,
) -> Vec<Option<f64>> {
    two_step_many(
        reach,
        demand,
        supply,
        catchment_m,
        std::slice::from_ref(decay),
    )
    .pop()
    .expect("one decay")
    .iter()
    .collect()
}

/// Per demand point, its score or none, in 8 bytes a point: none is stored as NaN, which no
/// score is (scores are sums of capacities over demands, finite and non-negative).
///
/// # Examples
/// ```
/// use shequ::analytics::coverage::fca::Scores;
/// let s: Scores = [Some(0.5), None].into_iter().collect();
/// assert_eq!((s.get(0), s.get(1), s.get(2), s.len()), (Some(0.5), None, None, 2));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Scores(Vec<f64>);

impl Scores {
    /// `n` points without a score.
    pub fn none(n: usize) -> Scores {
        Scores(vec![f64::NAN; n])
    }

    /// Point `i`'s score (`None` without one, or past the end).
    #[inline]
    pub fn get(&self, i: usize) -> Option<f64> {
        self.0.get(i).copied().filter(|v| !v.is_nan())
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True without points (accessibility not computed).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every point's score in order.
    pub fn iter(&self) -> impl Iterator<Item = Option<f64>> + '_ {
        self.0.iter().map(|v| (!v.is_nan()).then_some(*v))
    }
}

impl FromIterator<Option<f64>> for Scores {
    fn from_iter<I: IntoIterator<Item = Option<f64>>>(iter: I) -> Scores {
        Scores(iter.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
    }
}

/// [`two_step`] for several weight functions at once: one result per decay, from two range
/// queries per demand point in all.
///
/// # Performance
/// Two passes over the points with positive demand, in parallel (one range query each);
/// facility totals are summed per chunk of points and added in a fixed order, so results are
/// reproducible bit for bit. Nothing is stored per pair.
pub fn two_step_many(
    reach: &dyn Reach,
    demand: &[f64],
    supply: &[f64],
    catchment_m: f64,
    decays: &[Decay],
) -> Vec<Scores> {
    let (m, nd) = (supply.len(), decays.len());
    let active: Vec<usize> = (0..demand.len()).filter(|i| demand[*i] > 0.0).collect();
    // Step 1: weighted demand within each facility's catchment, per decay. The points are cut
    // into at most 64 chunks of a size that depends on their number only, summed in parallel
    // and then added in chunk order, so the floating-point result is the same on every run and
    // any number of threads.
    let chunk = active.len().div_ceil(64).max(4096);
    let partial: Vec<Vec<f64>> = active
        .par_chunks(chunk)
        .map(|points| {
            let mut t = vec![0.0f64; m * nd];
            for &i in points {
                reach.within(i, catchment_m, &mut |j, d| {
                    for (k, decay) in decays.iter().enumerate() {
                        t[k * m + j as usize] += demand[i] * decay.weight(d);
                    }
                });
            }
            t
        })
        .collect();
    let mut total = vec![0.0f64; m * nd];
    for t in partial {
        for (x, y) in total.iter_mut().zip(t) {
            *x += y;
        }
    }
    let ratio: Vec<Option<f64>> = (0..m * nd)
        .map(|kj| (total[kj] > 0.0).then(|| supply[kj % m] / total[kj]))
        .collect();
    // Step 2: sum of weighted ratios within each demand point's catchment, every decay in one
    // range query, into one flat table (`nd` values a point, NaN until a ratio is added).
    let mut flat = vec![f64::NAN; demand.len() * nd];
    flat.par_chunks_mut(nd.max(1))
        .enumerate()
        .filter(|(i, _)| demand[*i] > 0.0)
        .for_each(|(i, a)| {
            reach.within(i, catchment_m, &mut |j, d| {
                for (k, decay) in decays.iter().enumerate() {
                    if let Some(r) = ratio[k * m + j as usize] {
                        if a[k].is_nan() {
                            a[k] = 0.0;
                        }
                        a[k] += r * decay.weight(d);
                    }
                }
            });
        });
    (0..nd)
        .map(|k| Scores(flat.iter().skip(k).step_by(nd).copied().collect()))
        .collect()
}

/// The population-weighted Gini coefficient of `values` (≥ 0) with weights `weights`:
/// `Σ_i Σ_j w_i w_j |x_i − x_j| / (2 (Σ w)² μ)`, μ the weighted mean. `None` if there is no
/// weight or the mean is 0.
///
/// # Examples
/// ```
/// use shequ::analytics::coverage::fca::gini;
/// assert_eq!(gini(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), Some(0.0));
/// // One of two equal groups has everything: G = 0.5.
/// assert_eq!(gini(&[0.0, 2.0], &[1.0, 1.0]), Some(0.5));
/// ```
pub fn gini(values: &[f64], weights: &[f64]) -> Option<f64> {
    let v = sorted_by_value(values, weights);
    let sw: f64 = v.iter().map(|x| x.1).sum();
    let mean = v.iter().map(|x| x.0 * x.1).sum::<f64>() / sw;
    if sw <= 0.0 || mean <= 0.0 || !mean.is_finite() {
        return None;
    }
    // Σ_i Σ_j w_i w_j |x_i − x_j| = 2 Σ_i w_i (x_i W_<i − S_<i) over the sorted values.
    let (mut w_below, mut s_below, mut acc) = (0.0, 0.0, 0.0);
    for (x, w) in &v {
        acc += w * (x * w_below - s_below);
        w_below += w;
        s_below += w * x;
    }
    Some(2.0 * acc / (2.0 * sw * sw * mean))
}

/// Lorenz curve points `(population share, value share)` from (0, 0) to (1, 1), units sorted
/// by value ascending.
///
/// # Examples
/// ```
/// use shequ::analytics::coverage::fca::lorenz;
/// assert_eq!(lorenz(&[3.0, 1.0], &[1.0, 1.0]), vec![(0.0, 0.0), (0.5, 0.25), (1.0, 1.0)]);
/// ```
pub fn lorenz(values: &[f64], weights: &[f64]) -> Vec<(f64, f64)> {
    let v = sorted_by_value(values, weights);
    let sw: f64 = v.iter().map(|x| x.1).sum();
    let sx: f64 = v.iter().map(|x| x.0 * x.1).sum();
    let mut out = vec![(0.0, 0.0)];
    if sw <= 0.0 || sx <= 0.0 {
        return out;
    }
    let (mut cw, mut cx) = (0.0, 0.0);
    for (x, w) in v {
        cw += w;
        cx += x * w;
        out.push((cw / sw, cx / sx));
    }
    out
}

/// `(value, weight)` pairs with positive weight, by value ascending.
fn sorted_by_value(values: &[f64], weights: &[f64]) -> Vec<(f64, f64)> {
    let mut v: Vec<(f64, f64)> = values
        .iter()
        .zip(weights)
        .filter(|(_, w)| **w > 0.0)
        .map(|(x, w)| (*x, *w))
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}
