//! Times per step, per unit: a partial that merges exactly and gives the same medians and
//! 90th percentiles for any chunking (the durations themselves are kept, as whole seconds;
//! the finish sorts them once).

use rayon::prelude::*;

/// Durations in whole seconds per group (a dense index: a unit, or a unit × period × step).
///
/// `push` folds a chunk's cases in; `merge` folds another partial in; [`finish`](Self::finish)
/// sorts each group once and gives its [`Quantiles`]. Integers and a sort: the result does not
/// depend on the order of chunks or merges.
///
/// # Examples
/// ```
/// use shequ::analytics::events::Durations;
/// let mut a = Durations::new(2);
/// a.push(0, 60);
/// a.push(0, 180);
/// let mut b = Durations::new(2);
/// b.push(0, 120);
/// b.push(1, 30);
/// a.merge(b);
/// let q = a.finish();
/// assert_eq!(q[0].unwrap().median, 120.0);
/// assert_eq!(q[1].unwrap().count, 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Durations {
    groups: Vec<Vec<i64>>,
}

/// A group's count, median and 90th percentile (seconds), interpolated linearly between
/// order statistics as pandas' `quantile` and numpy's default method do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantiles {
    /// Durations in the group.
    pub count: usize,
    /// The median.
    pub median: f64,
    /// The 90th percentile.
    pub p90: f64,
}

impl Durations {
    /// An empty partial of `groups` groups.
    pub fn new(groups: usize) -> Durations {
        Durations {
            groups: vec![Vec::new(); groups],
        }
    }

    /// Adds one duration to `group`.
    ///
    /// # Panics
    /// `group` is not below the number of groups.
    pub fn push(&mut self, group: usize, seconds: i64) {
        self.groups[group].push(seconds);
    }

    /// Folds `other` in (its groups are added to the same groups; extra groups are kept).
    pub fn merge(&mut self, other: Durations) {
        if other.groups.len() > self.groups.len() {
            self.groups.resize(other.groups.len(), Vec::new());
        }
        for (mine, theirs) in self.groups.iter_mut().zip(other.groups) {
            mine.extend(theirs);
        }
    }

    /// The groups of a coarser level: group `u * steps + s` of this partial goes to group
    /// `parent[u] * steps + s` (units without a parent are left out).
    ///
    /// # Examples
    /// ```
    /// use shequ::analytics::events::Durations;
    /// let mut grids = Durations::new(3 * 2); // three grids, two steps
    /// grids.push(0, 10);
    /// grids.push(2 * 2 + 1, 30);
    /// let communities = grids.roll_up(2, &[Some(0), None, Some(0)], 1);
    /// let q = communities.finish();
    /// assert_eq!((q[0].unwrap().count, q[1].unwrap().count), (1, 1));
    /// ```
    pub fn roll_up(&self, steps: usize, parent: &[Option<u32>], parents: usize) -> Durations {
        let mut out = Durations::new(parents * steps);
        for (g, values) in self.groups.iter().enumerate() {
            if let Some(Some(p)) = parent.get(g / steps) {
                out.groups[*p as usize * steps + g % steps].extend_from_slice(values);
            }
        }
        out
    }

    /// Each group's quantiles (`None` for an empty group), the groups sorted in parallel.
    pub fn finish(mut self) -> Vec<Option<Quantiles>> {
        self.groups
            .par_iter_mut()
            .map(|g| {
                if g.is_empty() {
                    return None;
                }
                g.sort_unstable();
                Some(Quantiles {
                    count: g.len(),
                    median: quantile(g, 0.5),
                    p90: quantile(g, 0.9),
                })
            })
            .collect()
    }
}

/// The `q` quantile of sorted, non-empty `v`, interpolated linearly: position `(n - 1) q`
/// (numpy's and pandas' default), computed as numpy does (from the upper neighbour when the
/// fraction is at least a half), so that the values agree to the last bit.
///
/// # Examples
/// ```
/// use shequ::analytics::events::quantile;
/// assert_eq!(quantile(&[1, 2, 3, 4], 0.5), 2.5);
/// assert!((quantile(&[1, 2, 3, 4], 0.9) - 3.7).abs() < 1e-12);
/// assert_eq!(quantile(&[7], 0.9), 7.0);
/// ```
///
/// # Panics
/// `v` is empty.
pub fn quantile(v: &[i64], q: f64) -> f64 {
    let pos = (v.len() - 1) as f64 * q;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (a, b) = (v[lo] as f64, v[hi] as f64);
    let t = pos - lo as f64;
    if t >= 0.5 {
        b - (b - a) * (1.0 - t)
    } else {
        a + (b - a) * t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any split into chunks, merged in any order, gives the quantiles of the whole.
        #[test]
        fn the_same_for_any_chunking(
            values in proptest::collection::vec((0usize..3, 0i64..1_000_000), 1..200),
            cut in 0usize..200,
        ) {
            let mut whole = Durations::new(3);
            for &(g, v) in &values {
                whole.push(g, v);
            }
            let cut = cut.min(values.len());
            let (mut a, mut b) = (Durations::new(3), Durations::new(3));
            for &(g, v) in &values[..cut] {
                a.push(g, v);
            }
            for &(g, v) in &values[cut..] {
                b.push(g, v);
            }
            b.merge(a);
            proptest::prop_assert_eq!(b.finish(), whole.finish());
        }
    }

    #[test]
    fn quantiles_match_numpy_linear() {
        // numpy.quantile([10, 20, 30, 40, 50, 60, 70, 80, 90, 1000], [0.5, 0.9]) = [55, 181]
        let v = [10, 20, 30, 40, 50, 60, 70, 80, 90, 1000];
        assert_eq!(quantile(&v, 0.5), 55.0);
        assert!((quantile(&v, 0.9) - 181.0).abs() < 1e-9);
    }
}
