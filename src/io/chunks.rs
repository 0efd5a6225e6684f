//! Tables read a chunk of rows at a time: the CSV parser streams the decoded text, and Parquet
//! files are read by row ranges (polars reads only the row groups a range touches). Every
//! chunk keeps the file's data-row numbers, so a row is reported with the same number whatever
//! the chunk size.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::error::{Error, Location, Result, excerpt};
use crate::io::decode::Decoded;
use crate::io::rows::{Encoding, Table, decode_error};

/// A CSV or Parquet table read in chunks of at most `chunk_rows` data rows (readable or not).
///
/// # Examples
/// ```
/// use shequ::io::chunks::TableChunks;
/// use shequ::io::table::Encoding;
/// let dir = tempfile::tempdir()?;
/// let p = dir.path().join("people.csv");
/// std::fs::write(&p, "id,hh\nP1,H1\nP2\nP3,H2\n")?;
/// let mut chunks = TableChunks::open("residents", &p, &["id", "hh"], &[], &[], Encoding::Auto, 2)?;
/// let first = chunks.next_chunk()?.expect("a chunk");
/// assert_eq!((first.rows_read, first.frame.height()), (2, 1)); // the second row is short
/// assert_eq!(first.unreadable[0].0, 1);
/// let second = chunks.next_chunk()?.expect("a chunk");
/// assert_eq!(second.source_row(0), 2); // numbered as in the file
/// assert!(chunks.next_chunk()?.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TableChunks {
    layer: String,
    path: PathBuf,
    /// The requested columns the file has, required first.
    columns: Vec<String>,
    /// Columns wanted as numbers where the file's type is numeric.
    numbers: Vec<String>,
    /// Every column name of the file.
    header: Vec<String>,
    chunk_rows: usize,
    /// Data rows consumed so far.
    rows: usize,
    /// An estimate of the data rows (exact for Parquet), for progress and reservations.
    estimate: usize,
    source: Source,
}

enum Source {
    Csv(Box<CsvSource>),
    Parquet(ParquetSource),
}

struct CsvSource {
    rdr: csv::Reader<Decoded>,
    width: usize,
    /// The position of each of `columns` in a record.
    fields: Vec<usize>,
    rec: csv::ByteRecord,
    done: bool,
}

struct ParquetSource {
    metadata: polars::io::parquet::metadata::FileMetadataRef,
    rows: usize,
    /// The first row of each row group, and the number of rows at the end.
    groups: Vec<usize>,
    /// Whole row groups read and not yet handed out in full: their first row and rows.
    /// Polars decodes a row group whole, so chunks are cut from row groups read once.
    buffer: Option<(usize, DataFrame)>,
}

impl TableChunks {
    /// Opens `path` (CSV, TSV or Parquet by extension) and reads its header: `columns` are
    /// required, `optional` ones are read when the file has them, and `numbers` come as
    /// `Float64` when the file's column is numeric (Parquet), as in
    /// [`read_table_with`](super::table::read_table_with).
    ///
    /// # Errors
    /// As [`read_table`](super::table::read_table): I/O, undecodable text, no header, an
    /// unreadable Parquet file, a required column missing.
    pub fn open(
        layer: &str,
        path: &Path,
        columns: &[&str],
        numbers: &[&str],
        optional: &[&str],
        encoding: Encoding,
        chunk_rows: usize,
    ) -> Result<TableChunks> {
        let at = || Location::layer(layer).file(path);
        let ext = crate::io::extension(path);
        let (header, source, estimate) = match ext.as_str() {
            "csv" | "txt" | "tsv" => {
                open_csv(path, encoding, if ext == "tsv" { b'\t' } else { b',' }, &at)?
            }
            "parquet" => open_parquet(path, &at)?,
            other => {
                return Err(Error::data(
                    at(),
                    format!("unknown table format {other:?}; use .csv or .parquet"),
                ));
            }
        };
        let mut wanted: Vec<String> = Vec::with_capacity(columns.len() + optional.len());
        for c in columns {
            if !header.iter().any(|h| h == c) {
                return Err(Error::column_not_found(at().column(*c), &header));
            }
            named_once(&header, c, &at)?;
            if !wanted.iter().any(|w| w == c) {
                wanted.push((*c).to_owned());
            }
        }
        for c in optional {
            if header.iter().any(|h| h == c) && !wanted.iter().any(|w| w == c) {
                named_once(&header, c, &at)?;
                wanted.push((*c).to_owned());
            }
        }
        let mut source = source;
        if let Source::Csv(s) = &mut source {
            s.fields = wanted
                .iter()
                .map(|w| header.iter().position(|h| h == w).unwrap_or_default())
                .collect();
        }
        Ok(TableChunks {
            layer: layer.to_owned(),
            path: path.to_owned(),
            columns: wanted,
            numbers: numbers.iter().map(|n| (*n).to_owned()).collect(),
            header,
            chunk_rows: chunk_rows.max(1),
            rows: 0,
            estimate,
            source,
        })
    }

    /// The requested columns the file has, required first.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Every column name in the file.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Data rows in the file: exact for Parquet, the number of lines for CSV (an upper bound).
    pub fn rows_estimate(&self) -> usize {
        self.estimate
    }

    /// Data rows read so far.
    pub fn rows_read(&self) -> usize {
        self.rows
    }

    fn at(&self) -> Location {
        Location::layer(&self.layer).file(&self.path)
    }

    /// The next chunk, `None` after the last.
    ///
    /// # Errors
    /// Text that cannot be decoded any further; an unreadable Parquet row group.
    pub fn next_chunk(&mut self) -> Result<Option<Table>> {
        let first = self.rows;
        let (frame, kept, bad) = match &mut self.source {
            Source::Csv(s) => {
                let at = || Location::layer(&self.layer).file(&self.path);
                match s.chunk(&self.columns, first, self.chunk_rows, &at)? {
                    Some(c) => c,
                    None => return Ok(None),
                }
            }
            Source::Parquet(p) => {
                if first >= p.rows {
                    return Ok(None);
                }
                let len = self.chunk_rows.min(p.rows - first);
                let df = self.parquet_chunk(first, len)?;
                (df, None, Vec::new())
            }
        };
        let n = frame.height() + bad.len();
        self.rows += n;
        let frame = typed_columns(frame, &self.columns, &self.numbers, &|| self.at())?;
        let source_rows = match kept {
            Some(k) => Some(k),
            None if first > 0 => Some((first as u32..(first + frame.height()) as u32).collect()),
            None => None,
        };
        Ok(Some(Table {
            path: self.path.clone(),
            frame,
            source_rows,
            rows_read: n,
            unreadable: bad,
        }))
    }

    /// Rows `first..first + len` of the Parquet file's requested columns, cut from whole row
    /// groups: each row group is read once, however the chunks fall across it.
    fn parquet_chunk(&mut self, first: usize, len: usize) -> Result<DataFrame> {
        let stop = first + len;
        let mut at = first;
        let mut parts: Vec<DataFrame> = Vec::new();
        while at < stop {
            let Source::Parquet(p) = &self.source else {
                unreachable!("a Parquet source");
            };
            if let Some((b0, df)) = &p.buffer {
                let b1 = b0 + df.height();
                if (*b0..b1).contains(&at) {
                    let take = stop.min(b1) - at;
                    parts.push(df.slice((at - b0) as i64, take));
                    at += take;
                    continue;
                }
            }
            // The row groups from the one holding `at` to the one holding `stop - 1`.
            let g0 = p.groups[p.groups.partition_point(|&g| g <= at) - 1];
            let g1 = p.groups[p
                .groups
                .partition_point(|&g| g < stop)
                .min(p.groups.len() - 1)];
            let df = self.parquet_rows(g0, g1.max(stop) - g0)?;
            if g0 + df.height() <= at {
                // A file shorter than its metadata says: an error, not a loop.
                return Err(Error::data(
                    self.at(),
                    format!(
                        "the file's metadata gives {} rows, but rows from {at} could not be read",
                        p.rows
                    ),
                ));
            }
            if let Source::Parquet(p) = &mut self.source {
                p.buffer = Some((g0, df));
            }
        }
        let mut parts = parts.into_iter();
        let mut df = parts.next().unwrap_or_default();
        for more in parts {
            df.vstack_mut(&more).map_err(|e| Error::Polars {
                at: self.at(),
                source: Box::new(e),
            })?;
        }
        if let Source::Parquet(p) = &mut self.source {
            if p.buffer
                .as_ref()
                .is_some_and(|(b0, d)| b0 + d.height() <= stop)
            {
                p.buffer = None;
            }
        }
        Ok(df)
    }

    /// Rows `first..first + len` of the Parquet file's requested columns.
    fn parquet_rows(&self, first: usize, len: usize) -> Result<DataFrame> {
        let Source::Parquet(p) = &self.source else {
            unreachable!("a Parquet source");
        };
        let at = || self.at();
        let file = std::fs::File::open(&self.path).map_err(|e| Error::Io {
            at: at(),
            source: e,
        })?;
        let mut reader = ParquetReader::new(file);
        reader.set_metadata(p.metadata.clone());
        let reader = reader
            .with_columns(Some(self.columns.clone()))
            .with_slice(Some((first, len)));
        crate::io::unpanicked(&at, || reader.finish())?.map_err(|e| Error::Polars {
            at: at(),
            source: Box::new(e),
        })
    }
}

impl Iterator for TableChunks {
    type Item = Result<Table>;

    fn next(&mut self) -> Option<Result<Table>> {
        self.next_chunk().transpose()
    }
}

/// An error when the header names a requested column twice.
fn named_once(header: &[String], name: &str, at: &dyn Fn() -> Location) -> Result<()> {
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
        _ => Ok(()),
    }
}

/// Opens a CSV text and reads its header.
fn open_csv(
    path: &Path,
    encoding: Encoding,
    sep: u8,
    at: &dyn Fn() -> Location,
) -> Result<(Vec<String>, Source, usize)> {
    let io = |e| Error::Io {
        at: at(),
        source: e,
    };
    let scan = crate::io::decode::scan(path).map_err(io)?;
    let text = crate::io::decode::open(path, encoding, &scan).map_err(|e| match e {
        Ok(e) => io(e),
        Err(m) => Error::data(at(), m),
    })?;
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
    if header.iter().all(String::is_empty) {
        return Err(Error::data(at(), "the file has no header row"));
    }
    let width = header.len();
    let source = Source::Csv(Box::new(CsvSource {
        rdr,
        width,
        fields: Vec::new(),
        rec: csv::ByteRecord::new(),
        done: false,
    }));
    Ok((header, source, scan.line_breaks + 1))
}

/// Opens a Parquet file and reads its schema and metadata.
fn open_parquet(path: &Path, at: &dyn Fn() -> Location) -> Result<(Vec<String>, Source, usize)> {
    let file = std::fs::File::open(path).map_err(|e| Error::Io {
        at: at(),
        source: e,
    })?;
    let polars_err = |e| Error::Polars {
        at: at(),
        source: Box::new(e),
    };
    let mut reader = ParquetReader::new(file);
    let schema = crate::io::unpanicked(at, || reader.schema())?.map_err(polars_err)?;
    let metadata =
        crate::io::unpanicked(at, || reader.get_metadata().cloned())?.map_err(polars_err)?;
    let header = schema.iter_names().map(|n| n.to_string()).collect();
    let rows = metadata.num_rows;
    let mut groups = Vec::with_capacity(metadata.row_groups.len() + 1);
    let mut at = 0;
    for g in &metadata.row_groups {
        groups.push(at);
        at += g.num_rows();
    }
    groups.push(at.max(rows));
    let source = ParquetSource {
        metadata,
        rows,
        groups,
        buffer: None,
    };
    Ok((header, Source::Parquet(source), rows))
}

/// A chunk's frame, the absolute data-row number of each of its rows when some were
/// unreadable, and the unreadable rows.
type CsvChunk = (DataFrame, Option<Vec<u32>>, Vec<(usize, String)>);

impl CsvSource {
    /// Up to `limit` data rows from row `first` on; `None` at the end of the text. Empty lines
    /// are not rows; a row whose field count differs from the header's is unreadable. Empty
    /// fields are null.
    fn chunk(
        &mut self,
        columns: &[String],
        first: usize,
        limit: usize,
        at: &dyn Fn() -> Location,
    ) -> Result<Option<CsvChunk>> {
        if self.done {
            return Ok(None);
        }
        let reserve = limit.min(64 * 1024);
        let mut builders: Vec<StringChunkedBuilder> = columns
            .iter()
            .map(|n| StringChunkedBuilder::new(PlSmallStr::from(n.as_str()), reserve))
            .collect();
        let (mut rows, mut bad, mut kept) = (0usize, Vec::new(), Vec::new());
        while rows < limit {
            match self.rdr.read_byte_record(&mut self.rec) {
                Ok(false) => {
                    self.done = true;
                    break;
                }
                Ok(true) if self.rec.len() == self.width => {
                    for (i, b) in self.fields.iter().zip(&mut builders) {
                        // The text was decoded, and fields split at ASCII separators, so
                        // every field is UTF-8.
                        match std::str::from_utf8(&self.rec[*i]) {
                            Ok("") | Err(_) => b.append_null(),
                            Ok(v) => b.append_value(v),
                        }
                    }
                    kept.push((first + rows) as u32);
                }
                Ok(true) => {
                    let line = self.rec.position().map_or(0, |p| p.line());
                    bad.push((
                        first + rows,
                        format!(
                            "line {line}: {} fields, the header has {}",
                            self.rec.len(),
                            self.width
                        ),
                    ));
                }
                Err(e) => match decode_error(&e, at) {
                    // The text itself cannot be read on: the whole file is refused.
                    Some(e) => return Err(e),
                    None => bad.push((
                        first + rows,
                        format!("unreadable: {}", excerpt(&e.to_string())),
                    )),
                },
            }
            rows += 1;
        }
        if rows == 0 {
            return Ok(None);
        }
        let cols: Vec<Column> = builders
            .into_iter()
            .map(|b| b.finish().into_series().into_column())
            .collect();
        let frame = DataFrame::new(kept.len(), cols).map_err(|e| Error::Polars {
            at: at(),
            source: Box::new(e),
        })?;
        let kept = (!bad.is_empty()).then_some(kept);
        Ok(Some((frame, kept, bad)))
    }
}

/// The requested columns as the table keeps them: text, except `numbers` that are numeric in
/// the file (as `Float64`, one chunk).
pub(crate) fn typed_columns(
    frame: DataFrame,
    columns: &[String],
    numbers: &[String],
    at: &dyn Fn() -> Location,
) -> Result<DataFrame> {
    let mut cols = Vec::with_capacity(columns.len());
    for name in columns {
        let c = frame.column(name).map_err(|_| {
            Error::column_not_found(
                at().column(name),
                frame.get_column_names().iter().map(|n| n.as_str()),
            )
        })?;
        let target = if numbers.contains(name) && c.dtype().is_primitive_numeric() {
            DataType::Float64
        } else {
            DataType::String
        };
        let c = c.cast(&target).map_err(|e| Error::Polars {
            at: at().column(name),
            source: Box::new(e),
        })?;
        // Text columns keep the reader's chunks (one per Parquet row group, for example):
        // joining them copies every string view of a roster of millions, and
        // [`TextColumn`](super::table::TextColumn) reads across chunks. Numbers are small
        // enough to join.
        cols.push(if target == DataType::String {
            c
        } else {
            c.rechunk()
        });
    }
    DataFrame::new_infer_height(cols).map_err(|e| Error::Polars {
        at: at(),
        source: Box::new(e),
    })
}

/// How many rows the people stage reads at a time (`options.chunk_rows`): a number, or `"all"`
/// for the whole roster at once. Results do not depend on it; peak memory does.
///
/// # Examples
/// ```
/// use shequ::io::chunks::ChunkRows;
/// assert_eq!("all".parse::<ChunkRows>()?, ChunkRows::All);
/// assert_eq!("997".parse::<ChunkRows>()?.rows(), 997);
/// assert!("0".parse::<ChunkRows>().is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "RawChunkRows", into = "RawChunkRows")]
pub enum ChunkRows {
    /// The whole table in one chunk.
    All,
    /// At most this many rows per chunk.
    Rows(std::num::NonZeroUsize),
}

impl ChunkRows {
    /// Rows per chunk (`usize::MAX` for all).
    pub fn rows(self) -> usize {
        match self {
            ChunkRows::All => usize::MAX,
            ChunkRows::Rows(n) => n.get(),
        }
    }
}

impl Default for ChunkRows {
    /// Half a million rows: about 100 MB of roster text per chunk.
    fn default() -> Self {
        ChunkRows::Rows(std::num::NonZeroUsize::new(500_000).expect("non-zero"))
    }
}

impl std::str::FromStr for ChunkRows {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") {
            return Ok(ChunkRows::All);
        }
        s.parse::<std::num::NonZeroUsize>()
            .map(ChunkRows::Rows)
            .map_err(|_| {
                format!("options.chunk_rows: {s:?} is not a positive number of rows or \"all\"")
            })
    }
}

/// `chunk_rows` as written in a job: a number or a word.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum RawChunkRows {
    Rows(u64),
    Word(String),
}

impl TryFrom<RawChunkRows> for ChunkRows {
    type Error = String;

    fn try_from(r: RawChunkRows) -> std::result::Result<Self, String> {
        match r {
            RawChunkRows::Rows(n) => n.to_string().parse(),
            RawChunkRows::Word(w) => w.parse(),
        }
    }
}

impl From<ChunkRows> for RawChunkRows {
    fn from(c: ChunkRows) -> Self {
        match c {
            ChunkRows::All => RawChunkRows::Word("all".into()),
            ChunkRows::Rows(n) => RawChunkRows::Rows(n.get() as u64),
        }
    }
}
