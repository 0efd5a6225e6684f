//! Rosters (households, residents) from CSV or Parquet, as polars frames.
//!
//! CSV exported on Chinese Windows is usually GB18030/GBK, not UTF-8: the encoding is declared in
//! the job (`utf-8`, `gb18030`, `gbk`) or detected (`auto`: UTF-8 if the bytes are valid UTF-8,
//! otherwise GB18030, a superset of GBK). One parser (the `csv` crate) reads the header and the
//! rows, so the rows counted, kept and reported always agree: line ends may be `\n`, `\r\n`
//! or a lone `\r` (old Mac exports); empty lines are not rows, as in pandas; a line of
//! separators only is a row whose fields are all empty; header names are trimmed. Rows with the
//! wrong number of fields (including a truncated last line) are listed as unreadable, with their
//! line, and the rest is read. Parquet is read by polars.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Location, Result, excerpt};

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
            let io = |e| Error::Io {
                at: at(),
                source: e,
            };
            let scan = crate::io::decode::scan(path).map_err(io)?;
            let text = crate::io::decode::open(path, encoding, &scan).map_err(|e| match e {
                Ok(e) => io(e),
                Err(m) => Error::data(at(), m),
            })?;
            let sep = if ext == "tsv" { b'\t' } else { b',' };
            let rows_estimate = scan.line_breaks + 1;
            let csv = read_csv(text, rows_estimate, sep, &columns, optional, &at)?;
            columns = csv.columns;
            (csv.frame, csv.source_rows, csv.rows, csv.bad)
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
            let schema = crate::io::unpanicked(&at, || reader.schema())?.map_err(polars_err)?;
            if let Some(missing) = columns.iter().find(|c| schema.get(c).is_none()) {
                return Err(Error::column_not_found(
                    at().column(*missing),
                    schema.iter_names().map(|n| n.as_str()),
                ));
            }
            columns = with_optional(&|c| schema.get(c).is_some());
            let mut wanted: Vec<String> = columns.iter().map(|c| (*c).to_owned()).collect();
            wanted.dedup();
            let df = crate::io::unpanicked(&at, || reader.with_columns(Some(wanted)).finish())?
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
    let mut cols = Vec::with_capacity(columns.len());
    for name in &columns {
        let c = frame.column(name).map_err(|_| {
            Error::column_not_found(
                at().column(*name),
                frame.get_column_names().iter().map(|n| n.as_str()),
            )
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

/// A CSV file's requested columns, read by the `csv` crate.
struct Csv<'c> {
    /// The requested columns the file has, required first.
    columns: Vec<&'c str>,
    frame: DataFrame,
    rows: usize,
    bad: Vec<(usize, String)>,
    source_rows: Option<Vec<u32>>,
}

/// Reads the requested columns of a CSV text with one parser, the `csv` crate, so that the
/// header, the rows counted and the rows kept always agree: line ends may be `\n`, `\r\n` or
/// a lone `\r`; empty lines are not rows (as in pandas); a line of separators only is a row
/// whose fields are all empty; header names are trimmed; a row whose field count differs
/// from the header's is listed as unreadable, with its line, and the rest is read. Empty
/// fields are null.
fn read_csv<'c>(
    text: impl std::io::Read,
    rows_estimate: usize,
    sep: u8,
    columns: &[&'c str],
    optional: &[&'c str],
    at: &dyn Fn() -> Location,
) -> Result<Csv<'c>> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .delimiter(sep)
        .from_reader(text);
    let header: Vec<String> = rdr
        .byte_headers()
        .map_err(|e| match decode_error(&e, at) {
            Some(e) => e,
            None => Error::data(at(), format!("cannot read the header: {e}")),
        })?
        .iter()
        .map(|h| {
            let h = String::from_utf8_lossy(h);
            h.trim_matches(|c: char| c.is_whitespace() || c == '\u{3000}' || c == '\u{FEFF}')
                .to_owned()
        })
        .collect();
    let width = header.len();
    if header.iter().all(String::is_empty) {
        return Err(Error::data(at(), "the file has no header row"));
    }
    let position = |name: &str| -> Result<Option<usize>> {
        let mut found = header.iter().enumerate().filter(|(_, h)| *h == name);
        match (found.next(), found.next()) {
            (Some((a, _)), Some((b, _))) => Err(Error::data(
                at().column(name),
                format!(
                    "the header names this column twice (columns {} and {})",
                    a + 1,
                    b + 1
                ),
            )),
            (first, _) => Ok(first.map(|(i, _)| i)),
        }
    };
    let mut wanted: Vec<(&'c str, usize)> = Vec::with_capacity(columns.len() + optional.len());
    for c in columns {
        match position(c)? {
            Some(i) if !wanted.iter().any(|(n, _)| n == c) => wanted.push((c, i)),
            Some(_) => {}
            None => return Err(Error::column_not_found(at().column(*c), &header)),
        }
    }
    for c in optional {
        if let Some(i) = position(c)? {
            if !wanted.iter().any(|(n, _)| n == c) {
                wanted.push((c, i));
            }
        }
    }
    let mut builders: Vec<StringChunkedBuilder> = wanted
        .iter()
        .map(|(n, _)| StringChunkedBuilder::new(PlSmallStr::from(*n), rows_estimate))
        .collect();
    let mut rec = csv::ByteRecord::new();
    let (mut rows, mut bad, mut kept) = (0usize, Vec::new(), Vec::new());
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) if rec.len() == width => {
                for ((_, i), b) in wanted.iter().zip(&mut builders) {
                    // The text was decoded, and fields split at ASCII separators, so every
                    // field is UTF-8.
                    match std::str::from_utf8(&rec[*i]) {
                        Ok("") | Err(_) => b.append_null(),
                        Ok(v) => b.append_value(v),
                    }
                }
                kept.push(rows as u32);
            }
            Ok(true) => {
                let line = rec.position().map_or(0, |p| p.line());
                bad.push((
                    rows,
                    format!("line {line}: {} fields, the header has {width}", rec.len()),
                ));
            }
            Err(e) => match decode_error(&e, at) {
                // The text itself cannot be read on: the whole file is refused.
                Some(e) => return Err(e),
                None => bad.push((rows, format!("unreadable: {}", excerpt(&e.to_string())))),
            },
        }
        rows += 1;
    }
    let cols: Vec<Column> = builders
        .into_iter()
        .map(|b| b.finish().into_series().into_column())
        .collect();
    let frame = DataFrame::new(kept.len(), cols).map_err(|e| Error::Polars {
        at: at(),
        source: Box::new(e),
    })?;
    Ok(Csv {
        columns: wanted.into_iter().map(|(n, _)| n).collect(),
        frame,
        rows,
        source_rows: (!bad.is_empty()).then_some(kept),
        bad,
    })
}

/// The error of a file whose text cannot be decoded (or read) any further, from the CSV
/// parser's error; `None` for an error of one record.
fn decode_error(e: &csv::Error, at: &dyn Fn() -> Location) -> Option<Error> {
    match e.kind() {
        csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            Some(Error::data(at(), io.to_string()))
        }
        csv::ErrorKind::Io(io) => Some(Error::Io {
            at: at(),
            source: std::io::Error::new(io.kind(), io.to_string()),
        }),
        _ => None,
    }
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
