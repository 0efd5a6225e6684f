//! The steps of labelling residents: which categories can be computed, the roster columns
//! they read, ages, unit indices, one boolean per category, disability detail, and each
//! resident's count columns as bits.

use std::sync::Arc;

use chrono::NaiveDate;
use polars::prelude::*;
use rayon::prelude::*;

use super::{AGE_BANDS, DISABILITY_TYPES, age_at, parse_birth_date};
use crate::analytics::categories::{
    Category, HouseholdRule, Tier, default_categories, merge, value_matches,
};
use crate::analytics::counts::LEVELS;
use crate::error::Result;
use crate::io::table::{Table, TextColumn, read_table};
use crate::job::ResidentLayer;
use crate::model::build::Build;
use crate::model::level::Layer;
use crate::model::quality::{IssueKind, QualityIssue, Severity};
use crate::model::{Lineage, Model};
use crate::privacy::id_number_birth;

use super::SpecialNeedsOptions;

/// Residents per parallel task.
const CHUNK: usize = 16 * 1024;
/// A resident outside every unit of a level.
const NO_UNIT: u32 = u32::MAX;

/// Categories not computed, with the reason.
type Unavailable = Vec<(String, String)>;

/// The categories that can be computed, and those that cannot with the reason (a field not
/// mapped, no ages, the restricted tier not enabled).
///
/// # Errors
/// A message for the job: the job's categories do not merge with the defaults.
pub(super) fn available(
    opts: &SpecialNeedsOptions,
    r: &ResidentLayer,
    include_restricted: bool,
) -> std::result::Result<(Vec<Category>, Unavailable), String> {
    let all = merge(default_categories(), &opts.categories)?;
    let has_age = opts.fields.contains_key("birth_date") || r.id_number.is_some();
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
            && !opts.fields.contains_key(f)
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
    Ok((categories, unavailable))
}

/// The roster columns the labels read.
pub(super) struct Fields {
    /// `special_needs.fields.birth_date`.
    birth: Option<String>,
    /// `layers.residents.id_number`.
    id_number: Option<String>,
    /// `special_needs.fields.disability_type` / `disability_grade`.
    pub(super) disability: (Option<String>, Option<String>),
    /// `[special_needs.fields]`: field → column.
    map: std::collections::BTreeMap<String, String>,
}

impl Fields {
    pub(super) fn new(opts: &SpecialNeedsOptions, r: &ResidentLayer) -> Fields {
        let get = |f: &str| opts.fields.get(f).cloned();
        Fields {
            birth: get("birth_date"),
            id_number: r.id_number.clone(),
            disability: (get("disability_type"), get("disability_grade")),
            map: opts
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// True if ages can be computed (a birth date column or ID numbers).
    pub(super) fn has_age(&self) -> bool {
        self.birth.is_some() || self.id_number.is_some()
    }

    /// The column of a rule's field: the mapped column, else the field's own name.
    pub(super) fn column_of(&self, field: &str) -> String {
        self.map
            .get(field)
            .cloned()
            .unwrap_or_else(|| field.to_owned())
    }

    /// Every column the categories read, sorted and without repeats.
    fn wanted(&self, categories: &[Category]) -> Vec<String> {
        let mut wanted: Vec<String> = categories
            .iter()
            .filter_map(|c| c.rule.field.as_deref().map(|f| self.column_of(f)))
            .collect();
        wanted.extend(self.birth.clone());
        wanted.extend(self.id_number.clone());
        if categories.iter().any(|c| c.id == "disabled") {
            wanted.extend(self.disability.0.clone());
            wanted.extend(self.disability.1.clone());
        }
        wanted.sort();
        wanted.dedup();
        wanted
    }
}

/// The roster's columns the labels read, and each placed resident's row in it.
pub(super) struct Roster {
    table: Arc<Table>,
    /// Per resident of the model, its row in `table`'s frame.
    pub(super) rows: Vec<usize>,
}

impl Roster {
    /// The columns the categories read: those the build kept when it has them all as text,
    /// else read again.
    pub(super) fn read(
        build: &Build,
        r: &ResidentLayer,
        fields: &Fields,
        categories: &[Category],
    ) -> Result<Roster> {
        let wanted = fields.wanted(categories);
        let refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
        let kept = build.roster.as_ref().filter(|t| {
            refs.iter().all(|c| {
                t.frame
                    .column(c)
                    .is_ok_and(|col| col.dtype() == &DataType::String)
            })
        });
        let table = match kept {
            Some(t) => Arc::clone(t),
            None => {
                let path = build.job.resolve(&r.path);
                Arc::new(read_table(
                    Layer::Resident.name(),
                    &path,
                    &refs,
                    r.encoding,
                )?)
            }
        };
        let residents = &build.model.residents;
        let rows = match &table.source_rows {
            None => residents.par_iter().map(|p| p.source_index).collect(),
            Some(_) => {
                let mut frame_row = vec![u32::MAX; table.rows_read];
                for i in 0..table.frame.height() {
                    frame_row[table.source_row(i)] = i as u32;
                }
                residents
                    .par_iter()
                    .map(|p| frame_row[p.source_index] as usize)
                    .collect()
            }
        };
        Ok(Roster { table, rows })
    }

    /// A text column of the roster.
    pub(super) fn text(&self, column: &str) -> TextColumn<'_> {
        self.table.text_column(column)
    }

    /// The columns birth dates are read from.
    fn births<'t>(&'t self, fields: &Fields) -> Births<'t> {
        Births {
            given: fields.birth.as_deref().map(|c| self.text(c)),
            ids: fields.id_number.as_deref().map(|c| self.text(c)),
        }
    }

    /// Every resident's age at `reference`, in parallel (4 bytes a resident).
    pub(super) fn ages(&self, fields: &Fields, reference: NaiveDate) -> Vec<Option<u32>> {
        let births = self.births(fields);
        self.rows
            .par_iter()
            .map(|&row| births.of(row).1.and_then(|b| age_at(b, reference)))
            .collect()
    }

    /// A warning for each resident without an age, with its reason worked out again (they
    /// are few, found in a second pass).
    pub(super) fn age_issues(
        &self,
        model: &Model,
        fields: &Fields,
        ages: &[Option<u32>],
        reference: NaiveDate,
    ) -> Vec<QualityIssue> {
        let births = self.births(fields);
        ages.par_iter()
            .enumerate()
            .filter(|(_, a)| a.is_none())
            .map(|(i, _)| {
                let why = match births.of(self.rows[i]) {
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
    }

    /// One boolean per resident for each category.
    pub(super) fn labels(
        &self,
        model: &Model,
        categories: &[Category],
        fields: &Fields,
        ages: &[Option<u32>],
    ) -> Vec<Vec<bool>> {
        let all60 = all_60_plus(model, ages);
        let n = model.residents.len();
        let mut labels = Vec::with_capacity(categories.len());
        for c in categories {
            let values = c
                .rule
                .field
                .as_deref()
                .map(|f| self.text(&fields.column_of(f)));
            let v: Vec<bool> = (0..n)
                .into_par_iter()
                .with_min_len(4096)
                .map_init(Memo::default, |memo, i| {
                    let h = &model.households[model.residents[i].household as usize];
                    let rule = &c.rule;
                    let age = ages[i];
                    values.as_ref().is_none_or(|col| {
                        col.get(self.rows[i])
                            .is_some_and(|s| memo.get(s, || value_matches(rule, s)))
                    }) && rule.min_age.is_none_or(|m| age.is_some_and(|a| a >= m))
                        && rule.below_age.is_none_or(|m| age.is_some_and(|a| a < m))
                        && match rule.household {
                            None => true,
                            Some(HouseholdRule::Alone) => h.residents == 1,
                            Some(HouseholdRule::All60Plus) => {
                                all60[model.residents[i].household as usize]
                            }
                        }
                        && rule.max_household.is_none_or(|m| h.residents <= m)
                })
                .collect();
            labels.push(v);
        }
        labels
    }

    /// The disabled residents' type (index into [`DISABILITY_TYPES`]) and grade (1–4, 0 = not
    /// given), where the type and grade columns are mapped; `None` for other residents.
    pub(super) fn disability(&self, disabled: &[bool], fields: &Fields) -> Detail {
        let types = fields.disability.0.as_deref().map(|tc| {
            let col = self.text(tc);
            (0..disabled.len())
                .into_par_iter()
                .with_min_len(4096)
                .map_init(Memo::default, |memo, i| {
                    disabled[i].then(|| {
                        let s = col.get(self.rows[i]).unwrap_or_default();
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
                .collect()
        });
        let grades = fields.disability.1.as_deref().map(|gc| {
            let col = self.text(gc);
            (0..disabled.len())
                .into_par_iter()
                .map(|i| {
                    disabled[i].then(|| {
                        parse_grade(col.get(self.rows[i]).unwrap_or_default()).unwrap_or(0)
                    })
                })
                .collect()
        });
        Detail { types, grades }
    }
}

/// The roster columns birth dates come from: the birth date column, else the ID number.
struct Births<'t> {
    given: Option<TextColumn<'t>>,
    ids: Option<TextColumn<'t>>,
}

impl Births<'_> {
    /// A row's birth date as written (if not blank) and as parsed.
    fn of(&self, row: usize) -> (Option<&str>, Option<NaiveDate>) {
        let given = self
            .given
            .as_ref()
            .and_then(|b| b.get(row))
            .filter(|s| !s.trim().is_empty());
        let from_col = given.and_then(parse_birth_date);
        let from_id = || {
            self.ids
                .as_ref()
                .and_then(|c| c.get(row))
                .and_then(id_number_birth)
        };
        (given, from_col.or_else(from_id))
    }
}

/// The disabled residents' disability type and grade, when read.
#[derive(Default)]
pub(super) struct Detail {
    /// Per resident: index into [`DISABILITY_TYPES`].
    pub(super) types: Option<Vec<Option<u8>>>,
    /// Per resident: grade 1–4, 0 = not given.
    pub(super) grades: Option<Vec<Option<u32>>>,
}

impl Detail {
    /// Its columns of the residents' frame: `disability_type` (names) and `disability_grade`.
    pub(super) fn columns(&self) -> Vec<Column> {
        let mut out = Vec::new();
        if let Some(v) = &self.types {
            let names: StringChunked = v
                .par_iter()
                .map(|t| t.map(|k| DISABILITY_TYPES[k as usize].1))
                .collect();
            out.push(names.with_name("disability_type".into()).into_column());
        }
        if let Some(v) = &self.grades {
            out.push(Column::new("disability_grade".into(), v.clone()));
        }
        out
    }
}

/// Per household: whether every member is 60 or older (with a known age).
fn all_60_plus(model: &Model, ages: &[Option<u32>]) -> Vec<bool> {
    let mut all60 = vec![true; model.households.len()];
    for (p, age) in model.residents.iter().zip(ages) {
        if age.is_none_or(|a| a < 60) {
            all60[p.household as usize] = false;
        }
    }
    all60
}

/// The `<level>_index` columns (the unit's index in its level, null outside it) and, per level
/// of [`LEVELS`], the unit codes by index. Unit indices, not codes: building four string
/// columns of millions of rows cost more than the rest of the pass; codes are attached per
/// unit in `per_unit`. All levels in one pass over the residents.
pub(super) fn unit_columns(model: &Model) -> (Vec<Column>, Vec<Vec<String>>) {
    let n = model.residents.len();
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
    let mut columns = Vec::new();
    let mut codes = Vec::new();
    for (level, v) in LEVELS.into_iter().zip(index) {
        let name = format!("{}_index", level.singular());
        // The values move into the column without a copy; a validity mask only where a
        // resident lacks a unit at this level.
        let valid = v
            .par_iter()
            .any(|&u| u == NO_UNIT)
            .then(|| v.iter().map(|&u| u != NO_UNIT).collect());
        columns.push(UInt32Chunked::from_vec_validity(name.into(), v, valid).into_column());
        codes.push(
            (0..model.units(level) as u32)
                .map(|j| model.code(level, j).to_owned())
                .collect(),
        );
    }
    (columns, codes)
}

/// The `age` column (null where unknown).
pub(super) fn age_column(ages: &[Option<u32>]) -> Column {
    let values: Vec<u32> = ages.par_iter().map(|a| a.unwrap_or(0)).collect();
    let valid = ages
        .par_iter()
        .any(Option::is_none)
        .then(|| ages.iter().map(Option::is_some).collect());
    UInt32Chunked::from_vec_validity("age".into(), values, valid).into_column()
}

/// Each resident's count columns as bits, in `count_names` order (as `flag_exprs` defines
/// them), when there are at most 64; `None` otherwise.
pub(super) fn masks(
    ages: &[Option<u32>],
    labels: &[Vec<bool>],
    detail: &Detail,
    pairs: &[(usize, usize)],
) -> Option<Vec<u64>> {
    let nc = labels.len();
    let types_at = AGE_BANDS.len() + 1 + nc;
    let grades_at = types_at + detail.types.as_ref().map_or(0, |_| DISABILITY_TYPES.len());
    let pairs_at = grades_at + detail.grades.as_ref().map_or(0, |_| 5);
    if pairs_at + pairs.len() > 64 {
        return None;
    }
    let mask = |i: usize| {
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
        if let Some(Some(t)) = detail.types.as_ref().map(|v| v[i]) {
            m |= 1 << (types_at + t as usize);
        }
        match detail.grades.as_ref().map(|v| v[i]) {
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
    };
    Some((0..ages.len()).into_par_iter().map(mask).collect())
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
