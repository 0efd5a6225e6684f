//! The finish of the cases: the merged partial as count columns of the one release (every
//! level, every period, every department), durations per step per unit, the open cases.

use chrono::NaiveDateTime;

use super::deadlines::Card;
use super::durations::Quantiles;
use super::options::{EventsOptions, Period};
use super::rules::Rules;
use super::steps::Step;
use super::tally::{CASES, DEPARTMENT_MEASURES, FIXED, PERIOD_MEASURES, SOURCES, TIMED, Tally};
use super::visit_log::Visits;
use crate::analytics::counts::{CountColumns, LEVELS};
use crate::model::Model;
use crate::model::level::Layer;
use crate::model::quality::{LayerCount, QualityIssue};
use crate::privacy::Sensitivity;

/// Groups (a total and its parts) and nested pairs (sub, sup) of count columns.
type Relations = (Vec<(usize, Vec<usize>)>, Vec<(usize, usize)>);

/// An open case, for the operational card list.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OpenCase {
    /// The case's id.
    pub id: String,
    /// Its 0-based data row.
    pub row: u32,
    /// Its unit of the finest polygon level.
    pub unit: u32,
    /// Its category.
    pub category: String,
    /// The department it is assigned to.
    pub department: Option<String>,
    /// The step it waits for (`None`: every step done, not closed).
    pub step: Option<Step>,
    /// When the step's time began (the step before it).
    pub since: Option<NaiveDateTime>,
    /// The step's deadline, when it has a limit.
    pub deadline: Option<NaiveDateTime>,
    /// Its card at `as_of`.
    pub card: Card,
    /// Whether it was reopened.
    pub reopened: bool,
    /// Its free text, when kept.
    pub text: Option<String>,
}

/// The cases of a run, merged and finished.
#[derive(Debug, Clone)]
pub struct Events {
    /// The rules the cases were judged by.
    pub rules: Rules,
    /// The options.
    pub options: EventsOptions,
    /// The level cases were placed in.
    pub finest: Layer,
    /// The merged partial.
    pub tally: Tally,
    /// Open cases, in row order.
    pub open: Vec<OpenCase>,
    /// Rows rejected and warnings, in row order.
    pub issues: Vec<QualityIssue>,
    /// Rows read, placed and rejected.
    pub count: LayerCount,
    /// Periods with cases (key, label), in order.
    pub periods: Vec<(i32, String)>,
    /// Departments with cases, sorted.
    pub departments: Vec<String>,
    /// Visits to special-needs residents, when the job has a visit log.
    pub visits: Option<Visits>,
    /// Whether the job has cases (`[layers.events]`); without, only visits are counted.
    pub has_cases: bool,
}

impl Events {
    pub(crate) fn new(
        rules: Rules,
        options: EventsOptions,
        finest: Layer,
        mut tally: Tally,
        open: Vec<OpenCase>,
        issues: Vec<QualityIssue>,
        count: LayerCount,
    ) -> Events {
        // Grouped once: every level's quantiles are read from the runs.
        tally.durations.compact();
        let period = options.period;
        let periods = tally
            .periods
            .keys()
            .map(|k| (*k, period.key_label(*k)))
            .collect();
        let departments = tally.department_names();
        Events {
            rules,
            options,
            finest,
            tally,
            open,
            issues,
            count,
            periods,
            departments,
            visits: None,
            has_cases: true,
        }
    }

    /// No cases: the rules and options only, for a job with a visit log and no cases table.
    pub fn without_cases(
        rules: Rules,
        options: EventsOptions,
        finest: Layer,
        units: usize,
    ) -> Events {
        let tally = Tally::new(units, rules.categories.len());
        let mut e = Events::new(
            rules,
            options,
            finest,
            tally,
            Vec::new(),
            Vec::new(),
            LayerCount::default(),
        );
        e.has_cases = false;
        e
    }

    /// The period cases are counted by.
    pub fn period(&self) -> Period {
        self.options.period
    }

    /// The count column of period `label` and measure (`cases`, `closed`, `overdue`).
    pub fn period_column(label: &str, measure: &str) -> String {
        format!("evp_{label}_{measure}")
    }

    /// The count column of department `d` and measure ([`DEPARTMENT_MEASURES`]).
    pub fn department_column(d: &str, measure: &str) -> String {
        format!("evd_{d}_{measure}")
    }

    /// Every count column's name, in release order.
    pub fn count_names(&self) -> Vec<String> {
        let mut names = match self.has_cases {
            true => Tally::names(&self.rules.categories),
            false => Vec::new(),
        };
        for (_, label) in &self.periods {
            names.extend(
                PERIOD_MEASURES
                    .iter()
                    .map(|m| Self::period_column(label, m)),
            );
        }
        for d in &self.departments {
            names.extend(
                DEPARTMENT_MEASURES
                    .iter()
                    .map(|m| Self::department_column(d, m)),
            );
        }
        if let Some(v) = &self.visits {
            names.extend(v.count_names());
        }
        names
    }

    /// The finest unit's row of every column.
    fn finest_rows(&self) -> Vec<Vec<u64>> {
        let t = &self.tally;
        (0..t.units())
            .map(|u| {
                let cases = if self.has_cases { t.width() } else { 0 };
                let mut row: Vec<u64> = (0..cases).map(|c| t.count(u, c)).collect();
                for (k, _) in &self.periods {
                    row.extend(t.periods[k][u]);
                }
                for d in &self.departments {
                    row.extend(t.department(d).expect("a department of the tally")[u]);
                }
                if let Some(v) = &self.visits {
                    row.extend(v.row(u));
                }
                row
            })
            .collect()
    }

    /// `base` with the events' count columns appended: per unit of every level, rolled up
    /// from the finest level; sensitive, published down to grids; unbounded (one resident
    /// may report many cases), so a differentially private release leaves them out.
    pub fn columns(&self, model: &Model, mut base: CountColumns) -> CountColumns {
        let names = self.count_names();
        let width = names.len();
        let rows = self.finest_rows();
        let values = LEVELS.map(|l| {
            let n = if model.has(l) { model.units(l) } else { 0 };
            let mut v = vec![vec![0u64; width]; n];
            if Layer::POLYGON_LEVELS.contains(&l) {
                for (u, row) in rows.iter().enumerate() {
                    if let Some(p) = self.unit_at(model, u as u32, l) {
                        for (a, b) in v[p as usize].iter_mut().zip(row) {
                            *a += b;
                        }
                    }
                }
            }
            v
        });
        let (groups, nested) = self.relations(&names);
        base.append(CountColumns {
            classes: vec![Sensitivity::Sensitive; width],
            finest: vec![self.finest; width],
            table: vec!["events"; width],
            bound: vec![None; width],
            groups,
            nested,
            values,
            names,
        });
        base
    }

    /// The unit at `level` of unit `u` of the finest level.
    pub fn unit_at(&self, model: &Model, u: u32, level: Layer) -> Option<u32> {
        if level == self.finest {
            Some(u)
        } else {
            model.lineage(self.finest, u).at(level)
        }
    }

    /// Groups (parts that add up to a total) and nested pairs, in the columns' own indices.
    fn relations(&self, names: &[String]) -> Relations {
        let ix = |n: &str| names.iter().position(|x| x == n).expect("a column of ours");
        if !self.has_cases {
            let nested = self
                .visits
                .as_ref()
                .map(|v| v.nested(&ix))
                .unwrap_or_default();
            return (Vec::new(), nested);
        }
        let cats = FIXED.len()..FIXED.len() + self.rules.categories.len();
        let srcs = cats.end..cats.end + SOURCES.len();
        // A column is a part of one group at most: open + closed = cases is given as two
        // nested pairs, which protect each from the other as well.
        let mut groups = vec![
            (
                ix("ev_open"),
                vec![ix("ev_green"), ix("ev_yellow"), ix("ev_red")],
            ),
            (CASES, cats.collect()),
            (CASES, srcs.collect()),
        ];
        let per: Vec<usize> = self
            .periods
            .iter()
            .map(|(_, l)| ix(&Self::period_column(l, "cases")))
            .collect();
        if !per.is_empty() {
            groups.push((CASES, per));
        }
        let mut nested = vec![
            (ix("ev_open"), CASES),
            (ix("ev_closed"), CASES),
            (ix("ev_red"), ix("ev_overdue")),
            (ix("ev_satisfied"), ix("ev_rated")),
            (ix("ev_reopened"), ix("ev_open")),
            (ix("ev_return_visited"), ix("ev_closed")),
        ];
        for s in TIMED {
            let timed = ix(&format!("ev_{}_timed", s.name()));
            nested.push((ix(&format!("ev_{}_on_time", s.name())), timed));
            nested.push((ix(&format!("ev_{}_late", s.name())), timed));
        }
        for (_, l) in &self.periods {
            let cases = ix(&Self::period_column(l, "cases"));
            nested.push((ix(&Self::period_column(l, "closed")), cases));
            nested.push((ix(&Self::period_column(l, "overdue")), cases));
        }
        if let Some(v) = &self.visits {
            nested.extend(v.nested(&ix));
        }
        (groups, nested)
    }

    /// Median and 90th percentile of each timed step's clock time, per unit of `level`
    /// (`unit × TIMED` order), from the merged durations.
    pub fn quantiles(&self, model: &Model, level: Layer) -> Vec<Option<Quantiles>> {
        let d = &self.tally.durations;
        if level == self.finest {
            return d.finish();
        }
        let parent: Vec<Option<u32>> = (0..self.tally.units() as u32)
            .map(|u| self.unit_at(model, u, level))
            .collect();
        d.finish_rolled_up(TIMED.len(), &parent, model.units(level))
    }
}
