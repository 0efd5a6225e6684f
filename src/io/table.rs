//! Rosters (households, residents) from CSV or Parquet, read with polars.
//!
//! CSV exported on Chinese Windows is usually GB18030/GBK, not UTF-8: the encoding is declared in
//! the job (`utf-8`, `gb18030`, `gbk`) or detected (`auto`: UTF-8 if the bytes are valid UTF-8,
//! otherwise GB18030, a superset of GBK). Rows with the wrong number of fields (including a
//! truncated last line) are listed as unreadable and the rest is read.

use std::borrow::Cow;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Location, Result};

/// Text encoding of a CSV file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// UTF-8 if valid, else GB18030.
    #[default]
    Auto,
    /// UTF-8 (a byte-order mark is skipped).
    #[serde(rename = "utf-8", alias = "utf8", alias = "UTF-8")]
    Utf8,
    /// GB18030, which also decodes GBK and GB2312.
    #[serde(alias = "gbk", alias = "gb2312")]
    Gb18030,
}

/// A roster table: the requested columns as text, plus what could not be read.
#[derive(Debug, Clone)]
pub struct Table {
    /// The file read.
    pub path: PathBuf,
    /// The requested columns, one chunk each: of type `String`, except columns requested as
    /// numbers ([`read_table_with`]) that are numeric in the file, which are `Float64`.
    pub frame: DataFrame,
    /// For each row of `frame`, its 0-based data-row index in the file, when some rows were
    /// unreadable (`None` means row `i` is data row `i`).
    pub source_rows: Option<Vec<u32>>,
    /// Data rows in the file, readable or not.
    pub rows_read: usize,
    /// Unreadable data rows: (0-based data-row index, reason).
    pub unreadable: Vec<(usize, String)>,
}

impl Table {
    /// The 0-based data-row index in the file of frame row `i`.
    pub fn source_row(&self, i: usize) -> usize {
        self.source_rows.as_ref().map_or(i, |r| r[i] as usize)
    }

    /// A requested column as a string column.
    ///
    /// # Panics
    /// If `name` was not requested when reading (a programming error).
    pub fn text(&self, name: &str) -> &StringChunked {
        self.frame
            .column(name)
            .and_then(|c| c.str())
            .expect("requested column of type String")
    }

    /// A requested column with fast random access ([`TextColumn`]).
    ///
    /// # Panics
    /// As [`text`](Self::text).
    pub fn text_column(&self, name: &str) -> TextColumn<'_> {
        TextColumn::new(self.text(name))
    }

    /// A column requested as numbers that is numeric in the file, as `Float64`; `None` when
    /// it is text (read it with [`text`](Self::text) and parse it).
    pub fn numbers(&self, name: &str) -> Option<&Float64Chunked> {
        self.frame.column(name).ok().and_then(|c| c.f64().ok())
    }
}

/// A text column with random access by row, straight into its Arrow arrays (polars' own
/// `get` searches for the chunk on every call).
///
/// # Examples
/// ```
/// use polars::prelude::*;
/// let mut c = StringChunked::from_iter([Some("H1"), None]);
/// c.append(&StringChunked::from_iter([Some("H3")])).unwrap(); // a second chunk
/// let t = shequ::io::table::TextColumn::new(&c);
/// assert_eq!((t.get(0), t.get(1), t.get(2), t.get(3), t.len()), (Some("H1"), None, Some("H3"), None, 3));
/// ```
#[derive(Clone)]
pub struct TextColumn<'a> {
    chunks: Vec<&'a <StringType as PolarsDataType>::Array>,
    /// The first row of each chunk, and the number of rows at the end.
    starts: Vec<usize>,
}

impl<'a> TextColumn<'a> {
    /// Random access to `c`.
    pub fn new(c: &'a StringChunked) -> TextColumn<'a> {
        let chunks: Vec<_> = c.downcast_iter().collect();
        let mut starts = Vec::with_capacity(chunks.len() + 1);
        let mut at = 0;
        for a in &chunks {
            starts.push(at);
            at += a.len();
        }
        starts.push(at);
        TextColumn { chunks, starts }
    }

    /// Row `i`'s text (`None` if null or out of range).
    #[inline]
    pub fn get(&self, i: usize) -> Option<&'a str> {
        if let [one] = self.chunks.as_slice() {
            return if i < one.len() { one.get(i) } else { None };
        }
        if i >= self.len() {
            return None;
        }
        // The last chunk starting at or before `i`.
        let k = self.starts.partition_point(|&s| s <= i) - 1;
        self.chunks[k].get(i - self.starts[k])
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.starts.last().copied().unwrap_or(0)
    }

    /// True if the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads the named columns of a CSV or Parquet table (chosen by extension).
///
/// # Examples
/// ```
/// use shequ::io::table::{read_table, Encoding};
/// let dir = tempfile::tempdir()?;
/// let p = dir.path().join("hh.csv");
/// std::fs::write(&p, "id,building\nH1,B1\nH2\n")?;
/// let t = read_table("households", &p, &["id", "building"], Encoding::Auto)?;
/// assert_eq!(t.rows_read, 2);
/// assert_eq!(t.frame.height(), 1);
/// assert_eq!(t.unreadable[0].0, 1); // the second data row has a field missing
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Io`]; [`Error::Data`] for undecodable text (with line) or a file with no header;
/// [`Error::Polars`] for an unreadable Parquet file; [`Error::ColumnNotFound`].
pub fn read_table(layer: &str, path: &Path, columns: &[&str], encoding: Encoding) -> Result<Table> {
    read_table_with(layer, path, columns, &[], &[], encoding)
}

/// [`read_table`], with some of the `columns` wanted as numbers: those that are numeric in the
/// file (a Parquet integer or float column) come as `Float64` ([`Table::numbers`]) instead of
/// text, so coordinates are not printed and parsed again. Text columns (all of a CSV) stay
/// text. `optional` columns are read too when the file has them (and skipped silently when
/// not).
///
/// # Examples
/// ```
/// use shequ::io::table::{read_table_with, Encoding};
/// let dir = tempfile::tempdir()?;
/// let p = dir.path().join("hh.csv");
/// std::fs::write(&p, "id,lon\nH1,106.5\n")?;
/// let t = read_table_with("households", &p, &["id", "lon"], &["lon"], &["lat"], Encoding::Auto)?;
/// assert!(t.numbers("lon").is_none()); // CSV: text, parsed by the caller
/// assert!(t.frame.column("lat").is_err()); // optional, and not in the file
/// assert_eq!(t.text("lon").get(0), Some("106.5"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As [`read_table`].
pub fn read_table_with(
    layer: &str,
    path: &Path,
    columns: &[&str],
    numbers: &[&str],
    optional: &[&str],
    encoding: Encoding,
) -> Result<Table> {
    let with_optional = |has: &dyn Fn(&str) -> bool| -> Vec<&str> {
        let mut all: Vec<&str> = columns.to_vec();
        for c in optional {
            if has(c) && !all.contains(c) {
                all.push(c);
            }
        }
        all
    };
    let mut columns: Vec<&str> = columns.to_vec();
    let at = || Location::layer(layer).file(path);
    let ext = crate::io::extension(path);
    let (frame, source_rows, rows_read, unreadable) = match ext.as_str() {
        "csv" | "txt" | "tsv" => {
            let bytes = std::fs::read(path).map_err(|e| Error::Io {
                at: at(),
                source: e,
            })?;
            let text = decode(&bytes, encoding).map_err(|m| Error::data(at(), m))?;
            let sep = if ext == "tsv" { b'\t' } else { b',' };
            let scan = scan_records(text.as_bytes(), sep).map_err(|m| Error::data(at(), m))?;
            // Unknown columns are reported with the header's names; then polars parses only the
            // requested columns.
            if let Some(missing) = columns
                .iter()
                .find(|c| !scan.header.iter().any(|h| h == *c))
            {
                return Err(Error::ColumnNotFound {
                    at: at().column(*missing),
                    available: scan.header.join(", "),
                });
            }
            columns = with_optional(&|c| scan.header.iter().any(|h| h == c));
            let projection: Arc<[PlSmallStr]> =
                columns.iter().map(|c| PlSmallStr::from(*c)).collect();
            let clean = match &scan.keep {
                None => text.into_bytes(),
                Some(ranges) => {
                    let mut buf = Vec::with_capacity(text.len());
                    for r in ranges {
                        buf.extend_from_slice(&text.as_bytes()[r.clone()]);
                        if buf.last() != Some(&b'\n') {
                            buf.push(b'\n');
                        }
                    }
                    buf
                }
            };
            let df = CsvReadOptions::default()
                .with_has_header(true)
                .with_infer_schema_length(Some(0))
                .with_columns(Some(projection))
                .map_parse_options(|o| o.with_separator(sep))
                .into_reader_with_file_handle(Cursor::new(clean))
                .finish()
                .map_err(|e| Error::Polars {
                    at: at(),
                    source: Box::new(e),
                })?;
            (df, scan.source_rows, scan.rows, scan.bad)
        }
        "parquet" => {
            let file = std::fs::File::open(path).map_err(|e| Error::Io {
                at: at(),
                source: e,
            })?;
            let polars_err = |e| Error::Polars {
                at: at(),
                source: Box::new(e),
            };
            let mut reader = ParquetReader::new(file);
            let schema = reader.schema().map_err(polars_err)?;
            if let Some(missing) = columns.iter().find(|c| schema.get(c).is_none()) {
                return Err(Error::ColumnNotFound {
                    at: at().column(*missing),
                    available: schema
                        .iter_names()
                        .map(|n| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            columns = with_optional(&|c| schema.get(c).is_some());
            let mut wanted: Vec<String> = columns.iter().map(|c| (*c).to_owned()).collect();
            wanted.dedup();
            let df = reader
                .with_columns(Some(wanted))
                .finish()
                .map_err(polars_err)?;
            let n = df.height();
            (df, None, n, Vec::new())
        }
        other => {
            return Err(Error::data(
                at(),
                format!("unknown table format {other:?}; use .csv or .parquet"),
            ));
        }
    };
    let names: Vec<String> = frame
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut cols = Vec::with_capacity(columns.len());
    for name in &columns {
        let c = frame.column(name).map_err(|_| Error::ColumnNotFound {
            at: at().column(*name),
            available: names.join(", "),
        })?;
        let target = if numbers.contains(name) && c.dtype().is_primitive_numeric() {
            DataType::Float64
        } else {
            DataType::String
        };
        let c = c.cast(&target).map_err(|e| Error::Polars {
            at: at().column(*name),
            source: Box::new(e),
        })?;
        // Text columns keep the reader's chunks (one per Parquet row group, for example):
        // joining them copies every string view of a roster of millions, and [`TextColumn`]
        // reads across chunks. Numbers are small enough to join.
        cols.push(if target == DataType::String {
            c
        } else {
            c.rechunk()
        });
    }
    let frame = DataFrame::new_infer_height(cols).map_err(|e| Error::Polars {
        at: at(),
        source: Box::new(e),
    })?;
    Ok(Table {
        path: path.to_owned(),
        frame,
        source_rows,
        rows_read,
        unreadable,
    })
}

fn decode(bytes: &[u8], encoding: Encoding) -> std::result::Result<String, String> {
    let utf8 = |b: &[u8]| {
        let b = b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b);
        std::str::from_utf8(b).map(str::to_owned).map_err(|e| {
            let upto = e.valid_up_to();
            let line = bytes[..upto].iter().filter(|&&c| c == b'\n').count() + 1;
            format!(
                "not valid UTF-8 at line {line} (byte {upto}); if the file is GBK/GB18030 set encoding = \"gb18030\""
            )
        })
    };
    match encoding {
        Encoding::Utf8 => utf8(bytes),
        Encoding::Auto => utf8(bytes).or_else(|_| decode(bytes, Encoding::Gb18030)),
        Encoding::Gb18030 => {
            let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
            if had_errors {
                let pos = text.find('\u{FFFD}').unwrap_or(0);
                let line = text[..pos].matches('\n').count() + 1;
                return Err(format!("not valid GB18030 text at line {line}"));
            }
            Ok(text.into_owned())
        }
    }
}

struct Scan {
    header: Vec<String>,
    rows: usize,
    bad: Vec<(usize, String)>,
    keep: Option<Vec<std::ops::Range<usize>>>,
    source_rows: Option<Vec<u32>>,
}

/// Finds rows whose field count differs from the header's. When there are none, nothing is
/// copied.
fn scan_records(bytes: &[u8], sep: u8) -> std::result::Result<Scan, String> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .delimiter(sep)
        .from_reader(bytes);
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| format!("cannot read the header: {e}"))?
        .iter()
        .map(str::to_owned)
        .collect();
    let width = header.len();
    if width == 0 {
        return Err("the file has no header row".into());
    }
    let mut rec = csv::ByteRecord::new();
    let mut starts: Vec<(usize, bool)> = Vec::new();
    let mut bad = Vec::new();
    let header_end = rdr.position().byte() as usize;
    let mut row = 0usize;
    loop {
        let start = rdr.position().byte() as usize;
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {
                let ok = rec.len() == width;
                if !ok {
                    let line = rec.position().map_or(0, |p| p.line());
                    bad.push((
                        row,
                        format!("line {line}: {} fields, the header has {width}", rec.len()),
                    ));
                }
                starts.push((start, ok));
            }
            Err(e) => {
                bad.push((row, format!("unreadable: {e}")));
                starts.push((start, false));
            }
        }
        row += 1;
    }
    if bad.is_empty() {
        return Ok(Scan {
            header,
            rows: row,
            bad,
            keep: None,
            source_rows: None,
        });
    }
    let end = bytes.len();
    let mut keep = Vec::with_capacity(starts.len() + 1);
    keep.push(0..header_end);
    let mut source_rows = Vec::new();
    for (i, &(s, ok)) in starts.iter().enumerate() {
        if ok {
            let e = starts.get(i + 1).map_or(end, |n| n.0);
            keep.push(s..e);
            source_rows.push(i as u32);
        }
    }
    Ok(Scan {
        header,
        rows: row,
        bad,
        keep: Some(keep),
        source_rows: Some(source_rows),
    })
}

/// Normalises a number written by hand: trims ASCII and full-width spaces and maps full-width
/// digits, point and minus to ASCII, then parses.
///
/// # Examples
/// ```
/// use shequ::io::table::parse_number;
/// assert_eq!(parse_number(" １０６．５ "), Some(106.5));
/// assert_eq!(parse_number("abc"), None);
/// assert_eq!(parse_number(""), None);
/// ```
pub fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim_matches(|c: char| c.is_whitespace() || c == '\u{3000}');
    if t.is_ascii() {
        return t.parse().ok().filter(|v: &f64| v.is_finite());
    }
    let mapped: String = t
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
            '．' => '.',
            '－' => '-',
            '＋' => '+',
            other => other,
        })
        .collect();
    mapped.parse().ok().filter(|v: &f64| v.is_finite())
}

/// Trims a code (ASCII and full-width spaces) and maps full-width digits and letters to ASCII;
/// `None` if nothing is left.
///
/// # Examples
/// ```
/// use shequ::io::table::clean_code;
/// assert_eq!(clean_code(" ００１２ ").as_deref(), Some("0012"));
/// assert_eq!(clean_code("   "), None);
/// ```
pub fn clean_code(s: &str) -> Option<String> {
    clean_code_ref(s).map(Cow::into_owned)
}

/// [`clean_code`] without allocating when the code is already clean ASCII.
///
/// # Examples
/// ```
/// use std::borrow::Cow;
/// use shequ::io::table::clean_code_ref;
/// assert!(matches!(clean_code_ref(" H01 "), Some(Cow::Borrowed("H01"))));
/// assert_eq!(clean_code_ref("Ｈ０１").as_deref(), Some("H01"));
/// ```
pub fn clean_code_ref(s: &str) -> Option<Cow<'_, str>> {
    let t = s.trim_matches(|c: char| c.is_whitespace() || c == '\u{3000}');
    if t.is_empty() {
        return None;
    }
    if t.is_ascii() {
        return Some(Cow::Borrowed(t));
    }
    Some(Cow::Owned(
        t.chars()
            .map(|c| match c {
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                other => other,
            })
            .collect(),
    ))
}
