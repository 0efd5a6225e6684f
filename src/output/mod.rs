//! Writing a built model: GeoParquet layers, the households table, the quality report and the
//! run manifest.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow_array::{ArrayRef, BooleanArray, Float64Array, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use geo::{Geometry, MultiPolygon};
use polars::prelude::*;
use serde_json::json;

use crate::analytics::{Coverage, SpecialNeeds};
use crate::crs::{Crs, Transformer};
use crate::error::{Error, Location, Result};
use crate::io::geoparquet;
use crate::model::build::Build;
use crate::model::level::Layer;
use crate::model::quality::QualityReport;
use crate::model::{Area, Lineage, Model, Sex};
use crate::privacy::{OutputKind, Policy};

pub mod coverage;
mod loss;
/// The self-contained HTML map of an output directory.
pub mod map;
pub mod operational;
/// Hive-style partitioned tables by street and community.
pub mod partition;
pub mod release;
pub mod special;

pub use loss::{Published, TableError};
use loss::{published_shares, table_errors, write_accuracy};
use release::Release;

/// Counts per unit of one level: see the `Tally` index constants.
pub type Counts = [u64; 6];

/// Counts of buildings, households and residents (by sex) per unit of every level, from
/// placed households. Index each unit's [`Counts`] with [`Tally::BUILDINGS`],
/// [`Tally::HOUSEHOLDS`], [`Tally::RESIDENTS`], [`Tally::MALE`], [`Tally::FEMALE`] and
/// [`Tally::SEX_UNKNOWN`].
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Per street.
    pub streets: Vec<Counts>,
    /// Per community.
    pub communities: Vec<Counts>,
    /// Per grid.
    pub grids: Vec<Counts>,
    /// Per building (its buildings count is 1).
    pub buildings: Vec<Counts>,
}

impl Tally {
    /// Index of the number of buildings.
    pub const BUILDINGS: usize = 0;
    /// Index of the number of placed households.
    pub const HOUSEHOLDS: usize = 1;
    /// Index of the number of residents of placed households.
    pub const RESIDENTS: usize = 2;
    /// Index of male residents.
    pub const MALE: usize = 3;
    /// Index of female residents.
    pub const FEMALE: usize = 4;
    /// Index of residents whose sex is not known.
    pub const SEX_UNKNOWN: usize = 5;

    /// Counts buildings, placed households and their residents per unit.
    ///
    /// # Examples
    /// ```
    /// use shequ::output::Tally;
    /// let dir = tempfile::tempdir()?;
    /// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(5))?;
    /// let built = shequ::build(&shequ::Job::from_toml(dir.path().join("job.toml"))?)?;
    /// let tally = Tally::of(&built.model);
    /// let households: u64 = tally.grids.iter().map(|g| g[Tally::HOUSEHOLDS]).sum();
    /// assert_eq!(households as usize, built.model.households.iter().filter(|h| h.placed).count());
    /// for g in &tally.grids {
    ///     assert_eq!(g[Tally::RESIDENTS], g[Tally::MALE] + g[Tally::FEMALE] + g[Tally::SEX_UNKNOWN]);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn of(model: &Model) -> Tally {
        let mut t = Tally {
            streets: vec![[0; 6]; model.streets.len()],
            communities: vec![[0; 6]; model.communities.len()],
            grids: vec![[0; 6]; model.grids.len()],
            buildings: vec![[0; 6]; model.buildings.len()],
        };
        let mut add = |l: &Lineage, k: usize, n: u64| {
            for (v, idx) in [
                (&mut t.streets, l.street),
                (&mut t.communities, l.community),
                (&mut t.grids, l.grid),
                (&mut t.buildings, l.building),
            ] {
                if let Some(i) = idx {
                    v[i as usize][k] += n;
                }
            }
        };
        for b in &model.buildings {
            add(&b.lineage, Self::BUILDINGS, 1);
        }
        for h in model.households.iter().filter(|h| h.placed) {
            add(&h.lineage, Self::HOUSEHOLDS, 1);
            add(&h.lineage, Self::RESIDENTS, h.residents as u64);
        }
        for r in &model.residents {
            let h = &model.households[r.household as usize];
            let k = match r.sex {
                Sex::Male => Self::MALE,
                Sex::Female => Self::FEMALE,
                Sex::Unknown => Self::SEX_UNKNOWN,
            };
            add(&h.lineage, k, 1);
        }
        t
    }

    /// The counts at a level.
    pub fn at(&self, layer: Layer) -> &[Counts] {
        match layer {
            Layer::Street => &self.streets,
            Layer::Community => &self.communities,
            Layer::Grid => &self.grids,
            Layer::Building => &self.buildings,
            _ => &[],
        }
    }
}

/// Named Arrow columns of an output table.
pub(crate) type Columns = Vec<(String, ArrayRef)>;

/// The ids up the chain of a lineage, as output columns.
pub(crate) fn parent_columns(
    model: &Model,
    layer: Layer,
    lineages: &[Lineage],
) -> Vec<(String, ArrayRef)> {
    let mut cols = Vec::new();
    for parent in [Layer::Grid, Layer::Community, Layer::Street] {
        if parent >= layer || !model.has(parent) {
            continue;
        }
        let ids: StringArray = lineages
            .iter()
            .map(|l| l.at(parent).map(|i| model.code(parent, i)))
            .collect();
        cols.push((
            format!("{}_id", parent.singular()),
            Arc::new(ids) as ArrayRef,
        ));
    }
    cols
}

/// The columns of an area layer: id, name, parent ids, area, the given count columns, then
/// `derived` and `source_index`; and the geometries.
fn area_columns<I: AsRef<str>>(
    model: &Model,
    layer: Layer,
    units: &[Area<I>],
    counts: Columns,
) -> (Columns, Vec<Option<Geometry<f64>>>) {
    let mut cols: Vec<(String, ArrayRef)> = vec![
        (
            format!("{}_id", layer.singular()),
            Arc::new(
                units
                    .iter()
                    .map(|u| Some(u.id.as_ref()))
                    .collect::<StringArray>(),
            ),
        ),
        (
            "name".into(),
            Arc::new(
                units
                    .iter()
                    .map(|u| u.name.as_deref())
                    .collect::<StringArray>(),
            ),
        ),
    ];
    let lineages: Vec<Lineage> = units.iter().map(|u| u.lineage).collect();
    cols.extend(parent_columns(model, layer, &lineages));
    cols.push((
        "area_m2".into(),
        Arc::new(Float64Array::from_iter_values(
            units.iter().map(|u| u.area_m2),
        )),
    ));
    cols.extend(counts);
    cols.push((
        "derived".into(),
        Arc::new(BooleanArray::from_iter(
            units.iter().map(|u| Some(u.source_index.is_none())),
        )),
    ));
    cols.push((
        "source_index".into(),
        Arc::new(UInt64Array::from_iter(
            units.iter().map(|u| u.source_index.map(|i| i as u64)),
        )),
    ));
    let geoms = units
        .iter()
        .map(|u| Some(Geometry::MultiPolygon(u.geometry.clone())))
        .collect();
    (cols, geoms)
}

/// The base count columns of every level table.
pub const BASE_COLUMNS: [&str; 5] = [
    "households",
    "residents",
    "residents_male",
    "residents_female",
    "residents_sex_unknown",
];

/// Count columns of a level table: buildings (not personal: never suppressed), the released
/// base counts, residents per km² (null where `residents` is), and in research runs the
/// `suppressed` column.
fn count_columns(
    release: &Release,
    layer: Layer,
    counts: &[Counts],
    area_m2: Option<&[f64]>,
) -> Columns {
    let mut cols: Columns = Vec::new();
    if layer != Layer::Building {
        cols.push((
            "buildings".into(),
            Arc::new(UInt64Array::from_iter_values(
                counts.iter().map(|c| c[Tally::BUILDINGS]),
            )),
        ));
    }
    let mut published = release.arrays(layer, counts.len(), &BASE_COLUMNS);
    let suppressed =
        (published.len() > BASE_COLUMNS.len()).then(|| published.pop().expect("column"));
    cols.extend(published);
    if let Some(areas) = area_m2 {
        cols.push((
            "residents_per_km2".into(),
            Arc::new(per_km2(
                &(0..areas.len() as u32)
                    .map(|u| release.count(layer, u, "residents"))
                    .collect::<Vec<_>>(),
                &areas.iter().map(|a| Some(*a)).collect::<Vec<_>>(),
            )),
        ));
    }
    cols.extend(suppressed);
    cols
}

/// Counts per km² (areas in m²), null where the count is suppressed or the area unknown or 0.
pub(crate) fn per_km2(counts: &[Option<u64>], areas_m2: &[Option<f64>]) -> Float64Array {
    counts
        .iter()
        .zip(areas_m2)
        .map(|(n, a)| match (n, a) {
            (Some(n), Some(a)) if *a > 0.0 => Some(*n as f64 / (a / 1e6)),
            _ => None,
        })
        .collect()
}

/// Where [`write_model_to`] puts its outputs: files under a directory, or Arrow record batches
/// and texts in memory (for bindings and notebooks, which hand the tables on without copying).
///
/// Every table is addressed by its path relative to the output directory without extension:
/// `grids`, `special_needs/grid`, `coverage/blind_spots`. In memory, GeoJSON copies are not
/// made and partitioned tables stay whole; Parquet tables and the summaries are kept exactly as
/// the files would hold them (spatial tables keep their `geo` schema metadata).
///
/// # Examples
/// ```
/// use shequ::output::Out;
/// let out = Out::memory();
/// assert!(out.is_memory());
/// assert!(out.tables().is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct Out {
    dir: PathBuf,
    prefix: String,
    memory: Option<Arc<Mutex<Memory>>>,
    /// Writes the Parquet files of a directory output on its own thread, so that encoding and
    /// compressing one table overlaps computing the next.
    writer: Option<Arc<Writer>>,
    /// Person-level tables as Hive partitions by street and community (`[output] partitioned`).
    partitioned: bool,
}

/// A table waiting to be written.
type Pending = (PathBuf, Arc<Schema>, arrow_array::RecordBatch);

/// The background Parquet writer of a directory [`Out`]: files are written in the order they
/// are given; [`Out::finish`] waits for all of them and returns the first error.
#[derive(Debug)]
struct Writer {
    queue: Mutex<Option<std::sync::mpsc::Sender<Pending>>>,
    thread: Mutex<Option<std::thread::JoinHandle<Result<()>>>>,
}

impl Writer {
    fn new() -> Writer {
        let (tx, rx) = std::sync::mpsc::channel::<Pending>();
        let thread = std::thread::spawn(move || {
            let mut result = Ok(());
            for (path, schema, batch) in rx {
                let written = geoparquet::write_batch(&path, schema, &batch);
                if result.is_ok() {
                    result = written;
                }
            }
            result
        });
        Writer {
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        }
    }

    fn send(&self, item: Pending) -> Result<()> {
        let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        match queue.as_ref() {
            Some(tx) if tx.send(item.clone()).is_ok() => Ok(()),
            // Finished already (or the thread is gone): write here.
            _ => geoparquet::write_batch(&item.0, item.1, &item.2),
        }
    }

    fn finish(&self) -> Result<()> {
        drop(self.queue.lock().unwrap_or_else(|e| e.into_inner()).take());
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        match thread {
            Some(t) => t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            None => Ok(()),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Only reached without `finish` when an error is already being returned.
        let _ = self.finish();
    }
}

/// The outputs kept by an in-memory [`Out`].
#[derive(Debug, Clone, Default)]
pub struct Memory {
    /// Tables by name (`grids`, `special_needs/grid`, ...), as written to Parquet.
    pub tables: BTreeMap<String, arrow_array::RecordBatch>,
    /// Texts by file name (`special_needs/summary.md`, ...).
    pub texts: BTreeMap<String, String>,
}

impl Out {
    /// Files under `dir`.
    pub fn dir(dir: impl Into<PathBuf>) -> Out {
        Out {
            dir: dir.into(),
            prefix: String::new(),
            memory: None,
            writer: Some(Arc::new(Writer::new())),
            partitioned: false,
        }
    }

    /// Tables in memory.
    pub fn memory() -> Out {
        Out {
            dir: PathBuf::new(),
            prefix: String::new(),
            memory: Some(Arc::default()),
            writer: None,
            partitioned: false,
        }
    }

    /// The same target, writing person-level tables as Hive partitions by street and
    /// community when `partitioned` is set (as `[output] partitioned = true` asks; memory
    /// targets keep tables whole).
    ///
    /// # Examples
    /// ```
    /// let out = shequ::output::Out::memory().with_partitioned(true);
    /// assert!(out.is_partitioned());
    /// ```
    pub fn with_partitioned(mut self, partitioned: bool) -> Out {
        self.partitioned = partitioned;
        self
    }

    /// True if person-level tables are written as Hive partitions.
    pub fn is_partitioned(&self) -> bool {
        self.partitioned
    }

    /// Waits until every table given so far is written (Parquet files of a directory output
    /// are written on a background thread).
    ///
    /// # Errors
    /// The first write error.
    pub fn finish(&self) -> Result<()> {
        match &self.writer {
            Some(w) => w.finish(),
            None => Ok(()),
        }
    }

    /// Whether outputs are kept in memory rather than written.
    pub fn is_memory(&self) -> bool {
        self.memory.is_some()
    }

    /// The directory written to (empty for memory).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The tables kept so far (empty when writing files).
    ///
    /// # Panics
    /// If another thread panicked while writing into this memory target.
    pub fn tables(&self) -> BTreeMap<String, arrow_array::RecordBatch> {
        self.memory
            .as_ref()
            .map(|m| m.lock().expect("not poisoned").tables.clone())
            .unwrap_or_default()
    }

    /// Everything kept so far (empty when writing files).
    ///
    /// # Panics
    /// If another thread panicked while writing into this memory target.
    pub fn into_memory(self) -> Memory {
        self.memory
            .map(|m| m.lock().expect("not poisoned").clone())
            .unwrap_or_default()
    }

    /// The same output, for the sub-directory `name`.
    pub(crate) fn sub(&self, name: &str) -> Out {
        Out {
            dir: self.dir.join(name),
            prefix: format!("{}{name}/", self.prefix),
            memory: self.memory.clone(),
            writer: self.writer.clone(),
            partitioned: self.partitioned,
        }
    }

    /// Creates the directory (nothing in memory).
    pub(crate) fn create(&self) -> Result<()> {
        if self.memory.is_none() {
            std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        }
        Ok(())
    }

    /// Writes `rel` (a `.parquet` path below this directory) or keeps it under its name
    /// without the extension.
    pub(crate) fn batch(
        &self,
        rel: &str,
        schema: Arc<Schema>,
        batch: &arrow_array::RecordBatch,
    ) -> Result<()> {
        match &self.memory {
            Some(m) => {
                let name = format!("{}{}", self.prefix, rel.trim_end_matches(".parquet"));
                m.lock()
                    .expect("not poisoned")
                    .tables
                    .insert(name, batch.clone());
                Ok(())
            }
            None => {
                let path = self.dir.join(rel);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                }
                match &self.writer {
                    Some(w) => w.send((path, schema, batch.clone())),
                    None => geoparquet::write_batch(&path, schema, batch),
                }
            }
        }
    }

    /// Writes or keeps a text file `rel`.
    pub(crate) fn text(&self, rel: &str, text: String) -> Result<()> {
        match &self.memory {
            Some(m) => {
                let name = format!("{}{rel}", self.prefix);
                m.lock().expect("not poisoned").texts.insert(name, text);
                Ok(())
            }
            None => {
                let path = self.dir.join(rel);
                std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
            }
        }
    }
}

/// The files a run wrote.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Written {
    /// Paths, relative to the output directory.
    pub files: Vec<String>,
    /// Research runs: suppressed cells (below k, complementary).
    pub suppressed: Option<(usize, usize)>,
    /// Research runs: per output table, how many of its count cells are published.
    pub published: Vec<Published>,
    /// Research-dp runs: the budget per (level, table).
    pub dp_shares: Vec<crate::privacy::dp::Share>,
    /// Research-dp runs: per output table, the mean absolute error of its counts (never
    /// written to an output file).
    pub dp_errors: Vec<TableError>,
}

/// The value of row `i` of an Arrow array as JSON (the types output tables use).
fn json_value(a: &ArrayRef, i: usize) -> serde_json::Value {
    use arrow_array::Array;
    if a.is_null(i) {
        return serde_json::Value::Null;
    }
    let any = a.as_any();
    if let Some(v) = any.downcast_ref::<StringArray>() {
        json!(v.value(i))
    } else if let Some(v) = any.downcast_ref::<Float64Array>() {
        json!(v.value(i))
    } else if let Some(v) = any.downcast_ref::<UInt64Array>() {
        json!(v.value(i))
    } else if let Some(v) = any.downcast_ref::<BooleanArray>() {
        json!(v.value(i))
    } else {
        serde_json::Value::Null
    }
}

/// Where a layer's geometry came from, for the provenance metadata of its outputs.
fn provenance(build: &Build, layer: Layer, steps: &[String]) -> serde_json::Value {
    let input = build.inputs.iter().find(|i| i.layer == layer);
    let mut conversions: Vec<String> = input.map(|i| i.conversions.clone()).unwrap_or_default();
    conversions.extend(steps.iter().cloned());
    json!({
        "shequ:source": input
            .map(|i| i.path.display().to_string())
            .unwrap_or_else(|| "derived by dissolving the level below".into()),
        "shequ:source_crs": input.and_then(|i| i.crs.clone()),
        "shequ:working_crs": build.model.working_crs.definition(),
        "shequ:conversions": conversions,
    })
}

/// Writes spatial layers as GeoParquet (and GeoJSON), with provenance.
pub(crate) struct GeoWriter<'a> {
    build: &'a Build,
    pub(crate) out: &'a Out,
    output_crs: &'a Crs,
    to_out: Transformer,
    to_json: Option<(Transformer, &'a Crs)>,
    pub(crate) written: Written,
    /// The last geometries transformed for each (layer, GeoJSON?) pair, as given and as
    /// transformed: every file of a level (the level table, its special-needs and coverage
    /// tables) carries the same unit geometries, which are transformed once.
    transformed: HashMap<(Layer, bool), (Geometries, Geometries)>,
    /// A noisy release: per level, each count column's noise (scale and 95% half-width),
    /// stated in the metadata of every table of that level.
    accuracy: HashMap<Layer, serde_json::Map<String, serde_json::Value>>,
}

/// One file's geometries, in row order.
type Geometries = Vec<Option<Geometry<f64>>>;

impl GeoWriter<'_> {
    /// The noise of the count columns among `cols` at `layer`, in a noisy release.
    fn table_accuracy(
        &self,
        layer: Layer,
        cols: &[(String, ArrayRef)],
    ) -> Option<serde_json::Value> {
        let all = self.accuracy.get(&layer)?;
        let mine: serde_json::Map<String, serde_json::Value> = cols
            .iter()
            .filter_map(|(n, _)| all.get(n).map(|a| (n.clone(), a.clone())))
            .collect();
        (!mine.is_empty()).then_some(serde_json::Value::Object(mine))
    }

    fn write(
        &mut self,
        layer: Layer,
        cols: Vec<(String, ArrayRef)>,
        geoms: Vec<Option<Geometry<f64>>>,
    ) -> Result<()> {
        self.write_as(layer.name(), layer, cols, geoms)
    }

    /// Writes `<stem>.parquet` and `<stem>.geojson` (stem relative to the output directory)
    /// with the provenance of `layer`.
    pub(crate) fn write_as(
        &mut self,
        stem: &str,
        layer: Layer,
        cols: Vec<(String, ArrayRef)>,
        geoms: Vec<Option<Geometry<f64>>>,
    ) -> Result<()> {
        if let Some((t, crs)) = self.to_json.as_ref().filter(|_| !self.out.is_memory()) {
            let g = match self.transformed.get(&(layer, true)) {
                Some((given, done)) if *given == geoms => done.clone(),
                _ => {
                    let mut g = geoms.clone();
                    let failed = t.transform_geometries(&mut g)?;
                    if let Some((i, why)) = failed.first() {
                        return Err(Error::crs(
                            Location::layer(layer.name()).index(*i),
                            format!("cannot write GeoJSON in {crs}: {why}"),
                        ));
                    }
                    self.transformed
                        .insert((layer, true), (geoms.clone(), g.clone()));
                    g
                }
            };
            let system = match crs.shift() {
                Some(crate::crs::Shift::Gcj02) => {
                    "GCJ-02 (not RFC 7946 WGS84: for AMap and Tencent map SDKs)".to_owned()
                }
                Some(crate::crs::Shift::Bd09) => {
                    "BD-09 (not RFC 7946 WGS84: for Baidu map SDKs)".to_owned()
                }
                None => format!("{crs} longitude/latitude (RFC 7946)"),
            };
            let mut foreign = geojson::JsonObject::new();
            foreign.insert("shequ:coordinate_system".into(), json!(system));
            foreign.insert(
                "shequ:provenance".into(),
                provenance(self.build, layer, &t.steps()),
            );
            if let Some(a) = self.table_accuracy(layer, &cols) {
                foreign.insert("shequ:dp_accuracy".into(), a);
            }
            let json_name = format!("{stem}.geojson");
            let features = g.iter().enumerate().map(|(i, g)| {
                let props: geojson::JsonObject = cols
                    .iter()
                    .map(|(k, a)| (k.clone(), json_value(a, i)))
                    .collect();
                (g.as_ref(), props)
            });
            crate::io::geojson::write(
                &self.out.path().join(&json_name),
                features,
                Some(foreign),
                7,
            )?;
            self.written.files.push(json_name);
        }
        let name = format!("{stem}.parquet");
        let geoms = match self.transformed.remove(&(layer, false)) {
            Some((given, done)) if given == geoms => {
                self.transformed
                    .insert((layer, false), (given, done.clone()));
                done
            }
            _ => {
                let given = geoms.clone();
                let mut geoms = geoms;
                let failed = self.to_out.transform_geometries(&mut geoms)?;
                if let Some((i, why)) = failed.first() {
                    return Err(Error::crs(
                        Location::default().file(&name).index(*i),
                        format!("cannot write in {}: {why}", self.output_crs),
                    ));
                }
                self.transformed
                    .insert((layer, false), (given, geoms.clone()));
                geoms
            }
        };
        let mut prov = provenance(self.build, layer, &self.to_out.steps());
        if let Some(a) = self.table_accuracy(layer, &cols) {
            prov["shequ:dp_accuracy"] = a;
        }
        let (schema, batch) = geoparquet::geo_batch(
            &self.out.path().join(&name),
            cols,
            &geoms,
            self.output_crs,
            Some(prov),
        )?;
        self.out.batch(&name, schema, &batch)?;
        self.written.files.push(name);
        Ok(())
    }
}

/// Writes the model's outputs under `out` as the privacy policy allows.
///
/// * Both kinds: every area level and the facilities as GeoParquet in `output_crs` (and, when
///   `geojson_crs` is given, as GeoJSON in it: WGS84 for RFC 7946, or GCJ-02 / BD-09 for AMap
///   and Baidu SDKs, flagged in the file's `shequ:coordinate_system` member), and
///   `quality.parquet` (household and resident ids masked; in research runs their ids are left
///   out).
/// * `research`: counts with small-cell and complementary suppression (`suppressed` column per
///   row, `suppression.parquet`, `remainders.parquet`); buildings only when the finest level is
///   the building; no person-level rows.
/// * `operational`: full counts, buildings, and for the policy's grid or community only,
///   `households.parquet` and `residents.parquet` (see [`operational`]).
/// * With `special_needs`: `special_needs/<level>.parquet` and `.geojson` per level, its
///   remainders (and, in research runs, suppression) tables and `summary.md`. One suppression
///   pass covers every count of every file, so files cannot be differenced.
/// * With `coverage`: `coverage/<level>.parquet` and `.geojson` (street, community, grid),
///   `blind_spots`, `equity`, `lorenz`, `rules` and `siting` tables, its remainders (and
///   suppression) tables, `summary.md`, and in operational runs the scoped
///   `coverage/residents.parquet` (see [`coverage`]). Coverage counts go through the same
///   suppression pass.
///
/// # Errors
/// [`Error::Io`], [`Error::Parquet`], [`Error::Polars`] or [`Error::Crs`] (output CRS; GCJ-02
/// and BD-09 cannot be GeoParquet CRSs); [`Error::Privacy`] for an operational scope that is
/// not in the model.
pub fn write_model(
    build: &Build,
    out: &Path,
    output_crs: &Crs,
    geojson_crs: Option<&Crs>,
    policy: &Policy,
    special_needs: Option<&SpecialNeeds>,
    coverage: Option<&Coverage>,
) -> Result<Written> {
    write_model_to(
        build,
        &Out::dir(out).with_partitioned(build.job.output.partitioned),
        output_crs,
        geojson_crs,
        policy,
        special_needs,
        coverage,
    )
}

/// [`write_model`] to files or to memory ([`Out::memory`]): the same tables either way.
///
/// # Examples
/// ```
/// use shequ::output::{Out, write_model_to};
/// use shequ::privacy::Policy;
/// let dir = tempfile::tempdir()?;
/// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(3))?;
/// let built = shequ::build(&shequ::Job::from_toml(dir.path().join("job.toml"))?)?;
/// let out = Out::memory();
/// let crs = shequ::Crs::parse("EPSG:4490")?;
/// write_model_to(&built, &out, &crs, None, &Policy::research(5), None, None)?;
/// let tables = out.tables();
/// assert_eq!(tables["grids"].num_rows(), built.model.grids.len());
/// assert!(tables["grids"].schema().metadata().contains_key("geo"));
/// assert!(tables.contains_key("quality"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As [`write_model`].
pub fn write_model_to(
    build: &Build,
    out: &Out,
    output_crs: &Crs,
    geojson_crs: Option<&Crs>,
    policy: &Policy,
    special_needs: Option<&SpecialNeeds>,
    coverage: Option<&Coverage>,
) -> Result<Written> {
    out.create()?;
    let model = &build.model;
    let tally = Tally::of(model);
    let mut w = GeoWriter {
        build,
        out,
        output_crs,
        to_out: Transformer::new(&model.working_crs, output_crs)?,
        to_json: geojson_crs
            .map(|c| Transformer::new(&model.working_crs, c).map(|t| (t, c)))
            .transpose()?,
        written: Written::default(),
        transformed: HashMap::new(),
        accuracy: HashMap::new(),
    };
    let mut columns = release::CountColumns::from_tally(&tally);
    if let Some(sn) = special_needs {
        columns = sn.columns(model, columns)?;
    }
    if let Some(cov) = coverage {
        columns = self::coverage::columns(cov, model, columns);
    }
    let release = Release::with_columns(model, policy, columns)?;
    if let Some(noisy) = release.noise() {
        w.accuracy = loss::accuracy_by_level(&release, noisy);
    }
    let counts = |layer: Layer, areas: Option<Vec<f64>>| {
        count_columns(&release, layer, tally.at(layer), areas.as_deref())
    };
    for layer in [Layer::Street, Layer::Community, Layer::Grid] {
        if !model.has(layer) {
            continue;
        }
        let (c, g) = match layer {
            Layer::Street => {
                let a = model.streets.iter().map(|u| u.area_m2).collect();
                area_columns(model, layer, &model.streets, counts(layer, Some(a)))
            }
            Layer::Community => {
                let a = model.communities.iter().map(|u| u.area_m2).collect();
                area_columns(model, layer, &model.communities, counts(layer, Some(a)))
            }
            _ => {
                let a = model.grids.iter().map(|u| u.area_m2).collect();
                area_columns(model, layer, &model.grids, counts(layer, Some(a)))
            }
        };
        w.write(layer, c, g)?;
    }
    if release.levels().contains(&Layer::Building) {
        let b = &model.buildings;
        let mut cols: Vec<(String, ArrayRef)> = vec![
            (
                "building_id".into(),
                Arc::new(
                    b.iter()
                        .map(|x| Some(x.id.as_str()))
                        .collect::<StringArray>(),
                ),
            ),
            (
                "name".into(),
                Arc::new(b.iter().map(|x| x.name.as_deref()).collect::<StringArray>()),
            ),
        ];
        let lineages: Vec<Lineage> = b.iter().map(|x| x.lineage).collect();
        cols.extend(parent_columns(model, Layer::Building, &lineages));
        cols.push((
            "footprint_area_m2".into(),
            Arc::new(Float64Array::from_iter(
                b.iter()
                    .map(|x| x.footprint.as_ref().map(geo::Area::unsigned_area)),
            )),
        ));
        cols.extend(counts(Layer::Building, None));
        cols.push((
            "source_index".into(),
            Arc::new(UInt64Array::from_iter_values(
                b.iter().map(|x| x.source_index as u64),
            )),
        ));
        let geoms = b
            .iter()
            .map(|x| {
                Some(match &x.footprint {
                    Some(f) => Geometry::MultiPolygon(MultiPolygon::clone(f)),
                    None => Geometry::Point(x.point.into()),
                })
            })
            .collect();
        w.write(Layer::Building, cols, geoms)?;
    }
    if !model.facilities.is_empty() {
        let f = &model.facilities;
        let mut cols: Vec<(String, ArrayRef)> = vec![
            (
                "facility_id".into(),
                Arc::new(
                    f.iter()
                        .map(|x| Some(x.id.as_str()))
                        .collect::<StringArray>(),
                ),
            ),
            (
                "name".into(),
                Arc::new(f.iter().map(|x| x.name.as_deref()).collect::<StringArray>()),
            ),
            (
                "type".into(),
                Arc::new(
                    f.iter()
                        .map(|x| Some(x.kind.as_str()))
                        .collect::<StringArray>(),
                ),
            ),
            (
                "capacity".into(),
                Arc::new(Float64Array::from_iter(f.iter().map(|x| x.capacity))),
            ),
        ];
        let lineages: Vec<Lineage> = f.iter().map(|x| x.lineage).collect();
        cols.extend(parent_columns(model, Layer::Facility, &lineages));
        let geoms = f
            .iter()
            .map(|x| Some(Geometry::Point(x.point.into())))
            .collect();
        w.write(Layer::Facility, cols, geoms)?;
    }
    if let Some(sn) = special_needs {
        special::write(&mut w, &release, model, sn, policy)?;
    }
    if let Some(cov) = coverage {
        self::coverage::write(&mut w, &release, build, cov, policy)?;
        let names: Vec<String> = cov
            .measures
            .iter()
            .flat_map(|m| self::coverage::within_names(cov, m))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let files = release.write_tables(model, out, self::coverage::DIR, &refs)?;
        w.written.files.extend(files);
    }
    let mut written = w.written;
    written
        .files
        .extend(release.write_tables(model, out, "", &BASE_COLUMNS)?);
    written.suppressed = release.suppressed_cells();
    if policy.kind == OutputKind::Research {
        written.published = published_shares(&release, special_needs, coverage);
    }
    if let Some(noisy) = release.noise() {
        write_accuracy(out, &release, noisy)?;
        written.files.push("dp_accuracy.parquet".into());
        written.dp_shares = noisy.shares.clone();
        written.dp_errors = table_errors(&release, special_needs, coverage);
    }
    if policy.kind == OutputKind::Operational && model.has(Layer::Household) {
        written
            .files
            .extend(operational::write_lists_to(build, out, policy)?);
    }
    let (schema, batch) = quality_batch(&build.report, policy.kind)?;
    out.batch("quality.parquet", schema, &batch)?;
    written.files.push("quality.parquet".into());
    out.finish()?;
    Ok(written)
}

/// Writes a plain (non-spatial) Parquet table `name` under `out`.
pub(crate) fn write_table(
    out: &Out,
    name: &str,
    fields: Vec<Field>,
    cols: Vec<ArrayRef>,
) -> Result<()> {
    let schema = Arc::new(Schema::new(fields));
    let batch =
        arrow_array::RecordBatch::try_new(schema.clone(), cols).map_err(|e| Error::Parquet {
            at: Location::default().file(out.path().join(name)),
            message: e.to_string(),
        })?;
    out.batch(name, schema, &batch)
}

/// Writes the quality report as a Parquet table with columns `layer`, `index`, `id`, `kind`,
/// `severity`, `detail`. Household and resident ids are masked in the report; in a research
/// run they are left out (null): the row index points into the data owner's own roster.
///
/// # Errors
/// [`Error::Io`] or [`Error::Parquet`].
pub fn write_quality(report: &QualityReport, path: &Path, kind: OutputKind) -> Result<()> {
    let (schema, batch) = quality_batch(report, kind)?;
    geoparquet::write_batch(path, schema, &batch)
}

/// The quality report as the record batch [`write_quality`] writes.
fn quality_batch(
    report: &QualityReport,
    kind: OutputKind,
) -> Result<(Arc<Schema>, arrow_array::RecordBatch)> {
    let issues = report.issues();
    let personal = |l: Layer| matches!(l, Layer::Household | Layer::Resident);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(
            issues
                .iter()
                .map(|i| Some(i.layer.name()))
                .collect::<StringArray>(),
        ),
        Arc::new(UInt64Array::from_iter(
            issues.iter().map(|i| i.index.map(|v| v as u64)),
        )),
        Arc::new(
            issues
                .iter()
                .map(|i| match kind {
                    OutputKind::Research | OutputKind::ResearchDp if personal(i.layer) => None,
                    _ => i.id.as_deref(),
                })
                .collect::<StringArray>(),
        ),
        Arc::new(
            issues
                .iter()
                .map(|i| Some(i.kind.code()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            issues
                .iter()
                .map(|i| Some(i.severity.code()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            issues
                .iter()
                .map(|i| Some(i.detail.as_str()))
                .collect::<StringArray>(),
        ),
    ];
    let schema = Arc::new(Schema::new(vec![
        Field::new("layer", DataType::Utf8, false),
        Field::new("index", DataType::UInt64, true),
        Field::new("id", DataType::Utf8, true),
        Field::new("kind", DataType::Utf8, false),
        Field::new("severity", DataType::Utf8, false),
        Field::new("detail", DataType::Utf8, false),
    ]));
    let batch =
        arrow_array::RecordBatch::try_new(schema.clone(), cols).map_err(|e| Error::Parquet {
            at: Location::layer("quality"),
            message: e.to_string(),
        })?;
    Ok((schema, batch))
}

impl Model {
    /// Households as a polars `DataFrame`: `household_id`, `building_id`, `grid_id`,
    /// `community_id`, `street_id` (null where absent or unplaced), `residents`, `placed`,
    /// `source_index`. Locations are not included (they are person-level data).
    ///
    /// The household ids are plain: this is the library's in-memory view for the data owner's
    /// own code. Files for others go through [`write_model`] and the job's privacy policy
    /// (research tables, or pseudonymised operational lists).
    ///
    /// # Examples
    /// ```
    /// use polars::prelude::*;
    /// let dir = tempfile::tempdir()?;
    /// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(5))?;
    /// let built = shequ::build(&shequ::Job::from_toml(dir.path().join("job.toml"))?)?;
    /// let per_grid = built
    ///     .model
    ///     .households_frame()?
    ///     .lazy()
    ///     .filter(col("placed"))
    ///     .group_by([col("grid_id")])
    ///     .agg([len().alias("households")])
    ///     .collect()?;
    /// assert_eq!(per_grid.height(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Polars`] (should not happen).
    pub fn households_frame(&self) -> Result<DataFrame> {
        let h = &self.households;
        let code = |layer: Layer, l: &Lineage| l.at(layer).map(|i| self.code(layer, i));
        let col = |layer: Layer| -> Column {
            let v: Vec<Option<&str>> = h.iter().map(|x| code(layer, &x.lineage)).collect();
            Column::new(format!("{}_id", layer.singular()).into(), v)
        };
        DataFrame::new_infer_height(vec![
            Column::new(
                "household_id".into(),
                h.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
            ),
            col(Layer::Building),
            col(Layer::Grid),
            col(Layer::Community),
            col(Layer::Street),
            Column::new(
                "residents".into(),
                h.iter().map(|x| x.residents).collect::<Vec<u32>>(),
            ),
            Column::new(
                "placed".into(),
                h.iter().map(|x| x.placed).collect::<Vec<bool>>(),
            ),
            Column::new(
                "source_index".into(),
                h.iter()
                    .map(|x| x.source_index as u64)
                    .collect::<Vec<u64>>(),
            ),
        ])
        .map_err(|e| Error::Polars {
            at: Location::layer("households"),
            source: Box::new(e),
        })
    }
}

/// SHA-256 of a file, hex encoded, remembered for the process by path, size and modification
/// time (so a file hashed ahead by [`prehash_files`] is not read twice, and a changed file is
/// hashed again). A caller asking for a file another thread is hashing waits for its answer.
///
/// # Examples
/// ```
/// let dir = tempfile::tempdir()?;
/// let p = dir.path().join("a.txt");
/// std::fs::write(&p, "abc")?;
/// let h = shequ::output::sha256_file(&p)?;
/// assert_eq!(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
/// std::fs::write(&p, "abcd")?; // another size: hashed again
/// assert_ne!(shequ::output::sha256_file(&p)?, h);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Io`].
pub fn sha256_file(path: &Path) -> Result<String> {
    type Key = (std::path::PathBuf, u64, Option<std::time::SystemTime>);
    type Cell = Arc<std::sync::Mutex<Option<String>>>;
    static SEEN: std::sync::LazyLock<std::sync::Mutex<HashMap<Key, Cell>>> =
        std::sync::LazyLock::new(Default::default);
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let key = (path.to_path_buf(), meta.len(), meta.modified().ok());
    let cell = SEEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(key)
        .or_default()
        .clone();
    let mut hash = cell
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(h) = hash.as_ref() {
        return Ok(h.clone());
    }
    let h = hash_file(path)?;
    *hash = Some(h.clone());
    Ok(h)
}

/// Hashes `paths` with [`sha256_file`] on a background thread, so a manifest written later
/// finds them done; errors are left for that later call to report.
pub fn prehash_files(paths: Vec<std::path::PathBuf>) {
    std::thread::spawn(move || {
        for p in paths {
            let _ = sha256_file(&p);
        }
    });
}

fn hash_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Where an output directory's manifest lives.
pub fn manifest_path(out: &Path) -> PathBuf {
    out.join("manifest.json")
}
