//! Visits to special-needs residents (走访): rules as data (a category, how often its residents
//! must be visited, the rule's source) and each resident's standing against the rule.

use chrono::NaiveDate;

use super::tables::read_rows;
use crate::error::{Error, Location, Result};

/// Residents of `category` must be visited at least once every `every_days` days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitRule {
    /// The special-needs category (`elderly_living_alone`, ...).
    pub category: String,
    /// Only residents whose `field` has one of `values` (empty: every resident of the
    /// category), for rules such as "disability grade 1–2: monthly".
    pub only: Option<(String, Vec<String>)>,
    /// The longest allowed gap between visits, in days.
    pub every_days: u32,
    /// Where the rule comes from.
    pub source: String,
}

/// Visit rules: CSV with the columns `category,where,every_days,source`; `where` is empty or
/// `field=value|value|...`.
///
/// # Examples
/// ```
/// use shequ::analytics::events::VisitRules;
/// let rules = VisitRules::from_csv(
///     "category,where,every_days,source\n\
///      elderly_living_alone,,7,street office rule\n\
///      disabled,disability_grade=一级|二级,30,street office rule\n",
///     "visits.csv",
/// )?;
/// assert_eq!(rules.rules()[1].only.as_ref().unwrap().1, ["一级", "二级"]);
/// # Ok::<(), shequ::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VisitRules {
    rules: Vec<VisitRule>,
}

impl VisitRules {
    /// Rules from CSV text; `file` names it in errors.
    ///
    /// # Errors
    /// A located data error: a missing column, a blank category, a `where` without `=`, a
    /// frequency that is not a whole number of days above zero.
    pub fn from_csv(text: &str, file: &str) -> Result<VisitRules> {
        let at = |i: usize| Location::layer("visit_rules").file(file).index(i);
        let columns = ["category", "where", "every_days", "source"];
        let mut rules = Vec::new();
        for (i, [category, only, every, source]) in read_rows(text, file, "visit_rules", &columns)?
            .into_iter()
            .enumerate()
        {
            if category.is_empty() {
                return Err(Error::data(at(i), "a category is required"));
            }
            let every_days = every
                .parse::<u32>()
                .ok()
                .filter(|d| *d > 0)
                .ok_or_else(|| {
                    Error::data(
                        at(i),
                        format!("every_days {every:?} is not a whole number of days above zero"),
                    )
                })?;
            let only = if only.is_empty() {
                None
            } else {
                let (field, values) = only.split_once('=').ok_or_else(|| {
                    Error::data(at(i), format!("where {only:?} is not field=value|value"))
                })?;
                let values = values.split('|').map(|v| v.trim().to_owned()).collect();
                Some((field.trim().to_owned(), values))
            };
            rules.push(VisitRule {
                category,
                only,
                every_days,
                source,
            });
        }
        Ok(VisitRules { rules })
    }

    /// The rules, in the table's order.
    pub fn rules(&self) -> &[VisitRule] {
        &self.rules
    }
}

/// One resident's visits against a rule over a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisitStanding {
    /// Visits required: the period cut into windows of the rule's length, counted back from
    /// `as_of` (the oldest window may be shorter).
    pub required: u32,
    /// Windows with at least one visit.
    pub made: u32,
    /// Days from the last visit (or from the period's start, without one) to `as_of`.
    pub days_since: i64,
    /// Days past the allowed gap (0 when not overdue).
    pub overdue_days: i64,
}

/// A resident's standing: `visits` (any order; dates outside `from..=as_of` are ignored)
/// against a visit every `every_days` days over `from..=as_of`.
///
/// # Examples
/// ```
/// use chrono::NaiveDate;
/// use shequ::analytics::events::visit_standing;
/// let d = |m, d| NaiveDate::from_ymd_opt(2025, m, d).unwrap();
/// // Weekly over 1–28 June (four windows: 22–28, 15–21, 8–14, 1–7), visited on 3 and 20 June.
/// let s = visit_standing(&[d(6, 20), d(6, 3)], 7, d(6, 1), d(6, 28));
/// assert_eq!((s.required, s.made), (4, 2));
/// assert_eq!((s.days_since, s.overdue_days), (8, 1));
/// ```
pub fn visit_standing(
    visits: &[NaiveDate],
    every_days: u32,
    from: NaiveDate,
    as_of: NaiveDate,
) -> VisitStanding {
    let every = i64::from(every_days.max(1));
    let span = (as_of - from).num_days() + 1;
    if span <= 0 {
        return VisitStanding {
            required: 0,
            made: 0,
            days_since: 0,
            overdue_days: 0,
        };
    }
    let windows = (span + every - 1) / every;
    let mut hit = vec![false; windows as usize];
    let mut last = None;
    for &v in visits.iter().filter(|v| (from..=as_of).contains(*v)) {
        hit[((as_of - v).num_days() / every) as usize] = true;
        last = last.max(Some(v));
    }
    let days_since = (as_of - last.unwrap_or(from)).num_days();
    VisitStanding {
        required: windows as u32,
        made: hit.iter().filter(|h| **h).count() as u32,
        days_since,
        overdue_days: (days_since - every).max(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, m, day).unwrap()
    }

    #[test]
    fn never_visited_is_overdue_from_the_period_start() {
        let s = visit_standing(&[], 30, d(1, 1), d(3, 31));
        assert_eq!((s.required, s.made), (3, 0));
        assert_eq!((s.days_since, s.overdue_days), (89, 59));
    }

    #[test]
    fn a_visit_on_the_gap_limit_is_not_overdue() {
        let s = visit_standing(&[d(6, 21)], 7, d(6, 1), d(6, 28));
        assert_eq!((s.days_since, s.overdue_days), (7, 0));
        // Visits outside the period and several in one window count once.
        let s = visit_standing(&[d(5, 30), d(6, 27), d(6, 28)], 7, d(6, 1), d(6, 28));
        assert_eq!((s.required, s.made, s.days_since), (4, 1, 0));
    }

    #[test]
    fn bad_rules_are_located_errors() {
        let e = VisitRules::from_csv("category,where,every_days,source\nx,,0,s\n", "v.csv");
        assert!(e.unwrap_err().to_string().contains("above zero"));
        let e = VisitRules::from_csv("category,where,every_days,source\nx,grade,7,s\n", "v.csv");
        assert!(e.unwrap_err().to_string().contains("field=value"));
        let e = VisitRules::from_csv("category,every_days,source\n", "v.csv");
        assert!(e.unwrap_err().to_string().contains("where"));
    }
}
