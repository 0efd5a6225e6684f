//! GeoJSON reading and writing.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

use geojson::{Feature, JsonObject, JsonValue};

use crate::crs::Crs;
use crate::error::{Error, Location, Result, excerpt};
use crate::io::FeatureLayer;

/// Reads a GeoJSON FeatureCollection (or a single Feature), streaming: features are decoded one
/// at a time as the file is parsed, so memory grows with the requested columns, not with the
/// file's JSON tree. Members may come in any order (`crs` or `bbox` after `features` too).
///
/// The CRS is taken from a legacy `crs` member (`urn:ogc:def:crs:EPSG::4490` or `EPSG:4490`) if
/// present; otherwise it is `None`, meaning RFC 7946 longitude/latitude WGS84.
///
/// A feature whose geometry is missing or malformed (an unknown type, coordinates of the wrong
/// shape)
/// does not stop the read: its entry in `geometries` is `Err(reason)` and the model reports it.
///
/// # Examples
/// ```
/// let dir = tempfile::tempdir()?;
/// let p = dir.path().join("f.geojson");
/// // `crs` after `features`, and one feature with a broken geometry.
/// std::fs::write(&p, r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"code":"A","n":3},"geometry":{"type":"Point","coordinates":[106.5,29.5]}},
///   {"type":"Feature","properties":{"code":"B"},"geometry":{"type":"Circle","coordinates":[1,2]}}],
///   "crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::4490"}}}"#)?;
/// let layer = shequ::io::geojson::read("grids", &p, &["code", "n"])?;
/// assert_eq!(layer.len(), 2);
/// assert!(layer.geometries[0].is_ok() && layer.geometries[1].is_err());
/// assert_eq!(layer.columns[1][0].as_deref(), Some("3"));
/// assert!(layer.crs.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Io`], [`Error::Data`] for malformed or truncated JSON (with line and column) or a
/// document that is not a FeatureCollection or Feature, [`Error::ColumnNotFound`] if no feature
/// has a requested property.
pub fn read(layer: &str, path: &Path, columns: &[&str]) -> Result<FeatureLayer> {
    use serde::de::DeserializeSeed;
    let at = || Location::layer(layer).file(path);
    let file = File::open(path).map_err(|e| Error::Io {
        at: at(),
        source: e,
    })?;
    let mut sink = Sink {
        columns,
        seen: vec![false; columns.len()],
        available: std::collections::BTreeSet::new(),
        geometries: Vec::new(),
        out: vec![Vec::new(); columns.len()],
    };
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(1 << 20, file));
    let top = TopSeed(&mut sink)
        .deserialize(&mut de)
        .and_then(|t| de.end().map(|()| t))
        .map_err(|e| Error::data(at(), format!("not valid GeoJSON: {e}")))?;
    match top.kind.as_deref() {
        Some("FeatureCollection") if top.had_features => {}
        Some("FeatureCollection") => {
            return Err(Error::data(
                at(),
                "FeatureCollection has no `features` array",
            ));
        }
        Some("Feature") if !top.had_features => {
            let mut f = top.rest;
            f.insert("type".into(), JsonValue::String("Feature".into()));
            FeatureSeed(&mut sink)
                .deserialize(JsonValue::Object(f))
                .map_err(|e| Error::data(at(), format!("not valid GeoJSON: {e}")))?;
        }
        Some(other) if !top.had_features => {
            return Err(Error::data(
                at(),
                format!("a bare {other} has no properties; expected a FeatureCollection"),
            ));
        }
        _ => {
            return Err(Error::data(
                at(),
                "no `type` member: expected a GeoJSON FeatureCollection",
            ));
        }
    }
    let crs = match top.crs {
        Some(v) => Some(
            legacy_crs(&v)
                .ok_or_else(|| {
                    Error::crs(
                        at().column("crs"),
                        format!(
                            "unrecognised GeoJSON crs member {}",
                            excerpt(&v.to_string())
                        ),
                    )
                })?
                .map_err(|e| e.located(at().column("crs")))?,
        ),
        None => None,
    };
    if let Some(c) = sink.seen.iter().position(|s| !*s) {
        if !sink.geometries.is_empty() {
            return Err(Error::column_not_found(
                at().column(columns[c]),
                sink.available,
            ));
        }
    }
    Ok(FeatureLayer {
        path: path.to_owned(),
        crs,
        geometries: sink.geometries,
        columns: sink.out,
        unreadable: Vec::new(),
    })
}

/// Receives the features of a collection one at a time.
struct Sink<'c> {
    columns: &'c [&'c str],
    seen: Vec<bool>,
    available: std::collections::BTreeSet<String>,
    geometries: Vec<std::result::Result<geo::Geometry<f64>, String>>,
    out: Vec<Vec<Option<String>>>,
}

/// What the top level of the document held, besides the streamed features.
struct Top {
    kind: Option<String>,
    crs: Option<JsonValue>,
    had_features: bool,
    rest: JsonObject,
}

struct TopSeed<'s, 'c>(&'s mut Sink<'c>);

impl<'de> serde::de::DeserializeSeed<'de> for TopSeed<'_, '_> {
    type Value = Top;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<Top, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for TopSeed<'_, '_> {
    type Value = Top;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a GeoJSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Top, A::Error> {
        let mut top = Top {
            kind: None,
            crs: None,
            had_features: false,
            rest: JsonObject::new(),
        };
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "type" => top.kind = Some(map.next_value()?),
                "crs" => top.crs = Some(map.next_value()?),
                "features" => {
                    map.next_value_seed(FeaturesSeed(&mut *self.0))?;
                    top.had_features = true;
                }
                _ => {
                    let v: JsonValue = map.next_value()?;
                    top.rest.insert(key, v);
                }
            }
        }
        Ok(top)
    }
}

struct FeaturesSeed<'s, 'c>(&'s mut Sink<'c>);

impl<'de> serde::de::DeserializeSeed<'de> for FeaturesSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FeaturesSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of GeoJSON features")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<(), A::Error> {
        while seq.next_element_seed(FeatureSeed(&mut *self.0))?.is_some() {}
        Ok(())
    }
}

/// One feature, decoded straight from the stream: the requested properties as text, the
/// geometry as `geo` coordinates. Nothing else of the feature is kept (no JSON tree per
/// feature), and a malformed geometry makes an `Err` entry, not a failed document.
struct FeatureSeed<'s, 'c>(&'s mut Sink<'c>);

/// The keys of a Feature shequ reads; others are skipped.
#[derive(serde::Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum FeatureKey {
    Type,
    Geometry,
    Properties,
    #[serde(other)]
    Other,
}

impl<'de> serde::de::DeserializeSeed<'de> for FeatureSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FeatureSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a GeoJSON Feature")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<(), A::Error> {
        let sink = self.0;
        let row = sink.geometries.len();
        for c in &mut sink.out {
            c.push(None);
        }
        let mut kind: Option<String> = None;
        let mut geometry: Option<Geom> = None;
        while let Some(key) = map.next_key::<FeatureKey>()? {
            match key {
                FeatureKey::Type => kind = Some(map.next_value()?),
                FeatureKey::Geometry => geometry = map.next_value::<Option<Geom>>()?,
                FeatureKey::Properties => map.next_value_seed(PropsSeed { sink, row })?,
                FeatureKey::Other => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        sink.geometries.push(if kind.as_deref() != Some("Feature") {
            Err("not a GeoJSON Feature (no \"type\": \"Feature\")".into())
        } else {
            match geometry {
                None => Err("feature has no geometry".into()),
                Some(g) => g.0.map_err(|e| format!("unusable geometry: {e}")),
            }
        });
        Ok(())
    }
    // Anything but an object in the features array is an entry without a feature.
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<(), A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        self.not_a_feature();
        Ok(())
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> std::result::Result<(), E> {
        self.not_a_feature();
        Ok(())
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> std::result::Result<(), E> {
        self.not_a_feature();
        Ok(())
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> std::result::Result<(), E> {
        self.not_a_feature();
        Ok(())
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> std::result::Result<(), E> {
        self.not_a_feature();
        Ok(())
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> std::result::Result<(), E> {
        self.not_a_feature();
        Ok(())
    }
    fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<(), E> {
        self.not_a_feature();
        Ok(())
    }
}

impl FeatureSeed<'_, '_> {
    fn not_a_feature(self) {
        for c in &mut self.0.out {
            c.push(None);
        }
        self.0
            .geometries
            .push(Err("not a GeoJSON Feature (not an object)".into()));
    }
}

/// A feature's `properties`: the requested columns as text, the others skipped (their names
/// are noted for the error that lists what a layer has).
struct PropsSeed<'s, 'c> {
    sink: &'s mut Sink<'c>,
    row: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for PropsSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> serde::de::Visitor<'de> for PropsSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a properties object or null")
    }
    fn visit_none<E: serde::de::Error>(self) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_map(self)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<(), A::Error> {
        let sink = self.sink;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match sink.columns.iter().position(|c| *c == key) {
                Some(c) => {
                    let v: JsonValue = map.next_value()?;
                    sink.seen[c] = true;
                    sink.out[c][self.row] = value_text(&v);
                }
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
            if !sink.available.contains(key.as_ref()) {
                sink.available.insert(key.into_owned());
            }
        }
        Ok(())
    }
}

/// A GeoJSON geometry object decoded to `geo`, or why it cannot be.
struct Geom(std::result::Result<geo::Geometry<f64>, String>);

/// The keys of a geometry object shequ reads.
#[derive(serde::Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum GeomKey {
    Type,
    Coordinates,
    Geometries,
    #[serde(other)]
    Other,
}

impl<'de> serde::Deserialize<'de> for Geom {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Geom, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Geom;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a GeoJSON geometry object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Geom, A::Error> {
                let mut kind: Option<String> = None;
                let mut coords: Option<Nested> = None;
                let mut parts: Option<Vec<Geom>> = None;
                while let Some(key) = map.next_key::<GeomKey>()? {
                    match key {
                        GeomKey::Type => kind = Some(map.next_value()?),
                        GeomKey::Coordinates => coords = Some(map.next_value()?),
                        GeomKey::Geometries => parts = Some(map.next_value()?),
                        GeomKey::Other => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(Geom(to_geo(kind.as_deref(), coords, parts)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Geom, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Geom(Err("a geometry must be an object".into())))
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> std::result::Result<Geom, E> {
                Ok(Geom(Err("a geometry must be an object".into())))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> std::result::Result<Geom, E> {
                Ok(Geom(Err("a geometry must be an object".into())))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> std::result::Result<Geom, E> {
                Ok(Geom(Err("a geometry must be an object".into())))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> std::result::Result<Geom, E> {
                Ok(Geom(Err("a geometry must be an object".into())))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> std::result::Result<Geom, E> {
                Ok(Geom(Err("a geometry must be an object".into())))
            }
        }
        d.deserialize_any(V)
    }
}

/// GeoJSON `coordinates`, decoded without a JSON tree: a position becomes a `Coord` as soon as
/// its first member is a number (extra members, z and m, are skipped); anything that is not a
/// number or an array is `Bad`.
enum Nested {
    Num(f64),
    Pos(geo::Coord<f64>),
    List(Vec<Nested>),
    Bad,
}

impl<'de> serde::Deserialize<'de> for Nested {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Nested, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Nested;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("GeoJSON coordinates")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<Nested, E> {
                Ok(Nested::Num(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<Nested, E> {
                Ok(Nested::Num(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Nested, E> {
                Ok(Nested::Num(v as f64))
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> std::result::Result<Nested, E> {
                Ok(Nested::Bad)
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> std::result::Result<Nested, E> {
                Ok(Nested::Bad)
            }
            fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<Nested, E> {
                Ok(Nested::Bad)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Nested, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Nested::Bad)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Nested, A::Error> {
                match seq.next_element::<Nested>()? {
                    None => Ok(Nested::List(Vec::new())),
                    Some(Nested::Num(x)) => {
                        let y = seq.next_element::<Nested>()?;
                        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                        Ok(match y {
                            Some(Nested::Num(y)) => Nested::Pos(geo::Coord { x, y }),
                            _ => Nested::Bad,
                        })
                    }
                    Some(first) => {
                        let mut v = vec![first];
                        while let Some(e) = seq.next_element::<Nested>()? {
                            v.push(e);
                        }
                        Ok(Nested::List(v))
                    }
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A list of positions (a line, a ring, the points of a MultiPoint).
fn positions(n: Nested) -> std::result::Result<Vec<geo::Coord<f64>>, String> {
    match n {
        Nested::List(v) => v
            .into_iter()
            .map(|p| match p {
                Nested::Pos(c) => Ok(c),
                _ => Err("expected a list of positions".to_owned()),
            })
            .collect(),
        _ => Err("expected a list of positions".to_owned()),
    }
}

fn lists<T>(
    n: Nested,
    each: impl Fn(Nested) -> std::result::Result<T, String>,
) -> std::result::Result<Vec<T>, String> {
    match n {
        Nested::List(v) => v.into_iter().map(each).collect(),
        _ => Err("expected a list".to_owned()),
    }
}

fn polygon(n: Nested) -> std::result::Result<geo::Polygon<f64>, String> {
    let mut rings = lists(n, |r| positions(r).map(geo::LineString::new))?;
    if rings.is_empty() {
        return Err("a polygon needs an exterior ring".into());
    }
    let exterior = rings.remove(0);
    Ok(geo::Polygon::new(exterior, rings))
}

/// A `geo` geometry from a decoded GeoJSON geometry object.
fn to_geo(
    kind: Option<&str>,
    coords: Option<Nested>,
    parts: Option<Vec<Geom>>,
) -> std::result::Result<geo::Geometry<f64>, String> {
    use geo::Geometry as G;
    let kind = kind.ok_or("a geometry without \"type\"")?;
    if kind == "GeometryCollection" {
        let parts = parts.ok_or("a GeometryCollection without \"geometries\"")?;
        return parts
            .into_iter()
            .map(|g| g.0)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(|v| G::GeometryCollection(geo::GeometryCollection(v)));
    }
    let c = coords.ok_or_else(|| format!("a {kind} without \"coordinates\""))?;
    let shape = |e: String| format!("{kind}: {e}");
    match kind {
        "Point" => match c {
            Nested::Pos(p) => Ok(G::Point(geo::Point(p))),
            _ => Err(shape("expected a position".into())),
        },
        "MultiPoint" => positions(c)
            .map(|v| G::MultiPoint(v.into_iter().map(geo::Point).collect()))
            .map_err(shape),
        "LineString" => positions(c)
            .map(|v| G::LineString(geo::LineString::new(v)))
            .map_err(shape),
        "MultiLineString" => lists(c, |l| positions(l).map(geo::LineString::new))
            .map(|v| G::MultiLineString(geo::MultiLineString(v)))
            .map_err(shape),
        "Polygon" => polygon(c).map(G::Polygon).map_err(shape),
        "MultiPolygon" => lists(c, polygon)
            .map(|v| G::MultiPolygon(geo::MultiPolygon(v)))
            .map_err(shape),
        other => Err(format!("unknown geometry type {other:?}")),
    }
}

/// Text of a property value: strings as they are, numbers and booleans printed, null as `None`.
pub(crate) fn value_text(v: &JsonValue) -> Option<String> {
    match v {
        JsonValue::Null => None,
        JsonValue::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn legacy_crs(v: &JsonValue) -> Option<Result<Crs>> {
    let name = v.get("properties")?.get("name")?.as_str()?;
    let def = if let Some(rest) = name.strip_prefix("urn:ogc:def:crs:") {
        // urn:ogc:def:crs:EPSG::4490, urn:ogc:def:crs:OGC:1.3:CRS84
        let parts: Vec<&str> = rest.split(':').collect();
        let auth = parts.first()?;
        let code = parts.last()?;
        format!("{auth}:{code}")
    } else {
        name.to_owned()
    };
    Some(Crs::parse(&def))
}

/// Writes features as an RFC 7946 FeatureCollection, one feature at a time (nothing but the
/// current feature is held in memory): coordinates as given (the caller transforms to
/// longitude/latitude first), rounded to `decimals` places, then rings oriented by the
/// right-hand rule (exteriors counter-clockwise, holes clockwise) on the rounded coordinates.
/// Properties keep their JSON types.
///
/// # Examples
/// ```
/// use geo::{polygon, Geometry};
/// let dir = tempfile::tempdir()?;
/// let p = dir.path().join("out.geojson");
/// // A clockwise square with 9-decimal coordinates.
/// let sq: Geometry<f64> = polygon![(x: 106.0, y: 29.0), (x: 106.0, y: 29.123456789),
///     (x: 106.1, y: 29.123456789), (x: 106.1, y: 29.0)].into();
/// let mut props = geojson::JsonObject::new();
/// props.insert("households".into(), 12.into());
/// shequ::io::geojson::write(&p, [(Some(&sq), props)], None, 7)?;
/// let text = std::fs::read_to_string(&p)?;
/// assert!(text.contains("29.1234568") && !text.contains("29.12345679"));
/// assert!(text.contains(r#""households":12"#));
/// let back = shequ::io::geojson::read("grids", &p, &["households"])?;
/// let geo::Geometry::Polygon(poly) = back.geometries[0].clone()? else { panic!() };
/// use geo::Winding;
/// assert!(poly.exterior().is_ccw());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Io`] if the file cannot be written.
pub fn write<'g>(
    path: &Path,
    features: impl IntoIterator<Item = (Option<&'g geo::Geometry<f64>>, JsonObject)>,
    foreign: Option<JsonObject>,
    decimals: u32,
) -> Result<()> {
    use std::io::Write;
    let at = || Location::default().file(path);
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let io = |e: std::io::Error| Error::io(path, e);
    let json = |e: serde_json::Error| Error::data(at(), e.to_string());
    // geojson's FeatureWriter writes invalid JSON for foreign members with no features
    // (`"k":v,]}`), so the collection's frame is written here and each feature by serde.
    w.write_all(br#"{"type":"FeatureCollection","#)
        .map_err(io)?;
    for (k, v) in foreign.into_iter().flatten() {
        serde_json::to_writer(&mut w, &k).map_err(json)?;
        w.write_all(b":").map_err(io)?;
        serde_json::to_writer(&mut w, &v).map_err(json)?;
        w.write_all(b",").map_err(io)?;
    }
    w.write_all(br#""features":["#).map_err(io)?;
    for (n, (g, properties)) in features.into_iter().enumerate() {
        if n > 0 {
            w.write_all(b",").map_err(io)?;
        }
        let feature = Feature {
            bbox: None,
            geometry: g.map(|g| geojson::Geometry::from(&rfc7946(g, decimals))),
            id: None,
            properties: Some(properties),
            foreign_members: None,
        };
        serde_json::to_writer(&mut w, &feature).map_err(json)?;
    }
    w.write_all(b"]}").map_err(io)?;
    w.flush().map_err(io)
}

/// A geometry as RFC 7946 wants it: coordinates rounded to `decimals` places, then polygon
/// rings oriented by the right-hand rule.
pub fn rfc7946(g: &geo::Geometry<f64>, decimals: u32) -> geo::Geometry<f64> {
    use geo::orient::{Direction, Orient};
    let scale = 10f64.powi(decimals as i32);
    let g = geo::MapCoords::map_coords(g, |c| geo::Coord {
        x: (c.x * scale).round() / scale,
        y: (c.y * scale).round() / scale,
    });
    match g {
        geo::Geometry::Polygon(p) => geo::Geometry::Polygon(p.orient(Direction::Default)),
        geo::Geometry::MultiPolygon(p) => geo::Geometry::MultiPolygon(p.orient(Direction::Default)),
        geo::Geometry::Rect(r) => geo::Geometry::Polygon(r.to_polygon().orient(Direction::Default)),
        geo::Geometry::Triangle(t) => {
            geo::Geometry::Polygon(t.to_polygon().orient(Direction::Default))
        }
        other => other,
    }
}
