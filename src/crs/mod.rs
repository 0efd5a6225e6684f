//! Coordinate reference systems: parsing a layer's CRS, transforming with PROJ, choosing a metric
//! working CRS, and checking that coordinates are plausible for Chinese data.
//!
//! All transformations go through the [`proj`] crate with PROJ's *normalised for visualisation*
//! axis order: x = longitude / easting, y = latitude / northing, whatever the CRS definition says.
//! That is the order of GeoJSON and WKB, so coordinates are never flipped. The PROJ build is
//! bundled and embeds its database (`proj.db`), so EPSG codes resolve with no files on disk.
//!
//! The obfuscated GCJ-02 (AMap, Tencent) and BD-09 (Baidu) systems, which PROJ does not
//! implement, are the pseudo-CRSs `gcj02` and `bd09`: converted to and from WGS84 with the
//! [`coordtransform`] crate (closed-form forward, refined iterative inverse), only inside its
//! mainland-China mask (an OpenStreetMap-derived polygon with Hong Kong and Macau cut out; Taiwan
//! and neighbouring countries are outside), then transformed with PROJ like any other CRS.

/// The job's CRS options as types.
mod choice;
pub use choice::{GeojsonCrs, OutputCrs, WorkingCrs};
/// Where coordinates are expected, and the checks against it.
mod region;
pub use region::{
    CoordCheck, FeatureCheck, Region, check_feature, check_lonlat, try_for_each_coord_mut,
};

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Mutex, OnceLock};

use geo::{Coord, Geometry};
use proj::Proj;
use rayon::prelude::*;

use crate::error::{Error, Location, Result};

/// The CRS of longitude/latitude data on WGS84 with x = longitude (GeoJSON's default).
pub const LONLAT: &str = "OGC:CRS84";
const GCJ02: &str = "GCJ02";
const BD09: &str = "BD09";

/// An obfuscation of WGS84 longitude/latitude used by Chinese web maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shift {
    /// GCJ-02 ("Mars coordinates"), used by AMap and Tencent.
    Gcj02,
    /// BD-09, GCJ-02 shifted again, used by Baidu.
    Bd09,
}

impl Shift {
    /// Human-readable name.
    pub fn name(self) -> &'static str {
        match self {
            Shift::Gcj02 => "GCJ-02",
            Shift::Bd09 => "BD-09",
        }
    }

    /// WGS84 longitude/latitude to this system (unchanged outside mainland China).
    ///
    /// # Examples
    /// ```
    /// use shequ::crs::Shift;
    /// // Hong Kong is not shifted; Beijing is, by a few hundred metres.
    /// assert_eq!(Shift::Gcj02.from_wgs84(114.1694, 22.3193), (114.1694, 22.3193));
    /// let (x, y) = Shift::Gcj02.from_wgs84(116.404, 39.915);
    /// assert!((x - 116.404).abs() > 1e-3 && (y - 39.915).abs() > 1e-3);
    /// ```
    pub fn from_wgs84(self, lon: f64, lat: f64) -> (f64, f64) {
        match self {
            Shift::Gcj02 => coordtransform::wgs84_to_gcj02(lon, lat),
            Shift::Bd09 => coordtransform::wgs84_to_bd09(lon, lat),
        }
    }

    /// This system to WGS84 longitude/latitude, by iteration (round trip well under 1 cm).
    ///
    /// # Examples
    /// ```
    /// use shequ::crs::Shift;
    /// let (x, y) = Shift::Bd09.from_wgs84(106.55, 29.56);
    /// let (lon, lat) = Shift::Bd09.to_wgs84(x, y);
    /// assert!((lon - 106.55).abs() < 1e-9 && (lat - 29.56).abs() < 1e-9);
    /// ```
    pub fn to_wgs84(self, lon: f64, lat: f64) -> (f64, f64) {
        match self {
            Shift::Gcj02 => coordtransform::gcj02_to_wgs84(lon, lat),
            Shift::Bd09 => coordtransform::bd09_to_wgs84(lon, lat),
        }
    }
}

/// A coordinate reference system as the user gave it: `EPSG:4490`, a PROJ string, WKT or
/// PROJJSON.
///
/// # Examples
/// ```
/// use shequ::Crs;
/// let crs = Crs::parse("epsg:4490").unwrap();
/// assert_eq!(crs.definition(), "EPSG:4490");
/// assert!(Crs::parse("").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Crs(String);

impl Crs {
    /// Parses and normalises a user-supplied CRS (`4490` and `epsg:4490` become `EPSG:4490`).
    ///
    /// # Errors
    /// [`Error::Crs`] if the text is empty or PROJ cannot make a CRS of it.
    pub fn parse(text: &str) -> Result<Crs> {
        let t = text.trim();
        if t.is_empty() {
            return Err(Error::crs(Location::default(), "empty CRS"));
        }
        match t.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "gcj02" => return Ok(Crs(GCJ02.to_owned())),
            "bd09" | "bd09ll" => return Ok(Crs(BD09.to_owned())),
            _ => {}
        }
        let def = if t.chars().all(|c| c.is_ascii_digit()) {
            format!("EPSG:{t}")
        } else if let Some((auth, code)) = t.split_once(':') {
            if !t.starts_with('{') && auth.chars().all(|c| c.is_ascii_alphabetic()) {
                format!("{}:{}", auth.to_ascii_uppercase(), code.trim())
            } else {
                t.to_owned()
            }
        } else {
            t.to_owned()
        };
        memo(&CHECKED, &def, || {
            quiet_proj();
            Proj::new(&def).map(drop).map_err(|e| e.to_string())
        })
        .map_err(|e| Error::crs(Location::default(), format!("PROJ cannot use {def:?}: {e}")))?;
        Ok(Crs(def))
    }

    /// Longitude/latitude on WGS84, x = longitude.
    pub fn lonlat() -> Crs {
        Crs(LONLAT.to_owned())
    }

    /// GCJ-02 (AMap, Tencent), a pseudo-CRS PROJ does not implement.
    pub fn gcj02() -> Crs {
        Crs(GCJ02.to_owned())
    }

    /// BD-09 (Baidu), a pseudo-CRS PROJ does not implement.
    pub fn bd09() -> Crs {
        Crs(BD09.to_owned())
    }

    /// The obfuscation this pseudo-CRS applies on top of WGS84, if it is GCJ-02 or BD-09.
    pub fn shift(&self) -> Option<Shift> {
        match self.0.as_str() {
            GCJ02 => Some(Shift::Gcj02),
            BD09 => Some(Shift::Bd09),
            _ => None,
        }
    }

    /// True for WGS84 longitude/latitude: `OGC:CRS84`, `EPSG:4326`, or PROJJSON identified as
    /// either (as GeoPandas and DuckDB write in GeoParquet). With x always the longitude, as
    /// every transformation here normalises the axes, these are the same CRS, so converting
    /// between them is no work (PROJ's own operation between them is a no-op).
    ///
    /// # Examples
    /// ```
    /// use shequ::Crs;
    /// assert!(Crs::parse("EPSG:4326").unwrap().is_wgs84_lonlat());
    /// assert!(Crs::lonlat().is_wgs84_lonlat());
    /// assert!(!Crs::parse("EPSG:4490").unwrap().is_wgs84_lonlat());
    /// ```
    pub fn is_wgs84_lonlat(&self) -> bool {
        match self.0.as_str() {
            LONLAT | "EPSG:4326" => true,
            d if d.starts_with('{') => serde_json::from_str::<serde_json::Value>(d)
                .ok()
                .and_then(|v| {
                    let id = v.get("id")?;
                    let auth = id.get("authority")?.as_str()?.to_ascii_uppercase();
                    let code = id.get("code")?;
                    let code = code
                        .as_str()
                        .map(str::to_owned)
                        .or_else(|| code.as_u64().map(|c| c.to_string()))?;
                    Some((auth == "EPSG" && code == "4326") || (auth == "OGC" && code == "CRS84"))
                })
                .unwrap_or(false),
            _ => false,
        }
    }

    /// The definition passed to PROJ (`GCJ02` or `BD09` for the pseudo-CRSs).
    pub fn definition(&self) -> &str {
        &self.0
    }

    /// The longitude/latitude box where the CRS is valid, from the PROJ database.
    pub fn area_of_use(&self) -> Option<Region> {
        if self.shift().is_some() {
            return Some(Region::china());
        }
        memo(&AREAS, &self.0, || {
            quiet_proj();
            let p = Proj::new(&self.0).ok()?;
            let (area, _) = p.area_of_use().ok()?;
            let a = area?;
            (a.west <= a.east).then_some(Region {
                west: a.west,
                south: a.south,
                east: a.east,
                north: a.north,
            })
        })
    }

    /// The CRS as PROJJSON, as GeoParquet metadata stores it.
    ///
    /// # Errors
    /// [`Error::Crs`] if PROJ cannot export it.
    pub fn projjson(&self) -> Result<serde_json::Value> {
        if let Some(s) = self.shift() {
            return Err(Error::crs(
                Location::default(),
                format!(
                    "{} has no PROJJSON definition; write GeoJSON for map SDKs instead",
                    s.name()
                ),
            ));
        }
        let text = memo(&PROJJSON, &self.0, || {
            quiet_proj();
            let p = Proj::new(&self.0).map_err(|e| e.to_string())?;
            p.to_projjson(Some(false), None, None)
                .map_err(|e| e.to_string())
        })
        .map_err(|e| Error::crs(Location::default(), format!("{}: {e}", self.0)))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::crs(Location::default(), format!("PROJJSON of {}: {e}", self.0)))
    }

    /// The CRS's name according to PROJ (e.g. `CGCS2000 / 3-degree Gauss-Kruger CM 108E`).
    ///
    /// # Errors
    /// [`Error::Crs`] if PROJ cannot read it.
    pub fn name(&self) -> Result<String> {
        if let Some(s) = self.shift() {
            return Ok(s.name().to_owned());
        }
        let json = self.projjson()?;
        Ok(json
            .get("name")
            .and_then(|n| n.as_str())
            .unwrap_or(&self.0)
            .to_owned())
    }
}

/// A table of PROJ's answers about CRS definitions, one per question.
type Memo<T> = OnceLock<Mutex<HashMap<String, T>>>;
/// Whether PROJ accepts a definition (the error message if not).
static CHECKED: Memo<std::result::Result<(), String>> = OnceLock::new();
/// A definition's area of use.
static AREAS: Memo<Option<Region>> = OnceLock::new();
/// A definition as PROJJSON text.
static PROJJSON: Memo<std::result::Result<String, String>> = OnceLock::new();

/// `f()`'s answer about `definition`, asked of PROJ once per process. Every question makes a
/// PROJ context and searches its database (measured: 6–20 ms each), and a run asks the same
/// few definitions many times (every layer's CRS, every output file's metadata). PROJ's
/// database is compiled in and cannot change while the process runs, so the answers hold.
fn memo<T: Clone>(table: &Memo<T>, definition: &str, f: impl FnOnce() -> T) -> T {
    let table = table.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(v) = table
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(definition)
    {
        return v.clone();
    }
    // Asked without the lock: two threads may both ask; the answers are the same.
    let v = f();
    table
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(definition.to_owned(), v.clone());
    v
}

impl std::fmt::Display for Crs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The CGCS2000 3-degree Gauss-Krüger zone (without zone prefix, EPSG:4534–4554) whose central
/// meridian is nearest to `lon`, for metric work on data centred there.
///
/// # Examples
/// ```
/// // Chongqing's Yuzhong district (106.57E): central meridian 108E (EPSG:4545) is 1.43
/// // degrees away, 105E is 1.57 away.
/// assert_eq!(shequ::crs::metric_crs_for(106.57).unwrap().definition(), "EPSG:4545");
/// assert_eq!(shequ::crs::metric_crs_for(116.4).unwrap().definition(), "EPSG:4548");
/// assert!(shequ::crs::metric_crs_for(10.0).is_none());
/// ```
pub fn metric_crs_for(lon: f64) -> Option<Crs> {
    if !(73.5..=136.5).contains(&lon) {
        return None;
    }
    let cm = (lon / 3.0).round() as i64 * 3;
    let cm = cm.clamp(75, 135);
    Some(Crs(format!("EPSG:{}", 4534 + (cm - 75) / 3)))
}

/// The UTM zone (WGS84, north) for a longitude, used outside China's GK zones.
///
/// # Examples
/// ```
/// assert_eq!(shequ::crs::utm_crs_for(10.0).definition(), "EPSG:32632");
/// ```
pub fn utm_crs_for(lon: f64) -> Crs {
    let zone = (((lon + 180.0) / 6.0).floor() as i64).clamp(0, 59) + 1;
    Crs(format!("EPSG:{}", 32600 + zone))
}

/// A transformation between two CRSs, usable from many threads.
///
/// PROJ objects are not thread-safe, so each rayon task makes its own from the two definitions.
///
/// # Examples
/// ```
/// use shequ::{Crs, crs::Transformer};
/// let t = Transformer::new(&Crs::lonlat(), &Crs::parse("EPSG:4545").unwrap()).unwrap();
/// let mut pts = vec![geo::coord! { x: 108.0, y: 0.0 }];
/// t.transform_coords(&mut pts).unwrap();
/// assert!((pts[0].x - 500_000.0).abs() < 1e-6 && pts[0].y.abs() < 1e-6);
/// ```
#[derive(Debug, Clone)]
pub struct Transformer {
    from: Crs,
    to: Crs,
    /// GCJ-02/BD-09 to WGS84 before PROJ.
    pre: Option<Shift>,
    /// The PROJ step (None when it is the identity).
    proj: Option<(Crs, Crs)>,
    /// WGS84 to GCJ-02/BD-09 after PROJ.
    post: Option<Shift>,
}

/// Points per PROJ call in parallel transforms.
const CHUNK: usize = 16 * 1024;

impl Transformer {
    /// A transformation from `from` to `to`.
    ///
    /// # Errors
    /// [`Error::Crs`] if PROJ finds no transformation.
    pub fn new(from: &Crs, to: &Crs) -> Result<Transformer> {
        let same = from == to || (from.is_wgs84_lonlat() && to.is_wgs84_lonlat());
        let (pre, post) = if same {
            (None, None)
        } else {
            (from.shift(), to.shift())
        };
        let pf = if pre.is_some() {
            Crs::lonlat()
        } else {
            from.clone()
        };
        let pt = if post.is_some() {
            Crs::lonlat()
        } else {
            to.clone()
        };
        let proj = if same || pf == pt {
            None
        } else {
            Self::with_proj(&pf, &pt, |_| ())?;
            Some((pf, pt))
        };
        Ok(Transformer {
            from: from.clone(),
            to: to.clone(),
            pre,
            proj,
            post,
        })
    }

    /// True if the transformation changes nothing.
    pub fn is_identity(&self) -> bool {
        self.pre.is_none() && self.proj.is_none() && self.post.is_none()
    }

    /// The conversions applied, in order, for provenance records.
    ///
    /// # Examples
    /// ```
    /// use shequ::{Crs, crs::Transformer};
    /// let t = Transformer::new(&Crs::gcj02(), &Crs::parse("EPSG:4545").unwrap()).unwrap();
    /// assert_eq!(t.steps().len(), 2);
    /// assert!(t.steps()[0].starts_with("GCJ-02 -> WGS84"));
    /// ```
    pub fn steps(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(s) = self.pre {
            v.push(format!(
                "{} -> WGS84 (coordtransform, iterative inverse; mainland China only)",
                s.name()
            ));
        }
        if let Some((a, b)) = &self.proj {
            v.push(format!("{a} -> {b} (PROJ {})", proj_version()));
        }
        if let Some(s) = self.post {
            v.push(format!(
                "WGS84 -> {} (coordtransform; mainland China only)",
                s.name()
            ));
        }
        v
    }

    /// Converts one coordinate with an optional PROJ object for the middle step.
    fn convert_one(
        &self,
        p: Option<&Proj>,
        c: Coord<f64>,
    ) -> std::result::Result<Coord<f64>, String> {
        let (mut x, mut y) = (c.x, c.y);
        if let Some(s) = self.pre {
            (x, y) = s.to_wgs84(x, y);
        }
        if let Some(p) = p {
            (x, y) = p.convert((x, y)).map_err(|e| e.to_string())?;
        }
        if let Some(s) = self.post {
            (x, y) = s.from_wgs84(x, y);
        }
        Ok(Coord { x, y })
    }

    /// Runs `f` with the PROJ object of the middle step, if there is one.
    fn with_step<R>(&self, f: impl FnOnce(Option<&Proj>) -> R) -> Result<R> {
        match &self.proj {
            Some((a, b)) => Self::with_proj(a, b, |p| f(Some(p))),
            None => Ok(f(None)),
        }
    }

    /// Runs `f` with this thread's PROJ object for the pair, creating it on first use.
    /// (Creating one costs a database search, far more than transforming a point.)
    fn with_proj<R>(from: &Crs, to: &Crs, f: impl FnOnce(&Proj) -> R) -> Result<R> {
        thread_local! {
            static CACHE: RefCell<HashMap<(String, String), Rc<Proj>>> = RefCell::new(HashMap::new());
        }
        let key = (from.0.clone(), to.0.clone());
        let cached = CACHE.with(|c| c.borrow().get(&key).cloned());
        let p = match cached {
            Some(p) => p,
            None => {
                let p = Rc::new(Self::create_proj(from, to)?);
                CACHE.with(|c| c.borrow_mut().insert(key, p.clone()));
                p
            }
        };
        Ok(f(&p))
    }

    /// A PROJ object for the pair. The first in the process searches PROJ's database for the
    /// operation (tens of milliseconds, measured: 65–75 ms for EPSG:4326 to a Gauss-Kruger
    /// zone); when that operation is a single pipeline, its definition is remembered and other
    /// threads build their object from it (under a millisecond). When PROJ keeps a choice among
    /// several operations by area, `proj_pj_info` gives no definition (before the first
    /// transformation), so every thread then searches the database itself.
    fn create_proj(from: &Crs, to: &Crs) -> Result<Proj> {
        quiet_proj();
        /// (from, to) → the operation's pipeline, or `None` when it has none to share.
        type Pipelines = Mutex<HashMap<(String, String), Option<String>>>;
        static PIPELINES: OnceLock<Pipelines> = OnceLock::new();
        let key = (from.0.clone(), to.0.clone());
        let pipelines = PIPELINES.get_or_init(|| Mutex::new(HashMap::new()));
        let known = pipelines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some(Some(def)) = &known {
            if let Ok(p) = Proj::new(def) {
                return Ok(p);
            }
        }
        // OGC:CRS84 and EPSG:4326 differ only in axis order, which `new_known_crs` normalises
        // to longitude, latitude; PROJ finds operations from EPSG:4326 several times faster
        // (measured: 70 ms against 320 ms to a Gauss-Kruger zone).
        let name = |c: &Crs| {
            if c.0 == LONLAT {
                "EPSG:4326".to_owned()
            } else {
                c.definition().to_owned()
            }
        };
        let p = Proj::new_known_crs(&name(from), &name(to), None).map_err(|e| {
            Error::crs(
                Location::default(),
                format!("no transformation from {from} to {to}: {e}"),
            )
        })?;
        if known.is_none() {
            let def = p
                .def()
                .ok()
                .filter(|d| d.starts_with("proj=pipeline") || d.starts_with("proj=noop"));
            pipelines
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, def);
        }
        Ok(p)
    }

    /// The source CRS.
    pub fn from(&self) -> &Crs {
        &self.from
    }

    /// The target CRS.
    pub fn to(&self) -> &Crs {
        &self.to
    }

    /// Transforms coordinates in place, in parallel.
    ///
    /// # Errors
    /// [`Error::Crs`] if PROJ fails on a coordinate (the message gives its index).
    pub fn transform_coords(&self, coords: &mut [Coord<f64>]) -> Result<()> {
        if self.is_identity() {
            return Ok(());
        }
        coords
            .par_chunks_mut(CHUNK)
            .enumerate()
            .try_for_each(|(chunk_no, chunk)| {
                self.with_step(|p| {
                    for (i, c) in chunk.iter_mut().enumerate() {
                        *c = self.convert_one(p, *c).map_err(|e| {
                            Error::crs(
                                Location::default().index(chunk_no * CHUNK + i),
                                format!("{} -> {}: {e}", self.from, self.to),
                            )
                        })?;
                    }
                    Ok(())
                })?
            })
    }

    /// Transforms optional points in place, in parallel. A point that PROJ rejects, or whose
    /// result is not finite, is set to `None` and its index returned with the reason, so one bad
    /// row does not stop the others.
    ///
    /// # Errors
    /// [`Error::Crs`] only if no PROJ object can be made for the pair.
    ///
    /// # Examples
    /// ```
    /// use shequ::{Crs, crs::Transformer};
    /// let t = Transformer::new(&Crs::parse("EPSG:4545").unwrap(), &Crs::lonlat()).unwrap();
    /// let mut pts = vec![Some(geo::coord! { x: 500_000.0, y: 0.0 }), None, Some(geo::coord! { x: f64::INFINITY, y: 0.0 })];
    /// let failed = t.transform_points(&mut pts).unwrap();
    /// assert!((pts[0].unwrap().x - 108.0).abs() < 1e-9);
    /// assert_eq!((failed.len(), failed[0].0, pts[2]), (1, 2, None));
    /// ```
    pub fn transform_points(
        &self,
        coords: &mut [Option<Coord<f64>>],
    ) -> Result<Vec<(usize, String)>> {
        if self.is_identity() {
            return Ok(Vec::new());
        }
        let failures: Vec<Vec<(usize, String)>> = coords
            .par_chunks_mut(CHUNK)
            .enumerate()
            .map(|(chunk_no, chunk)| {
                self.with_step(|p| {
                    let mut failed = Vec::new();
                    for (i, slot) in chunk.iter_mut().enumerate() {
                        let Some(c) = *slot else { continue };
                        match self.convert_one(p, c) {
                            Ok(t) if t.x.is_finite() && t.y.is_finite() => *slot = Some(t),
                            r => {
                                let why = r.err().unwrap_or_else(|| "not a finite result".into());
                                failed.push((chunk_no * CHUNK + i, why));
                                *slot = None;
                            }
                        }
                    }
                    failed
                })
            })
            .collect::<Result<_>>()?;
        Ok(failures.into_iter().flatten().collect())
    }

    /// Transforms geometries in place, in parallel. A geometry that fails is set to `None` and its
    /// index returned with the reason.
    pub fn transform_geometries(
        &self,
        geoms: &mut [Option<Geometry<f64>>],
    ) -> Result<Vec<(usize, String)>> {
        if self.is_identity() {
            return Ok(Vec::new());
        }
        let failures: Vec<(usize, String)> = geoms
            .par_chunks_mut(1024)
            .enumerate()
            .map(|(chunk_no, chunk)| {
                self.with_step(|p| {
                    let mut failed = Vec::new();
                    for (i, g) in chunk.iter_mut().enumerate() {
                        if let Some(geom) = g {
                            let r = try_for_each_coord_mut(geom, &mut |c: &mut Coord<f64>| {
                                *c = self.convert_one(p, *c)?;
                                Ok::<(), String>(())
                            });
                            if let Err(e) = r {
                                failed.push((chunk_no * 1024 + i, e));
                                *g = None;
                            }
                        }
                    }
                    failed
                })
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        Ok(failures)
    }
}

/// Keeps PROJ's own log lines (`proj_create: ...`) off the terminal: shequ reports what went
/// wrong itself, with the file or job key. Set `PROJ_DEBUG` (PROJ's own switch, e.g.
/// `PROJ_DEBUG=2`) to see them again. Runs once per process, before the first PROJ object is
/// made; every PROJ context made later copies the default context's level.
pub(crate) fn quiet_proj() {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        if std::env::var_os("PROJ_DEBUG").is_none() {
            // SAFETY: `proj_log_level` with a null context sets the default context's level;
            // PROJ documents null as the default context, and the call touches no memory of
            // ours.
            #[allow(unsafe_code)]
            unsafe {
                proj_sys::proj_log_level(std::ptr::null_mut(), proj_sys::PJ_LOG_LEVEL_PJ_LOG_NONE);
            }
        }
    });
}

/// The version of the bundled PROJ library (asked once; it cannot change while running).
pub fn proj_version() -> String {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION
        .get_or_init(|| {
            quiet_proj();
            proj::ProjBuilder::new()
                .lib_info()
                .map(|i| i.version)
                .unwrap_or_else(|_| "unknown".into())
        })
        .clone()
}
