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
    #[error("{at}: {source}")]
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
    #[error("{at}: {message}")]
    Data {
        /// Where.
        at: Location,
        /// What is wrong.
        message: String,
    },
    /// A coordinate reference system could not be parsed or a transformation failed.
    #[error("{at}: coordinate reference system: {message}")]
    Crs {
        /// Where.
        at: Location,
        /// What is wrong.
        message: String,
    },
    /// An error from polars while reading or computing a table.
    #[error("{at}: {source}")]
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
    #[error("{at}: {message}")]
    Parquet {
        /// Where.
        at: Location,
        /// The underlying error's message.
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

    /// The error's location, if it has one.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Error::Io { at, .. }
            | Error::ColumnNotFound { at, .. }
            | Error::Data { at, .. }
            | Error::Crs { at, .. }
            | Error::Polars { at, .. }
            | Error::Parquet { at, .. } => Some(at),
            Error::Job { .. } | Error::Privacy { .. } => None,
        }
    }
}
