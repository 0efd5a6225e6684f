//! ESRI Shapefile reading (`.shp` + `.shx` + `.dbf`, with `.prj` and `.cpg` when present),
//! through the `shapefile` and `dbase` crates.
//!
//! Government exports are often shapefiles whose DBF text is GBK or GB18030. The code page is
//! taken, in this order, from the job's `encoding`, the `.cpg` file beside the `.shp`, the DBF
//! header's language-driver byte, and otherwise UTF-8. Text that does not decode in that code
//! page is not guessed at: each such value is listed in [`FeatureLayer::unreadable`] with the
//! column and the code page and its source, so the model reports it.

use std::path::{Path, PathBuf};

use dbase::FieldValue;
use geo::Geometry;

use crate::crs::Crs;
use crate::error::{Error, Location, Result};
use crate::io::FeatureLayer;

/// A DBF code page and where it came from (for messages).
#[derive(Debug, Clone, Copy)]
pub struct CodePage {
    /// The text encoding.
    pub encoding: &'static encoding_rs::Encoding,
    /// `job`, `.cpg`, `DBF header` or `default`.
    pub source: &'static str,
}

/// Resolves an encoding label as found in `.cpg` files and jobs: WHATWG labels (`GBK`,
/// `gb18030`, `UTF-8`, `windows-1252`), Windows code-page numbers (`936`, `54936`, `65001`),
/// with or without a `CP` prefix, and `ANSI 936`-style labels.
///
/// # Examples
/// ```
/// use shequ::io::shapefile::encoding_for_label;
/// assert_eq!(encoding_for_label("GBK"), Some(encoding_rs::GBK));
/// assert_eq!(encoding_for_label(" 936\r\n"), Some(encoding_rs::GBK));
/// assert_eq!(encoding_for_label("CP54936"), Some(encoding_rs::GB18030));
/// assert_eq!(encoding_for_label("UTF-8"), Some(encoding_rs::UTF_8));
/// assert_eq!(encoding_for_label("klingon"), None);
/// ```
pub fn encoding_for_label(label: &str) -> Option<&'static encoding_rs::Encoding> {
    let l = label.trim().trim_start_matches('\u{feff}').trim();
    if let Some(e) = encoding_rs::Encoding::for_label(l.as_bytes()) {
        return Some(e);
    }
    let digits = l
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .trim_end();
    let number: u16 = digits.parse().ok()?;
    match number {
        // The codepage crate knows the Windows numbers; 54936 is GB18030.
        54936 => Some(encoding_rs::GB18030),
        n => codepage::to_encoding(n),
    }
}

/// The code page named by a DBF header's language-driver id (byte 29), if it names one.
fn ldid_encoding(ldid: u8) -> Option<&'static encoding_rs::Encoding> {
    let cp = match ldid {
        0x4D | 0x7A => 936, // GBK (PRC)
        0x4E | 0x79 => 949, // Korean
        0x4F | 0x78 => 950, // Big5
        0x13 | 0x7B => 932, // Shift-JIS
        0x57 | 0x00 => return None,
        0x01 => 437,
        0x03 => 1252,
        0xC8 => 1250,
        0xC9 => 1251,
        _ => return None,
    };
    codepage::to_encoding(cp)
}

/// A sibling file of `shp` with extension `ext`, in either case (`.cpg` or `.CPG`).
fn sibling(shp: &Path, ext: &str) -> Option<PathBuf> {
    [ext.to_ascii_lowercase(), ext.to_ascii_uppercase()]
        .into_iter()
        .map(|e| shp.with_extension(e))
        .find(|p| p.exists())
}

/// The code page to decode `shp`'s DBF with: the job's label, else the `.cpg`, else the DBF
/// header's language driver, else UTF-8.
///
/// # Errors
/// [`Error::Data`] if the job's label or the `.cpg` names an unknown encoding.
pub fn code_page(layer: &str, shp: &Path, job: Option<&str>) -> Result<CodePage> {
    let at = |p: &Path| Location::layer(layer).file(p);
    if let Some(label) = job {
        let encoding = encoding_for_label(label).ok_or_else(|| {
            Error::data(
                at(shp),
                format!("unknown DBF encoding {label:?} in the job"),
            )
        })?;
        return Ok(CodePage {
            encoding,
            source: "job",
        });
    }
    if let Some(cpg) = sibling(shp, "cpg") {
        let text = std::fs::read(&cpg).map_err(|e| Error::io(&cpg, e))?;
        let label = String::from_utf8_lossy(&text);
        let encoding = encoding_for_label(&label).ok_or_else(|| {
            Error::data(
                at(&cpg),
                format!(
                    "unknown code page {:?}; set `encoding` in the job",
                    label.trim()
                ),
            )
        })?;
        return Ok(CodePage {
            encoding,
            source: ".cpg",
        });
    }
    if let Some(dbf) = sibling(shp, "dbf") {
        let mut head = [0u8; 32];
        let n = std::fs::File::open(&dbf)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .map_err(|e| Error::io(&dbf, e))?;
        if n == 32 {
            if let Some(encoding) = ldid_encoding(head[29]) {
                return Ok(CodePage {
                    encoding,
                    source: "DBF header",
                });
            }
        }
    }
    Ok(CodePage {
        encoding: encoding_rs::UTF_8,
        source: "default",
    })
}

/// Text of a DBF value: strings as they are (trimmed), whole numbers without a fraction (codes
/// are often stored as numbers), dates as `YYYY-MM-DD`, empty values as `None`.
fn field_text(v: &FieldValue) -> Option<String> {
    let number = |f: f64| {
        if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
            format!("{}", f as i64)
        } else {
            f.to_string()
        }
    };
    match v {
        FieldValue::Character(s) => s.as_deref().map(str::trim).map(str::to_owned),
        FieldValue::Memo(s) => Some(s.trim().to_owned()),
        FieldValue::Numeric(f) => f.map(number),
        FieldValue::Float(f) => f.map(|f| number(f as f64)),
        FieldValue::Double(f) | FieldValue::Currency(f) => Some(number(*f)),
        FieldValue::Integer(i) => Some(i.to_string()),
        FieldValue::Logical(b) => b.map(|b| b.to_string()),
        FieldValue::Date(d) => {
            d.map(|d| format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()))
        }
        FieldValue::DateTime(t) => {
            let d = t.date();
            let c = t.time();
            Some(format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                d.year(),
                d.month(),
                d.day(),
                c.hours(),
                c.minutes(),
                c.seconds()
            ))
        }
    }
}

/// Reads a shapefile: geometry from the `.shp` (and `.shx`), the requested columns from the
/// `.dbf` in the code page chosen by [`code_page`], and the CRS from the `.prj` (ESRI WKT), if
/// any. Null shapes and shapes that do not convert are `Err(reason)` in `geometries`.
///
/// # Examples
/// ```
/// use dbase::{FieldName, TableWriterBuilder};
/// use shapefile::{Point, Writer};
/// let dir = tempfile::tempdir()?;
/// let shp = dir.path().join("grids.shp");
/// // A GBK-encoded DBF, as Chinese Windows GIS tools write it, with a .cpg saying so.
/// let table = TableWriterBuilder::with_encoding(dbase::encoding::EncodingRs::from(encoding_rs::GBK))
///     .add_character_field(FieldName::try_from("code")?, 20)
///     .add_character_field(FieldName::try_from("name")?, 40);
/// let mut w = Writer::from_path(&shp, table)?;
/// let mut rec = dbase::Record::default();
/// rec.insert("code".into(), dbase::FieldValue::Character(Some("G1".into())));
/// rec.insert("name".into(), dbase::FieldValue::Character(Some("解放碑网格".into())));
/// w.write_shape_and_record(&Point::new(106.58, 29.56), &rec)?;
/// drop(w);
/// std::fs::write(dir.path().join("grids.cpg"), "GBK")?;
/// let layer = shequ::io::shapefile::read("grids", &shp, &["code", "name"], None)?;
/// assert_eq!(layer.columns[1][0].as_deref(), Some("解放碑网格"));
/// assert!(layer.unreadable.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Io`] for a missing `.shp`, [`Error::Data`] for a missing `.dbf`, a truncated or
/// malformed file (with the record), or `.shp` and `.dbf` of different lengths;
/// [`Error::ColumnNotFound`]; [`Error::Crs`] for a `.prj` PROJ cannot read.
pub fn read(
    layer: &str,
    path: &Path,
    columns: &[&str],
    encoding: Option<&str>,
) -> Result<FeatureLayer> {
    let at = || Location::layer(layer).file(path);
    if !path.exists() {
        return Err(Error::Io {
            at: at(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    let dbf = sibling(path, "dbf").ok_or_else(|| {
        Error::data(
            at(),
            "a shapefile needs its .dbf beside the .shp (attributes)",
        )
    })?;
    let cp = code_page(layer, path, encoding)?;

    // Geometry.
    let mut shapes = shapefile::ShapeReader::from_path(path)
        .map_err(|e| Error::data(at(), format!("not a readable .shp: {e}")))?;
    let mut geometries = Vec::new();
    for (i, shape) in shapes.iter_shapes().enumerate() {
        let shape = shape.map_err(|e| {
            Error::data(
                at().index(i),
                format!("cannot read shape {i} (truncated?): {e}"),
            )
        })?;
        geometries.push(match shape {
            shapefile::Shape::NullShape => Err("feature has no geometry (null shape)".to_owned()),
            s => Geometry::<f64>::try_from(s).map_err(|e| format!("unusable shape: {e}")),
        });
    }

    // Attributes.
    let dbf_at = || Location::layer(layer).file(&dbf);
    let mut reader = dbase::ReaderBuilder::new()
        .with_encoding(dbase::encoding::EncodingRs::from(cp.encoding))
        .open(&dbf)
        .map_err(|e| Error::data(dbf_at(), format!("not a readable .dbf: {e}")))?;
    let names: Vec<String> = reader
        .fields()
        .iter()
        .map(|f| f.name().to_owned())
        .collect();
    for c in columns {
        if !names.iter().any(|n| n == c) {
            return Err(Error::column_not_found(dbf_at().column(*c), &names));
        }
    }
    let mut out: Vec<Vec<Option<String>>> =
        vec![Vec::with_capacity(geometries.len()); columns.len()];
    let mut unreadable = Vec::new();
    for (i, rec) in reader.iter_records().enumerate() {
        let rec = rec.map_err(|e| {
            Error::data(
                dbf_at().index(i),
                format!("cannot read record {i} (truncated?): {e}"),
            )
        })?;
        for (c, name) in columns.iter().enumerate() {
            let text = rec.get(name).and_then(field_text);
            if text.as_deref().is_some_and(|t| t.contains('\u{FFFD}')) {
                unreadable.push((
                    i,
                    c,
                    format!(
                        "column {name:?}: text is not valid {} (code page from {}); \
                         undecodable bytes shown as U+FFFD; set `encoding` in the job if the \
                         code page is wrong",
                        cp.encoding.name(),
                        cp.source
                    ),
                ));
            }
            out[c].push(text);
        }
    }
    let records = out
        .first()
        .map_or_else(|| reader_len(&dbf), |c| Ok(c.len()))?;
    if records != geometries.len() {
        return Err(Error::data(
            at(),
            format!(
                "the .shp has {} shapes but the .dbf has {records} records",
                geometries.len()
            ),
        ));
    }

    let crs = match sibling(path, "prj") {
        Some(prj) => {
            let wkt = std::fs::read_to_string(&prj).map_err(|e| Error::io(&prj, e))?;
            Some(
                Crs::parse(wkt.trim())
                    .map_err(|e| Error::crs(Location::layer(layer).file(&prj), e.to_string()))?,
            )
        }
        None => None,
    };
    Ok(FeatureLayer {
        path: path.to_owned(),
        crs,
        geometries,
        columns: out,
        unreadable,
    })
}

/// The number of records of a DBF, for a read that asked for no columns.
fn reader_len(dbf: &Path) -> Result<usize> {
    let reader = dbase::Reader::from_path(dbf)
        .map_err(|e| Error::data(Location::default().file(dbf), e.to_string()))?;
    Ok(reader.header().num_records as usize)
}
