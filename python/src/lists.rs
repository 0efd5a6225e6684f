//! The native side of the person lists on Spark: what a list's files hold and which roster
//! rows each needs (the driver), and one file filled from an executor's roster rows and
//! written (the executors).

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use shequ::output::person_list::{PersonList, write_part_from};

use super::{Job, detached, py_err};

/// A person list's files (each its path below the output and its rows' roster rows) and the
/// roster columns its identifiers take.
type ListParts = (Vec<(String, Vec<u32>)>, Vec<String>);

/// A person list's files: for each, its path below the output and the roster rows of its
/// rows (rows about no resident left out); and the roster columns its identifiers take.
#[pyfunction]
pub(crate) fn person_list_parts(
    py: Python<'_>,
    job: &Job,
    list: PyBackedBytes,
) -> PyResult<ListParts> {
    let list = PersonList::from_bytes(&list).map_err(|e| py_err(py, e))?;
    let parts = list.parts().map_err(|e| py_err(py, e))?;
    let rows = list.roster_rows();
    let parts = parts
        .into_iter()
        .map(|(file, idx)| {
            let own = idx.iter().filter_map(|&i| rows[i as usize]).collect();
            (file, own)
        })
        .collect();
    Ok((parts, list.roster_columns(&job.inner)))
}

/// Writes file `part` of `list` under `out_dir`, its identifiers filled from the roster rows
/// in the Parquet file `roster` (each row's roster row in column `numbers`), keyed with the
/// job's pseudonym key (resolved here, from the job's `[privacy]`). Returns the file written,
/// relative to `out_dir`.
#[pyfunction]
pub(crate) fn write_person_list_part(
    py: Python<'_>,
    job: &Job,
    list: PyBackedBytes,
    part: usize,
    roster: PathBuf,
    numbers: String,
    out_dir: PathBuf,
) -> PyResult<String> {
    let job = job.inner.clone();
    let list = PersonList::from_bytes(&list).map_err(|e| py_err(py, e))?;
    detached(py, move || {
        let policy = shequ::run::policy(&job)?;
        let key = shequ::output::operational::key(&policy)?;
        write_part_from(&job, key, list, part, &roster, &numbers, &out_dir)
    })
}
