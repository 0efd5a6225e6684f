//! The operational lists of the grid work loop, for the policy's grid, community or street:
//! `events/cards.parquet` (every open case with its step, deadline, time left and card) and
//! `events/visit_lists.parquet` (each worker's residents overdue for a visit, pseudonymised,
//! most overdue first).

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray};
use arrow_schema::Field;
use chrono::{Datelike, NaiveDate};

use crate::analytics::events::{Card, Events};
use crate::error::Result;
use crate::model::build::Build;
use crate::model::level::Layer;
use crate::output::events::write_columns;
use crate::output::operational::{roster_id, scope_unit, scoped_residents};
use crate::output::person_list::{self, Ident, PersonList, placeholder};
use crate::output::{Columns, Out};
use crate::privacy::Policy;

fn text<S: AsRef<str>>(v: impl IntoIterator<Item = Option<S>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(v))
}

fn date32(d: Option<NaiveDate>) -> Option<i32> {
    d.map(|d| d.num_days_from_ce() - 719_163)
}

/// Writes the lists; returns their file names.
///
/// # Errors
/// [`Error::Privacy`](crate::Error::Privacy) without a scope or a key; write errors.
pub(crate) fn write_lists(
    out: &Out,
    build: &Build,
    events: &Events,
    policy: &Policy,
) -> Result<Vec<String>> {
    let mut files = Vec::new();
    if events.has_cases {
        write_columns(out, "cards.parquet", cards(build, events, policy)?)?;
        files.push("cards.parquet".into());
    }
    if events.visits.is_some() {
        let list = visit_list(out, build, events, policy)?;
        let key = crate::output::operational::key(policy)?;
        files.extend(person_list::write(out, "", &build.job, key, list)?);
    }
    Ok(files)
}

fn card_name(c: Card) -> &'static str {
    match c {
        Card::Green => "green",
        Card::Yellow => "yellow",
        Card::Red => "red",
    }
}

fn unit_codes(build: &Build, events: &Events, units: &[u32]) -> Columns {
    let model = &build.model;
    let mut cols = Columns::new();
    for l in Layer::POLYGON_LEVELS.iter().rev() {
        if model.has(*l) {
            let codes = units
                .iter()
                .map(|u| events.unit_at(model, *u, *l).map(|x| model.code(*l, x)));
            cols.push((format!("{}_id", l.singular()), text(codes)));
        }
    }
    cols
}

/// Every open case of the scope: red first, then by the time left.
fn cards(build: &Build, events: &Events, policy: &Policy) -> Result<Columns> {
    let model = &build.model;
    let (layer, scope) = scope_unit(model, policy)?;
    let as_of = events.rules.as_of;
    let hours_left = |c: &crate::analytics::events::OpenCase| {
        c.deadline
            .map(|d| (d - as_of).num_seconds() as f64 / 3600.0)
    };
    let mut open: Vec<_> = events
        .open
        .iter()
        .filter(|c| events.unit_at(model, c.unit, layer) == Some(scope))
        .collect();
    open.sort_by(|a, b| {
        let key = |c: &crate::analytics::events::OpenCase| {
            (
                std::cmp::Reverse(c.card),
                hours_left(c).map(|h| (h * 1000.0) as i64),
            )
        };
        key(a).cmp(&key(b)).then(a.row.cmp(&b.row))
    });
    let mut cols: Columns = vec![
        (
            "case_id".into(),
            text(open.iter().map(|c| Some(c.id.as_str()))),
        ),
        (
            "category".into(),
            text(open.iter().map(|c| Some(c.category.as_str()))),
        ),
        (
            "department".into(),
            text(open.iter().map(|c| c.department.as_deref())),
        ),
        (
            "step".into(),
            text(open.iter().map(|c| c.step.map(|s| s.name()))),
        ),
        (
            "since".into(),
            text(open.iter().map(|c| c.since.map(|t| t.to_string()))),
        ),
        (
            "deadline".into(),
            text(open.iter().map(|c| c.deadline.map(|t| t.to_string()))),
        ),
        (
            "hours_left".into(),
            Arc::new(Float64Array::from_iter(open.iter().map(|c| hours_left(c)))),
        ),
        (
            "card".into(),
            text(open.iter().map(|c| Some(card_name(c.card)))),
        ),
        (
            "reopened".into(),
            Arc::new(BooleanArray::from_iter(
                open.iter().map(|c| Some(c.reopened)),
            )),
        ),
    ];
    let units: Vec<u32> = open.iter().map(|c| c.unit).collect();
    cols.extend(unit_codes(build, events, &units));
    if policy.plain_identifiers {
        cols.push(("text".into(), text(open.iter().map(|c| c.text.as_deref()))));
    }
    Ok(cols)
}

/// Each worker's overdue residents in the scope, pseudonymised, most overdue first.
fn visit_list(out: &Out, build: &Build, events: &Events, policy: &Policy) -> Result<PersonList> {
    let v = events.visits.as_ref().expect("visits");
    let people = scoped_residents(build, policy)?;
    let by: foldhash::HashMap<usize, usize> = people
        .iter()
        .enumerate()
        .map(|(i, p)| (p.resident, i))
        .collect();
    let mut rows: Vec<(&crate::analytics::events::Overdue, usize)> = v
        .overdue
        .iter()
        .filter_map(|o| Some((o, *by.get(&(o.resident as usize))?)))
        .collect();
    rows.sort_by(|a, b| {
        (a.0.worker.as_deref(), std::cmp::Reverse(a.0.overdue_days))
            .cmp(&(b.0.worker.as_deref(), std::cmp::Reverse(b.0.overdue_days)))
    });
    let p = |i: usize| &people[i];
    let mut cols: Columns = vec![
        (
            "worker".into(),
            text(rows.iter().map(|(o, _)| o.worker.as_deref())),
        ),
        ("resident_key".into(), placeholder(rows.len())),
        (
            "household_key".into(),
            text(rows.iter().map(|(_, i)| Some(p(*i).household_key.as_str()))),
        ),
    ];
    let mut idents = vec![("resident_key".to_owned(), Ident::Key)];
    if policy.plain_identifiers {
        cols.push(("resident_id".into(), placeholder(rows.len())));
        idents.push(("resident_id".into(), Ident::Column(roster_id(build)?)));
    }
    cols.push((
        "rule".into(),
        text(rows.iter().map(|(o, _)| Some(v.labels[o.rule].as_str()))),
    ));
    cols.push((
        "every_days".into(),
        Arc::new(Int64Array::from_iter_values(
            rows.iter()
                .map(|(o, _)| i64::from(v.rules[o.rule].every_days)),
        )),
    ));
    cols.push((
        "last_visit".into(),
        Arc::new(Date32Array::from_iter(
            rows.iter().map(|(o, _)| date32(o.last_visit)),
        )),
    ));
    cols.push((
        "days_since".into(),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|(o, _)| o.days_since),
        )),
    ));
    cols.push((
        "overdue_days".into(),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|(o, _)| o.overdue_days),
        )),
    ));
    let units: Vec<u32> = rows.iter().map(|(o, _)| o.unit).collect();
    cols.extend(unit_codes(build, events, &units));
    let of_rows = rows.iter().map(|(_, i)| Some(p(*i).row)).collect();
    let columns = cols
        .into_iter()
        .map(|(n, a)| (Field::new(n, a.data_type().clone(), true), a))
        .unzip();
    Ok(PersonList::new(
        out,
        "visit_lists",
        false,
        columns,
        of_rows,
        idents,
    ))
}
