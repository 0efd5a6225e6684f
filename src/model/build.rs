//! Building the model: read every layer, check it, transform it into the working CRS, and place
//! every child in its parents by declared code and by spatial containment.

use std::borrow::Cow;

use std::path::PathBuf;
use std::time::Instant;

use foldhash::{HashMap, HashMapExt};
use geo::orient::{Direction, Orient};
use geo::{Area as _, BoundingRect, Coord, CoordsIter, Geometry, InteriorPoint, MultiPolygon};
use polars::prelude::{DataType, Float64Chunked, StaticArray, StringChunked};
use rayon::prelude::*;
use rstar::RTree;
use rstar::primitives::GeomWithData;
use serde::Serialize;

use crate::crs::{
    CoordCheck, Crs, FeatureCheck, Region, Transformer, check_feature, metric_crs_for, utm_crs_for,
};
use crate::error::{Error, Location, Result, excerpt};
use crate::index::{PolygonIndex, ranks_by_id};
use crate::io::table::{
    Table, TextColumn, clean_code, clean_code_ref, parse_number, read_table_with,
};
use crate::io::{FeatureLayer, ReadOptions, read_features};
use crate::job::{Job, ParentRule, RegionName, SpatialLayer};
use crate::model::checks;
use crate::model::duplicates::duplicates;
use crate::model::ids::{BuildingId, FacilityId, HouseholdId};
use crate::model::level::Layer;
use crate::model::quality::{IssueKind, LayerCount, QualityReport, Severity};
use crate::model::{Area, Building, Facility, Household, Lineage, Model, Resident, Sex};
use crate::privacy::{id_number_is_male, mask_identifier};
use crate::progress::{NoProgress, Progress};

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
    /// The resident roster's columns as read by the build: the id, household and identity
    /// columns, and those of `[special_needs.fields]` the file has, so the special-needs pass
    /// need not read the file again. Row `i` is resident row `t.source_row(i)` of the file.
    pub roster: Option<std::sync::Arc<Table>>,
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
    // Two pieces of work that need nothing from the spatial layers start at once on their own
    // threads, so that they overlap the reading and placing of the layers (the machines this
    // runs on often have two cores, and much of the layer work is serial):
    //  - the resident roster is read (it is the largest input; the build waits for it only when
    //    it places the residents, and its errors are reported at that point, as before);
    //  - PROJ searches its database for the operation to a working CRS named in the job (tens of
    //    milliseconds; the build's own transformer then starts from the pipeline found).
    std::thread::scope(|scope| {
        let roster = match (&job.layers.households, &job.layers.residents) {
            (Some(_), Some(r)) => Some(scope.spawn(move || read_roster(job, r))),
            _ => None,
        };
        let opt = job.options.working_crs.trim();
        let warm = (!opt.eq_ignore_ascii_case("auto")).then(|| {
            scope.spawn(move || {
                // Errors are reported where the build itself asks for the transformer.
                if let Ok(to) = Crs::parse(opt) {
                    let _ = Transformer::new(&Crs::lonlat(), &to);
                }
            })
        });
        let mut builder = Builder::new(job, progress);
        builder.roster = roster.map(|h| {
            Box::new(move || h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                as Box<dyn FnOnce() -> Result<Table> + '_>
        });
        builder.warm = warm.map(|h| {
            Box::new(move || {
                if let Err(p) = h.join() {
                    std::panic::resume_unwind(p)
                }
            }) as Box<dyn FnOnce() + '_>
        });
        builder.run()
    })
}

/// Reads a job's roster with the columns the build needs: the id, household and identity
/// columns (required), and those the special-needs pass may use (read when the file has them,
/// so that pass does not read the roster again).
fn read_roster(job: &Job, r: &crate::job::ResidentLayer) -> Result<Table> {
    let mut cols = vec![r.id.clone(), r.household.clone()];
    cols.extend(r.id_number.clone());
    cols.extend(r.sex.clone());
    let mut later: Vec<String> = Vec::new();
    if let Some(sn) = &job.special_needs {
        later.extend(sn.fields.values().cloned());
        for c in &sn.categories {
            if let Some(f) = &c.rule.field {
                later.push(sn.fields.get(f).unwrap_or(f).clone());
            }
        }
    }
    let cols: Vec<&str> = cols.iter().map(String::as_str).collect();
    let later: Vec<&str> = later.iter().map(String::as_str).collect();
    read_table_with(
        Layer::Resident.name(),
        &job.resolve(&r.path),
        &cols,
        &[],
        &later,
        r.encoding,
    )
}

/// A spatial layer after reading, before placement: geometry in lon/lat, then in the working CRS.
struct Staged {
    layer: Layer,
    /// `None` once a row is rejected.
    geoms: Vec<Option<Geometry<f64>>>,
    ids: Vec<Option<String>>,
    names: Vec<Option<String>>,
    parents: Vec<Option<String>>,
    extra: Vec<Vec<Option<String>>>,
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
    /// Waits for the resident roster being read in the background.
    roster: Option<Box<dyn FnOnce() -> Result<Table> + 'a>>,
    /// Waits for the background search of the operation to the job's working CRS.
    warm: Option<Box<dyn FnOnce() + 'a>>,
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

    fn run(mut self) -> Result<Build> {
        let layers = &self.job.layers;
        self.progress.start("reading layers", 0);
        let mut staged: HashMap<Layer, Staged> = HashMap::new();
        for (layer, cfg) in [
            (Layer::Street, &layers.streets),
            (Layer::Community, &layers.communities),
            (Layer::Grid, &layers.grids),
            (Layer::Building, &layers.buildings),
        ] {
            if let Some(cfg) = cfg {
                if cfg.path.is_some() {
                    let s = self.read_spatial(layer, cfg)?;
                    staged.insert(layer, s);
                }
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
            Some(h) => Some(self.read_households(h)?),
            None => None,
        };
        self.progress.finish();
        self.lap("read and check coordinates");

        // Working CRS.
        let working = self.working_crs(&staged, households.as_ref())?;
        if let Some(wait) = self.warm.take() {
            wait();
        }
        let to_working = Transformer::new(&self.lonlat, &working)?;
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
        let mut households = households;
        if let Some(h) = &mut households {
            for (i, why) in to_working.transform_points(&mut h.coords)? {
                let detail = format!("cannot transform to {working}: {}", excerpt(&why));
                self.bad_coordinates(h, i, IssueKind::OutOfRange, detail);
            }
        }
        self.progress.finish();
        self.lap("transform to working CRS");

        // Polygon levels.
        let mut model = Model {
            working_crs: working.clone(),
            streets: Vec::new(),
            communities: Vec::new(),
            grids: Vec::new(),
            buildings: Vec::new(),
            households: Vec::new(),
            residents: Vec::new(),
            facilities: Vec::new(),
            levels: Vec::new(),
        };
        let mut units: HashMap<Layer, Vec<Unit>> = HashMap::new();
        for layer in Layer::POLYGON_LEVELS {
            if let Some(s) = staged.get_mut(&layer) {
                let u = self.accept_polygons(s);
                units.insert(layer, u);
            }
        }
        // Derive missing levels bottom-up.
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
                self.place_polygons(&model, layer, &mut us, pl, &indexes[&pl]);
            }
            let (overlaps, overlap_sums) = checks::overlaps(layer, &us, parent_level, tol);
            self.report.extend(overlaps);
            let ids: Vec<&str> = us.iter().map(|u| u.id.as_str()).collect();
            let ranks = ranks_by_id(&ids);
            let polys: Vec<Option<&MultiPolygon<f64>>> =
                us.iter().map(|u| Some(&u.geometry)).collect();
            indexes.insert(layer, PolygonIndex::new(&polys, &ranks));
            if let Some(pl) = parent_level {
                let parent_geoms: Vec<(&MultiPolygon<f64>, Option<usize>, &str)> =
                    model_units(&model, pl);
                let issues =
                    checks::gaps_and_crossings(pl, &parent_geoms, layer, &us, &overlap_sums, tol);
                self.report.extend(issues);
            }
            store_units(&mut model, layer, us);
            self.progress.inc(1);
        }
        self.progress.finish();
        self.lap("place polygon levels");

        // Buildings.
        let finest = model.finest_polygon_level();
        if let Some(mut s) = staged.remove(&Layer::Building) {
            self.place_buildings(&mut model, &mut s, finest.map(|l| (l, &indexes[&l])));
            model.levels.push(Layer::Building);
        }
        self.lap("place buildings");

        let mut roster = None;
        if let Some(h) = households {
            self.place_households(&mut model, h, finest.map(|l| (l, &indexes[&l])));
            model.levels.push(Layer::Household);
            self.lap("place households");
            if let Some(r) = &self.job.layers.residents {
                let t = self.read_residents(r)?;
                self.lap("read residents");
                self.place_residents(&mut model, &t);
                roster = Some(std::sync::Arc::new(t));
                self.lap("place residents");
            }
        }

        if let Some(mut s) = staged.remove(&Layer::Facility) {
            self.place_facilities(&mut model, &mut s, finest.map(|l| (l, &indexes[&l])));
            self.lap("place facilities");
        }
        for (layer, read) in std::mem::take(&mut self.reads) {
            let placed = placed_in_model(&model, layer);
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
            })?;
        Ok(Build {
            model,
            report: self.report,
            inputs: self.inputs,
            steps: self.steps,
            job: self.job.clone(),
            roster,
        })
    }

    fn read_spatial(&mut self, layer: Layer, cfg: &SpatialLayer) -> Result<Staged> {
        self.read_spatial_with(layer, cfg, &[])
    }

    /// Reads a spatial layer, rejects missing ids, duplicates and bad coordinates, and brings
    /// the geometry to longitude/latitude.
    fn read_spatial_with(
        &mut self,
        layer: Layer,
        cfg: &SpatialLayer,
        extra: &[&str],
    ) -> Result<Staged> {
        let path = self
            .job
            .resolve(cfg.path.as_deref().expect("checked by caller"));
        let mut cols = vec![cfg.id.as_str()];
        let name_at = cfg.name.as_ref().map(|n| {
            cols.push(n);
            cols.len() - 1
        });
        let parent_at = cfg.parent.as_ref().map(|p| {
            cols.push(p);
            cols.len() - 1
        });
        let extra_at = cols.len();
        cols.extend_from_slice(extra);
        let opts = ReadOptions {
            geometry_column: cfg.geometry_column.as_deref(),
            encoding: cfg.encoding.as_deref(),
        };
        let fl: FeatureLayer = read_features(layer.name(), &path, &cols, opts)?;
        let (crs, crs_source) =
            crate::io::layer_crs(layer.name(), &path, cfg.crs.as_deref(), fl.crs.as_ref())?;
        self.inputs.push(InputInfo {
            layer,
            path: path.clone(),
            rows: fl.len(),
            crs: Some(crs.to_string()),
            crs_source: Some(crs_source),
            conversions: Vec::new(),
        });
        let n = fl.len();
        let mut columns = fl.columns;
        let take = |columns: &mut Vec<Vec<Option<String>>>, at: Option<usize>| {
            at.map(|i| std::mem::take(&mut columns[i]))
                .unwrap_or_else(|| vec![None; n])
        };
        let ids: Vec<Option<String>> = std::mem::take(&mut columns[0])
            .into_iter()
            .map(|v| v.as_deref().and_then(clean_code))
            .collect();
        let names = take(&mut columns, name_at);
        let mut parents: Vec<Option<String>> = take(&mut columns, parent_at)
            .into_iter()
            .map(|v| v.as_deref().and_then(clean_code))
            .collect();
        if let Some(k) = cfg.parent_prefix {
            for (p, id) in parents.iter_mut().zip(&ids) {
                *p = id.as_ref().and_then(|id| id.get(..k)).map(str::to_owned);
            }
        }
        let extra_cols = columns.split_off(extra_at);
        let mut s = Staged {
            layer,
            geoms: Vec::with_capacity(n),
            ids,
            names,
            parents,
            extra: extra_cols,
        };
        // Undecodable text: fatal to the feature in its id or parent code, a warning elsewhere.
        let mut unreadable = vec![false; n];
        for (i, c, why) in fl.unreadable {
            let fatal = c == 0 || Some(c) == parent_at;
            unreadable[i] |= fatal;
            let id = s.ids[i].clone();
            let severity = if fatal {
                Severity::Rejected
            } else {
                Severity::Warning
            };
            self.report.push(
                layer,
                Some(i),
                id.as_deref(),
                IssueKind::UnreadableRow,
                severity,
                why,
            );
        }
        let mut reasons = Vec::new();
        for (i, g) in fl.geometries.into_iter().enumerate() {
            match g {
                Ok(_) if unreadable[i] => s.geoms.push(None),
                Ok(g) => s.geoms.push(Some(g)),
                Err(why) => {
                    s.geoms.push(None);
                    if !unreadable[i] {
                        reasons.push((i, why));
                    }
                }
            }
        }
        for (i, why) in reasons {
            let id = s.ids[i].clone();
            self.report.push(
                layer,
                Some(i),
                id.as_deref(),
                IssueKind::MissingGeometry,
                Severity::Rejected,
                why,
            );
        }
        self.check_ids(&mut s);
        // To longitude/latitude, then check every coordinate.
        let to_lonlat =
            Transformer::new(&crs, &self.lonlat).map_err(|e| relocate(e, layer, &path))?;
        let failures = to_lonlat.transform_geometries(&mut s.geoms)?;
        for (i, why) in failures {
            self.reject(
                &mut s,
                i,
                IssueKind::OutOfRange,
                format!("cannot transform from {crs}: {why}"),
            );
        }
        let region = self.region_for(&crs);
        let verdicts: Vec<(usize, FeatureCheck)> = s
            .geoms
            .par_iter()
            .enumerate()
            .filter_map(|(i, g)| {
                let c = check_feature(g.as_ref()?, &region);
                (c.verdict != CoordCheck::Ok || c.outside > 0).then_some((i, c))
            })
            .collect();
        for (i, c) in verdicts {
            if c.verdict == CoordCheck::Ok {
                // The feature lies in the region; some of its vertices do not.
                let v = c.first_outside.unwrap_or_default();
                let id = s.ids[i].clone();
                self.report.push(
                    layer,
                    Some(i),
                    id.as_deref(),
                    IssueKind::OutOfRange,
                    Severity::Warning,
                    format!(
                        "{} of {} vertices lie outside the expected region ({}), the first at \
                         ({:.6}, {:.6}); the feature is kept: its interior point ({:.6}, {:.6}) \
                         lies inside",
                        c.outside,
                        c.vertices,
                        region_text(&region),
                        v.x,
                        v.y,
                        c.at.x,
                        c.at.y
                    ),
                );
                continue;
            }
            let (kind, mut detail) = coord_issue(c.verdict, c.at, &crs, 6);
            if c.verdict != CoordCheck::Invalid && c.vertices > 1 {
                detail = format!("the feature's interior point: {detail}");
            }
            self.reject(&mut s, i, kind, detail);
        }
        Ok(s)
    }

    /// Where coordinates of a layer in `crs` are expected: China's extent, or with
    /// `region = "world"` the CRS's area of use from the PROJ database.
    fn region_for(&self, crs: &Crs) -> Region {
        match self.job.options.region {
            RegionName::China => Region::china(),
            RegionName::World => crs.area_of_use().unwrap_or(Region::world()),
        }
    }

    /// Rejects rows without an id and later rows repeating an id.
    fn check_ids(&mut self, s: &mut Staged) {
        let mut first: HashMap<String, usize> = HashMap::with_capacity(s.ids.len());
        for i in 0..s.ids.len() {
            match s.ids[i].clone() {
                None => self.reject(s, i, IssueKind::MissingId, "empty id"),
                Some(id) => {
                    if let Some(&j) = first.get(&id) {
                        if s.geoms[i].is_some() {
                            self.reject(
                                s,
                                i,
                                IssueKind::DuplicateId,
                                format!("id already used by feature {j}"),
                            );
                        }
                    } else if s.geoms[i].is_some() {
                        first.insert(id, i);
                    }
                }
            }
        }
    }

    fn working_crs(
        &self,
        staged: &HashMap<Layer, Staged>,
        households: Option<&HouseholdRows>,
    ) -> Result<Crs> {
        let opt = self.job.options.working_crs.trim();
        if !opt.eq_ignore_ascii_case("auto") {
            return Crs::parse(opt);
        }
        let mut bbox: Option<geo::Rect<f64>> = None;
        let mut grow = |r: geo::Rect<f64>| {
            bbox = Some(match bbox {
                None => r,
                Some(b) => geo::Rect::new(
                    Coord {
                        x: b.min().x.min(r.min().x),
                        y: b.min().y.min(r.min().y),
                    },
                    Coord {
                        x: b.max().x.max(r.max().x),
                        y: b.max().y.max(r.max().y),
                    },
                ),
            })
        };
        for s in staged.values() {
            for g in s.geoms.iter().flatten() {
                if let Some(r) = g.bounding_rect() {
                    grow(r);
                }
            }
        }
        if let Some(h) = households {
            for c in h.coords.iter().flatten() {
                grow(geo::Rect::new(*c, *c));
            }
        }
        let Some(b) = bbox else {
            return Err(self.job.error(
                "no usable geometry to choose a working CRS from; set options.working_crs",
            ));
        };
        let lon = (b.min().x + b.max().x) / 2.0;
        Ok(metric_crs_for(lon).unwrap_or_else(|| utm_crs_for(lon)))
    }

    /// Checks polygon geometry and turns accepted rows into units.
    fn accept_polygons(&mut self, s: &mut Staged) -> Vec<Unit> {
        let verdicts: Vec<(usize, Checked<MultiPolygon<f64>>)> = s
            .geoms
            .par_iter_mut()
            .enumerate()
            .filter_map(|(i, g)| {
                let g = g.take()?;
                let mp = match g {
                    Geometry::Polygon(p) => MultiPolygon(vec![p]),
                    Geometry::MultiPolygon(mp) => mp,
                    other => {
                        return Some((
                            i,
                            Err((
                                IssueKind::MissingGeometry,
                                format!("expected a polygon, found {}", type_name(&other)),
                            )),
                        ));
                    }
                };
                Some((
                    i,
                    match checks::validate(&mp) {
                        // One winding for every ring (exteriors counter-clockwise, holes
                        // clockwise), whatever the file had: dissolving and the overlay checks
                        // read a ring wound the other way as a hole.
                        Ok(()) => Ok(mp.orient(Direction::Default)),
                        Err(e) => Err((IssueKind::InvalidGeometry, e)),
                    },
                ))
            })
            .collect();
        let mut out = Vec::new();
        for (i, v) in verdicts {
            match v {
                Ok(mp) => out.push(Unit {
                    id: s.ids[i].clone().expect("rows without id are rejected"),
                    name: s.names[i].take(),
                    area_m2: mp.unsigned_area(),
                    geometry: mp,
                    declared_parent: s.parents[i].take(),
                    lineage: Lineage::default(),
                    source_index: Some(i),
                }),
                Err((kind, detail)) => self.reject(s, i, kind, detail),
            }
        }
        self.reads.insert(s.layer, s.geoms.len());
        out
    }

    /// Sets each unit's parent (and lineage) by the parent rule; rejects units with none.
    fn place_polygons(
        &mut self,
        model: &Model,
        layer: Layer,
        us: &mut Vec<Unit>,
        parent_level: Layer,
        index: &PolygonIndex,
    ) {
        let parent_ids = id_lookup(model, parent_level);
        let parent_geoms = model_units(model, parent_level);
        let spatial: Vec<Option<u32>> = us
            .par_iter()
            .map(|u| {
                let hint = u
                    .declared_parent
                    .as_deref()
                    .and_then(|d| parent_ids.get(d).copied());
                checks::largest_overlap(&u.geometry, index, &parent_geoms, hint)
            })
            .collect();
        let rule = self.job.options.parent_rule;
        let mut keep = Vec::with_capacity(us.len());
        for (u, sp) in us.drain(..).zip(spatial) {
            let placed = self.choose_parent(
                layer,
                u.source_index,
                &u.id,
                u.declared_parent.as_deref(),
                &parent_ids,
                sp,
                rule,
                model,
                parent_level,
            );
            if let Some(p) = placed {
                let mut u = u;
                u.lineage = model.lineage(parent_level, p);
                keep.push(u);
            }
        }
        *us = keep;
    }

    /// Applies the parent rule to one child and reports what it finds.
    #[allow(clippy::too_many_arguments)]
    fn choose_parent(
        &mut self,
        layer: Layer,
        index: Option<usize>,
        id: &str,
        declared: Option<&str>,
        parent_ids: &HashMap<&str, u32>,
        spatial: Option<u32>,
        rule: ParentRule,
        model: &Model,
        parent_level: Layer,
    ) -> Option<u32> {
        let code = |p: u32| model.code(parent_level, p).to_owned();
        let mut note = |kind, severity, detail: String| {
            self.report
                .push(layer, index, Some(id), kind, severity, detail)
        };
        let declared_idx = declared.map(|d| (d, parent_ids.get(d).copied()));
        match (declared_idx, spatial) {
            (Some((_, Some(d))), Some(s)) if d == s => Some(d),
            (Some((_, Some(d))), Some(s)) => {
                let winner = if rule == ParentRule::Declared { d } else { s };
                note(
                    IssueKind::ParentConflict,
                    Severity::Warning,
                    format!(
                        "declared {} {:?} but lies in {:?}; {} wins",
                        parent_level.singular(),
                        code(d),
                        code(s),
                        if rule == ParentRule::Declared {
                            "declared"
                        } else {
                            "spatial"
                        }
                    ),
                );
                Some(winner)
            }
            (Some((_, Some(d))), None) => {
                note(
                    IssueKind::OutsideParent,
                    Severity::Warning,
                    format!(
                        "lies in no {}; placed by its declared code {:?}",
                        parent_level.singular(),
                        code(d)
                    ),
                );
                Some(d)
            }
            (Some((dcode, None)), Some(s)) => {
                note(
                    IssueKind::UnknownParent,
                    Severity::Warning,
                    format!(
                        "declared {} {dcode:?} does not exist; placed in {:?} by location",
                        parent_level.singular(),
                        code(s)
                    ),
                );
                Some(s)
            }
            (Some((dcode, None)), None) => {
                note(
                    IssueKind::UnknownParent,
                    Severity::Rejected,
                    format!(
                        "declared {} {dcode:?} does not exist and it lies in no {}",
                        parent_level.singular(),
                        parent_level.singular()
                    ),
                );
                None
            }
            (None, Some(s)) => Some(s),
            (None, None) => {
                note(
                    IssueKind::OutsideParent,
                    Severity::Rejected,
                    format!("lies outside every {}", parent_level.singular()),
                );
                None
            }
        }
    }

    fn place_buildings(
        &mut self,
        model: &mut Model,
        s: &mut Staged,
        finest: Option<(Layer, &PolygonIndex)>,
    ) {
        // Geometry: footprint or point; footprints must be valid.
        let shapes: Vec<(usize, Checked<Shape>)> = s
            .geoms
            .par_iter_mut()
            .enumerate()
            .filter_map(|(i, g)| {
                let g = g.take()?;
                let r = match g {
                    Geometry::Point(p) => Ok((None, p.0)),
                    Geometry::Polygon(p) => footprint(MultiPolygon(vec![p])),
                    Geometry::MultiPolygon(mp) => footprint(mp),
                    other => Err((
                        IssueKind::MissingGeometry,
                        format!(
                            "expected a footprint polygon or a point, found {}",
                            type_name(&other)
                        ),
                    )),
                };
                Some((i, r))
            })
            .collect();
        let mut accepted = Vec::with_capacity(shapes.len());
        for (i, r) in shapes {
            match r {
                Ok(v) => accepted.push((i, v)),
                Err((kind, detail)) => self.reject(s, i, kind, detail),
            }
        }
        let rule = self.job.options.parent_rule;
        let tol = self.job.options.area_tolerance_m2;
        let mut placed_buildings: Vec<(usize, Shape, Lineage)> = Vec::new();
        if let Some((level, index)) = finest {
            let pts: Vec<Option<Coord<f64>>> =
                accepted.iter().map(|(_, (_, p))| Some(*p)).collect();
            let at_point = index.locate_all(&pts);
            let parent_ids = id_lookup(model, level);
            let parent_geoms = model_units(model, level);
            // A footprint that straddles units goes to the one holding most of its area (its
            // interior point may lie in the smaller part); the area outside is reported below.
            let located: Vec<Option<u32>> = accepted
                .par_iter()
                .zip(&at_point)
                .map(|((_, (fp, _)), &loc)| match fp {
                    Some(fp) if !fp.exterior_coords_iter().all(|c| index.locate(c) == loc) => {
                        checks::largest_overlap(fp, index, &parent_geoms, None).or(loc)
                    }
                    _ => loc,
                })
                .collect();
            let crossings = checks::footprint_crossings(
                &accepted
                    .iter()
                    .zip(&located)
                    .map(|((_, (fp, _)), loc)| (fp.as_ref(), *loc))
                    .collect::<Vec<_>>(),
                index,
                &parent_geoms,
                tol,
            );
            let mut crossing_at = crossings.into_iter().peekable();
            for (k, ((i, (fp, p)), sp)) in accepted.into_iter().zip(located).enumerate() {
                let id = s.ids[i].clone().expect("rows without id are rejected");
                let placed = self.choose_parent(
                    Layer::Building,
                    Some(i),
                    &id,
                    s.parents[i].as_deref(),
                    &parent_ids,
                    sp,
                    rule,
                    model,
                    level,
                );
                while crossing_at.peek().is_some_and(|(j, _)| *j < k) {
                    crossing_at.next();
                }
                if let Some((_, area)) = crossing_at.next_if(|(j, _)| *j == k) {
                    self.report.push(
                        Layer::Building,
                        Some(i),
                        Some(&id),
                        IssueKind::CrossesParent,
                        Severity::Warning,
                        format!(
                            "the footprint straddles {}s: {area:.1} m² of it lies outside the \
                             {} it is placed in, which holds the largest part",
                            level.singular(),
                            level.singular()
                        ),
                    );
                }
                if let Some(parent) = placed {
                    placed_buildings.push((i, (fp, p), model.lineage(level, parent)));
                }
            }
        } else {
            placed_buildings = accepted
                .into_iter()
                .map(|(i, shape)| (i, shape, Lineage::default()))
                .collect();
        }
        for (i, (footprint, point), mut lineage) in placed_buildings {
            lineage.building = Some(model.buildings.len() as u32);
            model.buildings.push(Building {
                id: BuildingId::new(s.ids[i].as_deref().expect("rows without id are rejected")),
                name: s.names[i].take(),
                footprint,
                point,
                declared_parent: s.parents[i].take(),
                lineage,
                source_index: i,
            });
        }
        self.reads.insert(Layer::Building, s.geoms.len());
    }

    fn read_households(&mut self, h: &crate::job::HouseholdLayer) -> Result<HouseholdRows> {
        let path = self.job.resolve(&h.path);
        let mut cols = vec![h.id.as_str()];
        cols.extend(h.building.as_deref());
        cols.extend(h.lon.as_deref());
        cols.extend(h.lat.as_deref());
        let numbers: Vec<&str> = h.lon.iter().chain(&h.lat).map(String::as_str).collect();
        let t = read_table_with(
            Layer::Household.name(),
            &path,
            &cols,
            &numbers,
            &[],
            h.encoding,
        )?;
        let crs = match &h.crs {
            Some(c) => Crs::parse(c).map_err(|e| relocate(e, Layer::Household, &path))?,
            None => Crs::lonlat(),
        };
        let located = h.lon.is_some();
        self.inputs.push(InputInfo {
            layer: Layer::Household,
            path: path.clone(),
            rows: t.rows_read,
            crs: located.then(|| crs.to_string()),
            crs_source: located.then_some(if h.crs.is_some() { "job" } else { "default" }),
            conversions: Vec::new(),
        });
        let n = t.frame.height();
        let ids = t.text_column(&h.id);
        let mut rows = HouseholdRows {
            rows_read: t.rows_read,
            source: (0..n).into_par_iter().map(|i| t.source_row(i)).collect(),
            ids: (0..n)
                .into_par_iter()
                .map(|i| ids.get(i).and_then(clean_code_ref).map(HouseholdId::new))
                .collect(),
            buildings: h.building.as_ref().map(|b| {
                let b = t.text_column(b);
                (0..n)
                    .into_par_iter()
                    .map(|i| b.get(i).and_then(clean_code))
                    .collect()
            }),
            coords: vec![None; n],
            rejected: vec![false; n],
        };
        for (row, why) in &t.unreadable {
            self.report.push(
                Layer::Household,
                Some(*row),
                None,
                IssueKind::UnreadableRow,
                Severity::Rejected,
                why.clone(),
            );
        }
        if let (Some(lon), Some(lat)) = (&h.lon, &h.lat) {
            self.household_coords(&t, &mut rows, lon, lat, &crs)?;
        }
        Ok(rows)
    }

    /// Parses, checks and converts household coordinates to lon/lat.
    fn household_coords(
        &mut self,
        t: &Table,
        rows: &mut HouseholdRows,
        lon: &str,
        lat: &str,
        crs: &Crs,
    ) -> Result<()> {
        // Numeric columns (Parquet): no text to parse; in parallel.
        if let (Some(xs), Some(ys)) = (t.numbers(lon), t.numbers(lat)) {
            let (xs, ys) = (xs.rechunk(), ys.rechunk());
            let value = |c: &Float64Chunked, i: usize| match c.downcast_iter().next() {
                Some(a) if c.chunks().len() == 1 => a.get(i),
                _ => c.get(i),
            };
            let pair = |i: usize| (value(&xs, i), value(&ys, i));
            rows.coords.par_iter_mut().enumerate().for_each(|(i, c)| {
                if let (Some(x), Some(y)) = pair(i) {
                    if x.is_finite() && y.is_finite() {
                        *c = Some(Coord { x, y });
                    }
                }
            });
            let bad: Vec<usize> = (0..rows.coords.len())
                .into_par_iter()
                .filter(|&i| rows.coords[i].is_none() && pair(i) != (None, None))
                .collect();
            for i in bad {
                let (x, y) = pair(i);
                let detail = format!(
                    "coordinates {}, {} are not finite numbers",
                    x.map_or("(blank)".to_owned(), |v| v.to_string()),
                    y.map_or("(blank)".to_owned(), |v| v.to_string())
                );
                self.bad_coordinates(rows, i, IssueKind::BadValue, detail);
            }
            return self.check_household_coords(rows, crs);
        }
        let text = |name: &str| -> Result<StringChunked> {
            if t.numbers(name).is_none() {
                return Ok(t.text(name).clone());
            }
            let c = t.frame.column(name).and_then(|c| c.cast(&DataType::String));
            let c = c.map_err(|e| Error::Polars {
                at: Location::layer(Layer::Household.name()).column(name),
                source: Box::new(e),
            })?;
            Ok(c.str().expect("cast to String").clone())
        };
        let (xs, ys) = (text(lon)?, text(lat)?);
        for i in 0..t.frame.height() {
            let (x, y) = (xs.get(i), ys.get(i));
            let blank = |v: Option<&str>| v.is_none_or(|s| s.trim().is_empty());
            if blank(x) && blank(y) {
                continue;
            }
            match (x.and_then(parse_number), y.and_then(parse_number)) {
                (Some(x), Some(y)) => rows.coords[i] = Some(Coord { x, y }),
                _ => {
                    let detail = format!(
                        "coordinates {:?}, {:?} are not numbers",
                        x.unwrap_or(""),
                        y.unwrap_or("")
                    );
                    self.bad_coordinates(rows, i, IssueKind::BadValue, detail);
                }
            }
        }
        self.check_household_coords(rows, crs)
    }

    /// Reports household row `i`'s coordinates as unusable (`kind`): a warning when it has a
    /// building code to place it by, else the row is rejected.
    fn bad_coordinates(
        &mut self,
        rows: &mut HouseholdRows,
        i: usize,
        kind: IssueKind,
        detail: String,
    ) {
        let has_building = rows.building(i).is_some();
        self.report.push(
            Layer::Household,
            Some(rows.source[i]),
            rows.id(i),
            kind,
            if has_building {
                Severity::Warning
            } else {
                Severity::Rejected
            },
            detail,
        );
        rows.rejected[i] = !has_building;
    }

    /// Converts the parsed household coordinates (`rows.coords`, in `crs`) to lon/lat and
    /// checks them against the region; those outside are reported and dropped.
    fn check_household_coords(&mut self, rows: &mut HouseholdRows, crs: &Crs) -> Result<()> {
        let to_lonlat = Transformer::new(crs, &self.lonlat)?;
        for (i, why) in to_lonlat.transform_points(&mut rows.coords)? {
            let detail = format!("cannot transform from {crs}: {}", excerpt(&why));
            self.bad_coordinates(rows, i, IssueKind::OutOfRange, detail);
        }
        let region = self.region_for(crs);
        let bad: Vec<(usize, CoordCheck, Coord<f64>)> = rows
            .coords
            .par_iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let c = (*c)?;
                let v = region.check(c.x, c.y);
                (v != CoordCheck::Ok).then_some((i, v, c))
            })
            .collect();
        for (i, v, c) in bad {
            rows.coords[i] = None;
            let (kind, detail) = coord_issue(v, c, crs, 2);
            self.bad_coordinates(rows, i, kind, detail);
        }
        Ok(())
    }

    fn place_households(
        &mut self,
        model: &mut Model,
        mut rows: HouseholdRows,
        finest: Option<(Layer, &PolygonIndex)>,
    ) {
        let n = rows.ids.len();
        // Ids: missing ones, then repeats (in parallel).
        for i in 0..n {
            if !rows.rejected[i] && rows.ids[i].is_none() {
                self.report.push(
                    Layer::Household,
                    Some(rows.source[i]),
                    None,
                    IssueKind::MissingId,
                    Severity::Rejected,
                    "empty id",
                );
                rows.rejected[i] = true;
            }
        }
        let dup = duplicates(n, |i| {
            (!rows.rejected[i])
                .then(|| rows.id(i).map(Cow::Borrowed))
                .flatten()
        });
        for (i, j) in dup {
            let i = i as usize;
            self.report.push(
                Layer::Household,
                Some(rows.source[i]),
                rows.id(i),
                IssueKind::DuplicateId,
                Severity::Rejected,
                format!("id already used by row {}", rows.source[j as usize]),
            );
            rows.rejected[i] = true;
        }
        // Locate by coordinates, in parallel.
        let building_ids: HashMap<&str, u32> = model
            .buildings
            .iter()
            .enumerate()
            .map(|(i, b)| (b.id.as_str(), i as u32))
            .collect();
        let footprint_index = if model.buildings.iter().any(|b| b.footprint.is_some()) {
            let polys: Vec<Option<&MultiPolygon<f64>>> = model
                .buildings
                .iter()
                .map(|b| b.footprint.as_ref())
                .collect();
            let ids: Vec<&str> = model.buildings.iter().map(|b| b.id.as_str()).collect();
            Some(PolygonIndex::new(&polys, &ranks_by_id(&ids)))
        } else {
            None
        };
        let point_tree: RTree<GeomWithData<[f64; 2], u32>> = RTree::bulk_load(
            model
                .buildings
                .iter()
                .enumerate()
                .filter(|(_, b)| b.footprint.is_none())
                .map(|(i, b)| GeomWithData::new([b.point.x, b.point.y], i as u32))
                .collect(),
        );
        let search2 = self.job.options.building_search_m.powi(2);
        // Rows to locate by coordinates: not rejected, not placed by a known building code.
        let needs_location = |i: usize| -> Option<Coord<f64>> {
            let by_building = rows
                .building(i)
                .is_some_and(|b| building_ids.contains_key(b));
            if rows.rejected[i] || by_building {
                None
            } else {
                rows.coords[i]
            }
        };
        self.lap("place households: ids, building index");
        let progress = self.progress;
        progress.start("locating households", n as u64);
        // Per row: (area, building), `NONE` when there is none. In tasks of 16k households,
        // each reporting its progress once.
        const NONE: u32 = u32::MAX;
        const CHUNK: usize = 16 * 1024;
        // Per building: the area every point of its footprint's box lies in, where the area
        // index shows one at once (most footprints lie well inside a grid); a household found
        // in that footprint then needs no area lookup of its own.
        let area_of_footprint: Vec<u32> = match (finest, &footprint_index) {
            (Some((_, idx)), Some(_)) => model
                .buildings
                .par_iter()
                .map(|b| {
                    b.footprint
                        .as_ref()
                        .and_then(|f| f.bounding_rect())
                        .and_then(|r| idx.owner_of_box(r.min(), r.max()))
                        .unwrap_or(NONE)
                })
                .collect(),
            _ => Vec::new(),
        };
        let mut located: Vec<[u32; 2]> = vec![[NONE; 2]; n];
        located
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(k, out)| {
                for (j, o) in out.iter_mut().enumerate() {
                    let Some(c) = needs_location(k * CHUNK + j) else {
                        continue;
                    };
                    let in_footprint = footprint_index.as_ref().and_then(|fi| fi.locate(c));
                    // (No polygon level: no areas of footprints either.)
                    let area = match in_footprint.and_then(|b| area_of_footprint.get(b as usize)) {
                        Some(&a) if a != NONE => Some(a),
                        _ => finest.and_then(|(_, idx)| idx.locate(c)),
                    };
                    let building = in_footprint.or_else(|| {
                        point_tree
                            .nearest_neighbor(&[c.x, c.y])
                            .filter(|b| {
                                let (dx, dy) = (b.geom()[0] - c.x, b.geom()[1] - c.y);
                                dx * dx + dy * dy <= search2
                            })
                            .map(|b| b.data)
                    });
                    *o = [area.unwrap_or(NONE), building.unwrap_or(NONE)];
                }
                progress.inc(out.len() as u64);
            });
        let located = |i: usize| {
            let [a, b] = located[i];
            ((a != NONE).then_some(a), (b != NONE).then_some(b))
        };
        progress.finish();
        self.lap("point-in-polygon (households into grids and buildings)");
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            if rows.rejected[i] {
                continue;
            }
            let id = rows.ids[i].take().expect("rows without id are rejected");
            let src = rows.source[i];
            let declared = rows.buildings.as_ref().and_then(|b| b[i].as_deref());
            let by_building = declared.and_then(|b| building_ids.get(b).copied());
            let lineage = if let Some(b) = by_building {
                Some(model.buildings[b as usize].lineage)
            } else {
                if let Some(b) = declared {
                    let located = rows.coords[i].is_some();
                    self.report.push(
                        Layer::Household,
                        Some(src),
                        Some(id.as_str()),
                        IssueKind::UnknownReference,
                        if located {
                            Severity::Warning
                        } else {
                            Severity::Rejected
                        },
                        format!(
                            "building {b:?} is not in the model (unknown or rejected){}",
                            if located {
                                "; located by coordinates"
                            } else {
                                ""
                            }
                        ),
                    );
                }
                match (rows.coords[i], finest) {
                    (None, _) => {
                        if declared.is_none() {
                            self.report.push(
                                Layer::Household,
                                Some(src),
                                Some(id.as_str()),
                                IssueKind::Unlocated,
                                Severity::Rejected,
                                "no building and no coordinates",
                            );
                        }
                        None
                    }
                    (Some(_), Some((level, _))) => {
                        let (area, building) = located(i);
                        match area {
                            // A household in a building belongs where the building does
                            // (a footprint may straddle grids): lineages stay nested, so
                            // counts roll up exactly.
                            Some(a) => Some(match building {
                                Some(b) => model.buildings[b as usize].lineage,
                                None => model.lineage(level, a),
                            }),
                            None => {
                                self.report.push(
                                    Layer::Household,
                                    Some(src),
                                    Some(id.as_str()),
                                    IssueKind::OutsideParent,
                                    Severity::Rejected,
                                    format!("coordinates lie outside every {}", level.singular()),
                                );
                                None
                            }
                        }
                    }
                    (Some(_), None) => Some(Lineage {
                        building: located(i).1,
                        ..Lineage::default()
                    }),
                }
            };
            out.push(Household {
                id,
                location: rows.coords[i],
                lineage: lineage.unwrap_or_default(),
                placed: lineage.is_some(),
                residents: 0,
                source_index: src,
            });
        }
        model.households = out;
        self.reads.insert(Layer::Household, rows.rows_read);
    }

    fn read_residents(&mut self, r: &crate::job::ResidentLayer) -> Result<Table> {
        let t = match self.roster.take() {
            Some(wait) => wait()?,
            None => read_roster(self.job, r)?,
        };
        let path = self.job.resolve(&r.path);
        self.inputs.push(InputInfo {
            layer: Layer::Resident,
            path,
            rows: t.rows_read,
            crs: None,
            crs_source: None,
            conversions: Vec::new(),
        });
        Ok(t)
    }

    fn place_residents(&mut self, model: &mut Model, t: &Table) {
        let cfg = self
            .job
            .layers
            .residents
            .as_ref()
            .expect("residents configured");
        let ids = t.text(&cfg.id);
        let hh = t.text(&cfg.household);
        let id_numbers = cfg.id_number.as_deref().map(|c| t.text(c));
        let sexes = cfg.sex.as_deref().map(|c| t.text(c));
        for (row, why) in &t.unreadable {
            self.report.push(
                Layer::Resident,
                Some(*row),
                None,
                IssueKind::UnreadableRow,
                Severity::Rejected,
                why.clone(),
            );
        }
        let (ids, hh) = (TextColumn::new(ids), TextColumn::new(hh));
        let n = ids.len();
        // In parallel: each row's household (`NONE` without a known code). Rosters are
        // usually exported in the order of the household table, members of a household
        // together, so each row is first compared with the previous row's household and the
        // one after it (a merge join). Other rows (and the first of each task) look their code
        // up: by binary search when the household ids are sorted, else in a hash map built
        // the first time one is needed.
        let households = &model.households;
        let sorted = households
            .par_windows(2)
            .all(|w| w[0].id.as_str() < w[1].id.as_str());
        let household_of: std::sync::OnceLock<HashMap<&str, u32>> = std::sync::OnceLock::new();
        let lookup = |code: &str| -> u32 {
            if sorted {
                return households
                    .binary_search_by(|h| h.id.as_str().cmp(code))
                    .map_or(NONE, |h| h as u32);
            }
            let map = household_of.get_or_init(|| {
                let mut m = HashMap::with_capacity_and_hasher(households.len(), Default::default());
                m.extend(
                    households
                        .iter()
                        .enumerate()
                        .map(|(i, h)| (h.id.as_str(), i as u32)),
                );
                m
            });
            map.get(code).copied().unwrap_or(NONE)
        };
        const NONE: u32 = u32::MAX;
        const CHUNK: usize = 16 * 1024;
        let mut found = vec![NONE; n];
        found
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(c, out)| {
                let mut cursor: Option<usize> = None;
                for (k, o) in out.iter_mut().enumerate() {
                    let Some(code) = hh.get(c * CHUNK + k).and_then(clean_code_ref) else {
                        continue;
                    };
                    let at = |h: usize| households.get(h).is_some_and(|x| x.id.as_str() == code);
                    let h = match cursor {
                        Some(h) if at(h) => h as u32,
                        Some(h) if at(h + 1) => h as u32 + 1,
                        _ => lookup(&code),
                    };
                    cursor = (h != NONE).then_some(h as usize);
                    *o = h;
                }
            });
        let repeats = duplicates(n, |i| ids.get(i).and_then(clean_code_ref));
        let mut repeats = repeats.into_iter().peekable();
        let mut residents = Vec::with_capacity(n);
        let mut counts = vec![0u32; model.households.len()];
        for (i, &h) in found.iter().enumerate() {
            let src = t.source_row(i);
            let cleaned = ids.get(i).and_then(clean_code_ref);
            let id = cleaned.as_deref();
            let first = repeats
                .next_if(|&(r, _)| r as usize == i)
                .map(|(_, j)| t.source_row(j as usize));
            let found = (h != NONE).then(|| (h, model.households[h as usize].placed));
            let code = || hh.get(i).and_then(clean_code_ref);
            let failure = match (id, found) {
                (None, _) => Some((IssueKind::MissingId, "empty id".to_owned())),
                (Some(_), _) if first.is_some() => Some((
                    IssueKind::DuplicateId,
                    format!("id already used by row {}", first.unwrap_or_default()),
                )),
                (Some(_), None) => Some(match code() {
                    None => (IssueKind::Unlocated, "no household code".to_owned()),
                    Some(code) => (
                        IssueKind::UnknownReference,
                        format!(
                            "household {} is not in the roster (unknown or rejected)",
                            mask_identifier(&code)
                        ),
                    ),
                }),
                (Some(_), Some((_, false))) => Some((
                    IssueKind::Unlocated,
                    format!(
                        "household {} could not be placed",
                        mask_identifier(&code().unwrap_or_default())
                    ),
                )),
                (Some(_), Some((h, true))) => {
                    counts[h as usize] += 1;
                    let masked = || id.map(mask_identifier);
                    let from_id = match id_numbers.and_then(|c| c.get(i)) {
                        Some(raw) if !raw.trim().is_empty() => match id_number_is_male(raw) {
                            Ok(male) => Some(if male { Sex::Male } else { Sex::Female }),
                            Err(why) => {
                                self.report.push(
                                    Layer::Resident,
                                    Some(src),
                                    masked().as_deref(),
                                    IssueKind::BadIdNumber,
                                    Severity::Warning,
                                    format!("ID number {} {why}", mask_identifier(raw.trim())),
                                );
                                None
                            }
                        },
                        _ => None,
                    };
                    let given = match sexes.and_then(|c| c.get(i)) {
                        Some(v) => match Sex::parse(v) {
                            Some(s) => s,
                            None => {
                                self.report.push(
                                    Layer::Resident,
                                    Some(src),
                                    masked().as_deref(),
                                    IssueKind::BadValue,
                                    Severity::Warning,
                                    format!(
                                        "column {:?}: sex not recognised (男/女, M/F, 1/2)",
                                        cfg.sex.as_deref().unwrap_or_default()
                                    ),
                                );
                                Sex::Unknown
                            }
                        },
                        None => Sex::Unknown,
                    };
                    let sex = match (given, from_id) {
                        (Sex::Unknown, Some(s)) => s,
                        (g, _) => g,
                    };
                    residents.push(Resident {
                        household: h,
                        sex,
                        source_index: src,
                    });
                    None
                }
            };
            if let Some((kind, detail)) = failure {
                let masked = id.map(mask_identifier);
                self.report.push(
                    Layer::Resident,
                    Some(src),
                    masked.as_deref(),
                    kind,
                    Severity::Rejected,
                    detail,
                );
            }
        }
        for (h, c) in model.households.iter_mut().zip(counts) {
            h.residents = c;
        }
        model.residents = residents;
        self.reads.insert(Layer::Resident, t.rows_read);
    }

    fn place_facilities(
        &mut self,
        model: &mut Model,
        s: &mut Staged,
        finest: Option<(Layer, &PolygonIndex)>,
    ) {
        let n = s.geoms.len();
        let mut pts = Vec::with_capacity(n);
        for i in 0..n {
            match s.geoms[i].take() {
                None => pts.push(None),
                Some(Geometry::Point(p)) => pts.push(Some(p.0)),
                Some(other) => {
                    pts.push(None);
                    let t = type_name(&other);
                    self.reject(
                        s,
                        i,
                        IssueKind::MissingGeometry,
                        format!("expected a point, found {t}"),
                    );
                }
            }
        }
        let located = match finest {
            Some((_, idx)) => idx.locate_all(&pts),
            None => vec![None; n],
        };
        let has_capacity = s.extra.len() > 1;
        for i in 0..n {
            let Some(p) = pts[i] else { continue };
            let id = s.ids[i].clone().expect("rows without id are rejected");
            let kind = s.extra[0][i].as_deref().and_then(clean_code);
            let Some(kind) = kind else {
                self.report.push(
                    Layer::Facility,
                    Some(i),
                    Some(&id),
                    IssueKind::BadValue,
                    Severity::Rejected,
                    "no facility type",
                );
                continue;
            };
            let capacity = if has_capacity {
                match s.extra[1][i].as_deref() {
                    None => None,
                    Some(v) if v.trim().is_empty() => None,
                    Some(v) => match parse_number(v).filter(|c| *c >= 0.0) {
                        Some(c) => Some(c),
                        None => {
                            self.report.push(
                                Layer::Facility,
                                Some(i),
                                Some(&id),
                                IssueKind::BadValue,
                                Severity::Warning,
                                format!("capacity {v:?} is not a non-negative number; left empty"),
                            );
                            None
                        }
                    },
                }
            } else {
                None
            };
            let lineage = match (finest, located[i]) {
                (Some((level, _)), Some(a)) => model.lineage(level, a),
                (Some((level, _)), None) => {
                    self.report.push(
                        Layer::Facility,
                        Some(i),
                        Some(&id),
                        IssueKind::OutsideParent,
                        Severity::Warning,
                        format!(
                            "lies outside every {}; kept, as it may serve residents nearby",
                            level.singular()
                        ),
                    );
                    Lineage::default()
                }
                (None, _) => Lineage::default(),
            };
            model.facilities.push(Facility {
                id: FacilityId::new(&id),
                name: s.names[i].take(),
                kind,
                capacity,
                point: p,
                lineage,
                source_index: i,
            });
        }
        self.reads.insert(Layer::Facility, n);
    }
}

/// A row's geometry after checking, or the issue that rejects it.
type Checked<T> = std::result::Result<T, (IssueKind, String)>;
/// A building's footprint (if any) and representative point.
type Shape = (Option<MultiPolygon<f64>>, Coord<f64>);

/// A polygon unit before it is stored in the model.
#[derive(Debug, Clone)]
pub(crate) struct Unit {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) geometry: MultiPolygon<f64>,
    pub(crate) area_m2: f64,
    pub(crate) declared_parent: Option<String>,
    pub(crate) lineage: Lineage,
    pub(crate) source_index: Option<usize>,
}

struct HouseholdRows {
    rows_read: usize,
    source: Vec<usize>,
    ids: Vec<Option<HouseholdId>>,
    /// The declared building codes, when the layer has a building column.
    buildings: Option<Vec<Option<String>>>,
    coords: Vec<Option<Coord<f64>>>,
    rejected: Vec<bool>,
}

impl HouseholdRows {
    /// Row `i`'s declared building code.
    fn building(&self, i: usize) -> Option<&str> {
        self.buildings.as_ref().and_then(|b| b[i].as_deref())
    }

    /// Row `i`'s id.
    fn id(&self, i: usize) -> Option<&str> {
        self.ids[i].as_ref().map(HouseholdId::as_str)
    }
}

fn footprint(mp: MultiPolygon<f64>) -> Checked<Shape> {
    if let Err(e) = checks::validate(&mp) {
        return Err((IssueKind::InvalidGeometry, e));
    }
    let p = mp
        .interior_point()
        .ok_or((IssueKind::MissingGeometry, "empty footprint".to_owned()))?;
    Ok((Some(mp.orient(Direction::Default)), p.0))
}

/// Dissolves children into parents by their declared parent codes.
fn derive_by_dissolve(children: &[Unit], parent_prefix: Option<usize>) -> Vec<Unit> {
    let mut groups: std::collections::BTreeMap<&str, Vec<&MultiPolygon<f64>>> = Default::default();
    for c in children {
        if let Some(p) = c.declared_parent.as_deref() {
            groups.entry(p).or_default().push(&c.geometry);
        }
    }
    groups
        .into_par_iter()
        .map(|(code, parts)| {
            let geometry = geo::unary_union(parts.iter().copied());
            Unit {
                id: code.to_owned(),
                name: None,
                area_m2: geometry.unsigned_area(),
                geometry,
                declared_parent: parent_prefix.and_then(|k| code.get(..k)).map(str::to_owned),
                lineage: Lineage::default(),
                source_index: None,
            }
        })
        .collect()
}

fn store_units(model: &mut Model, layer: Layer, us: Vec<Unit>) {
    fn conv<I: for<'a> From<&'a str>>(us: Vec<Unit>) -> Vec<Area<I>> {
        us.into_iter()
            .map(|u| Area {
                id: I::from(u.id.as_str()),
                name: u.name,
                geometry: u.geometry,
                area_m2: u.area_m2,
                declared_parent: u.declared_parent,
                lineage: u.lineage,
                source_index: u.source_index,
            })
            .collect()
    }
    match layer {
        Layer::Street => model.streets = conv(us),
        Layer::Community => model.communities = conv(us),
        Layer::Grid => model.grids = conv(us),
        _ => unreachable!("only polygon levels are stored as units"),
    }
}

/// (geometry, source index, id) of the units of a polygon level.
pub(crate) fn model_units(
    model: &Model,
    layer: Layer,
) -> Vec<(&MultiPolygon<f64>, Option<usize>, &str)> {
    fn get<I: AsRef<str>>(v: &[Area<I>]) -> Vec<(&MultiPolygon<f64>, Option<usize>, &str)> {
        v.iter()
            .map(|a| (&a.geometry, a.source_index, a.id.as_ref()))
            .collect()
    }
    match layer {
        Layer::Street => get(&model.streets),
        Layer::Community => get(&model.communities),
        Layer::Grid => get(&model.grids),
        _ => Vec::new(),
    }
}

fn id_lookup(model: &Model, layer: Layer) -> HashMap<&str, u32> {
    model_units(model, layer)
        .into_iter()
        .enumerate()
        .map(|(i, (_, _, id))| (id, i as u32))
        .collect()
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
        Layer::Path | Layer::Site => 0,
    }
}

/// The issue for a bad coordinate. `digits` is the precision shown: households' locations are
/// personal data and are shown to 2 decimals only.
fn coord_issue(v: CoordCheck, c: Coord<f64>, crs: &Crs, digits: usize) -> (IssueKind, String) {
    let rounded = if digits < 6 { " (rounded)" } else { "" };
    match v {
        CoordCheck::Swapped => (
            IssueKind::SwappedLatLon,
            format!(
                "coordinate ({:.digits$}, {:.digits$}){rounded} in {crs} looks like latitude/longitude swapped",
                c.x, c.y
            ),
        ),
        CoordCheck::Invalid => (
            IssueKind::OutOfRange,
            format!(
                "coordinate ({:.digits$}, {:.digits$}){rounded} in {crs} is not a valid longitude/latitude",
                c.x, c.y
            ),
        ),
        CoordCheck::OutsideRegion | CoordCheck::Ok => (
            IssueKind::OutOfRange,
            format!(
                "coordinate ({:.digits$}, {:.digits$}){rounded} lies outside the expected region (region = \"china\": lon 73–135.2, lat 3.5–54; region = \"world\": the CRS's area of use)",
                c.x, c.y
            ),
        ),
    }
}

/// A region's box for a message.
fn region_text(r: &Region) -> String {
    format!("lon {}–{}, lat {}–{}", r.west, r.east, r.south, r.north)
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

fn relocate(e: Error, layer: Layer, path: &std::path::Path) -> Error {
    e.located(Location::layer(layer.name()).file(path))
}
