//! `special_needs/`: special-needs counts, shares, age bands, dependency ratios, densities and
//! hot spots per building, grid, community and street, and `summary.md`.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, StringArray, UInt64Array};
use geo::{Geometry, MultiPolygon};

use crate::analytics::SpecialNeeds;
use crate::analytics::categories::Tier;
use crate::analytics::hotspots::{gi_star, queen_neighbours, sibling_z};
use crate::error::Result;
use crate::model::level::Layer;
use crate::model::{Lineage, Model};
use crate::output::columns::{ratio, suppressed_column};
use crate::output::release::Release;
use crate::output::{Columns, GeoWriter, parent_columns, per_km2};
use crate::privacy::{OutputKind, Policy};

/// The directory of the special-needs outputs, under the run's output directory.
pub const DIR: &str = "special_needs";

/// Values of one released column for every unit of a level.
fn released(release: &Release, level: Layer, units: usize, name: &str) -> Vec<Option<u64>> {
    (0..units as u32)
        .map(|u| release.count(level, u, name))
        .collect()
}

fn sum_all(parts: &[&Vec<Option<u64>>], i: usize) -> Option<u64> {
    parts.iter().map(|p| p[i]).sum()
}

fn u64s(v: Vec<Option<u64>>) -> ArrayRef {
    Arc::new(UInt64Array::from(v))
}

/// Hot-spot statistics of the grids: per category, the rate's z-score among the grids of the
/// same community and of the same street, its Gi* over queen contiguity, and the flag. Rates
/// use released values only, so research outputs leak nothing the suppressed tables hide.
fn hot_spot_columns(
    release: &Release,
    model: &Model,
    sn: &SpecialNeeds,
) -> Vec<(String, ArrayRef)> {
    let n = model.grids.len();
    let polys: Vec<MultiPolygon<f64>> = model.grids.iter().map(|g| g.geometry.clone()).collect();
    let nb = queen_neighbours(&polys, 0.01);
    let community: Vec<Option<usize>> = model
        .grids
        .iter()
        .map(|g| g.lineage.community.map(|c| c as usize))
        .collect();
    let street: Vec<Option<usize>> = model
        .grids
        .iter()
        .map(|g| g.lineage.street.map(|c| c as usize))
        .collect();
    let residents = released(release, Layer::Grid, n, "residents");
    let mut cols: Vec<(String, ArrayRef)> = Vec::new();
    for &c in &sn.hot_spots {
        let id = &sn.categories[c].id;
        let count = released(release, Layer::Grid, n, id);
        let rate: Vec<Option<f64>> = count
            .iter()
            .zip(&residents)
            .map(|(a, b)| match (a, b) {
                (Some(a), Some(b)) if *b > 0 => Some(*a as f64 / *b as f64),
                _ => None,
            })
            .collect();
        let gi = gi_star(&rate, &nb);
        let hot: BooleanArray = gi.iter().map(|g| g.map(|g| g >= sn.hot_spot_z)).collect();
        cols.push((
            format!("{id}_z_community"),
            Arc::new(Float64Array::from(sibling_z(&rate, &community))),
        ));
        cols.push((
            format!("{id}_z_street"),
            Arc::new(Float64Array::from(sibling_z(&rate, &street))),
        ));
        cols.push((format!("{id}_gi"), Arc::new(Float64Array::from(gi))));
        cols.push((format!("{id}_hot"), Arc::new(hot)));
    }
    cols
}

type Parts = (
    usize,
    Vec<Option<String>>,
    Vec<Lineage>,
    Vec<Option<f64>>,
    Vec<Option<Geometry<f64>>>,
);

fn area_parts<I>(v: &[crate::model::Area<I>]) -> Parts {
    (
        v.len(),
        v.iter().map(|u| u.name.clone()).collect(),
        v.iter().map(|u| u.lineage).collect(),
        v.iter().map(|u| Some(u.area_m2)).collect(),
        v.iter()
            .map(|u| Some(Geometry::MultiPolygon(u.geometry.clone())))
            .collect(),
    )
}

/// Writes `special_needs/<level>.parquet` and `.geojson` for every released level, the
/// remainders and suppression tables of the special-needs columns, and `summary.md`.
pub(crate) fn write(
    w: &mut GeoWriter<'_>,
    release: &Release,
    model: &Model,
    sn: &SpecialNeeds,
    policy: &Policy,
) -> Result<()> {
    let out = w.out;
    out.sub(DIR).create()?;
    let names = sn.count_names();
    let mut flagged: Vec<(String, String)> = Vec::new();
    for &level in release.levels() {
        let (units, unit_names, lineages, areas, geoms): Parts = level_parts(model, level);
        let get = |name: &str| released(release, level, units, name);
        let mut cols: Columns = vec![(
            format!("{}_id", level.singular()),
            Arc::new(StringArray::from_iter_values(
                (0..units as u32).map(|i| model.code(level, i)),
            )),
        )];
        cols.push(("name".into(), Arc::new(StringArray::from(unit_names))));
        cols.extend(parent_columns(model, level, &lineages));
        let area_name = if level == Layer::Building {
            "footprint_area_m2"
        } else {
            "area_m2"
        };
        cols.push((
            area_name.into(),
            Arc::new(Float64Array::from(areas.clone())),
        ));
        let residents = get("residents");
        cols.push(("households".into(), u64s(get("households"))));
        cols.push(("residents".into(), u64s(residents.clone())));
        age_columns(&get, level, &areas, &mut cols);
        for c in &sn.categories {
            let v = get(&c.id);
            cols.push((
                format!("{}_share", c.id),
                Arc::new(Float64Array::from(ratio(&v, &residents, 1.0))),
            ));
            cols.push((c.id.clone(), u64s(v)));
        }
        for name in names
            .iter()
            .filter(|n| n.starts_with("disabled_") || n.contains("_and_"))
            .filter(|n| !release.withheld(level, n))
        {
            cols.push((name.clone(), u64s(get(name))));
        }
        if level == Layer::Grid {
            let hs = hot_spot_columns(release, model, sn);
            flagged.extend(hot_grids(model, &hs));
            cols.extend(hs);
        }
        if policy.kind == OutputKind::Research {
            cols.push((
                "suppressed".into(),
                suppressed_with_base(release, level, units, &names),
            ));
        }
        w.write_as(&format!("{DIR}/{}", level.singular()), level, cols, geoms)?;
    }
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let files = release.write_tables(model, out, DIR, &name_refs)?;
    w.written.files.extend(files);
    let summary = summary(release, model, sn, policy, &flagged);
    out.sub(DIR).text("summary.md", summary)?;
    w.written.files.push(format!("{DIR}/summary.md"));
    Ok(())
}

/// A level's units: count, names, lineages, areas (footprint areas for buildings) and
/// geometries.
fn level_parts(model: &Model, level: Layer) -> Parts {
    match level {
        Layer::Street => area_parts(&model.streets),
        Layer::Community => area_parts(&model.communities),
        Layer::Grid => area_parts(&model.grids),
        _ => {
            let b = &model.buildings;
            (
                b.len(),
                b.iter().map(|x| x.name.clone()).collect(),
                b.iter().map(|x| x.lineage).collect(),
                b.iter()
                    .map(|x| x.footprint.as_ref().map(geo::Area::unsigned_area))
                    .collect(),
                b.iter()
                    .map(|x| {
                        Some(match &x.footprint {
                            Some(f) => Geometry::MultiPolygon(MultiPolygon::clone(f)),
                            None => Geometry::Point(x.point.into()),
                        })
                    })
                    .collect(),
            )
        }
    }
}

/// The age columns, dependency ratios and (above buildings) densities. 60+ and 65+ are
/// published only where every band they sum is.
fn age_columns(
    get: &dyn Fn(&str) -> Vec<Option<u64>>,
    level: Layer,
    areas: &[Option<f64>],
    cols: &mut Columns,
) {
    let units = areas.len();
    let (a0, a15, a60, a65, a80, unknown) = (
        get("age_0_14"),
        get("age_15_59"),
        get("age_60_64"),
        get("age_65_79"),
        get("age_80_plus"),
        get("age_unknown"),
    );
    let p60: Vec<Option<u64>> = (0..units)
        .map(|i| sum_all(&[&a60, &a65, &a80], i))
        .collect();
    let p65: Vec<Option<u64>> = (0..units).map(|i| sum_all(&[&a65, &a80], i)).collect();
    cols.push(("age_0_14".into(), u64s(a0.clone())));
    cols.push(("age_15_59".into(), u64s(a15.clone())));
    cols.push(("age_60_plus".into(), u64s(p60.clone())));
    cols.push(("age_65_plus".into(), u64s(p65)));
    cols.push(("age_80_plus".into(), u64s(a80)));
    cols.push(("age_unknown".into(), u64s(unknown)));
    let child = ratio(&a0, &a15, 100.0);
    let old = ratio(&p60, &a15, 100.0);
    let total: Float64Array = child
        .iter()
        .zip(old.iter())
        .map(|(a, b)| Some((*a)? + (*b)?))
        .collect();
    cols.push((
        "child_dependency_ratio".into(),
        Arc::new(Float64Array::from(child)),
    ));
    cols.push((
        "old_age_dependency_ratio".into(),
        Arc::new(Float64Array::from(old)),
    ));
    cols.push(("total_dependency_ratio".into(), Arc::new(total)));
    if level != Layer::Building {
        cols.push((
            "residents_per_km2".into(),
            Arc::new(per_km2(&get("residents"), areas)),
        ));
        cols.push(("age_60_plus_per_km2".into(), Arc::new(per_km2(&p60, areas))));
    }
}

/// (category, grid code) of every grid flagged as a hot spot in the `<id>_hot` columns.
fn hot_grids(model: &Model, hs: &Columns) -> Vec<(String, String)> {
    let mut flagged = Vec::new();
    for (name, a) in hs {
        if let Some(id) = name.strip_suffix("_hot") {
            let b = a.as_any().downcast_ref::<BooleanArray>().expect("bool");
            for i in 0..b.len() {
                if arrow_array::Array::is_valid(b, i) && b.value(i) {
                    flagged.push((id.to_owned(), model.code(Layer::Grid, i as u32).to_owned()));
                }
            }
        }
    }
    flagged
}

/// The person-readable summary.
fn summary(
    release: &Release,
    model: &Model,
    sn: &SpecialNeeds,
    policy: &Policy,
    flagged: &[(String, String)],
) -> String {
    let mut s = String::new();
    let top = release.levels().first().copied();
    let total = |name: &str| -> String {
        let Some(level) = top else {
            return "—".into();
        };
        let v = released(release, level, model.units(level), name);
        if v.iter().all(Option::is_some) {
            v.iter().flatten().sum::<u64>().to_string()
        } else {
            format!("{} (+ suppressed)", v.iter().flatten().sum::<u64>())
        }
    };
    let _ = writeln!(s, "# Special-needs populations\n");
    let _ = writeln!(
        s,
        "Reference date for ages: **{}**. Output: **{}**{}.\n",
        sn.reference_date,
        policy.kind.code(),
        if policy.kind == OutputKind::ResearchDp {
            " (every count with differentially private noise; see dp_accuracy.parquet and \
             docs/privacy.md)"
                .to_owned()
        } else if policy.kind == OutputKind::Research {
            format!(
                " (counts below k = {} suppressed, with complementary suppression; see docs/privacy.md)",
                policy.k
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(s, "Residents placed: {}.\n", total("residents"));
    let _ = writeln!(s, "## Categories\n");
    let _ = writeln!(s, "| id | 中文 | English | tier | residents | rule |");
    let _ = writeln!(s, "|---|---|---|---|---:|---|");
    for c in &sn.categories {
        let rule = serde_json::to_string(&c.rule).unwrap_or_default();
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} | `{}` |",
            c.id,
            c.zh,
            c.en,
            match c.tier {
                Tier::Care => "care",
                Tier::Restricted => "restricted",
            },
            total(&c.id),
            rule
        );
    }
    if !sn.unavailable.is_empty() {
        let _ = writeln!(s, "\nNot computed:\n");
        for (id, why) in &sn.unavailable {
            let _ = writeln!(s, "- `{id}`: {why}");
        }
    }
    let _ = writeln!(s, "\n## Age\n");
    for b in [
        "age_0_14",
        "age_15_59",
        "age_60_64",
        "age_65_79",
        "age_80_plus",
        "age_unknown",
    ] {
        let _ = writeln!(s, "- {b}: {}", total(b));
    }
    let missing = sn.issues.len();
    if missing > 0 {
        let _ = writeln!(
            s,
            "\n{missing} residents have no usable birth date: they are counted in `age_unknown` and \
             get no age-based label (listed in quality.parquet, not guessed)."
        );
    }
    let _ = writeln!(s, "\n## Hot spots (grids)\n");
    let _ = writeln!(
        s,
        "Method: for each category, the grid's rate (count / residents) is compared with the \
         grids of its community and of its street (z-score, population standard deviation, at \
         least 3 grids), and the local Getis-Ord Gi* statistic is computed over queen \
         contiguity (grids sharing a vertex, snapped to 1 cm; binary weights including the grid \
         itself, as PySAL `esda.G_Local(star=True, transform=\"B\")`). A grid is a hot spot when \
         Gi* ≥ {}.{}\n",
        sn.hot_spot_z,
        if policy.kind == OutputKind::Research {
            " Only published counts are used: grids with a suppressed count or residents have no \
             statistic."
        } else {
            ""
        }
    );
    if flagged.is_empty() {
        let _ = writeln!(s, "No grid reaches the threshold.");
    } else {
        let _ = writeln!(s, "| category | grid |");
        let _ = writeln!(s, "|---|---|");
        for (c, g) in flagged {
            let _ = writeln!(s, "| `{c}` | {g} |");
        }
    }
    let _ = writeln!(
        s,
        "\n## Roll-ups\n\nA unit's count equals the sum of its children's counts plus the people \
         placed in it but in none of its children, listed in `special_needs/remainders.parquet`."
    );
    s
}

/// Per unit: the base counts and `names` the release hides there.
fn suppressed_with_base(
    release: &Release,
    level: Layer,
    units: usize,
    names: &[String],
) -> ArrayRef {
    let mut all: Vec<&str> = vec!["households", "residents"];
    all.extend(names.iter().map(String::as_str));
    suppressed_column(release, level, units, &all)
}
