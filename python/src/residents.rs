//! The native side of `shequ.spark` for residents: what executors call on their roster rows
//! (ids' keys, residents placed and folded by the job's analyses of people) against a frame
//! with the households, built once per process and run.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use shequ::run::ResidentsStage;
use shequ::{HouseholdsPartial, PeopleFrame};

use super::spark::key_table;
use super::{Job, Table, detached, py_err};

/// The stage of each job and frame in this process, built on first use and kept for the
/// process' life (an executor's Python worker folds many partitions of one run).
static STAGES: Mutex<Option<HashMap<String, &'static ResidentsStage>>> = Mutex::new(None);

/// The residents stage of `job` for the run `frame` names, built once per process: the
/// households from `households` (bytes of the merged partial) or else the job's file; with
/// `people` (bytes of the driver's frame without footprints, the by-street mode), against
/// that frame instead of the job's small layers. The bytes are copied only when the stage is
/// built.
fn stage(
    py: Python<'_>,
    job: &shequ::Job,
    frame: &str,
    households: Option<PyBackedBytes>,
    people: Option<PyBackedBytes>,
) -> PyResult<&'static ResidentsStage> {
    let key = format!(
        "{frame}|{}|{}",
        job.base_dir.display(),
        serde_json::to_string(job).expect("a job serialises")
    );
    let found = |key: &str| {
        let stages = STAGES.lock().unwrap_or_else(|p| p.into_inner());
        stages.as_ref().and_then(|s| s.get(key).copied())
    };
    if let Some(s) = found(&key) {
        return Ok(s);
    }
    let bytes: Option<Vec<u8>> = households.as_deref().map(<[u8]>::to_vec);
    let people: Option<Vec<u8>> = people.as_deref().map(<[u8]>::to_vec);
    let job = job.clone();
    detached(py, move || {
        let households = bytes
            .as_deref()
            .map(HouseholdsPartial::from_bytes)
            .transpose()?;
        let built = match (people.as_deref().map(PeopleFrame::from_bytes), households) {
            (Some(frame), Some(h)) => ResidentsStage::with_frame(&job, &frame?, h)?,
            (Some(_), None) => {
                return Err(shequ::Error::data(
                    shequ::Location::layer("residents"),
                    "residents against a frame of people need the households",
                ));
            }
            (None, households) => ResidentsStage::new(&job, households)?,
        };
        let s: &'static ResidentsStage = Box::leak(Box::new(built));
        let mut stages = STAGES.lock().unwrap_or_else(|p| p.into_inner());
        stages.get_or_insert_with(HashMap::new).insert(key, s);
        Ok(s)
    })
}

/// The households' partials merged into one, as bytes: what executors placing residents are
/// given (broadcast).
#[pyfunction]
pub(crate) fn merge_households(
    py: Python<'_>,
    partials: Vec<PyBackedBytes>,
) -> PyResult<Py<PyBytes>> {
    let mut all = HouseholdsPartial::default();
    for b in &partials {
        all.merge(HouseholdsPartial::from_bytes(b).map_err(|e| py_err(py, e))?);
    }
    Ok(PyBytes::new(py, &all.to_bytes()).unbind())
}

/// Each data row's id key in `path` (a file with the job's roster columns), in row order, as
/// two Int64 columns `_k1`, `_k2` (null without an id). `households` and `people` as for
/// [`fold_residents`].
#[pyfunction]
#[pyo3(signature = (job, path, frame, households=None, people=None))]
pub(crate) fn resident_keys(
    py: Python<'_>,
    job: &Job,
    path: PathBuf,
    frame: String,
    households: Option<PyBackedBytes>,
    people: Option<PyBackedBytes>,
) -> PyResult<Table> {
    let s = stage(py, &job.inner, &frame, households, people)?;
    let keys = detached(py, move || s.keys(&path))?;
    key_table(&keys)
}

/// The residents of `path` placed and folded by the job's analyses of people into a partial
/// (bytes): column `rows` holds each row's data row in the whole roster, column `first` the
/// first row with the same id when it repeats one. The households are `households` (the
/// merged partial) or the job's file; the frame is `people` (the driver's, without
/// footprints: the by-street mode) or the job's small layers.
#[pyfunction]
#[pyo3(signature = (job, path, rows, first, frame, households=None, people=None))]
#[allow(clippy::too_many_arguments)] // the Python signature, keyword by keyword
pub(crate) fn fold_residents(
    py: Python<'_>,
    job: &Job,
    path: PathBuf,
    rows: String,
    first: String,
    frame: String,
    households: Option<PyBackedBytes>,
    people: Option<PyBackedBytes>,
) -> PyResult<Py<PyBytes>> {
    let s = stage(py, &job.inner, &frame, households, people)?;
    let bytes = detached(py, move || Ok(s.fold(&path, &rows, &first)?.to_bytes()))?;
    Ok(PyBytes::new(py, &bytes).unbind())
}
