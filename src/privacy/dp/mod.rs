//! The differentially private release (`output = "research-dp"`): every count of every level
//! published with noise, under a privacy budget split across levels and tables, then made
//! consistent (non-negative integers, children adding up to their parent) top down, as the
//! 2020 US census did. See `docs/privacy.md`.
//!
//! * Neighbouring data sets differ by one resident. A resident changes each count column of
//!   its unit by at most the column's *bound*: 1, or the largest household a household rule
//!   looks at (a young person joining four elderly takes four people out of `empty_nest`).
//!   The parts of a group (sex, age bands, disability types) are one *block*: a resident is in
//!   one of them.
//! * The budget (ρ of zero-concentrated DP for the discrete Gaussian, ε of pure DP for the
//!   discrete Laplace) is split over levels and tables by the job's weights; within one
//!   (level, table) every block gets the same share, and a column's noise scale is its bound
//!   times the block scale.
//! * Noise comes from [`sample`], driven by ChaCha20 keyed by the job's secret and the
//!   release's label: the same key and label give the same release.

pub mod sample;

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::model::level::Layer;
use sample::Scale;

/// The noise distribution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    /// Discrete Gaussian, under ρ-zero-concentrated DP (the 2020 US census' mechanism).
    #[default]
    Gaussian,
    /// Discrete Laplace (geometric), under pure ε-DP.
    Laplace,
}

impl Mechanism {
    /// `gaussian` or `laplace`.
    pub fn code(self) -> &'static str {
        match self {
            Mechanism::Gaussian => "discrete_gaussian",
            Mechanism::Laplace => "discrete_laplace",
        }
    }
}

/// The job's `[privacy.dp]` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpOptions {
    /// `gaussian` (default) or `laplace`.
    #[serde(default)]
    pub mechanism: Mechanism,
    /// Gaussian: the zCDP budget ρ.
    pub rho: Option<f64>,
    /// Laplace: the budget ε; Gaussian: with `delta`, converted to the largest ρ whose
    /// (ε, δ) guarantee is at least as strong.
    pub epsilon: Option<f64>,
    /// Gaussian with `epsilon`: δ.
    pub delta: Option<f64>,
    /// The release's label: the same secret and label give the same noise; a new label gives
    /// independent noise (and spends the budget again).
    #[serde(default = "default_release")]
    pub release: String,
    /// Weights of the levels' shares of the budget (`street`, `community`, `grid`,
    /// `building`; default 1 each).
    #[serde(default)]
    pub levels: BTreeMap<String, f64>,
    /// Weights of the tables' shares within a level (`base`, `special_needs`, `coverage`;
    /// default 1 each).
    #[serde(default)]
    pub tables: BTreeMap<String, f64>,
}

fn default_release() -> String {
    "1".into()
}

/// The largest ρ whose zCDP guarantee implies (ε, δ)-DP: ε = ρ + 2√(ρ ln(1/δ)).
///
/// # Examples
/// ```
/// let rho = shequ::privacy::dp::rho_for(1.0, 1e-6);
/// let eps = rho + 2.0 * (rho * (1e6f64).ln()).sqrt();
/// assert!((eps - 1.0).abs() < 1e-12);
/// ```
pub fn rho_for(epsilon: f64, delta: f64) -> f64 {
    let l = (1.0 / delta).ln();
    ((l + epsilon).sqrt() - l.sqrt()).powi(2)
}

impl DpOptions {
    /// The total budget: ρ (Gaussian) or ε (Laplace).
    ///
    /// # Errors
    /// A message naming the key that is missing, out of range or does not fit the mechanism.
    pub fn budget(&self) -> std::result::Result<f64, String> {
        let positive = |x: f64, key: &str| {
            if x.is_finite() && x > 0.0 {
                Ok(x)
            } else {
                Err(format!("privacy.dp.{key} must be a positive number"))
            }
        };
        match (self.mechanism, self.rho, self.epsilon, self.delta) {
            (Mechanism::Gaussian, Some(r), None, None) => positive(r, "rho"),
            (Mechanism::Gaussian, None, Some(e), Some(d)) => {
                positive(e, "epsilon")?;
                if !(d > 0.0 && d < 1.0) {
                    return Err("privacy.dp.delta must be between 0 and 1".into());
                }
                Ok(rho_for(e, d))
            }
            (Mechanism::Laplace, None, Some(e), None) => positive(e, "epsilon"),
            (Mechanism::Gaussian, ..) => {
                Err("privacy.dp with the gaussian mechanism needs rho, or epsilon and delta".into())
            }
            (Mechanism::Laplace, ..) => Err(
                "privacy.dp with the laplace mechanism needs epsilon (and no rho or delta)".into(),
            ),
        }
    }

    /// Checks the section on its own.
    ///
    /// # Errors
    /// As [`DpOptions::budget`], and for unknown or non-positive weights.
    pub fn check(&self) -> std::result::Result<(), String> {
        self.budget()?;
        for (key, known, map) in [
            (
                "levels",
                &["street", "community", "grid", "building"][..],
                &self.levels,
            ),
            (
                "tables",
                &["base", "special_needs", "coverage"][..],
                &self.tables,
            ),
        ] {
            for (k, w) in map {
                if !known.contains(&k.as_str()) {
                    return Err(format!(
                        "privacy.dp.{key}: unknown {k:?} (one of {})",
                        known.join(", ")
                    ));
                }
                if !(w.is_finite() && *w > 0.0) {
                    return Err(format!("privacy.dp.{key}.{k} must be a positive weight"));
                }
            }
        }
        if self.release.is_empty() {
            return Err("privacy.dp.release must not be empty".into());
        }
        Ok(())
    }
}

/// A resolved plan: the options and the noise key.
#[derive(Clone)]
pub struct Plan {
    /// The options.
    pub options: DpOptions,
    /// The total budget (ρ or ε).
    pub budget: f64,
    key: [u8; 32],
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("options", &self.options)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl Plan {
    /// A plan keyed by `secret` (its bytes are never kept: only an HMAC of the release label).
    ///
    /// # Errors
    /// [`Error::Privacy`] for invalid options.
    ///
    /// # Panics
    /// Never: HMAC takes keys of any length.
    pub fn new(options: DpOptions, secret: &crate::privacy::Secret) -> Result<Plan> {
        let budget = options
            .budget()
            .and_then(|b| options.check().map(|()| b))
            .map_err(|message| Error::Privacy { message })?;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.bytes())
            .expect("HMAC takes keys of any length");
        mac.update(b"shequ dp noise\0");
        mac.update(options.release.as_bytes());
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        Ok(Plan {
            options,
            budget,
            key,
        })
    }

    fn weight(map: &BTreeMap<String, f64>, key: &str) -> f64 {
        map.get(key).copied().unwrap_or(1.0)
    }
}

/// One count column's place in the release: its table, bound and block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// `base`, `special_needs` or `coverage`.
    pub table: &'static str,
    /// The most one resident changes the column's count in one unit.
    pub bound: u64,
    /// Columns with one block are parts of one group: a resident is in one of them.
    pub block: usize,
}

/// The budget of one (level, table) and how it is spent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Share {
    /// The level.
    pub level: &'static str,
    /// The table.
    pub table: &'static str,
    /// The budget allotted (ρ or ε).
    pub allotted: f64,
    /// The budget the rounded noise scales spend (at most `allotted`).
    pub spent: f64,
    /// Number of blocks.
    pub blocks: usize,
}

/// One column's noise at one level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnNoise {
    /// The level.
    pub level: &'static str,
    /// The table.
    pub table: &'static str,
    /// The column index (into the release's columns).
    pub column: usize,
    /// The noise scale (σ, or the Laplace scale).
    pub scale: f64,
    /// Half-width of the central 95% interval of the noise.
    pub ci95: u64,
}

/// What [`noisy_release`] returns: the published values and the accounting.
#[derive(Debug, Clone)]
pub struct Noisy {
    /// Per row, per column: the published count.
    pub values: Vec<Vec<u64>>,
    /// Per (level, table): the budget.
    pub shares: Vec<Share>,
    /// Per (level, column): the noise.
    pub noise: Vec<ColumnNoise>,
}

/// Adds noise to every count of `values` (rows in parent-first order, `row_level` each row's
/// level) and post-processes it top down: a root's count is its noisy count made
/// non-negative; the children of a row get the non-negative integers closest (in squared
/// error) to their noisy counts that add up to it.
///
/// # Errors
/// [`Error::Privacy`] if a noise scale is out of range (a budget far too small).
pub fn noisy_release(
    parents: &[Option<usize>],
    row_level: &[Layer],
    values: &[Vec<u64>],
    specs: &[Spec],
    plan: &Plan,
) -> Result<Noisy> {
    let mut levels: Vec<Layer> = row_level.to_vec();
    levels.sort();
    levels.dedup();
    let mut tables: Vec<&'static str> = specs.iter().map(|s| s.table).collect();
    tables.sort_unstable();
    tables.dedup();
    let name = |l: Layer| l.singular();
    let lw: f64 = levels
        .iter()
        .map(|l| Plan::weight(&plan.options.levels, name(*l)))
        .sum();
    let tw: f64 = tables
        .iter()
        .map(|t| Plan::weight(&plan.options.tables, t))
        .sum();
    let gaussian = plan.options.mechanism == Mechanism::Gaussian;
    let mut shares = Vec::new();
    let mut noise = Vec::new();
    // Per level, per column: the scale.
    let mut scales: BTreeMap<(Layer, usize), Scale> = BTreeMap::new();
    for &level in &levels {
        for &table in &tables {
            let allotted = plan.budget * Plan::weight(&plan.options.levels, name(level)) / lw
                * Plan::weight(&plan.options.tables, table)
                / tw;
            let cols: Vec<usize> = (0..specs.len())
                .filter(|c| specs[*c].table == table)
                .collect();
            let mut blocks: Vec<usize> = cols.iter().map(|c| specs[*c].block).collect();
            blocks.sort_unstable();
            blocks.dedup();
            let nb = blocks.len() as f64;
            // Every block spends allotted / nb.
            let base = if gaussian {
                (nb / (2.0 * allotted)).sqrt()
            } else {
                nb / allotted
            };
            let mut spent_by_block: BTreeMap<usize, f64> = BTreeMap::new();
            for &c in &cols {
                // A hair above the exact scale, so that float rounding cannot spend more
                // than the share.
                let want = specs[c].bound as f64 * base * (1.0 + 1e-9);
                let s = Scale::at_least(want).ok_or_else(|| Error::Privacy {
                    message: format!(
                        "a noise scale of {want:.3e} is out of range (the budget is too small \
                         for the {table} table at the {} level)",
                        name(level)
                    ),
                })?;
                let ratio = specs[c].bound as f64 / s.value();
                let spent = if gaussian { ratio * ratio / 2.0 } else { ratio };
                let e = spent_by_block.entry(specs[c].block).or_insert(0.0);
                *e = e.max(spent);
                scales.insert((level, c), s);
                noise.push(ColumnNoise {
                    level: name(level),
                    table,
                    column: c,
                    scale: s.value(),
                    ci95: sample::half_width(gaussian, s.value(), 0.95),
                });
            }
            shares.push(Share {
                level: name(level),
                table,
                allotted,
                spent: spent_by_block.values().sum(),
                blocks: blocks.len(),
            });
        }
    }
    let mut rng = rand_chacha::ChaCha20Rng::from_seed(plan.key);
    let n = specs.len();
    let mut noisy = vec![vec![0i64; n]; values.len()];
    for c in 0..n {
        for (r, row) in values.iter().enumerate() {
            let s = scales[&(row_level[r], c)];
            let z = if gaussian {
                sample::discrete_gaussian(s, &mut rng)
            } else {
                sample::discrete_laplace(s, &mut rng)
            }
            .map_err(|_| Error::Internal {
                at: crate::error::Location::default(),
                message: "a noise sample overflowed".into(),
            })?;
            noisy[r][c] = i64::try_from(row[c]).unwrap_or(i64::MAX).saturating_add(z);
        }
    }
    Ok(Noisy {
        values: consistent(parents, &noisy),
        shares,
        noise,
    })
}

/// Top-down post-processing of noisy counts (see [`noisy_release`]).
fn consistent(parents: &[Option<usize>], noisy: &[Vec<i64>]) -> Vec<Vec<u64>> {
    let rows = noisy.len();
    let n = noisy.first().map_or(0, Vec::len);
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); rows];
    for (r, p) in parents.iter().enumerate() {
        if let Some(p) = p {
            children[*p].push(r);
        }
    }
    let mut out = vec![vec![0u64; n]; rows];
    for c in 0..n {
        for r in 0..rows {
            if parents[r].is_none() {
                out[r][c] = noisy[r][c].max(0) as u64;
            }
            if children[r].is_empty() {
                continue;
            }
            let y: Vec<i64> = children[r].iter().map(|k| noisy[*k][c]).collect();
            for (k, v) in children[r].iter().zip(apportion(out[r][c], &y)) {
                out[*k][c] = v;
            }
        }
    }
    out
}

/// The non-negative integers closest to `noisy` (in squared error, up to rounding) that add up
/// to `total`: the Euclidean projection onto the scaled simplex, rounded by largest
/// remainders.
///
/// # Examples
/// ```
/// use shequ::privacy::dp::apportion;
/// assert_eq!(apportion(10, &[4, 7]), vec![4, 6]);
/// assert_eq!(apportion(10, &[-3, 12]), vec![0, 10]);
/// assert_eq!(apportion(0, &[5, 5]), vec![0, 0]);
/// assert_eq!(apportion(3, &[0, 0, 0]), vec![1, 1, 1]);
/// ```
///
/// # Panics
/// Never: the projection's values are finite.
pub fn apportion(total: u64, noisy: &[i64]) -> Vec<u64> {
    let m = noisy.len();
    if m == 0 {
        return Vec::new();
    }
    // The threshold τ with Σ max(0, y − τ) = total.
    let mut sorted: Vec<f64> = noisy.iter().map(|v| *v as f64).collect();
    sorted.sort_by(|a, b| b.partial_cmp(a).expect("finite"));
    let t = total as f64;
    let mut tau = 0.0;
    let mut acc = 0.0;
    for (i, v) in sorted.iter().enumerate() {
        acc += v;
        let candidate = (acc - t) / (i + 1) as f64;
        if i + 1 == m || sorted[i + 1] <= candidate {
            tau = candidate;
            break;
        }
    }
    let x: Vec<f64> = noisy.iter().map(|v| (*v as f64 - tau).max(0.0)).collect();
    let mut out: Vec<u64> = x.iter().map(|v| v.floor() as u64).collect();
    // Rounding of τ can leave the floors one above the total: take it back where the
    // fraction was smallest.
    while out.iter().sum::<u64>() > total {
        let i = (0..m)
            .filter(|i| out[*i] > 0)
            .min_by(|a, b| {
                (x[*a] - x[*a].floor())
                    .partial_cmp(&(x[*b] - x[*b].floor()))
                    .expect("finite")
            })
            .expect("a positive count");
        out[i] -= 1;
    }
    let short = total.saturating_sub(out.iter().sum());
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|a, b| {
        (x[*b] - x[*b].floor())
            .partial_cmp(&(x[*a] - x[*a].floor()))
            .expect("finite")
            .then(a.cmp(b))
    });
    for i in order.into_iter().cycle().take(short as usize) {
        out[i] += 1;
    }
    out
}
