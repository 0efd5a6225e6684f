//! The grid work loop in a run: the cases and the visit log read after the people stage,
//! against the frame and the roster's ids; their rows accounted in the quality report.

use std::time::Instant;

use crate::analytics::SpecialNeeds;
use crate::analytics::events::{
    CaseFolder, CasesPartial, Events, RosterIds, Rules, read_events, read_visits,
};
use crate::error::{Error, Result};
use crate::job::Job;
use crate::model::build::Build;
use crate::model::level::Layer;
use crate::privacy::{OutputKind, Policy};
use crate::progress::Progress;

/// Whether the people stage must collect the roster's ids ([`RosterIds`] as a sink): cases
/// name residents, or there is a visit log.
///
/// # Examples
/// ```
/// let job = shequ::Job::from_toml("data-samples/sample-city/job.toml")?;
/// assert!(shequ::run::needs_roster_ids(&job)); // the sample has a visit log
/// # Ok::<(), shequ::Error>(())
/// ```
pub fn needs_roster_ids(job: &Job) -> bool {
    let l = &job.layers;
    l.residents.is_some()
        && (l.visits.is_some() || l.events.as_ref().is_some_and(|e| e.resident.is_some()))
}

/// The cases and visits of `job` on a built model (`None` when it has neither); their
/// issues and accounting are added to the build's report. `roster` is the roster's ids,
/// collected while the build read the roster (see [`needs_roster_ids`]);
/// [`people_stage`](super::people_stage) calls this after the build. `cases` gives the cases
/// as the partials of every row (see [`run_with_cases`](super::run_with_cases)); `None`
/// reads `[layers.events]`'s file.
///
/// # Examples
/// ```
/// use shequ::analytics::events::RosterIds;
/// let job = shequ::Job::from_toml("data-samples/sample-city/job.toml")?;
/// let policy = shequ::run::policy(&job)?;
/// let mut ids = RosterIds::new(&job);
/// let mut build = shequ::build_with_people(&job, &shequ::NoProgress, &mut [&mut ids])?;
/// let events = shequ::run::events_stage(&job, &mut build, None, Some(ids), &policy,
///     &shequ::NoProgress, None);
/// // The visit log needs the special-needs labels (who must be visited).
/// assert!(events.unwrap_err().to_string().contains("special_needs"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As [`read_events`] and [`read_visits`]; [`Error::Job`] for a visit log without
/// special-needs labels or a roster; [`Error::Internal`] if a row is not accounted for.
pub fn events_stage(
    job: &Job,
    build: &mut Build,
    special: Option<&SpecialNeeds>,
    roster: Option<RosterIds>,
    policy: &Policy,
    progress: &dyn Progress,
    cases: Option<Vec<CasesPartial>>,
) -> Result<Option<Events>> {
    let l = &job.layers;
    if l.events.is_none() && l.visits.is_none() {
        return Ok(None);
    }
    let t = Instant::now();
    let roster = roster.map(RosterIds::finish);
    let keep_text = policy.kind == OutputKind::Operational && policy.plain_identifiers;
    let model = &build.model;
    let mut events = match &l.events {
        Some(_) => match cases {
            Some(partials) => {
                CaseFolder::new(job, model, roster.as_ref(), keep_text)?.finish(partials)
            }
            None => read_events(job, model, roster.as_ref(), keep_text, progress)?,
        },
        None => {
            let options = job.events.clone().unwrap_or_default();
            let rules = Rules::of(job, &options)?;
            let finest = model.finest_polygon_level().ok_or_else(|| {
                job.error("[layers.visits] needs a polygon level (grids, communities or streets)")
            })?;
            Events::without_cases(rules, options, finest, model.units(finest))
        }
    };
    if l.events.is_some() {
        build.report.set_count(Layer::Event, events.count);
        build.report.extend(events.issues.iter().cloned());
    }
    if l.visits.is_some() {
        let special = special.ok_or_else(|| job.error("[layers.visits] needs [special_needs]"))?;
        let roster = roster
            .as_ref()
            .ok_or_else(|| job.error("[layers.visits] needs [layers.residents]"))?;
        let visits = read_visits(
            job,
            model,
            special,
            roster,
            events.finest,
            events.rules.as_of,
        )?;
        build.report.set_count(Layer::Visit, visits.count);
        build.report.extend(visits.issues.iter().cloned());
        events.visits = Some(visits);
    }
    build.report.sort();
    build
        .report
        .check_accounting()
        .map_err(|(layer, message)| Error::Internal {
            at: crate::error::Location::layer(layer.name()),
            message,
        })?;
    super::record(build, "events and visits", t, &[]);
    Ok(Some(events))
}

/// The frame a process folds cases against: the model, and the roster's ids when cases name
/// residents (see [`needs_roster_ids`]). An executor builds it once from the job's paths.
///
/// # Examples
/// ```
/// let job = shequ::Job::from_toml("data-samples/sample-city/job.toml")?;
/// let (build, roster) = shequ::run::cases_frame(&job)?;
/// assert!(roster.is_some() && !build.model.grids.is_empty());
/// # Ok::<(), shequ::Error>(())
/// ```
///
/// # Errors
/// As [`build`](crate::build).
pub fn cases_frame(job: &Job) -> Result<(Build, Option<RosterIds>)> {
    let mut ids = needs_roster_ids(job).then(|| RosterIds::new(job));
    let mut sinks: Vec<&mut dyn crate::model::build::PeopleSink> = Vec::new();
    if let Some(r) = ids.as_mut() {
        sinks.push(r);
    }
    let build = crate::model::build::build_with_people(job, &crate::NoProgress, &mut sinks)?;
    Ok((build, ids.map(RosterIds::finish)))
}

/// [`cases_frame`] without reading the rosters: the small layers only, with the roster's ids
/// given (made from the residents' partials by [`roster_ids_of`]). Cases are placed by
/// buildings and areas, and name residents only through their ids.
///
/// # Examples
/// ```
/// let job = shequ::Job::from_toml("data-samples/sample-city/job.toml")?;
/// let (build, roster) = shequ::run::cases_frame_with(&job, None)?;
/// assert!(roster.is_none() && build.model.households.is_empty() && !build.model.grids.is_empty());
/// # Ok::<(), shequ::Error>(())
/// ```
///
/// # Errors
/// As [`build`](crate::build).
pub fn cases_frame_with(
    job: &Job,
    roster: Option<RosterIds>,
) -> Result<(Build, Option<RosterIds>)> {
    let mut small = job.clone();
    small.layers.households = None;
    small.layers.residents = None;
    small.layers.events = None;
    small.layers.visits = None;
    Ok((crate::build(&small)?, roster))
}

/// [`cases_frame_with`] against a frame made elsewhere, without footprints
/// ([`PeopleFrame`](crate::PeopleFrame), the driver's in the by-street mode): no layer is
/// read. Cases read no footprint, so their folds add up to [`cases_frame_with`]'s.
///
/// # Examples
/// ```
/// let mut job = shequ::Job::from_toml("data-samples/sample-city/job.toml")?;
/// job.options.working_crs = shequ::crs::WorkingCrs::Given(shequ::resolve_working_crs(&job, None)?);
/// let (whole, _) = shequ::run::cases_frame_with(&job, None)?;
/// let frame = shequ::PeopleFrame::of(&whole.model);
/// let (build, _) = shequ::run::cases_frame_of(&job, &frame, None)?;
/// assert_eq!(build.model.grids.len(), whole.model.grids.len());
/// assert!(build.model.buildings.iter().all(|b| b.footprint.is_none()));
/// # Ok::<(), shequ::Error>(())
/// ```
///
/// # Errors
/// [`Error::Job`] with an `auto` working CRS: the frame was built in a given one.
pub fn cases_frame_of(
    job: &Job,
    frame: &crate::PeopleFrame,
    roster: Option<RosterIds>,
) -> Result<(Build, Option<RosterIds>)> {
    let working = job.options.working_crs.given().ok_or_else(|| {
        job.error("cases folded against a frame made elsewhere need its working CRS given")
    })?;
    let build = Build {
        model: frame.model(working.clone()),
        report: Default::default(),
        inputs: Vec::new(),
        steps: Vec::new(),
        job: job.clone(),
    };
    Ok((build, roster))
}

/// The roster's ids from the partials of every roster row (folded by
/// [`ResidentsStage`](super::ResidentsStage)), numbered as the merged run numbers the
/// residents; `None` when the job does not collect them (see [`needs_roster_ids`]).
///
/// # Errors
/// [`Error::Data`] for partials that do not carry the ids' part.
pub fn roster_ids_of(job: &Job, parts: &[crate::ResidentsPartial]) -> Result<Option<RosterIds>> {
    use crate::model::build::PeopleSink;
    if !needs_roster_ids(job) {
        return Ok(None);
    }
    // The ids are the last of the job's sinks (see `PeopleSinks::list`).
    let renumbered = crate::model::build::renumbering(parts);
    let total = renumbered.iter().map(Vec::len).sum();
    let mut ids = RosterIds::new(job);
    for (part, numbers) in parts.iter().zip(&renumbered) {
        let bytes = part.sink_parts().last().ok_or_else(|| {
            Error::data(
                crate::error::Location::layer(Layer::Resident.name()),
                "a partial of residents without the roster's ids",
            )
        })?;
        ids.absorb_part(bytes, numbers, total)?;
    }
    Ok(Some(ids.finish()))
}
