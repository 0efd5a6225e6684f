//! The columns every level table shares: parent ids, id/name/area, counts, densities.

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, StringArray, UInt64Array};
use geo::Geometry;

use super::{Columns, Counts, Tally, release::Release};
use crate::model::level::Layer;
use crate::model::{Area, Lineage, Model};

/// The ids up the chain of a lineage, as output columns.
pub(crate) fn parent_columns(
    model: &Model,
    layer: Layer,
    lineages: &[Lineage],
) -> Vec<(String, ArrayRef)> {
    let mut cols = Vec::new();
    for parent in [Layer::Grid, Layer::Community, Layer::Street] {
        if parent >= layer || !model.has(parent) {
            continue;
        }
        let ids: StringArray = lineages
            .iter()
            .map(|l| l.at(parent).map(|i| model.code(parent, i)))
            .collect();
        cols.push((
            format!("{}_id", parent.singular()),
            Arc::new(ids) as ArrayRef,
        ));
    }
    cols
}

/// The columns of an area layer: id, name, parent ids, area, the given count columns, then
/// `derived` and `source_index`; and the geometries.
pub(crate) fn area_columns<I: AsRef<str>>(
    model: &Model,
    layer: Layer,
    units: &[Area<I>],
    counts: Columns,
) -> (Columns, Vec<Option<Geometry<f64>>>) {
    let mut cols: Vec<(String, ArrayRef)> = vec![
        (
            format!("{}_id", layer.singular()),
            Arc::new(
                units
                    .iter()
                    .map(|u| Some(u.id.as_ref()))
                    .collect::<StringArray>(),
            ),
        ),
        (
            "name".into(),
            Arc::new(
                units
                    .iter()
                    .map(|u| u.name.as_deref())
                    .collect::<StringArray>(),
            ),
        ),
    ];
    let lineages: Vec<Lineage> = units.iter().map(|u| u.lineage).collect();
    cols.extend(parent_columns(model, layer, &lineages));
    cols.push((
        "area_m2".into(),
        Arc::new(Float64Array::from_iter_values(
            units.iter().map(|u| u.area_m2),
        )),
    ));
    cols.extend(counts);
    cols.push((
        "derived".into(),
        Arc::new(BooleanArray::from_iter(
            units.iter().map(|u| Some(u.source_index.is_none())),
        )),
    ));
    cols.push((
        "source_index".into(),
        Arc::new(UInt64Array::from_iter(
            units.iter().map(|u| u.source_index.map(|i| i as u64)),
        )),
    ));
    let geoms = units
        .iter()
        .map(|u| Some(Geometry::MultiPolygon(u.geometry.clone())))
        .collect();
    (cols, geoms)
}

/// The base count columns of every level table.
pub const BASE_COLUMNS: [&str; 5] = [
    "households",
    "residents",
    "residents_male",
    "residents_female",
    "residents_sex_unknown",
];

/// Count columns of a level table: buildings (not personal: never suppressed), the released
/// base counts, residents per km² (null where `residents` is), and in research runs the
/// `suppressed` column.
pub(crate) fn count_columns(
    release: &Release,
    layer: Layer,
    counts: &[Counts],
    area_m2: Option<&[f64]>,
) -> Columns {
    let mut cols: Columns = Vec::new();
    if layer != Layer::Building {
        cols.push((
            "buildings".into(),
            Arc::new(UInt64Array::from_iter_values(
                counts.iter().map(|c| c[Tally::BUILDINGS]),
            )),
        ));
    }
    let mut published = release.arrays(layer, counts.len(), &BASE_COLUMNS);
    let suppressed =
        (published.len() > BASE_COLUMNS.len()).then(|| published.pop().expect("column"));
    cols.extend(published);
    if let Some(areas) = area_m2 {
        cols.push((
            "residents_per_km2".into(),
            Arc::new(per_km2(
                &(0..areas.len() as u32)
                    .map(|u| release.count(layer, u, "residents"))
                    .collect::<Vec<_>>(),
                &areas.iter().map(|a| Some(*a)).collect::<Vec<_>>(),
            )),
        ));
    }
    cols.extend(suppressed);
    cols
}

/// Counts per km² (areas in m²), null where the count is suppressed or the area unknown or 0.
pub(crate) fn per_km2(counts: &[Option<u64>], areas_m2: &[Option<f64>]) -> Float64Array {
    counts
        .iter()
        .zip(areas_m2)
        .map(|(n, a)| match (n, a) {
            (Some(n), Some(a)) if *a > 0.0 => Some(*n as f64 / (a / 1e6)),
            _ => None,
        })
        .collect()
}

/// Per unit: the count columns among `names` the release hides there (not those withheld at
/// the whole level), comma-separated; null where none is hidden.
pub(crate) fn suppressed_column<S: AsRef<str>>(
    release: &Release,
    level: Layer,
    units: usize,
    names: &[S],
) -> ArrayRef {
    let s: StringArray = (0..units as u32)
        .map(|u| {
            let hidden: Vec<&str> = names
                .iter()
                .map(AsRef::as_ref)
                .filter(|n| release.count(level, u, n).is_none() && !release.withheld(level, n))
                .collect();
            (!hidden.is_empty()).then(|| hidden.join(","))
        })
        .collect();
    Arc::new(s)
}

/// `a / b * scale` per unit, where both are published and `b` is positive.
pub(crate) fn ratio(a: &[Option<u64>], b: &[Option<u64>], scale: f64) -> Vec<Option<f64>> {
    a.iter()
        .zip(b)
        .map(|(a, b)| match (a, b) {
            (Some(a), Some(b)) if *b > 0 => Some(*a as f64 / *b as f64 * scale),
            _ => None,
        })
        .collect()
}
