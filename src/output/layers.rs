//! The model's own level tables: areas, buildings and facilities, with their count columns.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, StringArray, UInt64Array};
use geo::{Geometry, MultiPolygon};

use super::Columns;
use super::columns::area_columns;
use crate::model::level::Layer;
use crate::model::{Lineage, Model};
use crate::output::parent_columns;

/// A table's columns and geometries.
type Table = (Columns, Vec<Option<Geometry<f64>>>);

/// An area level's table; `counts` gives a level's count columns from its areas.
pub(super) fn areas(
    model: &Model,
    layer: Layer,
    counts: &dyn Fn(Layer, Option<Vec<f64>>) -> Columns,
) -> Table {
    match layer {
        Layer::Street => {
            let a = model.streets.iter().map(|u| u.area_m2).collect();
            area_columns(model, layer, &model.streets, counts(layer, Some(a)))
        }
        Layer::Community => {
            let a = model.communities.iter().map(|u| u.area_m2).collect();
            area_columns(model, layer, &model.communities, counts(layer, Some(a)))
        }
        _ => {
            let a = model.grids.iter().map(|u| u.area_m2).collect();
            area_columns(model, layer, &model.grids, counts(layer, Some(a)))
        }
    }
}

/// The buildings table: id, name, parent ids, footprint area, `counts`, source index.
pub(super) fn buildings(model: &Model, counts: Columns) -> Table {
    let b = &model.buildings;
    let mut cols: Vec<(String, ArrayRef)> = vec![
        (
            "building_id".into(),
            Arc::new(
                b.iter()
                    .map(|x| Some(x.id.as_str()))
                    .collect::<StringArray>(),
            ),
        ),
        (
            "name".into(),
            Arc::new(b.iter().map(|x| x.name.as_deref()).collect::<StringArray>()),
        ),
    ];
    let lineages: Vec<Lineage> = b.iter().map(|x| x.lineage).collect();
    cols.extend(parent_columns(model, Layer::Building, &lineages));
    cols.push((
        "footprint_area_m2".into(),
        Arc::new(Float64Array::from_iter(
            b.iter()
                .map(|x| x.footprint.as_ref().map(geo::Area::unsigned_area)),
        )),
    ));
    cols.extend(counts);
    cols.push((
        "source_index".into(),
        Arc::new(UInt64Array::from_iter_values(
            b.iter().map(|x| x.source_index as u64),
        )),
    ));
    let geoms = b
        .iter()
        .map(|x| {
            Some(match &x.footprint {
                Some(f) => Geometry::MultiPolygon(MultiPolygon::clone(f)),
                None => Geometry::Point(x.point.into()),
            })
        })
        .collect();
    (cols, geoms)
}

/// The facilities table: id, name, type, capacity, parent ids.
pub(super) fn facilities(model: &Model) -> Table {
    let f = &model.facilities;
    let mut cols: Vec<(String, ArrayRef)> = vec![
        (
            "facility_id".into(),
            Arc::new(
                f.iter()
                    .map(|x| Some(x.id.as_str()))
                    .collect::<StringArray>(),
            ),
        ),
        (
            "name".into(),
            Arc::new(f.iter().map(|x| x.name.as_deref()).collect::<StringArray>()),
        ),
        (
            "type".into(),
            Arc::new(
                f.iter()
                    .map(|x| Some(x.kind.as_str()))
                    .collect::<StringArray>(),
            ),
        ),
        (
            "capacity".into(),
            Arc::new(Float64Array::from_iter(f.iter().map(|x| x.capacity))),
        ),
    ];
    let lineages: Vec<Lineage> = f.iter().map(|x| x.lineage).collect();
    cols.extend(parent_columns(model, Layer::Facility, &lineages));
    let geoms = f
        .iter()
        .map(|x| Some(Geometry::Point(x.point.into())))
        .collect();
    (cols, geoms)
}
