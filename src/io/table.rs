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

use chrono::NaiveDate;
use std::borrow::Cow;
use std::path::Path;

use polars::prelude::*;

use crate::error::{Error, Location, Result};
use crate::io::chunks::TableChunks;

pub use crate::io::rows::{Encoding, Table, TextColumn};

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
    let mut chunks = TableChunks::open(
        layer,
        path,
        columns,
        numbers,
        optional,
        encoding,
        usize::MAX,
    )?;
    match chunks.next_chunk()? {
        Some(t) => Ok(t),
        None => {
            let cols = chunks
                .columns()
                .iter()
                .map(|c| Column::new_empty(c.as_str().into(), &DataType::String))
                .collect();
            Ok(Table {
                path: path.to_owned(),
                frame: DataFrame::new(0, cols).map_err(|e| Error::Polars {
                    at: Location::layer(layer).file(path),
                    source: Box::new(e),
                })?,
                source_rows: None,
                rows_read: 0,
                unreadable: Vec::new(),
            })
        }
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
    let t = trim(s);
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

/// `s` without leading and trailing whitespace, as [`str::trim`] gives it, but without
/// decoding a character when the first and the last cannot be whitespace (the common case:
/// cells are read millions of times).
///
/// # Examples
/// ```
/// use shequ::io::table::trim;
/// for s in ["C1", " C1 ", "\u{3000}社区\u{3000}", "市容环境", "a\u{a0}", "\t", ""] {
///     assert_eq!(trim(s), s.trim());
/// }
/// ```
#[inline]
pub fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    let (Some(&first), Some(last)) = (b.first(), b.len().checked_sub(1)) else {
        return s;
    };
    // The lead byte of the last character: at most three continuation bytes back.
    let mut l = last;
    while l > 0 && last - l < 3 && b[l] & 0xC0 == 0x80 {
        l -= 1;
    }
    if never_whitespace(first) && never_whitespace(b[l]) {
        s
    } else {
        s.trim()
    }
}

/// True when a character starting with byte `b` cannot be whitespace: ASCII other than
/// space and the controls, or a lead byte no whitespace character uses (every Unicode space
/// starts with 0xC2, 0xE1, 0xE2 or 0xE3).
#[inline]
fn never_whitespace(b: u8) -> bool {
    (0x21..0x80).contains(&b) || (b >= 0xC0 && !matches!(b, 0xC2 | 0xE1 | 0xE2 | 0xE3))
}

/// Parses a roster birth date: `19560312`, `1956-03-12`, `1956/3/12`, `1956.3.12` or
/// `1956年3月12日` (full-width digits too).
///
/// # Examples
/// ```
/// use shequ::io::table::parse_birth_date;
/// let d = chrono::NaiveDate::from_ymd_opt(1956, 3, 12);
/// for s in ["19560312", "1956-03-12", "1956/3/12", "1956年3月12日", " １９５６-３-１２ "] {
///     assert_eq!(parse_birth_date(s), d, "{s}");
/// }
/// assert_eq!(parse_birth_date("1956-02-30"), None);
/// assert_eq!(parse_birth_date(""), None);
/// ```
pub fn parse_birth_date(s: &str) -> Option<NaiveDate> {
    let mut parts = [0u32; 3];
    let mut n = 0usize;
    let mut digits = 0usize;
    let mut all = 0u64;
    let mut total_digits = 0usize;
    for ch in s.trim().chars() {
        let d = match ch {
            '0'..='9' => Some(ch as u32 - '0' as u32),
            '０'..='９' => Some(ch as u32 - '０' as u32),
            _ => None,
        };
        match d {
            Some(d) => {
                if n >= 3 {
                    return None;
                }
                parts[n] = parts[n] * 10 + d;
                digits += 1;
                total_digits += 1;
                all = all * 10 + u64::from(d);
            }
            None => {
                if digits > 0 {
                    n += 1;
                    digits = 0;
                }
            }
        }
    }
    if digits > 0 {
        n += 1;
    }
    let (y, m, d) = match n {
        1 if total_digits == 8 => (
            (all / 10_000) as u32,
            (all / 100 % 100) as u32,
            (all % 100) as u32,
        ),
        3 => (parts[0], parts[1], parts[2]),
        _ => return None,
    };
    if !(1880..=2200).contains(&y) {
        return None;
    }
    NaiveDate::from_ymd_opt(y as i32, m, d)
}
