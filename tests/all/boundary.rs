//! The boundary rule, checked against brute force on random partitions.

use geo::algorithm::coordinate_position::{CoordPos, CoordinatePosition};
use geo::{Coord, LineString, MultiPolygon, Polygon};
use proptest::prelude::*;
use shequ::index::{PolygonIndex, ranks_by_id};

/// A jittered lattice partition with integer coordinates that are multiples of 10, so that
/// points exactly on edges can be constructed exactly.
fn partition(nx: i64, ny: i64, jitter: &[i64]) -> (Vec<MultiPolygon<f64>>, Vec<String>) {
    let v = |i: i64, j: i64| -> Coord<f64> {
        let interior = i > 0 && j > 0 && i < nx && j < ny;
        let k = ((i * 31 + j * 17) as usize) % jitter.len();
        let (dx, dy) = if interior {
            (jitter[k] * 10, jitter[(k + 1) % jitter.len()] * 10)
        } else {
            (0, 0)
        };
        Coord {
            x: (i * 1000 + dx) as f64,
            y: (j * 1000 + dy) as f64,
        }
    };
    let mut polys = Vec::new();
    let mut ids = Vec::new();
    for j in 0..ny {
        for i in 0..nx {
            let ring = vec![v(i, j), v(i + 1, j), v(i + 1, j + 1), v(i, j + 1), v(i, j)];
            polys.push(MultiPolygon(vec![Polygon::new(LineString(ring), vec![])]));
            // Ids in an order unrelated to the input order.
            ids.push(format!("G{:03}", (i * 7 + j * 13) % 1000 + i * 1000 + j));
        }
    }
    (polys, ids)
}

/// Brute force: among the polygons covering the point, the one with the smallest id.
fn brute(polys: &[MultiPolygon<f64>], ids: &[String], p: Coord<f64>) -> Option<u32> {
    (0..polys.len())
        .filter(|&i| polys[i].coordinate_position(&p) != CoordPos::Outside)
        .min_by(|&a, &b| ids[a].cmp(&ids[b]))
        .map(|i| i as u32)
}

/// Exact points on the segment a-b: a + k (b - a) / g for g = gcd of the deltas.
fn on_segment(a: Coord<f64>, b: Coord<f64>, k: i64) -> Coord<f64> {
    fn gcd(a: i64, b: i64) -> i64 {
        if b == 0 { a.abs() } else { gcd(b, a % b) }
    }
    let (dx, dy) = ((b.x - a.x) as i64, (b.y - a.y) as i64);
    let g = gcd(dx, dy).max(1);
    let k = k.rem_euclid(g + 1);
    Coord {
        x: a.x + (k * dx / g) as f64,
        y: a.y + (k * dy / g) as f64,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn points_on_shared_edges_go_to_exactly_one_polygon(
        nx in 2i64..5, ny in 2i64..5,
        jitter in proptest::collection::vec(-20i64..20, 7),
        picks in proptest::collection::vec((0usize..64, 0usize..4, 0i64..40), 20),
    ) {
        let (polys, ids) = partition(nx, ny, &jitter);
        let refs: Vec<Option<&MultiPolygon<f64>>> = polys.iter().map(Some).collect();
        let index = PolygonIndex::new(&refs, &ranks_by_id(&ids));
        for (cell, edge, k) in picks {
            let ring = &polys[cell % polys.len()].0[0].exterior().0;
            let p = on_segment(ring[edge], ring[edge + 1], k);
            let got = index.locate(p);
            prop_assert!(got.is_some(), "a point on a cell's boundary is always placed");
            prop_assert_eq!(got, brute(&polys, &ids, p), "point {:?}", p);
        }
    }

    /// Where the cells name one polygon for a whole box, every point of the box (its corners
    /// and edges too) is that polygon's by brute force; and a box well inside one polygon gets
    /// an answer.
    #[test]
    fn owner_of_a_box_is_every_points_polygon(
        nx in 1i64..5, ny in 1i64..5,
        jitter in proptest::collection::vec(-20i64..20, 7),
        boxes in proptest::collection::vec(
            (-500.0f64..5500.0, -500.0f64..5500.0, 0.0f64..300.0, 0.0f64..300.0), 30),
        t in proptest::collection::vec((0.0f64..=1.0, 0.0f64..=1.0), 8),
    ) {
        let (polys, ids) = partition(nx, ny, &jitter);
        let refs: Vec<Option<&MultiPolygon<f64>>> = polys.iter().map(Some).collect();
        let index = PolygonIndex::new(&refs, &ranks_by_id(&ids));
        for (x, y, w, h) in boxes {
            let (lo, hi) = (Coord { x, y }, Coord { x: x + w, y: y + h });
            let Some(owner) = index.owner_of_box(lo, hi) else { continue };
            let corners = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)];
            for (a, b) in corners.iter().chain(&t) {
                let p = Coord { x: lo.x + a * (hi.x - lo.x), y: lo.y + b * (hi.y - lo.y) };
                prop_assert_eq!(Some(owner), brute(&polys, &ids, p), "box {:?}-{:?}, point {:?}", lo, hi, p);
            }
        }
        // The middle of the first polygon (cells of about 1000 / 32 units; none near an edge).
        let c = polys[0].0[0].exterior().0[0];
        let (lo, hi) = (Coord { x: c.x + 400.0, y: c.y + 400.0 }, Coord { x: c.x + 500.0, y: c.y + 500.0 });
        prop_assert_eq!(index.owner_of_box(lo, hi), Some(0));
    }

    #[test]
    fn random_points_match_brute_force(
        nx in 1i64..5, ny in 1i64..5,
        jitter in proptest::collection::vec(-20i64..20, 7),
        pts in proptest::collection::vec((-500.0f64..5500.0, -500.0f64..5500.0), 50),
    ) {
        let (polys, ids) = partition(nx, ny, &jitter);
        let refs: Vec<Option<&MultiPolygon<f64>>> = polys.iter().map(Some).collect();
        let index = PolygonIndex::new(&refs, &ranks_by_id(&ids));
        for (x, y) in pts {
            let p = Coord { x, y };
            prop_assert_eq!(index.locate(p), brute(&polys, &ids, p));
        }
    }
}

#[test]
fn a_shared_vertex_of_four_cells_goes_to_the_smallest_id() {
    let (polys, ids) = partition(2, 2, &[0]);
    let refs: Vec<Option<&MultiPolygon<f64>>> = polys.iter().map(Some).collect();
    let index = PolygonIndex::new(&refs, &ranks_by_id(&ids));
    let centre = Coord {
        x: 1000.0,
        y: 1000.0,
    };
    let smallest = (0..4).min_by(|&a, &b| ids[a].cmp(&ids[b])).unwrap() as u32;
    assert_eq!(index.locate(centre), Some(smallest));
}

/// Star-shaped polygons of many vertices around random centres, overlapping one another; every
/// other one has a hole and a second, detached part.
fn stars(centres: &[(f64, f64)], wobble: &[f64]) -> Vec<MultiPolygon<f64>> {
    let star = |cx: f64, cy: f64, r: f64, k0: usize| -> LineString<f64> {
        let n = 40 + k0 % 90;
        let mut ring: Vec<Coord<f64>> = (0..n)
            .map(|k| {
                let a = std::f64::consts::TAU * k as f64 / n as f64;
                let rr = r * (0.6 + 0.4 * wobble[(k + k0) % wobble.len()]);
                Coord {
                    x: cx + rr * a.cos(),
                    y: cy + rr * a.sin(),
                }
            })
            .collect();
        ring.push(ring[0]);
        LineString(ring)
    };
    centres
        .iter()
        .enumerate()
        .map(|(i, &(cx, cy))| {
            let outer = star(cx, cy, 300.0, i * 7);
            if i % 2 == 0 {
                MultiPolygon(vec![Polygon::new(outer, vec![])])
            } else {
                let hole = star(cx, cy, 80.0, i * 3);
                let far = star(cx + 900.0, cy - 700.0, 120.0, i * 5);
                MultiPolygon(vec![
                    Polygon::new(outer, vec![hole]),
                    Polygon::new(far, vec![]),
                ])
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The cell accelerator never changes an answer: many-vertex, overlapping polygons with
    /// holes and detached parts, random points, vertices and points on (and a hair off) edges.
    #[test]
    fn cell_accelerator_agrees_with_exact_location(
        centres in proptest::collection::vec((0.0f64..2000.0, 0.0f64..2000.0), 1..12),
        wobble in proptest::collection::vec(0.0f64..1.0, 5..40),
        pts in proptest::collection::vec((-400.0f64..3400.0, -1200.0f64..2400.0), 300),
        along in proptest::collection::vec((0usize..10_000, 0.0f64..1.0, -1e-7f64..1e-7), 100),
    ) {
        let polys = stars(&centres, &wobble);
        let ids: Vec<String> = (0..polys.len()).map(|i| format!("P{:02}", (i * 5) % 17)).collect();
        let refs: Vec<Option<&MultiPolygon<f64>>> = polys.iter().map(Some).collect();
        let index = PolygonIndex::new(&refs, &ranks_by_id(&ids));
        let mut probes: Vec<Coord<f64>> = pts.iter().map(|&(x, y)| Coord { x, y }).collect();
        for (k, t, off) in along {
            let mp = &polys[k % polys.len()];
            let ring = &mp.0[k % mp.0.len()].exterior().0;
            let e = k % (ring.len() - 1);
            let (a, b) = (ring[e], ring[e + 1]);
            probes.push(a);
            probes.push(Coord { x: a.x + t * (b.x - a.x) + off, y: a.y + t * (b.y - a.y) - off });
        }
        for p in probes {
            let got = index.locate(p);
            prop_assert_eq!(got, index.locate_exact(p), "point {:?}", p);
            prop_assert_eq!(got, brute(&polys, &ids, p), "point {:?}", p);
        }
    }
}
