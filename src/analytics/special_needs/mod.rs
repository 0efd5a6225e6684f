//! Special-needs populations per building, grid, community and street.

use chrono::{Datelike, NaiveDate};
use polars::prelude::*;

use crate::analytics::categories::{Category, Tier};
use crate::analytics::counts::LEVELS;
use crate::error::{Error, Location, Result};
use crate::model::build::Build;
use crate::model::level::Layer;
use crate::model::quality::QualityIssue;
use crate::privacy::{Sensitivity, mask_identifier};

mod counts;
mod labels;
mod options;

pub use options::{DetailLevel, SpecialNeedsOptions};

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

/// Parses a roster birth date: `19560312`, `1956-03-12`, `1956/3/12`, `1956.3.12` or
/// `1956年3月12日` (full-width digits too).
///
/// # Examples
/// ```
/// use shequ::analytics::special_needs::parse_birth_date;
/// let d = chrono::NaiveDate::from_ymd_opt(1956, 3, 12);
/// for s in ["19560312", "1956-03-12", "1956/3/12", "1956年3月12日", " １９５６-３-１２ "] {
///     assert_eq!(parse_birth_date(s), d, "{s}");
/// }
/// assert_eq!(parse_birth_date("1956-02-30"), None);
/// assert_eq!(parse_birth_date(""), None);
/// ```
pub fn parse_birth_date(s: &str) -> Option<NaiveDate> {
    let mut parts = [0u32; 3];
    let mut n = 0usize;
    let mut digits = 0usize;
    let mut all = 0u64;
    let mut total_digits = 0usize;
    for ch in s.trim().chars() {
        let d = match ch {
            '0'..='9' => Some(ch as u32 - '0' as u32),
            '０'..='９' => Some(ch as u32 - '０' as u32),
            _ => None,
        };
        match d {
            Some(d) => {
                if n >= 3 {
                    return None;
                }
                parts[n] = parts[n] * 10 + d;
                digits += 1;
                total_digits += 1;
                all = all * 10 + u64::from(d);
            }
            None => {
                if digits > 0 {
                    n += 1;
                    digits = 0;
                }
            }
        }
    }
    if digits > 0 {
        n += 1;
    }
    let (y, m, d) = match n {
        1 if total_digits == 8 => (
            (all / 10_000) as u32,
            (all / 100 % 100) as u32,
            (all % 100) as u32,
        ),
        3 => (parts[0], parts[1], parts[2]),
        _ => return None,
    };
    if !(1880..=2200).contains(&y) {
        return None;
    }
    NaiveDate::from_ymd_opt(y as i32, m, d)
}

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
    residents: DataFrame,
    /// Per level of `LEVELS`, the unit codes by index.
    unit_codes: Vec<Vec<String>>,
    /// Per resident, its count columns as bits in [`count_names`](Self::count_names) order,
    /// when there are at most 64 (else the counts come from [`flag_exprs`](Self::flag_exprs)).
    masks: Option<Vec<u64>>,
}

impl SpecialNeeds {
    /// Labels every placed resident of a built model.
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
        let job_err = |message: String| build.job.error(message);
        opts.check().map_err(job_err)?;
        let reference = opts.date().map_err(job_err)?;
        let model = &build.model;
        let Some(r) = build.job.layers.residents.as_ref() else {
            return Err(job_err("[special_needs] needs [layers.residents]".into()));
        };
        let (categories, unavailable) =
            labels::available(opts, r, include_restricted).map_err(job_err)?;
        let fields = labels::Fields::new(opts, r);
        let roster = labels::Roster::read(build, r, &fields, &categories)?;
        let ages = roster.ages(&fields, reference);
        let needs_age = categories.iter().any(|c| c.rule.needs_age());
        let mut issues = if fields.has_age() && needs_age {
            roster.age_issues(model, &fields, &ages, reference)
        } else {
            Vec::new()
        };
        let (mut columns, unit_codes) = labels::unit_columns(model);
        columns.push(labels::age_column(&ages));
        let labels = roster.labels(model, &categories, &fields, &ages);
        for (c, v) in categories.iter().zip(&labels) {
            columns.push(Column::new(format!("cat_{}", c.id).into(), v.clone()));
        }
        let detail = match categories.iter().position(|c| c.id == "disabled") {
            Some(d) => roster.disability(&labels[d], &fields),
            None => labels::Detail::default(),
        };
        columns.extend(detail.columns());
        let index = |id: &str| categories.iter().position(|c| c.id == id);
        let pairs: Vec<(usize, usize)> = opts
            .co_occurrence
            .iter()
            .filter_map(|[a, b]| Some((index(a)?, index(b)?)))
            .collect();
        let masks = labels::masks(&ages, &labels, &detail, &pairs);
        let residents = DataFrame::new_infer_height(columns).map_err(|e| Error::Polars {
            at: Location::layer("residents"),
            source: Box::new(e),
        })?;
        let hot_spots = match &opts.hot_spots {
            Some(h) => h.iter().filter_map(|id| index(id)).collect(),
            None => (0..categories.len())
                .filter(|i| categories[*i].tier == Tier::Care)
                .collect(),
        };
        for i in &mut issues {
            // Never an identifier; the index points into the roster.
            i.id = i.id.as_deref().map(mask_identifier);
        }
        Ok(SpecialNeeds {
            reference_date: reference,
            categories,
            unavailable,
            pairs,
            disability_detail: (detail.types.is_some(), detail.grades.is_some()),
            disability_detail_finest: opts.disability_detail_finest.layer(),
            hot_spots,
            hot_spot_z: opts.hot_spot_z,
            issues,
            residents,
            unit_codes,
            masks,
        })
    }

    /// One row per placed resident: `street_index`, `community_index`, `grid_index`,
    /// `building_index` (the unit's index in the model's level, null outside it), `age` (null if
    /// unknown), a boolean `cat_<id>` per category, and `disability_type` /
    /// `disability_grade` (0 = not given) for the disabled. No identifiers.
    pub fn residents(&self) -> &DataFrame {
        &self.residents
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

    fn count_exprs(&self) -> Vec<Expr> {
        self.flag_exprs()
            .into_iter()
            .map(|e| e.cast(DataType::UInt64).sum())
            .collect()
    }

    /// Per resident, whether it counts in each column of [`count_names`](Self::count_names)
    /// (booleans, in that order and with those names).
    fn flag_exprs(&self) -> Vec<Expr> {
        let n = |e: Expr| e;
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
                n(cond.fill_null(lit(false))).alias(*name)
            })
            .collect();
        out.push(n(age().is_null()).alias("age_unknown"));
        for c in &self.categories {
            out.push(n(col(format!("cat_{}", c.id))).alias(c.id.as_str()));
        }
        if self.disability_detail.0 {
            for (_, en) in DISABILITY_TYPES {
                out.push(
                    n(col("disability_type").eq(lit(en)).fill_null(lit(false)))
                        .alias(format!("disabled_{en}")),
                );
            }
        }
        if self.disability_detail.1 {
            for g in 1..=4u32 {
                out.push(
                    n(col("disability_grade").eq(lit(g)).fill_null(lit(false)))
                        .alias(format!("disabled_grade_{g}")),
                );
            }
            out.push(
                n(col("disability_grade").eq(lit(0u32)).fill_null(lit(false)))
                    .alias("disabled_grade_unknown"),
            );
        }
        for (a, b) in &self.pairs {
            let (a, b) = (&self.categories[*a].id, &self.categories[*b].id);
            out.push(
                n(col(format!("cat_{a}")).and(col(format!("cat_{b}"))))
                    .alias(format!("{a}_and_{b}")),
            );
        }
        out
    }

    /// Counts per unit of a level as a lazy polars query: `<level>_id`, `residents` and every
    /// column of [`SpecialNeeds::count_names`]. Units with no placed resident are absent.
    pub fn per_unit(&self, level: Layer) -> LazyFrame {
        let index = format!("{}_index", level.singular());
        let id = format!("{}_id", level.singular());
        let mut aggs = vec![len().cast(DataType::UInt64).alias("residents")];
        aggs.extend(self.count_exprs());
        let grouped = self
            .residents
            .clone()
            .lazy()
            .filter(col(index.as_str()).is_not_null())
            .group_by([col(index.as_str())])
            .agg(aggs);
        // The units' codes in place of their indices.
        let codes = LEVELS
            .iter()
            .position(|l| *l == level)
            .map(|k| self.unit_codes[k].clone())
            .unwrap_or_default();
        let to_code = move |c: Column| -> PolarsResult<Column> {
            let idx = c.u32()?;
            let out: StringChunked = idx
                .iter()
                .map(|i| i.and_then(|i| codes.get(i as usize).map(String::as_str)))
                .collect();
            Ok(out.into_column())
        };
        grouped
            .with_column(
                col(index.as_str())
                    .map(to_code, |_, f| {
                        Ok(Field::new(f.name().clone(), DataType::String))
                    })
                    .alias(id.as_str()),
            )
            .drop(cols([index.as_str()]))
    }
}

#[cfg(test)]
mod tests {
    use super::{LEVELS, SpecialNeeds};
    use crate::analytics::counts::CountColumns;
    use polars::prelude::*;

    /// The counts per unit from the residents' bit masks equal those from the polars flags
    /// (the path for more than 64 columns) and those of `per_unit`, at every level.
    #[test]
    fn mask_counts_agree_with_polars() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cfg = crate::sample::SampleConfig::small(11);
        cfg.households = 1500;
        crate::sample::write_sample(dir.path(), &cfg).expect("sample");
        let job = crate::Job::from_toml(dir.path().join("job.toml")).expect("job");
        let built = crate::build(&job).expect("build");
        let mut opts = job.special_needs.clone().expect("[special_needs]");
        opts.co_occurrence = vec![["disabled".into(), "unemployed".into()]];
        let sn = SpecialNeeds::compute(&built, &opts, false).expect("special needs");
        assert!(sn.masks.is_some());
        let model = &built.model;
        let base = CountColumns::base(model);
        let off = base.names.len();
        let fast = sn.columns(model, base.clone()).expect("mask counts");
        let mut slow_sn = sn.clone();
        slow_sn.masks = None;
        let slow = slow_sn.columns(model, base).expect("polars counts");
        assert_eq!(fast.values, slow.values);
        let names = sn.count_names();
        assert!(names.iter().any(|n| n == "disabled_and_unemployed"));
        let mut nonzero = 0;
        for (li, level) in LEVELS.iter().enumerate() {
            if !model.has(*level) {
                continue;
            }
            let per = sn.per_unit(*level).collect().expect("per unit");
            let ids = per
                .column(&format!("{}_id", level.singular()))
                .and_then(|c| c.str().cloned())
                .expect("ids");
            for (k, name) in names.iter().enumerate() {
                let col = per
                    .column(name)
                    .and_then(|c| c.cast(&DataType::UInt64))
                    .expect("count column");
                let col = col.u64().expect("u64");
                for (id, v) in ids.iter().zip(col.iter()) {
                    let u = (0..model.units(*level) as u32)
                        .find(|&u| Some(model.code(*level, u)) == id)
                        .expect("unit") as usize;
                    assert_eq!(
                        fast.values[li][u][off + k],
                        v.unwrap_or(0),
                        "{level:?} {name}"
                    );
                    nonzero += usize::from(v.unwrap_or(0) > 0);
                }
            }
        }
        assert!(
            nonzero > 100,
            "the sample has counts to compare ({nonzero})"
        );
    }
}
