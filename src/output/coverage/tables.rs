//! The coverage tables beside the per-unit ones: blind spots, equity (Gini, Lorenz), the rules
//! in force and siting.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, StringArray, UInt32Array, UInt64Array};
use arrow_schema::{DataType, Field};
use geo::{Geometry, Point};

use super::{Blind, DIR, LevelView, measure_columns, u64s};
use crate::analytics::coverage::Coverage;
use crate::analytics::coverage::Siting;
use crate::analytics::coverage::fca::{gini, lorenz};
use crate::error::Result;
use crate::model::Model;
use crate::model::level::Layer;
use crate::output::{Columns, GeoWriter, parent_columns, write_table};
use crate::privacy::{OutputKind, Policy};

pub(super) fn write_rules(dir: &crate::output::Out, cov: &Coverage) -> Result<()> {
    let r = &cov.rules.rules;
    let why = |id: String| {
        cov.unavailable
            .iter()
            .find(|(x, _)| *x == id)
            .map(|x| x.1.clone())
    };
    write_table(
        dir,
        "rules.parquet",
        vec![
            Field::new("rule", DataType::Utf8, false),
            Field::new("facility", DataType::Utf8, false),
            Field::new("target", DataType::Utf8, false),
            Field::new("thresholds_m", DataType::Utf8, false),
            Field::new("standard_m", DataType::Float64, false),
            Field::new("source", DataType::Utf8, false),
            Field::new("version", DataType::Utf8, false),
            Field::new("not_computed", DataType::Utf8, true),
        ],
        vec![
            Arc::new(StringArray::from_iter_values(r.iter().map(|x| x.id()))),
            Arc::new(StringArray::from_iter_values(
                r.iter().map(|x| x.facility.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                r.iter().map(|x| x.target.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(r.iter().map(|x| {
                x.thresholds_m
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            }))),
            Arc::new(Float64Array::from_iter_values(
                r.iter().map(|x| x.standard_m),
            )),
            Arc::new(StringArray::from_iter_values(
                r.iter().map(|x| x.source.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                r.iter().map(|_| cov.rules.version.as_str()),
            )),
            Arc::new(r.iter().map(|x| why(x.id())).collect::<StringArray>()),
        ],
    )
}

/// `coverage/blind_spots.parquet`: every grid that is a blind spot for a measure.
pub(super) fn write_blind_spots(
    dir: &crate::output::Out,
    model: &Model,
    cov: &Coverage,
    blind: &[Blind],
) -> Result<()> {
    let unit = |u: u32| &model.grids[u as usize];
    let mut fields = vec![
        Field::new("grid_id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, true),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            blind.iter().map(|b| unit(b.0).id.as_str()),
        )),
        Arc::new(
            blind
                .iter()
                .map(|b| unit(b.0).name.as_deref())
                .collect::<StringArray>(),
        ),
    ];
    let lineages: Vec<crate::model::Lineage> = blind.iter().map(|b| unit(b.0).lineage).collect();
    for (name, array) in parent_columns(model, Layer::Grid, &lineages) {
        fields.push(Field::new(name, DataType::Utf8, true));
        cols.push(array);
    }
    let measures: Vec<usize> = blind.iter().map(|b| b.1).collect();
    measure_columns(cov, &measures, true, &mut fields, &mut cols);
    fields.extend([
        Field::new("target", DataType::UInt64, false),
        Field::new("covered", DataType::UInt64, true),
        Field::new("share_covered", DataType::Float64, false),
    ]);
    cols.extend([
        Arc::new(UInt64Array::from_iter_values(blind.iter().map(|b| b.3))) as ArrayRef,
        Arc::new(UInt64Array::from(
            blind.iter().map(|b| b.4).collect::<Vec<_>>(),
        )),
        Arc::new(Float64Array::from_iter_values(blind.iter().map(|b| b.2))),
    ]);
    write_table(dir, "blind_spots.parquet", fields, cols)
}

/// Gini per (measure, method) across grids: (measure, method, grids, Gini).
pub(super) type Equity<'a> = (usize, &'a str, usize, Option<f64>);
/// A Lorenz curve point: (measure, method, point, population share, accessibility share).
pub(super) type Curve<'a> = (usize, &'a str, usize, f64, f64);

/// Equity across grids from the published grid views: each accessibility method's Gini and
/// Lorenz curve, weighted by the grids' target residents.
pub(super) fn equity<'a>(
    cov: &'a Coverage,
    grid_views: &[(usize, &LevelView)],
) -> (Vec<Equity<'a>>, Vec<Curve<'a>>) {
    let methods = cov.accessibility.methods();
    let mut equity = Vec::new();
    let mut curve = Vec::new();
    for (mi, v) in grid_views {
        for (k, (name, _)) in methods.iter().enumerate() {
            let (mut x, mut p) = (Vec::new(), Vec::new());
            for u in 0..v.target.len() {
                if let (Some(a), Some(t)) = (v.access[k][u], v.target[u]) {
                    x.push(a);
                    p.push(t as f64);
                }
            }
            equity.push((*mi, *name, x.len(), gini(&x, &p)));
            for (i, (ps, xs)) in lorenz(&x, &p).into_iter().enumerate() {
                curve.push((*mi, *name, i, ps, xs));
            }
        }
    }
    (equity, curve)
}

/// The measure, distance and method columns of rows (measure, method).
fn method_columns(cov: &Coverage, rows: &[(usize, &str)]) -> (Vec<Field>, Vec<ArrayRef>) {
    let (mut fields, mut cols) = (Vec::new(), Vec::new());
    let measures: Vec<usize> = rows.iter().map(|r| r.0).collect();
    measure_columns(cov, &measures, false, &mut fields, &mut cols);
    fields.push(Field::new("method", DataType::Utf8, false));
    cols.push(Arc::new(StringArray::from_iter_values(
        rows.iter().map(|r| r.1),
    )));
    (fields, cols)
}

/// `coverage/equity.parquet` and `coverage/lorenz.parquet`.
pub(super) fn write_equity(
    dir: &crate::output::Out,
    cov: &Coverage,
    equity: &[Equity<'_>],
    curve: &[Curve<'_>],
) -> Result<()> {
    let rows: Vec<(usize, &str)> = equity.iter().map(|e| (e.0, e.1)).collect();
    let (mut fields, mut cols) = method_columns(cov, &rows);
    fields.extend([
        Field::new("grids", DataType::UInt64, false),
        Field::new("gini", DataType::Float64, true),
    ]);
    cols.extend([
        Arc::new(UInt64Array::from_iter_values(
            equity.iter().map(|e| e.2 as u64),
        )) as ArrayRef,
        Arc::new(Float64Array::from(
            equity.iter().map(|e| e.3).collect::<Vec<_>>(),
        )),
    ]);
    write_table(dir, "equity.parquet", fields, cols)?;
    let rows: Vec<(usize, &str)> = curve.iter().map(|e| (e.0, e.1)).collect();
    let (mut fields, mut cols) = method_columns(cov, &rows);
    fields.extend([
        Field::new("point", DataType::UInt32, false),
        Field::new("population_share", DataType::Float64, false),
        Field::new("accessibility_share", DataType::Float64, false),
    ]);
    cols.extend([
        Arc::new(UInt32Array::from_iter_values(
            curve.iter().map(|e| e.2 as u32),
        )) as ArrayRef,
        Arc::new(Float64Array::from_iter_values(curve.iter().map(|e| e.3))),
        Arc::new(Float64Array::from_iter_values(curve.iter().map(|e| e.4))),
    ]);
    write_table(dir, "lorenz.parquet", fields, cols)
}

/// `coverage/siting`: the greedy (and exact) picks with their gains and running totals; in
/// research runs a gain below k is hidden, and the running total with it. Returns the number
/// of gains hidden.
pub(super) fn write_siting(w: &mut GeoWriter<'_>, s: &Siting, policy: &Policy) -> Result<usize> {
    let mut rows: Vec<(&str, usize, u32, u64)> = Vec::new();
    for (i, (c, g)) in s.greedy.iter().enumerate() {
        rows.push(("greedy", i + 1, *c, *g));
    }
    if let Ok(ex) = &s.exact {
        for (i, (c, g)) in ex.iter().enumerate() {
            rows.push(("exact", i + 1, *c, *g));
        }
    }
    let research = policy.kind == OutputKind::Research;
    let hide = |g: u64| research && g < policy.k;
    let mut cumulative: Vec<Option<u64>> = Vec::new();
    let mut acc: Option<u64> = Some(0);
    for (i, r) in rows.iter().enumerate() {
        if i > 0 && rows[i - 1].0 != r.0 {
            acc = Some(0);
        }
        acc = if hide(r.3) {
            None
        } else {
            acc.map(|a| a + r.3)
        };
        cumulative.push(acc);
    }
    let site = |r: &(&str, usize, u32, u64)| &s.sites[r.2 as usize];
    let text = |v: Vec<&str>| -> ArrayRef { Arc::new(StringArray::from(v)) };
    let cols: Columns = vec![
        ("method".into(), text(rows.iter().map(|r| r.0).collect())),
        (
            "pick".into(),
            Arc::new(UInt32Array::from_iter_values(
                rows.iter().map(|r| r.1 as u32),
            )),
        ),
        (
            "site_id".into(),
            text(rows.iter().map(|r| site(r).id.as_str()).collect()),
        ),
        (
            "site_source".into(),
            text(rows.iter().map(|r| site(r).source).collect()),
        ),
        ("rule".into(), text(vec![s.rule.as_str(); rows.len()])),
        ("distance".into(), text(vec![s.mode.code(); rows.len()])),
        (
            "distance_m".into(),
            Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|_| s.distance_m),
            )),
        ),
        (
            "gain".into(),
            u64s(rows.iter().map(|r| (!hide(r.3)).then_some(r.3)).collect()),
        ),
        ("cumulative".into(), u64s(cumulative)),
    ];
    let geoms = rows
        .iter()
        .map(|r| Some(Geometry::Point(Point(site(r).point))))
        .collect();
    w.write_as(&format!("{DIR}/siting"), Layer::Site, cols, geoms)?;
    Ok(rows.iter().filter(|r| hide(r.3)).count())
}
