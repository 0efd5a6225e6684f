//! The in-memory form of a roster table and its text encodings (shared by the whole-file and
//! the chunked readers).

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
    /// numbers ([`read_table_with`](super::table::read_table_with)) that are numeric in the file, which are `Float64`.
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

/// The error of a file whose text cannot be decoded (or read) any further, from the CSV
/// parser's error; `None` for an error of one record.
pub(crate) fn decode_error(e: &csv::Error, at: &dyn Fn() -> Location) -> Option<Error> {
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

/// The rows' own data-row numbers and their first rows, from the two columns (numbers, or
/// text holding whole numbers).
pub(crate) fn row_numbers(
    t: &Table,
    rows: &str,
    first: &str,
    at: &dyn Fn(usize) -> Location,
) -> Result<(Vec<u32>, Vec<Option<u32>>)> {
    let n = t.frame.height();
    let (own, firsts) = (row_column(t, rows, at)?, row_column(t, first, at)?);
    let mut r = Vec::with_capacity(n);
    for (i, v) in own.into_iter().enumerate() {
        r.push(v.ok_or_else(|| Error::data(at(i).column(rows), "no row number"))?);
    }
    Ok((r, firsts))
}

/// A column of row numbers: each a whole number from 0 to `u32::MAX`, or empty.
pub(crate) fn row_column(
    t: &Table,
    name: &str,
    at: &dyn Fn(usize) -> Location,
) -> Result<Vec<Option<u32>>> {
    let whole = |v: Option<f64>, i: usize| -> Result<Option<u32>> {
        match v {
            None => Ok(None),
            Some(x) if x >= 0.0 && x.fract() == 0.0 && x <= f64::from(u32::MAX) => {
                Ok(Some(x as u32))
            }
            Some(x) => Err(Error::data(
                at(i).column(name),
                format!("{x} is not a row number"),
            )),
        }
    };
    let n = t.frame.height();
    if let Some(c) = t.numbers(name) {
        return (0..n).map(|i| whole(c.get(i), i)).collect();
    }
    let c = t.text_column(name);
    (0..n)
        .map(|i| {
            let v = c
                .get(i)
                .map(crate::io::table::trim)
                .filter(|v| !v.is_empty());
            let x = v
                .map(|v| {
                    v.parse::<f64>().map_err(|_| {
                        Error::data(at(i).column(name), format!("{v:?} is not a row number"))
                    })
                })
                .transpose()?;
            whole(x, i)
        })
        .collect()
}
