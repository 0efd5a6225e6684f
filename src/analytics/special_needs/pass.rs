//! The special-needs pass over the people stage: each roster chunk is labelled as its residents
//! are placed; the household conditions and the counts per unit follow once, on the merged
//! state.

use std::path::PathBuf;

use chrono::NaiveDate;
use rayon::prelude::*;

use super::labels::{self, Births, ChunkLabels, Fields, NO_AGE, NO_DETAIL};
use super::{SpecialNeeds, SpecialNeedsOptions};
use crate::analytics::categories::{Category, HouseholdRule, Tier};
use crate::error::{Error, Location, Result};
use crate::io::table::Table;
use crate::job::Job;
use crate::model::Model;
use crate::model::build::{PeopleSink, Placed};
use crate::model::level::Layer;
use crate::model::quality::{IssueKind, QualityIssue, Severity};

/// The most categories one run computes (each resident's categories are one 64-bit word).
pub const MAX_CATEGORIES: usize = 64;

/// Per resident, in [`Model::residents`] order: what the counts are made from.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct People {
    /// Age in years at the reference date (`NO_AGE` if unknown).
    pub(super) ages: Vec<u16>,
    /// One bit per category, in `categories` order.
    pub(super) cats: Vec<u64>,
    /// Disability type of the disabled (index into `DISABILITY_TYPES`), when read.
    pub(super) types: Vec<u8>,
    /// Disability grade of the disabled (1–4, 0 = not given), when read.
    pub(super) grades: Vec<u8>,
}

impl People {
    fn append(&mut self, c: ChunkLabels) {
        self.ages.extend(c.ages);
        self.cats.extend(c.cats);
        self.types.extend(c.types);
        self.grades.extend(c.grades);
    }
}

/// The special-needs labels of a run, built chunk by chunk by the people stage
/// ([`build_with_people`](crate::model::build::build_with_people)) and finished once.
///
/// # Examples
/// ```
/// use shequ::analytics::special_needs::SpecialNeedsPass;
/// let dir = tempfile::tempdir()?;
/// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(5))?;
/// let mut job = shequ::Job::from_toml(dir.path().join("job.toml"))?;
/// job.options.chunk_rows = "100".parse()?;
/// let opts = job.special_needs.clone().expect("the sample job has [special_needs]");
/// let mut pass = SpecialNeedsPass::new(&job, &opts, false)?;
/// let built = shequ::build_with_people(&job, &shequ::NoProgress, &mut [&mut pass])?;
/// let sn = pass.finish(&built.model)?;
/// // The same as labelling the built model in a pass of its own.
/// let again = shequ::SpecialNeeds::compute(&built, &opts, false)?;
/// assert_eq!(sn.per_unit(shequ::Layer::Grid).collect()?, again.per_unit(shequ::Layer::Grid).collect()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SpecialNeedsPass {
    reference: NaiveDate,
    pub(super) categories: Vec<Category>,
    /// Per category: computed from the roster (else only registers give it).
    roster: Vec<bool>,
    unavailable: Vec<(String, String)>,
    pub(super) fields: Fields,
    /// The roster columns read.
    wanted: Vec<String>,
    /// The roster file, for errors.
    path: PathBuf,
    /// Index of the `disabled` category.
    pub(super) disabled: Option<usize>,
    /// Whether age issues are reported (ages can be computed and a category needs them).
    age_issues: bool,
    pub(super) people: People,
    issues: Vec<QualityIssue>,
    opts: SpecialNeedsOptions,
    /// Disability type and grade given by registers (besides the roster's columns).
    pub(super) register_detail: (bool, bool),
    /// Where the labels registers gave came from.
    pub(super) sources: super::registers::Sources,
}

impl SpecialNeedsPass {
    /// A pass for `opts` over the roster of `job`.
    ///
    /// # Errors
    /// [`Error::Job`] for bad options, more than [`MAX_CATEGORIES`] categories, or a job
    /// without residents.
    pub fn new(
        job: &Job,
        opts: &SpecialNeedsOptions,
        include_restricted: bool,
    ) -> Result<SpecialNeedsPass> {
        let job_err = |message: String| job.error(message);
        opts.check().map_err(job_err)?;
        let reference = opts.date().map_err(job_err)?;
        let Some(r) = job.layers.residents.as_ref() else {
            return Err(job_err("[special_needs] needs [layers.residents]".into()));
        };
        let (categories, roster, unavailable) =
            labels::available(opts, r, include_restricted, &job.registers).map_err(job_err)?;
        if categories.len() > MAX_CATEGORIES {
            return Err(job_err(format!(
                "[special_needs] computes {} categories; at most {MAX_CATEGORIES} in one run",
                categories.len()
            )));
        }
        let fields = Fields::new(opts, r);
        let needs_age = categories.iter().any(|c| c.rule.needs_age());
        Ok(SpecialNeedsPass {
            reference,
            wanted: fields.wanted(&categories, &roster),
            roster,
            path: job.resolve(&r.path),
            disabled: categories.iter().position(|c| c.id == "disabled"),
            age_issues: fields.has_age() && needs_age,
            fields,
            categories,
            unavailable,
            people: People::default(),
            issues: Vec::new(),
            opts: opts.clone(),
            register_detail: (false, false),
            sources: Default::default(),
        })
    }

    /// A warning for each resident of the chunk without an age, with its reason.
    fn age_issues(&mut self, t: &Table, placed: &[Placed], ages: &[u16]) {
        let births = Births::new(t, &self.fields);
        let reference = self.reference;
        let found: Vec<QualityIssue> = (0..placed.len())
            .into_par_iter()
            .filter(|&i| ages[i] == NO_AGE)
            .map(|i| {
                let row = placed[i].row as usize;
                let why = match births.of(row) {
                    (Some(_), None) => "birth date not readable",
                    (_, Some(_)) => "birth date after the reference date",
                    (None, None) => "no birth date (and no valid ID number)",
                };
                QualityIssue {
                    layer: Layer::Resident,
                    index: Some(t.source_row(row)),
                    id: None,
                    kind: IssueKind::BadValue,
                    severity: Severity::Warning,
                    detail: format!(
                        "{why}: age-based categories not assigned (reference date {reference})"
                    ),
                }
            })
            .collect();
        self.issues.extend(found);
    }

    /// The merged state finished: household conditions applied (every member is known now),
    /// then the counts per unit at every level.
    ///
    /// # Errors
    /// [`Error::Internal`] when the pass did not see every resident of `model`.
    pub fn finish(mut self, model: &Model) -> Result<SpecialNeeds> {
        if self.people.cats.len() != model.residents.len() {
            return Err(Error::Internal {
                at: Location::layer(Layer::Resident.name()),
                message: format!(
                    "the special-needs pass labelled {} residents of {}",
                    self.people.cats.len(),
                    model.residents.len()
                ),
            });
        }
        self.household_conditions(model);
        let detail = (
            (self.fields.disability.0.is_some() || self.register_detail.0)
                && self.disabled.is_some(),
            (self.fields.disability.1.is_some() || self.register_detail.1)
                && self.disabled.is_some(),
        );
        let index = |id: &str| self.categories.iter().position(|c| c.id == id);
        let pairs: Vec<(usize, usize)> = self
            .opts
            .co_occurrence
            .iter()
            .filter_map(|[a, b]| Some((index(a)?, index(b)?)))
            .collect();
        let hot_spots = match &self.opts.hot_spots {
            Some(h) => h.iter().filter_map(|id| index(id)).collect(),
            None => (0..self.categories.len())
                .filter(|i| self.categories[*i].tier == Tier::Care)
                .collect(),
        };
        let mut sn = SpecialNeeds {
            reference_date: self.reference,
            categories: self.categories,
            unavailable: self.unavailable,
            pairs,
            disability_detail: detail,
            disability_detail_finest: self.opts.disability_detail_finest.layer(),
            hot_spots,
            hot_spot_z: self.opts.hot_spot_z,
            issues: self.issues,
            people: self.people,
            sources: self.sources,
            counts: Default::default(),
            unit_codes: crate::analytics::counts::LEVELS
                .iter()
                .map(|l| {
                    (0..model.units(*l) as u32)
                        .map(|j| model.code(*l, j).to_owned())
                        .collect()
                })
                .collect(),
        };
        sn.counts = sn.count(model);
        Ok(sn)
    }

    /// Clears the categories whose household condition a resident's household does not meet
    /// (living alone, every member 60 or older, at most so many members), and the disability
    /// detail of residents who are no longer disabled.
    fn household_conditions(&mut self, model: &Model) {
        let conditioned: Vec<(usize, &Category)> = self
            .categories
            .iter()
            .enumerate()
            .filter(|(_, c)| c.rule.household.is_some() || c.rule.max_household.is_some())
            .collect();
        if conditioned.is_empty() {
            return;
        }
        let mut all60 = vec![true; model.households.len()];
        for (p, &age) in model.residents.iter().zip(&self.people.ages) {
            if age == NO_AGE || age < 60 {
                all60[p.household as usize] = false;
            }
        }
        let people = &mut self.people;
        let disabled = self.disabled;
        people
            .cats
            .par_iter_mut()
            .enumerate()
            .for_each(|(i, bits)| {
                let h = model.residents[i].household as usize;
                let members = model.households[h].residents;
                for &(c, cat) in &conditioned {
                    let ok = match cat.rule.household {
                        None => true,
                        Some(HouseholdRule::Alone) => members == 1,
                        Some(HouseholdRule::All60Plus) => all60[h],
                    } && cat.rule.max_household.is_none_or(|m| members <= m);
                    if !ok {
                        *bits &= !(1u64 << c);
                    }
                }
            });
        if let Some(d) = disabled {
            let cats = &people.cats;
            for detail in [&mut people.types, &mut people.grades] {
                detail.par_iter_mut().enumerate().for_each(|(i, v)| {
                    if cats[i] >> d & 1 == 0 {
                        *v = NO_DETAIL;
                    }
                });
            }
        }
    }
}

impl PeopleSink for SpecialNeedsPass {
    fn columns(&self) -> Vec<String> {
        self.wanted.clone()
    }

    fn header(&mut self, names: &[String]) -> Result<()> {
        match self.wanted.iter().find(|w| !names.contains(w)) {
            Some(missing) => Err(Error::column_not_found(
                Location::layer(Layer::Resident.name())
                    .file(&self.path)
                    .column(missing),
                names,
            )),
            None => Ok(()),
        }
    }

    fn take_part(&mut self) -> Result<Vec<u8>> {
        let part = (
            std::mem::take(&mut self.people),
            std::mem::take(&mut self.issues),
        );
        Ok(crate::model::build::part_bytes(&part))
    }

    fn absorb_part(&mut self, part: &[u8], residents: &[u32], total: usize) -> Result<()> {
        use crate::model::build::scatter;
        let (people, issues): (People, Vec<QualityIssue>) =
            crate::model::build::from_part(part, "special-needs labels")?;
        scatter(&mut self.people.ages, people.ages, residents, total, NO_AGE)?;
        scatter(&mut self.people.cats, people.cats, residents, total, 0)?;
        scatter(
            &mut self.people.types,
            people.types,
            residents,
            total,
            NO_DETAIL,
        )?;
        scatter(
            &mut self.people.grades,
            people.grades,
            residents,
            total,
            NO_DETAIL,
        )?;
        self.issues.extend(issues);
        // As one reading gives them: in row order.
        self.issues.sort_by_key(|i| i.index);
        Ok(())
    }

    fn chunk(&mut self, _model: &Model, t: &Table, placed: &[Placed]) -> Result<()> {
        let labels = labels::label_chunk(
            t,
            placed,
            &self.fields,
            &self.categories,
            &self.roster,
            self.reference,
            self.disabled,
        );
        if self.age_issues {
            self.age_issues(t, placed, &labels.ages);
        }
        self.people.append(labels);
        Ok(())
    }
}
