//! Writing a built model: GeoParquet layers, the households table, the quality report and the
//! run manifest.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_schema::{Field, Schema};

use crate::analytics::{Coverage, SpecialNeeds};
use crate::crs::{Crs, Transformer};
use crate::error::{Error, Location, Result};
use crate::model::build::Build;
use crate::model::level::Layer;
use crate::privacy::{OutputKind, Policy};

pub mod coverage;
pub mod events;
mod events_lists;
mod events_summary;
mod loss;
/// The self-contained HTML map of an output directory.
pub mod map;
pub mod operational;
/// Hive-style partitioned tables by street and community.
pub mod partition;
pub mod person_list;
pub mod registers;
pub mod release;
pub mod special;

pub use crate::analytics::counts::{Counts, Tally};
pub use loss::{Published, TableError};
use loss::{published_shares, table_errors, write_accuracy};
use release::Release;

/// Named Arrow columns of an output table.
pub(crate) type Columns = Vec<(String, ArrayRef)>;

mod columns;
mod files;
mod geowriter;
mod households;
mod layers;
mod out;
mod quality;

pub use columns::BASE_COLUMNS;
use columns::count_columns;
pub(crate) use columns::{parent_columns, per_km2};
pub use files::{manifest_path, prehash_files, sha256_file};
pub(crate) use geowriter::GeoWriter;
pub use out::{Memory, Out};
use quality::quality_batch;
pub use quality::write_quality;

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
/// * With `registers`: `registers/<level>.parquet` (street, community, grid): per register and
///   kind the findings of linking it to the roster, through the same suppression pass (left out
///   of research-dp runs); in operational runs the scoped `registers/fix_list.parquet` (see
///   [`registers`]).
/// * With `events`: `events/<level>.parquet` (street, community, grid): cases by category,
///   source, status, card and step, visits, through the same suppression pass (left out of
///   research-dp runs), with rates, times per step and hot spots from the published counts;
///   `events/periods_<level>.parquet`, `events/departments.parquet`, `events/summary.md`; in
///   operational runs the scoped card list and visit lists (see [`events`]).
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
    results: Results<'_>,
) -> Result<Written> {
    write_model_to(
        build,
        &Out::dir(out).with_partitioned(build.job.output.partitioned),
        output_crs,
        geojson_crs,
        policy,
        results,
    )
}

/// The analyses' results a model's outputs are written with.
#[derive(Debug, Clone, Copy, Default)]
pub struct Results<'a> {
    /// Special-needs labels and counts.
    pub special_needs: Option<&'a SpecialNeeds>,
    /// Coverage, accessibility and siting.
    pub coverage: Option<&'a Coverage>,
    /// The registers linked to the roster.
    pub registers: Option<&'a crate::registry::Links>,
    /// Cases and visits of the grid work loop.
    pub events: Option<&'a crate::analytics::events::Events>,
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
/// write_model_to(&built, &out, &crs, None, &Policy::research(5), Default::default())?;
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
    results: Results<'_>,
) -> Result<Written> {
    let Results {
        special_needs,
        coverage,
        registers,
        events,
    } = results;
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
    // Register counts are per-row findings, not bounded per person: a differentially private
    // release leaves them out (the manifest has each register's totals).
    let registers = registers.filter(|_| policy.kind != OutputKind::ResearchDp);
    if let Some(links) = registers {
        columns = links.columns(model, columns);
    }
    // Cases are not bounded per person either (one resident may report many).
    let events = events.filter(|_| policy.kind != OutputKind::ResearchDp);
    if let Some(ev) = events {
        columns = ev.columns(model, columns);
    }
    crate::trace::step("count columns");
    let release = Release::with_columns(model, policy, columns)?;
    crate::trace::step("release (suppression)");
    if let Some(noisy) = release.noise() {
        w.accuracy = loss::accuracy_by_level(&release, noisy);
    }
    let counts = |layer: Layer, areas: Option<Vec<f64>>| {
        count_columns(&release, layer, tally.at(layer), areas.as_deref())
    };
    for layer in [Layer::Street, Layer::Community, Layer::Grid] {
        if model.has(layer) {
            let (c, g) = layers::areas(model, layer, &counts);
            w.write(layer, c, g)?;
        }
    }
    if release.levels().contains(&Layer::Building) {
        let (cols, geoms) = layers::buildings(model, counts(Layer::Building, None));
        w.write(Layer::Building, cols, geoms)?;
    }
    if !model.facilities.is_empty() {
        let (cols, geoms) = layers::facilities(model);
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
    if let Some(links) = registers {
        self::registers::write(&mut w, &release, build, links, policy)?;
    }
    if let Some(ev) = events {
        self::events::write(&mut w, &release, build, ev, policy)?;
        crate::trace::step("events tables");
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
