//! Polygon levels: geometry checked, parents chosen by the parent rule, missing levels derived.

use foldhash::HashMap;
use geo::orient::{Direction, Orient};
use geo::{Area as _, Geometry, MultiPolygon};
use rayon::prelude::*;

use super::spatial::Staged;
use crate::index::PolygonIndex;
use crate::job::ParentRule;
use crate::model::build::{Builder, type_name};
use crate::model::checks;
use crate::model::level::Layer;
use crate::model::quality::{IssueKind, Severity};
use crate::model::unit::Unit;
use crate::model::{Area, Lineage, Model};

impl Builder<'_> {
    /// Checks polygon geometry and turns accepted rows into units.
    pub(crate) fn accept_polygons(&mut self, s: &mut Staged) -> Vec<Unit> {
        let verdicts: Vec<(usize, Checked<MultiPolygon<f64>>)> = s
            .geoms
            .par_iter_mut()
            .enumerate()
            .filter_map(|(i, g)| {
                let g = g.take()?;
                let mp = match g {
                    Geometry::Polygon(p) => MultiPolygon(vec![p]),
                    Geometry::MultiPolygon(mp) => mp,
                    other => {
                        return Some((
                            i,
                            Err((
                                IssueKind::MissingGeometry,
                                format!("expected a polygon, found {}", type_name(&other)),
                            )),
                        ));
                    }
                };
                Some((
                    i,
                    match checks::validate(&mp) {
                        // One winding for every ring (exteriors counter-clockwise, holes
                        // clockwise), whatever the file had: dissolving and the overlay checks
                        // read a ring wound the other way as a hole.
                        Ok(()) => Ok(mp.orient(Direction::Default)),
                        Err(e) => Err((IssueKind::InvalidGeometry, e)),
                    },
                ))
            })
            .collect();
        let mut out = Vec::new();
        for (i, v) in verdicts {
            match v {
                Ok(mp) => out.push(Unit {
                    id: s.ids[i].clone().expect("rows without id are rejected"),
                    name: s.names[i].take(),
                    area_m2: mp.unsigned_area(),
                    geometry: mp,
                    declared_parent: s.parents[i].take(),
                    lineage: Lineage::default(),
                    source_index: Some(i),
                }),
                Err((kind, detail)) => self.reject(s, i, kind, detail),
            }
        }
        self.reads.insert(s.layer, s.geoms.len());
        out
    }

    /// Sets each unit's parent (and lineage) by the parent rule; rejects units with none.
    pub(crate) fn place_polygons(
        &mut self,
        model: &Model,
        layer: Layer,
        us: &mut Vec<Unit>,
        parent_level: Layer,
        index: &PolygonIndex,
    ) {
        let parent_ids = id_lookup(model, parent_level);
        let parent_geoms = model_units(model, parent_level);
        let spatial: Vec<Option<u32>> = us
            .par_iter()
            .map(|u| {
                let hint = u
                    .declared_parent
                    .as_deref()
                    .and_then(|d| parent_ids.get(d).copied());
                checks::largest_overlap(&u.geometry, index, &parent_geoms, hint)
            })
            .collect();
        let rule = self.job.options.parent_rule;
        let mut keep = Vec::with_capacity(us.len());
        for (u, sp) in us.drain(..).zip(spatial) {
            let placed = self.choose_parent(
                layer,
                u.source_index,
                &u.id,
                u.declared_parent.as_deref(),
                &parent_ids,
                sp,
                rule,
                model,
                parent_level,
            );
            if let Some(p) = placed {
                let mut u = u;
                u.lineage = model.lineage(parent_level, p);
                keep.push(u);
            }
        }
        *us = keep;
    }

    /// Applies the parent rule to one child and reports what it finds.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn choose_parent(
        &mut self,
        layer: Layer,
        index: Option<usize>,
        id: &str,
        declared: Option<&str>,
        parent_ids: &HashMap<&str, u32>,
        spatial: Option<u32>,
        rule: ParentRule,
        model: &Model,
        parent_level: Layer,
    ) -> Option<u32> {
        let code = |p: u32| model.code(parent_level, p).to_owned();
        let mut note = |kind, severity, detail: String| {
            self.report
                .push(layer, index, Some(id), kind, severity, detail)
        };
        let declared_idx = declared.map(|d| (d, parent_ids.get(d).copied()));
        match (declared_idx, spatial) {
            (Some((_, Some(d))), Some(s)) if d == s => Some(d),
            (Some((_, Some(d))), Some(s)) => {
                let winner = if rule == ParentRule::Declared { d } else { s };
                note(
                    IssueKind::ParentConflict,
                    Severity::Warning,
                    format!(
                        "declared {} {:?} but lies in {:?}; {} wins",
                        parent_level.singular(),
                        code(d),
                        code(s),
                        if rule == ParentRule::Declared {
                            "declared"
                        } else {
                            "spatial"
                        }
                    ),
                );
                Some(winner)
            }
            (Some((_, Some(d))), None) => {
                note(
                    IssueKind::OutsideParent,
                    Severity::Warning,
                    format!(
                        "lies in no {}; placed by its declared code {:?}",
                        parent_level.singular(),
                        code(d)
                    ),
                );
                Some(d)
            }
            (Some((dcode, None)), Some(s)) => {
                note(
                    IssueKind::UnknownParent,
                    Severity::Warning,
                    format!(
                        "declared {} {dcode:?} does not exist; placed in {:?} by location",
                        parent_level.singular(),
                        code(s)
                    ),
                );
                Some(s)
            }
            (Some((dcode, None)), None) => {
                note(
                    IssueKind::UnknownParent,
                    Severity::Rejected,
                    format!(
                        "declared {} {dcode:?} does not exist and it lies in no {}",
                        parent_level.singular(),
                        parent_level.singular()
                    ),
                );
                None
            }
            (None, Some(s)) => Some(s),
            (None, None) => {
                note(
                    IssueKind::OutsideParent,
                    Severity::Rejected,
                    format!("lies outside every {}", parent_level.singular()),
                );
                None
            }
        }
    }
}

/// A row's geometry after checking, or the issue that rejects it.
pub(crate) type Checked<T> = std::result::Result<T, (IssueKind, String)>;

/// Dissolves children into parents by their declared parent codes.
pub(crate) fn derive_by_dissolve(children: &[Unit], parent_prefix: Option<usize>) -> Vec<Unit> {
    let mut groups: std::collections::BTreeMap<&str, Vec<&MultiPolygon<f64>>> = Default::default();
    for c in children {
        if let Some(p) = c.declared_parent.as_deref() {
            groups.entry(p).or_default().push(&c.geometry);
        }
    }
    groups
        .into_par_iter()
        .map(|(code, parts)| {
            let geometry = geo::unary_union(parts.iter().copied());
            Unit {
                id: code.to_owned(),
                name: None,
                area_m2: geometry.unsigned_area(),
                geometry,
                declared_parent: parent_prefix.and_then(|k| code.get(..k)).map(str::to_owned),
                lineage: Lineage::default(),
                source_index: None,
            }
        })
        .collect()
}

pub(crate) fn store_units(model: &mut Model, layer: Layer, us: Vec<Unit>) {
    pub(crate) fn conv<I: for<'a> From<&'a str>>(us: Vec<Unit>) -> Vec<Area<I>> {
        us.into_iter()
            .map(|u| Area {
                id: I::from(u.id.as_str()),
                name: u.name,
                geometry: u.geometry,
                area_m2: u.area_m2,
                declared_parent: u.declared_parent,
                lineage: u.lineage,
                source_index: u.source_index,
            })
            .collect()
    }
    match layer {
        Layer::Street => model.streets = conv(us),
        Layer::Community => model.communities = conv(us),
        Layer::Grid => model.grids = conv(us),
        _ => unreachable!("only polygon levels are stored as units"),
    }
}

/// (geometry, source index, id) of the units of a polygon level.
pub(crate) fn model_units(
    model: &Model,
    layer: Layer,
) -> Vec<(&MultiPolygon<f64>, Option<usize>, &str)> {
    pub(crate) fn get<I: AsRef<str>>(
        v: &[Area<I>],
    ) -> Vec<(&MultiPolygon<f64>, Option<usize>, &str)> {
        v.iter()
            .map(|a| (&a.geometry, a.source_index, a.id.as_ref()))
            .collect()
    }
    match layer {
        Layer::Street => get(&model.streets),
        Layer::Community => get(&model.communities),
        Layer::Grid => get(&model.grids),
        _ => Vec::new(),
    }
}

pub(crate) fn id_lookup(model: &Model, layer: Layer) -> HashMap<&str, u32> {
    model_units(model, layer)
        .into_iter()
        .enumerate()
        .map(|(i, (_, _, id))| (id, i as u32))
        .collect()
}
