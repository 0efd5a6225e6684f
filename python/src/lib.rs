//! `shequ._core`: the native module under the `shequ` Python package.
//!
//! Thin by design: every computation is the Rust crate's own (the same code paths as the CLI);
//! this module moves jobs in, Arrow tables out (through the Arrow PyCapsule interface, without
//! copying), maps errors to the `shequ.errors` hierarchy, and runs long calls on a worker thread
//! with the GIL released while the calling thread stays responsive to Ctrl-C.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::{ArrayRef, BooleanArray, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};
use pyo3_arrow::error::PyArrowResult;
use pyo3_arrow::ffi::{ArrayIterator, to_schema_pycapsule, to_stream_pycapsule};

// The module's Rust allocations (the model, its tables) use mimalloc, as the CLI does. Arrow
// buffers handed to Python are released through this module's own callbacks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use pyo3_arrow::input::AnyRecordBatch;
use shequ::Layer;

mod households;
mod lists;
mod residents;
mod spark;
mod state;
use state::{State, build_labelled, policy_of};

/// Maps a shequ error to its class in `shequ.errors`, with the location as attributes.
fn py_err(py: Python<'_>, e: shequ::Error) -> PyErr {
    let class = match &e {
        shequ::Error::Io { .. } => "IoError",
        shequ::Error::Job { .. } => "JobError",
        shequ::Error::ColumnNotFound { .. } => "ColumnNotFoundError",
        shequ::Error::Data { .. } => "DataError",
        shequ::Error::Crs { .. } => "CrsError",
        shequ::Error::Polars { .. } => "ComputeError",
        shequ::Error::Privacy { .. } => "PrivacyError",
        shequ::Error::Parquet { .. } => "FormatError",
        shequ::Error::Internal { .. } => "InternalError",
        _ => "ShequError",
    };
    let made = (|| -> PyResult<PyErr> {
        let module = py.import("shequ.errors")?;
        let exc = module.getattr(class)?.call1((e.to_string(),))?;
        let at = e.location().cloned().unwrap_or_default();
        exc.setattr("layer", at.layer)?;
        exc.setattr("file", at.file.map(|f| f.display().to_string()))?;
        exc.setattr("index", at.index)?;
        exc.setattr("column", at.column)?;
        if let shequ::Error::Job { path, .. } = &e {
            exc.setattr("file", path.display().to_string())?;
        }
        Ok(PyErr::from_value(exc))
    })();
    made.unwrap_or_else(|import_failed| import_failed)
}

/// Runs `f` on a worker thread with the GIL released. The calling thread wakes every 100 ms to
/// let Python handle signals, so Ctrl-C raises `KeyboardInterrupt` at once (the worker finishes
/// its step in the background and its result is dropped).
fn detached<T: Send + 'static>(
    py: Python<'_>,
    f: impl FnOnce() -> shequ::Result<T> + Send + 'static,
) -> PyResult<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("shequ-worker".into())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(result);
        })
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start a worker thread: {e}")))?;
    // A `Receiver` is not `Sync`; the mutex lets the closure that releases the GIL borrow it.
    let rx = Mutex::new(rx);
    loop {
        let next = py.detach(|| {
            rx.lock()
                .expect("only this thread locks it")
                .recv_timeout(Duration::from_millis(100))
        });
        match next {
            Ok(Ok(result)) => return result.map_err(|e| py_err(py, e)),
            Ok(Err(panic)) => {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "unknown panic".into());
                return Err(PyRuntimeError::new_err(format!(
                    "internal error in shequ (please report): {what}"
                )));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => py.check_signals()?,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(PyRuntimeError::new_err("the worker thread stopped"));
            }
        }
    }
}

/// A job: what to read and how (the TOML job file's structure).
#[pyclass(frozen, module = "shequ._core")]
struct Job {
    inner: shequ::Job,
}

#[pymethods]
impl Job {
    /// Reads a job file; relative paths are resolved against its directory.
    #[staticmethod]
    fn from_toml(py: Python<'_>, path: PathBuf) -> PyResult<Job> {
        shequ::Job::from_toml(&path)
            .map(|inner| Job { inner })
            .map_err(|e| py_err(py, e))
    }

    /// Parses a job from TOML text; relative paths are resolved against `base_dir`.
    #[staticmethod]
    fn from_toml_str(py: Python<'_>, text: &str, base_dir: PathBuf) -> PyResult<Job> {
        shequ::Job::from_toml_str(text, base_dir)
            .map(|inner| Job { inner })
            .map_err(|e| py_err(py, e))
    }

    /// Parses a job from JSON text of the same structure; paths relative to `base_dir`.
    #[staticmethod]
    fn from_json(py: Python<'_>, text: &str, base_dir: PathBuf) -> PyResult<Job> {
        shequ::Job::from_json_str(text, base_dir)
            .map(|inner| Job { inner })
            .map_err(|e| py_err(py, e))
    }

    /// The job as JSON text (every section, with defaults filled in).
    fn to_json(&self) -> String {
        serde_json::to_string(&self.inner).expect("a job serialises")
    }

    /// The directory relative paths are resolved against.
    #[getter]
    fn base_dir(&self) -> PathBuf {
        self.inner.base_dir.clone()
    }

    /// The job file, if read from one.
    #[getter]
    fn source(&self) -> Option<PathBuf> {
        self.inner.source.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "Job(name={:?}, base_dir={:?})",
            self.inner.name.as_deref().unwrap_or(""),
            self.inner.base_dir
        )
    }
}

/// An Arrow table owned by Rust, handed to Python through the Arrow PyCapsule interface.
///
/// Spatial tables carry WKB geometry in `geometry_column` and their CRS as PROJJSON.
#[pyclass(frozen, module = "shequ._core")]
struct Table {
    batches: Vec<RecordBatch>,
    schema: SchemaRef,
    geometry_column: Option<String>,
    crs: Option<String>,
}

impl Table {
    /// A kept output table: the `bbox` covering column (a Parquet concern) is dropped, the
    /// geometry column and CRS are read from the `geo` metadata.
    fn from_output(batch: RecordBatch) -> Table {
        let geo: Option<serde_json::Value> = batch
            .schema()
            .metadata()
            .get("geo")
            .and_then(|m| serde_json::from_str(m).ok());
        let Some(geo) = geo else {
            return Table {
                schema: batch.schema(),
                batches: vec![batch],
                geometry_column: None,
                crs: None,
            };
        };
        let column = geo["primary_column"].as_str().map(str::to_owned);
        let crs = column
            .as_ref()
            .map(|c| geo["columns"][c]["crs"].to_string())
            .filter(|c| c != "null");
        let schema = batch.schema();
        let keep: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| schema.field(i).name() != "bbox")
            .collect();
        let batch = batch.project(&keep).expect("indices are in range");
        Table {
            schema: batch.schema(),
            batches: vec![batch],
            geometry_column: column,
            crs,
        }
    }

    fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

#[pymethods]
impl Table {
    /// Number of rows.
    fn __len__(&self) -> usize {
        self.num_rows()
    }

    /// Column names in order.
    #[getter]
    fn column_names(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// The WKB geometry column of a spatial table.
    #[getter]
    fn geometry_column(&self) -> Option<String> {
        self.geometry_column.clone()
    }

    /// The CRS of a spatial table as PROJJSON text.
    #[getter]
    fn crs(&self) -> Option<String> {
        self.crs.clone()
    }

    /// The Arrow schema as a PyCapsule.
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyArrowResult<Bound<'py, PyCapsule>> {
        to_schema_pycapsule(py, self.schema.as_ref())
    }

    /// The table as an Arrow C stream PyCapsule (zero copy).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyCapsule>>,
    ) -> PyArrowResult<Bound<'py, PyCapsule>> {
        let fields = self.schema.fields().clone();
        let arrays = self
            .batches
            .clone()
            .into_iter()
            .map(|b| Ok(Arc::new(arrow_array::StructArray::from(b)) as ArrayRef));
        let reader = Box::new(ArrayIterator::new(
            arrays,
            Field::new_struct("", fields, false)
                .with_metadata(self.schema.metadata().clone())
                .into(),
        ));
        to_stream_pycapsule(py, reader, requested_schema)
    }

    fn __repr__(&self) -> String {
        format!(
            "Table({} rows, columns {:?})",
            self.num_rows(),
            self.column_names()
        )
    }
}

/// Wraps any Arrow stream (a polars DataFrame, a pyarrow Table, ...) without copying, and marks
/// `geometry_column` as GeoArrow WKB (`geoarrow.wkb`) with the PROJJSON `crs`, so GeoArrow-aware
/// readers (GeoPandas `from_arrow`, lonboard, DuckDB spatial) see geometry and CRS.
#[pyfunction]
fn geoarrow_table(
    data: AnyRecordBatch,
    geometry_column: &str,
    crs: Option<&str>,
) -> PyResult<Table> {
    let reader = data.into_reader()?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let mut found = false;
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if f.name() != geometry_column {
                return f.as_ref().clone();
            }
            found = true;
            let mut meta = f.metadata().clone();
            meta.insert("ARROW:extension:name".into(), "geoarrow.wkb".into());
            let ext = match crs {
                Some(c) => format!(r#"{{"crs":{c},"crs_type":"projjson"}}"#),
                None => "{}".into(),
            };
            meta.insert("ARROW:extension:metadata".into(), ext);
            f.as_ref().clone().with_metadata(meta)
        })
        .collect();
    if !found {
        return Err(PyValueError::new_err(format!(
            "no column {geometry_column:?} in the table"
        )));
    }
    let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let batches = batches
        .into_iter()
        .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(Table {
        batches,
        schema,
        geometry_column: Some(geometry_column.to_owned()),
        crs: crs.map(str::to_owned),
    })
}

/// Writes any Arrow stream as a Parquet file (zstd), e.g. an in-memory roster for a job.
#[pyfunction]
fn write_parquet(py: Python<'_>, data: AnyRecordBatch, path: PathBuf) -> PyResult<usize> {
    let reader = data.into_reader()?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    detached(py, move || {
        let batch = arrow_select::concat::concat_batches(&schema, &batches).map_err(|e| {
            shequ::Error::Parquet {
                at: shequ::Location::default().file(&path),
                message: e.to_string(),
            }
        })?;
        shequ::io::geoparquet::write_batch(&path, schema, &batch)?;
        Ok(batch.num_rows())
    })
}

/// Writes the synthetic sample district into `out_dir`; returns the path of its `job.toml`.
#[pyfunction]
#[pyo3(signature = (out_dir, *, households=4000, communities=7, grids_per_community=4,
    edge_detail=6, plant_problems=true, seed=2024, streets=1))]
#[allow(clippy::too_many_arguments)]
fn sample(
    py: Python<'_>,
    out_dir: PathBuf,
    households: usize,
    communities: usize,
    grids_per_community: usize,
    edge_detail: usize,
    plant_problems: bool,
    seed: u64,
    streets: usize,
) -> PyResult<PathBuf> {
    let cfg = shequ::sample::SampleConfig {
        seed,
        households,
        streets,
        communities,
        grids_per_community,
        edge_detail,
        plant_problems,
    };
    detached(py, move || {
        shequ::sample::write_sample(&out_dir, &cfg)?;
        Ok(out_dir.join("job.toml"))
    })
}

/// A built model: the five levels and facilities in the working CRS, every input row placed or
/// reported.
#[pyclass(frozen, module = "shequ._core")]
struct Model {
    job: shequ::Job,
    state: Arc<Mutex<State>>,
}

#[pyfunction]
/// Reads, checks, transforms and places every row of the job's layers.
fn build(py: Python<'_>, job: &Job) -> PyResult<Model> {
    let j = job.inner.clone();
    let (built, labels, links, roster_ids) = detached(py, move || build_labelled(&j))?;
    Ok(Model {
        job: job.inner.clone(),
        state: Arc::new(Mutex::new(State {
            base_report: built.report.clone(),
            base_steps: built.steps.clone(),
            build: built,
            cache: None,
            labels,
            links,
            roster_ids,
        })),
    })
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

#[pymethods]
impl Model {
    /// Every output table of the analyses `job` asks for (the model's own job by default), by
    /// name as in an output directory without the extension (`grids`, `special_needs/grid`,
    /// `coverage/blind_spots`, ...), and the summaries (`special_needs/summary.md`, ...).
    #[pyo3(signature = (job=None))]
    fn outputs(
        &self,
        py: Python<'_>,
        job: Option<&Job>,
    ) -> PyResult<(BTreeMap<String, Table>, BTreeMap<String, String>)> {
        let job = job.map_or_else(|| self.job.clone(), |j| j.inner.clone());
        let state = self.state.clone();
        let memory = detached(py, move || lock(&state).outputs(&job))?;
        let tables = memory
            .tables
            .iter()
            .map(|(k, b)| (k.clone(), Table::from_output(b.clone())))
            .collect();
        Ok((tables, memory.texts.clone()))
    }

    /// Writes every output of `job` (the model's own by default) under `out_dir`, with
    /// `manifest.json` (and `map.html` if the job asks): what `shequ run` writes. Returns the
    /// files written, relative to `out_dir`.
    #[pyo3(signature = (out_dir, job=None))]
    fn write(&self, py: Python<'_>, out_dir: PathBuf, job: Option<&Job>) -> PyResult<Vec<String>> {
        let job = job.map_or_else(|| self.job.clone(), |j| j.inner.clone());
        let state = self.state.clone();
        detached(py, move || {
            let started = std::time::SystemTime::now();
            let t0 = std::time::Instant::now();
            let mut s = lock(&state);
            s.reset();
            let analysis = s.analyse(&job)?;
            let summary = shequ::run::write_outputs(
                &job,
                &mut s.build,
                analysis,
                &out_dir,
                &shequ::NoProgress,
                started,
                t0,
            )?;
            Ok(summary.written.files)
        })
    }

    /// Households: `household_id` (masked, keyed pseudonym or plain), `building_id`, `grid_id`,
    /// `community_id`, `street_id`, `residents`, `placed`, `source_index`. No locations.
    #[pyo3(signature = (identifiers="masked"))]
    fn households(&self, py: Python<'_>, identifiers: &str) -> PyResult<Table> {
        let policy = policy_of(&self.job).map_err(|e| py_err(py, e))?;
        let pseudonyms = match identifiers {
            "masked" | "plain" => None,
            "pseudonym" => Some(policy.pseudonyms.clone().ok_or_else(|| {
                py_err(
                    py,
                    shequ::Error::Privacy {
                        message: "identifiers=\"pseudonym\" needs an operational job with a \
                                  pseudonym key (privacy.secret_env or privacy.secret_file)"
                            .into(),
                    },
                )
            })?),
            other => {
                return Err(PyValueError::new_err(format!(
                    "identifiers must be \"masked\", \"pseudonym\" or \"plain\", not {other:?}"
                )));
            }
        };
        let s = lock(&self.state);
        let m = &s.build.model;
        let h = &m.households;
        let id = |x: &shequ::Household| match (&pseudonyms, identifiers) {
            (Some(p), _) => p.pseudonym("household", x.id.as_str()),
            (None, "plain") => x.id.as_str().to_owned(),
            _ => shequ::privacy::mask_identifier(x.id.as_str()),
        };
        let code = |layer: Layer, x: &shequ::Household| -> Option<String> {
            x.lineage.at(layer).map(|i| m.code(layer, i).to_owned())
        };
        let mut fields = vec![Field::new("household_id", DataType::Utf8, false)];
        let mut cols: Vec<ArrayRef> =
            vec![Arc::new(StringArray::from_iter_values(h.iter().map(id)))];
        for layer in [
            Layer::Building,
            Layer::Grid,
            Layer::Community,
            Layer::Street,
        ] {
            fields.push(Field::new(
                format!("{}_id", layer.singular()),
                DataType::Utf8,
                true,
            ));
            cols.push(Arc::new(StringArray::from_iter(
                h.iter().map(|x| code(layer, x)),
            )));
        }
        fields.push(Field::new("residents", DataType::UInt32, false));
        cols.push(Arc::new(UInt32Array::from_iter_values(
            h.iter().map(|x| x.residents),
        )));
        fields.push(Field::new("placed", DataType::Boolean, false));
        cols.push(Arc::new(BooleanArray::from_iter(
            h.iter().map(|x| Some(x.placed)),
        )));
        fields.push(Field::new("source_index", DataType::UInt64, false));
        cols.push(Arc::new(UInt64Array::from_iter_values(
            h.iter().map(|x| x.source_index as u64),
        )));
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), cols)
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        Ok(Table {
            batches: vec![batch],
            schema,
            geometry_column: None,
            crs: None,
        })
    }

    /// The working CRS (a metric CRS chosen from the data), as `EPSG:nnnn` or PROJ text.
    #[getter]
    fn working_crs(&self) -> String {
        lock(&self.state)
            .build
            .model
            .working_crs
            .definition()
            .to_owned()
    }

    /// Rows read, placed and rejected per layer.
    fn counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (layer, c) in lock(&self.state).base_report.counts() {
            let e = PyDict::new(py);
            e.set_item("read", c.read)?;
            e.set_item("placed", c.placed)?;
            e.set_item("rejected", c.rejected)?;
            d.set_item(layer.name(), e)?;
        }
        Ok(d)
    }

    /// The levels present, top down.
    #[getter]
    fn levels(&self) -> Vec<String> {
        lock(&self.state)
            .build
            .model
            .levels
            .iter()
            .map(|l| l.name().to_owned())
            .collect()
    }

    /// The model's job.
    #[getter]
    fn job(&self) -> Job {
        Job {
            inner: self.job.clone(),
        }
    }

    fn __repr__(&self) -> String {
        let s = lock(&self.state);
        let m = &s.build.model;
        format!(
            "Model({} streets, {} communities, {} grids, {} buildings, {} households, {} facilities)",
            m.streets.len(),
            m.communities.len(),
            m.grids.len(),
            m.buildings.len(),
            m.households.len(),
            m.facilities.len()
        )
    }
}

/// The shequ version and the PROJ library compiled in.
#[pyfunction]
fn versions() -> (String, String) {
    (
        env!("CARGO_PKG_VERSION").to_owned(),
        shequ::crs::proj_version(),
    )
}

/// The native module.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    shequ::process::avoid_transparent_huge_pages();
    m.add_class::<Job>()?;
    m.add_class::<Table>()?;
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(build, m)?)?;
    m.add_function(wrap_pyfunction!(sample, m)?)?;
    m.add_function(wrap_pyfunction!(geoarrow_table, m)?)?;
    m.add_function(wrap_pyfunction!(write_parquet, m)?)?;
    m.add_function(wrap_pyfunction!(versions, m)?)?;
    m.add_function(wrap_pyfunction!(spark::case_keys, m)?)?;
    m.add_function(wrap_pyfunction!(spark::fold_cases, m)?)?;
    m.add_function(wrap_pyfunction!(spark::run_with_cases, m)?)?;
    m.add_function(wrap_pyfunction!(spark::run_with_partials, m)?)?;
    m.add_function(wrap_pyfunction!(spark::run_deferring_lists, m)?)?;
    m.add_function(wrap_pyfunction!(lists::person_list_parts, m)?)?;
    m.add_function(wrap_pyfunction!(lists::write_person_list_part, m)?)?;
    m.add_function(wrap_pyfunction!(spark::roster_ids, m)?)?;
    m.add_function(wrap_pyfunction!(spark::merge_cases, m)?)?;
    m.add_function(wrap_pyfunction!(households::household_extent, m)?)?;
    m.add_function(wrap_pyfunction!(households::with_working_crs, m)?)?;
    m.add_function(wrap_pyfunction!(households::household_keys, m)?)?;
    m.add_function(wrap_pyfunction!(households::fold_households, m)?)?;
    m.add_function(wrap_pyfunction!(households::street_frame, m)?)?;
    m.add_function(wrap_pyfunction!(households::whole_frame, m)?)?;
    m.add_function(wrap_pyfunction!(households::household_streets, m)?)?;
    m.add_function(wrap_pyfunction!(households::fold_households_by_street, m)?)?;
    m.add_function(wrap_pyfunction!(residents::merge_households, m)?)?;
    m.add_function(wrap_pyfunction!(residents::resident_keys, m)?)?;
    m.add_function(wrap_pyfunction!(residents::fold_residents, m)?)?;
    Ok(())
}
