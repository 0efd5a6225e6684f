//! Building the model: read every layer, check it, transform it into the working CRS, and place
//! every child in its parents by declared code and by spatial containment.

mod frame;
mod people;

use std::path::PathBuf;
use std::time::Instant;

use foldhash::{HashMap, HashMapExt};
use geo::{Geometry, MultiPolygon};
use serde::Serialize;

use crate::crs::{Crs, Transformer};
use crate::error::{Error, Location, Result, excerpt};
use crate::index::{PolygonIndex, ranks_by_id};
use crate::job::{Job, SpatialLayer};
use crate::model::Model;
use crate::model::checks;
use crate::model::level::Layer;
use crate::model::quality::{IssueKind, LayerCount, QualityReport, Severity};
use crate::model::unit::Unit;
use crate::progress::{NoProgress, Progress};
pub(crate) use frame::coord_issue;
use frame::{Staged, derive_by_dissolve, model_units, store_units};
pub use people::{
    HouseholdPlacer, HouseholdsPartial, PeopleFrame, PeopleSink, Placed, ResidentFolder,
    ResidentsPartial, StreetFrame, StreetKeys, StreetPiece, household_extent, resolve_working_crs,
    restream, street_keys,
};
use people::{HouseholdRows, Placer, RosterPart, stream_roster};
pub(crate) use people::{from_part, part_bytes, renumber, renumbering, scatter};
use std::sync::mpsc::Receiver;

/// What a build read and how long each step took, for the run manifest.
#[derive(Debug, Clone, Serialize)]
pub struct InputInfo {
    /// The layer.
    pub layer: Layer,
    /// The file.
    pub path: PathBuf,
    /// Rows or features read.
    pub rows: usize,
    /// The CRS the layer was read in (spatial layers and located rosters).
    pub crs: Option<String>,
    /// Where the CRS came from: `job`, `file` or `default`.
    pub crs_source: Option<&'static str>,
    /// Every conversion applied to the layer's coordinates, in order.
    pub conversions: Vec<String>,
}

/// Wall time of one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepTime {
    /// Step name.
    pub step: String,
    /// Seconds.
    pub seconds: f64,
}

/// The result of [`build`]: the model, its quality report, and what was read.
#[derive(Debug, Clone)]
pub struct Build {
    /// The validated model.
    pub model: Model,
    /// Every problem found, and the per-layer accounting.
    pub report: QualityReport,
    /// The inputs read.
    pub inputs: Vec<InputInfo>,
    /// Wall time per step.
    pub steps: Vec<StepTime>,
    /// The job it was built from (operational lists read the roster again through it).
    pub job: Job,
}

/// Builds and validates the model described by a job.
///
/// # Examples
/// ```
/// let dir = tempfile::tempdir()?;
/// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(1))?;
/// let job = shequ::Job::from_toml(dir.path().join("job.toml"))?;
/// let built = shequ::build(&job)?;
/// assert_eq!(built.model.grids.len(), 4);
/// built.report.check_accounting().map_err(|(_, why)| why)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// Whole-file problems: unreadable or truncated files, unknown columns, a CRS PROJ cannot use.
/// Row problems are not errors: they are in [`Build::report`].
///
/// # Performance
/// Each spatial index is built once; point location, transformation and checks run in parallel
/// with rayon.
pub fn build(job: &Job) -> Result<Build> {
    build_with_progress(job, &NoProgress)
}

/// [`build`] with progress reporting.
///
/// # Errors
/// As [`build`].
pub fn build_with_progress(job: &Job, progress: &dyn Progress) -> Result<Build> {
    build_with_people(job, progress, &mut [])
}

/// [`build_with_progress`], handing every chunk of the roster to `sinks` (the analyses of
/// people) as its residents are placed, so that the roster is read once for all of them.
///
/// # Examples
/// ```
/// use shequ::{Placed, PeopleSink, build_with_people};
/// use shequ::io::table::Table;
/// /// Counts the residents placed, chunk by chunk.
/// struct Count(usize);
/// impl PeopleSink for Count {
///     fn columns(&self) -> Vec<String> { Vec::new() }
///     fn header(&mut self, _: &[String]) -> shequ::Result<()> { Ok(()) }
///     fn chunk(&mut self, _: &shequ::Model, _: &Table, placed: &[Placed]) -> shequ::Result<()> {
///         self.0 += placed.len();
///         Ok(())
///     }
/// }
/// let dir = tempfile::tempdir()?;
/// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(1))?;
/// let mut job = shequ::Job::from_toml(dir.path().join("job.toml"))?;
/// job.options.chunk_rows = "97".parse()?;
/// let mut count = Count(0);
/// let built = build_with_people(&job, &shequ::NoProgress, &mut [&mut count])?;
/// assert_eq!(count.0, built.model.residents.len());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As [`build`], and a sink's errors.
pub fn build_with_people(
    job: &Job,
    progress: &dyn Progress,
    sinks: &mut [&mut dyn PeopleSink],
) -> Result<Build> {
    build_from(job, progress, sinks, None, None)
}

/// [`build_with_people`], with the households given as the partials of every row of the layer
/// (placed elsewhere, by Spark's executors with [`HouseholdPlacer::fold`]) instead of read from
/// `[layers.households]`'s file; the residents are read from the job's roster as before.
///
/// # Examples
/// See [`HouseholdPlacer`].
///
/// # Errors
/// [`Error::Job`] when the working CRS is `auto` (the partials were placed in a given one:
/// see [`resolve_working_crs`]); as [`build_with_people`].
pub fn build_with_households(
    job: &Job,
    progress: &dyn Progress,
    sinks: &mut [&mut dyn PeopleSink],
    households: Vec<HouseholdsPartial>,
) -> Result<Build> {
    build_with_partials(job, progress, sinks, Some(households), None)
}

/// [`build_with_people`], with the households and the residents given as the partials of
/// every row where given (`None` reads the layer's file). The residents' partials come from
/// [`ResidentFolder::fold`] with the same sinks, in the same order, as `sinks`: each sink
/// absorbs its parts instead of reading chunks.
///
/// # Examples
/// See [`ResidentsStage`](crate::run::ResidentsStage) and [`HouseholdPlacer`].
///
/// # Errors
/// [`Error::Job`] for households given while the working CRS is `auto` (they were placed in a
/// given one: see [`resolve_working_crs`]); [`Error::Data`] for partials that do not fit
/// the households or the sinks; as [`build_with_people`].
pub fn build_with_partials(
    job: &Job,
    progress: &dyn Progress,
    sinks: &mut [&mut dyn PeopleSink],
    households: Option<Vec<HouseholdsPartial>>,
    residents: Option<Vec<ResidentsPartial>>,
) -> Result<Build> {
    if households.is_some() && job.options.working_crs.given().is_none() {
        return Err(job.error(
            "households given as partials need the working CRS they were placed in \
             (resolve_working_crs), not \"auto\"",
        ));
    }
    build_from(job, progress, sinks, households, residents)
}

/// The build, with the households and residents read (`None`) or given.
fn build_from(
    job: &Job,
    progress: &dyn Progress,
    sinks: &mut [&mut dyn PeopleSink],
    given: Option<Vec<HouseholdsPartial>>,
    given_residents: Option<Vec<ResidentsPartial>>,
) -> Result<Build> {
    let extra: Vec<String> = sinks.iter().flat_map(|s| s.columns()).collect();
    // Two pieces of work that need nothing from the spatial layers start at once on their own
    // threads, so that they overlap the reading and placing of the layers (the machines this
    // runs on often have two cores, and much of the layer work is serial):
    //  - the resident roster is read a chunk at a time, up to six chunks ahead of the placing,
    //    so that its first few million rows are read while the layers are placed and memory stays
    //    bounded (its errors are reported when the build reaches the residents, as before);
    //  - PROJ searches its database for the operation to a working CRS named in the job (tens of
    //    milliseconds; the build's own transformer then starts from the pipeline found).
    std::thread::scope(|scope| {
        let roster = match (&job.layers.households, &job.layers.residents) {
            (Some(_), Some(r)) if given_residents.is_none() => {
                let (tx, rx) = std::sync::mpsc::sync_channel(6);
                let extra = &extra;
                scope.spawn(move || stream_roster(job, r, extra, &tx));
                Some(rx)
            }
            _ => None,
        };
        let warm = job.options.working_crs.given().map(|to| {
            scope.spawn(move || {
                // Errors are reported where the build itself asks for the transformer.
                let _ = Transformer::new(&Crs::lonlat(), to);
            })
        });
        let mut builder = Builder::new(job, progress);
        builder.roster = roster;
        builder.given = given;
        builder.given_residents = given_residents;
        builder.warm = warm.map(|h| {
            Box::new(move || {
                if let Err(p) = h.join() {
                    std::panic::resume_unwind(p)
                }
            }) as Box<dyn FnOnce() + '_>
        });
        builder.run(sinks)
    })
}

struct Builder<'a> {
    job: &'a Job,
    progress: &'a dyn Progress,
    report: QualityReport,
    inputs: Vec<InputInfo>,
    steps: Vec<StepTime>,
    clock: Instant,
    lonlat: Crs,
    /// Rows read per layer, for the accounting.
    reads: HashMap<Layer, usize>,
    /// The resident roster, read in chunks in the background.
    roster: Option<Receiver<Result<RosterPart>>>,
    /// Waits for the background search of the operation to the job's working CRS.
    warm: Option<Box<dyn FnOnce() + 'a>>,
    /// The households, placed elsewhere (instead of the layer's file).
    given: Option<Vec<HouseholdsPartial>>,
    /// The residents, placed elsewhere (instead of the roster's file).
    given_residents: Option<Vec<ResidentsPartial>>,
}

impl<'a> Builder<'a> {
    fn new(job: &'a Job, progress: &'a dyn Progress) -> Self {
        Builder {
            job,
            progress,
            report: QualityReport::default(),
            inputs: Vec::new(),
            steps: Vec::new(),
            clock: Instant::now(),
            lonlat: Crs::lonlat(),
            reads: HashMap::new(),
            roster: None,
            warm: None,
            given: None,
            given_residents: None,
        }
    }

    fn lap(&mut self, step: &str) {
        crate::trace::step(step);
        let now = Instant::now();
        self.steps.push(StepTime {
            step: step.to_owned(),
            seconds: (now - self.clock).as_secs_f64(),
        });
        self.clock = now;
    }

    fn reject(&mut self, s: &mut Staged, i: usize, kind: IssueKind, detail: impl Into<String>) {
        let id = s.ids[i].clone();
        self.report.push(
            s.layer,
            Some(i),
            id.as_deref(),
            kind,
            Severity::Rejected,
            detail,
        );
        s.geoms[i] = None;
    }

    /// The stages in order: the frame's layers read and brought to the working CRS, polygon
    /// levels, buildings; then people (households and residents); then facilities and the
    /// accounting of every row.
    fn run(mut self, sinks: &mut [&mut dyn PeopleSink]) -> Result<Build> {
        let (mut staged, households) = self.read_layers()?;
        let working =
            self.working_crs(&staged, households.as_ref().and_then(HouseholdRows::extent))?;
        if let Some(wait) = self.warm.take() {
            wait();
        }
        let households = self.transform(&working, &mut staged, households)?;
        let mut model = Model::empty(working);
        let indexes = self.polygon_levels(&mut model, &mut staged)?;
        let finest = model.finest_polygon_level();
        if let Some(mut s) = staged.remove(&Layer::Building) {
            self.place_buildings(&mut model, &mut s, finest.map(|l| (l, &indexes[&l])));
            model.levels.push(Layer::Building);
        }
        self.lap("place buildings");
        if let Some(parts) = self.given.take() {
            self.given_households(&mut model, parts);
            self.residents(&mut model, sinks)?;
        } else if let Some(h) = households {
            self.place_households(&mut model, h, finest.map(|l| (l, &indexes[&l])));
            model.levels.push(Layer::Household);
            self.lap("place households");
            self.residents(&mut model, sinks)?;
        }
        if let Some(mut s) = staged.remove(&Layer::Facility) {
            self.place_facilities(&mut model, &mut s, finest.map(|l| (l, &indexes[&l])));
            self.lap("place facilities");
        }
        self.account(&model)?;
        Ok(Build {
            model,
            report: self.report,
            inputs: self.inputs,
            steps: self.steps,
            job: self.job.clone(),
        })
    }

    /// Reads every spatial layer and the household rows (coordinates checked, in lon/lat).
    fn read_layers(&mut self) -> Result<(HashMap<Layer, Staged>, Option<HouseholdRows>)> {
        let layers = &self.job.layers;
        self.progress.start("reading layers", 0);
        let mut staged: HashMap<Layer, Staged> = HashMap::new();
        for (layer, cfg) in [
            (Layer::Street, &layers.streets),
            (Layer::Community, &layers.communities),
            (Layer::Grid, &layers.grids),
            (Layer::Building, &layers.buildings),
        ] {
            if let Some(cfg) = cfg.as_ref().filter(|c| c.path.is_some()) {
                let s = self.read_spatial(layer, cfg)?;
                staged.insert(layer, s);
            }
        }
        if let Some(f) = &layers.facilities {
            let cfg = SpatialLayer {
                path: Some(f.path.clone()),
                crs: f.crs.clone(),
                geometry_column: f.geometry_column.clone(),
                encoding: f.encoding.clone(),
                id: f.id.clone(),
                name: f.name.clone(),
                parent: None,
                parent_prefix: None,
                derive: false,
            };
            let mut extra = vec![f.kind.as_str()];
            extra.extend(f.capacity.as_deref());
            let s = self.read_spatial_with(Layer::Facility, &cfg, &extra)?;
            staged.insert(Layer::Facility, s);
        }
        let households = match &layers.households {
            Some(h) if self.given.is_none() => Some(self.read_households(h)?),
            _ => None,
        };
        self.progress.finish();
        self.lap("read and check coordinates");
        Ok((staged, households))
    }

    /// Brings every staged geometry and household location to the working CRS; rows that
    /// cannot be transformed are reported.
    fn transform(
        &mut self,
        working: &Crs,
        staged: &mut HashMap<Layer, Staged>,
        mut households: Option<HouseholdRows>,
    ) -> Result<Option<HouseholdRows>> {
        let to_working = Transformer::new(&self.lonlat, working)?;
        for input in &mut self.inputs {
            if let Some(c) = &input.crs {
                let src = Crs::parse(c)?;
                input.conversions = Transformer::new(&src, &self.lonlat)?.steps();
                input.conversions.extend(to_working.steps());
            }
        }
        self.progress.start("transforming", staged.len() as u64);
        for s in staged.values_mut() {
            let failures = to_working.transform_geometries(&mut s.geoms)?;
            for (i, why) in failures {
                let id = s.ids[i].clone();
                self.report.push(
                    s.layer,
                    Some(i),
                    id.as_deref(),
                    IssueKind::OutOfRange,
                    Severity::Rejected,
                    format!("cannot transform to {working}: {why}"),
                );
            }
            self.progress.inc(1);
        }
        if let Some(h) = &mut households {
            self.transform_households(&to_working, working, h)?;
        }
        self.progress.finish();
        self.lap("transform to working CRS");
        Ok(households)
    }

    /// Brings the household locations to the working CRS; rows that cannot be transformed are
    /// reported.
    pub(crate) fn transform_households(
        &mut self,
        to_working: &Transformer,
        working: &Crs,
        h: &mut HouseholdRows,
    ) -> Result<()> {
        for (i, why) in to_working.transform_points(&mut h.coords)? {
            let detail = format!("cannot transform to {working}: {}", excerpt(&why));
            self.bad_coordinates(h, i, IssueKind::OutOfRange, detail);
        }
        Ok(())
    }

    /// Checks the polygon levels, derives missing ones, places each in its parent level and
    /// indexes it. Returns the index of every polygon level.
    fn polygon_levels(
        &mut self,
        model: &mut Model,
        staged: &mut HashMap<Layer, Staged>,
    ) -> Result<HashMap<Layer, PolygonIndex>> {
        let mut units: HashMap<Layer, Vec<Unit>> = HashMap::new();
        for layer in Layer::POLYGON_LEVELS {
            if let Some(s) = staged.get_mut(&layer) {
                let u = self.accept_polygons(s);
                units.insert(layer, u);
            }
        }
        self.derive_levels(&mut units)?;
        self.lap("validate polygon levels");
        self.progress
            .start("placing polygon levels", units.len() as u64);
        let tol = self.job.options.area_tolerance_m2;
        let mut indexes: HashMap<Layer, PolygonIndex> = HashMap::new();
        for layer in Layer::POLYGON_LEVELS {
            let Some(mut us) = units.remove(&layer) else {
                continue;
            };
            model.levels.push(layer);
            let parent_level = layer
                .parent_polygon_levels()
                .iter()
                .copied()
                .find(|l| indexes.contains_key(l));
            if let Some(pl) = parent_level {
                self.place_polygons(model, layer, &mut us, pl, &indexes[&pl]);
            }
            let (overlaps, overlap_sums) = checks::overlaps(layer, &us, parent_level, tol);
            self.report.extend(overlaps);
            let ids: Vec<&str> = us.iter().map(|u| u.id.as_str()).collect();
            let ranks = ranks_by_id(&ids);
            let polys: Vec<Option<&MultiPolygon<f64>>> =
                us.iter().map(|u| Some(&u.geometry)).collect();
            indexes.insert(layer, PolygonIndex::new(&polys, &ranks));
            if let Some(pl) = parent_level {
                let parent_geoms = model_units(model, pl);
                let issues =
                    checks::gaps_and_crossings(pl, &parent_geoms, layer, &us, &overlap_sums, tol);
                self.report.extend(issues);
            }
            store_units(model, layer, us);
            self.progress.inc(1);
        }
        self.progress.finish();
        self.lap("place polygon levels");
        Ok(indexes)
    }

    /// Derives the levels the job asks to derive, bottom-up, by dissolving their children.
    fn derive_levels(&self, units: &mut HashMap<Layer, Vec<Unit>>) -> Result<()> {
        let layers = &self.job.layers;
        for (layer, child, cfg) in [
            (Layer::Community, Layer::Grid, &layers.communities),
            (Layer::Street, Layer::Community, &layers.streets),
        ] {
            if let Some(cfg) = cfg.as_ref().filter(|c| c.derive) {
                let children = units.get(&child).map(Vec::as_slice).unwrap_or(&[]);
                let derived = derive_by_dissolve(children, cfg.parent_prefix);
                if derived.is_empty() {
                    return Err(self.job.error(format!(
                        "cannot derive {layer}: no {child} declares a parent code"
                    )));
                }
                units.insert(layer, derived);
            }
        }
        Ok(())
    }

    /// The households placed elsewhere, merged in row order, with their rows' issues.
    fn given_households(&mut self, model: &mut Model, parts: Vec<HouseholdsPartial>) {
        let mut all = HouseholdsPartial::default();
        for p in parts {
            all.merge(p);
        }
        let (households, issues, rows) = all.into_households();
        model.households = households;
        model.levels.push(Layer::Household);
        self.report.extend(issues);
        self.reads.insert(Layer::Household, rows);
        self.lap("merge households");
    }

    /// Each chunk of the roster: its residents are joined to their households and the chunk
    /// is handed to the sinks.
    fn residents(&mut self, model: &mut Model, sinks: &mut [&mut dyn PeopleSink]) -> Result<()> {
        let Some(r) = &self.job.layers.residents else {
            return Ok(());
        };
        if let Some(parts) = self.given_residents.take() {
            return self.merge_residents(model, &parts, sinks);
        }
        let rx = self.roster.take().ok_or_else(|| Error::Internal {
            at: Location::layer(Layer::Resident.name()),
            message: "the roster is not being read".into(),
        })?;
        let mut placer = None;
        let mut rows_read = 0;
        for part in rx.iter() {
            match part? {
                RosterPart::Header(names, estimate) => {
                    for s in sinks.iter_mut() {
                        s.header(&names)?;
                    }
                    self.progress.start("placing residents", estimate as u64);
                    placer = Some(Placer::new(&model.households, estimate));
                }
                RosterPart::Chunk(t) => {
                    let Some(placer) = placer.as_mut() else {
                        continue;
                    };
                    let placed = self.place_chunk(placer, &model.households, &t, None);
                    for s in sinks.iter_mut() {
                        s.chunk(model, &t, &placed)?;
                    }
                    rows_read += t.rows_read;
                    self.progress.inc(t.rows_read as u64);
                }
            }
        }
        self.progress.finish();
        if let Some(p) = placer {
            let (counts, residents) = (p.counts, p.residents);
            for (h, c) in model.households.iter_mut().zip(counts) {
                h.residents = c;
            }
            model.residents = residents;
        }
        self.inputs.push(InputInfo {
            layer: Layer::Resident,
            path: self.job.resolve(&r.path),
            rows: rows_read,
            crs: None,
            crs_source: None,
            conversions: Vec::new(),
        });
        self.reads.insert(Layer::Resident, rows_read);
        self.lap("read and place residents");
        Ok(())
    }

    /// The residents placed elsewhere, merged in row order; each sink absorbs its parts.
    fn merge_residents(
        &mut self,
        model: &mut Model,
        parts: &[ResidentsPartial],
        sinks: &mut [&mut dyn PeopleSink],
    ) -> Result<()> {
        let m = people::merge(parts, model.households.len())?;
        for (h, c) in model.households.iter_mut().zip(&m.members) {
            h.residents = *c;
        }
        people::absorb(parts, &m.renumbered, m.residents.len(), sinks)?;
        model.residents = m.residents;
        self.report.extend(m.issues);
        self.reads.insert(Layer::Resident, m.rows);
        self.lap("merge residents");
        Ok(())
    }

    /// Sets each layer's counts (read, placed, rejected) and checks that every row read is
    /// placed or rejected, exactly once.
    fn account(&mut self, model: &Model) -> Result<()> {
        for (layer, read) in std::mem::take(&mut self.reads) {
            let placed = placed_in_model(model, layer);
            let rejected = rejected_rows(&self.report, layer);
            self.report.set_count(
                layer,
                LayerCount {
                    read,
                    placed,
                    rejected,
                },
            );
        }
        self.report.sort();
        // Every run, in release builds too: outputs are never written from a model that lost
        // or double-counted a row.
        self.report
            .check_accounting()
            .map_err(|(layer, message)| Error::Internal {
                at: Location::layer(layer.name()),
                message,
            })
    }
}

/// Distinct rows of a layer with a rejection entry.
fn rejected_rows(report: &QualityReport, layer: Layer) -> usize {
    let mut rows: Vec<usize> = report
        .for_layer(layer)
        .filter(|i| i.severity == Severity::Rejected)
        .filter_map(|i| i.index)
        .collect();
    rows.sort_unstable();
    rows.dedup();
    rows.len()
}

/// Rows of a layer that are in the model, counted from the model itself.
fn placed_in_model(model: &Model, layer: Layer) -> usize {
    match layer {
        Layer::Street => model
            .streets
            .iter()
            .filter(|a| a.source_index.is_some())
            .count(),
        Layer::Community => model
            .communities
            .iter()
            .filter(|a| a.source_index.is_some())
            .count(),
        Layer::Grid => model
            .grids
            .iter()
            .filter(|a| a.source_index.is_some())
            .count(),
        Layer::Building => model.buildings.len(),
        Layer::Household => model.households.iter().filter(|h| h.placed).count(),
        Layer::Resident => model.residents.len(),
        Layer::Facility => model.facilities.len(),
        // Read by coverage, not by the model build.
        Layer::Path | Layer::Site | Layer::Event | Layer::Visit => 0,
    }
}

/// The geometry type's GeoJSON name.
pub(crate) fn type_name(g: &Geometry<f64>) -> &'static str {
    match g {
        Geometry::Point(_) => "Point",
        Geometry::Line(_) => "Line",
        Geometry::LineString(_) => "LineString",
        Geometry::Polygon(_) => "Polygon",
        Geometry::MultiPoint(_) => "MultiPoint",
        Geometry::MultiLineString(_) => "MultiLineString",
        Geometry::MultiPolygon(_) => "MultiPolygon",
        Geometry::GeometryCollection(_) => "GeometryCollection",
        Geometry::Rect(_) => "Rect",
        Geometry::Triangle(_) => "Triangle",
    }
}

pub(crate) fn relocate(e: Error, layer: Layer, path: &std::path::Path) -> Error {
    e.located(Location::layer(layer.name()).file(path))
}
