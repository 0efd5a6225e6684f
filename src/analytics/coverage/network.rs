//! A walking network from a line layer, and shortest-path distances over it.
//!
//! Lines are split at their vertices; vertices closer than the snapping tolerance become one
//! node, so lines that share an end or a vertex (as OpenStreetMap ways do at junctions) are
//! connected, and lines that only cross are not (a bridge over a road). Points (homes,
//! facilities, candidate sites) join the network at the nearest point of the nearest edge,
//! and the walk to it counts: the distance between two points is the walk from each to its
//! edge plus the shortest path between the two.

use std::collections::HashMap;

use geo::{Coord, Line, LineString};
use pathfinding::directed::dijkstra::dijkstra_reach;
use rstar::primitives::GeomWithData;
use rstar::{PointDistance, RTree};

/// Network costs are whole centimetres, so that shortest paths are exact and ordered.
const CM: f64 = 100.0;

/// Where a point joins the network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snap {
    /// The edge.
    pub edge: u32,
    /// Distance along the edge from its first node (m).
    pub along: f64,
    /// Distance from the point to the edge (m).
    pub off: f64,
}

/// An undirected walking network in the metric working CRS.
///
/// # Examples
/// ```
/// use geo::{coord, LineString};
/// use shequ::analytics::coverage::network::Network;
/// // An L-shaped path: (0,0) → (100,0) → (100,100).
/// let net = Network::from_lines(&[LineString::from(vec![(0.0, 0.0), (100.0, 0.0), (100.0, 100.0)])], 0.5, 50.0);
/// let a = net.snap(coord! { x: 0.0, y: 10.0 }).unwrap();
/// let b = net.snap(coord! { x: 90.0, y: 100.0 }).unwrap();
/// // 10 m to the path, 100 + 100 m along it, 10 m off it.
/// let d = net.distances_from(&[a], 1000.0, &[Some(b)]);
/// assert_eq!(d, vec![(0, 220.0)]);
/// ```
#[derive(Debug, Clone)]
pub struct Network {
    nodes: Vec<Coord<f64>>,
    /// Edges: (first node, second node, length in m).
    edges: Vec<(u32, u32, f64)>,
    /// Adjacency in CSR form: node → (neighbour, edge).
    adj_offsets: Vec<u32>,
    adj: Vec<(u32, u32)>,
    tree: RTree<GeomWithData<Line<f64>, u32>>,
    /// Points farther than this from every edge are not on the network.
    pub snap_m: f64,
}

impl Network {
    /// Builds the network from lines in the metric working CRS. Vertices within
    /// `tolerance_m` of each other (on a grid of that size) are one node; zero-length edges
    /// are dropped.
    pub fn from_lines(lines: &[LineString<f64>], tolerance_m: f64, snap_m: f64) -> Network {
        let tol = tolerance_m.max(1e-6);
        let mut node_of: HashMap<(i64, i64), u32> = HashMap::new();
        let mut nodes = Vec::new();
        let mut edges = Vec::new();
        let mut node = |c: Coord<f64>| -> u32 {
            let key = ((c.x / tol).round() as i64, (c.y / tol).round() as i64);
            *node_of.entry(key).or_insert_with(|| {
                nodes.push(c);
                (nodes.len() - 1) as u32
            })
        };
        for l in lines {
            for seg in l.lines() {
                let (a, b) = (node(seg.start), node(seg.end));
                if a != b {
                    edges.push((a, b, 0.0));
                }
            }
        }
        let mut degree = vec![0u32; nodes.len() + 1];
        for e in &mut edges {
            let (a, b) = (nodes[e.0 as usize], nodes[e.1 as usize]);
            e.2 = (a.x - b.x).hypot(a.y - b.y);
            degree[e.0 as usize + 1] += 1;
            degree[e.1 as usize + 1] += 1;
        }
        for i in 1..degree.len() {
            degree[i] += degree[i - 1];
        }
        let adj_offsets = degree.clone();
        let mut adj = vec![(0u32, 0u32); edges.len() * 2];
        let mut fill = degree;
        for (i, &(a, b, _)) in edges.iter().enumerate() {
            adj[fill[a as usize] as usize] = (b, i as u32);
            fill[a as usize] += 1;
            adj[fill[b as usize] as usize] = (a, i as u32);
            fill[b as usize] += 1;
        }
        let tree = RTree::bulk_load(
            edges
                .iter()
                .enumerate()
                .map(|(i, &(a, b, _))| {
                    GeomWithData::new(Line::new(nodes[a as usize], nodes[b as usize]), i as u32)
                })
                .collect(),
        );
        Network {
            nodes,
            edges,
            adj_offsets,
            adj,
            tree,
            snap_m,
        }
    }

    /// Number of nodes.
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Number of edges.
    pub fn edges(&self) -> usize {
        self.edges.len()
    }

    /// Where `p` joins the network, or `None` if it is farther than `snap_m` from every edge.
    pub fn snap(&self, p: Coord<f64>) -> Option<Snap> {
        let q = geo::Point(p);
        let e = self.tree.nearest_neighbor(&q)?;
        let off = e.geom().distance_2(&q).sqrt();
        if off > self.snap_m {
            return None;
        }
        let l = e.geom();
        let d = l.delta();
        let len2 = d.x * d.x + d.y * d.y;
        let t = if len2 > 0.0 {
            (((p.x - l.start.x) * d.x + (p.y - l.start.y) * d.y) / len2).clamp(0.0, 1.0)
        } else {
            0.0
        };
        Some(Snap {
            edge: e.data,
            along: t * len2.sqrt(),
            off,
        })
    }

    fn neighbours(&self, n: u32) -> &[(u32, u32)] {
        let (a, b) = (
            self.adj_offsets[n as usize] as usize,
            self.adj_offsets[n as usize + 1] as usize,
        );
        &self.adj[a..b]
    }

    /// The two nodes of a snap's edge with the walk to each (cm).
    fn entries(&self, s: &Snap) -> [(u32, u64); 2] {
        let (a, b, len) = self.edges[s.edge as usize];
        [
            (a, ((s.off + s.along) * CM).round() as u64),
            (b, ((s.off + (len - s.along).max(0.0)) * CM).round() as u64),
        ]
    }

    /// Multi-source shortest paths: for every node reached within `cutoff_cm` (all if `None`),
    /// its distance (cm) and the origin it is nearest to.
    fn search(&self, origins: &[Snap], cutoff_cm: Option<u64>) -> Vec<(u32, u64, u32)> {
        let n = self.nodes.len() as u32;
        let origins_base = n + 1;
        // Node ids: 0..n real nodes, n the super-source, n+1+o origin o.
        let successors = |&v: &u32| -> Vec<(u32, u64)> {
            if v == n {
                (0..origins.len() as u32)
                    .map(|o| (origins_base + o, 0))
                    .collect()
            } else if v > n {
                self.entries(&origins[(v - origins_base) as usize]).to_vec()
            } else {
                self.neighbours(v)
                    .iter()
                    .map(|&(w, e)| (w, (self.edges[e as usize].2 * CM).round() as u64))
                    .collect()
            }
        };
        let mut origin_of: HashMap<u32, u32> = HashMap::new();
        let mut out = Vec::new();
        for item in dijkstra_reach(&n, successors) {
            if cutoff_cm.is_some_and(|c| item.total_cost > c) {
                break;
            }
            let v = item.node;
            if v == n {
                continue;
            }
            let Some(parent) = item.parent else { continue };
            let origin = if parent == n {
                v - origins_base
            } else if parent > n {
                parent - origins_base
            } else {
                origin_of[&parent]
            };
            if v < n {
                origin_of.insert(v, origin);
                out.push((v, item.total_cost, origin));
            }
        }
        out
    }

    /// Distances from a set of origins (e.g. one facility) to every point within `cutoff_m`
    /// on the network: `(point index, metres)`, each point once, at its nearest origin.
    /// Points are given by their snaps (`None`: not on the network).
    pub fn distances_from(
        &self,
        origins: &[Snap],
        cutoff_m: f64,
        points: &[Option<Snap>],
    ) -> Vec<(u32, f64)> {
        let by_edge = PointsByEdge::new(self, points);
        self.reach(origins, cutoff_m, points, &by_edge)
    }

    /// As [`Network::distances_from`] with the points already grouped by edge.
    pub(crate) fn reach(
        &self,
        origins: &[Snap],
        cutoff_m: f64,
        points: &[Option<Snap>],
        by_edge: &PointsByEdge,
    ) -> Vec<(u32, f64)> {
        let cutoff_cm = (cutoff_m * CM).round() as u64;
        let reached = self.search(origins, Some(cutoff_cm));
        let dist: HashMap<u32, f64> = reached
            .iter()
            .map(|&(v, c, _)| (v, c as f64 / CM))
            .collect();
        let mut best: HashMap<u32, f64> = HashMap::new();
        let mut consider = |e: u32| {
            let (a, b, len) = self.edges[e as usize];
            for &p in by_edge.on(e) {
                let s = points[p as usize].expect("grouped points are snapped");
                let mut d = f64::INFINITY;
                if let Some(da) = dist.get(&a) {
                    d = d.min(da + s.along + s.off);
                }
                if let Some(db) = dist.get(&b) {
                    d = d.min(db + (len - s.along).max(0.0) + s.off);
                }
                for o in origins.iter().filter(|o| o.edge == e) {
                    d = d.min(o.off + (o.along - s.along).abs() + s.off);
                }
                if d <= cutoff_m {
                    let x = best.entry(p).or_insert(d);
                    *x = x.min(d);
                }
            }
        };
        let mut seen_edges = std::collections::HashSet::new();
        for o in origins {
            if seen_edges.insert(o.edge) {
                consider(o.edge);
            }
        }
        for &(v, _, _) in &reached {
            for &(_, e) in self.neighbours(v) {
                if seen_edges.insert(e) {
                    consider(e);
                }
            }
        }
        let mut out: Vec<(u32, f64)> = best.into_iter().collect();
        out.sort_unstable_by_key(|x| x.0);
        out
    }

    /// For every point, the nearest origin over the network and its distance (`None` when
    /// the point is not on the network or no origin is connected to it).
    pub fn nearest(&self, origins: &[Snap], points: &[Option<Snap>]) -> Vec<Option<(u32, f64)>> {
        let reached = self.search(origins, None);
        let mut at: Vec<Option<(u64, u32)>> = vec![None; self.nodes.len()];
        for (v, c, o) in reached {
            at[v as usize] = Some((c, o));
        }
        let mut on_edge: HashMap<u32, Vec<u32>> = HashMap::new();
        for (i, o) in origins.iter().enumerate() {
            on_edge.entry(o.edge).or_default().push(i as u32);
        }
        points
            .iter()
            .map(|s| {
                let s = s.as_ref()?;
                let (a, b, len) = self.edges[s.edge as usize];
                let mut best: Option<(u32, f64)> = None;
                let mut offer = |o: u32, d: f64| {
                    if best.is_none_or(|(bo, bd)| d < bd || (d == bd && o < bo)) {
                        best = Some((o, d));
                    }
                };
                if let Some((c, o)) = at[a as usize] {
                    offer(o, c as f64 / CM + s.along + s.off);
                }
                if let Some((c, o)) = at[b as usize] {
                    offer(o, c as f64 / CM + (len - s.along).max(0.0) + s.off);
                }
                for &o in on_edge.get(&s.edge).into_iter().flatten() {
                    let f = origins[o as usize];
                    offer(o, f.off + (f.along - s.along).abs() + s.off);
                }
                best
            })
            .collect()
    }
}

/// Points grouped by the edge they join, for [`Network::reach`].
#[derive(Debug, Clone)]
pub(crate) struct PointsByEdge {
    offsets: Vec<u32>,
    points: Vec<u32>,
}

impl PointsByEdge {
    pub(crate) fn new(net: &Network, points: &[Option<Snap>]) -> Self {
        let mut offsets = vec![0u32; net.edges.len() + 1];
        for s in points.iter().flatten() {
            offsets[s.edge as usize + 1] += 1;
        }
        for i in 1..offsets.len() {
            offsets[i] += offsets[i - 1];
        }
        let mut fill = offsets.clone();
        let mut out = vec![0u32; offsets[net.edges.len()] as usize];
        for (i, s) in points.iter().enumerate() {
            if let Some(s) = s {
                out[fill[s.edge as usize] as usize] = i as u32;
                fill[s.edge as usize] += 1;
            }
        }
        PointsByEdge {
            offsets,
            points: out,
        }
    }

    fn on(&self, e: u32) -> &[u32] {
        &self.points[self.offsets[e as usize] as usize..self.offsets[e as usize + 1] as usize]
    }
}
