//! Hive-style partitioned tables: `<name>/street_id=<code>/community_id=<code>/part-0.parquet`,
//! so that DuckDB (`read_parquet('<name>/**/*.parquet', hive_partitioning = true)`), Spark,
//! Apache Sedona or `pyarrow.dataset(..., partitioning="hive")` read one area without scanning
//! the others.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{Field, Schema};

use crate::error::{Error, Location, Result};
use crate::output::Out;

/// The partition columns, outermost first.
pub const KEYS: [&str; 2] = ["street_id", "community_id"];

/// The directory name Hive gives a null partition value.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// A partition value as a path segment: codes pass unchanged; any byte other than ASCII
/// letters, digits, `-`, `_` and `.` is percent-encoded, as Hive does.
///
/// # Examples
/// ```
/// use shequ::output::partition::path_value;
/// assert_eq!(path_value(Some("500103001")), "500103001");
/// assert_eq!(path_value(Some("a/b c")), "a%2Fb%20c");
/// assert_eq!(path_value(None), "__HIVE_DEFAULT_PARTITION__");
/// ```
pub fn path_value(v: Option<&str>) -> String {
    let Some(v) = v else {
        return NULL_PARTITION.to_owned();
    };
    let mut s = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// One file of a table: its path below the output (`<name>.parquet`, or
/// `<name>/street_id=…/community_id=…/part-0.parquet`) and the rows it holds, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    /// The file, relative to the output directory.
    pub rel: String,
    /// The table's rows in the file (every row, for a table written whole).
    pub rows: Vec<u32>,
}

/// The files [`write_rows`] writes a table as, each with its rows: one file, or one per Hive
/// partition by the [`KEYS`] columns present (an empty table still gets one, so readers find
/// its schema). `at` is the output directory, for errors.
///
/// # Errors
/// [`Error::Data`] if `partitioned` is asked for a table with none of the key columns.
pub(crate) fn parts(
    at: &Path,
    name: &str,
    partitioned: bool,
    fields: &[Field],
    cols: &[ArrayRef],
) -> Result<Vec<Part>> {
    let rows = cols.first().map_or(0, |c| c.len());
    if !partitioned {
        return Ok(vec![Part {
            rel: format!("{name}.parquet"),
            rows: (0..rows as u32).collect(),
        }]);
    }
    let keys = key_columns(at, name, fields)?;
    let key_values: Vec<&StringArray> = keys
        .iter()
        .map(|&k| {
            cols[k]
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("unit code columns are Utf8")
        })
        .collect();
    let mut groups: BTreeMap<Vec<Option<&str>>, Vec<u32>> = BTreeMap::new();
    for r in 0..rows {
        let key = key_values
            .iter()
            .map(|a| (!a.is_null(r)).then(|| a.value(r)))
            .collect();
        groups.entry(key).or_default().push(r as u32);
    }
    if groups.is_empty() {
        groups.insert(vec![None; keys.len()], Vec::new());
    }
    Ok(groups
        .into_iter()
        .map(|(key, rows)| {
            let mut rel = name.to_owned();
            for (k, v) in keys.iter().zip(&key) {
                rel.push_str(&format!("/{}={}", fields[*k].name(), path_value(*v)));
            }
            rel.push_str("/part-0.parquet");
            Part { rel, rows }
        })
        .collect())
}

/// The positions of the [`KEYS`] columns among `fields`.
fn key_columns(at: &Path, name: &str, fields: &[Field]) -> Result<Vec<usize>> {
    let keys: Vec<usize> = KEYS
        .iter()
        .filter_map(|k| fields.iter().position(|f| f.name() == k))
        .collect();
    if keys.is_empty() {
        return Err(Error::data(
            Location::default().file(at.join(name)),
            format!("cannot partition {name}: it has no street_id or community_id column"),
        ));
    }
    Ok(keys)
}

/// Removes what an earlier run wrote of table `name` as partitions: stale partitions would be
/// read as part of this run's table.
pub(crate) fn clear(out: &Out, name: &str, partitioned: bool) -> Result<()> {
    let dir = out.path().join(name);
    if partitioned && !out.is_memory() && dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    Ok(())
}

/// Writes one [`Part`] of a table: its rows, without the partition columns when the table is
/// `partitioned` (they are in the path, as the Hive layout has it; memory outputs keep tables
/// whole, so their callers pass `false`).
///
/// # Errors
/// [`Error::Io`], [`Error::Parquet`].
pub(crate) fn write_part(
    out: &Out,
    name: &str,
    partitioned: bool,
    fields: &[Field],
    cols: &[ArrayRef],
    part: &Part,
) -> Result<()> {
    let at = || Location::default().file(out.path().join(&part.rel));
    let keys = if partitioned {
        key_columns(out.path(), name, fields)?
    } else {
        Vec::new()
    };
    let kept: Vec<usize> = (0..fields.len()).filter(|i| !keys.contains(i)).collect();
    let schema = Arc::new(Schema::new(
        kept.iter().map(|&i| fields[i].clone()).collect::<Vec<_>>(),
    ));
    let whole = cols.first().is_none_or(|c| c.len() == part.rows.len());
    let idx = UInt32Array::from(part.rows.clone());
    let arrays = kept
        .iter()
        .map(|&i| {
            if whole {
                Ok(cols[i].clone())
            } else {
                arrow_select::take::take(cols[i].as_ref(), &idx, None)
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Parquet {
            at: at(),
            message: e.to_string(),
        })?;
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| Error::Parquet {
        at: at(),
        message: e.to_string(),
    })?;
    out.batch(&part.rel, schema, &batch)
}

/// Writes a table as `<out>/<name>.parquet`, or, with `partitioned`, as Hive partitions under
/// `<out>/<name>/` by the [`KEYS`] columns present (which move from the files into the paths,
/// as the Hive layout has it): the files of [`parts`]. Returns the files written, relative to
/// `out`, each prefixed with `prefix` (e.g. `coverage/`).
///
/// # Errors
/// [`Error::Data`] if `partitioned` is asked for a table with none of the key columns;
/// [`Error::Io`], [`Error::Parquet`].
pub(crate) fn write_rows(
    out: &Out,
    prefix: &str,
    name: &str,
    partitioned: bool,
    fields: Vec<Field>,
    cols: Vec<ArrayRef>,
) -> Result<Vec<String>> {
    let partitioned = partitioned && !out.is_memory();
    let parts = parts(out.path(), name, partitioned, &fields, &cols)?;
    clear(out, name, partitioned)?;
    let mut written = Vec::with_capacity(parts.len());
    for part in &parts {
        write_part(out, name, partitioned, &fields, &cols, part)?;
        written.push(format!("{prefix}{}", part.rel));
    }
    Ok(written)
}
