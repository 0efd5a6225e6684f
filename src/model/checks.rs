//! Topology checks between and within polygon levels: sibling overlaps, gaps inside a parent,
//! children crossing their parent's boundary. Areas are in m² of the working CRS.

use geo::{
    Area, BooleanOps, BoundingRect, CoordsIter, InteriorPoint, Intersects, LineString,
    MultiPolygon, RemoveRepeatedPoints, Validation,
};
use rayon::prelude::*;
use rstar::RTree;
use rstar::primitives::{GeomWithData, Rectangle};

use crate::index::PolygonIndex;
use crate::model::build::Unit;
use crate::model::level::Layer;
use crate::model::quality::{IssueKind, QualityIssue, Severity};

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
        let area = child.intersection(parents[j as usize].0).unsigned_area();
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

/// Pairs of sibling polygons that overlap by more than `tol` m². Each pair is reported once, at
/// the unit that comes later in the input.
pub(crate) fn overlaps(layer: Layer, units: &[Unit], tol: f64) -> Vec<QualityIssue> {
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
    let mut issues: Vec<QualityIssue> = (0..units.len())
        .into_par_iter()
        .flat_map_iter(|i| {
            let a = &units[i];
            let env = match a.geometry.bounding_rect() {
                Some(r) => {
                    rstar::AABB::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y])
                }
                None => return Vec::new(),
            };
            tree.locate_in_envelope_intersecting(&env)
                .filter(|e| e.data > i)
                .filter_map(|e| {
                    let b = &units[e.data];
                    let area = a.geometry.intersection(&b.geometry).unsigned_area();
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
                .collect()
        })
        .collect();
    issues.sort_by(|a, b| (a.index, &a.detail).cmp(&(b.index, &b.detail)));
    issues
}

/// Gaps inside each parent (parts covered by none of its children) and children extending
/// outside their parent. Parents derived by dissolving their children are skipped: they have
/// neither by construction.
pub(crate) fn gaps_and_crossings(
    parent_level: Layer,
    parents: &[UnitRef<'_>],
    child_level: Layer,
    children: &[Unit],
    tol: f64,
) -> Vec<QualityIssue> {
    let mut by_parent: Vec<Vec<&MultiPolygon<f64>>> = vec![Vec::new(); parents.len()];
    for c in children {
        if let Some(p) = c.lineage.at(parent_level) {
            by_parent[p as usize].push(&c.geometry);
        }
    }
    let mut issues: Vec<QualityIssue> = parents
        .par_iter()
        .zip(by_parent.par_iter())
        .filter(|((_, src, _), _)| src.is_some())
        .filter_map(|((geom, src, id), kids)| {
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
    let crossings: Vec<QualityIssue> = children
        .par_iter()
        .filter_map(|c| {
            let p = c.lineage.at(parent_level)? as usize;
            let (pg, psrc, pid) = parents[p];
            psrc?;
            let area = c.geometry.difference(pg).unsigned_area();
            (area > tol).then(|| QualityIssue {
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
        })
        .collect();
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
            let area = fp.difference(parents[p as usize].0).unsigned_area();
            (area > tol).then_some((k, area))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{ring_self_intersects, validate};
    use geo::{Coord, LineString, MultiPolygon, Polygon, Validation};
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

    proptest! {
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
