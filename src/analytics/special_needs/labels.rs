//! Labelling a chunk of residents: which categories can be computed, the roster columns they
//! read, and per resident its age, its categories (the resident's own conditions; household
//! conditions are applied once every member is known) and its disability detail.

use chrono::NaiveDate;
use rayon::prelude::*;

use super::{DISABILITY_TYPES, age_at, parse_birth_date};
use crate::analytics::categories::{Category, Tier, default_categories, merge, value_matches};
use crate::io::table::{Table, TextColumn};
use crate::job::ResidentLayer;
use crate::model::build::Placed;
use crate::privacy::id_number_birth;
use crate::registry::RegisterOptions;

use super::SpecialNeedsOptions;

/// No age known.
pub(super) const NO_AGE: u16 = u16::MAX;
/// No disability type or grade (the resident is not disabled, or the column is not read).
pub(super) const NO_DETAIL: u8 = u8::MAX;

/// Categories not computed, with the reason.
type Unavailable = Vec<(String, String)>;

/// The categories that can be computed, whether each can be computed from the roster, and
/// those that cannot be computed at all with the reason (a field neither mapped nor supplied
/// by a register, no ages, the restricted tier not enabled). A category that a register gives
/// (`registers.category`, or a field of its rule in `registers.fields`) is computed from the
/// register where the roster cannot give it.
///
/// # Errors
/// A message for the job: the job's categories do not merge with the defaults.
pub(super) fn available(
    opts: &SpecialNeedsOptions,
    r: &ResidentLayer,
    include_restricted: bool,
    registers: &[RegisterOptions],
) -> std::result::Result<(Vec<Category>, Vec<bool>, Unavailable), String> {
    let all = merge(default_categories(), &opts.categories)?;
    let has_age = opts.fields.contains_key("birth_date") || r.id_number.is_some();
    let user_ids: Vec<&str> = opts.categories.iter().map(|c| c.id.as_str()).collect();
    let (mut categories, mut roster, mut unavailable) = (Vec::new(), Vec::new(), Vec::new());
    for c in all {
        let from_register = registers.iter().any(|g| {
            g.category.as_deref() == Some(c.id.as_str())
                || c.rule
                    .field
                    .as_ref()
                    .is_some_and(|f| g.fields.contains_key(f))
        });
        let unmapped = c.rule.field.as_ref().filter(|f| {
            !opts.fields.contains_key(f.as_str()) && !user_ids.contains(&c.id.as_str())
        });
        let why = if c.tier == Tier::Restricted && !include_restricted {
            Some("restricted tier: not enabled".to_owned())
        } else if c.rule.needs_age() && !has_age {
            Some(
                "needs ages: map special_needs.fields.birth_date or layers.residents.id_number"
                    .to_owned(),
            )
        } else if let Some(f) = unmapped
            && !from_register
        {
            Some(format!(
                "field {f:?} is not mapped in [special_needs.fields]"
            ))
        } else {
            None
        };
        match why {
            Some(w) => unavailable.push((c.id.clone(), w)),
            None => {
                roster.push(unmapped.is_none());
                categories.push(c);
            }
        }
    }
    Ok((categories, roster, unavailable))
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

    /// Every column the categories computed from the roster (`roster[c]`) read, sorted and
    /// without repeats.
    pub(super) fn wanted(&self, categories: &[Category], roster: &[bool]) -> Vec<String> {
        let mut wanted: Vec<String> = categories
            .iter()
            .zip(roster)
            .filter(|(_, r)| **r)
            .filter_map(|(c, _)| c.rule.field.as_deref().map(|f| self.column_of(f)))
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

/// The roster columns birth dates come from: the birth date column, else the ID number.
pub(super) struct Births<'t> {
    given: Option<TextColumn<'t>>,
    ids: Option<TextColumn<'t>>,
}

impl<'t> Births<'t> {
    /// The birth date columns of a chunk.
    pub(super) fn new(t: &'t Table, fields: &Fields) -> Births<'t> {
        Births {
            given: fields.birth.as_deref().map(|c| t.text_column(c)),
            ids: fields.id_number.as_deref().map(|c| t.text_column(c)),
        }
    }

    /// A row's birth date as written (if not blank) and as parsed.
    pub(super) fn of(&self, row: usize) -> (Option<&str>, Option<NaiveDate>) {
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

/// A disability grade: `1级`, `一级`, `1`, `I` ... → 1–4.
pub(super) fn parse_grade(s: &str) -> Option<u32> {
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

/// The labels of one chunk's placed residents, in their order.
pub(super) struct ChunkLabels {
    /// Age in years at the reference date (`NO_AGE` if unknown).
    pub(super) ages: Vec<u16>,
    /// One bit per category (in `categories` order): the resident meets the category's own
    /// conditions (value, ages). Household conditions are applied later.
    pub(super) cats: Vec<u64>,
    /// Disability type (index into [`DISABILITY_TYPES`]) of the disabled, `NO_DETAIL` else.
    pub(super) types: Vec<u8>,
    /// Disability grade (1–4, 0 = not given) of the disabled, `NO_DETAIL` else.
    pub(super) grades: Vec<u8>,
}

/// Labels the residents `placed` from chunk `t`, in parallel.
pub(super) fn label_chunk(
    t: &Table,
    placed: &[Placed],
    fields: &Fields,
    categories: &[Category],
    roster: &[bool],
    reference: NaiveDate,
    disabled: Option<usize>,
) -> ChunkLabels {
    let births = Births::new(t, fields);
    let ages: Vec<u16> = placed
        .par_iter()
        .map(|p| {
            births
                .of(p.row as usize)
                .1
                .and_then(|b| age_at(b, reference))
                .map_or(NO_AGE, |a| a.min(u32::from(NO_AGE - 1)) as u16)
        })
        .collect();
    let mut cats = vec![0u64; placed.len()];
    // Categories only registers give have no roster bits.
    for (c, cat) in categories.iter().enumerate().filter(|(c, _)| roster[*c]) {
        let values = cat
            .rule
            .field
            .as_deref()
            .map(|f| t.text_column(&fields.column_of(f)));
        let rule = &cat.rule;
        cats.par_iter_mut()
            .with_min_len(4096)
            .enumerate()
            .for_each_init(Memo::default, |memo, (i, bits)| {
                let age = (ages[i] != NO_AGE).then_some(u32::from(ages[i]));
                let yes = values.as_ref().is_none_or(|col| {
                    col.get(placed[i].row as usize)
                        .is_some_and(|s| memo.get(s, || value_matches(rule, s)))
                }) && rule.min_age.is_none_or(|m| age.is_some_and(|a| a >= m))
                    && rule.below_age.is_none_or(|m| age.is_some_and(|a| a < m));
                *bits |= u64::from(yes) << c;
            });
    }
    let is_disabled = |i: usize| disabled.is_some_and(|d| cats[i] >> d & 1 == 1);
    let types = match fields
        .disability
        .0
        .as_deref()
        .filter(|_| disabled.is_some())
    {
        Some(tc) => {
            let col = t.text_column(tc);
            (0..placed.len())
                .into_par_iter()
                .with_min_len(4096)
                .map_init(Memo::default, |memo, i| {
                    if !is_disabled(i) {
                        return NO_DETAIL;
                    }
                    let s = col.get(placed[i].row as usize).unwrap_or_default();
                    memo.get(s, || disability_type(s))
                })
                .collect()
        }
        None => Vec::new(),
    };
    let grades = match fields
        .disability
        .1
        .as_deref()
        .filter(|_| disabled.is_some())
    {
        Some(gc) => {
            let col: TextColumn = t.text_column(gc);
            (0..placed.len())
                .into_par_iter()
                .map(|i| {
                    if !is_disabled(i) {
                        return NO_DETAIL;
                    }
                    parse_grade(col.get(placed[i].row as usize).unwrap_or_default()).unwrap_or(0)
                        as u8
                })
                .collect()
        }
        None => Vec::new(),
    };
    ChunkLabels {
        ages,
        cats,
        types,
        grades,
    }
}

/// A disability type as written → its index in [`DISABILITY_TYPES`] (the last, `other`, when
/// no type is named).
pub(super) fn disability_type(s: &str) -> u8 {
    let s = s.trim();
    let other = DISABILITY_TYPES.len() - 1;
    DISABILITY_TYPES
        .iter()
        .position(|(zh, _)| !zh.is_empty() && s.contains(zh))
        .unwrap_or(other) as u8
}
