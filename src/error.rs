//! Errors by category, each with the place it happened.
//!
//! Errors stop a run. Problems with individual rows or features do not: they go to the
//! [`QualityReport`](crate::QualityReport). Messages never contain personal data; they name the
//! layer, file, row or feature index, column and id code.

use std::fmt;
use std::path::PathBuf;

/// Where something happened: layer, file, row/feature index and column.
///
/// Every field is optional because not every error has all of them; [`fmt::Display`] prints
/// only the known parts, e.g. `layer grids, file grids.geojson, feature 12, column "code"`.
///
/// # Examples
/// ```
/// let at = shequ::Location::layer("grids").file("grids.geojson").index(12);
/// assert_eq!(at.to_string(), "layer grids, file grids.geojson, feature/row 12");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// Layer name as in the job file (`grids`, `households`, ...).
    pub layer: Option<String>,
    /// Input file.
    pub file: Option<PathBuf>,
    /// 0-based feature or data-row index in the input file.
    pub index: Option<usize>,
    /// Column or property name.
    pub column: Option<String>,
}

impl Location {
    /// A location naming only a layer.
    pub fn layer(layer: impl Into<String>) -> Self {
        Location {
            layer: Some(layer.into()),
            ..Default::default()
        }
    }
    /// Adds the file.
    pub fn file(mut self, file: impl Into<PathBuf>) -> Self {
        self.file = Some(file.into());
        self
    }
    /// Adds the 0-based row or feature index.
    pub fn index(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }
    /// Adds the column.
    pub fn column(mut self, column: impl Into<String>) -> Self {
        self.column = Some(column.into());
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(l) = &self.layer {
            parts.push(format!("layer {l}"));
        }
        if let Some(p) = &self.file {
            parts.push(format!("file {}", p.display()));
        }
        if let Some(i) = self.index {
            parts.push(format!("feature/row {i}"));
        }
        if let Some(c) = &self.column {
            parts.push(format!("column {c:?}"));
        }
        if parts.is_empty() {
            f.write_str("(unknown location)")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// The error type of shequ, by category.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened, read or written.
    #[error("{at}: {}", plain(&source.to_string()))]
    Io {
        /// Where.
        at: Location,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The job file is malformed or inconsistent.
    #[error("job file {}: {message}", path.display())]
    Job {
        /// The job file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A column named in the job is not in the input.
    #[error("{at}: column not found; the file has: {available}")]
    ColumnNotFound {
        /// Where (the column is in `at.column`).
        at: Location,
        /// The columns the file does have, comma separated.
        available: String,
    },
    /// A file's content cannot be used as a whole (truncated, wrong format, bad encoding).
    #[error("{at}: {}", plain(message))]
    Data {
        /// Where.
        at: Location,
        /// What is wrong.
        message: String,
    },
    /// A coordinate reference system could not be parsed or a transformation failed.
    #[error("{at}: coordinate reference system: {}", plain(message))]
    Crs {
        /// Where.
        at: Location,
        /// What is wrong.
        message: String,
    },
    /// An error from polars while reading or computing a table.
    #[error("{at}: {}", plain(&source.to_string()))]
    Polars {
        /// Where.
        at: Location,
        /// The underlying error.
        #[source]
        source: Box<polars::error::PolarsError>,
    },
    /// The privacy policy refuses the request (person-level rows in a research run, a missing
    /// or weak pseudonym secret, a named list without a scope).
    #[error("privacy: {message}")]
    Privacy {
        /// What was refused and why.
        message: String,
    },
    /// An error from the parquet or arrow crates.
    #[error("{at}: {}", plain(message))]
    Parquet {
        /// Where.
        at: Location,
        /// The underlying error's message.
        message: String,
    },
    /// A check that shequ makes on its own work failed (a bug, never bad input): for example
    /// a layer whose rows read are not the rows placed plus the rows reported. No output is
    /// written after it.
    #[error("internal error ({at}): {message}; please report this")]
    Internal {
        /// Where (the layer).
        at: Location,
        /// What did not hold.
        message: String,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] at a file.
    pub fn io(file: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            at: Location::default().file(file),
            source,
        }
    }

    /// An [`Error::Data`] at a location.
    pub fn data(at: Location, message: impl Into<String>) -> Self {
        Error::Data {
            at,
            message: message.into(),
        }
    }

    /// An [`Error::Crs`] at a location.
    pub fn crs(at: Location, message: impl Into<String>) -> Self {
        Error::Crs {
            at,
            message: message.into(),
        }
    }

    /// An [`Error::ColumnNotFound`] that lists the file's columns safely ([`column_list`]).
    ///
    /// # Examples
    /// ```
    /// use shequ::{Error, Location};
    /// let e = Error::column_not_found(Location::layer("residents").column("id"), ["name", "sex"]);
    /// assert!(e.to_string().ends_with("the file has: name, sex"));
    /// ```
    pub fn column_not_found<S: AsRef<str>>(
        at: Location,
        names: impl IntoIterator<Item = S>,
    ) -> Self {
        Error::ColumnNotFound {
            at,
            available: column_list(names),
        }
    }

    /// The error with the parts of its location it lacks (layer, file, index, column) taken
    /// from `at`, for errors raised where the place is not known (parsing a CRS, say) and
    /// passed up to code that knows it. A job error is left as it is.
    ///
    /// # Examples
    /// ```
    /// use shequ::{Error, Location};
    /// let e = Error::crs(Location::default(), "empty CRS").located(Location::layer("grids").file("g.geojson"));
    /// assert_eq!(e.to_string(), "layer grids, file g.geojson: coordinate reference system: empty CRS");
    /// ```
    pub fn located(mut self, at: Location) -> Self {
        if let Some(mine) = self.location_mut() {
            let Location {
                layer,
                file,
                index,
                column,
            } = at;
            mine.layer = mine.layer.take().or(layer);
            mine.file = mine.file.take().or(file);
            mine.index = mine.index.or(index);
            mine.column = mine.column.take().or(column);
        }
        self
    }

    fn location_mut(&mut self) -> Option<&mut Location> {
        match self {
            Error::Io { at, .. }
            | Error::ColumnNotFound { at, .. }
            | Error::Data { at, .. }
            | Error::Crs { at, .. }
            | Error::Polars { at, .. }
            | Error::Parquet { at, .. }
            | Error::Internal { at, .. } => Some(at),
            Error::Job { .. } | Error::Privacy { .. } => None,
        }
    }

    /// The error's location, if it has one.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Error::Io { at, .. }
            | Error::ColumnNotFound { at, .. }
            | Error::Data { at, .. }
            | Error::Crs { at, .. }
            | Error::Polars { at, .. }
            | Error::Parquet { at, .. }
            | Error::Internal { at, .. } => Some(at),
            Error::Job { .. } | Error::Privacy { .. } => None,
        }
    }
}

/// Longest message taken from another library's error, in characters.
const PLAIN_CHARS: usize = 300;

/// Markers of a Rust debug struct inside another library's message (`Error { kind: ... }`,
/// `Custom { .. }`, `Error("...", line: 1)`).
const DEBUG_MARKERS: &[&str] = &[
    "Error {", "Error(", "{ kind", "{ source", "Kind(", "Custom {", "Os {",
];

/// Another library's error message as shequ prints it: its first line, cut before any Rust
/// debug struct it embeds, and at most 300 characters.
///
/// # Examples
/// ```
/// let m = shequ::error::plain("parquet error: Error { source_location: ErrorLocation { byte_offset: 120 } }");
/// assert_eq!(m, "parquet error: (details omitted)");
/// assert_eq!(shequ::error::plain("no such file\nmore"), "no such file");
/// assert_eq!(shequ::error::plain("bad .dbf: Error { kind: Month must be 1..=12 }"), "bad .dbf: Month must be 1..=12");
/// ```
pub fn plain(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default();
    // dbase prints its errors as `Error { kind: <message> }`: keep the message.
    let unwrapped;
    let mut m = match first.split_once("Error { kind: ") {
        Some((head, rest)) if rest.ends_with(" }") && !rest.contains('{') => {
            unwrapped = format!("{head}{}", &rest[..rest.len() - 2]);
            unwrapped.as_str()
        }
        _ => first,
    };
    if let Some(at) = DEBUG_MARKERS.iter().filter_map(|d| m.find(d)).min() {
        // Back to the start of the struct's name.
        let start = m[..at]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .map_or(0, |i| i + 1);
        let start = if m[start..at].is_empty() { at } else { start };
        let kept = m[..start].trim_end();
        return if kept.is_empty() {
            "(details omitted)".to_owned()
        } else {
            format!("{kept} (details omitted)")
        };
    }
    if m.chars().count() > PLAIN_CHARS {
        m = &m[..m
            .char_indices()
            .nth(PLAIN_CHARS)
            .map_or(m.len(), |(i, _)| i)];
        return format!("{m}…");
    }
    m.to_owned()
}

/// Longest excerpt of one value that a message prints, in characters.
pub const EXCERPT_CHARS: usize = 24;

/// Most column names a message lists.
const LIST_NAMES: usize = 30;

/// A short excerpt of a value for a message: at most [`EXCERPT_CHARS`] characters, with `…`
/// when cut, and control characters (line breaks among them) shown as spaces.
///
/// # Examples
/// ```
/// assert_eq!(shequ::error::excerpt("short"), "short");
/// assert_eq!(shequ::error::excerpt(&"x".repeat(100)).chars().count(), 25);
/// ```
pub fn excerpt(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if value.chars().nth(EXCERPT_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// True if a text holds a run of six or more digits, as identifiers (citizen ID numbers,
/// phone numbers) do and column names do not.
pub fn looks_like_identifier(value: &str) -> bool {
    let mut run = 0;
    for c in value.chars() {
        if c.is_ascii_digit() || ('０'..='９').contains(&c) {
            run += 1;
            if run >= 6 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// The column names of a file as a message may print them: at most 30, each cut to
/// [`EXCERPT_CHARS`] characters. A header that holds an identifier-like value (six digits in
/// a row) is a data row read as a header, so none of its cells is printed.
///
/// # Examples
/// ```
/// use shequ::error::column_list;
/// assert_eq!(column_list(["id", "name"]), "id, name");
/// let data_row = column_list(["张三", "110105194912310021"]);
/// assert!(!data_row.contains("张三") && data_row.contains("no header row"));
/// assert!(column_list((0..100).map(|i| format!("c{i}"))).ends_with("and 70 more"));
/// ```
pub fn column_list<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> String {
    let names: Vec<S> = names.into_iter().collect();
    if names.iter().any(|n| looks_like_identifier(n.as_ref())) {
        return format!(
            "{} columns whose names look like data (a value of six or more digits): \
             is there no header row?",
            names.len()
        );
    }
    let mut out: Vec<String> = names
        .iter()
        .take(LIST_NAMES)
        .map(|n| excerpt(n.as_ref()))
        .collect();
    if names.len() > LIST_NAMES {
        out.push(format!("and {} more", names.len() - LIST_NAMES));
    }
    out.join(", ")
}
