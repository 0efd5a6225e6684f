//! Running a job: build the model, write the outputs and the manifest, summarise.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Instant;

use serde_json::json;

use crate::analytics::coverage::HomeDetail;
use crate::analytics::coverage::halo::GivenReach;
use crate::analytics::{Coverage, SpecialNeeds};
use crate::crs::Crs;
use crate::error::{Error, Result};
use crate::job::Job;
use crate::model::build::{Build, build_with_progress};
use crate::model::level::Layer;
use crate::model::quality::{IssueKind, LayerCount, QualityIssue, Severity};
use crate::output::{Out, Written, manifest_path, write_model_to};
use crate::privacy::Policy;
use crate::progress::Progress;

mod events;
mod manifest;
mod people;
mod registry;

pub use events::{
    cases_frame, cases_frame_of, cases_frame_with, events_stage, needs_roster_ids, roster_ids_of,
};
pub use people::{
    Partials, People, PeopleSinks, ResidentsStage, people_stage, people_stage_with, street_cut,
};
pub use registry::{RegistrySummary, write_registry};

/// What a run did, for printing and for tests.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The working CRS used.
    pub working_crs: Crs,
    /// Rows read, placed and rejected per layer.
    pub counts: BTreeMap<Layer, LayerCount>,
    /// Number of issues per kind and severity.
    pub issues: BTreeMap<(IssueKind, Severity), usize>,
    /// Levels derived by dissolving their children, with their number of units.
    pub derived: Vec<(Layer, usize)>,
    /// Files written (empty for `validate`).
    pub written: Written,
    /// What linking each register to the roster found (runs with `[[registers]]`).
    pub registers: Vec<crate::registry::RegisterSummary>,
}

impl RunSummary {
    fn of(build: &Build, written: Written) -> Self {
        let mut issues = BTreeMap::new();
        for i in build.report.issues() {
            *issues.entry((i.kind, i.severity)).or_insert(0) += 1;
        }
        let m = &build.model;
        let derived = [
            (
                Layer::Street,
                m.streets
                    .iter()
                    .filter(|a| a.source_index.is_none())
                    .count(),
            ),
            (
                Layer::Community,
                m.communities
                    .iter()
                    .filter(|a| a.source_index.is_none())
                    .count(),
            ),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
        RunSummary {
            working_crs: build.model.working_crs.clone(),
            counts: build.report.counts().clone(),
            issues,
            derived,
            written,
            registers: Vec::new(),
        }
    }
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "working CRS: {}", self.working_crs)?;
        writeln!(
            f,
            "{:<12} {:>10} {:>10} {:>10}",
            "layer", "read", "placed", "reported"
        )?;
        for (layer, c) in &self.counts {
            writeln!(
                f,
                "{:<12} {:>10} {:>10} {:>10}",
                layer.name(),
                c.read,
                c.placed,
                c.rejected
            )?;
        }
        for (layer, n) in &self.derived {
            writeln!(
                f,
                "{:<12} {n:>10} derived by dissolving the level below",
                layer.name()
            )?;
        }
        if !self.issues.is_empty() {
            writeln!(f, "quality issues:")?;
            for ((kind, sev), n) in &self.issues {
                writeln!(f, "  {:<20} {:<9} {n:>8}", kind.code(), sev.code())?;
            }
        }
        for r in &self.registers {
            let found: Vec<String> = r
                .counts
                .iter()
                .filter(|(k, _)| **k != crate::registry::FindingKind::Matched)
                .map(|(k, n)| format!("{n} {k}"))
                .collect();
            writeln!(
                f,
                "register {}: {} rows, {} matched{}{}",
                r.id,
                r.rows,
                r.count(crate::registry::FindingKind::Matched),
                if found.is_empty() { "" } else { "; " },
                found.join(", ")
            )?;
        }
        if let Some((below, complementary)) = self.written.suppressed {
            writeln!(
                f,
                "research output: {below} counts below k suppressed, {complementary} more to \
                 protect them"
            )?;
            for p in &self.written.published {
                writeln!(
                    f,
                    "  {:<28} {:>8} of {:>8} count cells published ({:.1}%)",
                    p.table,
                    p.published,
                    p.cells,
                    100.0 * p.share()
                )?;
            }
        }
        if !self.written.dp_errors.is_empty() {
            writeln!(
                f,
                "research-dp output: mean absolute error against the true counts (for you, \
                 written to no file):"
            )?;
            for e in &self.written.dp_errors {
                writeln!(
                    f,
                    "  {:<28} {:>8.2} over {:>8} count cells",
                    e.table, e.mean_abs_error, e.cells
                )?;
            }
        }
        if !self.written.files.is_empty() {
            writeln!(f, "wrote: {}", self.written.files.join(", "))?;
        }
        Ok(())
    }
}

/// Builds the model and returns the summary, writing nothing (`shequ validate`).
///
/// # Examples
/// ```
/// let dir = tempfile::tempdir()?;
/// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(3))?;
/// let job = shequ::Job::from_toml(dir.path().join("job.toml"))?;
/// let (build, summary) = shequ::run::validate(&job, &shequ::NoProgress)?;
/// assert!(summary.written.files.is_empty());
/// assert!(summary.to_string().contains("households"));
/// assert_eq!(build.model.grids.len(), 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As [`build`](crate::build).
pub fn validate(job: &Job, progress: &dyn Progress) -> Result<(Build, RunSummary)> {
    let build = build_with_progress(job, progress)?;
    let summary = RunSummary::of(&build, Written::default());
    Ok((build, summary))
}

/// Builds the model and writes every output under `out`, with `manifest.json` last.
///
/// # Examples
/// ```
/// let dir = tempfile::tempdir()?;
/// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(3))?;
/// let job = shequ::Job::from_toml(dir.path().join("job.toml"))?;
/// let out = dir.path().join("out");
/// let (_, summary) = shequ::run::run(&job, &out, &shequ::NoProgress)?;
/// assert!(out.join("grids.parquet").is_file() && out.join("manifest.json").is_file());
/// // The sample job asks for research outputs: aggregates only.
/// assert!(!summary.written.files.contains(&"households.parquet".to_string()));
/// assert!(summary.written.files.contains(&"suppression.parquet".to_string()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As [`build`](crate::build), plus write errors.
pub fn run(job: &Job, out: &Path, progress: &dyn Progress) -> Result<(Build, RunSummary)> {
    run_with_cases(job, out, progress, None)
}

/// [`run`], with the cases given as the partials of every row (folded elsewhere, by Spark's
/// executors with [`CaseFolder::fold`](crate::analytics::events::CaseFolder::fold)) instead
/// of read from `[layers.events]`'s file; `None` reads the file as [`run`] does.
///
/// # Examples
/// ```
/// use shequ::analytics::events::{CaseFolder, first_rows};
/// let dir = tempfile::tempdir()?;
/// let job = shequ::Job::from_toml("data-samples/sample-city/job.toml")?;
/// // What an executor does: its own frame, the rows it holds folded into a partial.
/// let (build, roster) = shequ::run::cases_frame(&job)?;
/// let folder = CaseFolder::new(&job, &build.model, roster.as_ref(), false)?;
/// let file = std::path::Path::new("data-samples/sample-city/events.csv");
/// let first = first_rows(&folder.keys(file)?);
/// let text = std::fs::read_to_string(file)?;
/// let mut lines = text.lines();
/// let mut rows = format!("{},_row,_first\n", lines.next().unwrap());
/// for (r, line) in lines.enumerate() {
///     let f = first[r].map(|f| f.to_string()).unwrap_or_default();
///     rows.push_str(&format!("{line},{r},{f}\n"));
/// }
/// std::fs::write(dir.path().join("part.csv"), rows)?;
/// let partial = folder.fold(&dir.path().join("part.csv"), "_row", "_first")?;
/// // The driver: the run, with the cases from the partials.
/// let (_, summary) = shequ::run::run_with_cases(&job, &dir.path().join("out"),
///     &shequ::NoProgress, Some(vec![partial]))?;
/// assert_eq!(summary.counts[&shequ::Layer::Event].read, first.len());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As [`run`].
pub fn run_with_cases(
    job: &Job,
    out: &Path,
    progress: &dyn Progress,
    cases: Option<Vec<crate::analytics::events::CasesPartial>>,
) -> Result<(Build, RunSummary)> {
    let partials = Partials {
        cases,
        ..Partials::default()
    };
    run_with_partials(job, out, progress, partials)
}

/// [`run`], with the households and the cases given as [`Partials`].
///
/// # Examples
/// See [`run_with_cases`] and [`HouseholdPlacer`](crate::HouseholdPlacer).
///
/// # Errors
/// As [`run`], and [`build_with_households`](crate::build_with_households).
pub fn run_with_partials(
    job: &Job,
    out: &Path,
    progress: &dyn Progress,
    partials: Partials,
) -> Result<(Build, RunSummary)> {
    run_into(job, &Out::dir(out), progress, partials)
}

/// [`run_with_partials`] into the directory output `target`.
fn run_into(
    job: &Job,
    target: &Out,
    progress: &dyn Progress,
    partials: Partials,
) -> Result<(Build, RunSummary)> {
    let started = std::time::SystemTime::now();
    let t0 = Instant::now();
    crate::trace::step("run started");
    // The privacy choice is checked before any work: there is no default.
    let policy = policy(job)?;
    let People {
        mut build,
        special,
        links,
        events,
        reach,
    } = people_stage_with(job, &policy, progress, partials)?;
    let mut analysis = analyse_with(job, &mut build, policy, special, reach)?;
    analysis.registers = links;
    analysis.events = events;
    let summary = write_outputs_to(job, &mut build, analysis, target, progress, (started, t0))?;
    Ok((build, summary))
}

/// [`run_with_partials`], keeping the person lists instead of writing them (the rest is
/// written): for an engine whose executors hold the roster's rows, which fill each list's
/// identifiers from them and write its files
/// ([`write_part_from`](crate::output::person_list::write_part_from)). The summary lists
/// the lists' files as written.
///
/// # Examples
/// See [`PersonList`](crate::output::person_list::PersonList) and
/// [`write_part_from`](crate::output::person_list::write_part_from).
///
/// # Errors
/// As [`run_with_partials`].
pub fn run_deferring_lists(
    job: &Job,
    out: &Path,
    progress: &dyn Progress,
    partials: Partials,
) -> Result<(
    Build,
    RunSummary,
    Vec<crate::output::person_list::PersonList>,
)> {
    let target = Out::dir(out).deferring_lists();
    let (build, summary) = run_into(job, &target, progress, partials)?;
    Ok((build, summary, target.take_lists()))
}

/// The job's privacy policy; a job without a `[privacy]` section is an error (there is no
/// default choice between research and operational outputs).
///
/// # Errors
/// [`Error::Job`] without `[privacy]`; key errors as [`Policy::resolve`].
pub fn policy(job: &Job) -> Result<Policy> {
    let options = job.privacy.as_ref().ok_or_else(|| {
        job.error(
            "no [privacy] section: choose output = \"research\" (aggregates only, small \
             counts suppressed, safe to publish) or output = \"operational\" (named lists \
             for one grid or community); see docs/privacy.md",
        )
    })?;
    Policy::resolve(options, &job.base_dir)
}

/// The analyses a job asks for, computed on a build, and the CRSs its outputs are written in.
#[derive(Debug)]
pub struct Analysis {
    /// The privacy policy the outputs follow.
    pub policy: Policy,
    /// Special-needs labels and counts, when the job has `[special_needs]`.
    pub special_needs: Option<SpecialNeeds>,
    /// Coverage, accessibility and siting, when the job has `[coverage]`.
    pub coverage: Option<Coverage>,
    /// The CRS of the GeoParquet outputs.
    pub output_crs: Crs,
    /// The CRS of the GeoJSON copies, if any.
    pub geojson_crs: Option<Crs>,
    /// Person-level tables as Hive partitions (`[output] partitioned` of the job analysed).
    pub partitioned: bool,
    /// The registers linked to the roster and what linking found, when the job has
    /// `[[registers]]` (made by [`run`]).
    pub registers: Option<crate::registry::Links>,
    /// Cases and visits, when the job has `[layers.events]` or `[layers.visits]` (made by
    /// [`run`]).
    pub events: Option<crate::analytics::events::Events>,
}

/// Adds an analysis' issues to the quality report and its wall time (since `t`) to the steps.
fn record(build: &mut Build, step: &str, t: Instant, issues: &[QualityIssue]) {
    build.report.extend(issues.iter().cloned());
    build.report.sort();
    crate::trace::step(step);
    build.steps.push(crate::model::build::StepTime {
        step: step.into(),
        seconds: t.elapsed().as_secs_f64(),
    });
}

/// Computes the analyses `job` asks for on `build`; their quality issues and step times are
/// added to the build.
///
/// # Examples
/// ```
/// let dir = tempfile::tempdir()?;
/// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(3))?;
/// let job = shequ::Job::from_toml(dir.path().join("job.toml"))?;
/// let mut build = shequ::build(&job)?;
/// let policy = shequ::run::policy(&job)?;
/// let analysis = shequ::run::analyse(&job, &mut build, policy)?;
/// assert!(analysis.special_needs.is_some() && analysis.coverage.is_some());
/// let out = shequ::output::Out::memory();
/// shequ::run::write_tables(&build, &analysis, &out)?;
/// assert!(out.tables().contains_key("special_needs/grid"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As [`SpecialNeeds::compute`] and [`Coverage::compute`]; [`Error::Crs`] for an unknown
/// output CRS.
pub fn analyse(job: &Job, build: &mut Build, policy: Policy) -> Result<Analysis> {
    let special = match &job.special_needs {
        Some(o) => {
            let t = Instant::now();
            let sn = SpecialNeeds::compute(build, o, include_restricted(o, &policy))?;
            record(build, "special-needs labels", t, &sn.issues);
            Some(sn)
        }
        None => None,
    };
    analyse_with(job, build, policy, special, None)
}

/// [`analyse`], with the special-needs labels already made (by a [`SpecialNeedsPass`](crate::analytics::special_needs::SpecialNeedsPass) that was
/// a sink of the build, so the roster was read once); their issues are added to the build's
/// report here.
///
/// # Examples
/// ```
/// use shequ::analytics::special_needs::SpecialNeedsPass;
/// let dir = tempfile::tempdir()?;
/// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(3))?;
/// let job = shequ::Job::from_toml(dir.path().join("job.toml"))?;
/// let policy = shequ::run::policy(&job)?;
/// let opts = job.special_needs.as_ref().expect("the sample has [special_needs]");
/// let mut pass = SpecialNeedsPass::new(&job, opts, shequ::run::include_restricted(opts, &policy))?;
/// let mut build = shequ::build_with_people(&job, &shequ::NoProgress, &mut [&mut pass])?;
/// let sn = pass.finish(&build.model)?;
/// let analysis = shequ::run::analyse_labelled(&job, &mut build, policy, Some(sn))?;
/// assert!(analysis.special_needs.is_some() && analysis.coverage.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As [`analyse`].
pub fn analyse_labelled(
    job: &Job,
    build: &mut Build,
    policy: Policy,
    special: Option<SpecialNeeds>,
) -> Result<Analysis> {
    analyse_labelled_given(job, build, policy, special, None)
}

/// [`analyse_labelled`], with the homes' reach measured street by street where `given`
/// ([`People::reach`]): coverage measures only the homes it does not know.
///
/// # Errors
/// As [`analyse`].
pub fn analyse_labelled_given(
    job: &Job,
    build: &mut Build,
    policy: Policy,
    special: Option<SpecialNeeds>,
    given: Option<GivenReach>,
) -> Result<Analysis> {
    if let Some(sn) = &special {
        build.report.extend(sn.issues.iter().cloned());
        build.report.sort();
    }
    analyse_with(job, build, policy, special, given)
}

/// Whether the restricted tier is computed: the job asks and the policy allows it.
///
/// # Examples
/// ```
/// let job = shequ::Job::from_toml("data-samples/sample-city/job.toml")?;
/// let policy = shequ::run::policy(&job)?;
/// let opts = job.special_needs.as_ref().expect("[special_needs]");
/// assert!(!shequ::run::include_restricted(opts, &policy)); // research: never
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn include_restricted(o: &crate::analytics::SpecialNeedsOptions, policy: &Policy) -> bool {
    o.include_restricted && policy.allow_restricted
}

/// [`analyse`], with the special-needs labels already computed.
fn analyse_with(
    job: &Job,
    build: &mut Build,
    policy: Policy,
    special: Option<SpecialNeeds>,
    given: Option<GivenReach>,
) -> Result<Analysis> {
    let coverage = match &job.coverage {
        Some(o) => {
            let t = Instant::now();
            // Aggregate outputs need each home's reach only as per-unit sums; operational
            // lists read it per home.
            let detail = if policy.kind.is_aggregate() {
                HomeDetail::Units
            } else {
                HomeDetail::Homes
            };
            let cov = Coverage::compute_given(build, o, special.as_ref(), detail, given)?;
            record(build, "coverage", t, &cov.issues);
            Some(cov)
        }
        None => None,
    };
    let output_crs = job
        .options
        .output_crs
        .resolve(&build.model.working_crs)
        .clone();
    let geojson_crs = job.options.geojson_crs.crs().cloned();
    Ok(Analysis {
        policy,
        special_needs: special,
        coverage,
        output_crs,
        geojson_crs,
        partitioned: job.output.partitioned,
        registers: None,
        events: None,
    })
}

/// Every output table of an analysed build, to files or memory (no manifest, no map).
///
/// # Errors
/// As [`write_model`](crate::output::write_model).
pub fn write_tables(build: &Build, analysis: &Analysis, out: &Out) -> Result<Written> {
    write_model_to(
        build,
        &out.clone().with_partitioned(analysis.partitioned),
        &analysis.output_crs,
        analysis.geojson_crs.as_ref(),
        &analysis.policy,
        crate::output::Results {
            special_needs: analysis.special_needs.as_ref(),
            coverage: analysis.coverage.as_ref(),
            registers: analysis.registers.as_ref(),
            events: analysis.events.as_ref(),
        },
    )
}

/// Writes every output of an analysed build under `out`, then `manifest.json` (and the map
/// when the job asks for it): what [`run`] does after building. `started` and `t0` are when
/// the run began, for the manifest. The analysis is consumed: its per-home and per-resident
/// state is freed before the map reads the written files back.
///
/// # Errors
/// Write errors.
///
/// # Panics
/// Never: the manifest is plain JSON and always serialises.
pub fn write_outputs(
    job: &Job,
    build: &mut Build,
    analysis: Analysis,
    out: &Path,
    progress: &dyn Progress,
    started: std::time::SystemTime,
    t0: Instant,
) -> Result<RunSummary> {
    let target = Out::dir(out);
    write_outputs_to(job, build, analysis, &target, progress, (started, t0))
}

/// [`write_outputs`] into `target`, a directory output (one that may defer its person lists:
/// [`Out::deferring_lists`]).
fn write_outputs_to(
    job: &Job,
    build: &mut Build,
    analysis: Analysis,
    target: &Out,
    progress: &dyn Progress,
    (started, t0): (std::time::SystemTime, Instant),
) -> Result<RunSummary> {
    let out = target.path();
    let started = chrono::DateTime::<chrono::Utc>::from(started);
    progress.start("writing outputs", 0);
    let t = Instant::now();
    let mut written = write_tables(build, &analysis, target)?;
    progress.finish();
    crate::trace::step("write outputs");
    build.steps.push(crate::model::build::StepTime {
        step: "write outputs".into(),
        seconds: t.elapsed().as_secs_f64(),
    });
    written.files.push("manifest.json".into());
    let manifest = manifest::manifest(job, build, &analysis, &written, started, t0)?;
    let path = manifest_path(out);
    let text = serde_json::to_string_pretty(&manifest).expect("serialisable");
    std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
    let registers = analysis
        .registers
        .as_ref()
        .map(|l| l.summaries.clone())
        .unwrap_or_default();
    // The analyses are written: their per-home and per-resident state goes before the map,
    // which reads the files back (at 50 million residents the two together do not fit).
    drop(analysis);
    if job.output.map {
        // The map reads the outputs and the manifest just written; then the manifest lists it.
        crate::output::map::write_map(out, job.output.map_indicator.as_deref(), None)?;
        written.files.push("map.html".into());
        let mut manifest = manifest;
        manifest["outputs"] = json!(written.files);
        let text = serde_json::to_string_pretty(&manifest).expect("serialisable");
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
    }
    crate::trace::step("manifest and map");
    Ok(RunSummary {
        registers,
        ..RunSummary::of(build, written)
    })
}
