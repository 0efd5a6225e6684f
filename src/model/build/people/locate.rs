//! Placing households: by building code, else by coordinates in footprints, buildings and areas.

use std::borrow::Cow;

use foldhash::HashMap;
use geo::{BoundingRect, Coord, MultiPolygon};
use rayon::prelude::*;
use rstar::RTree;
use rstar::primitives::GeomWithData;

use super::households::HouseholdRows;
use crate::index::{PolygonIndex, ranks_by_id};
use crate::model::build::Builder;
use crate::model::duplicates::duplicates;
use crate::model::level::Layer;
use crate::model::quality::{IssueKind, Severity};
use crate::model::{Household, Lineage, Model};

/// No unit or building.
const NONE: u32 = u32::MAX;
/// Households per parallel task (each reports its progress once).
const CHUNK: usize = 16 * 1024;

/// The frame's buildings, indexed once for placing households: by code, by footprint
/// (point-in-polygon) and by point (nearest within `building_search_m`).
pub(crate) struct BuildingIndex<'m> {
    ids: HashMap<&'m str, u32>,
    footprints: Option<PolygonIndex>,
    points: RTree<GeomWithData<[f64; 2], u32>>,
    /// Per building: the area every point of its footprint's box lies in, where the area index
    /// shows one at once (most footprints lie well inside a grid); a household found in that
    /// footprint then needs no area lookup of its own. `NONE` otherwise.
    area_of_footprint: Vec<u32>,
    search2: f64,
}

impl<'m> BuildingIndex<'m> {
    /// Indexes the model's buildings; `finest` is the finest polygon level and its index.
    pub(crate) fn new(
        model: &'m Model,
        finest: Option<(Layer, &PolygonIndex)>,
        search_m: f64,
    ) -> Self {
        let b = &model.buildings;
        let ids = b
            .iter()
            .enumerate()
            .map(|(i, b)| (b.id.as_str(), i as u32))
            .collect();
        let footprints = b.iter().any(|b| b.footprint.is_some()).then(|| {
            let polys: Vec<Option<&MultiPolygon<f64>>> =
                b.iter().map(|b| b.footprint.as_ref()).collect();
            let ids: Vec<&str> = b.iter().map(|b| b.id.as_str()).collect();
            PolygonIndex::new(&polys, &ranks_by_id(&ids))
        });
        let points = RTree::bulk_load(
            b.iter()
                .enumerate()
                .filter(|(_, b)| b.footprint.is_none())
                .map(|(i, b)| GeomWithData::new([b.point.x, b.point.y], i as u32))
                .collect(),
        );
        let area_of_footprint = match (finest, &footprints) {
            (Some((_, idx)), Some(_)) => b
                .par_iter()
                .map(|b| {
                    b.footprint
                        .as_ref()
                        .and_then(|f| f.bounding_rect())
                        .and_then(|r| idx.owner_of_box(r.min(), r.max()))
                        .unwrap_or(NONE)
                })
                .collect(),
            _ => Vec::new(),
        };
        BuildingIndex {
            ids,
            footprints,
            points,
            area_of_footprint,
            search2: search_m.powi(2),
        }
    }

    /// The building with this code, if the model has it.
    pub(crate) fn by_code(&self, code: &str) -> Option<u32> {
        self.ids.get(code).copied()
    }

    /// The area (of the finest level) and the building a location lies in or next to.
    fn locate(&self, c: Coord<f64>, finest: Option<&PolygonIndex>) -> [u32; 2] {
        let in_footprint = self.footprints.as_ref().and_then(|fi| fi.locate(c));
        // (No polygon level: no areas of footprints either.)
        let area = match in_footprint.and_then(|b| self.area_of_footprint.get(b as usize)) {
            Some(&a) if a != NONE => Some(a),
            _ => finest.and_then(|idx| idx.locate(c)),
        };
        let building = in_footprint.or_else(|| {
            self.points
                .nearest_neighbor(&[c.x, c.y])
                .filter(|b| {
                    let (dx, dy) = (b.geom()[0] - c.x, b.geom()[1] - c.y);
                    dx * dx + dy * dy <= self.search2
                })
                .map(|b| b.data)
        });
        [area.unwrap_or(NONE), building.unwrap_or(NONE)]
    }
}

/// Where a row's coordinates fall: the area (of the finest level) and the building, and the
/// lineage of every area when the frame is a street's part (else the model gives it).
#[derive(Clone, Copy)]
struct Found<'a> {
    area: Option<u32>,
    building: Option<u32>,
    areas: Option<&'a [Lineage]>,
}

impl Builder<'_> {
    /// Places every household row that is not rejected: by a known building code, else by its
    /// coordinates. Rows that cannot be placed are reported.
    pub(crate) fn place_households(
        &mut self,
        model: &mut Model,
        rows: HouseholdRows,
        finest: Option<(Layer, &PolygonIndex)>,
    ) {
        self.reads.insert(Layer::Household, rows.rows_read);
        model.households = self.placed_households(model, rows, finest, None, None);
    }

    /// The households of `rows` that can be placed, in row order; the others are reported.
    /// `firsts` gives, for each row, the first row with the same id when it repeats one (found
    /// across every row of the layer, as [`HouseholdPlacer`](super::HouseholdPlacer) does);
    /// `None` finds repeats among `rows`. `areas`, when given, is the lineage of each area of
    /// `finest` (a street's part of the frame: see [`StreetPiece`](super::StreetPiece)); else
    /// the model gives it.
    pub(crate) fn placed_households(
        &mut self,
        model: &Model,
        mut rows: HouseholdRows,
        finest: Option<(Layer, &PolygonIndex)>,
        firsts: Option<&[Option<u32>]>,
        areas: Option<&[Lineage]>,
    ) -> Vec<Household> {
        self.reject_missing_ids(&mut rows);
        self.reject_repeated_ids(&mut rows, firsts);
        let search = self.job.options.building_search_m;
        let index = BuildingIndex::new(model, finest, search);
        self.lap("place households: ids, building index");
        let located = self.locate_households(&rows, &index, finest.map(|(_, i)| i));
        self.lap("point-in-polygon (households into grids and buildings)");
        let mut out = Vec::with_capacity(rows.ids.len());
        for (i, &[a, b]) in located.iter().enumerate() {
            if rows.rejected[i] {
                continue;
            }
            let found = Found {
                area: (a != NONE).then_some(a),
                building: (b != NONE).then_some(b),
                areas,
            };
            let lineage = self.household_lineage(model, &rows, i, &index, found, finest);
            out.push(Household {
                id: rows.ids[i].take().expect("rows without id are rejected"),
                location: rows.coords[i],
                lineage: lineage.unwrap_or_default(),
                placed: lineage.is_some(),
                residents: 0,
                source_index: rows.source[i],
            });
        }
        out
    }

    /// Rejects rows without an id.
    pub(crate) fn reject_missing_ids(&mut self, rows: &mut HouseholdRows) {
        for i in 0..rows.ids.len() {
            if !rows.rejected[i] && rows.ids[i].is_none() {
                self.report.push(
                    Layer::Household,
                    Some(rows.source[i]),
                    None,
                    IssueKind::MissingId,
                    Severity::Rejected,
                    "empty id",
                );
                rows.rejected[i] = true;
            }
        }
    }

    /// Rejects rows repeating an earlier row's id: given by `firsts`, else found in `rows`.
    fn reject_repeated_ids(&mut self, rows: &mut HouseholdRows, firsts: Option<&[Option<u32>]>) {
        let dup: Vec<(usize, usize)> = match firsts {
            Some(f) => (0..rows.ids.len())
                .filter(|&i| !rows.rejected[i])
                .filter_map(|i| f[i].map(|j| (i, j as usize)))
                .collect(),
            None => duplicates(rows.ids.len(), |i| {
                (!rows.rejected[i])
                    .then(|| rows.id(i).map(Cow::Borrowed))
                    .flatten()
            })
            .into_iter()
            .map(|(i, j)| (i as usize, rows.source[j as usize]))
            .collect(),
        };
        for (i, first) in dup {
            self.report.push(
                Layer::Household,
                Some(rows.source[i]),
                rows.id(i),
                IssueKind::DuplicateId,
                Severity::Rejected,
                format!("id already used by row {first}"),
            );
            rows.rejected[i] = true;
        }
    }

    /// Per row, in parallel: the (area, building) its coordinates fall in, `NONE` where there
    /// is none or the row is not located by coordinates (rejected, or placed by a known
    /// building code).
    fn locate_households(
        &self,
        rows: &HouseholdRows,
        index: &BuildingIndex,
        finest: Option<&PolygonIndex>,
    ) -> Vec<[u32; 2]> {
        let needs_location = |i: usize| -> Option<Coord<f64>> {
            let by_building = rows.building(i).is_some_and(|b| index.ids.contains_key(b));
            if rows.rejected[i] || by_building {
                None
            } else {
                rows.coords[i]
            }
        };
        let n = rows.ids.len();
        let progress = self.progress;
        progress.start("locating households", n as u64);
        let mut located: Vec<[u32; 2]> = vec![[NONE; 2]; n];
        located
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(k, out)| {
                for (j, o) in out.iter_mut().enumerate() {
                    if let Some(c) = needs_location(k * CHUNK + j) {
                        *o = index.locate(c, finest);
                    }
                }
                progress.inc(out.len() as u64);
            });
        progress.finish();
        located
    }

    /// Row `i`'s lineage: its building's by a known code, else where its coordinates fall
    /// (`found`). `None`, with the reason reported, if it cannot be placed.
    fn household_lineage(
        &mut self,
        model: &Model,
        rows: &HouseholdRows,
        i: usize,
        index: &BuildingIndex,
        found: Found<'_>,
        finest: Option<(Layer, &PolygonIndex)>,
    ) -> Option<Lineage> {
        let id = rows.id(i);
        let src = rows.source[i];
        let declared = rows.building(i);
        if let Some(b) = declared.and_then(|b| index.by_code(b)) {
            return Some(model.buildings[b as usize].lineage);
        }
        let located = rows.coords[i].is_some();
        let mut note = |kind, severity, detail: String| {
            self.report
                .push(Layer::Household, Some(src), id, kind, severity, detail)
        };
        if let Some(b) = declared {
            let (severity, then) = if located {
                (Severity::Warning, "; located by coordinates")
            } else {
                (Severity::Rejected, "")
            };
            let detail = format!("building {b:?} is not in the model (unknown or rejected){then}");
            note(IssueKind::UnknownReference, severity, detail);
        }
        let area_lineage = |level, a: u32| match found.areas {
            Some(areas) => areas[a as usize],
            None => model.lineage(level, a),
        };
        match (located, finest, (found.area, found.building)) {
            (false, _, _) => {
                if declared.is_none() {
                    let detail = "no building and no coordinates".to_owned();
                    note(IssueKind::Unlocated, Severity::Rejected, detail);
                }
                None
            }
            // A household in a building belongs where the building does (a footprint may
            // straddle grids): lineages stay nested, so counts roll up exactly.
            (true, Some(_), (Some(_), Some(b))) => Some(model.buildings[b as usize].lineage),
            (true, Some((level, _)), (Some(a), None)) => Some(area_lineage(level, a)),
            (true, Some((level, _)), (None, _)) => {
                let detail = format!("coordinates lie outside every {}", level.singular());
                note(IssueKind::OutsideParent, Severity::Rejected, detail);
                None
            }
            (true, None, (_, building)) => Some(Lineage {
                building,
                ..Lineage::default()
            }),
        }
    }
}
