//! Point-in-polygon for many points against many polygons.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use geo::algorithm::coordinate_position::{CoordPos, CoordinatePosition};
use geo::indexed::IntervalTreeMultiPolygon;
use geo::orient::{Direction, Orient};
use geo::{BoundingRect, Contains, Coord, CoordsIter, Intersects, Line, MultiPolygon};
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
/// A cell accelerator answers most queries with one array read: a uniform raster over the
/// polygons' extent (about a thousand cells per polygon, at most 4 Mi cells) in which every
/// cell that no boundary comes near is marked with the one polygon that contains it (or none).
/// Only points in cells that a boundary crosses take the exact test, which is O(log P + log E +
/// k) for P polygons and E edges, where k is the number of edges crossing the point's y in the
/// few candidate polygons of that cell. Building is O(E + C) in edges and cells, in parallel
/// over polygons.
pub struct PolygonIndex {
    tree: RTree<Entry>,
    prepared: Vec<Option<IntervalTreeMultiPolygon<f64>>>,
    shapes: Vec<Option<MultiPolygon<f64>>>,
    /// Per polygon, an R-tree of its edges for boundary tests, built the first time one is
    /// needed (most polygons never need one).
    edges: Vec<OnceLock<RTree<Line<f64>>>>,
    rank: Vec<u32>,
    cells: Option<Cells>,
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
            .map(|p| {
                p.as_ref()
                    .filter(|mp| mp.coords_count() > SMALL)
                    .map(IntervalTreeMultiPolygon::new)
            })
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
        let cells = Cells::build(&shapes, rank);
        PolygonIndex {
            tree: RTree::bulk_load(entries),
            edges: (0..shapes.len()).map(|_| OnceLock::new()).collect(),
            prepared,
            shapes,
            rank: rank.to_vec(),
            cells,
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

    /// The polygon (by slot) that every point of the box `lo`–`hi` belongs to, when the cell
    /// accelerator shows it at once: every cell the box touches lies wholly inside that one
    /// polygon, with no boundary near. `None` when that is not so (or the index has no cells,
    /// or the box touches more than 256 cells); [`locate`](Self::locate) then decides point by
    /// point. A building footprint inside a grid gives the grid of every household in it.
    ///
    /// # Examples
    /// ```
    /// use geo::{coord, polygon, MultiPolygon};
    /// use shequ::index::PolygonIndex;
    /// let sq = MultiPolygon(vec![polygon![(x: 0., y: 0.), (x: 10., y: 0.), (x: 10., y: 10.), (x: 0., y: 10.)]]);
    /// let index = PolygonIndex::new(&[Some(&sq)], &[0]);
    /// assert_eq!(index.owner_of_box(coord! { x: 4.0, y: 4.0 }, coord! { x: 5.0, y: 5.0 }), Some(0));
    /// assert_eq!(index.owner_of_box(coord! { x: 9.0, y: 4.0 }, coord! { x: 11.0, y: 5.0 }), None);
    /// ```
    pub fn owner_of_box(&self, lo: Coord<f64>, hi: Coord<f64>) -> Option<u32> {
        self.cells.as_ref()?.owner_of_box(lo, hi)
    }

    /// The polygon (by slot) that a point belongs to, by the boundary rule above.
    pub fn locate(&self, p: Coord<f64>) -> Option<u32> {
        match &self.cells {
            Some(cells) => match cells.at(p) {
                Cell::Empty => None,
                Cell::Inside(i) => Some(i),
                Cell::Mixed(candidates) => self.resolve(candidates, p),
                Cell::One(i) => self.resolve(&[i], p),
            },
            None => self.locate_exact(p),
        }
    }

    /// Whether polygon `slot` covers `p` (contains it or has it on its boundary), whatever
    /// other polygons do there.
    ///
    /// # Panics
    /// If `slot` is not the slot of a polygon given to [`PolygonIndex::new`].
    ///
    /// # Examples
    /// ```
    /// use geo::{coord, polygon, MultiPolygon};
    /// use shequ::index::PolygonIndex;
    /// let sq = MultiPolygon(vec![polygon![(x: 0., y: 0.), (x: 1., y: 0.), (x: 1., y: 1.), (x: 0., y: 1.)]]);
    /// let index = PolygonIndex::new(&[Some(&sq)], &[0]);
    /// assert!(index.covers(0, coord! { x: 0.5, y: 0.5 }) && index.covers(0, coord! { x: 1.0, y: 0.3 }));
    /// assert!(!index.covers(0, coord! { x: 1.5, y: 0.5 }));
    /// ```
    ///
    /// # Performance
    /// One cell read where the cell lies wholly inside or outside the polygon; else one exact
    /// test against that polygon alone.
    pub fn covers(&self, slot: u32, p: Coord<f64>) -> bool {
        if let Some(cells) = &self.cells {
            match cells.at(p) {
                Cell::Empty => return false,
                Cell::Inside(i) if i == slot => return true,
                // Outside the candidates, no boundary of `slot` comes near the cell and the
                // cell's centre is outside it: so is all of the cell.
                Cell::Mixed(candidates) if !candidates.contains(&slot) => return false,
                Cell::One(i) if i != slot => return false,
                _ => {}
            }
        }
        match (&self.prepared[slot as usize], &self.shapes[slot as usize]) {
            (Some(prep), _) => prep.contains(&p) || self.on_boundary(slot as usize, p),
            (None, Some(shape)) => shape.coordinate_position(&p) != CoordPos::Outside,
            (None, None) => false,
        }
    }

    /// Whether `p` lies on the boundary of polygon `i`: the edges whose boxes hold `p`, from
    /// the polygon's edge tree, tested exactly.
    fn on_boundary(&self, i: usize, p: Coord<f64>) -> bool {
        let Some(shape) = &self.shapes[i] else {
            return false;
        };
        let tree = self.edges[i].get_or_init(|| {
            RTree::bulk_load(
                shape
                    .0
                    .iter()
                    .flat_map(|poly| std::iter::once(poly.exterior()).chain(poly.interiors()))
                    .flat_map(|ring| ring.lines())
                    .collect(),
            )
        });
        tree.locate_in_envelope_intersecting(&AABB::from_point(geo::Point(p)))
            .any(|l| l.intersects(&p))
    }

    /// [`locate`](Self::locate) without the cell accelerator: the R-tree's candidates, tested
    /// exactly. The two always agree (a property test checks it).
    pub fn locate_exact(&self, p: Coord<f64>) -> Option<u32> {
        let candidates: Vec<u32> = self
            .tree
            .locate_all_at_point(&[p.x, p.y])
            .map(|e| e.data)
            .collect();
        self.resolve(&candidates, p)
    }

    /// The boundary rule among candidate polygons (every polygon that may cover `p` must be
    /// among them).
    fn resolve(&self, candidates: &[u32], p: Coord<f64>) -> Option<u32> {
        let mut best: Option<u32> = None;
        let mut on_boundary = false;
        for &i in candidates {
            if best.is_some_and(|b| self.rank[b as usize] <= self.rank[i as usize]) {
                continue;
            }
            match (&self.prepared[i as usize], &self.shapes[i as usize]) {
                (Some(prep), _) => {
                    if prep.contains(&p) {
                        best = Some(i);
                    } else {
                        on_boundary = true;
                    }
                }
                // A small polygon (a building footprint): one pass over its few edges tells
                // inside, boundary and outside at once.
                (None, Some(shape)) => {
                    if shape.coordinate_position(&p) != CoordPos::Outside {
                        best = Some(i);
                    }
                }
                (None, None) => {}
            }
        }
        if !on_boundary {
            return best;
        }
        // Slow path, only for points not strictly inside a better-ranked polygon: test the
        // boundary of the candidates exactly.
        for &i in candidates {
            if best.is_some_and(|b| self.rank[b as usize] <= self.rank[i as usize])
                || self.prepared[i as usize].is_none()
            {
                continue;
            }
            if self.on_boundary(i as usize, p) {
                best = Some(i);
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

/// Polygons with at most this many vertices (in all rings and parts, as a building footprint
/// has) are tested by walking their edges; larger ones get an edge index.
const SMALL: usize = 32;

/// What a cell of the accelerator says about the points in it.
enum Cell<'a> {
    /// No polygon covers any point of the cell.
    Empty,
    /// Every point of the cell belongs to this polygon (by the boundary rule).
    Inside(u32),
    /// A boundary comes near the cell: test these candidates exactly.
    Mixed(&'a [u32]),
    /// As `Mixed`, with this one candidate.
    One(u32),
}

/// The cell accelerator of [`PolygonIndex`]: a uniform raster over the polygons' extent.
///
/// A cell is *mixed* when a polygon's boundary passes within a hair (a millionth of the cell
/// size) of its closed rectangle; its candidates are every polygon whose boundary does or that
/// contains the cell's centre. Any other cell lies wholly inside or wholly outside each polygon,
/// so the polygon of lowest rank containing its centre (found by scanlines through the cell
/// centres, even-odd per polygon part) owns the whole cell. A point that rounding puts in the
/// neighbouring cell is within a hair of it, and so still on the same side of every boundary.
struct Cells {
    x0: f64,
    y0: f64,
    inv: f64,
    nx: usize,
    ny: usize,
    /// Per cell: `EMPTY`, a polygon slot, `MIXED | ONE | slot` for a mixed cell with one
    /// candidate, or `MIXED | k` for candidate list `k`.
    code: Vec<u32>,
    /// Candidate lists, compressed: list `k` is `items[starts[k]..starts[k + 1]]`.
    starts: Vec<u32>,
    items: Vec<u32>,
}

const EMPTY: u32 = u32::MAX;
const MIXED: u32 = 1 << 31;
const ONE: u32 = 1 << 30;
/// Cells per polygon aimed at, and the most cells in all (16 MiB of codes).
const CELLS_PER_POLYGON: f64 = 1024.0;
const MAX_CELLS: f64 = (1u32 << 22) as f64;

impl Raster {
    /// The raster over the shapes' extent with about `CELLS_PER_POLYGON` cells per polygon
    /// (`n` of them), at most `MAX_CELLS` in all; `None` when the extent is not finite or
    /// the raster would be too large.
    fn fitting(shapes: &[Option<MultiPolygon<f64>>], n: usize) -> Option<Raster> {
        let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for r in shapes.iter().flatten().filter_map(|s| s.bounding_rect()) {
            x0 = x0.min(r.min().x);
            y0 = y0.min(r.min().y);
            x1 = x1.max(r.max().x);
            y1 = y1.max(r.max().y);
        }
        if ![x0, y0, x1, y1].iter().all(|v| v.is_finite()) {
            return None;
        }
        let target = (n as f64 * CELLS_PER_POLYGON).min(MAX_CELLS);
        let (w, h) = (
            (x1 - x0).max(f64::MIN_POSITIVE),
            (y1 - y0).max(f64::MIN_POSITIVE),
        );
        let mut size = (w * h / target).sqrt();
        if !(size.is_finite() && size > 0.0) {
            return None;
        }
        // A degenerate extent (all polygons on a line) still gets a bounded raster.
        size = size.max(w.max(h) / 4096.0);
        // One cell beyond the extent on each axis: a point on the extent's far edge can map
        // one cell past `floor(w / size)` (`(x - x0) * inv` and `(x - x0) / size` round apart),
        // and the boundary marks (widened by eps) reach that cell too.
        let nx = (w / size).floor() as usize + 2;
        let ny = (h / size).floor() as usize + 2;
        if nx
            .checked_mul(ny)
            .is_none_or(|c| c as f64 > 4.0 * MAX_CELLS)
        {
            return None;
        }
        Some(Raster {
            x0,
            y0,
            size,
            nx,
            ny,
            eps: size * 1e-6 + 1e-12 * x0.abs().max(y0.abs()).max(x1.abs()).max(y1.abs()),
        })
    }
}

impl Cells {
    fn build(shapes: &[Option<MultiPolygon<f64>>], rank: &[u32]) -> Option<Cells> {
        let n = shapes.iter().filter(|s| s.is_some()).count();
        if n == 0 || shapes.len() >= ONE as usize {
            return None;
        }
        let grid = Raster::fitting(shapes, n)?;
        let (x0, y0, size, nx, ny) = (grid.x0, grid.y0, grid.size, grid.nx, grid.ny);
        // Polygons in (rank, slot) order: `order[k]` is the k-th, `position[slot]` its place.
        let mut order: Vec<u32> = (0..shapes.len() as u32).collect();
        order.sort_unstable_by_key(|&i| (rank[i as usize], i));
        let mut position = vec![0u32; shapes.len()];
        for (k, &i) in order.iter().enumerate() {
            position[i as usize] = k as u32;
        }
        // 1. The cells each boundary comes near: (cell << 32) | position, sorted (so by cell,
        // then in (rank, slot) order).
        let mut marks: Vec<u64> = shapes
            .par_iter()
            .enumerate()
            .flat_map_iter(|(i, s)| match s {
                Some(mp) => grid.boundary_marks(position[i], mp),
                None => Vec::new(),
            })
            .collect();
        marks.par_sort_unstable();
        marks.dedup();
        let tiles_x = nx.div_ceil(8);
        let ncells = tiles_x * ny.div_ceil(8) * 64;
        let mut mixed = vec![0u64; ncells.div_ceil(64)];
        for m in &marks {
            let c = (m >> 32) as usize;
            mixed[c / 64] |= 1 << (c % 64);
        }
        let is_mixed = |c: usize| mixed[c / 64] & (1 << (c % 64)) != 0;
        // 2. Interior cells, filled in place: every other cell whose centre a polygon contains
        // takes the polygon first in (rank, slot) order (an atomic minimum, so polygons fill
        // in parallel); a mixed cell whose centre a polygon contains gets it as a candidate.
        let owner: Vec<AtomicU32> = (0..ncells).map(|_| AtomicU32::new(EMPTY)).collect();
        let extra: Vec<u64> = shapes
            .par_iter()
            .enumerate()
            .flat_map_iter(|(i, s)| {
                let mut extra = Vec::new();
                if let Some(mp) = s {
                    grid.interior_spans(mp, |row, c0, c1| {
                        for cell in (c0..=c1).map(|c| tiled(c, row, tiles_x)) {
                            if is_mixed(cell) {
                                extra.push(((cell as u64) << 32) | u64::from(position[i]));
                            } else {
                                owner[cell].fetch_min(position[i], Ordering::Relaxed);
                            }
                        }
                    });
                }
                extra
            })
            .collect();
        let mut code: Vec<u32> = owner
            .into_par_iter()
            .map(|o| match o.into_inner() {
                EMPTY => EMPTY,
                k => order[k as usize],
            })
            .collect();
        marks.extend(extra);
        marks.par_sort_unstable();
        marks.dedup();
        // 3. Candidate lists of the mixed cells, in (rank, slot) order.
        let (mut starts, mut items) = (vec![0u32], Vec::new());
        for group in marks.chunk_by(|a, b| a >> 32 == b >> 32) {
            let cell = (group[0] >> 32) as usize;
            let slot = |m: &u64| order[(m & 0xFFFF_FFFF) as usize];
            if let [one] = group {
                // Most mixed cells have one candidate (a single boundary passes): no list.
                code[cell] = MIXED | ONE | slot(one);
                continue;
            }
            items.extend(group.iter().map(slot));
            code[cell] = MIXED | (starts.len() as u32 - 1);
            starts.push(items.len() as u32);
        }
        if starts.len() as u64 >= u64::from(ONE) {
            return None;
        }
        Some(Cells {
            x0,
            y0,
            inv: 1.0 / size,
            nx,
            ny,
            code,
            starts,
            items,
        })
    }

    /// See [`PolygonIndex::owner_of_box`]. Points map to cells as in [`Cells::at`], and that
    /// map is monotonic, so the cells between those of the corners are all a point of the box
    /// can fall in.
    fn owner_of_box(&self, lo: Coord<f64>, hi: Coord<f64>) -> Option<u32> {
        let (fx0, fy0) = ((lo.x - self.x0) * self.inv, (lo.y - self.y0) * self.inv);
        let (fx1, fy1) = ((hi.x - self.x0) * self.inv, (hi.y - self.y0) * self.inv);
        // Also false for NaN.
        if !(fx0 >= 0.0
            && fy0 >= 0.0
            && fx1 >= fx0
            && fy1 >= fy0
            && fx1 < self.nx as f64
            && fy1 < self.ny as f64)
        {
            return None;
        }
        let (c0, c1, r0, r1) = (fx0 as usize, fx1 as usize, fy0 as usize, fy1 as usize);
        if (c1 - c0 + 1) * (r1 - r0 + 1) > 256 {
            return None;
        }
        let tiles_x = self.nx.div_ceil(8);
        let mut owner = None;
        for r in r0..=r1 {
            for c in c0..=c1 {
                let code = self.code[tiled(c, r, tiles_x)];
                if code == EMPTY || code & MIXED != 0 || owner.is_some_and(|o| o != code) {
                    return None;
                }
                owner = Some(code);
            }
        }
        owner
    }

    #[inline]
    fn at(&self, p: Coord<f64>) -> Cell<'_> {
        let (fx, fy) = ((p.x - self.x0) * self.inv, (p.y - self.y0) * self.inv);
        // Also false for NaN.
        if !(fx >= 0.0 && fy >= 0.0 && fx < self.nx as f64 && fy < self.ny as f64) {
            return Cell::Empty;
        }
        let c = self.code[tiled(fx as usize, fy as usize, self.nx.div_ceil(8))];
        if c == EMPTY {
            Cell::Empty
        } else if c & MIXED == 0 {
            Cell::Inside(c)
        } else if c & ONE != 0 {
            Cell::One(c & !(MIXED | ONE))
        } else {
            let k = (c & !MIXED) as usize;
            Cell::Mixed(&self.items[self.starts[k] as usize..self.starts[k + 1] as usize])
        }
    }
}

/// The position in the code array of the cell in column `c`, row `r`: cells are stored in
/// tiles of 8 × 8 (tile after tile, row by row within a tile), so that points near each other
/// read nearby memory (a cell row of a district-wide raster spans many pages).
#[inline]
fn tiled(c: usize, r: usize, tiles_x: usize) -> usize {
    (((r >> 3) * tiles_x + (c >> 3)) << 6) | ((r & 7) << 3) | (c & 7)
}

/// The raster's geometry, while building.
struct Raster {
    x0: f64,
    y0: f64,
    size: f64,
    nx: usize,
    ny: usize,
    /// How near a boundary must come to a cell to make it mixed.
    eps: f64,
}

impl Raster {
    fn col(&self, x: f64) -> usize {
        (((x - self.x0) / self.size).floor().max(0.0) as usize).min(self.nx - 1)
    }
    fn row(&self, y: f64) -> usize {
        (((y - self.y0) / self.size).floor().max(0.0) as usize).min(self.ny - 1)
    }

    /// The cells one polygon's boundary comes near, as `(cell << 32) | tag`.
    fn boundary_marks(&self, tag: u32, mp: &MultiPolygon<f64>) -> Vec<u64> {
        let mark = |cell: usize| ((cell as u64) << 32) | u64::from(tag);
        let mut out = Vec::new();
        for poly in &mp.0 {
            let rings = std::iter::once(poly.exterior()).chain(poly.interiors());
            // Boundary: per cell row that an edge comes within eps of, the columns of the
            // edge's x-range in that row (the row widened by eps), widened by eps.
            for ring in rings {
                for l in ring.lines() {
                    let (a, b) = (l.start, l.end);
                    let (ylo, yhi) = (a.y.min(b.y), a.y.max(b.y));
                    let x_at = |y: f64| {
                        if a.y == b.y {
                            a.x
                        } else {
                            a.x + (y - a.y) * (b.x - a.x) / (b.y - a.y)
                        }
                    };
                    for r in self.row(ylo - self.eps)..=self.row(yhi + self.eps) {
                        let band0 = self.y0 + r as f64 * self.size - self.eps;
                        let band1 = band0 + self.size + 2.0 * self.eps;
                        let (lo, hi) = (ylo.max(band0).min(yhi), yhi.min(band1).max(ylo));
                        let (xa, xb) = if a.y == b.y {
                            (a.x.min(b.x), a.x.max(b.x))
                        } else {
                            let (p, q) = (x_at(lo), x_at(hi));
                            (p.min(q), p.max(q))
                        };
                        let (c0, c1) = (self.col(xa - self.eps), self.col(xb + self.eps));
                        for c in c0..=c1 {
                            out.push(mark(tiled(c, r, self.nx.div_ceil(8))));
                        }
                    }
                }
            }
        }
        // Edges meeting at a vertex mark its cells twice: once each.
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The cells whose centre one polygon contains, as spans `(row, first column, last
    /// column)` passed to `span`.
    fn interior_spans(&self, mp: &MultiPolygon<f64>, mut span: impl FnMut(usize, usize, usize)) {
        for poly in &mp.0 {
            let rings = std::iter::once(poly.exterior()).chain(poly.interiors());
            // Interior: scanlines through the cell centres of the part's rows.
            let Some(bb) = poly.exterior().bounding_rect() else {
                continue;
            };
            let (r0, r1) = (self.row(bb.min().y), self.row(bb.max().y));
            let mut xs: Vec<Vec<f64>> = vec![Vec::new(); r1 - r0 + 1];
            for ring in rings {
                for l in ring.lines() {
                    let (a, b) = (l.start, l.end);
                    if a.y == b.y {
                        continue;
                    }
                    let (lo, hi) = (a.y.min(b.y), a.y.max(b.y));
                    for r in self.row(lo)..=self.row(hi) {
                        let yc = self.y0 + (r as f64 + 0.5) * self.size;
                        // Half-open in y, so a vertex on the scanline counts once.
                        if (a.y <= yc) != (b.y <= yc) && r >= r0 && r <= r1 {
                            xs[r - r0].push(a.x + (yc - a.y) * (b.x - a.x) / (b.y - a.y));
                        }
                    }
                }
            }
            for (dr, row) in xs.iter_mut().enumerate() {
                row.sort_unstable_by(f64::total_cmp);
                for pair in row.chunks_exact(2) {
                    let c0 = ((pair[0] - self.x0) / self.size - 0.5).ceil().max(0.0);
                    let c1 = ((pair[1] - self.x0) / self.size - 0.5).floor();
                    if c1 < c0 {
                        continue;
                    }
                    let c1 = (c1 as usize).min(self.nx - 1);
                    span(r0 + dr, c0 as usize, c1);
                }
            }
        }
    }
}
