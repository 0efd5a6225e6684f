//! Special-needs populations per building, grid, community and street.

use chrono::{Datelike, NaiveDate};
use polars::prelude::*;

use crate::analytics::categories::Category;
use crate::analytics::counts::LEVELS;
use crate::error::{Error, Location, Result};
pub use crate::io::table::parse_birth_date;
use crate::model::Model;
use crate::model::build::Build;
use crate::model::build::PeopleSink;
use crate::model::level::Layer;
use crate::model::quality::QualityIssue;
use crate::privacy::Sensitivity;
use rayon::prelude::*;

mod counts;
mod labels;
mod options;
mod pass;
mod registers;

pub use options::{DetailLevel, SpecialNeedsOptions};
pub use pass::{MAX_CATEGORIES, SpecialNeedsPass};

/// Disability types (GB/T 26341): the roster's Chinese value → column suffix.
pub const DISABILITY_TYPES: [(&str, &str); 8] = [
    ("视力", "visual"),
    ("听力", "hearing"),
    ("言语", "speech"),
    ("肢体", "physical"),
    ("智力", "intellectual"),
    ("精神", "mental"),
    ("多重", "multiple"),
    ("", "other"),
];

/// Fine age bands (a partition of residents); 60+ and 65+ are published as their sums.
pub const AGE_BANDS: [(&str, u32, u32); 5] = [
    ("age_0_14", 0, 15),
    ("age_15_59", 15, 60),
    ("age_60_64", 60, 65),
    ("age_65_79", 65, 80),
    ("age_80_plus", 80, u32::MAX),
];

/// Age in whole years at `reference`: a birthday on the reference date counts.
///
/// # Examples
/// ```
/// use chrono::NaiveDate;
/// use shequ::analytics::special_needs::age_at;
/// let r = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
/// assert_eq!(age_at(NaiveDate::from_ymd_opt(1966, 1, 1).unwrap(), r), Some(60));
/// assert_eq!(age_at(NaiveDate::from_ymd_opt(1966, 1, 2).unwrap(), r), Some(59));
/// assert_eq!(age_at(NaiveDate::from_ymd_opt(2026, 1, 2).unwrap(), r), None); // not yet born
/// ```
pub fn age_at(birth: NaiveDate, reference: NaiveDate) -> Option<u32> {
    if birth > reference {
        return None;
    }
    let mut age = reference.year() - birth.year();
    if (reference.month(), reference.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    u32::try_from(age).ok()
}

/// Special-needs labels of every placed resident and their counts per unit.
///
/// Computed from the model and a second read of the roster (only the columns the categories
/// use). No identifier is kept: rows are residents, with their units, age and labels.
#[derive(Debug, Clone)]
pub struct SpecialNeeds {
    /// The reference date of ages.
    pub reference_date: NaiveDate,
    /// The categories computed, in output order.
    pub categories: Vec<Category>,
    /// Categories not computed, with the reason (a field not mapped, no birth dates, the
    /// restricted tier not enabled).
    pub unavailable: Vec<(String, String)>,
    /// Co-occurrence pairs (indices into `categories`).
    pub pairs: Vec<(usize, usize)>,
    /// Whether disability type and grade columns were read.
    pub disability_detail: (bool, bool),
    /// The finest level of the type and grade counts in research releases.
    pub disability_detail_finest: Layer,
    /// Categories with hot-spot statistics (indices into `categories`).
    pub hot_spots: Vec<usize>,
    /// Gi* threshold.
    pub hot_spot_z: f64,
    /// Problems found (missing or unreadable birth dates; residents are kept, not labelled by
    /// age).
    pub issues: Vec<QualityIssue>,
    /// Per resident: age, categories, disability detail.
    people: pass::People,
    /// The merged counts per unit.
    counts: counts::UnitCounts,
    /// Per level of `LEVELS`, the unit codes by index.
    unit_codes: Vec<Vec<String>>,
    /// Where the labels registers gave came from.
    sources: registers::Sources,
}

impl SpecialNeeds {
    /// Labels every placed resident of a built model, reading the roster again (with the
    /// job's registers linked to it, when it has `[[registers]]`).
    ///
    /// # Errors
    /// [`Error::Job`] for bad options; roster read errors ([`Error::ColumnNotFound`] for a
    /// field mapped to a column the roster lacks); [`Error::Polars`].
    ///
    /// # Examples
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(5))?;
    /// let job = shequ::Job::from_toml(dir.path().join("job.toml"))?;
    /// let built = shequ::build(&job)?;
    /// let sn = shequ::analytics::SpecialNeeds::compute(&built, job.special_needs.as_ref().unwrap(), false)?;
    /// assert!(sn.categories.iter().any(|c| c.id == "elderly_alone"));
    /// // Per-grid counts as a polars LazyFrame.
    /// let grids = sn.per_unit(shequ::Layer::Grid).collect()?;
    /// assert_eq!(grids.height(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn compute(
        build: &Build,
        opts: &SpecialNeedsOptions,
        include_restricted: bool,
    ) -> Result<SpecialNeeds> {
        let job = &build.job;
        let mut pass = SpecialNeedsPass::new(job, opts, include_restricted)?;
        let mut linker = if job.registers.is_empty() {
            None
        } else {
            let registers = crate::registry::read_registers(job)?;
            Some(crate::registry::Linker::new(
                registers,
                crate::registry::RosterKeys::of(job),
            ))
        };
        let mut sinks: Vec<&mut dyn PeopleSink> = vec![&mut pass];
        if let Some(l) = linker.as_mut() {
            sinks.push(l);
        }
        crate::model::build::restream(build, &mut sinks)?;
        if let Some(l) = linker {
            pass.apply_registers(&mut l.finish(&build.model));
        }
        pass.finish(&build.model)
    }

    /// One row per placed resident: `street_index`, `community_index`, `grid_index`,
    /// `building_index` (the unit's index in the model's level, null outside it), `age` (null if
    /// unknown), a boolean `cat_<id>` per category, and `disability_type` /
    /// `disability_grade` (null where not read or not disabled; grade 0 = not given). No
    /// identifiers. Built on each call from the compact labels the analysis keeps.
    ///
    /// # Errors
    /// [`Error::Polars`].
    pub fn residents(&self, model: &Model) -> Result<DataFrame> {
        let p = &self.people;
        let n = p.cats.len();
        let unit = |level: Layer| -> Column {
            let v: UInt32Chunked = model
                .residents
                .par_iter()
                .map(|r| model.households[r.household as usize].lineage.at(level))
                .collect();
            v.with_name(format!("{}_index", level.singular()).into())
                .into_column()
        };
        let mut columns: Vec<Column> = LEVELS.iter().map(|l| unit(*l)).collect();
        let ages: UInt32Chunked = p
            .ages
            .iter()
            .map(|a| (*a != labels::NO_AGE).then_some(u32::from(*a)))
            .collect();
        columns.push(ages.with_name("age".into()).into_column());
        for (c, cat) in self.categories.iter().enumerate() {
            let v: BooleanChunked = p.cats.iter().map(|b| Some(b >> c & 1 == 1)).collect();
            columns.push(v.with_name(format!("cat_{}", cat.id).into()).into_column());
        }
        let detail = |v: &[u8], i: usize| v.get(i).copied().filter(|d| *d != labels::NO_DETAIL);
        if self.disability_detail.0 {
            let v: StringChunked = (0..n)
                .map(|i| detail(&p.types, i).map(|t| DISABILITY_TYPES[t as usize].1))
                .collect();
            columns.push(v.with_name("disability_type".into()).into_column());
        }
        if self.disability_detail.1 {
            let v: UInt32Chunked = (0..n)
                .map(|i| detail(&p.grades, i).map(u32::from))
                .collect();
            columns.push(v.with_name("disability_grade".into()).into_column());
        }
        DataFrame::new(n, columns).map_err(|e| Error::Polars {
            at: Location::layer("residents"),
            source: Box::new(e),
        })
    }

    /// Where resident `resident`'s label `category` (an index into `categories`) came from:
    /// `roster` and the ids of the registers that gave it, `;`-separated; `None` without the
    /// label.
    pub fn sources(&self, resident: usize, category: usize) -> Option<String> {
        let bits = *self.people.cats.get(resident)?;
        self.sources.of(resident as u32, bits, category)
    }

    /// Resident `r`'s disability grade (1 most severe to 4); `None` where grades were not
    /// read, the resident is not disabled or no grade is given.
    pub fn disability_grade(&self, r: usize) -> Option<u8> {
        let g = *self.people.grades.get(r)?;
        (g != labels::NO_DETAIL && g != 0).then_some(g)
    }

    /// Resident `r`'s disability type in Chinese and English (`("肢体", "physical")`, ...),
    /// where read.
    pub fn disability_type(&self, r: usize) -> Option<(&'static str, &'static str)> {
        let t = *self.people.types.get(r)?;
        (t != labels::NO_DETAIL).then(|| DISABILITY_TYPES[t as usize])
    }

    /// Per placed resident (in [`Model::residents`] order), its age at the reference date
    /// (`None` if unknown).
    pub fn ages(&self) -> Vec<Option<u32>> {
        self.people
            .ages
            .iter()
            .map(|a| (*a != labels::NO_AGE).then_some(u32::from(*a)))
            .collect()
    }

    /// Per placed resident (in [`Model::residents`] order), whether it is in category `id`;
    /// `None` for a category not computed.
    pub fn members(&self, id: &str) -> Option<Vec<bool>> {
        let c = self.categories.iter().position(|c| c.id == id)?;
        Some(
            self.people
                .cats
                .par_iter()
                .map(|b| b >> c & 1 == 1)
                .collect(),
        )
    }

    /// The count columns, in order: age bands (fine partition), one per category, disability
    /// by type and by grade, co-occurrence pairs.
    pub fn count_names(&self) -> Vec<String> {
        let mut names: Vec<String> = AGE_BANDS.iter().map(|b| b.0.to_owned()).collect();
        names.push("age_unknown".into());
        names.extend(self.categories.iter().map(|c| c.id.clone()));
        if self.disability_detail.0 {
            names.extend(
                DISABILITY_TYPES
                    .iter()
                    .map(|(_, en)| format!("disabled_{en}")),
            );
        }
        if self.disability_detail.1 {
            names.extend((1..=4).map(|g| format!("disabled_grade_{g}")));
            names.push("disabled_grade_unknown".into());
        }
        names.extend(
            self.pairs
                .iter()
                .map(|(a, b)| format!("{}_and_{}", self.categories[*a].id, self.categories[*b].id)),
        );
        names
    }

    /// The sensitivity class of each column of [`count_names`](Self::count_names): age bands
    /// are low, categories as the registry says, disability detail sensitive, a co-occurrence
    /// as its more sensitive category.
    pub fn count_classes(&self) -> Vec<Sensitivity> {
        let mut classes = vec![Sensitivity::Low; AGE_BANDS.len() + 1];
        classes.extend(self.categories.iter().map(|c| c.sensitivity));
        let detail = usize::from(self.disability_detail.0) * DISABILITY_TYPES.len()
            + usize::from(self.disability_detail.1) * 5;
        classes.extend(std::iter::repeat_n(Sensitivity::Sensitive, detail));
        classes.extend(self.pairs.iter().map(|(a, b)| {
            self.categories[*a]
                .sensitivity
                .max(self.categories[*b].sensitivity)
        }));
        classes
    }

    /// Per column of [`count_names`](Self::count_names): the most one resident changes its
    /// count in one unit ([`Rule::bound`](crate::analytics::categories::Rule::bound); a
    /// co-occurrence as its larger category). `None` for a column without a bound.
    pub fn count_bounds(&self) -> Vec<Option<u64>> {
        let mut bounds = vec![Some(1); AGE_BANDS.len() + 1];
        bounds.extend(self.categories.iter().map(|c| c.rule.bound()));
        let detail = usize::from(self.disability_detail.0) * DISABILITY_TYPES.len()
            + usize::from(self.disability_detail.1) * 5;
        bounds.extend(std::iter::repeat_n(Some(1), detail));
        bounds.extend(self.pairs.iter().map(|(a, b)| {
            let (a, b) = (
                self.categories[*a].rule.bound(),
                self.categories[*b].rule.bound(),
            );
            Some(a?.max(b?))
        }));
        bounds
    }

    /// Counts per unit of a level as a lazy polars query: `<level>_id`, `residents` and every
    /// column of [`SpecialNeeds::count_names`], in unit order. Units with no placed resident
    /// are absent.
    pub fn per_unit(&self, level: Layer) -> LazyFrame {
        let Some(li) = LEVELS.iter().position(|l| *l == level) else {
            return DataFrame::empty().lazy();
        };
        let residents = &self.counts.residents[li];
        let units: Vec<usize> = (0..residents.len()).filter(|u| residents[*u] > 0).collect();
        let id = format!("{}_id", level.singular());
        let codes: StringChunked = units
            .iter()
            .map(|u| Some(self.unit_codes[li][*u].as_str()))
            .collect();
        let mut columns = vec![codes.with_name(id.into()).into_column()];
        let counts: UInt64Chunked = units.iter().map(|u| Some(residents[*u])).collect();
        columns.push(counts.with_name("residents".into()).into_column());
        for (k, name) in self.count_names().iter().enumerate() {
            let v: UInt64Chunked = units
                .iter()
                .map(|u| Some(self.counts.values[li][*u][k]))
                .collect();
            columns.push(v.with_name(name.as_str().into()).into_column());
        }
        match DataFrame::new(units.len(), columns) {
            Ok(df) => df.lazy(),
            Err(e) => DataFrame::empty()
                .lazy()
                .select([lit(e.to_string()).alias("error")]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{AGE_BANDS, DISABILITY_TYPES, LEVELS, SpecialNeeds};
    use polars::prelude::*;

    /// Per resident, whether it counts in each column of `count_names` (booleans, in that
    /// order and with those names), as polars expressions over `residents()`.
    fn flag_exprs(sn: &SpecialNeeds) -> Vec<Expr> {
        let age = || col("age");
        let mut out: Vec<Expr> = AGE_BANDS
            .iter()
            .map(|(name, lo, hi)| {
                let cond = age().gt_eq(lit(*lo));
                let cond = if *hi == u32::MAX {
                    cond
                } else {
                    cond.and(age().lt(lit(*hi)))
                };
                cond.fill_null(lit(false)).alias(*name)
            })
            .collect();
        out.push(age().is_null().alias("age_unknown"));
        for c in &sn.categories {
            out.push(col(format!("cat_{}", c.id)).alias(c.id.as_str()));
        }
        if sn.disability_detail.0 {
            for (_, en) in DISABILITY_TYPES {
                out.push(
                    col("disability_type")
                        .eq(lit(en))
                        .fill_null(lit(false))
                        .alias(format!("disabled_{en}")),
                );
            }
        }
        if sn.disability_detail.1 {
            for g in 0..=4u32 {
                let name = match g {
                    0 => "disabled_grade_unknown".to_owned(),
                    g => format!("disabled_grade_{g}"),
                };
                out.push(
                    col("disability_grade")
                        .eq(lit(g))
                        .fill_null(lit(false))
                        .alias(name),
                );
            }
        }
        for (a, b) in &sn.pairs {
            let (a, b) = (&sn.categories[*a].id, &sn.categories[*b].id);
            out.push(
                col(format!("cat_{a}"))
                    .and(col(format!("cat_{b}")))
                    .alias(format!("{a}_and_{b}")),
            );
        }
        out
    }

    /// The counts per unit from the labels kept (one pass of flag indices) equal a polars
    /// group-by of the residents' frame, at every level, for several chunk sizes.
    #[test]
    fn counts_agree_with_a_polars_group_by() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cfg = crate::sample::SampleConfig::small(11);
        cfg.households = 1500;
        crate::sample::write_sample(dir.path(), &cfg).expect("sample");
        let mut job = crate::Job::from_toml(dir.path().join("job.toml")).expect("job");
        job.options.chunk_rows = "333".parse().expect("rows");
        let built = crate::build(&job).expect("build");
        let mut opts = job.special_needs.clone().expect("[special_needs]");
        opts.co_occurrence = vec![["disabled".into(), "unemployed".into()]];
        let sn = SpecialNeeds::compute(&built, &opts, false).expect("special needs");
        let model = &built.model;
        let frame = sn.residents(model).expect("frame");
        assert_eq!(frame.height(), model.residents.len());
        let names = sn.count_names();
        assert!(names.iter().any(|n| n == "disabled_and_unemployed"));
        let mut nonzero = 0;
        for level in LEVELS {
            if !model.has(level) {
                continue;
            }
            let index = format!("{}_index", level.singular());
            let aggs: Vec<Expr> = flag_exprs(&sn)
                .into_iter()
                .map(|e| e.cast(DataType::UInt64).sum())
                .collect();
            let expected = frame
                .clone()
                .lazy()
                .filter(col(index.as_str()).is_not_null())
                .group_by([col(index.as_str())])
                .agg(aggs)
                .sort([index.as_str()], Default::default())
                .collect()
                .expect("group by");
            let got = sn.per_unit(level).collect().expect("per unit");
            assert_eq!(got.height(), expected.height(), "{level:?}");
            for name in &names {
                let values = |df: &DataFrame| -> Vec<Option<u64>> {
                    let c = df.column(name).and_then(|c| c.u64().cloned()).expect("u64");
                    c.iter().collect()
                };
                let (e, g) = (values(&expected), values(&got));
                assert_eq!(e, g, "{level:?} {name}");
                nonzero += g.iter().filter(|v| v.unwrap_or(0) > 0).count();
            }
        }
        assert!(
            nonzero > 100,
            "the sample has counts to compare ({nonzero})"
        );
    }
}
