//! Topology checks between and within polygon levels: sibling overlaps, gaps inside a parent,
//! children crossing their parent's boundary. Areas are in m² of the working CRS.

use geo::{
    Area, BooleanOps, BoundingRect, Coord, CoordsIter, InteriorPoint, Intersects, LineString,
    MultiPolygon, Polygon, Rect, RemoveRepeatedPoints, Validation,
};
use rayon::prelude::*;
use rstar::RTree;
use rstar::primitives::{GeomWithData, Rectangle};

use crate::index::PolygonIndex;
use crate::model::level::Layer;
use crate::model::quality::{IssueKind, QualityIssue, Severity};
use crate::model::unit::Unit;

/// Checks a polygon with [`geo::Validation`]'s rules and returns its message when invalid.
///
/// The common case, one part without holes, is decided here with the same rules geo applies
/// to it (at least 4 distinct points, finite coordinates, no self-intersection), but the
/// self-intersection test compares only edges whose boxes overlap (a sweep along x) instead of
/// every pair of edges: geo's test is quadratic, which for surveyed boundaries of hundreds of
/// vertices dominated the build. Anything else (several parts, holes, any rule broken) goes to
/// geo, so its verdict and message stand.
///
pub(crate) fn validate(mp: &MultiPolygon<f64>) -> Result<(), String> {
    if let [p] = mp.0.as_slice() {
        let ring = p.exterior();
        if p.interiors().is_empty()
            && ring.0.len() >= 4
            && ring.0.iter().all(|c| c.x.is_finite() && c.y.is_finite())
            && ring.remove_repeated_points().0.len() >= 4
            && !ring_self_intersects(ring)
        {
            return Ok(());
        }
    }
    mp.check_validation().map_err(|e| e.to_string())
}

/// geo's ring self-intersection rule (two edges that intersect, other than consecutive edges
/// at their shared vertex), over the pairs of edges whose bounding boxes overlap.
pub(crate) fn ring_self_intersects(ring: &LineString<f64>) -> bool {
    let lines: Vec<geo::Line<f64>> = ring.lines().collect();
    let mut order: Vec<(f64, f64, usize)> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (l.start.x.min(l.end.x), l.start.x.max(l.end.x), i))
        .collect();
    order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    for (k, &(_, x1, i)) in order.iter().enumerate() {
        let a = lines[i];
        let (ay0, ay1) = (a.start.y.min(a.end.y), a.start.y.max(a.end.y));
        for &(bx0, _, j) in &order[k + 1..] {
            if bx0 > x1 {
                break;
            }
            let b = lines[j];
            if b.start.y.max(b.end.y) < ay0 || b.start.y.min(b.end.y) > ay1 {
                continue;
            }
            // The rule is symmetric in the two edges.
            if a.intersects(&b) && a.start != b.end && a.end != b.start {
                return true;
            }
        }
    }
    false
}

/// (geometry, source index, id) of a unit.
pub(crate) type UnitRef<'a> = (&'a MultiPolygon<f64>, Option<usize>, &'a str);

/// The parent polygon a child polygon overlaps most; ties go to the smaller id. `hint` is the
/// parent the child declares, if known.
///
/// Fast paths, with no polygon clipping:
/// - a derived parent declared by the child, where an interior point of the child locates;
/// - the hint (else the parent of the child's first vertex) covers every vertex of the child,
///   and at least one vertex locates to it by the boundary rule (so no parent with a smaller
///   id covers the whole child, which would tie): that parent;
/// - every vertex of the child locates in the same parent: that parent.
pub(crate) fn largest_overlap(
    child: &MultiPolygon<f64>,
    index: &PolygonIndex,
    parents: &[UnitRef<'_>],
    hint: Option<u32>,
) -> Option<u32> {
    let first = child.exterior_coords_iter().next()?;
    // A derived parent (no source row) is the union of the children that declare it: the
    // child lies in it by construction. Only a parent with a smaller id that also holds the
    // whole child would tie; the one found at an interior point of the child tells.
    if let Some(h) = hint.filter(|h| parents[*h as usize].1.is_none()) {
        if child
            .interior_point()
            .is_some_and(|ip| index.locate(ip.0) == Some(h))
        {
            return Some(h);
        }
    }
    if let Some(h) = hint.or_else(|| index.locate(first)) {
        let mut located = false;
        if child.exterior_coords_iter().all(|c| {
            located = located || index.locate(c) == Some(h);
            index.covers(h, c)
        }) && located
        {
            return Some(h);
        }
    }
    let mut same: Option<Option<u32>> = None;
    let mut uniform = true;
    for c in child.exterior_coords_iter() {
        let p = index.locate(c);
        match same {
            None => same = Some(p),
            Some(q) if q == p => {}
            Some(_) => {
                uniform = false;
                break;
            }
        }
    }
    if uniform {
        if let Some(Some(p)) = same {
            return Some(p);
        }
    }
    let r = child.bounding_rect()?;
    let mut best: Option<(f64, u32)> = None;
    for j in index.candidates(r.min(), r.max()) {
        let area = intersection_area(child, parents[j as usize].0);
        if area <= 0.0 {
            continue;
        }
        best = match best {
            None => Some((area, j)),
            Some((a, k))
                if area > a || (area == a && parents[j as usize].2 < parents[k as usize].2) =>
            {
                Some((area, j))
            }
            keep => keep,
        };
    }
    best.map(|(_, j)| j)
}

/// The area of `a ∩ b`. Both are first clipped to the intersection of their bounding boxes,
/// which holds all of `a ∩ b`: neighbours whose boxes meet in a strip along a shared boundary
/// then hand the boolean operation only the vertices near that boundary, not every vertex of
/// both. Boxes that meet in a line or point give 0 without any.
pub(crate) fn intersection_area(a: &MultiPolygon<f64>, b: &MultiPolygon<f64>) -> f64 {
    let (Some(ra), Some(rb)) = (a.bounding_rect(), b.bounding_rect()) else {
        return 0.0;
    };
    let (lo, hi) = (
        Coord {
            x: ra.min().x.max(rb.min().x),
            y: ra.min().y.max(rb.min().y),
        },
        Coord {
            x: ra.max().x.min(rb.max().x),
            y: ra.max().y.min(rb.max().y),
        },
    );
    if lo.x >= hi.x || lo.y >= hi.y {
        return 0.0;
    }
    let (ca, cb) = (clip_to_box(a, lo, hi), clip_to_box(b, lo, hi));
    if ca.0.is_empty() || cb.0.is_empty() {
        return 0.0;
    }
    ca.intersection(&cb).unsigned_area()
}

/// `mp` clipped to the box `lo`–`hi`, ring by ring (Sutherland–Hodgman, one box side at a
/// time). A concave ring can come back with zero-width bridges along the box's sides; they
/// enclose no area, and the boolean operations count them out. Exact up to the rounding of
/// the new vertices on the box's sides, which are computed from each edge's endpoints in a
/// fixed order, so an edge two polygons share is cut at the same point in both.
fn clip_to_box(mp: &MultiPolygon<f64>, lo: Coord<f64>, hi: Coord<f64>) -> MultiPolygon<f64> {
    let inside = |r: &Rect<f64>| {
        r.min().x >= lo.x && r.min().y >= lo.y && r.max().x <= hi.x && r.max().y <= hi.y
    };
    let clip_ring = |ring: &LineString<f64>| -> Option<LineString<f64>> {
        let mut pts: Vec<Coord<f64>> = ring.0.clone();
        if pts.len() > 1 && pts.first() == pts.last() {
            pts.pop();
        }
        let mut next = Vec::with_capacity(pts.len() + 4);
        // Each side: which coordinate (x = 0, y = 1), the bound, and whether to keep below it.
        for (axis, bound, below) in [
            (0, lo.x, false),
            (0, hi.x, true),
            (1, lo.y, false),
            (1, hi.y, true),
        ] {
            let val = |c: &Coord<f64>| if axis == 0 { c.x } else { c.y };
            let keep = |c: &Coord<f64>| {
                if below {
                    val(c) <= bound
                } else {
                    val(c) >= bound
                }
            };
            let cut = |p: Coord<f64>, q: Coord<f64>| {
                let (p, q) = if (p.x, p.y) <= (q.x, q.y) {
                    (p, q)
                } else {
                    (q, p)
                };
                let t = (bound - val(&p)) / (val(&q) - val(&p));
                if axis == 0 {
                    Coord {
                        x: bound,
                        y: p.y + t * (q.y - p.y),
                    }
                } else {
                    Coord {
                        x: p.x + t * (q.x - p.x),
                        y: bound,
                    }
                }
            };
            next.clear();
            for i in 0..pts.len() {
                let (prev, cur) = (pts[(i + pts.len() - 1) % pts.len()], pts[i]);
                match (keep(&prev), keep(&cur)) {
                    (true, true) => next.push(cur),
                    (true, false) => next.push(cut(prev, cur)),
                    (false, true) => {
                        next.push(cut(prev, cur));
                        next.push(cur);
                    }
                    (false, false) => {}
                }
            }
            std::mem::swap(&mut pts, &mut next);
            if pts.len() < 3 {
                return None;
            }
        }
        pts.push(pts[0]);
        Some(LineString(pts))
    };
    MultiPolygon(
        mp.0.iter()
            .filter_map(|p| {
                if p.bounding_rect().is_some_and(|r| inside(&r)) {
                    return Some(p.clone());
                }
                let exterior = clip_ring(p.exterior())?;
                let holes = p.interiors().iter().filter_map(clip_ring).collect();
                Some(Polygon::new(exterior, holes))
            })
            .collect(),
    )
}

/// Pairs of sibling polygons that overlap by more than `tol` m². Each pair is reported once, at
/// the unit that comes later in the input.
///
/// Also returns, per unit, the summed overlap with the later units that share its parent at
/// `parent_level` (reported or not), which bounds the gaps inside that parent from above (see
/// [`gaps_and_crossings`]).
pub(crate) fn overlaps(
    layer: Layer,
    units: &[Unit],
    parent_level: Option<Layer>,
    tol: f64,
) -> (Vec<QualityIssue>, Vec<f64>) {
    let tree: RTree<GeomWithData<Rectangle<[f64; 2]>, usize>> = RTree::bulk_load(
        units
            .iter()
            .enumerate()
            .filter_map(|(i, u)| {
                let r = u.geometry.bounding_rect()?;
                Some(GeomWithData::new(
                    Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]),
                    i,
                ))
            })
            .collect(),
    );
    let parent = |u: &Unit| parent_level.and_then(|l| u.lineage.at(l));
    let per_unit: Vec<(Vec<QualityIssue>, f64)> = (0..units.len())
        .into_par_iter()
        .map(|i| {
            let a = &units[i];
            let env = match a.geometry.bounding_rect() {
                Some(r) => {
                    rstar::AABB::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y])
                }
                None => return (Vec::new(), 0.0),
            };
            let mut with_siblings = 0.0;
            let issues = tree
                .locate_in_envelope_intersecting(&env)
                .filter(|e| e.data > i)
                .filter_map(|e| {
                    let b = &units[e.data];
                    let area = intersection_area(&a.geometry, &b.geometry);
                    if parent(a).is_some() && parent(a) == parent(b) {
                        with_siblings += area;
                    }
                    (area > tol).then(|| {
                        let (later, other) = if b.source_index >= a.source_index {
                            (b, a)
                        } else {
                            (a, b)
                        };
                        QualityIssue {
                            layer,
                            index: later.source_index,
                            id: Some(later.id.clone()),
                            kind: IssueKind::Overlap,
                            severity: Severity::Warning,
                            detail: format!(
                                "overlaps {} {:?} by {area:.1} m²",
                                layer.singular(),
                                other.id
                            ),
                        }
                    })
                })
                .collect();
            (issues, with_siblings)
        })
        .collect();
    let mut sums = Vec::with_capacity(units.len());
    let mut issues = Vec::new();
    for (found, sum) in per_unit {
        issues.extend(found);
        sums.push(sum);
    }
    issues.sort_by(|a, b| (a.index, &a.detail).cmp(&(b.index, &b.detail)));
    (issues, sums)
}

/// The area of `a ∖ b`, with `b` first clipped to `a`'s bounding box (which holds all of
/// `a ∖ b`): a child against its parent hands the boolean operation the parent's vertices
/// near the child only.
pub(crate) fn difference_area(a: &MultiPolygon<f64>, b: &MultiPolygon<f64>) -> f64 {
    let Some(r) = a.bounding_rect() else {
        return 0.0;
    };
    if r.min().x >= r.max().x || r.min().y >= r.max().y {
        return 0.0;
    }
    a.difference(&clip_to_box(b, r.min(), r.max()))
        .unsigned_area()
}

/// Gaps inside each parent (parts covered by none of its children) and children extending
/// outside their parent. Parents derived by dissolving their children are skipped: they have
/// neither by construction.
///
/// `overlap_sums` are the per-child sums from [`overlaps`]. A parent's gap is at most its area
/// less the area of each child inside it, plus the children's pairwise overlaps (Bonferroni's
/// inequality for the union of the children); where that bound is within `tol`, as it is for a
/// clean tessellation, the union of the children is not computed.
pub(crate) fn gaps_and_crossings(
    parent_level: Layer,
    parents: &[UnitRef<'_>],
    child_level: Layer,
    children: &[Unit],
    overlap_sums: &[f64],
    tol: f64,
) -> Vec<QualityIssue> {
    // Each child's area outside its parent (0 for children without one).
    let outside: Vec<f64> = children
        .par_iter()
        .map(|c| {
            let Some(p) = c.lineage.at(parent_level) else {
                return 0.0;
            };
            let (pg, psrc, _) = parents[p as usize];
            if psrc.is_none() {
                return 0.0;
            }
            difference_area(&c.geometry, pg)
        })
        .collect();
    let mut by_parent: Vec<Vec<&MultiPolygon<f64>>> = vec![Vec::new(); parents.len()];
    // Per parent: Σ (child area inside it) and Σ pairwise child overlaps.
    let mut inside = vec![0.0; parents.len()];
    let mut overlapping = vec![0.0; parents.len()];
    for (k, c) in children.iter().enumerate() {
        if let Some(p) = c.lineage.at(parent_level) {
            let p = p as usize;
            by_parent[p].push(&c.geometry);
            inside[p] += c.geometry.unsigned_area() - outside[k];
            overlapping[p] += overlap_sums.get(k).copied().unwrap_or(0.0);
        }
    }
    let mut issues: Vec<QualityIssue> = parents
        .par_iter()
        .zip(by_parent.par_iter())
        .enumerate()
        .filter(|(_, ((_, src, _), _))| src.is_some())
        .filter_map(|(p, ((geom, src, id), kids))| {
            let bound = geom.unsigned_area() - inside[p] + overlapping[p];
            if bound <= tol {
                return None;
            }
            let covered = geo::unary_union(kids.iter().copied());
            let gap = geom.difference(&covered);
            let area = gap.unsigned_area();
            (area > tol).then(|| QualityIssue {
                layer: parent_level,
                index: *src,
                id: Some((*id).to_owned()),
                kind: IssueKind::Gap,
                severity: Severity::Warning,
                detail: format!(
                    "{area:.1} m² in {} part(s) covered by no {}",
                    gap.0.len(),
                    child_level.singular()
                ),
            })
        })
        .collect();
    let crossings = children
        .iter()
        .zip(&outside)
        .filter(|(_, area)| **area > tol)
        .filter_map(|(c, &area)| {
            let p = c.lineage.at(parent_level)? as usize;
            let pid = parents[p].2;
            Some(QualityIssue {
                layer: child_level,
                index: c.source_index,
                id: Some(c.id.clone()),
                kind: IssueKind::CrossesParent,
                severity: Severity::Warning,
                detail: format!(
                    "{area:.1} m² lies outside its {} {pid:?}",
                    parent_level.singular()
                ),
            })
        });
    issues.extend(crossings);
    issues
}

/// For footprints located in a parent: the area outside that parent, where above `tol`.
/// Returns (position in `items`, area), sorted by position.
pub(crate) fn footprint_crossings(
    items: &[(Option<&MultiPolygon<f64>>, Option<u32>)],
    index: &PolygonIndex,
    parents: &[UnitRef<'_>],
    tol: f64,
) -> Vec<(usize, f64)> {
    items
        .par_iter()
        .enumerate()
        .filter_map(|(k, (fp, parent))| {
            let (fp, p) = (fp.as_ref()?, (*parent)?);
            if fp
                .exterior_coords_iter()
                .all(|c| index.locate(c) == Some(p))
            {
                return None;
            }
            let area = difference_area(fp, parents[p as usize].0);
            (area > tol).then_some((k, area))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{intersection_area, ring_self_intersects, validate};
    use geo::{Area, BooleanOps, Coord, LineString, MultiPolygon, Polygon, Validation};
    use proptest::prelude::*;

    /// Rings on a small integer lattice: many touching, crossing and collinear edges.
    fn ring() -> impl Strategy<Value = LineString<f64>> {
        prop::collection::vec((0i32..6, 0i32..6), 3..12).prop_map(|pts| {
            let mut c: Vec<Coord<f64>> = pts
                .into_iter()
                .map(|(x, y)| Coord {
                    x: x.into(),
                    y: y.into(),
                })
                .collect();
            c.push(c[0]);
            LineString(c)
        })
    }

    /// A star-shaped (so simple, often concave) ring around `c` with the given radii.
    fn star(c: (f64, f64), radii: &[f64]) -> LineString<f64> {
        let n = radii.len() as f64;
        let mut pts: Vec<Coord<f64>> = radii
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let a = i as f64 / n * std::f64::consts::TAU;
                Coord {
                    x: c.0 + r * a.cos(),
                    y: c.1 + r * a.sin(),
                }
            })
            .collect();
        pts.push(pts[0]);
        LineString(pts)
    }

    proptest! {
        /// Clipping to the boxes' intersection changes no intersection area (beyond rounding).
        #[test]
        fn clipped_intersection_area_is_the_full_one(
            ca in (-5.0f64..5.0, -5.0f64..5.0),
            ra in prop::collection::vec(1.0f64..10.0, 3..40),
            cb in (-5.0f64..5.0, -5.0f64..5.0),
            rb in prop::collection::vec(1.0f64..10.0, 3..40),
            hole in prop::option::of(0.1f64..0.9),
        ) {
            let outer = star(ca, &ra);
            let holes: Vec<LineString<f64>> = hole
                .map(|h| {
                    let inner: Vec<f64> = ra.iter().map(|r| r * h * 0.5).collect();
                    let mut ring = star(ca, &inner);
                    ring.0.reverse();
                    ring
                })
                .into_iter()
                .collect();
            let a = MultiPolygon(vec![Polygon::new(outer, holes)]);
            let b = MultiPolygon(vec![Polygon::new(star(cb, &rb), vec![])]);
            let full = a.intersection(&b).unsigned_area();
            let clipped = intersection_area(&a, &b);
            // The boolean operations snap coordinates to an integer grid scaled to their
            // inputs' extent, so either area is exact only to about 1e-9 of the extent squared.
            let extent = 30.0f64;
            prop_assert!((full - clipped).abs() <= 1e-8 * extent * extent, "{full} vs {clipped}");
        }

        /// The same verdict as geo's quadratic test.
        #[test]
        fn self_intersection_agrees_with_geo(r in ring()) {
            let geo_says = Polygon::new(r.clone(), vec![]).check_validation().is_err_and(|e| {
                e.to_string().contains("self-intersection")
            });
            prop_assert_eq!(ring_self_intersects(&r), geo_says);
        }

        /// The same validity as geo.
        #[test]
        fn validity_agrees_with_geo(r in ring(), holes in prop::collection::vec(ring(), 0..2)) {
            let mp = MultiPolygon(vec![Polygon::new(r, holes)]);
            prop_assert_eq!(validate(&mp).is_ok(), mp.is_valid());
        }
    }
}
