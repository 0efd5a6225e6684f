//! The state behind a Python `Model`: the build, its special-needs labels, and the outputs
//! of the last job analysed.

use std::sync::Arc;

use shequ::analytics::events::RosterIds;
use shequ::analytics::special_needs::SpecialNeedsPass;
use shequ::output::{Memory, Out};
use shequ::privacy::Policy;
use shequ::registry::{Linker, Links, RosterKeys, read_registers};
use shequ::{Build, QualityReport, SpecialNeeds};

/// A model built from a job, with its analyses computed on demand.
pub(crate) struct State {
    pub(crate) build: Build,
    /// The report and steps of the build alone: each analysis starts from them again.
    pub(crate) base_report: QualityReport,
    pub(crate) base_steps: Vec<shequ::StepTime>,
    /// The outputs of the last job analysed (as JSON), kept for repeated table access.
    pub(crate) cache: Option<(String, Arc<Memory>)>,
    /// The special-needs labels made with the build (the roster read once), under the key of
    /// the options and tier they were made for.
    pub(crate) labels: Option<(String, SpecialNeeds)>,
    /// The job's registers linked to the roster with the build.
    pub(crate) links: Option<Links>,
    /// The roster's ids, collected with the build when the job's cases or visits name
    /// residents.
    pub(crate) roster_ids: Option<RosterIds>,
}

/// The key of the special-needs labels a job asks for: its options and whether the
/// restricted tier is included; `None` without `[special_needs]` or a usable policy.
fn labels_key(job: &shequ::Job) -> Option<String> {
    let o = job.special_needs.as_ref()?;
    let policy = policy_of(job).ok()?;
    let include = shequ::run::include_restricted(o, &policy);
    Some(format!("{}|{include}", serde_json::to_string(o).ok()?))
}

/// The model built with the job's special-needs pass and register linker as sinks, so the
/// roster is read once: the labels come back when the job has `[special_needs]` and a usable
/// policy, the links when it has `[[registers]]`.
pub(crate) type Labelled = (
    Build,
    Option<(String, SpecialNeeds)>,
    Option<Links>,
    Option<RosterIds>,
);

/// Builds the model with its people sinks ([`Labelled`]).
pub(crate) fn build_labelled(job: &shequ::Job) -> shequ::Result<Labelled> {
    let mut pass = match (&job.special_needs, labels_key(job), policy_of(job)) {
        (Some(o), Some(key), Ok(policy)) => {
            let include = shequ::run::include_restricted(o, &policy);
            SpecialNeedsPass::new(job, o, include)
                .ok()
                .map(|p| (key, p))
        }
        _ => None,
    };
    let mut linker = match job.registers.is_empty() {
        true => None,
        false => Some(Linker::new(read_registers(job)?, RosterKeys::of(job))),
    };
    let mut sinks: Vec<&mut dyn shequ::PeopleSink> = Vec::new();
    if let Some((_, p)) = pass.as_mut() {
        sinks.push(p);
    }
    if let Some(l) = linker.as_mut() {
        sinks.push(l);
    }
    let mut ids = shequ::run::needs_roster_ids(job).then(|| RosterIds::new(job));
    if let Some(i) = ids.as_mut() {
        sinks.push(i);
    }
    let built = shequ::build_with_people(job, &shequ::NoProgress, &mut sinks)?;
    let mut links = linker.map(|l| l.finish(&built.model));
    let labels = match pass {
        Some((key, mut p)) => {
            if let Some(l) = links.as_mut() {
                p.apply_registers(l);
            }
            Some((key, p.finish(&built.model)?))
        }
        None => None,
    };
    Ok((built, labels, links, ids))
}

/// The privacy policy of a job; without `[privacy]`, research outputs (the safe choice).
pub(crate) fn policy_of(job: &shequ::Job) -> shequ::Result<Policy> {
    if job.privacy.is_some() {
        shequ::run::policy(job)
    } else {
        Policy::resolve(&shequ::PrivacyOptions::research(), &job.base_dir)
    }
}

impl State {
    pub(crate) fn reset(&mut self) {
        self.build.report = self.base_report.clone();
        self.build.steps = self.base_steps.clone();
    }

    /// The analyses of `job`, starting from the labels made with the build when they are the
    /// ones the job asks for, with the registers linked with the build.
    pub(crate) fn analyse(&mut self, job: &shequ::Job) -> shequ::Result<shequ::run::Analysis> {
        let policy = policy_of(job)?;
        let labels = match (&self.labels, labels_key(job)) {
            (Some((k, sn)), Some(key)) if *k == key => Some(sn.clone()),
            _ => None,
        };
        let mut analysis = match labels {
            Some(sn) => shequ::run::analyse_labelled(job, &mut self.build, policy, Some(sn))?,
            None => shequ::run::analyse(job, &mut self.build, policy)?,
        };
        analysis.registers = self.links.clone();
        analysis.events = shequ::run::events_stage(
            job,
            &mut self.build,
            analysis.special_needs.as_ref(),
            self.roster_ids.clone(),
            &analysis.policy,
            &shequ::NoProgress,
            None,
        )?;
        Ok(analysis)
    }

    pub(crate) fn outputs(&mut self, job: &shequ::Job) -> shequ::Result<Arc<Memory>> {
        let key = serde_json::to_string(job).expect("a job serialises");
        if let Some((k, m)) = &self.cache {
            if *k == key {
                return Ok(m.clone());
            }
        }
        self.reset();
        let analysis = self.analyse(job)?;
        let out = Out::memory();
        shequ::run::write_tables(&self.build, &analysis, &out)?;
        let memory = Arc::new(out.into_memory());
        self.cache = Some((key, memory.clone()));
        Ok(memory)
    }
}
