//! GeoJSON reading and writing.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use geojson::{Feature, FeatureCollection, GeoJson, JsonObject, JsonValue};

use crate::crs::Crs;
use crate::error::{Error, Location, Result};
use crate::io::FeatureLayer;

/// Reads a GeoJSON FeatureCollection (or a single Feature).
///
/// The CRS is taken from a legacy `crs` member (`urn:ogc:def:crs:EPSG::4490` or `EPSG:4490`) if
/// present; otherwise it is `None`, meaning RFC 7946 longitude/latitude WGS84.
///
/// # Errors
/// [`Error::Io`], [`Error::Data`] for malformed or truncated JSON (with line and column),
/// [`Error::ColumnNotFound`] if no feature has a requested property.
pub fn read(layer: &str, path: &Path, columns: &[&str]) -> Result<FeatureLayer> {
    let at = || Location::layer(layer).file(path);
    let file = File::open(path).map_err(|e| Error::Io {
        at: at(),
        source: e,
    })?;
    let gj = GeoJson::from_reader(BufReader::new(file))
        .map_err(|e| Error::data(at(), format!("not valid GeoJSON: {e}")))?;
    let (features, foreign) = match gj {
        GeoJson::FeatureCollection(fc) => (fc.features, fc.foreign_members),
        GeoJson::Feature(f) => (vec![f], None),
        GeoJson::Geometry(_) => {
            return Err(Error::data(
                at(),
                "a bare geometry has no properties; expected a FeatureCollection",
            ));
        }
    };
    let crs =
        match foreign.as_ref().and_then(|m| m.get("crs")) {
            Some(v) => Some(legacy_crs(v).ok_or_else(|| {
                Error::crs(at(), format!("unrecognised GeoJSON crs member {v}"))
            })??),
            None => None,
        };
    let mut seen = vec![false; columns.len()];
    let mut out_cols: Vec<Vec<Option<String>>> =
        vec![Vec::with_capacity(features.len()); columns.len()];
    let mut geometries = Vec::with_capacity(features.len());
    for f in &features {
        geometries.push(feature_geometry(f));
        for (c, name) in columns.iter().enumerate() {
            let v = f.properties.as_ref().and_then(|p| p.get(*name));
            if v.is_some() {
                seen[c] = true;
            }
            out_cols[c].push(v.and_then(value_text));
        }
    }
    if let Some(c) = seen.iter().position(|s| !*s) {
        if !features.is_empty() {
            let mut available: Vec<&str> = features
                .iter()
                .filter_map(|f| f.properties.as_ref())
                .flat_map(|p| p.keys().map(String::as_str))
                .collect();
            available.sort_unstable();
            available.dedup();
            return Err(Error::ColumnNotFound {
                at: at().column(columns[c]),
                available: available.join(", "),
            });
        }
    }
    Ok(FeatureLayer {
        path: path.to_owned(),
        crs,
        geometries,
        columns: out_cols,
    })
}

fn feature_geometry(f: &Feature) -> std::result::Result<geo::Geometry<f64>, String> {
    let g = f.geometry.as_ref().ok_or("feature has no geometry")?;
    geo::Geometry::<f64>::try_from(g.clone()).map_err(|e| format!("unusable geometry: {e}"))
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

/// Writes features as an RFC 7946 FeatureCollection: coordinates as given (the caller transforms
/// to longitude/latitude first), rounded to `decimals` places, exterior rings counter-clockwise.
///
/// # Errors
/// [`Error::Io`] if the file cannot be written.
pub fn write(
    path: &Path,
    geometries: &[Option<geo::Geometry<f64>>],
    properties: &[JsonObject],
    foreign: Option<JsonObject>,
    decimals: u32,
) -> Result<()> {
    use geo::orient::{Direction, Orient};
    let scale = 10f64.powi(decimals as i32);
    let features = geometries
        .iter()
        .zip(properties)
        .map(|(g, p)| {
            let geometry = g.as_ref().map(|g| {
                let g = match g {
                    geo::Geometry::Polygon(p) => {
                        geo::Geometry::Polygon(p.orient(Direction::Default))
                    }
                    geo::Geometry::MultiPolygon(p) => {
                        geo::Geometry::MultiPolygon(p.orient(Direction::Default))
                    }
                    other => other.clone(),
                };
                let g = geo::MapCoords::map_coords(&g, |c| geo::Coord {
                    x: (c.x * scale).round() / scale,
                    y: (c.y * scale).round() / scale,
                });
                geojson::Geometry::from(&g)
            });
            Feature {
                bbox: None,
                geometry,
                id: None,
                properties: Some(p.clone()),
                foreign_members: None,
            }
        })
        .collect();
    let fc = FeatureCollection {
        bbox: None,
        features,
        foreign_members: foreign,
    };
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = BufWriter::new(file);
    serde_json::to_writer(&mut w, &fc)
        .map_err(|e| Error::data(Location::default().file(path), e.to_string()))?;
    w.flush().map_err(|e| Error::io(path, e))
}
