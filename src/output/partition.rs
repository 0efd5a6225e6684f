//! Hive-style partitioned tables: `<name>/street_id=<code>/community_id=<code>/part-0.parquet`,
//! so that DuckDB (`read_parquet('<name>/**/*.parquet', hive_partitioning = true)`), Spark,
//! Apache Sedona or `pyarrow.dataset(..., partitioning="hive")` read one area without scanning
//! the others.

use std::collections::BTreeMap;
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

/// Writes a table as `<out>/<name>.parquet`, or, with `partitioned`, as Hive partitions under
/// `<out>/<name>/` by the [`KEYS`] columns present (which move from the files into the paths,
/// as the Hive layout has it). Returns the files written, relative to `out`, each prefixed
/// with `prefix` (e.g. `coverage/`).
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
    if !partitioned || out.is_memory() {
        let file = format!("{name}.parquet");
        crate::output::write_table(out, &file, fields, cols)?;
        return Ok(vec![format!("{prefix}{file}")]);
    }
    let dir = out.path().join(name);
    let at = || Location::default().file(&dir);
    let keys: Vec<usize> = KEYS
        .iter()
        .filter_map(|k| fields.iter().position(|f| f.name() == k))
        .collect();
    if keys.is_empty() {
        return Err(Error::data(
            at(),
            format!("cannot partition {name}: it has no street_id or community_id column"),
        ));
    }
    let key_values: Vec<&StringArray> = keys
        .iter()
        .map(|&k| {
            cols[k]
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("unit code columns are Utf8")
        })
        .collect();
    let rows = cols.first().map_or(0, |c| c.len());
    let mut groups: BTreeMap<Vec<Option<&str>>, Vec<u32>> = BTreeMap::new();
    for r in 0..rows {
        let key = key_values
            .iter()
            .map(|a| (!a.is_null(r)).then(|| a.value(r)))
            .collect();
        groups.entry(key).or_default().push(r as u32);
    }
    if groups.is_empty() {
        // An empty table still gets one (empty) file, so that readers find its schema.
        groups.insert(vec![None; keys.len()], Vec::new());
    }
    if dir.exists() {
        // Stale partitions of an earlier run would be read as part of this one.
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    let kept: Vec<usize> = (0..fields.len()).filter(|i| !keys.contains(i)).collect();
    let schema = Arc::new(Schema::new(
        kept.iter().map(|&i| fields[i].clone()).collect::<Vec<_>>(),
    ));
    let mut written = Vec::with_capacity(groups.len());
    for (key, idx) in groups {
        let mut rel = name.to_owned();
        for (k, v) in keys.iter().zip(&key) {
            rel.push_str(&format!("/{}={}", fields[*k].name(), path_value(*v)));
        }
        let idx = UInt32Array::from(idx);
        let arrays = kept
            .iter()
            .map(|&i| arrow_select::take::take(cols[i].as_ref(), &idx, None))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Parquet {
                at: at(),
                message: e.to_string(),
            })?;
        let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| Error::Parquet {
            at: at(),
            message: e.to_string(),
        })?;
        let file = format!("{rel}/part-0.parquet");
        out.batch(&file, schema.clone(), &batch)?;
        written.push(format!("{prefix}{file}"));
    }
    Ok(written)
}
