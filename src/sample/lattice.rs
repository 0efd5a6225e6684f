//! The district's geometry: a jittered lattice whose cells are grids, rectangles for
//! buildings, and the local metric plane mapped to longitude/latitude.

use std::f64::consts::PI;

use ::geojson::JsonObject;
use geo::{Coord, Geometry, LineString, Polygon};

use super::{LAT0, LON0};

pub(super) fn to_lonlat(c: Coord<f64>) -> Coord<f64> {
    let mx = 111_320.0 * (LAT0 * PI / 180.0).cos();
    Coord {
        x: LON0 + c.x / mx,
        y: LAT0 + c.y / 110_574.0,
    }
}

/// A cheap deterministic hash of integers, for jitter that both sides of an edge agree on.
pub(super) fn hash(seed: u64, parts: &[i64]) -> f64 {
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
    for &p in parts {
        h ^= p as u64;
        h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 31;
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

pub(super) struct Lattice {
    pub(super) seed: u64,
    pub(super) cell: f64,
    pub(super) detail: usize,
}

impl Lattice {
    pub(super) fn vertex(&self, i: i64, j: i64) -> Coord<f64> {
        let jx = (hash(self.seed, &[i, j, 1]) - 0.5) * 0.24 * self.cell;
        let jy = (hash(self.seed, &[i, j, 2]) - 0.5) * 0.24 * self.cell;
        Coord {
            x: i as f64 * self.cell + jx,
            y: j as f64 * self.cell + jy,
        }
    }

    /// Points from lattice vertex a to b (a included, b excluded), with wiggles that depend only
    /// on the unordered edge, so both neighbours get identical coordinates.
    pub(super) fn edge(&self, a: (i64, i64), b: (i64, i64), out: &mut Vec<Coord<f64>>) {
        let (lo, hi, rev) = if a <= b { (a, b, false) } else { (b, a, true) };
        let (p, q) = (self.vertex(lo.0, lo.1), self.vertex(hi.0, hi.1));
        let (dx, dy) = (q.x - p.x, q.y - p.y);
        let len = (dx * dx + dy * dy).sqrt();
        let (nx, ny) = (-dy / len, dx / len);
        let mut pts = Vec::with_capacity(self.detail + 2);
        pts.push(p);
        for m in 1..=self.detail {
            let t = m as f64 / (self.detail + 1) as f64;
            let amp =
                (hash(self.seed, &[lo.0, lo.1, hi.0, hi.1, m as i64]) - 0.5) * 0.04 * self.cell;
            pts.push(Coord {
                x: p.x + dx * t + nx * amp,
                y: p.y + dy * t + ny * amp,
            });
        }
        pts.push(q);
        if rev {
            pts.reverse();
        }
        out.extend_from_slice(&pts[..pts.len() - 1]);
    }

    /// The counter-clockwise boundary of the block of cells [i0, i1) x [j0, j1).
    pub(super) fn block(&self, i0: i64, i1: i64, j0: i64, j1: i64) -> Polygon<f64> {
        let mut ring = Vec::new();
        for i in i0..i1 {
            self.edge((i, j0), (i + 1, j0), &mut ring);
        }
        for j in j0..j1 {
            self.edge((i1, j), (i1, j + 1), &mut ring);
        }
        for i in (i0..i1).rev() {
            self.edge((i + 1, j1), (i, j1), &mut ring);
        }
        for j in (j0..j1).rev() {
            self.edge((i0, j + 1), (i0, j), &mut ring);
        }
        ring.push(ring[0]);
        Polygon::new(LineString(ring), vec![])
    }

    /// A point inside cell (i, j) at fractions (u, v) of its corners.
    pub(super) fn inside(&self, i: i64, j: i64, u: f64, v: f64) -> Coord<f64> {
        let (a, b, c, d) = (
            self.vertex(i, j),
            self.vertex(i + 1, j),
            self.vertex(i + 1, j + 1),
            self.vertex(i, j + 1),
        );
        Coord {
            x: (1.0 - v) * ((1.0 - u) * a.x + u * b.x) + v * ((1.0 - u) * d.x + u * c.x),
            y: (1.0 - v) * ((1.0 - u) * a.y + u * b.y) + v * ((1.0 - u) * d.y + u * c.y),
        }
    }
}

pub(super) fn rect(center: Coord<f64>, w: f64, h: f64) -> Polygon<f64> {
    let (x, y) = (center.x, center.y);
    Polygon::new(
        LineString(vec![
            Coord {
                x: x - w / 2.0,
                y: y - h / 2.0,
            },
            Coord {
                x: x + w / 2.0,
                y: y - h / 2.0,
            },
            Coord {
                x: x + w / 2.0,
                y: y + h / 2.0,
            },
            Coord {
                x: x - w / 2.0,
                y: y + h / 2.0,
            },
            Coord {
                x: x - w / 2.0,
                y: y - h / 2.0,
            },
        ]),
        vec![],
    )
}

pub(super) fn lonlat_geom(g: Geometry<f64>) -> Geometry<f64> {
    geo::MapCoords::map_coords(&g, to_lonlat)
}

pub(super) fn props(v: serde_json::Value) -> JsonObject {
    match v {
        serde_json::Value::Object(m) => m,
        _ => unreachable!("object literal"),
    }
}

/// Pushes the middle of the ring segment that is extreme in direction `dir` by `by` metres
/// along `dir`, creating an overlap (outward) or a gap (inward) with the neighbour.
pub(super) fn push_edge(p: &mut Polygon<f64>, dir: Coord<f64>, by: f64) {
    let ring = &p.exterior().0;
    let mut best = (f64::MIN, 0);
    for k in 0..ring.len() - 1 {
        let m = (ring[k].x + ring[k + 1].x) * dir.x + (ring[k].y + ring[k + 1].y) * dir.y;
        if m > best.0 {
            best = (m, k);
        }
    }
    let k = best.1;
    let mid = Coord {
        x: (ring[k].x + ring[k + 1].x) / 2.0 + dir.x * by,
        y: (ring[k].y + ring[k + 1].y) / 2.0 + dir.y * by,
    };
    p.exterior_mut(|r| r.0.insert(k + 1, mid));
}
