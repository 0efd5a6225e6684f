//! The cases' partial per unit of the finest polygon level: counts, counts per period and per
//! department, durations per step, and what repeats need. Partials merge by adding cells and
//! concatenating lists, so the result does not depend on how the cases were split.

use std::collections::BTreeMap;

use super::cases::{Case, Status};
use super::classes::CaseSource;
use super::deadlines::Card;
use super::durations::Durations;
use super::options::Period;
use super::steps::Step;

/// The fixed count columns, in order (then one per category, one per source, three per
/// timed step).
pub const FIXED: [&str; 13] = [
    "ev_cases",
    "ev_open",
    "ev_closed",
    "ev_green",
    "ev_yellow",
    "ev_red",
    "ev_overdue",
    "ev_reopened",
    "ev_repeated",
    "ev_rated",
    "ev_satisfied",
    "ev_return_visited",
    "ev_with_resident",
];
pub(crate) const CASES: usize = 0;
const OPEN: usize = 1;
const CLOSED: usize = 2;
const GREEN: usize = 3;
const YELLOW: usize = 4;
const RED: usize = 5;
const OVERDUE: usize = 6;
const REOPENED: usize = 7;
pub(crate) const REPEATED: usize = 8;
const RATED: usize = 9;
const SATISFIED: usize = 10;
const RETURN_VISITED: usize = 11;
const WITH_RESIDENT: usize = 12;

/// The steps with a time from the step before them: every step but `discovered`.
pub const TIMED: [Step; 5] = [
    Step::Reported,
    Step::Assigned,
    Step::Handled,
    Step::FedBack,
    Step::Visited,
];

/// Sources in column order.
pub const SOURCES: [CaseSource; 4] = [
    CaseSource::Patrol,
    CaseSource::App,
    CaseSource::Hotline,
    CaseSource::Other,
];

/// Per period: cases, closed, overdue.
pub const PERIOD_MEASURES: [&str; 3] = ["cases", "closed", "overdue"];
/// Per department: cases, handled in time, handled late, rated, satisfied.
pub const DEPARTMENT_MEASURES: [&str; 5] = ["cases", "on_time", "late", "rated", "satisfied"];

/// A place and category at a time, for repeats: (category, place, first time, unit).
pub(crate) type Sighting = (u16, u64, i64, u32);

/// The partial of the cases of one split (a chunk, a thread, a machine).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Tally {
    units: usize,
    width: usize,
    categories: usize,
    /// `units × width` counts.
    pub(crate) counts: Vec<u64>,
    /// Period key → per unit [`PERIOD_MEASURES`].
    pub(crate) periods: BTreeMap<i32, Vec<[u64; 3]>>,
    /// Departments in the order first seen, with their index in `department_counts`.
    department_ids: foldhash::HashMap<String, u32>,
    /// Per department (by index), per unit [`DEPARTMENT_MEASURES`].
    department_counts: Vec<Vec<[u64; 5]>>,
    /// Clock seconds per unit × timed step.
    pub(crate) durations: Durations,
    /// One list per chunk folded in (each allocated once, at its size: no list is copied
    /// as it grows).
    pub(crate) sightings: Vec<Vec<Sighting>>,
}

impl Tally {
    /// An empty partial over `units` units and `categories` categories.
    pub fn new(units: usize, categories: usize) -> Tally {
        let width = Tally::width_for(categories);
        Tally {
            units,
            width,
            categories,
            counts: vec![0; units * width],
            periods: BTreeMap::new(),
            department_ids: Default::default(),
            department_counts: Vec::new(),
            durations: Durations::new(units * TIMED.len()),
            sightings: Vec::new(),
        }
    }

    /// The number of count columns.
    pub fn width_for(categories: usize) -> usize {
        FIXED.len() + categories + SOURCES.len() + 3 * TIMED.len()
    }

    /// The count column names for `categories`.
    pub fn names(categories: &[String]) -> Vec<String> {
        let mut n: Vec<String> = FIXED.iter().map(|s| (*s).to_owned()).collect();
        n.extend(categories.iter().map(|c| format!("ev_cat_{c}")));
        n.extend(SOURCES.iter().map(|s| format!("ev_src_{}", s.name())));
        for s in TIMED {
            for m in ["timed", "on_time", "late"] {
                n.push(format!("ev_{}_{m}", s.name()));
            }
        }
        n
    }

    /// The column of timed step `t` (index into [`TIMED`]) and measure 0 (timed), 1 (on
    /// time) or 2 (late).
    pub(crate) fn step_column(&self, t: usize, m: usize) -> usize {
        FIXED.len() + self.categories + SOURCES.len() + 3 * t + m
    }

    /// Units counted over.
    pub fn units(&self) -> usize {
        self.units
    }

    /// Count columns.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The count of column `c` in unit `u`.
    pub fn count(&self, u: usize, c: usize) -> u64 {
        self.counts[u * self.width + c]
    }

    /// Folds one case in; `category` is its class's category.
    pub(crate) fn add(
        &mut self,
        c: &Case<'_>,
        category: u16,
        period: Period,
        first: chrono::NaiveDate,
    ) {
        let u = c.unit as usize;
        let base = u * self.width;
        let mut inc = |col: usize| self.counts[base + col] += 1;
        inc(CASES);
        let closed = c.status == Status::Closed;
        inc(if closed { CLOSED } else { OPEN });
        if !closed {
            inc(match c.current.map(|x| x.3) {
                Some(Card::Red) => RED,
                Some(Card::Yellow) => YELLOW,
                _ => GREEN,
            });
        }
        if c.overdue {
            inc(OVERDUE);
        }
        if c.status == Status::Reopened {
            inc(REOPENED);
        }
        if let Some(s) = c.satisfaction {
            inc(RATED);
            if s.counts_as_satisfied() {
                inc(SATISFIED);
            }
        }
        if closed && c.durations[Step::Visited as usize].is_some() {
            inc(RETURN_VISITED);
        }
        if c.resident.is_some() {
            inc(WITH_RESIDENT);
        }
        inc(FIXED.len() + category as usize);
        inc(FIXED.len()
            + self.categories
            + SOURCES.iter().position(|s| *s == c.source).unwrap_or(3));
        for (t, step) in TIMED.iter().enumerate() {
            let s = *step as usize;
            if let Some(d) = c.durations[s] {
                let col = self.step_column(t, 0);
                self.counts[base + col] += 1;
                self.durations.push(u * TIMED.len() + t, d);
            }
            if let Some(ok) = c.on_time[s] {
                let col = self.step_column(t, if ok { 1 } else { 2 });
                self.counts[base + col] += 1;
            }
        }
        let units = self.units;
        let p = self
            .periods
            .entry(period.key(first))
            .or_insert_with(|| vec![[0; 3]; units]);
        p[u][0] += 1;
        p[u][1] += u64::from(closed);
        p[u][2] += u64::from(c.overdue);
        if let Some(d) = c.department {
            let dep = self.department_mut(d);
            let handled = c.on_time[Step::Handled as usize];
            let row = &mut dep[u];
            row[0] += 1;
            row[1] += u64::from(handled == Some(true));
            row[2] += u64::from(handled == Some(false));
            row[3] += u64::from(c.satisfaction.is_some());
            row[4] += u64::from(c.satisfaction.is_some_and(|s| s.counts_as_satisfied()));
        }
        if self.sightings.is_empty() {
            self.sightings.push(Vec::new());
        }
        let s = self.sightings.last_mut().expect("a list");
        s.push((category, c.place, c.first, c.unit));
    }

    /// The counts of department `d`, added when it is new (one lookup for a known one).
    fn department_mut(&mut self, d: &str) -> &mut Vec<[u64; 5]> {
        let k = match self.department_ids.get(d) {
            Some(k) => *k as usize,
            None => {
                let k = self.department_counts.len();
                self.department_ids.insert(d.to_owned(), k as u32);
                self.department_counts.push(vec![[0; 5]; self.units]);
                k
            }
        };
        &mut self.department_counts[k]
    }

    /// The departments named, sorted.
    pub(crate) fn department_names(&self) -> Vec<String> {
        let mut n: Vec<String> = self.department_ids.keys().cloned().collect();
        n.sort();
        n
    }

    /// Per unit [`DEPARTMENT_MEASURES`] of department `d` (`None` when no case names it).
    pub(crate) fn department(&self, d: &str) -> Option<&[[u64; 5]]> {
        let k = *self.department_ids.get(d)? as usize;
        Some(&self.department_counts[k])
    }

    /// Makes room for the cases of a chunk of `rows` rows: new lists of their size for the
    /// sightings and the durations.
    pub(crate) fn reserve(&mut self, rows: usize) {
        self.sightings.push(Vec::with_capacity(rows));
        self.durations.reserve(rows * TIMED.len());
    }

    /// Seals what the chunks folded in so far added: durations grouped, sightings sorted
    /// (the finish then merges sorted runs).
    pub(crate) fn seal(&mut self) {
        self.durations.compact();
        for s in &mut self.sightings {
            if !s.is_sorted() {
                s.sort_unstable();
            }
        }
    }

    /// Folds another partial of the same units and categories in.
    ///
    /// # Panics
    /// The partials count over different units or categories (a programming error).
    pub fn merge(&mut self, other: Tally) {
        assert_eq!((self.units, self.width), (other.units, other.width));
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        let units = self.units;
        let add = |mine: &mut Vec<[u64; 3]>, theirs: &[[u64; 3]]| {
            for (a, b) in mine.iter_mut().zip(theirs) {
                for k in 0..3 {
                    a[k] += b[k];
                }
            }
        };
        for (k, v) in other.periods {
            add(
                self.periods.entry(k).or_insert_with(|| vec![[0; 3]; units]),
                &v,
            );
        }
        let mut names: Vec<(String, u32)> = other.department_ids.into_iter().collect();
        names.sort_by_key(|n| n.1);
        for ((d, _), v) in names.into_iter().zip(other.department_counts) {
            let mine = self.department_mut(&d);
            for (a, b) in mine.iter_mut().zip(&v) {
                for k in 0..5 {
                    a[k] += b[k];
                }
            }
        }
        self.durations.merge(other.durations);
        self.sightings.extend(other.sightings);
    }

    /// Counts repeats once, on the merged partial: a case repeats when an earlier case of
    /// the same category at the same place was first recorded at most `days` days before
    /// it. Each repeat counts in its own unit.
    pub(crate) fn count_repeats(&mut self, days: u32) {
        let lists = std::mem::take(&mut self.sightings);
        let mut s = Vec::with_capacity(lists.iter().map(Vec::len).sum());
        for l in lists {
            s.extend_from_slice(&l);
        }
        // A stable merge sort: it merges the sorted runs the parts left.
        rayon::slice::ParallelSliceMut::par_sort(&mut s[..]);
        let window = i64::from(days) * 86_400;
        for w in s.windows(2) {
            let (a, b) = (w[0], w[1]);
            if a.0 == b.0 && a.1 == b.1 && b.2 - a.2 <= window {
                self.counts[b.3 as usize * self.width + REPEATED] += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::events::cases::Case;

    fn case(unit: u32, status: Status, first: i64, dept: Option<&'static str>) -> Case<'static> {
        let mut durations = [None; 6];
        durations[Step::Handled as usize] = Some(3600 * (1 + unit as i64));
        let mut on_time = [None; 6];
        on_time[Step::Handled as usize] = Some(unit % 2 == 0);
        Case {
            row: unit,
            id: "c",
            unit,
            class: 0,
            source: CaseSource::App,
            status,
            satisfaction: None,
            department: dept,
            resident: None,
            place: 7,
            first,
            durations,
            on_time,
            overdue: unit == 1,
            current: None,
            text: None,
        }
    }

    #[test]
    fn two_partials_merged_equal_one_pass() {
        let day = chrono::NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
        let cases = [
            case(0, Status::Closed, 0, Some("城管")),
            case(1, Status::Open, 86_400, Some("住建")),
            case(0, Status::Reopened, 2 * 86_400, None),
            case(2, Status::Closed, 40 * 86_400, Some("城管")),
        ];
        let mut one = Tally::new(3, 2);
        for c in &cases {
            one.add(c, 1, Period::Month, day);
        }
        let (mut a, mut b) = (Tally::new(3, 2), Tally::new(3, 2));
        for (i, c) in cases.iter().enumerate() {
            let t = if i % 2 == 0 { &mut a } else { &mut b };
            t.add(c, 1, Period::Month, day);
        }
        b.merge(a);
        for t in [&mut one, &mut b] {
            t.count_repeats(30);
        }
        assert_eq!(one.counts, b.counts);
        assert_eq!(one.department_names(), b.department_names());
        for d in one.department_names() {
            assert_eq!(one.department(&d), b.department(&d));
        }
        assert_eq!(one.periods, b.periods);
        assert_eq!(one.durations.clone().finish(), b.durations.clone().finish());
        // Unit 0: a closed case and a reopened (open) one; the reopened repeats the first.
        assert_eq!(
            (
                one.count(0, CASES),
                one.count(0, OPEN),
                one.count(0, CLOSED)
            ),
            (2, 1, 1)
        );
        assert_eq!((one.count(0, REOPENED), one.count(0, REPEATED)), (1, 1));
        // Unit 1's case repeats unit 0's (same place, one day later); unit 2's is 40 days on.
        assert_eq!((one.count(1, REPEATED), one.count(2, REPEATED)), (1, 0));
        assert_eq!(
            one.department("城管").unwrap()[0][0] + one.department("城管").unwrap()[2][0],
            2
        );
    }
}
