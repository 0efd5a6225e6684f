//! Point-in-polygon for many points against many polygons.

use geo::algorithm::coordinate_position::{CoordPos, CoordinatePosition};
use geo::indexed::IntervalTreeMultiPolygon;
use geo::orient::{Direction, Orient};
use geo::{BoundingRect, Contains, Coord, MultiPolygon};
use rayon::prelude::*;
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};

type Entry = GeomWithData<Rectangle<[f64; 2]>, u32>;

/// An index of polygons for fast point location.
///
/// Built once: an R-tree ([`rstar`], bulk loaded) over the polygons' bounding boxes and, per
/// polygon, an edge index ([`geo::indexed::IntervalTreeMultiPolygon`], an interval tree over the edges'
/// y-ranges), so a query touches only the few edges crossing the point's y, not every edge of
/// a boundary with hundreds of vertices.
///
/// **Boundary rule.** A point belongs to a polygon that *covers* it (interior or boundary). When
/// several polygons cover it (a point exactly on a shared edge or vertex, or in an overlap), it
/// goes to the one with the lowest *rank*; callers pass ranks so that the lowest rank is the
/// smallest id (byte-wise), which makes the rule independent of input order.
///
/// # Examples
/// ```
/// use geo::{coord, polygon, MultiPolygon};
/// use shequ::index::PolygonIndex;
/// let west = MultiPolygon(vec![polygon![(x: 0., y: 0.), (x: 1., y: 0.), (x: 1., y: 1.), (x: 0., y: 1.)]]);
/// let east = MultiPolygon(vec![polygon![(x: 1., y: 0.), (x: 2., y: 0.), (x: 2., y: 1.), (x: 1., y: 1.)]]);
/// // ranks: "east" sorts before "west" when the ids are "G1" (east) and "G2" (west).
/// let index = PolygonIndex::new(&[Some(&west), Some(&east)], &[1, 0]);
/// assert_eq!(index.locate(coord! { x: 0.5, y: 0.5 }), Some(0));
/// assert_eq!(index.locate(coord! { x: 1.0, y: 0.5 }), Some(1)); // on the shared edge: lowest rank
/// assert_eq!(index.locate(coord! { x: 3.0, y: 0.5 }), None);
/// ```
///
/// # Performance
/// Building is O(n log n) in the number of edges, in parallel over polygons. A query is
/// O(log P + log E + k) for P polygons and E edges, where k is the number of edges crossing the
/// point's y in the candidate polygons.
pub struct PolygonIndex {
    tree: RTree<Entry>,
    prepared: Vec<Option<IntervalTreeMultiPolygon<f64>>>,
    shapes: Vec<Option<MultiPolygon<f64>>>,
    rank: Vec<u32>,
}

impl PolygonIndex {
    /// Builds the index. `None` polygons are skipped (their slot never matches). `rank[i]` orders
    /// polygon `i` for the boundary rule; it must have one entry per polygon.
    ///
    /// # Panics
    /// If `rank.len() != polygons.len()` (a programming error).
    pub fn new(polygons: &[Option<&MultiPolygon<f64>>], rank: &[u32]) -> Self {
        assert_eq!(polygons.len(), rank.len(), "one rank per polygon");
        let shapes: Vec<Option<MultiPolygon<f64>>> = polygons
            .par_iter()
            .map(|p| p.map(|mp| mp.orient(Direction::Default)))
            .collect();
        let prepared = shapes
            .par_iter()
            .map(|p| p.as_ref().map(IntervalTreeMultiPolygon::new))
            .collect();
        let entries: Vec<Entry> = shapes
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let r = p.as_ref()?.bounding_rect()?;
                Some(GeomWithData::new(
                    Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]),
                    i as u32,
                ))
            })
            .collect();
        PolygonIndex {
            tree: RTree::bulk_load(entries),
            prepared,
            shapes,
            rank: rank.to_vec(),
        }
    }

    /// Number of polygon slots (including skipped ones).
    pub fn len(&self) -> usize {
        self.prepared.len()
    }

    /// True if the index has no polygon slots.
    pub fn is_empty(&self) -> bool {
        self.prepared.is_empty()
    }

    /// The polygon (by slot) that a point belongs to, by the boundary rule above.
    pub fn locate(&self, p: Coord<f64>) -> Option<u32> {
        let mut best: Option<u32> = None;
        let mut on_boundary = false;
        for e in self.tree.locate_all_at_point(&[p.x, p.y]) {
            let i = e.data;
            if best.is_some_and(|b| self.rank[b as usize] <= self.rank[i as usize]) {
                continue;
            }
            if let Some(prep) = &self.prepared[i as usize] {
                if prep.contains(&p) {
                    best = Some(i);
                } else {
                    on_boundary = true;
                }
            }
        }
        if !on_boundary {
            return best;
        }
        // Slow path, only for points not strictly inside a better-ranked polygon: test the
        // boundary of the candidates exactly.
        for e in self.tree.locate_all_at_point(&[p.x, p.y]) {
            let i = e.data;
            if best.is_some_and(|b| self.rank[b as usize] <= self.rank[i as usize]) {
                continue;
            }
            if let Some(shape) = &self.shapes[i as usize] {
                if shape.coordinate_position(&p) == CoordPos::OnBoundary {
                    best = Some(i);
                }
            }
        }
        best
    }

    /// Locates many points in parallel.
    pub fn locate_all(&self, points: &[Option<Coord<f64>>]) -> Vec<Option<u32>> {
        points
            .par_iter()
            .map(|p| p.and_then(|p| self.locate(p)))
            .collect()
    }

    /// Slots whose bounding box intersects a box.
    pub fn candidates(&self, min: Coord<f64>, max: Coord<f64>) -> impl Iterator<Item = u32> + '_ {
        self.tree
            .locate_in_envelope_intersecting(&AABB::from_corners([min.x, min.y], [max.x, max.y]))
            .map(|e| e.data)
    }
}

/// Ranks for the boundary rule: `rank[i]` is the position of `ids[i]` in byte-wise sorted order.
///
/// # Examples
/// ```
/// assert_eq!(shequ::index::ranks_by_id(&["G2", "G10", "G1"]), vec![2, 1, 0]);
/// ```
pub fn ranks_by_id<S: AsRef<str>>(ids: &[S]) -> Vec<u32> {
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by(|&a, &b| ids[a].as_ref().cmp(ids[b].as_ref()).then(a.cmp(&b)));
    let mut rank = vec![0u32; ids.len()];
    for (r, i) in order.into_iter().enumerate() {
        rank[i] = r as u32;
    }
    rank
}
