//! Service facilities: points with a type and a capacity, placed where they lie.

use geo::Geometry;

use super::spatial::Staged;
use crate::index::PolygonIndex;
use crate::io::table::{clean_code, parse_number};
use crate::model::build::{Builder, type_name};
use crate::model::ids::FacilityId;
use crate::model::level::Layer;
use crate::model::quality::{IssueKind, Severity};
use crate::model::{Facility, Lineage, Model};

impl Builder<'_> {
    pub(crate) fn place_facilities(
        &mut self,
        model: &mut Model,
        s: &mut Staged,
        finest: Option<(Layer, &PolygonIndex)>,
    ) {
        let n = s.geoms.len();
        let mut pts = Vec::with_capacity(n);
        for i in 0..n {
            match s.geoms[i].take() {
                None => pts.push(None),
                Some(Geometry::Point(p)) => pts.push(Some(p.0)),
                Some(other) => {
                    pts.push(None);
                    let t = type_name(&other);
                    self.reject(
                        s,
                        i,
                        IssueKind::MissingGeometry,
                        format!("expected a point, found {t}"),
                    );
                }
            }
        }
        let located = match finest {
            Some((_, idx)) => idx.locate_all(&pts),
            None => vec![None; n],
        };
        let has_capacity = s.extra.len() > 1;
        for i in 0..n {
            let Some(p) = pts[i] else { continue };
            let id = s.ids[i].clone().expect("rows without id are rejected");
            let kind = s.extra[0][i].as_deref().and_then(clean_code);
            let Some(kind) = kind else {
                self.report.push(
                    Layer::Facility,
                    Some(i),
                    Some(&id),
                    IssueKind::BadValue,
                    Severity::Rejected,
                    "no facility type",
                );
                continue;
            };
            let capacity = if has_capacity {
                match s.extra[1][i].as_deref() {
                    None => None,
                    Some(v) if v.trim().is_empty() => None,
                    Some(v) => match parse_number(v).filter(|c| *c >= 0.0) {
                        Some(c) => Some(c),
                        None => {
                            self.report.push(
                                Layer::Facility,
                                Some(i),
                                Some(&id),
                                IssueKind::BadValue,
                                Severity::Warning,
                                format!("capacity {v:?} is not a non-negative number; left empty"),
                            );
                            None
                        }
                    },
                }
            } else {
                None
            };
            let lineage = match (finest, located[i]) {
                (Some((level, _)), Some(a)) => model.lineage(level, a),
                (Some((level, _)), None) => {
                    self.report.push(
                        Layer::Facility,
                        Some(i),
                        Some(&id),
                        IssueKind::OutsideParent,
                        Severity::Warning,
                        format!(
                            "lies outside every {}; kept, as it may serve residents nearby",
                            level.singular()
                        ),
                    );
                    Lineage::default()
                }
                (None, _) => Lineage::default(),
            };
            model.facilities.push(Facility {
                id: FacilityId::new(&id),
                name: s.names[i].take(),
                kind,
                capacity,
                point: p,
                lineage,
                source_index: i,
            });
        }
        self.reads.insert(Layer::Facility, n);
    }
}
