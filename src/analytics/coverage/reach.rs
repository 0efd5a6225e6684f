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
}

type Entry = GeomWithData<[f64; 2], u32>;

/// Straight-line reach: an R-tree of the service points, queried per demand point.
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
}

impl<'a> StraightReach<'a> {
    /// Indexes `sites` for queries from `points` (`None`: location unknown).
    pub fn new(sites: &[Coord<f64>], points: &'a [Option<Coord<f64>>]) -> Self {
        let tree = RTree::bulk_load(
            sites
                .iter()
                .enumerate()
                .map(|(i, c)| Entry::new([c.x, c.y], i as u32))
                .collect(),
        );
        StraightReach { tree, points }
    }
}

impl Reach for StraightReach<'_> {
    fn within(&self, i: usize, cutoff: f64, f: &mut dyn FnMut(u32, f64)) {
        let Some(p) = self.points[i] else { return };
        let q = [p.x, p.y];
        for e in self.tree.locate_within_distance(q, cutoff * cutoff) {
            let c = e.geom();
            f(e.data, (c[0] - p.x).hypot(c[1] - p.y));
        }
    }

    fn nearest(&self, i: usize) -> Option<(u32, f64)> {
        let p = self.points[i]?;
        let q = [p.x, p.y];
        let mut best: Option<(u32, f64)> = None;
        // All entries at the nearest distance, so that ties resolve by index.
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
            .map(|(i, c)| {
                if nt > 0 {
                    reach.within(i, max, &mut |_, d| {
                        for (t, th) in thresholds.iter().enumerate() {
                            if d <= *th {
                                c[t] += 1;
                            }
                        }
                    });
                }
                reach.nearest(i)
            })
            .collect();
        Reached {
            thresholds: thresholds.to_vec(),
            nearest: if nt == 0 {
                (0..n).into_par_iter().map(|i| reach.nearest(i)).collect()
            } else {
                nearest
            },
            counts,
        }
    }

    /// Service points within `thresholds[t]` of demand point `i`.
    pub fn count(&self, i: usize, t: usize) -> u32 {
        self.counts[i * self.thresholds.len() + t]
    }
}
