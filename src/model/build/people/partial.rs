//! Households placed apart: any process places some of the household layer's rows against the
//! frame (the small layers, built once per process) into a partial; one process merges the
//! partials of every row into the households one reading of the whole layer places.
//!
//! Rows are numbered in the whole layer, and a row repeating an earlier row's id is given that
//! first row, so the partials report rows as one reading does. Spark finds the first rows
//! across partitions from each row's [`HouseholdPlacer::keys`] (`shequ.spark`).

use std::path::Path;

use geo::{Coord, Rect};
use serde::{Deserialize, Serialize};

use super::households::{HouseholdRows, household_crs, read_household_table};
use crate::crs::{Crs, Transformer, WorkingCrs};
use crate::error::{Error, Location, Result};
use crate::index::{PolygonIndex, ranks_by_id};
use crate::io::rows::row_numbers;
use crate::job::{HouseholdLayer, Job};
use crate::model::build::Builder;
use crate::model::build::frame::model_units;
use crate::model::duplicates::SeenIds;
use crate::model::ids::HouseholdId;
use crate::model::level::Layer;
use crate::model::quality::QualityIssue;
use crate::model::{Household, Lineage, Model};
use crate::progress::NoProgress;

/// The households some rows of the layer place, with the rows' issues and number. Partials of
/// disjoint rows merge in any order to the same result.
///
/// # Examples
/// ```
/// use shequ::HouseholdsPartial;
/// let mut a = HouseholdsPartial::default();
/// let b = HouseholdsPartial::from_bytes(&HouseholdsPartial::default().to_bytes())?;
/// a.merge(b);
/// assert_eq!((a.rows(), a.issues().len()), (0, 0));
/// assert!(HouseholdsPartial::from_bytes(b"\xff").is_err());
/// # Ok::<(), shequ::Error>(())
/// ```
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HouseholdsPartial {
    households: Vec<PlacedRow>,
    issues: Vec<QualityIssue>,
    rows: usize,
}

/// A household as it travels: [`Household`] without its member count (residents come later).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PlacedRow {
    id: String,
    location: Option<(f64, f64)>,
    /// Street, community, grid, building.
    lineage: [Option<u32>; 4],
    placed: bool,
    row: usize,
}

impl HouseholdsPartial {
    /// Data rows folded into it, readable or not.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The quality issues of its rows.
    pub fn issues(&self) -> &[QualityIssue] {
        &self.issues
    }

    /// Adds the partial of other rows.
    pub fn merge(&mut self, other: HouseholdsPartial) {
        self.households.extend(other.households);
        self.issues.extend(other.issues);
        self.rows += other.rows;
    }

    /// Each household's data row and home in the working CRS, as coverage takes it: its
    /// location, else the point of its building (`point`, by the building's index in the
    /// whole frame); `None` when it is not placed.
    pub(crate) fn homes(
        &self,
        point: impl Fn(u32) -> Option<Coord<f64>>,
    ) -> Vec<(usize, Option<Coord<f64>>)> {
        self.households
            .iter()
            .map(|h| {
                let location = h.location.map(|(x, y)| Coord { x, y });
                let home = crate::model::home(h.placed, location, || h.lineage[3].and_then(&point));
                (h.row, home)
            })
            .collect()
    }

    /// The partial as bytes (postcard), to send between processes.
    ///
    /// # Panics
    /// Never: every field serialises.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("a partial always serialises")
    }

    /// A partial from [`to_bytes`](Self::to_bytes).
    ///
    /// # Errors
    /// [`Error::Data`] if the bytes are not a partial of households.
    pub fn from_bytes(bytes: &[u8]) -> Result<HouseholdsPartial> {
        postcard::from_bytes(bytes).map_err(|e| {
            Error::data(
                Location::layer(Layer::Household.name()),
                format!("not a partial of households: {e}"),
            )
        })
    }

    fn from_households(households: Vec<Household>, issues: &[QualityIssue], rows: usize) -> Self {
        let households = households
            .into_iter()
            .map(|h| PlacedRow {
                id: h.id.as_str().to_owned(),
                location: h.location.map(|c| (c.x, c.y)),
                lineage: [
                    h.lineage.street,
                    h.lineage.community,
                    h.lineage.grid,
                    h.lineage.building,
                ],
                placed: h.placed,
                row: h.source_index,
            })
            .collect();
        HouseholdsPartial {
            households,
            issues: issues.to_vec(),
            rows,
        }
    }

    /// The households of every merged row, in row order, and their issues.
    pub(crate) fn into_households(mut self) -> (Vec<Household>, Vec<QualityIssue>, usize) {
        self.households.sort_unstable_by_key(|h| h.row);
        let households = self
            .households
            .into_iter()
            .map(|h| {
                let [street, community, grid, building] = h.lineage;
                Household {
                    id: HouseholdId::new(&h.id),
                    location: h.location.map(|(x, y)| Coord { x, y }),
                    lineage: Lineage {
                        street,
                        community,
                        grid,
                        building,
                    },
                    placed: h.placed,
                    residents: 0,
                    source_index: h.row,
                }
            })
            .collect();
        (households, self.issues, self.rows)
    }
}

/// The frame households are placed against (every small layer, in the job's working CRS),
/// built once per process; places files of household rows into [`HouseholdsPartial`]s.
///
/// # Examples
/// The sample's households in two halves, placed apart and merged, give one reading's
/// households:
/// ```
/// use shequ::{HouseholdPlacer, household_extent, resolve_working_crs};
/// let mut job = shequ::Job::from_toml("data-samples/sample-city/job.toml")?;
/// let file = std::path::Path::new("data-samples/sample-city/households.csv");
/// let crs = resolve_working_crs(&job, household_extent(&job, file)?)?;
/// job.options.working_crs = shequ::crs::WorkingCrs::Given(crs);
/// let placer = HouseholdPlacer::new(&job)?;
/// let text = std::fs::read_to_string(file)?;
/// let mut lines = text.lines();
/// let header = format!("{},_row,_first\n", lines.next().unwrap());
/// let (mut a, mut b) = (header.clone(), header);
/// // Each row's first row with the same id, as Spark finds it from the keys.
/// let first = shequ::analytics::events::first_rows(&placer.keys(file)?);
/// for (r, line) in lines.enumerate() {
///     let half = if r % 2 == 0 { &mut a } else { &mut b };
///     let f = first[r].map(|f| f.to_string()).unwrap_or_default();
///     // (The planted broken line is left out: see `fold`.)
///     if line.split(',').count() == 4 {
///         half.push_str(&format!("{line},{r},{f}\n"));
///     }
/// }
/// let dir = tempfile::tempdir()?;
/// let mut partials = Vec::new();
/// for (name, rows) in [("a.csv", a), ("b.csv", b)] {
///     std::fs::write(dir.path().join(name), rows)?;
///     partials.push(placer.fold(&dir.path().join(name), "_row", "_first")?);
/// }
/// let whole = shequ::build(&job)?;
/// let broken = whole.report.for_layer(shequ::Layer::Household)
///     .filter(|i| i.kind == shequ::IssueKind::UnreadableRow).count();
/// assert_eq!(broken, 1);
/// let apart = shequ::build_with_households(&job, &shequ::NoProgress,
///     &mut [], partials)?;
/// assert_eq!(apart.model.households.len(), whole.model.households.len());
/// let placed = |b: &shequ::Build| b.model.households.iter().filter(|h| h.placed).count();
/// assert_eq!(placed(&apart), placed(&whole));
/// assert_eq!(apart.report.counts()[&shequ::Layer::Household].read + broken,
///            whole.report.counts()[&shequ::Layer::Household].read);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct HouseholdPlacer {
    pub(super) job: Job,
    pub(super) layer: HouseholdLayer,
    pub(super) model: Model,
    pub(super) finest: Option<(Layer, PolygonIndex)>,
    /// The lineage of each area of `finest` when the frame is a street's piece.
    pub(super) areas: Option<Vec<Lineage>>,
    pub(super) working: Crs,
}

impl HouseholdPlacer {
    /// Builds the frame of `job`: its small layers, without the rosters.
    ///
    /// # Errors
    /// [`Error::Job`] without `[layers.households]` or when the working CRS is `auto` (see
    /// [`resolve_working_crs`]: every process must place in the same CRS, which the whole
    /// layer's extent decides); as [`build`](crate::build).
    pub fn new(job: &Job) -> Result<HouseholdPlacer> {
        let (layer, working) = given_working_crs(job)?;
        let frame = crate::model::build::build(&small_layers(job))?;
        let finest = frame.model.finest_polygon_level().map(|l| {
            let units = model_units(&frame.model, l);
            let ids: Vec<&str> = units.iter().map(|u| u.2).collect();
            let polys: Vec<_> = units.iter().map(|u| Some(u.0)).collect();
            (l, PolygonIndex::new(&polys, &ranks_by_id(&ids)))
        });
        Ok(HouseholdPlacer {
            job: job.clone(),
            layer,
            model: frame.model,
            finest,
            areas: None,
            working,
        })
    }

    /// The frame's model (no households or residents).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Each data row's id key in `path` (a file with the layer's columns), in row order:
    /// `None` for rows without an id or rejected before ids are compared (unusable
    /// coordinates and no building code). Rows with equal keys repeat one id.
    ///
    /// # Errors
    /// As reading the file and transforming its coordinates.
    pub fn keys(&self, path: &Path) -> Result<Vec<Option<(u64, u64)>>> {
        let t = read_household_table(&self.layer, path, &[])?;
        let mut b = Builder::new(&self.job, &NoProgress);
        let mut rows = self.rows(&mut b, path, &t)?;
        b.reject_missing_ids(&mut rows);
        let seen = SeenIds::new(0);
        let mut keys = vec![None; t.rows_read];
        for i in (0..rows.ids.len()).filter(|&i| !rows.rejected[i]) {
            keys[rows.source[i]] = rows.id(i).map(|id| seen.key(id));
        }
        Ok(keys)
    }

    /// Places the households of `path` (a file with the layer's columns) into a partial.
    /// Column `rows` holds each row's 0-based data row in the whole layer, column `first` the
    /// first row with the same id when the row repeats one (empty otherwise). A line of a CSV
    /// part that cannot be read has no row number to give: it is reported at its data row in
    /// `path` (Spark's parts are Parquet files written from Arrow, which have no such lines).
    ///
    /// # Errors
    /// As reading the file; [`Error::Data`] for a row number that is missing or not a whole
    /// number.
    pub fn fold(&self, path: &Path, rows: &str, first: &str) -> Result<HouseholdsPartial> {
        let mut t = read_household_table(&self.layer, path, &[rows, first])?;
        let at = |i: usize| {
            Location::layer(Layer::Household.name())
                .file(path)
                .index(t.source_row(i))
        };
        let (own, firsts) = row_numbers(&t, rows, first, &at)?;
        t.source_rows = Some(own);
        let mut b = Builder::new(&self.job, &NoProgress);
        let household_rows = self.rows(&mut b, path, &t)?;
        let finest = self.finest.as_ref().map(|(l, i)| (*l, i));
        let areas = self.areas.as_deref();
        let placed = b.placed_households(&self.model, household_rows, finest, Some(&firsts), areas);
        Ok(HouseholdsPartial::from_households(
            placed,
            b.report.issues(),
            t.rows_read,
        ))
    }

    /// The rows of a table, coordinates checked and in the working CRS.
    fn rows(
        &self,
        b: &mut Builder<'_>,
        path: &Path,
        t: &crate::io::table::Table,
    ) -> Result<HouseholdRows> {
        layer_rows(&self.layer, &self.working, b, path, t)
    }
}

/// The household rows of a table read from `path`, coordinates checked and in `working`.
pub(crate) fn layer_rows(
    layer: &HouseholdLayer,
    working: &Crs,
    b: &mut Builder<'_>,
    path: &Path,
    t: &crate::io::table::Table,
) -> Result<HouseholdRows> {
    let crs = household_crs(layer, path)?;
    let mut rows = b.household_rows(layer, t, &crs)?;
    let to_working = Transformer::new(&Crs::lonlat(), working)?;
    b.transform_households(&to_working, working, &mut rows)?;
    Ok(rows)
}

/// The job's household layer and its given working CRS.
///
/// # Errors
/// [`Error::Job`] without `[layers.households]` or when the working CRS is `auto`.
pub(crate) fn given_working_crs(job: &Job) -> Result<(HouseholdLayer, Crs)> {
    let layer = job
        .layers
        .households
        .clone()
        .ok_or_else(|| job.error("no [layers.households] to place"))?;
    let WorkingCrs::Given(working) = job.options.working_crs.clone() else {
        return Err(job.error(
            "households placed apart need a given working CRS: resolve \"auto\" over the \
             whole layer first (resolve_working_crs)",
        ));
    };
    Ok((layer, working))
}

/// `job` without its rosters, registers and analyses: the small layers only.
pub(crate) fn small_layers(job: &Job) -> Job {
    let mut small = job.clone();
    small.layers.households = None;
    small.layers.residents = None;
    small.layers.events = None;
    small.layers.visits = None;
    small
}

/// The box (lon/lat) of the usable coordinates of the household rows in `path` (a file with
/// the layer's columns), if any: what `auto` chooses the working CRS from, with the small
/// layers (see [`resolve_working_crs`]).
///
/// # Examples
/// ```
/// let job = shequ::Job::from_toml("data-samples/sample-city/job.toml")?;
/// let file = std::path::Path::new("data-samples/sample-city/households.csv");
/// let [west, south, east, north] = shequ::household_extent(&job, file)?.expect("located");
/// assert!(west < east && south < north && (106.0..107.0).contains(&west));
/// # Ok::<(), shequ::Error>(())
/// ```
///
/// # Errors
/// As reading the file and checking its coordinates.
pub fn household_extent(job: &Job, path: &Path) -> Result<Option<[f64; 4]>> {
    let layer = job
        .layers
        .households
        .as_ref()
        .ok_or_else(|| job.error("no [layers.households]"))?;
    let t = read_household_table(layer, path, &[])?;
    let mut b = Builder::new(job, &NoProgress);
    let rows = b.household_rows(layer, &t, &household_crs(layer, path)?)?;
    Ok(rows
        .extent()
        .map(|r| [r.min().x, r.min().y, r.max().x, r.max().y]))
}

/// The working CRS of `job` when its households' coordinates span `households` (a lon/lat box
/// `[west, south, east, north]`, the union of [`household_extent`] over every part): the given
/// one, or what `auto` chooses from the small layers and that box, as one reading of the
/// whole layer chooses.
///
/// # Examples
/// ```
/// use shequ::{household_extent, resolve_working_crs};
/// let job = shequ::Job::from_toml("data-samples/sample-city/job.toml")?;
/// let file = std::path::Path::new("data-samples/sample-city/households.csv");
/// let crs = resolve_working_crs(&job, household_extent(&job, file)?)?;
/// assert_eq!(crs, shequ::build(&job)?.model.working_crs);
/// # Ok::<(), shequ::Error>(())
/// ```
///
/// # Errors
/// As reading the small layers; [`Error::Job`] when nothing has coordinates.
pub fn resolve_working_crs(job: &Job, households: Option<[f64; 4]>) -> Result<Crs> {
    if let WorkingCrs::Given(c) = &job.options.working_crs {
        return Ok(c.clone());
    }
    let small = small_layers(job);
    let mut b = Builder::new(&small, &NoProgress);
    let (staged, _) = b.read_layers()?;
    let extent =
        households.map(|[w, s, e, n]| Rect::new(Coord { x: w, y: s }, Coord { x: e, y: n }));
    b.working_crs(&staged, extent)
}
