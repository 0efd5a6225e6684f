//! Distances from demand points (homes) to service points (facilities of one type): the
//! nearest and every one within a cutoff, in straight lines (an R-tree built once) or over a
//! walking network (shortest paths from every facility, in parallel).

use geo::Coord;
use rayon::prelude::*;
use rstar::RTree;
use rstar::primitives::GeomWithData;
use serde::Serialize;

use super::network::{Network, PointsByEdge, Snap};

/// How distance is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DistanceMode {
    /// Straight-line (Euclidean) distance in the metric working CRS.
    Straight,
    /// Shortest walking distance over the job's path network.
    Network,
}

impl DistanceMode {
    /// `straight` or `network`.
    pub fn code(self) -> &'static str {
        match self {
            DistanceMode::Straight => "straight",
            DistanceMode::Network => "network",
        }
    }

    /// The suffix of a measure's column names: none for straight lines, `_network` otherwise.
    pub fn suffix(self) -> &'static str {
        match self {
            DistanceMode::Straight => "",
            DistanceMode::Network => "_network",
        }
    }
}

/// Distances from demand points to the service points of one type.
pub trait Reach: Sync {
    /// Calls `f(service point, distance)` for every service point within `cutoff` metres
    /// (inclusive) of demand point `i`.
    fn within(&self, i: usize, cutoff: f64, f: &mut dyn FnMut(u32, f64));
    /// The nearest service point of demand point `i` and its distance (ties: lowest index).
    fn nearest(&self, i: usize) -> Option<(u32, f64)>;
    /// [`within`](Self::within) and then [`nearest`](Self::nearest), which an implementation
    /// may answer in one pass.
    fn within_nearest(
        &self,
        i: usize,
        cutoff: f64,
        f: &mut dyn FnMut(u32, f64),
    ) -> Option<(u32, f64)> {
        self.within(i, cutoff, f);
        self.nearest(i)
    }
}

type Entry = GeomWithData<[f64; 2], u32>;

/// The straight-line distance of an offset, as GEOS (and so GeoPandas and DuckDB) computes it:
/// √(dx² + dy²). (`hypot` guards against overflow that metre coordinates never reach, at
/// several times the cost.)
#[inline]
fn distance(dx: f64, dy: f64) -> f64 {
    (dx * dx + dy * dy).sqrt()
}

/// Straight-line reach: the service points in a uniform bucket grid (cells as large as the
/// cutoff the queries use, so a range query reads at most 3 × 3 cells) and an R-tree, queried
/// per demand point.
///
/// # Examples
/// ```
/// use geo::coord;
/// use shequ::analytics::coverage::reach::{Reach, StraightReach};
/// let homes = vec![Some(coord! { x: 0.0, y: 0.0 }), None];
/// let r = StraightReach::new(&[coord! { x: 300.0, y: 400.0 }, coord! { x: 0.0, y: 900.0 }], &homes);
/// assert_eq!(r.nearest(0), Some((0, 500.0)));
/// let mut n = 0;
/// r.within(0, 900.0, &mut |_, _| n += 1);
/// assert_eq!(n, 2);
/// assert_eq!(r.nearest(1), None);
/// ```
pub struct StraightReach<'a> {
    tree: RTree<Entry>,
    points: &'a [Option<Coord<f64>>],
    buckets: Option<Buckets>,
}

/// Sites sorted by cell of a uniform grid: cell `k` holds `sites[starts[k]..starts[k + 1]]`.
struct Buckets {
    x0: f64,
    y0: f64,
    size: f64,
    nx: usize,
    ny: usize,
    starts: Vec<u32>,
    sites: Vec<(f64, f64, u32)>,
}

/// Most bucket cells (each one `u32`).
const MAX_BUCKETS: f64 = (1u32 << 22) as f64;

impl Buckets {
    fn new(sites: &[Coord<f64>], cell: f64) -> Option<Buckets> {
        if sites.is_empty() || !(cell.is_finite() && cell > 0.0) {
            return None;
        }
        let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for c in sites {
            x0 = x0.min(c.x);
            y0 = y0.min(c.y);
            x1 = x1.max(c.x);
            y1 = y1.max(c.y);
        }
        if ![x0, y0, x1, y1].iter().all(|v| v.is_finite()) {
            return None;
        }
        let mut size = cell;
        while ((x1 - x0) / size + 1.0) * ((y1 - y0) / size + 1.0) > MAX_BUCKETS {
            size *= 2.0;
        }
        let nx = ((x1 - x0) / size) as usize + 1;
        let ny = ((y1 - y0) / size) as usize + 1;
        let cell_of = |c: &Coord<f64>| {
            let cx = (((c.x - x0) / size) as usize).min(nx - 1);
            let cy = (((c.y - y0) / size) as usize).min(ny - 1);
            cy * nx + cx
        };
        let mut starts = vec![0u32; nx * ny + 1];
        for c in sites {
            starts[cell_of(c) + 1] += 1;
        }
        for k in 1..starts.len() {
            starts[k] += starts[k - 1];
        }
        let mut fill = starts.clone();
        let mut sorted = vec![(0.0, 0.0, 0u32); sites.len()];
        for (i, c) in sites.iter().enumerate() {
            let k = cell_of(c);
            sorted[fill[k] as usize] = (c.x, c.y, i as u32);
            fill[k] += 1;
        }
        Some(Buckets {
            x0,
            y0,
            size,
            nx,
            ny,
            starts,
            sites: sorted,
        })
    }

    /// Calls `f` for the sites of every cell meeting the box `p ± r` (a superset of the sites
    /// within `r`).
    #[inline]
    fn around(&self, p: Coord<f64>, r: f64, mut f: impl FnMut(f64, f64, u32)) {
        let col = |x: f64| ((x - self.x0) / self.size).floor();
        let row = |y: f64| ((y - self.y0) / self.size).floor();
        let (c0, c1) = (
            col(p.x - r).max(0.0),
            col(p.x + r).min(self.nx as f64 - 1.0),
        );
        let (r0, r1) = (
            row(p.y - r).max(0.0),
            row(p.y + r).min(self.ny as f64 - 1.0),
        );
        // Also false for NaN.
        if !(c0 <= c1 && r0 <= r1) {
            return;
        }
        for cy in r0 as usize..=r1 as usize {
            let base = cy * self.nx;
            let (a, b) = (
                self.starts[base + c0 as usize] as usize,
                self.starts[base + c1 as usize + 1] as usize,
            );
            for &(x, y, i) in &self.sites[a..b] {
                f(x, y, i);
            }
        }
    }
}

impl Buckets {
    /// The nearest site to `p` (ties: lowest index): rings of cells around `p`'s cell, until
    /// the best site found is nearer than every cell not yet read.
    fn nearest(&self, p: Coord<f64>) -> Option<(u32, f64)> {
        let (fx, fy) = ((p.x - self.x0) / self.size, (p.y - self.y0) / self.size);
        if !(fx.is_finite() && fy.is_finite()) {
            return None;
        }
        let (nx, ny) = (self.nx as isize, self.ny as isize);
        let cx = (fx.floor() as isize).clamp(0, nx - 1);
        let cy = (fy.floor() as isize).clamp(0, ny - 1);
        let mut best: Option<(u32, f64)> = None;
        // As `scan` and the R-tree measure it.
        let visit = |best: &mut Option<(u32, f64)>, c: isize, r: isize| {
            let k = (r * nx + c) as usize;
            let (a, b) = (self.starts[k] as usize, self.starts[k + 1] as usize);
            for &(x, y, i) in &self.sites[a..b] {
                let d = distance(x - p.x, y - p.y);
                if best.is_none_or(|(bi, bd)| d < bd || (d == bd && i < bi)) {
                    *best = Some((i, d));
                }
            }
        };
        for k in 0.. {
            let (c0, c1, r0, r1) = (cx - k, cx + k, cy - k, cy + k);
            for r in r0.max(0)..=r1.min(ny - 1) {
                if r == r0 || r == r1 {
                    for c in c0.max(0)..=c1.min(nx - 1) {
                        visit(&mut best, c, r);
                    }
                } else {
                    if c0 >= 0 {
                        visit(&mut best, c0, r);
                    }
                    if c1 < nx && c1 != c0 {
                        visit(&mut best, c1, r);
                    }
                }
            }
            // Every cell not read yet lies beyond one of the square's sides that still has
            // cells outside it.
            let mut border = f64::INFINITY;
            if c0 > 0 {
                border = border.min(p.x - (self.x0 + c0 as f64 * self.size));
            }
            if c1 < nx - 1 {
                border = border.min(self.x0 + (c1 + 1) as f64 * self.size - p.x);
            }
            if r0 > 0 {
                border = border.min(p.y - (self.y0 + r0 as f64 * self.size));
            }
            if r1 < ny - 1 {
                border = border.min(self.y0 + (r1 + 1) as f64 * self.size - p.y);
            }
            if border == f64::INFINITY || best.is_some_and(|(_, d)| d < border) {
                break;
            }
        }
        best
    }
}

impl<'a> StraightReach<'a> {
    /// Indexes `sites` for queries from `points` (`None`: location unknown).
    pub fn new(sites: &[Coord<f64>], points: &'a [Option<Coord<f64>>]) -> Self {
        Self::for_cutoff(sites, points, 0.0)
    }

    /// As [`new`](Self::new), tuned for range queries up to `cutoff` metres: the sites are
    /// also kept in a bucket grid of that cell size, so a query within `cutoff` and a nearest
    /// query that finds a site within `cutoff` read only the 3 × 3 cells around the point.
    ///
    /// # Examples
    /// ```
    /// use geo::coord;
    /// use shequ::analytics::coverage::reach::{Reach, StraightReach};
    /// let homes = vec![Some(coord! { x: 0.0, y: 0.0 })];
    /// let sites = [coord! { x: 3000.0, y: 0.0 }, coord! { x: 0.0, y: 400.0 }];
    /// let r = StraightReach::for_cutoff(&sites, &homes, 1000.0);
    /// assert_eq!(r.nearest(0), Some((1, 400.0)));
    /// let far = StraightReach::for_cutoff(&sites[..1], &homes, 1000.0);
    /// assert_eq!(far.nearest(0), Some((0, 3000.0))); // beyond the cells: the R-tree answers
    /// ```
    pub fn for_cutoff(sites: &[Coord<f64>], points: &'a [Option<Coord<f64>>], cutoff: f64) -> Self {
        let tree = RTree::bulk_load(
            sites
                .iter()
                .enumerate()
                .map(|(i, c)| Entry::new([c.x, c.y], i as u32))
                .collect(),
        );
        StraightReach {
            tree,
            points,
            buckets: Buckets::new(sites, cutoff),
        }
    }
}

impl Reach for StraightReach<'_> {
    fn within(&self, i: usize, cutoff: f64, f: &mut dyn FnMut(u32, f64)) {
        let Some(p) = self.points[i] else { return };
        match &self.buckets {
            Some(b) => b.around(p, cutoff, |x, y, j| {
                let d = distance(x - p.x, y - p.y);
                if d <= cutoff {
                    f(j, d);
                }
            }),
            None => {
                let q = [p.x, p.y];
                for e in self.tree.locate_within_distance(q, cutoff * cutoff) {
                    let c = e.geom();
                    f(e.data, distance(c[0] - p.x, c[1] - p.y));
                }
            }
        }
    }

    fn within_nearest(
        &self,
        i: usize,
        cutoff: f64,
        f: &mut dyn FnMut(u32, f64),
    ) -> Option<(u32, f64)> {
        let (Some(b), Some(p)) = (&self.buckets, self.points[i]) else {
            self.within(i, cutoff, f);
            return self.nearest(i);
        };
        self.scan(b, p, cutoff, f).or_else(|| b.nearest(p))
    }

    fn nearest(&self, i: usize) -> Option<(u32, f64)> {
        let p = self.points[i]?;
        if let Some(b) = &self.buckets {
            return self
                .scan(b, p, 0.0, &mut |_, _| {})
                .or_else(|| b.nearest(p));
        }
        self.tree_nearest(p)
    }
}

impl StraightReach<'_> {
    /// One pass over the bucket cells within `r` = max(`cutoff`, cell size) of `p`: calls `f`
    /// for every site within `cutoff`, and returns the nearest site if it lies within `r`
    /// (every site within `r` is seen, so it is then the nearest of all; ties: lowest index).
    fn scan(
        &self,
        b: &Buckets,
        p: Coord<f64>,
        cutoff: f64,
        f: &mut dyn FnMut(u32, f64),
    ) -> Option<(u32, f64)> {
        let r = cutoff.max(b.size);
        let mut best: Option<(u32, f64)> = None;
        b.around(p, r, |x, y, j| {
            let d = distance(x - p.x, y - p.y);
            if d <= cutoff {
                f(j, d);
            }
            if best.is_none_or(|(bi, bd)| d < bd || (d == bd && j < bi)) {
                best = Some((j, d));
            }
        });
        best.filter(|(_, d)| *d <= r)
    }

    /// The nearest site from the R-tree: all entries at the nearest distance are visited, so
    /// that ties resolve by index.
    fn tree_nearest(&self, p: Coord<f64>) -> Option<(u32, f64)> {
        let q = [p.x, p.y];
        let mut best: Option<(u32, f64)> = None;
        for (e, d2) in self.tree.nearest_neighbor_iter_with_distance_2(&q) {
            match best {
                Some((_, bd)) if d2.sqrt() > bd => break,
                Some((bi, _)) if e.data > bi => {}
                _ => best = Some((e.data, d2.sqrt())),
            }
        }
        best
    }
}

/// Network reach: for every demand point, the service points within a cutoff over the
/// network (from one bounded shortest-path search per service point, in parallel) and the
/// nearest (one multi-source search).
pub struct NetworkReach {
    offsets: Vec<u64>,
    pairs: Vec<(u32, f64)>,
    nearest: Vec<Option<(u32, f64)>>,
}

impl NetworkReach {
    /// Distances from every service point in `sites` (snapped; `None` = not on the network)
    /// to every demand point in `points` within `cutoff_m`.
    ///
    /// # Panics
    /// Never: only the sites that snapped to the network are used (an internal invariant).
    pub fn new(
        net: &Network,
        sites: &[Option<Snap>],
        points: &[Option<Snap>],
        cutoff_m: f64,
    ) -> Self {
        let by_edge = PointsByEdge::new(net, points);
        let per_site: Vec<Vec<(u32, f64)>> = sites
            .par_iter()
            .map(|s| match s {
                Some(s) => net.reach(std::slice::from_ref(s), cutoff_m, points, &by_edge),
                None => Vec::new(),
            })
            .collect();
        // Transpose to demand-major order.
        let mut offsets = vec![0u64; points.len() + 1];
        for v in &per_site {
            for &(p, _) in v {
                offsets[p as usize + 1] += 1;
            }
        }
        for i in 1..offsets.len() {
            offsets[i] += offsets[i - 1];
        }
        let mut fill = offsets.clone();
        let mut pairs = vec![(0u32, 0.0f64); offsets[points.len()] as usize];
        for (s, v) in per_site.iter().enumerate() {
            for &(p, d) in v {
                pairs[fill[p as usize] as usize] = (s as u32, d);
                fill[p as usize] += 1;
            }
        }
        // The nearest, over all sites on the network (index back into `sites`).
        let on: Vec<u32> = (0..sites.len() as u32)
            .filter(|i| sites[*i as usize].is_some())
            .collect();
        let snaps: Vec<Snap> = on.iter().map(|i| sites[*i as usize].unwrap()).collect();
        let nearest = net
            .nearest(&snaps, points)
            .into_iter()
            .map(|n| n.map(|(o, d)| (on[o as usize], d)))
            .collect();
        NetworkReach {
            offsets,
            pairs,
            nearest,
        }
    }
}

impl Reach for NetworkReach {
    fn within(&self, i: usize, cutoff: f64, f: &mut dyn FnMut(u32, f64)) {
        let (a, b) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
        for &(s, d) in &self.pairs[a..b] {
            if d <= cutoff {
                f(s, d);
            }
        }
    }

    fn nearest(&self, i: usize) -> Option<(u32, f64)> {
        self.nearest[i]
    }
}

/// Per demand point: the nearest service point and the number within each threshold.
///
/// # Examples
/// ```
/// use geo::coord;
/// use shequ::analytics::coverage::reach::{Reached, StraightReach};
/// let homes = vec![Some(coord! { x: 0.0, y: 0.0 })];
/// let sites = [coord! { x: 200.0, y: 0.0 }, coord! { x: 0.0, y: 450.0 }];
/// let r = Reached::compute(&StraightReach::new(&sites, &homes), 1, &[300.0, 500.0]);
/// assert_eq!(r.nearest[0], Some((0, 200.0)));
/// assert_eq!(r.count(0, 0), 1);
/// assert_eq!(r.count(0, 1), 2);
/// ```
#[derive(Debug, Clone)]
pub struct Reached {
    /// Thresholds (m), ascending.
    pub thresholds: Vec<f64>,
    /// Per demand point: the nearest service point and its distance.
    pub nearest: Vec<Option<(u32, f64)>>,
    /// `counts[i * thresholds.len() + t]`: service points within `thresholds[t]` of point `i`.
    pub counts: Vec<u32>,
}

impl Reached {
    /// Queries `reach` for demand points `0..n` in parallel.
    ///
    /// # Performance
    /// One nearest query and one range query (the largest threshold) per point; no
    /// allocation per point.
    pub fn compute(reach: &dyn Reach, n: usize, thresholds: &[f64]) -> Reached {
        let nt = thresholds.len();
        let max = thresholds.last().copied().unwrap_or(0.0);
        let mut counts = vec![0u32; n * nt];
        let nearest: Vec<Option<(u32, f64)>> = counts
            .par_chunks_mut(nt.max(1))
            .enumerate()
            .map(|(i, c)| Reached::one(reach, i, max, thresholds, c))
            .collect();
        Reached {
            thresholds: thresholds.to_vec(),
            // No thresholds: `counts` is empty, so the chunks above did not run.
            nearest: if nt == 0 {
                (0..n).into_par_iter().map(|i| reach.nearest(i)).collect()
            } else {
                nearest
            },
            counts,
        }
    }

    /// Demand point `i`'s nearest service point, its counts within each threshold added to
    /// `counts` (one pass within `max`, the largest threshold).
    pub(super) fn one(
        reach: &dyn Reach,
        i: usize,
        max: f64,
        thresholds: &[f64],
        counts: &mut [u32],
    ) -> Option<(u32, f64)> {
        reach.within_nearest(i, max, &mut |_, d| {
            for (t, th) in thresholds.iter().enumerate() {
                if d <= *th {
                    counts[t] += 1;
                }
            }
        })
    }

    /// Service points within `thresholds[t]` of demand point `i`.
    pub fn count(&self, i: usize, t: usize) -> u32 {
        self.counts[i * self.thresholds.len() + t]
    }
}
