//! Exact samplers of the discrete Laplace and discrete Gaussian distributions (Canonne, Kamath
//! and Steinke, "The Discrete Gaussian for Differential Privacy", 2020), driven by a caller's
//! random number generator.
//!
//! The algorithms are those of OpenDP's proven implementation
//! (`opendp::traits::samplers::cks20`, MIT licence, itself derived from Thomas Steinke's
//! reference code, Apache-2.0), step for step, on exact rationals: no floating point touches a
//! sample. OpenDP draws its randomness from the operating system and cannot be seeded; a
//! release must be reproducible by whoever holds its key (`docs/privacy.md`), so these take
//! any [`RngCore`] (shequ passes ChaCha20 keyed by the job's secret). The tests compare both
//! against the exact probability mass functions.
//!
//! Rationals are `u128` fractions; scales are limited to `[1/100, 10^5]` with denominator 100
//! ([`Scale`]), for which no intermediate value overflows (an overflow is an error, never a
//! wrong sample).

use rand::RngCore;

/// A sampler's failure: an intermediate value left the range of `u128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

type R<T> = std::result::Result<T, Overflow>;

/// A non-negative rational `n / d`, reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Q {
    n: u128,
    d: u128,
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Q {
    fn new(n: u128, d: u128) -> Q {
        let g = gcd(n, d).max(1);
        Q { n: n / g, d: d / g }
    }
    fn is_zero(self) -> bool {
        self.n == 0
    }
    /// `self > 1`.
    fn above_one(self) -> bool {
        self.n > self.d
    }
    fn minus_one(self) -> Q {
        Q::new(self.n - self.d, self.d)
    }
    fn div_int(self, k: u128) -> R<Q> {
        Ok(Q::new(self.n, self.d.checked_mul(k).ok_or(Overflow)?))
    }
}

/// A noise scale: `hundredths / 100`.
///
/// # Examples
/// ```
/// use shequ::privacy::dp::sample::Scale;
/// let s = Scale::at_least(2.001).unwrap();
/// assert_eq!(s.value(), 2.01);
/// assert!(Scale::at_least(0.0).is_none() && Scale::at_least(2e5).is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    hundredths: u64,
}

impl Scale {
    /// The largest scale [`Scale::at_least`] gives.
    pub const MAX: f64 = 1e5;

    /// The smallest scale of the form `m / 100` that is at least `x` (rounding up only adds
    /// noise, so the privacy guarantee of `x` still holds). `None` outside `(0, 10^5]`.
    pub fn at_least(x: f64) -> Option<Scale> {
        if !(x > 0.0 && x <= Self::MAX) {
            return None;
        }
        let mut h = (x * 100.0).ceil() as u64;
        // Guard against the float product rounding below.
        while (h as f64) / 100.0 < x {
            h += 1;
        }
        Some(Scale { hundredths: h })
    }

    /// The scale as a float (for messages and accuracy formulas).
    pub fn value(self) -> f64 {
        self.hundredths as f64 / 100.0
    }

    fn q(self) -> Q {
        Q::new(u128::from(self.hundredths), 100)
    }
}

/// A uniform integer in `[0, d)`, by rejection (exact).
fn uniform_below(d: u128, rng: &mut dyn RngCore) -> u128 {
    debug_assert!(d > 0);
    if d == 1 {
        return 0;
    }
    let bits = 128 - (d - 1).leading_zeros();
    let mask = if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    loop {
        let x = ((u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64())) & mask;
        if x < d {
            return x;
        }
    }
}

/// Bernoulli(`p`) for a rational `p` in `[0, 1]`.
fn bernoulli(p: Q, rng: &mut dyn RngCore) -> bool {
    uniform_below(p.d, rng) < p.n
}

/// Bernoulli(exp(−x)) for `x` in `[0, 1]`.
fn bernoulli_exp1(x: Q, rng: &mut dyn RngCore) -> R<bool> {
    let mut k: u128 = 1;
    loop {
        if bernoulli(x.div_int(k)?, rng) {
            k += 1;
        } else {
            return Ok(k % 2 == 1);
        }
    }
}

/// Bernoulli(exp(−x)) for `x` ≥ 0.
fn bernoulli_exp(mut x: Q, rng: &mut dyn RngCore) -> R<bool> {
    while x.above_one() {
        if bernoulli_exp1(Q::new(1, 1), rng)? {
            x = x.minus_one();
        } else {
            return Ok(false);
        }
    }
    bernoulli_exp1(x, rng)
}

/// Geometric(1 − exp(−x)), slowly (for x = 1).
fn geometric_exp_slow(x: Q, rng: &mut dyn RngCore) -> R<u128> {
    let mut k = 0;
    while bernoulli_exp(x, rng)? {
        k += 1;
    }
    Ok(k)
}

/// Geometric(1 − exp(−x)) for a rational `x` ≥ 0.
fn geometric_exp_fast(x: Q, rng: &mut dyn RngCore) -> R<u128> {
    if x.is_zero() {
        return Ok(0);
    }
    let mut u = uniform_below(x.d, rng);
    while !bernoulli_exp(Q::new(u, x.d), rng)? {
        u = uniform_below(x.d, rng);
    }
    let v = geometric_exp_slow(Q::new(1, 1), rng)?;
    let num = v
        .checked_mul(x.d)
        .and_then(|a| a.checked_add(u))
        .ok_or(Overflow)?;
    Ok(num / x.n)
}

/// Discrete Laplace with rational scale `s`: P(x) ∝ exp(−|x| / s).
fn laplace_q(s: Q, rng: &mut dyn RngCore) -> R<i128> {
    if s.is_zero() {
        return Ok(0);
    }
    let inverse = Q::new(s.d, s.n);
    loop {
        let positive = bernoulli(Q::new(1, 2), rng);
        let magnitude = geometric_exp_fast(inverse, rng)?;
        let m = i128::try_from(magnitude).map_err(|_| Overflow)?;
        if positive || m != 0 {
            return Ok(if positive { m } else { -m });
        }
    }
}

/// A sample of the discrete Laplace distribution with scale `s`:
/// P(X = x) ∝ exp(−|x| / s).
///
/// # Errors
/// [`Overflow`] if an intermediate value leaves `u128` (not for scales of [`Scale`]'s range
/// in practice).
///
/// # Examples
/// ```
/// use rand::SeedableRng;
/// use shequ::privacy::dp::sample::{discrete_laplace, Scale};
/// let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
/// let s = Scale::at_least(2.0).unwrap();
/// let draws: Vec<i64> = (0..2000).map(|_| discrete_laplace(s, &mut rng).unwrap()).collect();
/// let mean_abs = draws.iter().map(|x| x.abs() as f64).sum::<f64>() / 2000.0;
/// assert!((mean_abs - 1.92).abs() < 0.2); // E|X| = 2q/(1−q²), q = exp(−1/2)
/// ```
pub fn discrete_laplace(s: Scale, rng: &mut dyn RngCore) -> R<i64> {
    laplace_q(s.q(), rng).and_then(|x| i64::try_from(x).map_err(|_| Overflow))
}

/// A sample of the discrete Gaussian distribution with scale `sigma`:
/// P(X = x) ∝ exp(−x² / (2σ²)).
///
/// # Errors
/// [`Overflow`] as [`discrete_laplace`].
///
/// # Examples
/// ```
/// use rand::SeedableRng;
/// use shequ::privacy::dp::sample::{discrete_gaussian, Scale};
/// let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
/// let s = Scale::at_least(3.0).unwrap();
/// let draws: Vec<i64> = (0..4000).map(|_| discrete_gaussian(s, &mut rng).unwrap()).collect();
/// let var = draws.iter().map(|x| (x * x) as f64).sum::<f64>() / 4000.0;
/// assert!((var - 9.0).abs() < 0.8);
/// ```
pub fn discrete_gaussian(sigma: Scale, rng: &mut dyn RngCore) -> R<i64> {
    let s = sigma.q();
    // t = floor(σ) + 1, σ² = n²/d².
    let t = s.n / s.d + 1;
    let (n2, d2) = (
        s.n.checked_mul(s.n).ok_or(Overflow)?,
        s.d.checked_mul(s.d).ok_or(Overflow)?,
    );
    loop {
        let y = laplace_q(Q::new(t, 1), rng)?;
        // (|y| − σ²/t)² / (2σ²) = (|y|·t·d² − n²)² / (2·t²·d²·n²)
        let a = y
            .unsigned_abs()
            .checked_mul(t)
            .and_then(|v| v.checked_mul(d2))
            .ok_or(Overflow)?;
        let diff = a.abs_diff(n2);
        let num = diff.checked_mul(diff).ok_or(Overflow)?;
        let den = 2u128
            .checked_mul(t)
            .and_then(|v| v.checked_mul(t))
            .and_then(|v| v.checked_mul(d2))
            .and_then(|v| v.checked_mul(n2))
            .ok_or(Overflow)?;
        let bias = Q::new(num, den);
        if bernoulli_exp(bias, rng)? {
            return i64::try_from(y).map_err(|_| Overflow);
        }
    }
}

/// The unnormalised mass of `x` and the mass of the whole distribution, for the discrete
/// Gaussian (`gaussian`) or discrete Laplace with scale `s`.
fn weights(gaussian: bool, s: f64) -> (impl Fn(f64) -> f64, f64) {
    let w = move |x: f64| {
        if gaussian {
            (-(x * x) / (2.0 * s * s)).exp()
        } else {
            (-x.abs() / s).exp()
        }
    };
    // Beyond 40 scales (Gaussian) or 800 (Laplace) the terms are below e^-800.
    let span = if gaussian { 40.0 * s } else { 800.0 * s }.ceil() as i64 + 2;
    let total: f64 = w(0.0) + 2.0 * (1..=span).map(|x| w(x as f64)).sum::<f64>();
    (w, total)
}

/// P(|X| ≤ t) for the discrete Gaussian (`gaussian`) or discrete Laplace with scale `s`.
///
/// # Examples
/// ```
/// use shequ::privacy::dp::sample::mass_within;
/// assert!((mass_within(true, 5.0, 5) - 0.7295).abs() < 0.001);
/// assert!(mass_within(false, 1.0, 1000) > 0.999_999);
/// ```
pub fn mass_within(gaussian: bool, s: f64, t: u64) -> f64 {
    let (w, total) = weights(gaussian, s);
    (w(0.0) + 2.0 * (1..=t).map(|x| w(x as f64)).sum::<f64>()) / total
}

/// The smallest `t` with P(|X| ≤ t) ≥ `level` (below 1): the half-width of the noise's central
/// interval.
///
/// # Examples
/// ```
/// use shequ::privacy::dp::sample::half_width;
/// // Close to 1.96 σ for a wide Gaussian.
/// assert_eq!(half_width(true, 10.0, 0.95), 20);
/// assert_eq!(half_width(true, 0.01, 0.95), 0);
/// ```
pub fn half_width(gaussian: bool, s: f64, level: f64) -> u64 {
    let (w, total) = weights(gaussian, s);
    let mut inside = w(0.0);
    let mut t = 0u64;
    while inside / total < level {
        t += 1;
        inside += 2.0 * w(t as f64);
    }
    t
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    /// Draws `n` samples and compares each value's frequency (|x| ≤ span) with the exact
    /// probability: within 5 standard errors.
    fn matches_pmf(gaussian: bool, scale: f64, n: usize, seed: u64) {
        let s = Scale::at_least(scale).unwrap();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let mut counts: std::collections::BTreeMap<i64, usize> = Default::default();
        for _ in 0..n {
            let x = if gaussian {
                discrete_gaussian(s, &mut rng)
            } else {
                discrete_laplace(s, &mut rng)
            }
            .unwrap();
            *counts.entry(x).or_default() += 1;
        }
        let (w, total) = weights(gaussian, s.value());
        let span = (4.0 * s.value()).ceil() as i64 + 1;
        for x in -span..=span {
            let p = w(x as f64) / total;
            let f = counts.get(&x).copied().unwrap_or(0) as f64 / n as f64;
            let se = (p * (1.0 - p) / n as f64).sqrt();
            assert!(
                (f - p).abs() <= 5.0 * se + 1e-4,
                "gaussian={gaussian} scale={scale} x={x}: {f} vs {p}"
            );
        }
    }

    #[test]
    fn samples_follow_the_exact_distributions() {
        for (gaussian, scale) in [
            (true, 0.6),
            (true, 2.5),
            (true, 7.3),
            (false, 0.5),
            (false, 3.0),
        ] {
            matches_pmf(gaussian, scale, 40_000, 7);
        }
    }

    #[test]
    fn extreme_scales_do_not_overflow() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        for s in [0.01, 1e3, Scale::MAX] {
            let s = Scale::at_least(s).unwrap();
            for _ in 0..200 {
                assert!(discrete_gaussian(s, &mut rng).is_ok());
                assert!(discrete_laplace(s, &mut rng).is_ok());
            }
        }
    }

    #[test]
    fn one_seed_one_sequence() {
        let s = Scale::at_least(4.0).unwrap();
        let draw = |seed| {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
            (0..50)
                .map(|_| discrete_gaussian(s, &mut rng).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }
}
