//! Buildings: footprints or points, placed in the finest polygon level.

use geo::orient::{Direction, Orient};
use geo::{Coord, CoordsIter, Geometry, InteriorPoint, MultiPolygon};
use rayon::prelude::*;

use super::polygons::{Checked, id_lookup, model_units};
use super::spatial::Staged;
use crate::index::PolygonIndex;
use crate::model::build::{Builder, type_name};
use crate::model::checks;
use crate::model::ids::BuildingId;
use crate::model::level::Layer;
use crate::model::quality::{IssueKind, Severity};
use crate::model::{Building, Lineage, Model};

impl Builder<'_> {
    /// Each building's footprint (checked) or point; other geometry is rejected.
    fn building_shapes(&mut self, s: &mut Staged) -> Vec<(usize, Shape)> {
        let shapes: Vec<(usize, Checked<Shape>)> = s
            .geoms
            .par_iter_mut()
            .enumerate()
            .filter_map(|(i, g)| {
                let g = g.take()?;
                let r = match g {
                    Geometry::Point(p) => Ok((None, p.0)),
                    Geometry::Polygon(p) => footprint(MultiPolygon(vec![p])),
                    Geometry::MultiPolygon(mp) => footprint(mp),
                    other => Err((
                        IssueKind::MissingGeometry,
                        format!(
                            "expected a footprint polygon or a point, found {}",
                            type_name(&other)
                        ),
                    )),
                };
                Some((i, r))
            })
            .collect();
        let mut accepted = Vec::with_capacity(shapes.len());
        for (i, r) in shapes {
            match r {
                Ok(v) => accepted.push((i, v)),
                Err((kind, detail)) => self.reject(s, i, kind, detail),
            }
        }
        accepted
    }

    /// Places every building with usable geometry in the finest polygon level by the parent
    /// rule (a footprint across units goes to the one holding most of it, the rest reported).
    pub(crate) fn place_buildings(
        &mut self,
        model: &mut Model,
        s: &mut Staged,
        finest: Option<(Layer, &PolygonIndex)>,
    ) {
        let accepted = self.building_shapes(s);
        let rule = self.job.options.parent_rule;
        let tol = self.job.options.area_tolerance_m2;
        let mut placed_buildings: Vec<(usize, Shape, Lineage)> = Vec::new();
        if let Some((level, index)) = finest {
            let pts: Vec<Option<Coord<f64>>> =
                accepted.iter().map(|(_, (_, p))| Some(*p)).collect();
            let at_point = index.locate_all(&pts);
            let parent_ids = id_lookup(model, level);
            let parent_geoms = model_units(model, level);
            // A footprint that straddles units goes to the one holding most of its area (its
            // interior point may lie in the smaller part); the area outside is reported below.
            let located: Vec<Option<u32>> = accepted
                .par_iter()
                .zip(&at_point)
                .map(|((_, (fp, _)), &loc)| match fp {
                    Some(fp) if !fp.exterior_coords_iter().all(|c| index.locate(c) == loc) => {
                        checks::largest_overlap(fp, index, &parent_geoms, None).or(loc)
                    }
                    _ => loc,
                })
                .collect();
            let crossings = checks::footprint_crossings(
                &accepted
                    .iter()
                    .zip(&located)
                    .map(|((_, (fp, _)), loc)| (fp.as_ref(), *loc))
                    .collect::<Vec<_>>(),
                index,
                &parent_geoms,
                tol,
            );
            let mut crossing_at = crossings.into_iter().peekable();
            for (k, ((i, (fp, p)), sp)) in accepted.into_iter().zip(located).enumerate() {
                let id = s.ids[i].clone().expect("rows without id are rejected");
                let placed = self.choose_parent(
                    Layer::Building,
                    Some(i),
                    &id,
                    s.parents[i].as_deref(),
                    &parent_ids,
                    sp,
                    rule,
                    model,
                    level,
                );
                while crossing_at.peek().is_some_and(|(j, _)| *j < k) {
                    crossing_at.next();
                }
                if let Some((_, area)) = crossing_at.next_if(|(j, _)| *j == k) {
                    self.report.push(
                        Layer::Building,
                        Some(i),
                        Some(&id),
                        IssueKind::CrossesParent,
                        Severity::Warning,
                        format!(
                            "the footprint straddles {}s: {area:.1} m² of it lies outside the \
                             {} it is placed in, which holds the largest part",
                            level.singular(),
                            level.singular()
                        ),
                    );
                }
                if let Some(parent) = placed {
                    placed_buildings.push((i, (fp, p), model.lineage(level, parent)));
                }
            }
        } else {
            placed_buildings = accepted
                .into_iter()
                .map(|(i, shape)| (i, shape, Lineage::default()))
                .collect();
        }
        for (i, (footprint, point), mut lineage) in placed_buildings {
            lineage.building = Some(model.buildings.len() as u32);
            model.buildings.push(Building {
                id: BuildingId::new(s.ids[i].as_deref().expect("rows without id are rejected")),
                name: s.names[i].take(),
                footprint,
                point,
                declared_parent: s.parents[i].take(),
                lineage,
                source_index: i,
            });
        }
        self.reads.insert(Layer::Building, s.geoms.len());
    }
}

/// A building's footprint (if any) and representative point.
pub(crate) type Shape = (Option<MultiPolygon<f64>>, Coord<f64>);

pub(crate) fn footprint(mp: MultiPolygon<f64>) -> Checked<Shape> {
    if let Err(e) = checks::validate(&mp) {
        return Err((IssueKind::InvalidGeometry, e));
    }
    let p = mp
        .interior_point()
        .ok_or((IssueKind::MissingGeometry, "empty footprint".to_owned()))?;
    Ok((Some(mp.orient(Direction::Default)), p.0))
}
