//! Special-needs populations per building, grid, community and street.

use chrono::{Datelike, NaiveDate};
use polars::prelude::*;
use rayon::prelude::*;

use crate::analytics::categories::{
    Category, HouseholdRule, Tier, default_categories, merge, value_matches,
};
use crate::error::{Error, Location, Result};
use crate::io::table::read_table;
use crate::model::build::Build;
use crate::model::level::Layer;
use crate::model::quality::{IssueKind, QualityIssue, Severity};
use crate::model::{Lineage, Model};
use crate::output::release::{CountColumns, LEVELS};
use crate::privacy::{Sensitivity, id_number_birth, mask_identifier};

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

/// The last few answers about roster values in one worker's stretch of rows. Roster columns
/// repeat a handful of values (是/否, blank, a disability type) millions of times, so the
/// answer for a value is nearly always among the last ones.
struct Memo<'a, T> {
    seen: [(&'a str, T); 4],
    len: usize,
    next: usize,
}

impl<T: Copy + Default> Default for Memo<'_, T> {
    fn default() -> Self {
        Memo {
            seen: [("", T::default()); 4],
            len: 0,
            next: 0,
        }
    }
}

impl<'a, T: Copy> Memo<'a, T> {
    /// `f()`'s answer for `value`, remembered.
    #[inline]
    fn get(&mut self, value: &'a str, f: impl FnOnce() -> T) -> T {
        if let Some((_, v)) = self.seen[..self.len].iter().find(|(s, _)| *s == value) {
            return *v;
        }
        let v = f();
        self.seen[self.next] = (value, v);
        self.next = (self.next + 1) % self.seen.len();
        self.len = (self.len + 1).min(self.seen.len());
        v
    }
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
        let all = merge(default_categories(), &opts.categories).map_err(job_err)?;
        let field_col = |f: &str| opts.fields.get(f).cloned();
        let birth_col = field_col("birth_date");
        let has_age = birth_col.is_some() || r.id_number.is_some();
        let user_ids: Vec<&str> = opts.categories.iter().map(|c| c.id.as_str()).collect();
        let mut categories = Vec::new();
        let mut unavailable = Vec::new();
        for c in all {
            let why = if c.tier == Tier::Restricted && !include_restricted {
                Some("restricted tier: not enabled".to_owned())
            } else if c.rule.needs_age() && !has_age {
                Some(
                    "needs ages: map special_needs.fields.birth_date or layers.residents.id_number"
                        .to_owned(),
                )
            } else if let Some(f) = &c.rule.field
                && field_col(f).is_none()
                && !user_ids.contains(&c.id.as_str())
            {
                Some(format!(
                    "field {f:?} is not mapped in [special_needs.fields]"
                ))
            } else {
                None
            };
            match why {
                Some(w) => unavailable.push((c.id.clone(), w)),
                None => categories.push(c),
            }
        }
        // Columns to read.
        let col_of = |f: &str| field_col(f).unwrap_or_else(|| f.to_owned());
        let mut wanted: Vec<String> = categories
            .iter()
            .filter_map(|c| c.rule.field.as_deref().map(col_of))
            .collect();
        wanted.extend(birth_col.clone());
        wanted.extend(r.id_number.clone());
        let type_col = field_col("disability_type");
        let grade_col = field_col("disability_grade");
        let disabled = categories.iter().position(|c| c.id == "disabled");
        if disabled.is_some() {
            wanted.extend(type_col.clone());
            wanted.extend(grade_col.clone());
        }
        wanted.sort();
        wanted.dedup();
        let refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
        let path = build.job.resolve(&r.path);
        // The build has usually read these columns already.
        let t = match &build.roster {
            Some(t)
                if refs.iter().all(|c| {
                    t.frame
                        .column(c)
                        .is_ok_and(|col| col.dtype() == &DataType::String)
                }) =>
            {
                std::sync::Arc::clone(t)
            }
            _ => std::sync::Arc::new(read_table(
                Layer::Resident.name(),
                &path,
                &refs,
                r.encoding,
            )?),
        };
        let text = |c: &str| t.text_column(c);
        let n = model.residents.len();
        // Each resident's row in the roster's frame.
        let rows: Vec<usize> = match &t.source_rows {
            None => model.residents.par_iter().map(|p| p.source_index).collect(),
            Some(_) => {
                let mut frame_row = vec![u32::MAX; t.rows_read];
                for i in 0..t.frame.height() {
                    frame_row[t.source_row(i)] = i as u32;
                }
                model
                    .residents
                    .par_iter()
                    .map(|p| frame_row[p.source_index] as usize)
                    .collect()
            }
        };
        // Ages.
        let births = birth_col.as_deref().map(text);
        let ids = r.id_number.as_deref().map(text);
        let needs_age = categories.iter().any(|c| c.rule.needs_age());
        let birth_of = |row: usize| -> (Option<&str>, Option<NaiveDate>) {
            let given = births
                .as_ref()
                .and_then(|b| b.get(row))
                .filter(|s| !s.trim().is_empty());
            let from_col = given.and_then(parse_birth_date);
            let from_id = || {
                ids.as_ref()
                    .and_then(|c| c.get(row))
                    .and_then(id_number_birth)
            };
            (given, from_col.or_else(from_id))
        };
        // Ages in parallel, 4 bytes a resident; the few residents without one are found in a
        // second pass and only they get a quality issue (with its reason worked out again).
        let ages: Vec<Option<u32>> = rows
            .par_iter()
            .map(|&row| birth_of(row).1.and_then(|b| age_at(b, reference)))
            .collect();
        let mut issues: Vec<QualityIssue> = if has_age && needs_age {
            ages.par_iter()
                .enumerate()
                .filter(|(_, a)| a.is_none())
                .map(|(i, _)| {
                    let why = match birth_of(rows[i]) {
                        (Some(_), None) => "birth date not readable",
                        (_, Some(_)) => "birth date after the reference date",
                        (None, None) => "no birth date (and no valid ID number)",
                    };
                    QualityIssue {
                        layer: Layer::Resident,
                        index: Some(model.residents[i].source_index),
                        id: None,
                        kind: IssueKind::BadValue,
                        severity: Severity::Warning,
                        detail: format!(
                            "{why}: age-based categories not assigned (reference date {reference})"
                        ),
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        // Household size and whether every member is 60+.
        let mut all60 = vec![true; model.households.len()];
        for (p, age) in model.residents.iter().zip(&ages) {
            if age.is_none_or(|a| a < 60) {
                all60[p.household as usize] = false;
            }
        }
        // Labels.
        let mut columns: Vec<Column> = Vec::new();
        let mut unit_codes: Vec<Vec<String>> = Vec::new();
        // Unit indices, not codes: building four string columns of millions of rows cost
        // more than the rest of the pass; codes are attached per unit in `per_unit`. All
        // levels in one pass over the residents (`NO_UNIT` where a resident has none).
        const NO_UNIT: u32 = u32::MAX;
        const CHUNK: usize = 16 * 1024;
        let mut index: [Vec<u32>; LEVELS.len()] = std::array::from_fn(|_| vec![NO_UNIT; n]);
        {
            let [a, b, c, d] = &mut index;
            a.par_chunks_mut(CHUNK)
                .zip(b.par_chunks_mut(CHUNK))
                .zip(c.par_chunks_mut(CHUNK))
                .zip(d.par_chunks_mut(CHUNK))
                .enumerate()
                .for_each(|(k, (((a, b), c), d))| {
                    for j in 0..a.len() {
                        let p = &model.residents[k * CHUNK + j];
                        let l: &Lineage = &model.households[p.household as usize].lineage;
                        let at = |level: Layer| l.at(level).unwrap_or(NO_UNIT);
                        (a[j], b[j], c[j], d[j]) =
                            (at(LEVELS[0]), at(LEVELS[1]), at(LEVELS[2]), at(LEVELS[3]));
                    }
                });
        }
        for (level, v) in LEVELS.into_iter().zip(index) {
            let name = format!("{}_index", level.singular());
            // The values move into the column without a copy; a validity mask only where a
            // resident lacks a unit at this level.
            let valid = v
                .par_iter()
                .any(|&u| u == NO_UNIT)
                .then(|| v.iter().map(|&u| u != NO_UNIT).collect());
            columns.push(UInt32Chunked::from_vec_validity(name.into(), v, valid).into_column());
            unit_codes.push(
                (0..model.units(level) as u32)
                    .map(|j| model.code(level, j).to_owned())
                    .collect(),
            );
        }
        {
            let values: Vec<u32> = ages.par_iter().map(|a| a.unwrap_or(0)).collect();
            let valid = ages
                .par_iter()
                .any(Option::is_none)
                .then(|| ages.iter().map(Option::is_some).collect());
            columns
                .push(UInt32Chunked::from_vec_validity("age".into(), values, valid).into_column());
        }
        let mut labels: Vec<Vec<bool>> = Vec::new();
        for c in &categories {
            let values = c.rule.field.as_deref().map(|f| text(&col_of(f)));
            let v: Vec<bool> = (0..n)
                .into_par_iter()
                .with_min_len(4096)
                .map_init(Memo::default, |memo, i| {
                    let p = &model.residents[i];
                    let rule = &c.rule;
                    let age = ages[i];
                    values.as_ref().is_none_or(|col| {
                        col.get(rows[i])
                            .is_some_and(|s| memo.get(s, || value_matches(rule, s)))
                    }) && rule.min_age.is_none_or(|m| age.is_some_and(|a| a >= m))
                        && rule.below_age.is_none_or(|m| age.is_some_and(|a| a < m))
                        && match rule.household {
                            None => true,
                            Some(HouseholdRule::Alone) => {
                                model.households[p.household as usize].residents == 1
                            }
                            Some(HouseholdRule::All60Plus) => all60[p.household as usize],
                        }
                        && rule
                            .max_household
                            .is_none_or(|m| model.households[p.household as usize].residents <= m)
                })
                .collect();
            columns.push(Column::new(format!("cat_{}", c.id).into(), v.clone()));
            labels.push(v);
        }
        let mut detail = (false, false);
        // Disability type (index into DISABILITY_TYPES) and grade (0 = not given) of the
        // disabled.
        let mut types: Option<Vec<Option<u8>>> = None;
        let mut grades: Option<Vec<Option<u32>>> = None;
        if let Some(d) = disabled {
            if let Some(tc) = &type_col {
                let col = text(tc);
                let v: Vec<Option<u8>> = (0..n)
                    .into_par_iter()
                    .with_min_len(4096)
                    .map_init(Memo::default, |memo, i| {
                        labels[d][i].then(|| {
                            let s = col.get(rows[i]).unwrap_or_default();
                            memo.get(s, || {
                                let s = s.trim();
                                let other = DISABILITY_TYPES.len() - 1;
                                DISABILITY_TYPES
                                    .iter()
                                    .position(|(zh, _)| !zh.is_empty() && s.contains(zh))
                                    .unwrap_or(other) as u8
                            })
                        })
                    })
                    .collect();
                let names: StringChunked = v
                    .par_iter()
                    .map(|t| t.map(|k| DISABILITY_TYPES[k as usize].1))
                    .collect();
                columns.push(names.with_name("disability_type".into()).into_column());
                types = Some(v);
                detail.0 = true;
            }
            if let Some(gc) = &grade_col {
                let col = text(gc);
                let v: Vec<Option<u32>> = (0..n)
                    .into_par_iter()
                    .map(|i| {
                        if !labels[d][i] {
                            return None;
                        }
                        Some(parse_grade(col.get(rows[i]).unwrap_or_default()).unwrap_or(0))
                    })
                    .collect();
                columns.push(Column::new("disability_grade".into(), v.clone()));
                grades = Some(v);
                detail.1 = true;
            }
        }
        // Each resident's count columns as bits, in `count_names` order (as `flag_exprs`
        // defines them), when there are at most 64.
        let index = |id: &str| categories.iter().position(|c| c.id == id);
        let pairs: Vec<(usize, usize)> = opts
            .co_occurrence
            .iter()
            .filter_map(|[a, b]| Some((index(a)?, index(b)?)))
            .collect();
        let nc = categories.len();
        let nflags = AGE_BANDS.len()
            + 1
            + nc
            + if detail.0 { DISABILITY_TYPES.len() } else { 0 }
            + if detail.1 { 5 } else { 0 }
            + pairs.len();
        let masks = (nflags <= 64).then(|| {
            let types_at = AGE_BANDS.len() + 1 + nc;
            let grades_at = types_at + types.as_ref().map_or(0, |_| DISABILITY_TYPES.len());
            let pairs_at = grades_at + grades.as_ref().map_or(0, |_| 5);
            (0..n)
                .into_par_iter()
                .map(|i| {
                    let mut m = 0u64;
                    match ages[i] {
                        Some(a) => {
                            for (k, (_, lo, hi)) in AGE_BANDS.iter().enumerate() {
                                if a >= *lo && a < *hi {
                                    m |= 1 << k;
                                }
                            }
                        }
                        None => m |= 1 << AGE_BANDS.len(),
                    }
                    for (c, l) in labels.iter().enumerate() {
                        if l[i] {
                            m |= 1 << (AGE_BANDS.len() + 1 + c);
                        }
                    }
                    if let Some(Some(t)) = types.as_ref().map(|v| v[i]) {
                        m |= 1 << (types_at + t as usize);
                    }
                    match grades.as_ref().map(|v| v[i]) {
                        Some(Some(g @ 1..=4)) => m |= 1 << (grades_at + g as usize - 1),
                        Some(Some(0)) => m |= 1 << (grades_at + 4),
                        _ => {}
                    }
                    for (k, (a, b)) in pairs.iter().enumerate() {
                        if labels[*a][i] && labels[*b][i] {
                            m |= 1 << (pairs_at + k);
                        }
                    }
                    m
                })
                .collect()
        });
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
            disability_detail: detail,
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

    /// The count columns for [`Release`](crate::output::release::Release), appended to
    /// `base` (which must hold `residents`), with their relations: residents = the age bands;
    /// disabled = its types = its grades; nested pairs (living alone within empty-nest,
    /// co-occurrence within each of its categories).
    ///
    /// # Errors
    /// [`Error::Polars`].
    ///
    /// # Panics
    /// If `base` lacks the `residents` column that [`CountColumns::from_tally`](crate::output::release::CountColumns::from_tally) makes.
    pub fn columns(&self, model: &Model, mut base: CountColumns) -> Result<CountColumns> {
        let names = self.count_names();
        let residents = base.index("residents").expect("base columns");
        let polars_err = |e| Error::Polars {
            at: Location::layer(Layer::Resident.name()),
            source: Box::new(e),
        };
        // Each resident's unit at every level, from the `<level>_index` columns (u32::MAX
        // outside the level), borrowed where a column has no nulls.
        let index_columns: Vec<UInt32Chunked> = LEVELS
            .iter()
            .map(|level| {
                self.residents
                    .column(&format!("{}_index", level.singular()))
                    .and_then(|c| c.u32().map(|c| c.rechunk().into_owned()))
                    .map_err(polars_err)
            })
            .collect::<Result<_>>()?;
        let units: Vec<std::borrow::Cow<'_, [u32]>> = index_columns
            .iter()
            .map(|c| match c.cont_slice() {
                Ok(s) => std::borrow::Cow::Borrowed(s),
                Err(_) => std::borrow::Cow::Owned(
                    c.downcast_iter()
                        .flat_map(|a| a.iter().map(|v| v.copied().unwrap_or(u32::MAX)))
                        .collect(),
                ),
            })
            .collect();
        let levels: Vec<usize> = (0..LEVELS.len())
            .filter(|li| model.has(LEVELS[*li]))
            .collect();
        let nf = names.len();
        let mut values: [Vec<Vec<u64>>; 4] = Default::default();
        for (li, level) in LEVELS.iter().enumerate() {
            values[li] = vec![vec![0u64; nf]; model.units(*level)];
        }
        match &self.masks {
            // One parallel pass over the residents, counting every set bit at every level
            // into a counter table per task.
            Some(masks) => {
                let tasks = 2 * rayon::current_num_threads();
                let per = masks.len().div_ceil(tasks).max(1);
                let tables: Vec<Vec<Vec<u32>>> = masks
                    .par_chunks(per)
                    .enumerate()
                    .map(|(k, chunk)| {
                        let mut t: Vec<Vec<u32>> = LEVELS
                            .iter()
                            .map(|l| {
                                let units = if model.has(*l) { model.units(*l) } else { 0 };
                                vec![0u32; units * nf]
                            })
                            .collect();
                        for (j, &m) in chunk.iter().enumerate() {
                            let i = k * per + j;
                            for &li in &levels {
                                let u = units[li][i];
                                if u == u32::MAX {
                                    continue;
                                }
                                let row = &mut t[li][u as usize * nf..(u as usize + 1) * nf];
                                let mut bits = m;
                                while bits != 0 {
                                    row[bits.trailing_zeros() as usize] += 1;
                                    bits &= bits - 1;
                                }
                            }
                        }
                        t
                    })
                    .collect();
                for t in &tables {
                    for &li in &levels {
                        for (u, row) in values[li].iter_mut().enumerate() {
                            for (f, v) in row.iter_mut().enumerate() {
                                *v += u64::from(t[li][u * nf + f]);
                            }
                        }
                    }
                }
            }
            // More than 64 columns: the flags from polars, counted per (level, flag).
            None => {
                let flags = self
                    .residents
                    .clone()
                    .lazy()
                    .select(self.flag_exprs())
                    .collect()
                    .map_err(polars_err)?;
                let flags: Vec<BooleanChunked> = names
                    .iter()
                    .map(|n| {
                        flags
                            .column(n)
                            .and_then(|c| c.bool().map(|b| b.rechunk().into_owned()))
                            .map_err(polars_err)
                    })
                    .collect::<Result<_>>()?;
                let tasks: Vec<(usize, usize)> = levels
                    .iter()
                    .flat_map(|&li| (0..flags.len()).map(move |f| (li, f)))
                    .collect();
                let counted: Vec<Vec<u64>> = tasks
                    .par_iter()
                    .map(|&(li, f)| {
                        let unit = &units[li];
                        let mut counts = vec![0u64; model.units(LEVELS[li])];
                        for arr in flags[f].downcast_iter() {
                            let set = match arr.validity() {
                                Some(v) => arr.values() & v,
                                None => arr.values().clone(),
                            };
                            for i in set.true_idx_iter() {
                                if let Some(c) = counts.get_mut(unit[i] as usize) {
                                    *c += 1;
                                }
                            }
                        }
                        counts
                    })
                    .collect();
                for (&(li, f), counts) in tasks.iter().zip(&counted) {
                    for (u, x) in counts.iter().enumerate() {
                        values[li][u][f] = *x;
                    }
                }
            }
        }
        let off = base.names.len();
        let at = |name: &str| names.iter().position(|n| n == name).map(|i| i + off);
        let classes = self.count_classes();
        let finest = names
            .iter()
            .map(|n| {
                if n.starts_with("disabled_") && !n.contains("_and_") {
                    self.disability_detail_finest
                } else {
                    Layer::Building
                }
            })
            .collect();
        let bounds = self.count_bounds();
        base.append(CountColumns {
            names: names.clone(),
            classes,
            finest,
            table: vec!["special_needs"; bounds.len()],
            bound: bounds,
            groups: Vec::new(),
            nested: Vec::new(),
            values,
        });
        let bands: Vec<usize> = AGE_BANDS
            .iter()
            .map(|b| b.0)
            .chain(["age_unknown"])
            .filter_map(at)
            .collect();
        base.groups.push((residents, bands));
        if let Some(d) = at("disabled") {
            if self.disability_detail.0 {
                let parts = DISABILITY_TYPES
                    .iter()
                    .filter_map(|(_, en)| at(&format!("disabled_{en}")))
                    .collect();
                base.groups.push((d, parts));
            }
            if self.disability_detail.1 {
                let parts = (1..=4)
                    .map(|g| format!("disabled_grade_{g}"))
                    .chain(["disabled_grade_unknown".to_owned()])
                    .filter_map(|n| at(&n))
                    .collect();
                base.groups.push((d, parts));
            }
        }
        if let (Some(a), Some(e)) = (at("elderly_alone"), at("empty_nest")) {
            base.nested.push((a, e));
        }
        for (a, b) in &self.pairs {
            let (a, b) = (&self.categories[*a].id, &self.categories[*b].id);
            if let (Some(ab), Some(ai), Some(bi)) = (at(&format!("{a}_and_{b}")), at(a), at(b)) {
                base.nested.push((ab, ai));
                base.nested.push((ab, bi));
            }
        }
        Ok(base)
    }
}

/// A disability grade: `1级`, `一级`, `1`, `I` ... → 1–4.
fn parse_grade(s: &str) -> Option<u32> {
    let s = s.trim();
    for (g, names) in [
        (1, ["1", "一", "I"]),
        (2, ["2", "二", "II"]),
        (3, ["3", "三", "III"]),
        (4, ["4", "四", "IV"]),
    ] {
        let core = s.trim_end_matches('级').trim_start_matches('第');
        if names.iter().any(|n| n.eq_ignore_ascii_case(core)) {
            return Some(g);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{LEVELS, SpecialNeeds};
    use crate::output::release::CountColumns;
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
