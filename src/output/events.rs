//! `events/`: the grid work loop. Per street, community and grid the cases' counts through
//! the one suppression, and rates, times per step and hot spots from the published counts;
//! per period and per department long tables; `summary.md`. Operational runs also write the
//! card list of open cases and the visit lists of the policy's unit.

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, UInt64Array};
use arrow_schema::Field;
use geo::MultiPolygon;

use crate::analytics::events::{DEPARTMENT_MEASURES, Events, PERIOD_MEASURES, TIMED};
use crate::analytics::hotspots::{gi_star, queen_neighbours};
use crate::error::Result;
use crate::model::Model;
use crate::model::build::Build;
use crate::model::level::Layer;
use crate::output::columns::{ratio, suppressed_column};
use crate::output::release::Release;
use crate::output::{Columns, GeoWriter, parent_columns};
use crate::privacy::{OutputKind, Policy};

/// The directory of the events outputs.
pub const DIR: &str = "events";

type Counts = Vec<Option<u64>>;

fn released(release: &Release, level: Layer, units: usize, name: &str) -> Counts {
    (0..units as u32)
        .map(|u| release.count(level, u, name))
        .collect()
}

fn float(v: Vec<Option<f64>>) -> ArrayRef {
    Arc::new(Float64Array::from(v))
}

/// Writes every `events/` table (see the module docs).
pub(crate) fn write(
    w: &mut GeoWriter<'_>,
    release: &Release,
    build: &Build,
    events: &Events,
    policy: &Policy,
) -> Result<()> {
    let out = w.out;
    out.sub(DIR).create()?;
    let model = &build.model;
    let names = events.count_names();
    let base: Vec<String> = names
        .iter()
        .filter(|n| !n.starts_with("evp_") && !n.starts_with("evd_"))
        .cloned()
        .collect();
    for &level in release.levels() {
        if !Layer::POLYGON_LEVELS.contains(&level) || !model.has(level) {
            continue;
        }
        let cols = level_columns(release, model, events, level, &base, policy);
        let geoms = (0..model.units(level) as u32)
            .map(|u| {
                Some(geo::Geometry::MultiPolygon(
                    model.area_geometry(level, u).clone(),
                ))
            })
            .collect();
        w.write_as(&format!("{DIR}/{}", level.singular()), level, cols, geoms)?;
        if events.has_cases {
            let rel = format!("{DIR}/periods_{}.parquet", level.singular());
            write_columns(out, &rel, period_columns(release, model, events, level))?;
            w.written.files.push(rel);
        }
    }
    if events.has_cases && model.has(Layer::Street) && !events.departments.is_empty() {
        let rel = format!("{DIR}/departments.parquet");
        write_columns(out, &rel, department_columns(release, model, events))?;
        w.written.files.push(rel);
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let files = release.write_tables(model, out, DIR, &refs)?;
    w.written.files.extend(files);
    out.sub(DIR).text(
        "summary.md",
        super::events_summary::summary(release, model, events, policy),
    )?;
    w.written.files.push(format!("{DIR}/summary.md"));
    if policy.kind == OutputKind::Operational {
        let files = super::events_lists::write_lists(&out.sub(DIR), build, events, policy)?;
        w.written
            .files
            .extend(files.into_iter().map(|f| format!("{DIR}/{f}")));
    }
    Ok(())
}

pub(crate) fn write_columns(out: &crate::output::Out, rel: &str, cols: Columns) -> Result<()> {
    let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = cols
        .into_iter()
        .map(|(n, a)| (Field::new(n, a.data_type().clone(), true), a))
        .unzip();
    crate::output::write_table(out, rel, fields, arrays)
}

fn id_columns(model: &Model, level: Layer) -> Columns {
    let units = model.units(level) as u32;
    let mut cols: Columns = vec![(
        format!("{}_id", level.singular()),
        Arc::new(StringArray::from_iter_values(
            (0..units).map(|i| model.code(level, i)),
        )),
    )];
    let lineages: Vec<crate::model::Lineage> =
        (0..units).map(|i| model.lineage(level, i)).collect();
    cols.extend(parent_columns(model, level, &lineages));
    cols
}

/// One level's table: counts, rates, times per step, hot spots (grids).
fn level_columns(
    release: &Release,
    model: &Model,
    events: &Events,
    level: Layer,
    names: &[String],
    policy: &Policy,
) -> Columns {
    let units = model.units(level);
    let mut cols = id_columns(model, level);
    let get = |n: &str| released(release, level, units, n);
    cols.push((
        "residents".into(),
        Arc::new(UInt64Array::from(get("residents"))),
    ));
    for n in names {
        cols.push((n.clone(), Arc::new(UInt64Array::from(get(n)))));
    }
    if events.has_cases {
        let rate = |a: &str, b: &str| float(ratio(&get(a), &get(b), 1.0));
        cols.push((
            "cases_per_1000".into(),
            float(ratio(&get("ev_cases"), &get("residents"), 1000.0)),
        ));
        cols.push(("satisfaction_rate".into(), rate("ev_satisfied", "ev_rated")));
        cols.push((
            "return_visit_rate".into(),
            rate("ev_return_visited", "ev_closed"),
        ));
        cols.push(("repeat_rate".into(), rate("ev_repeated", "ev_cases")));
        for s in TIMED {
            let on = get(&format!("ev_{}_on_time", s.name()));
            let late = get(&format!("ev_{}_late", s.name()));
            let judged: Counts = on
                .iter()
                .zip(&late)
                .map(|(a, b)| Some((*a)? + (*b)?))
                .collect();
            cols.push((
                format!("on_time_rate_{}", s.name()),
                float(ratio(&on, &judged, 1.0)),
            ));
        }
        cols.extend(time_columns(release, model, events, level, policy));
        if level == Layer::Grid && events.finest == Layer::Grid {
            cols.extend(hot_spots(
                model,
                &get("ev_cases"),
                &get("residents"),
                events,
            ));
        }
    }
    if let Some(v) = &events.visits {
        for l in &v.labels {
            let m = |x: &str| get(&format!("visit_{l}_{x}"));
            cols.push((
                format!("visit_{l}_share_made"),
                float(ratio(&m("made"), &m("required"), 1.0)),
            ));
        }
    }
    if policy.kind == OutputKind::Research {
        let mut all: Vec<String> = names.to_vec();
        all.push("residents".into());
        cols.push((
            "suppressed".into(),
            suppressed_column(release, level, units, &all),
        ));
    }
    cols
}

/// Median and 90th percentile hours per step, where the step's timed count is published (and,
/// in research runs, at least k).
fn time_columns(
    release: &Release,
    model: &Model,
    events: &Events,
    level: Layer,
    policy: &Policy,
) -> Columns {
    let units = model.units(level);
    let q = events.quantiles(model, level);
    let mut cols = Columns::new();
    for (t, s) in TIMED.iter().enumerate() {
        let timed = released(release, level, units, &format!("ev_{}_timed", s.name()));
        let ok = |u: usize| {
            timed[u]
                .is_some_and(|n| n > 0 && (policy.kind != OutputKind::Research || n >= policy.k))
        };
        let pick = |f: &dyn Fn(&crate::analytics::events::Quantiles) -> f64| -> ArrayRef {
            float(
                (0..units)
                    .map(|u| {
                        q[u * TIMED.len() + t]
                            .as_ref()
                            .filter(|_| ok(u))
                            .map(|x| f(x) / 3600.0)
                    })
                    .collect(),
            )
        };
        cols.push((format!("median_hours_{}", s.name()), pick(&|x| x.median)));
        cols.push((format!("p90_hours_{}", s.name()), pick(&|x| x.p90)));
    }
    cols
}

/// Gi* of cases per 1,000 residents over queen neighbours, from published counts.
fn hot_spots(model: &Model, cases: &Counts, residents: &Counts, events: &Events) -> Columns {
    let polys: Vec<MultiPolygon<f64>> = model.grids.iter().map(|g| g.geometry.clone()).collect();
    let nb = queen_neighbours(&polys, 0.01);
    let rate = ratio(cases, residents, 1000.0);
    let gi = gi_star(&rate, &nb);
    let z = events.options.hot_spot_z;
    let hot: BooleanArray = gi.iter().map(|g| g.map(|g| g >= z)).collect();
    vec![
        ("cases_gi".into(), float(gi)),
        ("cases_hot".into(), Arc::new(hot)),
    ]
}

/// Long table: unit, period, cases, closed, overdue, and the change in cases against the
/// period before (where both are published).
fn period_columns(release: &Release, model: &Model, events: &Events, level: Layer) -> Columns {
    let units = model.units(level);
    let (mut unit, mut period) = (Vec::new(), Vec::new());
    let mut m: [Vec<Option<u64>>; 3] = Default::default();
    let mut change = Vec::new();
    for u in 0..units as u32 {
        let mut before: Option<(i32, Option<u64>)> = None;
        for (k, label) in &events.periods {
            unit.push(model.code(level, u).to_owned());
            period.push(label.clone());
            for (i, name) in PERIOD_MEASURES.iter().enumerate() {
                m[i].push(release.count(level, u, &Events::period_column(label, name)));
            }
            let now = *m[0].last().expect("pushed");
            let adjacent = before.filter(|(b, _)| previous(events, *k) == Some(*b));
            change.push(match (adjacent, now) {
                (Some((_, Some(b))), Some(n)) => Some(n as i64 - b as i64),
                _ => None,
            });
            before = Some((*k, now));
        }
    }
    let [cases, closed, overdue] = m;
    vec![
        (
            format!("{}_id", level.singular()),
            Arc::new(StringArray::from(unit)),
        ),
        ("period".into(), Arc::new(StringArray::from(period))),
        ("cases".into(), Arc::new(UInt64Array::from(cases))),
        ("closed".into(), Arc::new(UInt64Array::from(closed))),
        ("overdue".into(), Arc::new(UInt64Array::from(overdue))),
        ("cases_change".into(), Arc::new(Int64Array::from(change))),
    ]
}

/// The key of the period just before `k` when it has cases anywhere (else `None`: the change
/// is against an empty period, which has no row).
fn previous(events: &Events, k: i32) -> Option<i32> {
    let i = events.periods.iter().position(|(x, _)| *x == k)?;
    let p = events.periods.get(i.checked_sub(1)?)?.0;
    let step_back = match events.period() {
        crate::analytics::events::Period::Month | crate::analytics::events::Period::Day => k - 1,
        crate::analytics::events::Period::Week => {
            if k % 100 > 1 {
                k - 1
            } else {
                p
            }
        }
    };
    (p == step_back).then_some(p)
}

/// Long table: street, department, cases, handled on time and late, rated, satisfied, and
/// the on-time and satisfaction rates.
fn department_columns(release: &Release, model: &Model, events: &Events) -> Columns {
    let level = Layer::Street;
    let (mut street, mut dept) = (Vec::new(), Vec::new());
    let mut m: [Vec<Option<u64>>; 5] = Default::default();
    for u in 0..model.units(level) as u32 {
        for d in &events.departments {
            street.push(model.code(level, u).to_owned());
            dept.push(d.clone());
            for (i, name) in DEPARTMENT_MEASURES.iter().enumerate() {
                m[i].push(release.count(level, u, &Events::department_column(d, name)));
            }
        }
    }
    let judged: Counts = m[1]
        .iter()
        .zip(&m[2])
        .map(|(a, b)| Some((*a)? + (*b)?))
        .collect();
    let on_time = ratio(&m[1], &judged, 1.0);
    let satisfied = ratio(&m[4], &m[3], 1.0);
    let mut cols: Columns = vec![
        ("street_id".into(), Arc::new(StringArray::from(street))),
        ("department".into(), Arc::new(StringArray::from(dept))),
    ];
    for (name, v) in DEPARTMENT_MEASURES.iter().zip(m) {
        cols.push(((*name).to_owned(), Arc::new(UInt64Array::from(v))));
    }
    cols.push(("on_time_rate_handled".into(), float(on_time)));
    cols.push(("satisfaction_rate".into(), float(satisfied)));
    cols
}
