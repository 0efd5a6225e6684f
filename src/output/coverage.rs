//! `coverage/`: service coverage per grid, community and street, blind spots, accessibility,
//! equity, siting, the rules in force and `summary.md`; in operational runs also the scoped
//! per-resident reach list.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, StringArray, UInt32Array, UInt64Array};
use arrow_schema::{DataType, Field};
use geo::{Geometry, Point};
use rayon::prelude::*;

use crate::analytics::coverage::fca::{gini, lorenz};
use crate::analytics::coverage::{Coverage, Measure};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::model::build::Build;
use crate::model::level::Layer;
use crate::output::partition::write_rows;
use crate::output::release::{CountColumns, LEVELS, Release};
use crate::output::{Columns, GeoWriter, parent_columns, write_table};
use crate::privacy::{OutputKind, Policy};

/// The directory of the coverage outputs, under the run's output directory.
pub const DIR: &str = "coverage";

/// The count column holding a measure's target population: `residents` or the category's.
fn total_name(cov: &Coverage, m: &Measure) -> String {
    match cov.targets[m.target].id.as_str() {
        "all" => "residents".into(),
        t => t.to_owned(),
    }
}

/// A measure's count columns: target residents whose nearest facility is within each
/// threshold (cumulative, so each is within the next and the last within the target).
pub fn within_names(cov: &Coverage, m: &Measure) -> Vec<String> {
    cov.rule(m)
        .thresholds_m
        .iter()
        .map(|t| format!("{}_within_{t}m", m.id))
        .collect()
}

/// The coverage count columns for [`Release`], appended to `base` (which holds the base and
/// special-needs columns). Each measure's cumulative counts are nested: within the first
/// threshold ⊂ within the next ⊂ … ⊂ the target population, so a count is published only
/// when its difference to the next (the residents between two thresholds, or beyond the
/// last) is at least k as well. No difference of two published counts is a small count.
///
/// # Panics
/// If `base` lacks the released columns of the coverage's targets (made by the special-needs columns or the base tally).
pub fn columns(cov: &Coverage, model: &Model, mut base: CountColumns) -> CountColumns {
    let names: Vec<Vec<String>> = cov.measures.iter().map(|m| within_names(cov, m)).collect();
    let ncols: usize = names.iter().map(Vec::len).sum();
    // One task per (level, measure): a pass over the households into that measure's columns.
    let offsets: Vec<usize> = names
        .iter()
        .scan(0, |off, n| {
            let o = *off;
            *off += n.len();
            Some(o)
        })
        .collect();
    let tasks: Vec<(usize, usize)> = (0..LEVELS.len())
        .filter(|li| model.has(LEVELS[*li]))
        .flat_map(|li| (0..cov.measures.len()).map(move |m| (li, m)))
        .collect();
    let counted: Vec<Vec<u64>> = tasks
        .par_iter()
        .map(|&(li, mi)| {
            let (m, nt) = (&cov.measures[mi], names[mi].len());
            let weights = &cov.targets[m.target].weights;
            let mut c = vec![0u64; model.units(LEVELS[li]) * nt];
            for (h, hh) in model.households.iter().enumerate() {
                let (Some(u), w) = (hh.lineage.at(LEVELS[li]), weights[h]) else {
                    continue;
                };
                if w > 0 {
                    // Within every threshold from the household's band on.
                    for t in (m.bands[h] as usize)..nt {
                        c[u as usize * nt + t] += u64::from(w);
                    }
                }
            }
            c
        })
        .collect();
    let mut values: [Vec<Vec<u64>>; 4] = Default::default();
    for (li, level) in LEVELS.iter().enumerate() {
        values[li] = vec![vec![0u64; ncols]; model.units(*level)];
    }
    for (&(li, mi), c) in tasks.iter().zip(&counted) {
        let nt = names[mi].len();
        for (u, row) in values[li].iter_mut().enumerate() {
            row[offsets[mi]..offsets[mi] + nt].copy_from_slice(&c[u * nt..(u + 1) * nt]);
        }
    }
    let off = base.names.len();
    let mut nested = Vec::new();
    let mut classes = Vec::with_capacity(ncols);
    let mut bounds = Vec::with_capacity(ncols);
    let mut at = off;
    for (m, n) in cov.measures.iter().zip(&names) {
        // A measure's counts are as sensitive as its target population's.
        let target = base
            .index(&total_name(cov, m))
            .expect("target columns are released");
        classes.extend(std::iter::repeat_n(base.classes[target], n.len()));
        bounds.extend(std::iter::repeat_n(base.bound[target], n.len()));
        for t in 0..n.len() {
            let sup = if t + 1 < n.len() {
                at + t + 1
            } else {
                base.index(&total_name(cov, m))
                    .expect("target columns are released")
            };
            nested.push((at + t, sup));
        }
        at += n.len();
    }
    base.append(CountColumns {
        names: names.into_iter().flatten().collect(),
        finest: vec![Layer::Building; classes.len()],
        table: vec!["coverage"; classes.len()],
        bound: bounds,
        classes,
        groups: Vec::new(),
        nested: Vec::new(),
        values,
    });
    base.nested.extend(nested);
    base
}

/// Per unit of a level: target residents, and sums over them of the nearest distance and of
/// each accessibility score, from the unsuppressed model (published only where the target
/// count is).
struct UnitSums {
    target: Vec<u64>,
    with_nearest: Vec<u64>,
    nearest: Vec<f64>,
    access: [Vec<f64>; 3],
}

/// [`UnitSums`] of `m` at each of `levels`, in one pass over the households.
fn unit_sums(cov: &Coverage, model: &Model, levels: &[Layer], m: &Measure) -> Vec<UnitSums> {
    let mut sums: Vec<UnitSums> = levels
        .iter()
        .map(|l| {
            let n = model.units(*l);
            UnitSums {
                target: vec![0; n],
                with_nearest: vec![0; n],
                nearest: vec![0.0; n],
                access: [vec![0.0; n], vec![0.0; n], vec![0.0; n]],
            }
        })
        .collect();
    let w = &cov.targets[m.target].weights;
    let near = &cov.reached[m.reach].reached.nearest;
    for (h, hh) in model.households.iter().enumerate() {
        let wh = w[h];
        if wh == 0 {
            continue;
        }
        let nearest = match (cov.homes[h], near[h]) {
            (Some(_), Some((_, d))) => Some(d),
            _ => None,
        };
        for (l, s) in levels.iter().zip(sums.iter_mut()) {
            let Some(u) = hh.lineage.at(*l) else {
                continue;
            };
            let u = u as usize;
            s.target[u] += u64::from(wh);
            if let Some(d) = nearest {
                s.with_nearest[u] += u64::from(wh);
                s.nearest[u] += f64::from(wh) * d;
            }
            // Empty when accessibility is not computed.
            for (k, a) in m.access.iter().enumerate() {
                if let Some(Some(v)) = a.get(h) {
                    s.access[k][u] += f64::from(wh) * v;
                }
            }
        }
    }
    sums
}

/// Per unit of a level and per measure, the published values the files and the summary use.
#[derive(Clone)]
struct LevelView {
    target: Vec<Option<u64>>,
    /// Cumulative counts within each threshold.
    within: Vec<Vec<Option<u64>>>,
    nearest_mean: Vec<Option<f64>>,
    access: [Vec<Option<f64>>; 3],
}

fn level_view(
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
fn level_views(
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

fn share(a: Option<u64>, b: Option<u64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0 => Some(a as f64 / b as f64),
        _ => None,
    }
}

fn u64s(v: Vec<Option<u64>>) -> ArrayRef {
    Arc::new(UInt64Array::from(v))
}

fn f64s(v: Vec<Option<f64>>) -> ArrayRef {
    Arc::new(Float64Array::from(v))
}

/// Appends `measure` and `distance` (and, with `standard`, `standard_m`) columns naming the
/// measure of each row (`rows`: indices into `cov.measures`).
fn measure_columns(
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
fn blind_spots(cov: &Coverage, m: &Measure, v: &LevelView) -> Vec<Option<bool>> {
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
    let methods = cov.accessibility.methods();
    let mut blind: Vec<(u32, usize, f64, u64, Option<u64>)> = Vec::new();
    let mut grid_views: Vec<(usize, LevelView)> = Vec::new();
    let mut hidden_names: Vec<String> = Vec::new();
    for m in &cov.measures {
        for name in std::iter::once(total_name(cov, m)).chain(within_names(cov, m)) {
            if !hidden_names.contains(&name) {
                hidden_names.push(name);
            }
        }
    }
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
    for level in [Layer::Street, Layer::Community, Layer::Grid] {
        if !release.levels().contains(&level) {
            continue;
        }
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
        for (mi, m) in cov.measures.iter().enumerate() {
            let rule = cov.rule(m);
            let v = &views[&(level, mi)];
            cols.push((format!("{}_target", m.id), u64s(v.target.clone())));
            for (t, th) in rule.thresholds_m.iter().enumerate() {
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
            for (k, (name, _)) in methods.iter().enumerate() {
                cols.push((format!("{}_{name}", m.id), f64s(v.access[k].clone())));
            }
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
            if level == Layer::Grid {
                grid_views.push((mi, v.clone()));
            }
        }
        if policy.kind == OutputKind::Research {
            let s: StringArray = (0..n as u32)
                .map(|u| {
                    let hidden: Vec<&str> = hidden_names
                        .iter()
                        .filter(|c| release.count(level, u, c).is_none())
                        .map(String::as_str)
                        .collect();
                    (!hidden.is_empty()).then(|| hidden.join(","))
                })
                .collect();
            cols.push(("suppressed".into(), Arc::new(s)));
        }
        w.write_as(&format!("{DIR}/{}", level.singular()), level, cols, geoms)?;
    }
    // Blind spots.
    if model.has(Layer::Grid) {
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
        let lineages: Vec<crate::model::Lineage> =
            blind.iter().map(|b| unit(b.0).lineage).collect();
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
        write_table(&dir, "blind_spots.parquet", fields, cols)?;
        w.written.files.push(format!("{DIR}/blind_spots.parquet"));
    }
    // Equity across grids.
    let mut equity: Vec<(usize, &str, usize, Option<f64>)> = Vec::new();
    let mut curve: Vec<(usize, &str, usize, f64, f64)> = Vec::new();
    for (mi, v) in &grid_views {
        for (k, (name, _)) in methods.iter().enumerate() {
            let (mut x, mut p) = (Vec::new(), Vec::new());
            for u in 0..v.target.len() {
                if let (Some(a), Some(t)) = (v.access[k][u], v.target[u]) {
                    x.push(a);
                    p.push(t as f64);
                }
            }
            equity.push((*mi, name, x.len(), gini(&x, &p)));
            for (i, (ps, xs)) in lorenz(&x, &p).into_iter().enumerate() {
                curve.push((*mi, name, i, ps, xs));
            }
        }
    }
    // The measure, distance and method of each row.
    let labels = |rows: &[(usize, &str)]| -> (Vec<Field>, Vec<ArrayRef>) {
        let (mut fields, mut cols) = (Vec::new(), Vec::new());
        let measures: Vec<usize> = rows.iter().map(|r| r.0).collect();
        measure_columns(cov, &measures, false, &mut fields, &mut cols);
        fields.push(Field::new("method", DataType::Utf8, false));
        cols.push(Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.1),
        )));
        (fields, cols)
    };
    let (mut fields, mut cols) = labels(&equity.iter().map(|e| (e.0, e.1)).collect::<Vec<_>>());
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
    write_table(&dir, "equity.parquet", fields, cols)?;
    let (mut fields, mut cols) = labels(&curve.iter().map(|e| (e.0, e.1)).collect::<Vec<_>>());
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
    write_table(&dir, "lorenz.parquet", fields, cols)?;
    w.written.files.extend([
        format!("{DIR}/equity.parquet"),
        format!("{DIR}/lorenz.parquet"),
    ]);
    write_rules(&dir, cov)?;
    w.written.files.push(format!("{DIR}/rules.parquet"));
    // Siting.
    let mut gains_hidden = 0;
    // The picks depend on exact counts: a noisy release has none.
    if let Some(s) = cov.siting.as_ref().filter(|_| !release.is_noisy()) {
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
        gains_hidden = rows.iter().filter(|r| hide(r.3)).count();
        let cols: Columns = vec![
            (
                "method".into(),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            ),
            (
                "pick".into(),
                Arc::new(UInt32Array::from_iter_values(
                    rows.iter().map(|r| r.1 as u32),
                )),
            ),
            (
                "site_id".into(),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| s.sites[r.2 as usize].id.as_str()),
                )),
            ),
            (
                "site_source".into(),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| s.sites[r.2 as usize].source),
                )),
            ),
            (
                "rule".into(),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|_| s.rule.as_str()),
                )),
            ),
            (
                "distance".into(),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|_| s.mode.code()),
                )),
            ),
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
            .map(|r| Some(Geometry::Point(Point(s.sites[r.2 as usize].point))))
            .collect();
        w.write_as(&format!("{DIR}/siting"), Layer::Site, cols, geoms)?;
    }
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

fn write_rules(dir: &crate::output::Out, cov: &Coverage) -> Result<()> {
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

/// Operational runs: every resident of the scope in some target population, with keyed
/// pseudonyms (plain ids only with `plain_identifiers`), and per measure: in the target,
/// nearest facility, its distance, facilities within each threshold, covered within the
/// standard, and the home's three accessibility scores.
fn write_residents(
    dir: &crate::output::Out,
    build: &Build,
    cov: &Coverage,
    policy: &Policy,
) -> Result<Vec<String>> {
    let model = &build.model;
    let people = crate::output::operational::scoped_residents(build, policy)?;
    let people: Vec<_> = people
        .into_iter()
        .filter(|p| cov.targets.iter().any(|t| t.members[p.resident]))
        .collect();
    let mut fields = vec![
        Field::new("resident_key", DataType::Utf8, false),
        Field::new("household_key", DataType::Utf8, false),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            people.iter().map(|p| p.resident_key.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            people.iter().map(|p| p.household_key.as_str()),
        )),
    ];
    if policy.plain_identifiers {
        fields.push(Field::new("resident_id", DataType::Utf8, false));
        cols.push(Arc::new(StringArray::from_iter_values(
            people.iter().map(|p| p.resident_id.as_str()),
        )));
        fields.push(Field::new("household_id", DataType::Utf8, false));
        cols.push(Arc::new(StringArray::from_iter_values(
            people
                .iter()
                .map(|p| model.households[p.household].id.as_str()),
        )));
    }
    let households: Vec<usize> = people.iter().map(|p| p.household).collect();
    crate::output::operational::unit_columns(model, &households, &mut fields, &mut cols);
    let mut add = |name: String, a: ArrayRef, nullable: bool| {
        fields.push(Field::new(name, a.data_type().clone(), nullable));
        cols.push(a);
    };
    for m in &cov.measures {
        let rule = cov.rule(m);
        let t = &cov.targets[m.target];
        // Per resident of the target, else null.
        let of = |p: &crate::output::operational::ScopedResident| {
            t.members[p.resident].then_some(p.household)
        };
        add(
            format!("{}_target", m.id),
            Arc::new(BooleanArray::from(
                people
                    .iter()
                    .map(|p| of(p).is_some())
                    .collect::<Vec<bool>>(),
            )),
            false,
        );
        let near: Vec<Option<(&str, f64)>> = people
            .iter()
            .map(|p| of(p).and_then(|h| cov.nearest(model, m, h)))
            .collect();
        add(
            format!("{}_nearest_facility", m.id),
            Arc::new(near.iter().map(|n| n.map(|x| x.0)).collect::<StringArray>()),
            true,
        );
        add(
            format!("{}_nearest_m", m.id),
            f64s(near.iter().map(|n| n.map(|x| x.1)).collect()),
            true,
        );
        for th in &rule.thresholds_m {
            add(
                format!("{}_within_{th}m", m.id),
                Arc::new(UInt32Array::from(
                    people
                        .iter()
                        .map(|p| of(p).and_then(|h| cov.within(m, h, *th)))
                        .collect::<Vec<_>>(),
                )),
                true,
            );
        }
        add(
            format!("{}_covered", m.id),
            Arc::new(BooleanArray::from(
                people
                    .iter()
                    .map(|p| of(p).and_then(|h| cov.covered(m, h)))
                    .collect::<Vec<_>>(),
            )),
            true,
        );
        for (k, (name, _)) in cov.accessibility.methods().iter().enumerate() {
            add(
                format!("{}_{name}", m.id),
                f64s(
                    people
                        .iter()
                        .map(|p| of(p).and_then(|h| m.access[k][h]))
                        .collect(),
                ),
                true,
            );
        }
    }
    let partitioned = dir.is_partitioned();
    write_rows(
        dir,
        &format!("{DIR}/"),
        "residents",
        partitioned,
        fields,
        cols,
    )
}

/// Operational runs: the grid worker's blind-spot list: every household of the scope with
/// target residents whose nearest facility is beyond the rule's standard (or unreachable, or
/// whose home has no location), one row per household and measure.
fn write_uncovered_households(
    dir: &crate::output::Out,
    build: &Build,
    cov: &Coverage,
    policy: &Policy,
) -> Result<Vec<String>> {
    let model = &build.model;
    let key = policy.pseudonyms.as_ref().ok_or_else(|| Error::Privacy {
        message: "operational lists need a pseudonym key".into(),
    })?;
    let (layer, code) = policy.scope.as_ref().ok_or_else(|| Error::Privacy {
        message: "named lists need a scope: privacy.grid, privacy.community or privacy.street"
            .into(),
    })?;
    let in_scope = |h: usize| {
        let hh = &model.households[h];
        hh.placed
            && hh
                .lineage
                .at(*layer)
                .is_some_and(|u| model.code(*layer, u) == code.as_str())
    };
    // (household, measure)
    let mut rows: Vec<(usize, usize)> = Vec::new();
    for (mi, m) in cov.measures.iter().enumerate() {
        let w = &cov.targets[m.target].weights;
        for (h, wh) in w.iter().enumerate() {
            if *wh > 0 && cov.covered(m, h) != Some(true) && in_scope(h) {
                rows.push((h, mi));
            }
        }
    }
    rows.sort_unstable();
    let hh = |h: usize| &model.households[h];
    let mut fields = vec![Field::new("household_key", DataType::Utf8, false)];
    let mut cols: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(
        rows.iter()
            .map(|(h, _)| key.pseudonym("household", hh(*h).id.as_str())),
    ))];
    if policy.plain_identifiers {
        fields.push(Field::new("household_id", DataType::Utf8, false));
        cols.push(Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(h, _)| hh(*h).id.as_str()),
        )));
    }
    let households: Vec<usize> = rows.iter().map(|r| r.0).collect();
    crate::output::operational::unit_columns(model, &households, &mut fields, &mut cols);
    let near = |h: usize, mi: usize| cov.nearest(model, &cov.measures[mi], h);
    let measures: Vec<usize> = rows.iter().map(|r| r.1).collect();
    measure_columns(cov, &measures, true, &mut fields, &mut cols);
    fields.extend([
        Field::new("target_residents", DataType::UInt32, false),
        Field::new("located", DataType::Boolean, false),
        Field::new("nearest_facility", DataType::Utf8, true),
        Field::new("nearest_m", DataType::Float64, true),
    ]);
    cols.extend([
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|(h, mi)| {
            cov.targets[cov.measures[*mi].target].weights[*h]
        }))) as ArrayRef,
        Arc::new(BooleanArray::from(
            rows.iter()
                .map(|(h, _)| cov.homes[*h].is_some())
                .collect::<Vec<bool>>(),
        )),
        Arc::new(
            rows.iter()
                .map(|(h, mi)| near(*h, *mi).map(|x| x.0))
                .collect::<StringArray>(),
        ),
        f64s(
            rows.iter()
                .map(|(h, mi)| near(*h, *mi).map(|x| x.1))
                .collect(),
        ),
    ]);
    let partitioned = dir.is_partitioned();
    write_rows(
        dir,
        &format!("{DIR}/"),
        "uncovered_households",
        partitioned,
        fields,
        cols,
    )
}

/// The person-readable summary.
// The summary reads every part of the coverage output; bundling them would only rename them.
#[allow(clippy::too_many_arguments)]
fn summary(
    cov: &Coverage,
    model: &Model,
    release: &Release,
    policy: &Policy,
    blind: &[(u32, usize, f64, u64, Option<u64>)],
    equity: &[(usize, &str, usize, Option<f64>)],
    gains_hidden: usize,
    views: &HashMap<(Layer, usize), LevelView>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Service coverage and accessibility\n");
    let _ = writeln!(
        s,
        "Rules: **{}**. Distances: {}. Output: **{}**{}.\n",
        cov.rules.version,
        cov.modes
            .iter()
            .map(|m| match m {
                crate::analytics::coverage::DistanceMode::Straight =>
                    "straight line in the metric working CRS (columns without suffix)",
                crate::analytics::coverage::DistanceMode::Network =>
                    "shortest walk over the path network (columns ending `_network`)",
            })
            .collect::<Vec<_>>()
            .join("; "),
        policy.kind.code(),
        match policy.kind {
            OutputKind::Research => format!(
                " (counts below k = {} suppressed with complementary suppression; per-resident \
                 lists are written only by operational runs)",
                policy.k
            ),
            OutputKind::ResearchDp => " (every count with differentially private noise, see \
                 dp_accuracy.parquet; mean distances, accessibility scores, equity and siting \
                 need exact data and are not released)"
                .to_owned(),
            OutputKind::Operational => String::new(),
        }
    );
    let _ = writeln!(s, "## Rules\n");
    let _ = writeln!(
        s,
        "| rule | facility | target | thresholds (m) | standard (m) | source |"
    );
    let _ = writeln!(s, "|---|---|---|---|---:|---|");
    for r in &cov.rules.rules {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} | {} |",
            r.id(),
            r.facility,
            r.target,
            r.thresholds_m
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            r.standard_m,
            r.source
        );
    }
    for (id, why) in &cov.unavailable {
        let _ = writeln!(s, "\nNot computed: `{id}`: {why}");
    }
    let top = release.levels().first().copied();
    let _ = writeln!(s, "\n## Coverage of the district\n");
    let _ = writeln!(
        s,
        "| measure | target | within each threshold | share within the standard |"
    );
    let _ = writeln!(s, "|---|---:|---|---:|");
    for (mi, m) in cov.measures.iter().enumerate() {
        let rule = cov.rule(m);
        let Some(level) = top else { break };
        let computed;
        let v = match views.get(&(level, mi)) {
            Some(v) => v,
            None => {
                computed = level_view(cov, model, release, level, m);
                &computed
            }
        };
        let total = |x: &[Option<u64>]| -> Option<u64> { x.iter().copied().sum() };
        let target = total(&v.target);
        let within: Vec<String> = rule
            .thresholds_m
            .iter()
            .enumerate()
            .map(|(t, th)| match total(&v.within[t]) {
                Some(c) => format!("{th} m: {c}"),
                None => format!("{th} m: (suppressed)"),
            })
            .collect();
        let st = cov.standard_band(m);
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} |",
            m.id,
            target.map_or("(suppressed)".into(), |t| t.to_string()),
            within.join("; "),
            share(total(&v.within[st]), target)
                .map_or("—".into(), |x| format!("{:.1}%", x * 100.0))
        );
    }
    let _ = writeln!(
        s,
        "\nA resident is within a threshold when the nearest facility of the type is at that \
         distance or closer (residents whose home has no location are within none).\n"
    );
    if let Some(n) = &cov.network {
        let _ = writeln!(
            s,
            "Network: {} ({} features, {} used; {} nodes, {} edges). Homes are joined to the \
             nearest path within {} m; {} located households and {} facilities are farther and \
             have no network distance (counted beyond every threshold).\n",
            n.path.display(),
            n.features,
            n.used,
            n.nodes,
            n.edges,
            n.snap_m,
            n.households_off_network,
            n.facilities_off_network
        );
    }
    let _ = writeln!(s, "## Blind spots (grids)\n");
    let _ = writeln!(
        s,
        "A grid is a blind spot for a measure when less than {:.0}% of its target population is \
         within the rule's standard distance. {}\n",
        cov.blind_spot_below * 100.0,
        if policy.kind == OutputKind::Research {
            "Grids with a suppressed count are not judged."
        } else {
            ""
        }
    );
    if blind.is_empty() {
        let _ = writeln!(s, "None.");
    } else {
        let _ = writeln!(s, "| grid | measure | target | share covered |");
        let _ = writeln!(s, "|---|---|---:|---:|");
        for (g, mi, sh, t, _) in blind {
            let _ = writeln!(
                s,
                "| {} | `{}` | {t} | {:.1}% |",
                model.grids[*g as usize].id,
                cov.measures[*mi].id,
                sh * 100.0
            );
        }
    }
    let _ = writeln!(s, "\n## Accessibility (2SFCA family)\n");
    let a = &cov.accessibility;
    let _ = writeln!(
        s,
        "Definitions of PySAL `access` 1.1: catchment {} m (inclusive), supply = facility capacity \
         ({} facilities have none and supply nothing). 2SFCA: weight 1; E2SFCA: step weights {:?}; \
         Gaussian 2SFCA: exp(−d²/2σ²), σ = {} m. A unit's value is the mean over its target \
         residents (0 for those with no facility within the catchment). Gini across grids is \
         weighted by the grids' target populations (`equity.parquet`, Lorenz points in \
         `lorenz.parquet`).\n",
        a.catchment_m, cov.facilities_without_capacity, a.bands, a.gaussian_sigma_m
    );
    let _ = writeln!(s, "| measure | method | grids | Gini |");
    let _ = writeln!(s, "|---|---|---:|---:|");
    for (mi, name, grids, g) in equity {
        let _ = writeln!(
            s,
            "| `{}` | {name} | {grids} | {} |",
            cov.measures[*mi].id,
            g.map_or("—".into(), |g| format!("{g:.3}"))
        );
    }
    if let Some(site) = cov.siting.as_ref().filter(|_| !release.is_noisy()) {
        let _ = writeln!(s, "\n## Siting: `{}`\n", site.rule);
        let _ = writeln!(
            s,
            "Maximal covering location problem: {} new facilities, covering distance {} m ({}), \
             {} candidate sites. Target residents not yet covered: {}. Greedy picks the site \
             with the largest marginal gain each time (at least 1 − 1/e ≈ 63% of the optimum) \
             and stops when no site adds anyone.{}\n",
            site.k,
            site.distance_m,
            site.mode.code(),
            site.sites.len(),
            if policy.kind == OutputKind::Research && site.uncovered_before < policy.k {
                "(suppressed)".to_owned()
            } else {
                site.uncovered_before.to_string()
            },
            if gains_hidden > 0 {
                format!(" {gains_hidden} gains below k are not shown.")
            } else {
                String::new()
            }
        );
        let _ = writeln!(s, "| method | pick | site | gain |");
        let _ = writeln!(s, "|---|---:|---|---:|");
        let show = |g: u64| {
            if policy.kind == OutputKind::Research && g < policy.k {
                "(suppressed)".to_owned()
            } else {
                g.to_string()
            }
        };
        for (i, (c, g)) in site.greedy.iter().enumerate() {
            let _ = writeln!(
                s,
                "| greedy | {} | {} | {} |",
                i + 1,
                site.sites[*c as usize].id,
                show(*g)
            );
        }
        match &site.exact {
            Ok(ex) => {
                for (i, (c, g)) in ex.iter().enumerate() {
                    let _ = writeln!(
                        s,
                        "| exact | {} | {} | {} |",
                        i + 1,
                        site.sites[*c as usize].id,
                        show(*g)
                    );
                }
            }
            Err(why) => {
                let _ = writeln!(s, "\nNo exact solution: {why}.");
            }
        }
    }
    s
}
