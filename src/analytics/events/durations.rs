//! Times per step, per unit: a partial that merges exactly and gives the same medians and
//! 90th percentiles for any chunking (the durations themselves are kept, as whole seconds;
//! the finish groups them once and selects the order statistics it needs).

use rayon::prelude::*;

/// Durations in whole seconds per group (a dense index: a unit, or a unit × period × step).
///
/// `push` folds a chunk's cases in; `merge` folds another partial in (its lists are moved,
/// not copied); [`finish`](Self::finish) groups the values once and gives each group's
/// [`Quantiles`]. Integers and order statistics: the result does not depend on the order of
/// chunks or merges.
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
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Durations {
    groups: usize,
    /// Lists in push order, one per chunk and per partial merged in.
    lists: Vec<List>,
}

/// A list of durations: as pushed, or sealed into runs per group.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
enum List {
    Open { group: Vec<u32>, seconds: Vec<i64> },
    Sealed(Runs),
}

/// Values in runs per group: group `g` is `values[start[g]..start[g + 1]]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Runs {
    start: Vec<usize>,
    values: Vec<i64>,
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
            groups,
            lists: Vec::new(),
        }
    }

    /// Adds one duration to `group`.
    ///
    /// # Panics
    /// `group` is not below the number of groups.
    pub fn push(&mut self, group: usize, seconds: i64) {
        assert!(group < self.groups, "group {group} of {}", self.groups);
        if !matches!(self.lists.last(), Some(List::Open { .. })) {
            self.reserve(0);
        }
        if let Some(List::Open {
            group: g,
            seconds: s,
        }) = self.lists.last_mut()
        {
            g.push(group as u32);
            s.push(seconds);
        }
    }

    /// Starts a new list with room for `n` durations (a chunk's), so that no list is copied
    /// as it grows.
    pub fn reserve(&mut self, n: usize) {
        self.lists.retain(|l| l.len() > 0);
        self.lists.push(List::Open {
            group: Vec::with_capacity(n),
            seconds: Vec::with_capacity(n),
        });
    }

    /// Folds `other` in (its groups are added to the same groups; extra groups are kept).
    pub fn merge(&mut self, other: Durations) {
        self.groups = self.groups.max(other.groups);
        self.lists
            .extend(other.lists.into_iter().filter(|l| l.len() > 0));
    }

    /// The number of durations held.
    pub fn len(&self) -> usize {
        self.lists.iter().map(List::len).sum()
    }

    /// True if no duration is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Groups each list's values by group (a counting sort per list, the lists in
    /// parallel), so that the quantiles of this level and of every coarser one are gathered
    /// from runs. Each part seals its chunk's list as it finishes it; the finish of a merged
    /// partial seals what is left. Pushing or merging afterwards still works.
    pub fn compact(&mut self) {
        let groups = self.groups;
        self.lists.par_iter_mut().for_each(|l| {
            if let List::Open { group, seconds } = l {
                *l = List::Sealed(Runs::of(groups, group, seconds));
            }
        });
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
        for l in &self.lists {
            l.for_each(|g, s| {
                if let Some(to) = rolled(g, steps, parent) {
                    out.push(to as usize, s);
                }
            });
        }
        out
    }

    /// Each group's quantiles (`None` for an empty group).
    pub fn finish(&self) -> Vec<Option<Quantiles>> {
        let Some(runs) = self.runs() else {
            let mut sealed = self.clone();
            sealed.compact();
            return sealed.finish();
        };
        quantiles_of(self.groups, |g, into| {
            for r in &runs {
                into.extend_from_slice(r.run(g));
            }
        })
    }

    /// The quantiles of a coarser level, as [`roll_up`](Self::roll_up) then
    /// [`finish`](Self::finish) give them, gathered from the runs of each parent's children
    /// without copying the durations into a partial of their own.
    ///
    /// # Examples
    /// ```
    /// use shequ::analytics::events::Durations;
    /// let mut grids = Durations::new(3 * 2);
    /// grids.push(0, 10);
    /// grids.push(2 * 2, 30);
    /// let parent = [Some(0), None, Some(0)];
    /// assert_eq!(grids.finish_rolled_up(2, &parent, 1),
    ///            grids.roll_up(2, &parent, 1).finish());
    /// assert_eq!(grids.finish_rolled_up(2, &parent, 1)[0].unwrap().median, 20.0);
    /// ```
    pub fn finish_rolled_up(
        &self,
        steps: usize,
        parent: &[Option<u32>],
        parents: usize,
    ) -> Vec<Option<Quantiles>> {
        let Some(runs) = self.runs() else {
            let mut sealed = self.clone();
            sealed.compact();
            return sealed.finish_rolled_up(steps, parent, parents);
        };
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); parents];
        for (u, p) in parent.iter().enumerate().take(self.groups / steps) {
            if let Some(p) = p {
                children[*p as usize].push(u);
            }
        }
        quantiles_of(parents * steps, |g, into| {
            let (p, step) = (g / steps, g % steps);
            for u in &children[p] {
                for r in &runs {
                    into.extend_from_slice(r.run(u * steps + step));
                }
            }
        })
    }

    /// Every list's runs, when every list is sealed.
    fn runs(&self) -> Option<Vec<&Runs>> {
        self.lists
            .iter()
            .map(|l| match l {
                List::Sealed(r) => Some(r),
                List::Open { .. } => None,
            })
            .collect()
    }
}

impl List {
    fn len(&self) -> usize {
        match self {
            List::Open { group, .. } => group.len(),
            List::Sealed(r) => r.values.len(),
        }
    }

    /// Calls `f(group, seconds)` for every value.
    fn for_each(&self, mut f: impl FnMut(u32, i64)) {
        match self {
            List::Open { group, seconds } => {
                for (g, s) in group.iter().zip(seconds) {
                    f(*g, *s);
                }
            }
            List::Sealed(r) => {
                for g in 0..r.start.len().saturating_sub(1) {
                    for s in r.run(g) {
                        f(g as u32, *s);
                    }
                }
            }
        }
    }
}

impl Runs {
    /// `seconds` placed in runs by `group` (a counting sort over `groups` groups).
    fn of(groups: usize, group: &[u32], seconds: &[i64]) -> Runs {
        let mut start = vec![0usize; groups + 1];
        for g in group {
            start[*g as usize + 1] += 1;
        }
        for i in 0..groups {
            start[i + 1] += start[i];
        }
        let mut next = start.clone();
        let mut values = vec![0i64; seconds.len()];
        for (g, s) in group.iter().zip(seconds) {
            let at = &mut next[*g as usize];
            values[*at] = *s;
            *at += 1;
        }
        Runs { start, values }
    }

    /// Group `g`'s values (none for a group past this list's).
    fn run(&self, g: usize) -> &[i64] {
        match (self.start.get(g), self.start.get(g + 1)) {
            (Some(a), Some(b)) => &self.values[*a..*b],
            _ => &[],
        }
    }
}

/// The group a value of group `g` rolls up to.
fn rolled(g: u32, steps: usize, parent: &[Option<u32>]) -> Option<u32> {
    let (u, s) = (g as usize / steps, g as usize % steps);
    parent
        .get(u)
        .copied()
        .flatten()
        .map(|p| (p as usize * steps + s) as u32)
}

/// The quantiles of each of `groups` groups, from the values `fill` gathers for a group (in
/// parallel, into a buffer per thread).
fn quantiles_of(
    groups: usize,
    fill: impl Fn(usize, &mut Vec<i64>) + Sync,
) -> Vec<Option<Quantiles>> {
    (0..groups)
        .into_par_iter()
        .with_min_len(64)
        .map_init(Vec::new, |buf, g| {
            buf.clear();
            fill(g, buf);
            (!buf.is_empty()).then(|| Quantiles {
                count: buf.len(),
                median: select_quantile(buf, 0.5),
                p90: select_quantile(buf, 0.9),
            })
        })
        .collect()
}

/// [`quantile`] of unsorted, non-empty `v`, by selection (reorders `v`).
fn select_quantile(v: &mut [i64], q: f64) -> f64 {
    let pos = (v.len() - 1) as f64 * q;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let (_, a, right) = v.select_nth_unstable(lo);
    let a = *a;
    let b = if hi == lo {
        a
    } else {
        *right.iter().min().expect("hi is within v")
    };
    interpolate(a, b, pos - lo as f64)
}

/// The value a fraction `t` of the way from `a` to `b`, computed as numpy does.
fn interpolate(a: i64, b: i64, t: f64) -> f64 {
    let (a, b) = (a as f64, b as f64);
    if t >= 0.5 {
        b - (b - a) * (1.0 - t)
    } else {
        a + (b - a) * t
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
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    interpolate(v[lo], v[hi], pos - lo as f64)
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

        /// Compacted, the same quantiles at this level and rolled up, and merging more in
        /// afterwards still counts everything.
        #[test]
        fn compacted_gives_the_same(
            values in proptest::collection::vec((0usize..6, 0i64..1_000), 1..200),
            parent in proptest::collection::vec(proptest::option::of(0u32..2), 3),
        ) {
            let mut d = Durations::new(6);
            for &(g, v) in &values {
                d.push(g, v);
            }
            let mut c = d.clone();
            c.compact();
            proptest::prop_assert_eq!(c.finish(), d.finish());
            proptest::prop_assert_eq!(
                c.finish_rolled_up(2, &parent, 2),
                d.roll_up(2, &parent, 2).finish()
            );
            let mut more = Durations::new(6);
            more.push(5, 7);
            let (mut c2, mut d2) = (c.clone(), d.clone());
            c2.merge(more.clone());
            d2.merge(more.clone());
            more.merge(c);
            proptest::prop_assert_eq!(c2.finish(), d2.finish());
            proptest::prop_assert_eq!(more.finish(), d2.finish());
            proptest::prop_assert_eq!(more.len(), values.len() + 1);
        }

        /// Selection gives the quantiles of the sorted values.
        #[test]
        fn selection_equals_sorting(mut v in proptest::collection::vec(-50i64..50, 1..300)) {
            let mut sorted = v.clone();
            sorted.sort_unstable();
            for q in [0.0, 0.1, 0.5, 0.9, 1.0] {
                proptest::prop_assert_eq!(select_quantile(&mut v, q), quantile(&sorted, q));
            }
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
