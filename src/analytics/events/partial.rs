//! The cases for engines that split the rows themselves (Spark): a [`CaseFolder`] built once
//! per process folds any set of rows into a [`CasesPartial`], partials travel as bytes and
//! merge in any order, and the finish runs once on the merged partial, as it does after
//! [`read_events`](super::read_events) on one machine.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cases::{Context, Locator};
use super::options::{EventLayer, EventsOptions};
use super::pass::Pass;
use super::roster_ids::RosterIds;
use super::rules::Rules;
use super::tally::Tally;
use super::{Events, OpenCase};
use crate::crs::{Crs, Region};
use crate::error::{Error, Location, Result};
use crate::io::chunks::TableChunks;
use crate::io::rows::row_numbers;
use crate::job::{Job, RegionName};
use crate::model::Model;
use crate::model::level::Layer;
use crate::model::quality::{LayerCount, QualityIssue};

/// What a set of cases adds up to before the finish: counts and durations per unit, the open
/// cases, the rows' issues and their accounting. Partials of disjoint rows merge in any order
/// to the same result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CasesPartial {
    pub(super) tally: Tally,
    pub(super) open: Vec<OpenCase>,
    pub(super) issues: Vec<QualityIssue>,
    pub(super) count: LayerCount,
}

impl CasesPartial {
    /// Rows read, placed and reported so far.
    pub fn count(&self) -> LayerCount {
        self.count
    }

    /// Adds the partial of other rows.
    pub fn merge(&mut self, other: CasesPartial) {
        self.tally.merge(other.tally);
        self.open.extend(other.open);
        self.issues.extend(other.issues);
        self.count.read += other.count.read;
        self.count.placed += other.count.placed;
        self.count.rejected += other.count.rejected;
    }

    /// The partial as bytes (postcard), to send between processes.
    ///
    /// # Panics
    /// Never: every field serialises.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("a partial always serialises")
    }

    /// A partial from [`CasesPartial::to_bytes`].
    ///
    /// # Errors
    /// [`Error::Data`] for bytes that are not a partial (of this version of shequ).
    pub fn from_bytes(bytes: &[u8]) -> Result<CasesPartial> {
        postcard::from_bytes(bytes).map_err(|e| {
            Error::data(
                Location::layer(Layer::Event.name()),
                format!("not a partial of cases: {e}"),
            )
        })
    }
}

/// The job's cases layer, rules and locator, built once; folds files of cases into
/// partials and finishes merged partials.
///
/// # Examples
/// Two halves of the sample's cases, folded apart and merged, give what one reading gives:
/// ```
/// use shequ::analytics::events::{CaseFolder, read_events};
/// let job = shequ::Job::from_toml("data-samples/sample-city/job.toml")?;
/// let build = shequ::build(&job)?;
/// let folder = CaseFolder::new(&job, &build.model, None, false)?;
/// let all = read_events(&job, &build.model, None, false, &shequ::NoProgress)?;
/// let dir = tempfile::tempdir()?;
/// let text = std::fs::read_to_string("data-samples/sample-city/events.csv")?;
/// let (header, rows) = text.split_once('\n').unwrap();
/// let rows: Vec<&str> = rows.lines().collect();
/// let keys = folder.keys(std::path::Path::new("data-samples/sample-city/events.csv"))?;
/// let first = shequ::analytics::events::first_rows(&keys);
/// let mut partials = Vec::new();
/// for (h, range) in [(0, 0..3000), (1, 3000..rows.len())] {
///     let path = dir.path().join(format!("half{h}.csv"));
///     let mut out = format!("{header},_row,_first\n");
///     for r in range {
///         let f = first[r].map(|f| f.to_string()).unwrap_or_default();
///         out.push_str(&format!("{},{r},{f}\n", rows[r]));
///     }
///     std::fs::write(&path, out)?;
///     partials.push(folder.fold(&path, "_row", "_first")?);
/// }
/// let split = folder.finish(partials);
/// assert_eq!(split.count, all.count);
/// assert_eq!(split.tally.count(0, 0), all.tally.count(0, 0));
/// assert_eq!(split.issues, all.issues);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct CaseFolder<'a> {
    layer: &'a EventLayer,
    options: EventsOptions,
    rules: Rules,
    locator: Locator<'a>,
    roster: Option<&'a RosterIds>,
    keep_text: bool,
    path: PathBuf,
    chunk_rows: usize,
    units: usize,
}

impl<'a> CaseFolder<'a> {
    /// The folder of `job`'s cases on `model`; `roster` links resident ids, `keep_text` keeps
    /// the free text (operational card lists with plain identifiers only).
    ///
    /// # Errors
    /// A job without `[layers.events]`, bad rule tables, a CRS PROJ cannot use, a job without
    /// polygon levels.
    pub fn new(
        job: &'a Job,
        model: &'a Model,
        roster: Option<&'a RosterIds>,
        keep_text: bool,
    ) -> Result<CaseFolder<'a>> {
        let layer = job
            .layers
            .events
            .as_ref()
            .ok_or_else(|| job.error("no [layers.events]"))?;
        let options = job.events.clone().unwrap_or_default();
        let rules = Rules::of(job, &options)?;
        let path = job.resolve(&layer.path);
        let crs = match &layer.crs {
            Some(c) => {
                Crs::parse(c).map_err(|e| crate::model::build::relocate(e, Layer::Event, &path))?
            }
            None => Crs::lonlat(),
        };
        let region = match job.options.region {
            RegionName::China => Region::china(),
            RegionName::World => crs.area_of_use().unwrap_or(Region::world()),
        };
        let locator = Locator::new(model, crs, region, options.repeat_metres)?;
        let units = model.units(locator.finest);
        Ok(CaseFolder {
            layer,
            options,
            rules,
            locator,
            roster,
            keep_text,
            path,
            chunk_rows: job.options.chunk_rows.rows(),
            units,
        })
    }

    /// The job's cases file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn context(&self) -> Context<'_, 'a> {
        Context {
            layer: self.layer,
            rules: &self.rules,
            locator: &self.locator,
            roster: self.roster,
            keep_text: self.keep_text,
        }
    }

    pub(super) fn pass(&self) -> Pass {
        Pass::new(self.units, self.rules.categories.len(), self.options.period)
    }

    /// Every column the layer maps (the free text only when it is kept), and those read as
    /// numbers.
    pub(super) fn wanted(&self) -> (Vec<String>, Vec<String>) {
        let l = self.layer;
        let mut c = vec![l.id.clone(), l.category.clone()];
        for o in [
            &l.subcategory,
            &l.source,
            &l.lon,
            &l.lat,
            &l.building,
            &l.unit,
            &l.department,
            &l.status,
            &l.satisfaction,
            &l.resident,
        ] {
            c.extend(o.clone());
        }
        if self.keep_text {
            c.extend(l.text.iter().cloned());
        }
        c.extend(l.steps.values().cloned());
        let mut seen = std::collections::HashSet::new();
        c.retain(|x| seen.insert(x.clone()));
        let numbers = l.lon.iter().chain(&l.lat).cloned().collect();
        (c, numbers)
    }

    /// The layer's columns of `path` in chunks, with `extra` columns read as numbers.
    pub(super) fn open(&self, path: &Path, extra: &[&str]) -> Result<TableChunks> {
        let (columns, numbers) = self.wanted();
        let mut cols: Vec<&str> = columns.iter().map(String::as_str).collect();
        cols.extend(extra);
        let mut nums: Vec<&str> = numbers.iter().map(String::as_str).collect();
        nums.extend(extra);
        TableChunks::open(
            Layer::Event.name(),
            path,
            &cols,
            &nums,
            &[],
            self.layer.encoding,
            self.chunk_rows,
        )
    }

    /// Each data row's id key in `path` (a file with the layer's columns), in row order:
    /// `None` for a row without an id. Rows with equal keys repeat an id; an engine finds the
    /// first row of each key (see [`first_rows`]) and hands it to [`CaseFolder::fold`].
    ///
    /// # Errors
    /// As reading the file.
    pub fn keys(&self, path: &Path) -> Result<Vec<Option<(u64, u64)>>> {
        crate::model::duplicates::id_keys(&mut self.open(path, &[])?, &self.layer.id)
    }

    /// Folds the cases of `path` (a file with the layer's columns) into a partial. Column
    /// `rows` holds each row's 0-based data row in the whole input, column `first` the first
    /// row with the same id when the row repeats one (empty otherwise), so that rows are
    /// reported as one reading of the whole input reports them.
    ///
    /// # Errors
    /// As reading the file; [`Error::Data`] for a row number that is missing or not a
    /// whole number.
    pub fn fold(&self, path: &Path, rows: &str, first: &str) -> Result<CasesPartial> {
        let cx = self.context();
        let mut pass = self.pass();
        let mut chunks = self.open(path, &[rows, first])?;
        while let Some(mut t) = chunks.next_chunk()? {
            let (own, firsts) = {
                // Located at the row of `path` (its data row, not the chunk's).
                let at = |i: usize| {
                    Location::layer(Layer::Event.name())
                        .file(path)
                        .index(t.source_row(i))
                };
                row_numbers(&t, rows, first, &at)?
            };
            t.source_rows = Some(own);
            let n = t.rows_read;
            pass.fold_chunk(&cx, &t, n, &firsts)?;
        }
        Ok(pass.into_partial())
    }

    /// The cases finished from the partials of every row: repeats counted, issues and open
    /// cases in row order.
    pub fn finish(&self, partials: impl IntoIterator<Item = CasesPartial>) -> Events {
        let mut all: Option<CasesPartial> = None;
        for p in partials {
            match all.as_mut() {
                Some(a) => a.merge(p),
                None => all = Some(p),
            }
        }
        let mut all = all.unwrap_or_else(|| self.pass().into_partial());
        all.tally.count_repeats(self.options.repeat_days);
        crate::trace::step("repeated cases");
        all.issues.sort_by_key(|i| (i.index, i.kind));
        all.open.sort_by_key(|o| o.row);
        Events::new(
            self.rules.clone(),
            self.options.clone(),
            self.locator.finest,
            all.tally,
            all.open,
            all.issues,
            all.count,
        )
    }
}

/// For each row of `keys` (in row order): the first earlier row with the same key, as one
/// reading of the whole input finds it.
///
/// # Examples
/// ```
/// let k = |x| Some((x, x));
/// assert_eq!(
///     shequ::analytics::events::first_rows(&[k(1), None, k(2), k(1), k(1)]),
///     [None, None, None, Some(0), Some(0)]
/// );
/// ```
pub fn first_rows(keys: &[Option<(u64, u64)>]) -> Vec<Option<u32>> {
    let mut seen = std::collections::HashMap::new();
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            let k = (*k)?;
            let f = *seen.entry(k).or_insert(i as u32);
            (f != i as u32).then_some(f)
        })
        .collect()
}

impl Pass {
    /// What the pass folded, its parts merged.
    pub(super) fn into_partial(mut self) -> CasesPartial {
        for p in std::mem::take(&mut self.parts) {
            self.tally.merge(p);
        }
        CasesPartial {
            tally: self.tally,
            open: self.open,
            issues: self.issues,
            count: self.count,
        }
    }
}
