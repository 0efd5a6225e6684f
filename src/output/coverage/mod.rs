//! `coverage/`: service coverage per grid, community and street, blind spots, accessibility,
//! equity, siting, the rules in force and `summary.md`; in operational runs also the scoped
//! per-resident reach list.

mod lists;
mod summary;
mod tables;

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, StringArray, UInt64Array};
use arrow_schema::{DataType, Field};
use geo::Geometry;
use rayon::prelude::*;

pub use crate::analytics::coverage::counts::{columns, within_names};
use crate::analytics::coverage::counts::{total_name, unit_sums};
use crate::analytics::coverage::{Coverage, Measure};
use crate::error::Result;
use crate::model::Model;
use crate::model::build::Build;
use crate::model::level::Layer;
use crate::output::release::Release;
use crate::output::{Columns, GeoWriter, parent_columns};
use crate::privacy::{OutputKind, Policy};
use lists::{write_residents, write_uncovered_households};
use summary::summary;
use tables::{equity, write_blind_spots, write_equity, write_rules, write_siting};

/// The directory of the coverage outputs, under the run's output directory.
pub const DIR: &str = "coverage";

/// Per unit of a level and per measure, the published values the files and the summary use.
#[derive(Clone)]
pub(super) struct LevelView {
    target: Vec<Option<u64>>,
    /// Cumulative counts within each threshold.
    within: Vec<Vec<Option<u64>>>,
    nearest_mean: Vec<Option<f64>>,
    access: [Vec<Option<f64>>; 3],
}

pub(super) fn level_view(
    cov: &Coverage,
    model: &Model,
    release: &Release,
    level: Layer,
    m: &Measure,
) -> LevelView {
    let mut v = level_views(cov, model, release, &[level], m);
    v.pop().expect("one level")
}

/// [`LevelView`]s of `m` at each of `levels` (one pass over the households for all).
pub(super) fn level_views(
    cov: &Coverage,
    model: &Model,
    release: &Release,
    levels: &[Layer],
    m: &Measure,
) -> Vec<LevelView> {
    let sums = unit_sums(cov, model, levels, m);
    levels
        .iter()
        .zip(sums)
        .map(|(&level, sums)| {
            let n = model.units(level);
            let get = |name: &str| -> Vec<Option<u64>> {
                (0..n as u32)
                    .map(|u| release.count(level, u, name))
                    .collect()
            };
            let target = get(&total_name(cov, m));
            let within = within_names(cov, m).iter().map(|p| get(p)).collect();
            // Means and scores come from the exact model: never in a noisy release.
            let published = |u: usize| target[u].is_some_and(|t| t > 0) && !release.is_noisy();
            let nearest_mean = (0..n)
                .map(|u| {
                    (published(u) && sums.with_nearest[u] > 0)
                        .then(|| sums.nearest[u] / sums.with_nearest[u] as f64)
                })
                .collect();
            let access = [0, 1, 2].map(|k| {
                (0..n)
                    .map(|u| published(u).then(|| sums.access[k][u] / sums.target[u] as f64))
                    .collect()
            });
            LevelView {
                target,
                within,
                nearest_mean,
                access,
            }
        })
        .collect()
}

pub(super) fn share(a: Option<u64>, b: Option<u64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0 => Some(a as f64 / b as f64),
        _ => None,
    }
}

pub(super) fn u64s(v: Vec<Option<u64>>) -> ArrayRef {
    Arc::new(UInt64Array::from(v))
}

pub(super) fn f64s(v: Vec<Option<f64>>) -> ArrayRef {
    Arc::new(Float64Array::from(v))
}

/// Appends `measure` and `distance` (and, with `standard`, `standard_m`) columns naming the
/// measure of each row (`rows`: indices into `cov.measures`).
pub(super) fn measure_columns(
    cov: &Coverage,
    rows: &[usize],
    standard: bool,
    fields: &mut Vec<Field>,
    cols: &mut Vec<ArrayRef>,
) {
    fields.push(Field::new("measure", DataType::Utf8, false));
    cols.push(Arc::new(StringArray::from_iter_values(
        rows.iter().map(|m| cov.measures[*m].id.as_str()),
    )));
    fields.push(Field::new("distance", DataType::Utf8, false));
    cols.push(Arc::new(StringArray::from_iter_values(
        rows.iter().map(|m| cov.measures[*m].mode.code()),
    )));
    if standard {
        fields.push(Field::new("standard_m", DataType::Float64, false));
        cols.push(Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|m| cov.rule(&cov.measures[*m]).standard_m),
        )));
    }
}

/// A grid is a blind spot for a measure when the published share of its target population
/// within the standard distance is below the threshold (unknown where a count is hidden).
pub(super) fn blind_spots(cov: &Coverage, m: &Measure, v: &LevelView) -> Vec<Option<bool>> {
    let s = cov.standard_band(m);
    (0..v.target.len())
        .map(|u| {
            if v.target[u] == Some(0) {
                return Some(false);
            }
            share(v.within[s][u], v.target[u]).map(|x| x < cov.blind_spot_below)
        })
        .collect()
}

/// A grid that is a blind spot for a measure: (grid, measure, share covered, target,
/// covered).
type Blind = (u32, usize, f64, u64, Option<u64>);

/// Writes every coverage output. Returns nothing; files are recorded in the writer.
pub(crate) fn write(
    w: &mut GeoWriter<'_>,
    release: &Release,
    build: &Build,
    cov: &Coverage,
    policy: &Policy,
) -> Result<()> {
    let model = &build.model;
    let dir = w.out.sub(DIR);
    dir.create()?;
    // Every level's view of every measure, measures in parallel (each passes over the
    // households once for all levels).
    let levels: Vec<Layer> = [Layer::Street, Layer::Community, Layer::Grid]
        .into_iter()
        .filter(|l| release.levels().contains(l))
        .collect();
    let views: HashMap<(Layer, usize), LevelView> = (0..cov.measures.len())
        .into_par_iter()
        .flat_map_iter(|mi| {
            let views = level_views(cov, model, release, &levels, &cov.measures[mi]);
            levels.iter().zip(views).map(move |(&l, v)| ((l, mi), v))
        })
        .collect();
    let mut blind: Vec<Blind> = Vec::new();
    for &level in &levels {
        let found = write_level(w, release, model, cov, policy, level, &views)?;
        blind.extend(found);
    }
    if model.has(Layer::Grid) {
        write_blind_spots(&dir, model, cov, &blind)?;
        w.written.files.push(format!("{DIR}/blind_spots.parquet"));
    }
    let grid_views: Vec<(usize, &LevelView)> = (0..cov.measures.len())
        .filter_map(|mi| views.get(&(Layer::Grid, mi)).map(|v| (mi, v)))
        .collect();
    let (equity, curve) = equity(cov, &grid_views);
    write_equity(&dir, cov, &equity, &curve)?;
    w.written.files.extend([
        format!("{DIR}/equity.parquet"),
        format!("{DIR}/lorenz.parquet"),
    ]);
    write_rules(&dir, cov)?;
    w.written.files.push(format!("{DIR}/rules.parquet"));
    // The picks depend on exact counts: a noisy release has none.
    let gains_hidden = match cov.siting.as_ref().filter(|_| !release.is_noisy()) {
        Some(s) => write_siting(w, s, policy)?,
        None => 0,
    };
    if policy.kind == OutputKind::Operational && model.has(Layer::Household) {
        let files = write_residents(&dir, build, cov, policy)?;
        w.written.files.extend(files);
        let files = write_uncovered_households(&dir, build, cov, policy)?;
        w.written.files.extend(files);
    }
    let text = summary(
        cov,
        model,
        release,
        policy,
        &blind,
        &equity,
        gains_hidden,
        &views,
    );
    dir.text("summary.md", text)?;
    w.written.files.push(format!("{DIR}/summary.md"));
    Ok(())
}

/// `coverage/<level>`: per unit, every measure's target, counts and shares within each
/// threshold, nearest mean and accessibility (and at grids the blind-spot flag), with the
/// suppressed column names in research runs. Returns the grids that are blind spots.
fn write_level(
    w: &mut GeoWriter<'_>,
    release: &Release,
    model: &Model,
    cov: &Coverage,
    policy: &Policy,
    level: Layer,
    views: &HashMap<(Layer, usize), LevelView>,
) -> Result<Vec<Blind>> {
    let n = model.units(level);
    let (names, lineages, areas, geoms) = match level {
        Layer::Street => area_parts(&model.streets),
        Layer::Community => area_parts(&model.communities),
        _ => area_parts(&model.grids),
    };
    let mut cols: Columns = vec![(
        format!("{}_id", level.singular()),
        Arc::new(StringArray::from_iter_values(
            (0..n as u32).map(|i| model.code(level, i)),
        )),
    )];
    cols.push(("name".into(), Arc::new(StringArray::from(names))));
    cols.extend(parent_columns(model, level, &lineages));
    cols.push(("area_m2".into(), Arc::new(Float64Array::from(areas))));
    let mut blind = Vec::new();
    for (mi, m) in cov.measures.iter().enumerate() {
        let v = &views[&(level, mi)];
        measure_unit_columns(cov, m, v, &mut cols);
        if level == Layer::Grid {
            let b = blind_spots(cov, m, v);
            let s = cov.standard_band(m);
            for (u, x) in b.iter().enumerate() {
                if *x == Some(true) {
                    let covered = v.within[s][u];
                    let sh = share(covered, v.target[u]).unwrap_or(0.0);
                    blind.push((u as u32, mi, sh, v.target[u].unwrap_or(0), covered));
                }
            }
            cols.push((
                format!("{}_blind_spot", m.id),
                Arc::new(BooleanArray::from(b)),
            ));
        }
    }
    if policy.kind == OutputKind::Research {
        cols.push((
            "suppressed".into(),
            suppressed_names(cov, release, level, n),
        ));
    }
    w.write_as(&format!("{DIR}/{}", level.singular()), level, cols, geoms)?;
    Ok(blind)
}

/// One measure's columns at a level: target, counts and shares within each threshold,
/// nearest mean and accessibility.
fn measure_unit_columns(cov: &Coverage, m: &Measure, v: &LevelView, cols: &mut Columns) {
    let n = v.target.len();
    cols.push((format!("{}_target", m.id), u64s(v.target.clone())));
    for (t, th) in cov.rule(m).thresholds_m.iter().enumerate() {
        cols.push((format!("{}_within_{th}m", m.id), u64s(v.within[t].clone())));
        cols.push((
            format!("{}_share_{th}m", m.id),
            f64s((0..n).map(|u| share(v.within[t][u], v.target[u])).collect()),
        ));
    }
    cols.push((
        format!("{}_nearest_mean_m", m.id),
        f64s(v.nearest_mean.clone()),
    ));
    for (k, (name, _)) in cov.accessibility.methods().iter().enumerate() {
        cols.push((format!("{}_{name}", m.id), f64s(v.access[k].clone())));
    }
}

/// Per unit: the coverage count columns the release hides there, comma-separated.
fn suppressed_names(cov: &Coverage, release: &Release, level: Layer, n: usize) -> ArrayRef {
    let mut names: Vec<String> = Vec::new();
    for m in &cov.measures {
        for name in std::iter::once(total_name(cov, m)).chain(within_names(cov, m)) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    let s: StringArray = (0..n as u32)
        .map(|u| {
            let hidden: Vec<&str> = names
                .iter()
                .filter(|c| release.count(level, u, c).is_none())
                .map(String::as_str)
                .collect();
            (!hidden.is_empty()).then(|| hidden.join(","))
        })
        .collect();
    Arc::new(s)
}

type Parts = (
    Vec<Option<String>>,
    Vec<crate::model::Lineage>,
    Vec<f64>,
    Vec<Option<Geometry<f64>>>,
);

fn area_parts<I>(v: &[crate::model::Area<I>]) -> Parts {
    (
        v.iter().map(|u| u.name.clone()).collect(),
        v.iter().map(|u| u.lineage).collect(),
        v.iter().map(|u| u.area_m2).collect(),
        v.iter()
            .map(|u| Some(Geometry::MultiPolygon(u.geometry.clone())))
            .collect(),
    )
}
