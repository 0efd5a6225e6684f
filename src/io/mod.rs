//! Reading and writing layers and tables.

/// Tables read a chunk of rows at a time.
pub mod chunks;
/// Text files decoded as they are read.
mod decode;
/// GeoJSON (RFC 7946) features.
pub mod geojson;
/// GeoParquet 1.1 with WKB geometry.
pub mod geoparquet;
/// The in-memory form of a roster table.
pub(crate) mod rows;
/// ESRI Shapefiles, with the DBF code page from the job, the `.cpg` or the DBF header.
pub mod shapefile;
/// Spreadsheets (`.xlsx`, `.xls`, `.ods`) through calamine, the header found below title rows.
pub mod sheet;
/// CSV and Parquet rosters, read with polars.
pub mod table;

use std::path::{Path, PathBuf};

use geo::Geometry;

use crate::crs::Crs;
use crate::error::{Error, Location, Result};

/// The features of a spatial layer as read from a file, before any checking.
///
/// `geometries[i]` is `Err(reason)` when feature `i` has no usable geometry;
/// `columns[c][i]` is the value of the `c`-th requested column for feature `i`, as text.
#[derive(Debug, Clone)]
pub struct FeatureLayer {
    /// The file read.
    pub path: PathBuf,
    /// The CRS the file declares, if any.
    pub crs: Option<Crs>,
    /// One entry per feature.
    pub geometries: Vec<std::result::Result<Geometry<f64>, String>>,
    /// Requested columns, in request order.
    pub columns: Vec<Vec<Option<String>>>,
    /// Values whose text could not be decoded: (feature, requested column, message). The value
    /// in `columns` keeps U+FFFD in place of the undecodable bytes.
    pub unreadable: Vec<(usize, usize, String)>,
}

/// How to read a spatial file, beyond its path and columns.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions<'a> {
    /// The WKB column of a Parquet file without `geo` metadata.
    pub geometry_column: Option<&'a str>,
    /// The text encoding of a shapefile's DBF (overrides its `.cpg`).
    pub encoding: Option<&'a str>,
}

impl FeatureLayer {
    /// Number of features.
    pub fn len(&self) -> usize {
        self.geometries.len()
    }

    /// True if the layer has no features.
    pub fn is_empty(&self) -> bool {
        self.geometries.is_empty()
    }
}

/// Reads a GeoJSON, GeoParquet or Shapefile layer, chosen by extension (`.geojson`/`.json`,
/// `.parquet`/`.geoparquet`, `.shp`).
///
/// # Examples
/// ```
/// let dir = tempfile::tempdir()?;
/// let p = dir.path().join("f.geojson");
/// std::fs::write(&p, r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"code":"F1"},"geometry":{"type":"Point","coordinates":[106.5,29.5]}},
///   {"type":"Feature","properties":{"code":"F2"},"geometry":null}]}"#)?;
/// let layer = shequ::io::read_features("facilities", &p, &["code"], Default::default())?;
/// assert_eq!(layer.len(), 2);
/// assert!(layer.geometries[0].is_ok() && layer.geometries[1].is_err());
/// assert_eq!(layer.columns[0][1].as_deref(), Some("F2"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// `columns` are the properties to extract; see [`ReadOptions`] for the rest.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read, [`Error::Data`] if it is not valid GeoJSON or
/// Parquet (e.g. truncated), [`Error::ColumnNotFound`] if a requested column is absent.
pub fn read_features(
    layer: &str,
    path: &Path,
    columns: &[&str],
    opts: ReadOptions,
) -> Result<FeatureLayer> {
    match extension(path).as_str() {
        "geojson" | "json" => geojson::read(layer, path, columns),
        "parquet" | "geoparquet" => geoparquet::read(layer, path, columns, opts.geometry_column),
        "shp" => shapefile::read(layer, path, columns, opts.encoding),
        other => Err(Error::data(
            Location::layer(layer).file(path),
            format!("unknown spatial format {other:?}; use .geojson, .parquet or .shp"),
        )),
    }
}

pub(crate) fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// The CRS of a spatial layer and where it came from (`job`, `file` or `default`): the job's
/// `crs` wins, then the file's own declaration; a GeoJSON file without one is longitude/latitude
/// (RFC 7946); a Parquet or Shapefile layer without one (no `geo` metadata CRS, no `.prj`) is
/// refused, since nothing says what its numbers are.
///
/// # Errors
/// [`Error::Crs`] naming the layer and file, for a job `crs` PROJ cannot use or a file that
/// declares none where one is needed.
pub(crate) fn layer_crs(
    layer: &str,
    path: &Path,
    job_crs: Option<&str>,
    file_crs: Option<&Crs>,
) -> Result<(Crs, &'static str)> {
    let at = || Location::layer(layer).file(path);
    match (job_crs, file_crs) {
        (Some(c), _) => Ok((Crs::parse(c).map_err(|e| e.located(at()))?, "job")),
        (None, Some(c)) => Ok((c.clone(), "file")),
        (None, None) if matches!(extension(path).as_str(), "parquet" | "shp") => Err(Error::crs(
            at(),
            "the file declares no CRS (no `.prj` beside a shapefile, no CRS in GeoParquet \
             metadata); set `crs` in the job",
        )),
        (None, None) => Ok((Crs::lonlat(), "default")),
    }
}

/// Runs a Parquet reader (polars' or the `parquet` crate's), turning a panic inside it into a
/// located error: on some damaged files (a page header with a negative value count, a thrift
/// field past the end of the footer, a bit-packed run longer than its buffer: all found by the
/// fuzz targets) they assert or index out of bounds instead of returning an error. The default
/// panic hook still prints the reader's own line on standard error.
pub(crate) fn unpanicked<T>(at: &dyn Fn() -> Location, f: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        let why = p
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Error::data(
            at(),
            format!(
                "not a readable Parquet file (the reader failed: {})",
                crate::error::excerpt(&why)
            ),
        )
    })
}
