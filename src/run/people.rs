//! The people stage of a run: the build with the analyses of people as its sinks, their finish
//! on the merged state, then the cases and visits; and the same stage with its rows folded
//! elsewhere (Spark's executors) and given as partials.

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use super::{events, include_restricted, record};
use crate::analytics::SpecialNeeds;
use crate::analytics::coverage::halo::{FacilityHalo, GivenReach};
use crate::analytics::events::RosterIds;
use crate::analytics::special_needs::SpecialNeedsPass;
use crate::error::Result;
use crate::job::Job;
use crate::model::build::{Build, PeopleSink, ResidentFolder};
use crate::privacy::Policy;
use crate::progress::Progress;
use crate::{HouseholdsPartial, ResidentsPartial};

/// The rows of the rosters folded elsewhere (by Spark's executors), given to a run instead of
/// read from the job's files; `None` reads the layer's file.
#[derive(Debug, Default)]
pub struct Partials {
    /// The households, placed by [`HouseholdPlacer::fold`](crate::HouseholdPlacer::fold).
    pub households: Option<Vec<HouseholdsPartial>>,
    /// The residents, placed by [`ResidentsStage::fold`] (the sinks of
    /// [`PeopleSinks::new`] with them).
    pub residents: Option<Vec<ResidentsPartial>>,
    /// The cases, folded by [`CaseFolder::fold`](crate::analytics::events::CaseFolder::fold).
    pub cases: Option<Vec<crate::analytics::events::CasesPartial>>,
    /// The homes' straight-line reach, measured street by street against each street's
    /// [`FacilityHalo`](crate::analytics::coverage::halo::FacilityHalo): coverage measures
    /// only the homes these do not know.
    pub reach: Option<Vec<crate::analytics::coverage::halo::ReachPart>>,
}

/// What the people stage made: the build and the analyses of people, finished.
#[derive(Debug)]
pub struct People {
    /// The build.
    pub build: Build,
    /// Special-needs labels and counts, when the job has `[special_needs]`.
    pub special: Option<SpecialNeeds>,
    /// The registers linked, when the job has `[[registers]]`.
    pub links: Option<crate::registry::Links>,
    /// Cases and visits, when the job has `[layers.events]` or `[layers.visits]`.
    pub events: Option<crate::analytics::events::Events>,
    /// The homes' reach measured street by street ([`Partials::reach`]), merged in the
    /// model's household order.
    pub reach: Option<GivenReach>,
}

/// The analyses of people a job asks for, as sinks of the roster: the special-needs pass, the
/// register linker and the roster's ids for cases and visits. The same sinks, in the same
/// order, fold the roster on one machine and on each of Spark's executors.
///
/// # Examples
/// ```
/// let job = shequ::Job::from_toml("data-samples/sample-city/job.toml")?;
/// let policy = shequ::run::policy(&job)?;
/// let mut sinks = shequ::run::PeopleSinks::new(&job, &policy)?;
/// assert_eq!(sinks.list().len(), 3); // labels, registers, ids for the visit log
/// # Ok::<(), shequ::Error>(())
/// ```
pub struct PeopleSinks {
    /// The special-needs pass, when the job has `[special_needs]`.
    pub pass: Option<SpecialNeedsPass>,
    /// The register linker, when the job has `[[registers]]`.
    pub linker: Option<crate::registry::Linker>,
    /// The roster's ids, when cases name residents or there is a visit log.
    pub roster_ids: Option<RosterIds>,
}

impl PeopleSinks {
    /// The sinks of `job` under `policy`.
    ///
    /// # Errors
    /// As [`SpecialNeedsPass::new`] and [`read_registers`](crate::registry::read_registers).
    pub fn new(job: &Job, policy: &Policy) -> Result<PeopleSinks> {
        let pass = match &job.special_needs {
            Some(o) => Some(SpecialNeedsPass::new(
                job,
                o,
                include_restricted(o, policy),
            )?),
            None => None,
        };
        // Registers are read before the roster streams: its chunks are linked to them.
        let linker = match job.registers.is_empty() {
            true => None,
            false => Some(crate::registry::Linker::new(
                crate::registry::read_registers(job)?,
                crate::registry::RosterKeys::of(job),
            )),
        };
        let roster_ids = events::needs_roster_ids(job).then(|| RosterIds::new(job));
        Ok(PeopleSinks {
            pass,
            linker,
            roster_ids,
        })
    }

    /// The sinks present, in their fixed order.
    pub fn list(&mut self) -> Vec<&mut dyn PeopleSink> {
        let mut sinks: Vec<&mut dyn PeopleSink> = Vec::new();
        if let Some(p) = self.pass.as_mut() {
            sinks.push(p);
        }
        if let Some(l) = self.linker.as_mut() {
            sinks.push(l);
        }
        if let Some(r) = self.roster_ids.as_mut() {
            sinks.push(r);
        }
        sinks
    }
}

/// What a process folds roster rows with: the frame with its households
/// ([`ResidentFolder`]) and the job's [`PeopleSinks`], built once and used for every part.
///
/// # Examples
/// The sample's roster in two halves, folded apart and given to the people stage, gives one
/// reading's residents and labels:
/// ```
/// use shequ::analytics::events::first_rows;
/// let job = shequ::Job::from_toml("data-samples/sample-city/job.toml")?;
/// let stage = shequ::run::ResidentsStage::new(&job, None)?;
/// let file = std::path::Path::new("data-samples/sample-city/residents.csv");
/// let first = first_rows(&stage.keys(file)?);
/// let bytes = std::fs::read(file)?;
/// let (text, _, _) = encoding_rs::GB18030.decode(&bytes);
/// let mut lines = text.lines();
/// let header = format!("{},_row,_first\n", lines.next().unwrap());
/// let (mut a, mut b) = (header.clone(), header);
/// for (r, line) in lines.enumerate() {
///     let f = first[r].map(|f| f.to_string()).unwrap_or_default();
///     let half = if r % 2 == 0 { &mut a } else { &mut b };
///     half.push_str(&format!("{line},{r},{f}\n"));
/// }
/// let dir = tempfile::tempdir()?;
/// let mut residents = Vec::new();
/// for (name, rows) in [("a.csv", a), ("b.csv", b)] {
///     let (bytes, _, _) = encoding_rs::GB18030.encode(&rows); // the roster's encoding
///     std::fs::write(dir.path().join(name), bytes)?;
///     residents.push(stage.fold(&dir.path().join(name), "_row", "_first")?);
/// }
/// let policy = shequ::run::policy(&job)?;
/// let given = shequ::run::Partials { residents: Some(residents), ..Default::default() };
/// let apart = shequ::run::people_stage_with(&job, &policy, &shequ::NoProgress, given)?;
/// let whole = shequ::run::people_stage(&job, &policy, &shequ::NoProgress)?;
/// assert_eq!(apart.build.model.residents.len(), whole.build.model.residents.len());
/// assert_eq!(apart.build.report.counts(), whole.build.report.counts());
/// let grid = |p: &shequ::run::People| p.special.as_ref().unwrap()
///     .per_unit(shequ::Layer::Grid).collect().unwrap();
/// assert_eq!(grid(&apart), grid(&whole));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ResidentsStage {
    folder: ResidentFolder,
    sinks: Mutex<PeopleSinks>,
}

impl ResidentsStage {
    /// The stage of `job`: the households from `households` (merged partials of every row)
    /// or else the job's file.
    ///
    /// # Errors
    /// As [`ResidentFolder::new`], [`policy`](super::policy) and [`PeopleSinks::new`].
    pub fn new(job: &Job, households: Option<HouseholdsPartial>) -> Result<ResidentsStage> {
        let policy = super::policy(job)?;
        Ok(ResidentsStage {
            folder: ResidentFolder::new(job, households)?,
            sinks: Mutex::new(PeopleSinks::new(job, &policy)?),
        })
    }

    /// The stage of `job` against a frame made elsewhere, without footprints, and the merged
    /// households of every row (see [`ResidentFolder::with_frame`]): what the by-street
    /// mode's executors fold residents with.
    ///
    /// # Errors
    /// As [`ResidentFolder::with_frame`], [`policy`](super::policy) and
    /// [`PeopleSinks::new`].
    pub fn with_frame(
        job: &Job,
        frame: &crate::PeopleFrame,
        households: HouseholdsPartial,
    ) -> Result<ResidentsStage> {
        let policy = super::policy(job)?;
        Ok(ResidentsStage {
            folder: ResidentFolder::with_frame(job, frame, households)?,
            sinks: Mutex::new(PeopleSinks::new(job, &policy)?),
        })
    }

    /// Each data row's id key in `path` (see [`ResidentFolder::keys`]).
    ///
    /// # Errors
    /// As reading the file.
    pub fn keys(&self, path: &Path) -> Result<Vec<Option<(u64, u64)>>> {
        self.folder.keys(path)
    }

    /// The residents of `path` placed and folded by the sinks into a partial (see
    /// [`ResidentFolder::fold`]).
    ///
    /// # Errors
    /// As [`ResidentFolder::fold`].
    pub fn fold(&self, path: &Path, rows: &str, first: &str) -> Result<ResidentsPartial> {
        let mut sinks = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
        self.folder.fold(path, rows, first, &mut sinks.list())
    }
}

/// The people stage of a run: the build, with the analyses of people as its sinks (the
/// special-needs pass, the register linker, the roster's ids for cases and visits: the roster
/// is read once, a chunk at a time), their finish on the merged state, then the cases and
/// visits read against the frame.
///
/// # Errors
/// As [`build`](crate::build), [`SpecialNeedsPass::new`],
/// [`read_registers`](crate::registry::read_registers) and
/// [`read_events`](crate::analytics::events::read_events).
pub fn people_stage(job: &Job, policy: &Policy, progress: &dyn Progress) -> Result<People> {
    people_stage_with(job, policy, progress, Partials::default())
}

/// [`people_stage`], with the households, residents and cases given as [`Partials`].
///
/// # Errors
/// As [`people_stage`] and [`build_with_partials`](crate::build_with_partials).
pub fn people_stage_with(
    job: &Job,
    policy: &Policy,
    progress: &dyn Progress,
    partials: Partials,
) -> Result<People> {
    let mut sinks = PeopleSinks::new(job, policy)?;
    let reach = partials.reach;
    let mut build = match (partials.households, partials.residents) {
        (None, None) => crate::build_with_people(job, progress, &mut sinks.list())?,
        (h, r) => crate::build_with_partials(job, progress, &mut sinks.list(), h, r)?,
    };
    // The manifest's input hashes, computed while the analyses run.
    crate::output::prehash_files(build.inputs.iter().map(|i| i.path.clone()).collect());
    let PeopleSinks {
        pass,
        linker,
        roster_ids,
    } = sinks;
    let mut links = linker.map(|l| l.finish(&build.model));
    let special = match pass {
        Some(mut p) => {
            let t = Instant::now();
            if let Some(links) = links.as_mut() {
                p.apply_registers(links);
            }
            let sn = p.finish(&build.model)?;
            record(&mut build, "special-needs labels", t, &sn.issues);
            Some(sn)
        }
        None => None,
    };
    let events = events::events_stage(
        job,
        &mut build,
        special.as_ref(),
        roster_ids,
        policy,
        progress,
        partials.cases,
    )?;
    let reach = reach
        .map(|parts| GivenReach::new(&build.model, parts))
        .transpose()?;
    Ok(People {
        build,
        special,
        links,
        events,
        reach,
    })
}

/// The frame of `job` cut by street ([`StreetFrame::cut`](crate::StreetFrame::cut)), with
/// each key's facilities' halo when the job has `[coverage]`: the halo of key `k` measures
/// the homes of the rows keyed `k` ([`FacilityHalo::measure`]).
///
/// # Examples
/// ```
/// let mut job = shequ::Job::from_toml("data-samples/sample-city/job.toml")?;
/// job.options.working_crs = shequ::crs::WorkingCrs::Given(shequ::resolve_working_crs(&job, None)?);
/// let (cut, halos) = shequ::run::street_cut(&job)?;
/// assert_eq!(halos.map(|h| h.len()), Some(cut.pieces.len()));
/// # Ok::<(), shequ::Error>(())
/// ```
///
/// # Errors
/// As [`StreetFrame::cut`](crate::StreetFrame::cut) and [`FacilityHalo::cut`].
pub fn street_cut(job: &Job) -> Result<(crate::StreetFrame, Option<Vec<FacilityHalo>>)> {
    let (cut, frame) = crate::StreetFrame::cut_frame(job)?;
    let halos = match &job.coverage {
        Some(o) => Some(FacilityHalo::cut(&frame, o, &cut.keys.boxes())?),
        None => None,
    };
    Ok((cut, halos))
}
