//! Where coordinates are expected: a longitude/latitude box (China's extent or a CRS's area of
//! use) and the checks of coordinates and features against it.

use geo::{Coord, Geometry};

/// The verdict of [`check_lonlat`] on one coordinate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordCheck {
    /// Inside the expected region.
    Ok,
    /// Not a valid longitude/latitude at all (|lon| > 180, |lat| > 90, NaN).
    Invalid,
    /// A valid coordinate outside the expected region.
    OutsideRegion,
    /// Outside the region, but inside it with x and y swapped.
    Swapped,
}

/// A longitude/latitude box that data is expected to lie in.
///
/// # Examples
/// ```
/// use shequ::crs::{Region, CoordCheck};
/// let china = Region::china();
/// assert_eq!(china.check(106.5, 29.5), CoordCheck::Ok);
/// assert_eq!(china.check(29.5, 106.5), CoordCheck::Swapped);
/// assert_eq!(china.check(2.35, 48.85), CoordCheck::OutsideRegion);
/// assert_eq!(china.check(200.0, 29.5), CoordCheck::Invalid);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    /// West longitude.
    pub west: f64,
    /// South latitude.
    pub south: f64,
    /// East longitude.
    pub east: f64,
    /// North latitude.
    pub north: f64,
}

impl Region {
    /// China's whole territory with a small margin: lon 73–135.2, lat 3.5–54. The south
    /// reaches the southernmost islands of Hainan province (about 3.8° N) and the east the
    /// Heilongjiang–Ussuri confluence (about 135.1° E), so real administrative boundaries fit.
    ///
    /// # Examples
    /// ```
    /// use shequ::crs::{CoordCheck, Region};
    /// assert_eq!(Region::china().check(112.3, 3.84), CoordCheck::Ok); // Zengmu Ansha, Hainan
    /// assert_eq!(Region::china().check(135.006, 48.4), CoordCheck::Ok); // Heilongjiang
    /// ```
    pub fn china() -> Region {
        Region {
            west: 73.0,
            south: 3.5,
            east: 135.2,
            north: 54.0,
        }
    }

    /// The whole world (only validity is checked).
    pub fn world() -> Region {
        Region {
            west: -180.0,
            south: -90.0,
            east: 180.0,
            north: 90.0,
        }
    }

    fn contains(&self, x: f64, y: f64) -> bool {
        x >= self.west && x <= self.east && y >= self.south && y <= self.north
    }

    /// Checks one longitude/latitude coordinate.
    pub fn check(&self, lon: f64, lat: f64) -> CoordCheck {
        if !lon.is_finite() || !lat.is_finite() || lon.abs() > 180.0 || lat.abs() > 90.0 {
            if self.contains(lat, lon) {
                return CoordCheck::Swapped;
            }
            return CoordCheck::Invalid;
        }
        if self.contains(lon, lat) {
            CoordCheck::Ok
        } else if self.contains(lat, lon) {
            CoordCheck::Swapped
        } else {
            CoordCheck::OutsideRegion
        }
    }
}

/// Checks every coordinate of a longitude/latitude geometry and returns the worst verdict
/// (`Invalid` > `Swapped` > `OutsideRegion` > `Ok`) with the first offending coordinate.
///
/// # Examples
/// ```
/// use shequ::crs::{check_lonlat, CoordCheck, Region};
/// let g = geo::Geometry::Point(geo::point! { x: 29.5, y: 106.5 });
/// assert_eq!(check_lonlat(&g, &Region::china()).0, CoordCheck::Swapped);
/// ```
pub fn check_lonlat(geom: &Geometry<f64>, region: &Region) -> (CoordCheck, Option<Coord<f64>>) {
    use geo::CoordsIter;
    let rank = |c: CoordCheck| match c {
        CoordCheck::Ok => 0,
        CoordCheck::OutsideRegion => 1,
        CoordCheck::Swapped => 2,
        CoordCheck::Invalid => 3,
    };
    let mut worst = (CoordCheck::Ok, None);
    for c in geom.coords_iter() {
        let v = region.check(c.x, c.y);
        if rank(v) > rank(worst.0) {
            worst = (v, Some(c));
            if v == CoordCheck::Invalid {
                break;
            }
        }
    }
    worst
}

/// The verdict on a whole feature: where its representative point lies decides, so that one
/// stray vertex does not reject a feature that as a whole lies in the region; the vertices
/// outside are counted so that the caller can report them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureCheck {
    /// The verdict on the feature: [`CoordCheck::Invalid`] if any vertex is not a valid
    /// longitude/latitude (it cannot be projected), else the verdict on the representative
    /// point.
    pub verdict: CoordCheck,
    /// The representative point, or the first invalid vertex.
    pub at: Coord<f64>,
    /// Vertices outside the region (swapped or not).
    pub outside: usize,
    /// All vertices.
    pub vertices: usize,
    /// The first vertex outside the region.
    pub first_outside: Option<Coord<f64>>,
}

/// Checks a longitude/latitude feature against a region ([`FeatureCheck`]). The representative
/// point is geo's interior point (a point inside a polygon, on a line, or a point itself).
///
/// # Examples
/// ```
/// use shequ::crs::{check_feature, CoordCheck, Region};
/// // A district with one vertex a little east of the box: kept, one vertex counted outside.
/// use geo::polygon;
/// let g: geo::Geometry = polygon![(x: 134.0, y: 47.0), (x: 135.3, y: 47.5), (x: 134.0, y: 48.0)].into();
/// let c = check_feature(&g, &Region::china());
/// assert_eq!((c.verdict, c.outside, c.vertices), (CoordCheck::Ok, 1, 4));
/// ```
pub fn check_feature(geom: &Geometry<f64>, region: &Region) -> FeatureCheck {
    use geo::{CoordsIter, InteriorPoint};
    let mut out = FeatureCheck {
        verdict: CoordCheck::Ok,
        at: Coord::default(),
        outside: 0,
        vertices: 0,
        first_outside: None,
    };
    for c in geom.coords_iter() {
        out.vertices += 1;
        match region.check(c.x, c.y) {
            CoordCheck::Ok => {}
            CoordCheck::Invalid => {
                out.verdict = CoordCheck::Invalid;
                out.at = c;
                return out;
            }
            _ => {
                out.outside += 1;
                out.first_outside.get_or_insert(c);
            }
        }
    }
    if out.outside == 0 {
        return out;
    }
    let rep = geom
        .interior_point()
        .map(|p| p.0)
        .or(out.first_outside)
        .unwrap_or_default();
    out.verdict = region.check(rep.x, rep.y);
    out.at = rep;
    out
}

/// Applies a fallible function to every coordinate of a geometry, in place, stopping at the
/// first error. (A `dyn` callback keeps geometry collections from instantiating generics
/// recursively.)
///
/// # Errors
/// The first error `f` returns.
///
/// # Examples
/// ```
/// let mut g = geo::Geometry::Point(geo::point! { x: 1.0, y: 2.0 });
/// shequ::crs::try_for_each_coord_mut(&mut g, &mut |c: &mut geo::Coord<f64>| {
///     c.x *= 10.0;
///     Ok::<(), ()>(())
/// }).unwrap();
/// assert_eq!(g, geo::Geometry::Point(geo::point! { x: 10.0, y: 2.0 }));
/// ```
pub fn try_for_each_coord_mut<E>(
    g: &mut Geometry<f64>,
    f: &mut dyn FnMut(&mut Coord<f64>) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    fn ring<E>(
        ls: &mut geo::LineString<f64>,
        f: &mut dyn FnMut(&mut Coord<f64>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        ls.0.iter_mut().try_for_each(f)
    }
    fn polygon<E>(
        p: &mut geo::Polygon<f64>,
        f: &mut dyn FnMut(&mut Coord<f64>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let mut result = Ok(());
        p.exterior_mut(|r| result = ring(r, f));
        result?;
        let mut result = Ok(());
        p.interiors_mut(|rs| {
            for r in rs {
                if let Err(e) = ring(r, f) {
                    result = Err(e);
                    return;
                }
            }
        });
        result
    }
    match g {
        Geometry::Point(p) => f(&mut p.0),
        Geometry::Line(l) => {
            f(&mut l.start)?;
            f(&mut l.end)
        }
        Geometry::LineString(ls) => ring(ls, f),
        Geometry::Polygon(p) => polygon(p, f),
        Geometry::MultiPoint(mp) => mp.0.iter_mut().try_for_each(|p| f(&mut p.0)),
        Geometry::MultiLineString(ml) => ml.0.iter_mut().try_for_each(|l| ring(l, f)),
        Geometry::MultiPolygon(mp) => mp.0.iter_mut().try_for_each(|p| polygon(p, f)),
        Geometry::GeometryCollection(gc) => {
            gc.0.iter_mut()
                .try_for_each(|g| try_for_each_coord_mut(g, f))
        }
        Geometry::Rect(r) => {
            let (mut a, mut b) = (r.min(), r.max());
            f(&mut a)?;
            f(&mut b)?;
            *r = geo::Rect::new(a, b);
            Ok(())
        }
        Geometry::Triangle(t) => {
            let (mut a, mut b, mut c) = (t.v1(), t.v2(), t.v3());
            f(&mut a)?;
            f(&mut b)?;
            f(&mut c)?;
            *t = geo::Triangle::new(a, b, c);
            Ok(())
        }
    }
}
