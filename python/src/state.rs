//! The state behind a Python `Model`: the build, its special-needs labels, and the outputs
//! of the last job analysed.

use std::sync::Arc;

use shequ::analytics::special_needs::SpecialNeedsPass;
use shequ::output::{Memory, Out};
use shequ::privacy::Policy;
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
}

/// The key of the special-needs labels a job asks for: its options and whether the
/// restricted tier is included; `None` without `[special_needs]` or a usable policy.
fn labels_key(job: &shequ::Job) -> Option<String> {
    let o = job.special_needs.as_ref()?;
    let policy = policy_of(job).ok()?;
    let include = shequ::run::include_restricted(o, &policy);
    Some(format!("{}|{include}", serde_json::to_string(o).ok()?))
}

/// Builds the model with the job's special-needs pass as a sink, so the roster is read once;
/// the labels come back when the job has `[special_needs]` and a usable policy.
pub(crate) fn build_labelled(
    job: &shequ::Job,
) -> shequ::Result<(Build, Option<(String, SpecialNeeds)>)> {
    let pass = match (&job.special_needs, labels_key(job), policy_of(job)) {
        (Some(o), Some(key), Ok(policy)) => {
            let include = shequ::run::include_restricted(o, &policy);
            SpecialNeedsPass::new(job, o, include)
                .ok()
                .map(|p| (key, p))
        }
        _ => None,
    };
    match pass {
        Some((key, mut p)) => {
            let built = shequ::build_with_people(job, &shequ::NoProgress, &mut [&mut p])?;
            let sn = p.finish(&built.model)?;
            Ok((built, Some((key, sn))))
        }
        None => Ok((shequ::build(job)?, None)),
    }
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
    /// ones the job asks for.
    pub(crate) fn analyse(&mut self, job: &shequ::Job) -> shequ::Result<shequ::run::Analysis> {
        let policy = policy_of(job)?;
        let labels = match (&self.labels, labels_key(job)) {
            (Some((k, sn)), Some(key)) if *k == key => Some(sn.clone()),
            _ => None,
        };
        match labels {
            Some(sn) => shequ::run::analyse_labelled(job, &mut self.build, policy, Some(sn)),
            None => shequ::run::analyse(job, &mut self.build, policy),
        }
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
