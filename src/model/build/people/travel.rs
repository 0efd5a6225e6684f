//! Residents placed apart: any process places some of the roster's rows against the frame and
//! the households, and hands them to the analyses of people (the sinks); the residents, their
//! issues and each sink's state travel as one [`ResidentsPartial`]. One process merges the
//! partials of every row into what one reading of the whole roster gives: residents numbered
//! in row order, members counted, each sink's part absorbed.

use std::path::Path;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::partial::given_working_crs;
use super::residents::{PeopleSink, Placer};
use super::{HouseholdsPartial, PeopleFrame};
use crate::error::{Error, Location, Result};
use crate::io::chunks::TableChunks;
use crate::io::rows::row_numbers;
use crate::job::{Job, ResidentLayer};
use crate::model::build::Builder;
use crate::model::level::Layer;
use crate::model::quality::QualityIssue;
use crate::model::{Model, Resident, Sex};
use crate::progress::NoProgress;

/// The residents some rows of the roster place, their rows' issues and number, and each
/// sink's part (in the order of the sinks that folded them). Partials of disjoint rows merge
/// in any order to the same result.
///
/// # Examples
/// ```
/// use shequ::ResidentsPartial;
/// let p = ResidentsPartial::from_bytes(&ResidentsPartial::default().to_bytes())?;
/// assert_eq!((p.rows(), p.residents()), (0, 0));
/// assert!(ResidentsPartial::from_bytes(b"\xff").is_err());
/// # Ok::<(), shequ::Error>(())
/// ```
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ResidentsPartial {
    /// (row, household, sex) of each resident placed, in the order placed.
    placed: Vec<(u32, u32, Sex)>,
    /// (household, members placed here) where any were.
    members: Vec<(u32, u32)>,
    issues: Vec<QualityIssue>,
    rows: usize,
    sinks: Vec<Vec<u8>>,
}

impl ResidentsPartial {
    /// Data rows folded into it, readable or not.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Residents placed from them.
    pub fn residents(&self) -> usize {
        self.placed.len()
    }

    /// Each sink's part, in the order of the sinks that folded them.
    pub fn sink_parts(&self) -> &[Vec<u8>] {
        &self.sinks
    }

    /// The partial as bytes (postcard), to send between processes.
    ///
    /// # Panics
    /// Never: every field serialises.
    pub fn to_bytes(&self) -> Vec<u8> {
        part_bytes(self)
    }

    /// A partial from [`to_bytes`](Self::to_bytes).
    ///
    /// # Errors
    /// [`Error::Data`] if the bytes are not a partial of residents.
    pub fn from_bytes(bytes: &[u8]) -> Result<ResidentsPartial> {
        from_part(bytes, "residents")
    }
}

/// The frame residents are placed against (the small layers and the households), built once
/// per process; places files of roster rows into [`ResidentsPartial`]s.
///
/// # Examples
/// See [`ResidentsStage`](crate::run::ResidentsStage), which holds one with the job's
/// analyses of people; `shequ.spark` calls it on Spark's executors.
pub struct ResidentFolder {
    job: Job,
    layer: ResidentLayer,
    model: Model,
}

impl ResidentFolder {
    /// Builds the frame of `job` without its roster of residents: the households from
    /// `households` (merged partials of every row, as the driver has them) or else from the
    /// job's file.
    ///
    /// # Errors
    /// [`Error::Job`] without `[layers.residents]`; as [`build`](crate::build) and
    /// [`build_with_households`](crate::build_with_households).
    pub fn new(job: &Job, households: Option<HouseholdsPartial>) -> Result<ResidentFolder> {
        let layer = resident_layer(job)?;
        let mut frame_job = job.clone();
        frame_job.layers.residents = None;
        frame_job.layers.events = None;
        frame_job.layers.visits = None;
        let frame = match households {
            Some(h) => crate::build_with_households(&frame_job, &NoProgress, &mut [], vec![h])?,
            None => crate::build(&frame_job)?,
        };
        Ok(ResidentFolder {
            job: job.clone(),
            layer,
            model: frame.model,
        })
    }

    /// [`new`](Self::new) against a frame made elsewhere (the driver's, without its
    /// footprints: [`PeopleFrame::of`]) and the merged households of every row: no layer is
    /// read. Its folds are [`new`](Self::new)'s, byte for byte.
    ///
    /// # Examples
    /// ```
    /// use shequ::{HouseholdPlacer, PeopleFrame, ResidentFolder};
    /// let mut job = shequ::Job::from_toml("data-samples/sample-city/job.toml")?;
    /// job.options.working_crs = shequ::crs::WorkingCrs::Given(shequ::resolve_working_crs(&job, None)?);
    /// let placer = HouseholdPlacer::new(&job)?; // the whole frame, as the driver builds it
    /// let frame = PeopleFrame::of(placer.model());
    /// let folder = ResidentFolder::with_frame(&job, &frame, Default::default())?;
    /// assert_eq!(folder.model().grids.len(), placer.model().grids.len());
    /// assert!(folder.model().buildings.iter().all(|b| b.footprint.is_none()));
    /// job.options.working_crs = shequ::crs::WorkingCrs::Auto;
    /// assert!(ResidentFolder::with_frame(&job, &frame, Default::default()).is_err());
    /// # Ok::<(), shequ::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Job`] without `[layers.residents]` or `[layers.households]`, or with an
    /// `auto` working CRS (the households were placed in a given one).
    pub fn with_frame(
        job: &Job,
        frame: &PeopleFrame,
        households: HouseholdsPartial,
    ) -> Result<ResidentFolder> {
        let layer = resident_layer(job)?;
        let (_, working) = given_working_crs(job)?;
        let mut model = frame.model(working);
        model.households = households.into_households().0;
        model.levels.push(Layer::Household);
        Ok(ResidentFolder {
            job: job.clone(),
            layer,
            model,
        })
    }

    /// The frame's model (households placed, no residents).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Each data row's id key in `path` (a file with the roster's columns), in row order
    /// (`None` without an id). Rows with equal keys repeat one id.
    ///
    /// # Errors
    /// As reading the file.
    pub fn keys(&self, path: &Path) -> Result<Vec<Option<(u64, u64)>>> {
        crate::model::duplicates::id_keys(&mut self.open(path, &[], &[])?, &self.layer.id)
    }

    /// Places the residents of `path` (a file with the roster's columns) and hands each
    /// chunk to `sinks`, as the build does; returns the partial with each sink's part. Column
    /// `rows` holds each row's 0-based data row in the whole roster, column `first` the first
    /// row with the same id when the row repeats one. A broken line of a CSV part is reported
    /// at its data row in `path` (Spark's parts are Parquet written from Arrow).
    ///
    /// # Errors
    /// As reading the file and the sinks' own; [`Error::Data`] for a row number that is
    /// missing or not a whole number.
    pub fn fold(
        &self,
        path: &Path,
        rows: &str,
        first: &str,
        sinks: &mut [&mut dyn PeopleSink],
    ) -> Result<ResidentsPartial> {
        let extra: Vec<String> = sinks.iter().flat_map(|s| s.columns()).collect();
        let later: Vec<&str> = extra.iter().map(String::as_str).collect();
        let mut chunks = self.open(path, &[rows, first], &later)?;
        for s in sinks.iter_mut() {
            s.header(chunks.header())?;
        }
        let model = &self.model;
        let mut b = Builder::new(&self.job, &NoProgress);
        let mut placer = Placer::new(&model.households, chunks.rows_estimate());
        let mut read = 0;
        while let Some(mut t) = chunks.next_chunk()? {
            let at = |i: usize| {
                Location::layer(Layer::Resident.name())
                    .file(path)
                    .index(t.source_row(i))
            };
            let (own, firsts) = row_numbers(&t, rows, first, &at)?;
            t.source_rows = Some(own);
            let placed = b.place_chunk(&mut placer, &model.households, &t, Some(&firsts));
            for s in sinks.iter_mut() {
                s.chunk(model, &t, &placed)?;
            }
            read += t.rows_read;
        }
        let sinks = sinks
            .iter_mut()
            .map(|s| s.take_part())
            .collect::<Result<Vec<_>>>()?;
        Ok(ResidentsPartial {
            placed: placer
                .residents
                .iter()
                .map(|r| (r.source_index as u32, r.household, r.sex))
                .collect(),
            members: (placer.counts.iter().enumerate())
                .filter(|(_, c)| **c > 0)
                .map(|(h, c)| (h as u32, *c))
                .collect(),
            issues: b.report.issues().to_vec(),
            rows: read,
            sinks,
        })
    }

    /// The roster file's chunks: the columns the build reads, then `more` (required) and
    /// `later` (the sinks', where the file has them).
    fn open(&self, path: &Path, more: &[&str], later: &[&str]) -> Result<TableChunks> {
        let r = &self.layer;
        let mut cols = vec![r.id.as_str(), r.household.as_str()];
        cols.extend(r.id_number.as_deref());
        cols.extend(r.sex.as_deref());
        cols.extend(more);
        TableChunks::open(
            Layer::Resident.name(),
            path,
            &cols,
            more,
            later,
            r.encoding,
            self.job.options.chunk_rows.rows(),
        )
    }
}

/// Residents merged from the partials of every row: the residents in row order, the members
/// per household, the rows' issues, the rows read, and per partial the number here of each
/// of its residents.
pub(crate) struct Merged {
    pub(crate) residents: Vec<Resident>,
    pub(crate) members: Vec<u32>,
    pub(crate) issues: Vec<QualityIssue>,
    pub(crate) rows: usize,
    pub(crate) renumbered: Vec<Vec<u32>>,
}

/// Every part's residents in row order: (row, part, resident of the part).
fn row_order(parts: &[ResidentsPartial]) -> Vec<(u32, u32, u32)> {
    let mut order: Vec<(u32, u32, u32)> = parts
        .iter()
        .enumerate()
        .flat_map(|(p, part)| {
            (part.placed.iter().enumerate()).map(move |(l, r)| (r.0, p as u32, l as u32))
        })
        .collect();
    order.sort_unstable();
    order
}

/// Per part, the number here of each of its residents (numbered in row order).
pub(crate) fn renumbering(parts: &[ResidentsPartial]) -> Vec<Vec<u32>> {
    let mut renumbered: Vec<Vec<u32>> = parts.iter().map(|p| vec![0; p.placed.len()]).collect();
    for (g, &(_, p, l)) in row_order(parts).iter().enumerate() {
        renumbered[p as usize][l as usize] = g as u32;
    }
    renumbered
}

/// Merges `parts` against `households` households.
pub(crate) fn merge(parts: &[ResidentsPartial], households: usize) -> Result<Merged> {
    let order = row_order(parts);
    let mut renumbered: Vec<Vec<u32>> = parts.iter().map(|p| vec![0; p.placed.len()]).collect();
    let mut residents = Vec::with_capacity(order.len());
    let bad = |what: String| Error::data(Location::layer(Layer::Resident.name()), what);
    for (g, &(row, p, l)) in order.iter().enumerate() {
        renumbered[p as usize][l as usize] = g as u32;
        let (_, household, sex) = parts[p as usize].placed[l as usize];
        if household as usize >= households {
            return Err(bad(format!(
                "a partial places row {row} in household {household}, beyond the households"
            )));
        }
        residents.push(Resident {
            household,
            sex,
            source_index: row as usize,
        });
    }
    let mut members = vec![0u32; households];
    for &(h, c) in parts.iter().flat_map(|p| &p.members) {
        let m = members.get_mut(h as usize).ok_or_else(|| {
            bad(format!(
                "a partial counts members of household {h}, beyond the households"
            ))
        })?;
        *m += c;
    }
    Ok(Merged {
        residents,
        members,
        issues: parts
            .iter()
            .flat_map(|p| p.issues.iter().cloned())
            .collect(),
        rows: parts.iter().map(|p| p.rows).sum(),
        renumbered,
    })
}

/// Hands each sink its part of every partial.
pub(crate) fn absorb(
    parts: &[ResidentsPartial],
    renumbered: &[Vec<u32>],
    total: usize,
    sinks: &mut [&mut dyn PeopleSink],
) -> Result<()> {
    for (part, numbers) in parts.iter().zip(renumbered) {
        if part.sinks.len() != sinks.len() {
            return Err(Error::data(
                Location::layer(Layer::Resident.name()),
                format!(
                    "a partial of residents carries {} analyses' parts, the run has {}",
                    part.sinks.len(),
                    sinks.len()
                ),
            ));
        }
        for (s, bytes) in sinks.iter_mut().zip(&part.sinks) {
            s.absorb_part(bytes, numbers, total)?;
        }
    }
    Ok(())
}

/// A sink's part as bytes (postcard).
///
/// # Panics
/// Never for the parts of this crate (plain data).
pub(crate) fn part_bytes<T: Serialize>(part: &T) -> Vec<u8> {
    postcard::to_stdvec(part).expect("a part always serialises")
}

/// A part from [`part_bytes`]; `what` names it in the error.
pub(crate) fn from_part<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| {
        Error::data(
            Location::layer(Layer::Resident.name()),
            format!("not a partial of {what}: {e}"),
        )
    })
}

/// Resident `r` of a part, numbered here.
pub(crate) fn renumber(residents: &[u32], r: u32) -> Result<u32> {
    residents.get(r as usize).copied().ok_or_else(|| {
        Error::data(
            Location::layer(Layer::Resident.name()),
            format!("a part names resident {r} of {}", residents.len()),
        )
    })
}

/// Puts a part's per-resident values where its residents are here (`into` grows to `total`,
/// with `fill` for the residents of other parts). A part without the column (the analysis
/// does not keep it) leaves `into` as it is.
pub(crate) fn scatter<T: Copy>(
    into: &mut Vec<T>,
    part: Vec<T>,
    residents: &[u32],
    total: usize,
    fill: T,
) -> Result<()> {
    if part.is_empty() {
        return Ok(());
    }
    if part.len() != residents.len() {
        return Err(Error::data(
            Location::layer(Layer::Resident.name()),
            format!(
                "a part has {} values for {} residents",
                part.len(),
                residents.len()
            ),
        ));
    }
    into.resize(total, fill);
    for (v, &r) in part.into_iter().zip(residents) {
        *into.get_mut(r as usize).ok_or_else(|| {
            Error::data(
                Location::layer(Layer::Resident.name()),
                format!("resident {r} of {total}"),
            )
        })? = v;
    }
    Ok(())
}

/// The job's `[layers.residents]`.
fn resident_layer(job: &Job) -> Result<ResidentLayer> {
    (job.layers.residents.clone()).ok_or_else(|| job.error("no [layers.residents] to place"))
}
