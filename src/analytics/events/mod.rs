//! The grid work loop (发现 → 上报 → 交办 → 处置 → 反馈 → 回访): cases move through steps,
//! each with a deadline; a step near its deadline gets a yellow card and one past it a red
//! card (digital city management, GB/T 30428). See `docs/events.md`.
//!
//! * [`WorkCalendar`] — China's working days as data: weekends, the public holidays and the
//!   weekend days worked instead (调休), year by year, each row with its source.
//! * [`Classification`] — categories and sub-categories of cases, as data (the major classes
//!   of GB/T 30428.2 and community-governance extensions); [`CaseSource`] and
//!   [`Satisfaction`] as offices write them.
//! * [`Limit`] — a step's limit in clock hours or in working days, and its deadline;
//!   [`DeadlineTable`] — limits per category, sub-category and step, as data.
//! * [`Step`] — the loop's steps; [`parse_timestamp`] reads their times as offices write them
//!   and [`check_steps`] checks a case's times (order, nothing after `as_of`).
//! * [`Durations`] — times per step per unit, a partial that merges exactly; its finish gives
//!   medians and 90th percentiles as pandas computes them ([`quantile`]).
//! * [`VisitRules`] — how often special-needs residents must be visited, as data;
//!   [`visit_standing`] — a resident's visits made, days since the last, days overdue.
//! * [`CardRule`] — the yellow share of a limit and the [`Card`] of a step at an `as_of` time.
//! * [`EventLayer`], [`VisitLayer`], [`EventsOptions`] — the job's `[layers.events]`,
//!   `[layers.visits]` and `[events]`.
//! * [`read_events`] — the cases read chunk by chunk against the frame, placed, judged and
//!   folded into a [`Tally`] per unit; [`Events`] is the finished result, with its count
//!   columns for the one release.
//! * [`read_visits`] — the visit log against the visit rules: [`Visits`].
//! * [`RosterIds`] — the roster's ids, collected while the roster streams, to link cases and
//!   visits to residents.

mod calendar;
mod cases;
mod classes;
mod deadlines;
mod durations;
mod options;
mod partial;
mod pass;
mod read;
mod result;
mod roster_ids;
mod rules;
mod steps;
mod tables;
mod tally;
mod visit_log;
mod visits;

pub use calendar::{CalendarDay, DayKind, WorkCalendar};
pub use classes::{CaseSource, Class, Classification, Satisfaction};
pub use deadlines::{Card, CardRule, DeadlineRow, DeadlineTable, Limit};
pub use durations::{Durations, Quantiles, quantile};
pub(crate) use options::check_events;
pub use options::{EventLayer, EventsOptions, Period, VisitLayer};
pub use partial::{CaseFolder, CasesPartial, first_rows};
pub use read::read_events;
pub use result::{Events, OpenCase};
pub use roster_ids::RosterIds;
pub use rules::Rules;
pub use steps::{Step, StepProblem, check_steps, parse_timestamp};
pub use tally::{DEPARTMENT_MEASURES, FIXED, PERIOD_MEASURES, SOURCES, TIMED, Tally};
pub use visit_log::{Overdue, VISIT_MEASURES, Visits, read_visits};
pub use visits::{VisitRule, VisitRules, VisitStanding, visit_standing};
