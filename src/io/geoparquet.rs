//! GeoParquet 1.1 with WKB geometry: reading and writing through the arrow and parquet crates.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BinaryArray, Float64Array, LargeBinaryArray, RecordBatch, StringArray,
    StructArray,
};
use arrow_schema::{DataType, Field, Schema};
use geo::{BoundingRect, Geometry};
use geo_traits::to_geo::ToGeoGeometry;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use serde_json::json;

use crate::crs::Crs;
use crate::error::{Error, Location, Result};
use crate::io::FeatureLayer;

/// Rows per row group: small enough that the `bbox` column statistics let readers skip groups.
pub const ROW_GROUP_SIZE: usize = 64 * 1024;

fn perr(at: Location, e: impl std::fmt::Display) -> Error {
    Error::Parquet {
        at,
        message: e.to_string(),
    }
}

/// Reads a GeoParquet file (WKB encoding), or a Parquet file with a WKB column named by
/// `geometry_column` and no `geo` metadata.
///
/// The CRS comes from the `geo` metadata: its PROJJSON `crs`, `null` meaning none, a missing key
/// meaning `OGC:CRS84`. Without `geo` metadata the CRS is `None` and the job must name it.
///
/// # Errors
/// [`Error::Io`], [`Error::Parquet`] for unreadable or truncated files, [`Error::Data`] for an
/// unsupported geometry encoding, [`Error::ColumnNotFound`].
///
/// # Panics
/// Never: the geometry column is checked to exist before the batches are read.
pub fn read(
    layer: &str,
    path: &Path,
    columns: &[&str],
    geometry_column: Option<&str>,
) -> Result<FeatureLayer> {
    let at = || Location::layer(layer).file(path);
    crate::io::unpanicked(&at, || read_file(layer, path, columns, geometry_column))?
}

fn read_file(
    layer: &str,
    path: &Path,
    columns: &[&str],
    geometry_column: Option<&str>,
) -> Result<FeatureLayer> {
    let at = || Location::layer(layer).file(path);
    let file = File::open(path).map_err(|e| Error::Io {
        at: at(),
        source: e,
    })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| perr(at(), e))?;
    let geo_meta: Option<serde_json::Value> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == "geo"))
        .and_then(|k| k.value.as_deref())
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| Error::data(at(), format!("invalid `geo` metadata: {e}")))?;
    let geom_col: String = match (geometry_column, &geo_meta) {
        (Some(c), _) => c.to_owned(),
        (None, Some(m)) => m["primary_column"]
            .as_str()
            .ok_or_else(|| Error::data(at(), "`geo` metadata has no primary_column"))?
            .to_owned(),
        (None, None) => {
            return Err(Error::data(
                at(),
                "no `geo` metadata: name the WKB column with `geometry_column` in the job",
            ));
        }
    };
    let mut crs = None;
    let mut encoding = Encoding::Wkb;
    if let Some(m) = &geo_meta {
        let col = &m["columns"][&geom_col];
        if col.is_null() && geometry_column.is_none() {
            return Err(Error::data(
                at().column(&geom_col),
                "`geo` metadata does not describe its primary_column",
            ));
        }
        let name = col["encoding"].as_str().unwrap_or("WKB");
        encoding = Encoding::parse(name, &col["geometry_types"]).ok_or_else(|| {
            Error::data(
                at().column(&geom_col),
                format!(
                    "geometry encoding {name:?} is not supported (WKB, point, linestring, \
                     polygon, multipoint, multilinestring, multipolygon)"
                ),
            )
        })?;
        if !col.is_null() {
            crs = match col.get("crs") {
                None => Some(Crs::lonlat()),
                Some(serde_json::Value::Null) => None,
                Some(v) => Some(Crs::parse(&v.to_string()).map_err(|e| {
                    Error::crs(at().column(&geom_col), format!("PROJJSON crs: {e}"))
                })?),
            };
        }
    }
    let schema = builder.schema().clone();
    let available = || {
        schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>()
    };
    for name in columns.iter().chain(std::iter::once(&geom_col.as_str())) {
        if schema.field_with_name(name).is_err() {
            return Err(Error::column_not_found(at().column(*name), available()));
        }
    }
    let reader = builder.build().map_err(|e| perr(at(), e))?;
    let mut geometries = Vec::new();
    let mut out_cols: Vec<Vec<Option<String>>> = vec![Vec::new(); columns.len()];
    for batch in reader {
        let batch = batch.map_err(|e| perr(at(), e))?;
        let g = batch.column_by_name(&geom_col).expect("checked above");
        encoding
            .decode(g, &mut geometries)
            .map_err(|m| Error::data(at().column(&geom_col), m))?;
        for (c, name) in columns.iter().enumerate() {
            let col = batch.column_by_name(name).expect("checked above");
            let text =
                arrow_cast::cast(col, &DataType::Utf8).map_err(|e| perr(at().column(*name), e))?;
            let text = text
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("cast to Utf8 gives a StringArray");
            out_cols[c].extend(text.iter().map(|v| v.map(str::to_owned)));
        }
    }
    Ok(FeatureLayer {
        path: path.to_owned(),
        crs,
        geometries,
        columns: out_cols,
        unreadable: Vec::new(),
    })
}

/// How a GeoParquet geometry column is encoded: WKB, or one of the GeoArrow native encodings
/// (separated or interleaved coordinates) with its dimension.
#[derive(Debug, Clone, Copy)]
enum Encoding {
    Wkb,
    Native(Native, geoarrow_schema::Dimension),
}

#[derive(Debug, Clone, Copy)]
enum Native {
    Point,
    LineString,
    Polygon,
    MultiPoint,
    MultiLineString,
    MultiPolygon,
}

impl Encoding {
    /// From the `encoding` and `geometry_types` of a column's `geo` metadata.
    fn parse(name: &str, types: &serde_json::Value) -> Option<Encoding> {
        use geoarrow_schema::Dimension;
        let native = match name.to_ascii_lowercase().as_str() {
            "wkb" => return Some(Encoding::Wkb),
            "point" => Native::Point,
            "linestring" => Native::LineString,
            "polygon" => Native::Polygon,
            "multipoint" => Native::MultiPoint,
            "multilinestring" => Native::MultiLineString,
            "multipolygon" => Native::MultiPolygon,
            _ => return None,
        };
        let types: Vec<&str> = types
            .as_array()
            .map(|a| a.iter().filter_map(|t| t.as_str()).collect())
            .unwrap_or_default();
        let dim = if types.iter().any(|t| t.ends_with(" ZM")) {
            Dimension::XYZM
        } else if types.iter().any(|t| t.ends_with(" Z")) {
            Dimension::XYZ
        } else if types.iter().any(|t| t.ends_with(" M")) {
            Dimension::XYM
        } else {
            Dimension::XY
        };
        Some(Encoding::Native(native, dim))
    }

    /// Decodes one batch's geometry column, one entry per row.
    fn decode(
        self,
        col: &ArrayRef,
        out: &mut Vec<std::result::Result<Geometry<f64>, String>>,
    ) -> std::result::Result<(), String> {
        use geo_traits::to_geo::{
            ToGeoLineString, ToGeoMultiLineString, ToGeoMultiPoint, ToGeoMultiPolygon, ToGeoPoint,
            ToGeoPolygon,
        };
        use geoarrow_array::GeoArrowArrayAccessor;
        use geoarrow_array::array as ga;
        use geoarrow_schema as gs;
        let (native, dim) = match self {
            Encoding::Wkb => return read_wkb_column(col, out),
            Encoding::Native(n, d) => (n, d),
        };
        let meta = std::sync::Arc::new(gs::Metadata::default());
        let bad = |e: geoarrow_schema::error::GeoArrowError| {
            format!(
                "not a valid GeoArrow {native:?} column ({}): {e}",
                col.data_type()
            )
        };
        macro_rules! decode {
            ($array:ty, $typ:ty, $to:expr) => {{
                let a = <$array>::try_from((col.as_ref(), <$typ>::new(dim, meta))).map_err(bad)?;
                out.extend(a.iter().map(|g| match g {
                    None => Err("null geometry".to_owned()),
                    Some(Err(e)) => Err(format!("invalid geometry: {e}")),
                    Some(Ok(g)) => $to(&g).ok_or_else(|| "empty geometry".to_owned()),
                }));
            }};
        }
        match native {
            Native::Point => decode!(ga::PointArray, gs::PointType, |g: &_| {
                ToGeoPoint::try_to_point(g).map(Geometry::Point)
            }),
            Native::LineString => decode!(ga::LineStringArray, gs::LineStringType, |g: &_| {
                Some(Geometry::LineString(ToGeoLineString::to_line_string(g)))
            }),
            Native::Polygon => decode!(ga::PolygonArray, gs::PolygonType, |g: &_| {
                Some(Geometry::Polygon(ToGeoPolygon::to_polygon(g)))
            }),
            Native::MultiPoint => decode!(ga::MultiPointArray, gs::MultiPointType, |g: &_| {
                ToGeoMultiPoint::try_to_multi_point(g).map(Geometry::MultiPoint)
            }),
            Native::MultiLineString => {
                decode!(
                    ga::MultiLineStringArray,
                    gs::MultiLineStringType,
                    |g: &_| {
                        Some(Geometry::MultiLineString(
                            ToGeoMultiLineString::to_multi_line_string(g),
                        ))
                    }
                )
            }
            Native::MultiPolygon => {
                decode!(ga::MultiPolygonArray, gs::MultiPolygonType, |g: &_| {
                    Some(Geometry::MultiPolygon(ToGeoMultiPolygon::to_multi_polygon(
                        g,
                    )))
                })
            }
        }
        Ok(())
    }
}

fn read_wkb_column(
    col: &ArrayRef,
    out: &mut Vec<std::result::Result<Geometry<f64>, String>>,
) -> std::result::Result<(), String> {
    let decode = |v: Option<&[u8]>| -> std::result::Result<Geometry<f64>, String> {
        let bytes = v.ok_or("null geometry")?;
        let wkb = wkb::reader::read_wkb(bytes).map_err(|e| format!("invalid WKB: {e}"))?;
        wkb.try_to_geometry()
            .ok_or_else(|| "empty geometry".to_owned())
    };
    if let Some(a) = col.as_any().downcast_ref::<BinaryArray>() {
        out.extend(a.iter().map(decode));
    } else if let Some(a) = col.as_any().downcast_ref::<LargeBinaryArray>() {
        out.extend(a.iter().map(decode));
    } else if let Some(a) = col.as_any().downcast_ref::<arrow_array::BinaryViewArray>() {
        out.extend(a.iter().map(decode));
    } else {
        return Err(format!(
            "geometry column has type {}, expected binary WKB",
            col.data_type()
        ));
    }
    Ok(())
}

/// Encodes a geometry as little-endian WKB.
///
/// # Panics
/// Never: writing WKB into a `Vec` cannot fail.
pub fn to_wkb(g: &Geometry<f64>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(wkb::writer::geometry_wkb_size(g));
    wkb::writer::write_geometry(&mut buf, g, &Default::default())
        .expect("writing WKB to a Vec cannot fail");
    buf
}

fn geometry_type_name(g: &Geometry<f64>) -> &'static str {
    match g {
        Geometry::Point(_) => "Point",
        Geometry::Line(_) | Geometry::LineString(_) => "LineString",
        Geometry::Polygon(_) | Geometry::Rect(_) | Geometry::Triangle(_) => "Polygon",
        Geometry::MultiPoint(_) => "MultiPoint",
        Geometry::MultiLineString(_) => "MultiLineString",
        Geometry::MultiPolygon(_) => "MultiPolygon",
        Geometry::GeometryCollection(_) => "GeometryCollection",
    }
}

/// Writes a GeoParquet 1.1 file: the attribute columns, a WKB `geometry` column, a `bbox`
/// covering column (struct of `xmin`, `ymin`, `xmax`, `ymax`), and `geo` metadata with the
/// PROJJSON CRS, geometry types and overall bbox. zstd compression, row groups of
/// [`ROW_GROUP_SIZE`].
///
/// `extra` is merged into the geometry column's metadata (e.g. provenance of conversions).
///
/// # Errors
/// [`Error::Io`], [`Error::Parquet`], [`Error::Crs`] if the CRS cannot be exported as PROJJSON.
pub fn write(
    path: &Path,
    attributes: Vec<(String, ArrayRef)>,
    geometries: &[Option<Geometry<f64>>],
    crs: &Crs,
    extra: Option<serde_json::Value>,
) -> Result<()> {
    let (schema, batch) = geo_batch(path, attributes, geometries, crs, extra)?;
    write_batch(path, schema, &batch)
}

/// The record batch [`write()`] writes: the attributes, a WKB `geometry` column, the `bbox`
/// covering column, and the GeoParquet `geo` metadata on the schema. `path` only names the
/// place in errors.
///
/// # Errors
/// [`Error::Parquet`] if the columns differ in length, [`Error::Crs`] if the CRS cannot be
/// exported as PROJJSON.
pub fn geo_batch(
    path: &Path,
    attributes: Vec<(String, ArrayRef)>,
    geometries: &[Option<Geometry<f64>>],
    crs: &Crs,
    extra: Option<serde_json::Value>,
) -> Result<(Arc<Schema>, RecordBatch)> {
    let at = || Location::default().file(path);
    let n = geometries.len();
    let mut wkb: Vec<Option<Vec<u8>>> = Vec::with_capacity(n);
    let (mut xmin, mut ymin, mut xmax, mut ymax) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut types: Vec<&str> = Vec::new();
    let mut total: Option<geo::Rect<f64>> = None;
    for g in geometries {
        let rect = g.as_ref().and_then(|g| g.bounding_rect());
        wkb.push(g.as_ref().map(to_wkb));
        if let Some(g) = g {
            let t = geometry_type_name(g);
            if !types.contains(&t) {
                types.push(t);
            }
        }
        xmin.push(rect.map(|r| r.min().x));
        ymin.push(rect.map(|r| r.min().y));
        xmax.push(rect.map(|r| r.max().x));
        ymax.push(rect.map(|r| r.max().y));
        if let Some(r) = rect {
            total = Some(match total {
                None => r,
                Some(t) => geo::Rect::new(
                    geo::coord! { x: t.min().x.min(r.min().x), y: t.min().y.min(r.min().y) },
                    geo::coord! { x: t.max().x.max(r.max().x), y: t.max().y.max(r.max().y) },
                ),
            });
        }
    }
    types.sort_unstable();
    let bbox_fields =
        ["xmin", "ymin", "xmax", "ymax"].map(|n| Arc::new(Field::new(n, DataType::Float64, true)));
    let bbox = StructArray::new(
        bbox_fields.to_vec().into(),
        vec![
            Arc::new(Float64Array::from(xmin)) as ArrayRef,
            Arc::new(Float64Array::from(ymin)),
            Arc::new(Float64Array::from(xmax)),
            Arc::new(Float64Array::from(ymax)),
        ],
        None,
    );
    let geometry = BinaryArray::from_iter(wkb.iter().map(|w| w.as_deref()));
    let mut fields = Vec::new();
    let mut arrays = Vec::new();
    for (name, a) in attributes {
        fields.push(Field::new(name, a.data_type().clone(), true));
        arrays.push(a);
    }
    fields.push(Field::new("geometry", DataType::Binary, true));
    arrays.push(Arc::new(geometry));
    fields.push(Field::new("bbox", bbox.data_type().clone(), true));
    arrays.push(Arc::new(bbox));
    let fields_only = Schema::new(fields);

    let mut column = json!({
        "encoding": "WKB",
        "geometry_types": types,
        "crs": crs.projjson()?,
        "covering": { "bbox": {
            "xmin": ["bbox", "xmin"], "ymin": ["bbox", "ymin"],
            "xmax": ["bbox", "xmax"], "ymax": ["bbox", "ymax"] } },
    });
    if let Some(t) = total {
        column["bbox"] = json!([t.min().x, t.min().y, t.max().x, t.max().y]);
    }
    if let Some(serde_json::Value::Object(extra)) = extra {
        for (k, v) in extra {
            column[k] = v;
        }
    }
    let geo_meta = json!({
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": { "geometry": column },
    });
    let schema = Arc::new(
        fields_only.with_metadata(
            [("geo".to_owned(), geo_meta.to_string())]
                .into_iter()
                .collect(),
        ),
    );
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| perr(at(), e))?;
    Ok((schema, batch))
}

/// Writes one record batch as Parquet (zstd). The schema's metadata (e.g. `geo`) is stored both
/// in the embedded Arrow schema and as the file's key-value metadata, where GeoParquet readers
/// look for it.
///
/// # Errors
/// [`Error::Io`] or [`Error::Parquet`].
///
/// # Panics
/// Never: the compression level used is a valid one.
pub fn write_batch(path: &Path, schema: Arc<Schema>, batch: &RecordBatch) -> Result<()> {
    let at = || Location::default().file(path);
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid level"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_SIZE))
        .set_key_value_metadata(Some(
            schema
                .metadata()
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
                .collect(),
        ))
        .build();
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| perr(at(), e))?;
    w.write(batch).map_err(|e| perr(at(), e))?;
    w.close().map_err(|e| perr(at(), e))?;
    Ok(())
}
