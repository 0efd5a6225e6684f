//! Deadlines per step of the case loop, and the yellow and red cards (黄牌、红牌) of digital city
//! management (GB/T 30428): a step is *yellow* once a share of its limit has passed (80% by
//! default) and *red* once the limit has passed; a step finished within its limit is on time.

use std::collections::HashMap;

use chrono::NaiveDateTime;

use super::calendar::WorkCalendar;
use super::steps::Step;
use super::tables::read_rows;
use crate::error::{Error, Location, Result};

/// How a step's limit is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Clock time, in seconds (a limit of `2` hours is 7,200).
    Clock(i64),
    /// Working time on the [`WorkCalendar`], in seconds (one working day is 86,400).
    Working(i64),
}

impl Limit {
    /// A limit of `hours` of clock time (rounded to the second).
    pub fn hours(hours: f64) -> Limit {
        Limit::Clock((hours * 3600.0).round() as i64)
    }

    /// A limit of `days` working days (rounded to the second).
    pub fn working_days(days: f64) -> Limit {
        Limit::Working((days * 86_400.0).round() as i64)
    }

    /// The limit's length in its own seconds.
    pub fn seconds(self) -> i64 {
        match self {
            Limit::Clock(s) | Limit::Working(s) => s,
        }
    }

    /// Time counted against this limit from `from` to `to`, in seconds.
    ///
    /// # Errors
    /// Working time over a year the calendar does not cover.
    pub fn elapsed(
        self,
        cal: &WorkCalendar,
        from: NaiveDateTime,
        to: NaiveDateTime,
    ) -> Result<i64> {
        match self {
            Limit::Clock(_) => Ok((to - from).num_seconds()),
            Limit::Working(_) => cal.working_seconds(from, to),
        }
    }

    /// The instant the limit ends for a step started at `from`.
    ///
    /// # Errors
    /// As [`WorkCalendar::add_working_seconds`].
    pub fn deadline(self, cal: &WorkCalendar, from: NaiveDateTime) -> Result<NaiveDateTime> {
        match self {
            Limit::Clock(s) => Ok(from + chrono::Duration::seconds(s)),
            Limit::Working(s) => cal.add_working_seconds(from, s),
        }
    }
}

/// A step's card.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Card {
    /// Less than the warning share of the limit has passed (or the step finished on time).
    Green,
    /// The warning share has passed, the limit not yet (黄牌).
    Yellow,
    /// The limit has passed (红牌, overdue).
    Red,
}

/// The warning share of a limit, in thousandths (800 = 80%), and the cards it gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardRule {
    /// A step is yellow once this many thousandths of its limit have passed.
    pub yellow_permille: u32,
}

impl Default for CardRule {
    fn default() -> Self {
        CardRule {
            yellow_permille: 800,
        }
    }
}

impl CardRule {
    /// The card of a step that has run `elapsed` seconds against `limit`: red when `elapsed`
    /// exceeds the limit, yellow from the warning share up to and including the limit itself,
    /// green before. Integer arithmetic: the boundaries are exact.
    ///
    /// # Examples
    /// ```
    /// use shequ::analytics::events::{Card, CardRule, Limit};
    /// let rule = CardRule::default(); // yellow at 80%
    /// let limit = Limit::hours(10.0);
    /// assert_eq!(rule.card(8 * 3600 - 1, limit), Card::Green);
    /// assert_eq!(rule.card(8 * 3600, limit), Card::Yellow);
    /// assert_eq!(rule.card(10 * 3600, limit), Card::Yellow); // due now, not yet overdue
    /// assert_eq!(rule.card(10 * 3600 + 1, limit), Card::Red);
    /// ```
    pub fn card(self, elapsed: i64, limit: Limit) -> Card {
        let l = limit.seconds();
        if elapsed > l {
            Card::Red
        } else if i128::from(elapsed) * 1000 >= i128::from(l) * i128::from(self.yellow_permille) {
            Card::Yellow
        } else {
            Card::Green
        }
    }

    /// The card of a step started at `start`: for an open step (`end` is `None`) the time run
    /// until `as_of`; for a finished one, red when it finished late and green otherwise.
    ///
    /// # Errors
    /// Working time over a year the calendar does not cover.
    pub fn card_at(
        self,
        cal: &WorkCalendar,
        limit: Limit,
        start: NaiveDateTime,
        end: Option<NaiveDateTime>,
        as_of: NaiveDateTime,
    ) -> Result<Card> {
        match end {
            Some(end) => Ok(if limit.elapsed(cal, start, end)? > limit.seconds() {
                Card::Red
            } else {
                Card::Green
            }),
            None => Ok(self.card(limit.elapsed(cal, start, as_of)?, limit)),
        }
    }
}

/// One row of a deadline table: the limit of a step for a category and sub-category (`*`
/// for any), and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadlineRow {
    /// The category (`*`: any).
    pub category: String,
    /// The sub-category (`*`: any).
    pub subcategory: String,
    /// The step whose time the limit bounds, counted from the step before it.
    pub step: Step,
    /// The limit.
    pub limit: Limit,
    /// Where the limit comes from (a city's 处置标准, a contract).
    pub source: String,
}

/// Limits per category, sub-category and step, as data: CSV with the columns
/// `category,subcategory,step,limit,unit,source` (`unit`: `hours` or `working_days`; `*`
/// matches any category or sub-category). A case's limit is the most specific row: its
/// category and sub-category, else its category, else `*`.
///
/// The bundled defaults ([`DeadlineTable::defaults`]) are illustrative: every city sets its
/// own, and a job replaces or extends them.
///
/// # Examples
/// ```
/// use shequ::analytics::events::{DeadlineTable, Limit, Step};
/// let mut t = DeadlineTable::defaults();
/// assert_eq!(t.limit("市容环境", "暴露垃圾", Step::Handled).unwrap().limit, Limit::working_days(1.0));
/// assert_eq!(t.limit("市容环境", "道路不洁", Step::Handled).unwrap().limit, Limit::working_days(3.0));
/// t.extend_csv(
///     "category,subcategory,step,limit,unit,source\n市容环境,*,handled,8,hours,local\n",
///     "local.csv",
/// )?;
/// assert_eq!(t.limit("市容环境", "道路不洁", Step::Handled).unwrap().limit, Limit::hours(8.0));
/// # Ok::<(), shequ::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct DeadlineTable {
    rows: HashMap<(String, String, Step), DeadlineRow>,
}

const DEFAULTS: &str = include_str!("deadlines_default.csv");

impl DeadlineTable {
    /// Every row, sorted by category, sub-category and step.
    ///
    /// # Examples
    /// ```
    /// let t = shequ::analytics::events::DeadlineTable::defaults();
    /// assert_eq!(t.rows().next().unwrap().category, "*");
    /// ```
    pub fn rows(&self) -> impl Iterator<Item = &DeadlineRow> {
        let mut v: Vec<&DeadlineRow> = self.rows.values().collect();
        v.sort_by(|a, b| {
            (&a.category, &a.subcategory, a.step).cmp(&(&b.category, &b.subcategory, b.step))
        });
        v.into_iter()
    }

    /// The bundled, illustrative limits.
    ///
    /// # Panics
    /// Never: the bundled table is checked by the tests.
    pub fn defaults() -> DeadlineTable {
        let mut t = DeadlineTable::default();
        t.extend_csv(DEFAULTS, "deadlines_default.csv")
            .expect("the bundled deadlines are valid");
        t
    }

    /// Adds (or replaces) rows from CSV text; `file` names it in errors.
    ///
    /// # Errors
    /// A located data error: a missing column, an unknown step or unit, a limit that is not a
    /// positive number.
    pub fn extend_csv(&mut self, text: &str, file: &str) -> Result<()> {
        let at = |i: usize| Location::layer("deadlines").file(file).index(i);
        let columns = ["category", "subcategory", "step", "limit", "unit", "source"];
        let rows = read_rows(text, file, "deadlines", &columns)?;
        for (i, [category, subcategory, step, value, unit, source]) in rows.into_iter().enumerate()
        {
            let step = Step::parse(&step)
                .ok_or_else(|| Error::data(at(i), format!("unknown step {step:?}")))?;
            let v: f64 = value
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v > 0.0)
                .ok_or_else(|| {
                    Error::data(at(i), format!("limit {value:?} is not a positive number"))
                })?;
            let limit = match unit.as_str() {
                "hours" => Limit::hours(v),
                "working_days" => Limit::working_days(v),
                u => {
                    return Err(Error::data(
                        at(i),
                        format!("unit {u:?} is neither hours nor working_days"),
                    ));
                }
            };
            let row = DeadlineRow {
                category,
                subcategory,
                step,
                limit,
                source,
            };
            self.rows
                .insert((row.category.clone(), row.subcategory.clone(), step), row);
        }
        Ok(())
    }

    /// The most specific limit of `step` for a case of `category` / `subcategory`.
    pub fn limit(&self, category: &str, subcategory: &str, step: Step) -> Option<&DeadlineRow> {
        let get = |c: &str, s: &str| self.rows.get(&(c.to_owned(), s.to_owned(), step));
        get(category, subcategory)
            .or_else(|| get(category, "*"))
            .or_else(|| get("*", "*"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2025, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
    }

    #[test]
    fn yellow_and_red_at_the_exact_boundaries_of_a_working_day_limit() {
        let cal = WorkCalendar::china();
        let rule = CardRule::default();
        // Reported Friday 26 September 2025 at 12:00, two working days. Saturday 27 is a
        // weekend, Sunday 28 is worked (调休): due Monday 29 at 12:00.
        let limit = Limit::working_days(2.0);
        let start = at(9, 26, 12, 0);
        assert_eq!(limit.deadline(&cal, start).unwrap(), at(9, 29, 12, 0));
        // 80% of 48 working hours is 38 h 24 min: Friday 12 h + Sunday 24 h + Monday 2 h 24.
        let card = |t| rule.card_at(&cal, limit, start, None, t).unwrap();
        assert_eq!(card(at(9, 29, 2, 23)), Card::Green);
        assert_eq!(card(at(9, 29, 2, 24)), Card::Yellow);
        assert_eq!(card(at(9, 29, 12, 0)), Card::Yellow);
        assert_eq!(
            card(at(9, 29, 12, 0) + chrono::Duration::seconds(1)),
            Card::Red
        );
        // Finished at the deadline: on time; a second later: late.
        let done = |t| rule.card_at(&cal, limit, start, Some(t), t).unwrap();
        assert_eq!(done(at(9, 29, 12, 0)), Card::Green);
        assert_eq!(
            done(at(9, 29, 12, 0) + chrono::Duration::seconds(1)),
            Card::Red
        );
    }

    #[test]
    fn the_bundled_deadlines_are_valid_and_bad_rows_are_located() {
        let t = DeadlineTable::defaults();
        for step in Step::ALL.into_iter().skip(1) {
            assert!(t.limit("其他", "其他", step).is_some(), "{step:?}");
        }
        let mut t = DeadlineTable::default();
        let bad = "category,subcategory,step,limit,unit,source\n*,*,handled,-1,hours,x\n";
        assert!(
            t.extend_csv(bad, "d.csv")
                .unwrap_err()
                .to_string()
                .contains("positive")
        );
        let bad = "category,subcategory,step,limit,unit,source\n*,*,closed,1,hours,x\n";
        assert!(
            t.extend_csv(bad, "d.csv")
                .unwrap_err()
                .to_string()
                .contains("unknown step")
        );
        let bad = "category,subcategory,step,limit,unit,source\n*,*,handled,1,weeks,x\n";
        assert!(
            t.extend_csv(bad, "d.csv")
                .unwrap_err()
                .to_string()
                .contains("weeks")
        );
    }

    #[test]
    fn clock_limits_ignore_the_calendar() {
        let cal = WorkCalendar::china();
        let limit = Limit::hours(2.0);
        // Across National Day: clock time runs on holidays.
        let start = at(10, 1, 9, 0);
        assert_eq!(limit.deadline(&cal, start).unwrap(), at(10, 1, 11, 0));
        let rule = CardRule {
            yellow_permille: 500,
        };
        assert_eq!(
            rule.card_at(&cal, limit, start, None, at(10, 1, 10, 0))
                .unwrap(),
            Card::Yellow
        );
    }
}
