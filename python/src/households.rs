//! The native side of `shequ.spark` for households: the working CRS resolved over the whole
//! layer, and what executors call on their rows (ids' keys, households placed into partials)
//! against a frame built once per process (from the job's paths or the driver's broadcast),
//! or by street against their street's piece.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arrow_array::{ArrayRef, Int64Array};

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use shequ::analytics::coverage::halo::FacilityHalo;
use shequ::{HouseholdPlacer, StreetKeys, StreetPiece};

use super::spark::{int64_table, key_table};
use super::{Job, Table, detached, py_err};

/// The placer of each job in this process, built on first use and kept for the process' life
/// (an executor's Python worker places many partitions of one job).
static PLACERS: Mutex<Option<HashMap<String, &'static HouseholdPlacer>>> = Mutex::new(None);

/// The household placer of `job`, built once per process: against the frame from the job's
/// paths, or, for the frame `name` names, against `piece` (the driver's whole frame, bytes:
/// the broadcast mode). The bytes are copied only when the placer is built.
fn placer(
    py: Python<'_>,
    job: &shequ::Job,
    name: Option<String>,
    piece: Option<PyBackedBytes>,
) -> PyResult<&'static HouseholdPlacer> {
    let key = format!(
        "{}|{}|{}",
        name.as_deref().unwrap_or(""),
        job.base_dir.display(),
        serde_json::to_string(job).expect("a job serialises")
    );
    let found = |key: &str| {
        let placers = PLACERS.lock().unwrap_or_else(|p| p.into_inner());
        placers.as_ref().and_then(|p| p.get(key).copied())
    };
    if let Some(p) = found(&key) {
        return Ok(p);
    }
    let piece: Option<Vec<u8>> = piece.as_deref().map(<[u8]>::to_vec);
    let job = job.clone();
    detached(py, move || {
        let p = match piece.as_deref() {
            Some(b) => HouseholdPlacer::for_piece(&job, &StreetPiece::from_bytes(b)?)?,
            None => HouseholdPlacer::new(&job)?,
        };
        let p: &'static HouseholdPlacer = Box::leak(Box::new(p));
        let mut placers = PLACERS.lock().unwrap_or_else(|p| p.into_inner());
        placers.get_or_insert_with(HashMap::new).insert(key, p);
        Ok(p)
    })
}

/// The lon/lat box `[west, south, east, north]` of the usable household coordinates in `path`
/// (a file with the job's household columns), or `None`.
#[pyfunction]
pub(crate) fn household_extent(
    py: Python<'_>,
    job: &Job,
    path: PathBuf,
) -> PyResult<Option<[f64; 4]>> {
    let job = job.inner.clone();
    detached(py, move || shequ::household_extent(&job, &path))
}

/// `job` with its working CRS given: `auto` resolved from the small layers and `households`
/// (the union of every part's [`household_extent`]), as one reading of the whole layer does.
#[pyfunction]
#[pyo3(signature = (job, households=None))]
pub(crate) fn with_working_crs(
    py: Python<'_>,
    job: &Job,
    households: Option<[f64; 4]>,
) -> PyResult<Job> {
    let mut inner = job.inner.clone();
    let crs = shequ::resolve_working_crs(&inner, households).map_err(|e| py_err(py, e))?;
    inner.options.working_crs = shequ::crs::WorkingCrs::Given(crs);
    Ok(Job { inner })
}

/// Each data row's id key in `path` (a file with the job's household columns), in row order,
/// as two Int64 columns `_k1`, `_k2` (null for rows without an id or rejected before ids are
/// compared). `frame` and `piece` as for [`fold_households`].
#[pyfunction]
#[pyo3(signature = (job, path, frame=None, piece=None))]
pub(crate) fn household_keys(
    py: Python<'_>,
    job: &Job,
    path: PathBuf,
    frame: Option<String>,
    piece: Option<PyBackedBytes>,
) -> PyResult<Table> {
    let p = placer(py, &job.inner, frame, piece)?;
    let keys = detached(py, move || p.keys(&path))?;
    key_table(&keys)
}

/// The households of `path` placed into a partial (bytes): column `rows` holds each row's data
/// row in the whole layer, column `first` the first row with the same id when it repeats one.
/// They are placed against the frame built from the job's paths, or, with `piece` (the
/// driver's frame as one piece, [`whole_frame`]'s, decoded once per process under its name
/// `frame`), against that.
#[pyfunction]
#[pyo3(signature = (job, path, rows, first, frame=None, piece=None))]
pub(crate) fn fold_households(
    py: Python<'_>,
    job: &Job,
    path: PathBuf,
    rows: String,
    first: String,
    frame: Option<String>,
    piece: Option<PyBackedBytes>,
) -> PyResult<Py<PyBytes>> {
    let p = placer(py, &job.inner, frame, piece)?;
    let bytes = detached(py, move || Ok(p.fold(&path, &rows, &first)?.to_bytes()))?;
    Ok(PyBytes::new(py, &bytes).unbind())
}

/// The frame of `job` (its small layers, built once) as the broadcast mode sends it: the
/// whole frame as one piece, which households are placed against ([`fold_households`]), and
/// the frame without its footprints, which residents and cases are folded against, as bytes.
#[pyfunction]
pub(crate) fn whole_frame(py: Python<'_>, job: &Job) -> PyResult<(Py<PyBytes>, Py<PyBytes>)> {
    let job = job.inner.clone();
    let (piece, people) = detached(py, move || {
        let (piece, people) = shequ::StreetFrame::uncut(&job)?;
        Ok((piece.to_bytes(), people.to_bytes()))
    })?;
    Ok((
        PyBytes::new(py, &piece).unbind(),
        PyBytes::new(py, &people).unbind(),
    ))
}

/// The street keys of each name (a hash of their bytes) in this process, decoded and indexed
/// on first use.
static KEYS: Mutex<Option<HashMap<String, &'static StreetKeys>>> = Mutex::new(None);

fn street_keys_named(name: &str, bytes: &[u8]) -> shequ::Result<&'static StreetKeys> {
    let mut keys = KEYS.lock().unwrap_or_else(|p| p.into_inner());
    let keys = keys.get_or_insert_with(HashMap::new);
    if let Some(k) = keys.get(name) {
        return Ok(k);
    }
    let k: &'static StreetKeys = Box::leak(Box::new(StreetKeys::from_bytes(bytes)?));
    keys.insert(name.to_owned(), k);
    Ok(k)
}

/// The frame of `job` (its small layers) cut by street: the street keys every executor gets,
/// one piece per key (the last: what has no street), when the job has `[coverage]` one
/// facilities' halo per key, and the frame without its footprints that residents and cases
/// are folded against, each as bytes.
#[pyfunction]
pub(crate) fn street_frame(py: Python<'_>, job: &Job) -> PyResult<StreetCut> {
    let job = job.inner.clone();
    let (cut, halos) = detached(py, move || shequ::run::street_cut(&job))?;
    let bytes = |b: Vec<u8>| PyBytes::new(py, &b).unbind();
    let pieces = cut.pieces.iter().map(|p| bytes(p.to_bytes())).collect();
    let halos = halos.map(|h| h.iter().map(|h| bytes(h.to_bytes())).collect());
    let people = bytes(cut.people.to_bytes());
    Ok((bytes(cut.keys.to_bytes()), pieces, halos, people))
}

/// Street keys, pieces, halos and the frame of people, as bytes.
type StreetCut = (
    Py<PyBytes>,
    Vec<Py<PyBytes>>,
    Option<Vec<Py<PyBytes>>>,
    Py<PyBytes>,
);

/// Each data row's street key in `path` (a file with the job's household columns), in row
/// order, as one Int64 column; `keys` are [`street_frame`]'s, decoded once per
/// process under `name`.
#[pyfunction]
pub(crate) fn household_streets(
    py: Python<'_>,
    job: &Job,
    path: PathBuf,
    name: String,
    keys: Vec<u8>,
) -> PyResult<Table> {
    let job = job.inner.clone();
    let found = detached(py, move || {
        shequ::street_keys(&job, street_keys_named(&name, &keys)?, &path)
    })?;
    let column: ArrayRef = Arc::new(Int64Array::from_iter_values(
        found.iter().map(|&k| i64::from(k)),
    ));
    int64_table(&[("_street", column)])
}

/// The households of `path`, all keyed to `piece`'s street (see [`household_streets`]),
/// placed against that piece only into a partial (bytes), as [`fold_households`] places them
/// against the whole frame; with the street's `halo` (see [`street_frame`]), also the
/// straight-line reach of their homes (bytes, else `None`).
#[pyfunction]
#[pyo3(signature = (job, piece, path, rows, first, halo=None))]
pub(crate) fn fold_households_by_street(
    py: Python<'_>,
    job: &Job,
    piece: Vec<u8>,
    path: PathBuf,
    rows: String,
    first: String,
    halo: Option<Vec<u8>>,
) -> PyResult<(Py<PyBytes>, Option<Py<PyBytes>>)> {
    let job = job.inner.clone();
    let (partial, reach) = detached(py, move || {
        let piece = StreetPiece::from_bytes(&piece)?;
        let placer = HouseholdPlacer::for_piece(&job, &piece)?;
        let partial = placer.fold(&path, &rows, &first)?;
        let reach = match halo {
            Some(h) => Some(FacilityHalo::from_bytes(&h)?.measure(&piece.homes(&partial))),
            None => None,
        };
        Ok((partial.to_bytes(), reach.map(|r| r.to_bytes())))
    })?;
    Ok((
        PyBytes::new(py, &partial).unbind(),
        reach.map(|r| PyBytes::new(py, &r).unbind()),
    ))
}
