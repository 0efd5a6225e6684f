//! The native side of `shequ.spark`: what executors call on their rows (ids' keys, cases folded
//! into partials) against a frame built once per process, and the driver's run with the cases
//! from the partials.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyList};
use shequ::analytics::coverage::halo::ReachPart;
use shequ::analytics::events::{CaseFolder, CasesPartial, RosterIds};
use shequ::{HouseholdsPartial, PeopleFrame, ResidentsPartial};

use super::{Job, Table, detached, py_err};

/// The frame of one job in this process, with its case folder: built on first use and kept
/// for the process' life (an executor's Python worker folds many partitions of one job).
type Folders = HashMap<String, &'static CaseFolder<'static>>;

static FOLDERS: Mutex<Option<Folders>> = Mutex::new(None);

/// What a folder borrows, kept for the process' life.
struct Frame {
    job: shequ::Job,
    build: shequ::Build,
    roster: Option<RosterIds>,
}

/// The case folder of `job`, built once per process: the frame from the job's paths, or, for
/// the run `frame` names, from the small layers (or `people`, the driver's frame without
/// footprints: the by-street mode) with the roster's ids from `roster` (bytes, copied only
/// when the folder is built).
fn folder(
    py: Python<'_>,
    job: &shequ::Job,
    frame: Option<String>,
    roster: Option<PyBackedBytes>,
    people: Option<PyBackedBytes>,
) -> PyResult<&'static CaseFolder<'static>> {
    let key = format!(
        "{}|{}|{}",
        frame.as_deref().unwrap_or(""),
        job.base_dir.display(),
        serde_json::to_string(job).expect("a job serialises")
    );
    let found = |key: &str| {
        let folders = FOLDERS.lock().unwrap_or_else(|p| p.into_inner());
        folders.as_ref().and_then(|f| f.get(key).copied())
    };
    if let Some(f) = found(&key) {
        return Ok(f);
    }
    let roster: Option<Vec<u8>> = roster.as_deref().map(<[u8]>::to_vec);
    let people: Option<Vec<u8>> = people.as_deref().map(<[u8]>::to_vec);
    let job = job.clone();
    detached(py, move || {
        let policy = shequ::run::policy(&job)?;
        let keep_text =
            policy.kind == shequ::privacy::OutputKind::Operational && policy.plain_identifiers;
        let (build, roster) = match frame {
            Some(_) => {
                let ids = roster.as_deref().map(RosterIds::from_bytes).transpose()?;
                match people.as_deref() {
                    Some(p) => shequ::run::cases_frame_of(&job, &PeopleFrame::from_bytes(p)?, ids)?,
                    None => shequ::run::cases_frame_with(&job, ids)?,
                }
            }
            None => shequ::run::cases_frame(&job)?,
        };
        let frame: &'static Frame = Box::leak(Box::new(Frame {
            job: job.clone(),
            build,
            roster,
        }));
        let folder = CaseFolder::new(
            &frame.job,
            &frame.build.model,
            frame.roster.as_ref(),
            keep_text,
        )?;
        let folder: &'static CaseFolder<'static> = Box::leak(Box::new(folder));
        let mut folders = FOLDERS.lock().unwrap_or_else(|p| p.into_inner());
        folders.get_or_insert_with(HashMap::new).insert(key, folder);
        Ok(folder)
    })
}

/// Each data row's id key in `path` (a file with the job's case columns), in row order, as
/// two Int64 columns `_k1`, `_k2` (the key's two 64-bit halves; null without an id). `frame`,
/// `roster` and `people` as for [`fold_cases`].
#[pyfunction]
#[pyo3(signature = (job, path, frame=None, roster=None, people=None))]
pub(crate) fn case_keys(
    py: Python<'_>,
    job: &Job,
    path: PathBuf,
    frame: Option<String>,
    roster: Option<PyBackedBytes>,
    people: Option<PyBackedBytes>,
) -> PyResult<Table> {
    let f = folder(py, &job.inner, frame, roster, people)?;
    let keys = detached(py, move || f.keys(&path))?;
    key_table(&keys)
}

/// Keys as two Int64 columns `_k1`, `_k2` (the key's two 64-bit halves; null without one).
pub(crate) fn key_table(keys: &[Option<(u64, u64)>]) -> PyResult<Table> {
    let half = |f: fn(&(u64, u64)) -> u64| -> ArrayRef {
        Arc::new(Int64Array::from_iter(
            keys.iter().map(|k| k.as_ref().map(|k| f(k) as i64)),
        ))
    };
    int64_table(&[("_k1", half(|k| k.0)), ("_k2", half(|k| k.1))])
}

/// A table of Int64 `columns` (name, values), nullable.
pub(crate) fn int64_table(columns: &[(&str, ArrayRef)]) -> PyResult<Table> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, _)| Field::new(*name, DataType::Int64, true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let values = columns.iter().map(|(_, v)| v.clone()).collect();
    let batch = RecordBatch::try_new(schema.clone(), values)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    Ok(Table {
        batches: vec![batch],
        schema,
        geometry_column: None,
        crs: None,
    })
}

/// The cases of `path` folded into a partial (bytes): column `rows` holds each row's data row
/// in the whole input, column `first` the first row with the same id when it repeats one.
/// With `frame` (a run's name), the frame is the small layers (or `people`, the driver's
/// frame without footprints, in the by-street mode) and the roster's ids come from `roster`
/// (see `roster_ids`), so the roster files are not read; else the job's paths.
#[pyfunction]
#[pyo3(signature = (job, path, rows, first, frame=None, roster=None, people=None))]
#[allow(clippy::too_many_arguments)] // the Python signature, keyword by keyword
pub(crate) fn fold_cases(
    py: Python<'_>,
    job: &Job,
    path: PathBuf,
    rows: String,
    first: String,
    frame: Option<String>,
    roster: Option<PyBackedBytes>,
    people: Option<PyBackedBytes>,
) -> PyResult<Py<PyBytes>> {
    let f = folder(py, &job.inner, frame, roster, people)?;
    let bytes = detached(py, move || Ok(f.fold(&path, &rows, &first)?.to_bytes()))?;
    Ok(PyBytes::new(py, &bytes).unbind())
}

/// The cases' partials merged into one, as bytes: what Spark's `treeAggregate` calls on
/// pairs of partials on the executors, so that the driver collects one.
///
/// # Errors
/// `ValueError` for no partials; a data error for bytes that are not a partial of cases.
#[pyfunction]
pub(crate) fn merge_cases(py: Python<'_>, partials: Vec<PyBackedBytes>) -> PyResult<Py<PyBytes>> {
    let mut all: Option<CasesPartial> = None;
    for b in &partials {
        let p = CasesPartial::from_bytes(b).map_err(|e| py_err(py, e))?;
        match all.as_mut() {
            Some(a) => a.merge(p),
            None => all = Some(p),
        }
    }
    let all = all.ok_or_else(|| pyo3::exceptions::PyValueError::new_err("no partials to merge"))?;
    Ok(PyBytes::new(py, &all.to_bytes()).unbind())
}

/// The roster's ids (bytes) from the residents' partials of every row, for the processes that
/// fold cases; `None` when the job does not collect them.
#[pyfunction]
pub(crate) fn roster_ids(
    py: Python<'_>,
    job: &Job,
    residents: Vec<PyBackedBytes>,
) -> PyResult<Option<Py<PyBytes>>> {
    let parts = residents
        .iter()
        .map(|b| ResidentsPartial::from_bytes(b))
        .collect::<shequ::Result<Vec<_>>>()
        .map_err(|e| py_err(py, e))?;
    let ids = shequ::run::roster_ids_of(&job.inner, &parts).map_err(|e| py_err(py, e))?;
    Ok(ids.map(|i| PyBytes::new(py, &i.to_bytes()).unbind()))
}

/// Runs `job` into `out_dir` as `shequ run` does, with the cases from `partials` (the bytes of
/// every row's partial) instead of the job's cases file. Returns the files written. The list
/// is emptied as it is read (see [`run_with_partials`]).
#[pyfunction]
pub(crate) fn run_with_cases(
    py: Python<'_>,
    job: &Job,
    out_dir: PathBuf,
    partials: Bound<'_, PyList>,
) -> PyResult<Vec<String>> {
    run_with_partials(py, job, out_dir, None, Some(partials), None, None)
}

/// Each item of `list` decoded in order. Each item is set to `None` once decoded, so the
/// bytes are freed (when nothing else holds them) before the run that follows needs the
/// memory.
fn drain<T>(
    py: Python<'_>,
    list: Option<Bound<'_, PyList>>,
    decode: impl Fn(&[u8]) -> shequ::Result<T>,
) -> PyResult<Option<Vec<T>>> {
    let Some(list) = list else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(list.len());
    for i in 0..list.len() {
        let bytes: PyBackedBytes = list.get_item(i)?.extract()?;
        out.push(decode(&bytes).map_err(|e| py_err(py, e))?);
        drop(bytes);
        list.set_item(i, py.None())?;
    }
    Ok(Some(out))
}

/// The partials of the lists given, each list emptied as it is decoded.
fn partials(
    py: Python<'_>,
    [households, cases, residents, reach]: [Option<Bound<'_, PyList>>; 4],
) -> PyResult<shequ::run::Partials> {
    Ok(shequ::run::Partials {
        households: drain(py, households, HouseholdsPartial::from_bytes)?,
        cases: drain(py, cases, CasesPartial::from_bytes)?,
        residents: drain(py, residents, ResidentsPartial::from_bytes)?,
        reach: drain(py, reach, ReachPart::from_bytes)?,
    })
}

/// Runs `job` into `out_dir` as `shequ run` does, with the households and the cases from the
/// bytes of every row's partial where given (else from the job's files), and the homes'
/// reach measured street by street from `reach` (coverage measures the rest). Returns the
/// files written.
///
/// Each list is emptied as it is read: its items become `None` once decoded, so the bytes
/// are not held beside the run.
#[pyfunction]
#[pyo3(signature = (job, out_dir, households=None, cases=None, residents=None, reach=None))]
pub(crate) fn run_with_partials(
    py: Python<'_>,
    job: &Job,
    out_dir: PathBuf,
    households: Option<Bound<'_, PyList>>,
    cases: Option<Bound<'_, PyList>>,
    residents: Option<Bound<'_, PyList>>,
    reach: Option<Bound<'_, PyList>>,
) -> PyResult<Vec<String>> {
    let partials = partials(py, [households, cases, residents, reach])?;
    let job = job.inner.clone();
    detached(py, move || {
        let (_, summary) =
            shequ::run::run_with_partials(&job, &out_dir, &shequ::NoProgress, partials)?;
        Ok(summary.written.files)
    })
}

/// [`run_with_partials`], keeping the person lists (whose identifiers come from the roster's
/// rows) for the executors instead of writing them: returns the files (the lists' included)
/// and each list as bytes, for `write_person_list_part`.
#[pyfunction]
#[pyo3(signature = (job, out_dir, households=None, cases=None, residents=None, reach=None))]
pub(crate) fn run_deferring_lists(
    py: Python<'_>,
    job: &Job,
    out_dir: PathBuf,
    households: Option<Bound<'_, PyList>>,
    cases: Option<Bound<'_, PyList>>,
    residents: Option<Bound<'_, PyList>>,
    reach: Option<Bound<'_, PyList>>,
) -> PyResult<(Vec<String>, Vec<Py<PyBytes>>)> {
    let partials = partials(py, [households, cases, residents, reach])?;
    let job = job.inner.clone();
    let (files, lists) = detached(py, move || {
        let (_, summary, lists) =
            shequ::run::run_deferring_lists(&job, &out_dir, &shequ::NoProgress, partials)?;
        let bytes = lists
            .iter()
            .map(shequ::output::person_list::PersonList::to_bytes)
            .collect::<shequ::Result<Vec<_>>>()?;
        Ok((summary.written.files, bytes))
    })?;
    let lists = lists.iter().map(|b| PyBytes::new(py, b).unbind()).collect();
    Ok((files, lists))
}
