//! China's working-day calendar (工作日历) as data: Monday to Friday are working days, except
//! the public holidays the State Council announces each year, and some weekend days are
//! working days instead (调休). Deadlines in working days are counted on it.
//!
//! The bundled table ([`WorkCalendar::china`]) holds 2024–2026 from the State Council's
//! notices (国务院办公厅关于 20xx 年部分节假日安排的通知), each row with its source. A year
//! is *covered* when the table has a row for it; arithmetic that reaches a year the table does
//! not cover is an error, never a guess. Users add years (or local rules) with
//! [`WorkCalendar::extend_csv`].

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike, Weekday};

use super::tables::read_rows;
use crate::error::{Error, Location, Result};

/// What the calendar says of one listed date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind {
    /// A public holiday or a rest day moved by 调休: not a working day.
    Holiday,
    /// A weekend day that is a working day (调休上班).
    Workday,
}

/// One listed date: its kind, name and source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarDay {
    /// Holiday or adjusted working day.
    pub kind: DayKind,
    /// The holiday's name (`春节`, `国庆节调休上班`).
    pub name: String,
    /// Where the row comes from (the notice, a local rule).
    pub source: String,
}

const SECONDS_PER_DAY: i64 = 86_400;

/// A working-day calendar: the listed dates and, for the covered years, the number of working
/// days before each date (so that working time between two instants is two lookups).
///
/// Working time counts the whole of every working day (24 hours) and none of other days; a
/// limit of *n* working days after an instant ends when *n* × 24 hours of working time have
/// passed. A case reported on Friday at 15:00 with a limit of one working day is due on Monday
/// at 15:00; one reported on Saturday is due at the end of Monday.
///
/// # Examples
/// ```
/// use chrono::NaiveDate;
/// use shequ::analytics::events::WorkCalendar;
/// let cal = WorkCalendar::china();
/// let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
/// assert!(!cal.is_working_day(day(2, 16))?); // Spring Festival, a Monday
/// assert!(cal.is_working_day(day(2, 14))?); // a Saturday worked instead (调休)
/// // Three working days from Friday 13 February 2026, 10:00: Saturday 14 (worked), then
/// // Tuesday 24 and Wednesday 25, after the nine days of holiday.
/// let due = cal.add_working_days(day(2, 13).and_hms_opt(10, 0, 0).unwrap(), 3)?;
/// assert_eq!(due, day(2, 25).and_hms_opt(10, 0, 0).unwrap());
/// # Ok::<(), shequ::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct WorkCalendar {
    days: BTreeMap<NaiveDate, CalendarDay>,
    /// The covered years, first to last (gaps allowed: `covered` tells).
    first: i32,
    last: i32,
    covered: Vec<bool>,
    /// Working days before each day of `first`-01-01 ..= `last`-12-31, and one past the end.
    before: Vec<u32>,
    /// `first`-01-01 in days from the common era.
    start_ce: i32,
}

/// The bundled table: 2024–2026.
const CHINA: &str = include_str!("calendar_cn.csv");

impl WorkCalendar {
    /// The bundled calendar of mainland China (2024–2026, from the State Council's notices).
    ///
    /// # Panics
    /// Never: the bundled table is checked by the tests.
    pub fn china() -> WorkCalendar {
        Self::from_csv(CHINA, "calendar_cn.csv").expect("the bundled calendar is valid")
    }

    /// A calendar from CSV text with the columns `date,kind,name,source` (`kind` is `holiday`
    /// or `workday`); `file` names it in errors.
    ///
    /// # Errors
    /// A located data error for a missing column, an unreadable date or kind, a date listed
    /// twice, a `workday` that is not a Saturday or Sunday.
    pub fn from_csv(text: &str, file: &str) -> Result<WorkCalendar> {
        let mut cal = WorkCalendar {
            days: BTreeMap::new(),
            first: 0,
            last: -1,
            covered: Vec::new(),
            before: Vec::new(),
            start_ce: 0,
        };
        cal.extend_csv(text, file)?;
        Ok(cal)
    }

    /// Adds the rows of another table (same columns as [`from_csv`](Self::from_csv)); a date
    /// already listed is replaced, so a local rule can override the bundled one.
    ///
    /// # Errors
    /// As [`from_csv`](Self::from_csv).
    pub fn extend_csv(&mut self, text: &str, file: &str) -> Result<()> {
        let at = |row: usize| Location::layer("calendar").file(file).index(row);
        let rows = read_rows(text, file, "calendar", &["date", "kind", "name", "source"])?;
        let mut seen = std::collections::BTreeSet::new();
        for (i, [date, kind, name, source]) in rows.into_iter().enumerate() {
            let d = NaiveDate::parse_from_str(&date, "%Y-%m-%d")
                .map_err(|_| Error::data(at(i), format!("date {date:?} is not YYYY-MM-DD")))?;
            let k = match kind.as_str() {
                "holiday" => DayKind::Holiday,
                "workday" => DayKind::Workday,
                other => {
                    return Err(Error::data(
                        at(i),
                        format!("kind {other:?} is neither holiday nor workday"),
                    ));
                }
            };
            if k == DayKind::Workday && !is_weekend(d) {
                return Err(Error::data(
                    at(i),
                    format!("{d} is listed as an adjusted working day but is not a weekend day"),
                ));
            }
            if !seen.insert(d) {
                return Err(Error::data(at(i), format!("{d} is listed twice")));
            }
            let day = CalendarDay {
                kind: k,
                name,
                source,
            };
            self.days.insert(d, day);
        }
        self.index();
        Ok(())
    }

    /// Recomputes the covered years and the working days before each day.
    fn index(&mut self) {
        let (Some(first), Some(last)) = (self.days.keys().next(), self.days.keys().next_back())
        else {
            return;
        };
        (self.first, self.last) = (first.year(), last.year());
        self.covered = vec![false; (self.last - self.first + 1) as usize];
        for d in self.days.keys() {
            self.covered[(d.year() - self.first) as usize] = true;
        }
        let start = year_start(self.first);
        self.start_ce = start.num_days_from_ce();
        let end = year_start(self.last + 1);
        let n = (end - start).num_days() as usize;
        self.before = Vec::with_capacity(n + 1);
        let mut count = 0u32;
        for d in start.iter_days().take(n) {
            self.before.push(count);
            if self.listed_working(d) {
                count += 1;
            }
        }
        self.before.push(count);
    }

    fn listed_working(&self, d: NaiveDate) -> bool {
        match self.days.get(&d).map(|x| x.kind) {
            Some(DayKind::Holiday) => false,
            Some(DayKind::Workday) => true,
            None => !is_weekend(d),
        }
    }

    /// The years the calendar covers, first to last.
    pub fn years(&self) -> Vec<i32> {
        (self.first..=self.last)
            .filter(|y| self.covered[(y - self.first) as usize])
            .collect()
    }

    /// The listed date, when the calendar lists it.
    pub fn day(&self, d: NaiveDate) -> Option<&CalendarDay> {
        self.days.get(&d)
    }

    /// The index of `d` in `before`, when its year is covered.
    fn offset(&self, d: NaiveDate) -> Result<usize> {
        let y = d.year();
        if y < self.first || y > self.last || !self.covered[(y - self.first) as usize] {
            return Err(Error::data(
                Location::layer("calendar"),
                format!(
                    "the working-day calendar does not cover {y} (it covers {:?}); add that \
                     year's holidays and adjusted working days to the calendar",
                    self.years()
                ),
            ));
        }
        Ok((d.num_days_from_ce() - self.start_ce) as usize)
    }

    /// Whether every year from `from` to `to` is covered (no date is built: this runs for
    /// every timed step of every case).
    fn covers(&self, from: i32, to: i32) -> bool {
        from >= self.first
            && to <= self.last
            && self.covered[(from - self.first) as usize..=(to - self.first) as usize]
                .iter()
                .all(|c| *c)
    }

    /// Whether `d` is a working day.
    ///
    /// # Errors
    /// `d`'s year is not covered.
    pub fn is_working_day(&self, d: NaiveDate) -> Result<bool> {
        let i = self.offset(d)?;
        Ok(self.before[i + 1] > self.before[i])
    }

    /// Working time from `from` to `to` in seconds (negative when `to` is earlier).
    ///
    /// # Errors
    /// A year between the two is not covered.
    pub fn working_seconds(&self, from: NaiveDateTime, to: NaiveDateTime) -> Result<i64> {
        if to < from {
            return Ok(-self.working_seconds(to, from)?);
        }
        self.check_years(from.date(), to.date())?;
        Ok(self.working_before(to)? - self.working_before(from)?)
    }

    /// Working seconds from the calendar's first day to `t`.
    fn working_before(&self, t: NaiveDateTime) -> Result<i64> {
        let i = self.offset(t.date())?;
        let whole = i64::from(self.before[i]) * SECONDS_PER_DAY;
        let part = if self.before[i + 1] > self.before[i] {
            i64::from(t.time().num_seconds_from_midnight())
        } else {
            0
        };
        Ok(whole + part)
    }

    fn check_years(&self, from: NaiveDate, to: NaiveDate) -> Result<()> {
        if self.covers(from.year(), to.year()) {
            return Ok(());
        }
        for y in from.year()..=to.year() {
            self.offset(year_start(y))?;
        }
        Ok(())
    }

    /// The first instant at which `seconds` of working time have passed since `from` (`from`
    /// itself for zero or less). When the time runs out exactly at the end of a working day,
    /// that is the midnight ending it.
    ///
    /// # Errors
    /// The instant, or a year on the way to it, is not covered.
    pub fn add_working_seconds(&self, from: NaiveDateTime, seconds: i64) -> Result<NaiveDateTime> {
        if seconds <= 0 {
            return Ok(from);
        }
        let target = self.working_before(from)? + seconds;
        let (whole, part) = (
            target.div_euclid(SECONDS_PER_DAY),
            target.rem_euclid(SECONDS_PER_DAY),
        );
        let day = |i: usize| year_start(self.first) + chrono::Days::new(i as u64);
        let t = if part == 0 {
            // The first midnight with `whole` working days before it.
            let j = self.before.partition_point(|&b| i64::from(b) < whole);
            (j < self.before.len()).then(|| day(j).and_time(chrono::NaiveTime::MIN))
        } else {
            // Within the working day that has `whole` working days before it.
            let i = self.before.partition_point(|&b| i64::from(b) <= whole);
            (i < self.before.len()).then(|| {
                day(i - 1).and_time(chrono::NaiveTime::MIN) + chrono::Duration::seconds(part)
            })
        };
        let Some(t) = t else {
            return Err(Error::data(
                Location::layer("calendar"),
                format!(
                    "a deadline falls after the calendar's last covered year ({})",
                    self.last
                ),
            ));
        };
        // The last moment counted is in a covered year, and so is every year on the way.
        self.check_years(from.date(), (t - chrono::Duration::seconds(1)).date())?;
        Ok(t)
    }

    /// The instant `days` working days after `from` ([`add_working_seconds`](Self::add_working_seconds)
    /// with `days` × 24 hours).
    ///
    /// # Errors
    /// As [`add_working_seconds`](Self::add_working_seconds).
    pub fn add_working_days(&self, from: NaiveDateTime, days: u32) -> Result<NaiveDateTime> {
        self.add_working_seconds(from, i64::from(days) * SECONDS_PER_DAY)
    }
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

fn year_start(y: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, 1, 1).unwrap_or(NaiveDate::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32, h: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, 0, 0)
            .unwrap()
    }

    #[test]
    fn the_bundled_table_is_valid_and_covers_three_years() {
        assert_eq!(WorkCalendar::china().years(), [2024, 2025, 2026]);
    }

    #[test]
    fn a_year_outside_the_table_is_an_error() {
        let cal = WorkCalendar::china();
        let e = cal.is_working_day(NaiveDate::from_ymd_opt(2027, 3, 1).unwrap());
        assert!(e.unwrap_err().to_string().contains("does not cover 2027"));
        assert!(cal.add_working_days(at(2026, 12, 30, 9), 5).is_err());
    }

    #[test]
    fn spring_festival_2026_and_its_adjusted_saturdays() {
        let cal = WorkCalendar::china();
        // Friday 13 February 09:00 + 2 working days: Friday (15 h), Saturday 14 (worked,
        // 24 h), then nine days off (15–23), and Tuesday 24 until 09:00.
        assert_eq!(
            cal.add_working_days(at(2026, 2, 13, 9), 2).unwrap(),
            at(2026, 2, 24, 9)
        );
        // No working time at all during the holiday.
        assert_eq!(
            cal.working_seconds(at(2026, 2, 15, 0), at(2026, 2, 24, 0))
                .unwrap(),
            0
        );
        // Saturday 28 February is worked: Friday 27 to Sunday 1 March holds two working days.
        assert_eq!(
            cal.working_seconds(at(2026, 2, 27, 0), at(2026, 3, 1, 0))
                .unwrap(),
            2 * SECONDS_PER_DAY
        );
    }

    #[test]
    fn national_day_2025_merged_with_mid_autumn() {
        let cal = WorkCalendar::china();
        // Tuesday 30 September 18:00 + 1 working day: 6 h on the 30th, eight days off, the
        // 9th and 10th are ordinary working days: due Thursday 9 October 18:00.
        assert_eq!(
            cal.add_working_days(at(2025, 9, 30, 18), 1).unwrap(),
            at(2025, 10, 9, 18)
        );
        // Saturday 11 October is worked.
        assert!(
            cal.is_working_day(NaiveDate::from_ymd_opt(2025, 10, 11).unwrap())
                .unwrap()
        );
        assert_eq!(
            cal.day(NaiveDate::from_ymd_opt(2025, 10, 8).unwrap())
                .map(|d| d.kind),
            Some(DayKind::Holiday)
        );
    }

    #[test]
    fn across_the_year_end() {
        let cal = WorkCalendar::china();
        // Wednesday 31 December 2025 12:00 + 1 working day: 12 h on the 31st, 1–3 January
        // off, Sunday 4 January worked (调休): due Sunday 4 January 12:00.
        assert_eq!(
            cal.add_working_days(at(2025, 12, 31, 12), 1).unwrap(),
            at(2026, 1, 4, 12)
        );
        // 2024 → 2025: Tuesday 31 December 2024 + 1 day is Thursday 2 January 2025.
        assert_eq!(
            cal.add_working_days(at(2024, 12, 31, 8), 1).unwrap(),
            at(2025, 1, 2, 8)
        );
        // Exactly the end of a working day: midnight after it, not the next morning.
        assert_eq!(
            cal.add_working_days(at(2024, 12, 31, 0), 1).unwrap(),
            at(2025, 1, 1, 0)
        );
        // A case reported on a holiday starts counting on the next working day.
        assert_eq!(
            cal.add_working_days(at(2026, 1, 2, 15), 1).unwrap(),
            at(2026, 1, 5, 0)
        );
    }

    #[test]
    fn working_seconds_is_antisymmetric_and_matches_add() {
        let cal = WorkCalendar::china();
        let (a, b) = (at(2024, 9, 13, 7), at(2024, 10, 14, 19));
        let w = cal.working_seconds(a, b).unwrap();
        assert_eq!(cal.working_seconds(b, a).unwrap(), -w);
        assert_eq!(cal.add_working_seconds(a, w).unwrap(), b);
    }

    #[test]
    fn bad_rows_are_located_errors() {
        let e = WorkCalendar::from_csv("date,kind,name,source\n2025-13-01,holiday,x,y\n", "c.csv");
        assert!(e.unwrap_err().to_string().contains("YYYY-MM-DD"));
        let e = WorkCalendar::from_csv("date,kind,name,source\n2025-10-09,workday,x,y\n", "c.csv");
        assert!(e.unwrap_err().to_string().contains("not a weekend day"));
        let e = WorkCalendar::from_csv("date,kind,source\n", "c.csv");
        assert!(e.unwrap_err().to_string().contains("name"));
        let twice = "date,kind,name,source\n2025-10-01,holiday,a,b\n2025-10-01,holiday,a,b\n";
        assert!(WorkCalendar::from_csv(twice, "c.csv").is_err());
    }

    #[test]
    fn a_local_table_overrides_the_bundled_one() {
        let mut cal = WorkCalendar::china();
        let d = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        assert!(cal.is_working_day(d).unwrap());
        cal.extend_csv(
            "date,kind,name,source\n2026-03-02,holiday,local,test\n",
            "local.csv",
        )
        .unwrap();
        assert!(!cal.is_working_day(d).unwrap());
    }

    proptest::proptest! {
        /// Adding the working time between two instants lands on the first instant with that
        /// much working time, never after the second; and adding time then measuring it gives
        /// it back.
        #[test]
        fn add_and_measure_agree(a in 0i64..(3 * 365 * 86_400 - 40 * 86_400), span in 0i64..(30 * 86_400), s in 1i64..(20 * 86_400)) {
            let cal = WorkCalendar::china();
            let start = at(2024, 1, 1, 0);
            let a = start + chrono::Duration::seconds(a);
            let b = a + chrono::Duration::seconds(span);
            let w = cal.working_seconds(a, b).unwrap();
            let back = cal.add_working_seconds(a, w).unwrap();
            proptest::prop_assert!(back <= b);
            proptest::prop_assert_eq!(cal.working_seconds(a, back).unwrap(), w);
            if let Ok(due) = cal.add_working_seconds(a, s) {
                proptest::prop_assert_eq!(cal.working_seconds(a, due).unwrap(), s);
            }
        }
    }
}
