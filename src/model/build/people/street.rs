//! The frame cut by street, for placing households where the whole frame is too large to send
//! to every process (a province's building footprints): the by-street mode of
//! `docs/scale-out.md`.
//!
//! One process builds the frame and cuts it ([`StreetFrame::cut`]). Every process gets the
//! small [`StreetKeys`]: each street's box and each building's code with its street. A
//! household row is keyed by them ([`street_keys`]): by its building's street when its
//! building code is known, else by the first box its coordinates fall in. The rows of a key
//! then meet that key's [`StreetPiece`] (Spark's `cogroup`) and are placed against it
//! ([`HouseholdPlacer::for_piece`](super::HouseholdPlacer::for_piece)).
//!
//! A piece holds everything a placement of its rows can read, so the result is the whole
//! frame's, whatever the split:
//! - a street's box covers its polygon and every area and building whose lineage is the
//!   street; the key boxes are these grown by `building_search_m`, the piece's box by twice
//!   that (a point keyed by a grown box finds its nearest building within one more search);
//! - the piece holds every building meeting its box (by footprint box or point) and every area
//!   of the finest level meeting that box or one of its footprints' boxes (a footprint's area
//!   is the one area holding its whole box);
//! - areas and buildings keep their order and their global lineages, so ties between
//!   polygons and the lineages households take are the whole frame's.
//!
//! Key `streets` (one past the last street) holds what has no street, and the rows whose
//! coordinates meet no box: those lie outside every area, as on the whole frame.

use std::path::Path;

use geo::{BoundingRect, Coord, MultiPolygon, Rect};
use rayon::prelude::*;
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};
use serde::{Deserialize, Serialize};

use super::households::read_household_table;
use super::partial::{
    HouseholdPlacer, HouseholdsPartial, given_working_crs, layer_rows, small_layers,
};
use super::people_frame::PeopleFrame;
use super::wire::{Rings, lineage_array, lineage_of, multipolygon, rings};
use crate::crs::Crs;
use crate::error::{Error, Location, Result};
use crate::index::{PolygonIndex, ranks_by_id};
use crate::job::Job;
use crate::model::build::frame::model_units;
use crate::model::build::{Build, Builder};
use crate::model::ids::BuildingId;
use crate::model::level::Layer;
use crate::model::{Building, Lineage, Model};
use crate::progress::NoProgress;

/// An area of the finest level as it travels.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PieceArea {
    id: String,
    polygon: Rings,
    /// Street, community, grid, building: its lineage in the whole frame.
    lineage: [Option<u32>; 4],
}

/// A building as it travels (what placing households reads of it).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PieceBuilding {
    id: String,
    footprint: Option<Rings>,
    point: (f64, f64),
    lineage: [Option<u32>; 4],
}

/// One street's part of the frame: the areas of the finest level and the buildings the
/// placement of its rows can read (see the module's notes), with their lineages in the
/// whole frame.
///
/// # Examples
/// ```
/// use shequ::{StreetFrame, StreetPiece};
/// let dir = tempfile::tempdir()?;
/// let cfg = shequ::sample::SampleConfig { streets: 3, ..Default::default() };
/// shequ::sample::write_sample(dir.path(), &cfg)?;
/// let mut job = shequ::Job::from_toml(dir.path().join("job.toml"))?;
/// job.options.working_crs = shequ::crs::WorkingCrs::Given(shequ::resolve_working_crs(&job, None)?);
/// let cut = StreetFrame::cut(&job)?;
/// let whole = shequ::build(&job)?;
/// let piece = StreetPiece::from_bytes(&cut.pieces[0].to_bytes())?;
/// assert_eq!(piece.key(), 0);
/// assert!(piece.buildings() > 0 && piece.buildings() < whole.model.buildings.len());
/// assert!(StreetPiece::from_bytes(b"\xff").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreetPiece {
    key: u32,
    /// The finest polygon level; `None` when the frame has no area layer.
    level: Option<Layer>,
    areas: Vec<PieceArea>,
    buildings: Vec<PieceBuilding>,
}

/// What every process needs to key household rows by street: each key's box (grown by the
/// building search) and every building's code with its key, sorted by code.
///
/// # Examples
/// ```
/// let mut job = shequ::Job::from_toml("data-samples/sample-city/job.toml")?;
/// job.options.working_crs = shequ::crs::WorkingCrs::Given(shequ::resolve_working_crs(&job, None)?);
/// let cut = shequ::StreetFrame::cut(&job)?;
/// let keys = shequ::StreetKeys::from_bytes(&cut.keys.to_bytes())?;
/// assert_eq!(keys.streets(), 1); // the sample has one street
/// assert_eq!(cut.pieces.len(), 2); // one more: what has no street
/// assert_eq!(keys.key(Some("no such building"), None), 1);
/// # Ok::<(), shequ::Error>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreetKeys {
    /// Per key: west, south, east, north; empty (west > east) when the key has nothing.
    boxes: Vec<[f64; 4]>,
    codes: Vec<(String, u32)>,
    #[serde(skip)]
    tree: RTree<GeomWithData<Rectangle<[f64; 2]>, u32>>,
}

/// The frame cut by street: the keys every process gets, one piece per key, and the frame
/// the residents and cases are folded against (no footprints).
#[derive(Debug, Clone)]
pub struct StreetFrame {
    /// The keys of household rows.
    pub keys: StreetKeys,
    /// One piece per key, in key order (the last: what has no street).
    pub pieces: Vec<StreetPiece>,
    /// The whole frame without its footprints, for the processes that fold residents and
    /// cases ([`ResidentFolder::with_frame`](crate::ResidentFolder::with_frame),
    /// [`cases_frame_of`](crate::run::cases_frame_of)).
    pub people: PeopleFrame,
}

/// `b` grown by `m` on every side.
fn grown(b: Rect<f64>, m: f64) -> Rect<f64> {
    let d = Coord { x: m, y: m };
    Rect::new(b.min() - d, b.max() + d)
}

fn joined(a: Option<Rect<f64>>, b: Rect<f64>) -> Rect<f64> {
    a.map_or(b, |a| crate::index::union(a, b))
}

fn envelope(b: Rect<f64>) -> AABB<[f64; 2]> {
    AABB::from_corners([b.min().x, b.min().y], [b.max().x, b.max().y])
}

fn box_tree(boxes: &[Option<Rect<f64>>]) -> RTree<GeomWithData<Rectangle<[f64; 2]>, u32>> {
    RTree::bulk_load(
        boxes
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let b = (*b)?;
                let r = Rectangle::from_corners([b.min().x, b.min().y], [b.max().x, b.max().y]);
                Some(GeomWithData::new(r, i as u32))
            })
            .collect(),
    )
}

/// The indices of the boxes of `tree` meeting `b`, ascending.
fn meeting(tree: &RTree<GeomWithData<Rectangle<[f64; 2]>, u32>>, b: Rect<f64>) -> Vec<u32> {
    let mut found: Vec<u32> = tree
        .locate_in_envelope_intersecting(&envelope(b))
        .map(|g| g.data)
        .collect();
    found.sort_unstable();
    found
}

impl StreetFrame {
    /// Builds the frame of `job` (its small layers) and cuts it by street.
    ///
    /// # Errors
    /// [`Error::Job`] when the working CRS is `auto` (resolve it first, as for
    /// [`HouseholdPlacer`](crate::HouseholdPlacer)) or the job has no street level; as
    /// [`build`](crate::build).
    pub fn cut(job: &Job) -> Result<StreetFrame> {
        Ok(StreetFrame::cut_frame(job)?.0)
    }

    /// [`cut`](Self::cut), with the frame it cut (the facilities' halos are cut from it:
    /// [`FacilityHalo::cut`](crate::analytics::coverage::halo::FacilityHalo::cut)).
    ///
    /// # Errors
    /// As [`cut`](Self::cut).
    pub fn cut_frame(job: &Job) -> Result<(StreetFrame, Build)> {
        given_working_crs(job)?;
        let frame = crate::model::build::build(&small_layers(job))?;
        let cut = StreetFrame::of(&frame, job.options.building_search_m)?;
        Ok((cut, frame))
    }

    /// The frame of `job` (its small layers, built once) not cut, as the broadcast mode
    /// sends it to every process: one piece holding all of it, which households are placed
    /// against ([`StreetPiece::whole`]), and the frame without its footprints, which
    /// residents and cases are folded against ([`PeopleFrame::of`]).
    ///
    /// # Examples
    /// ```
    /// let mut job = shequ::Job::from_toml("data-samples/sample-city/job.toml")?;
    /// job.options.working_crs = shequ::crs::WorkingCrs::Given(shequ::resolve_working_crs(&job, None)?);
    /// let (piece, people) = shequ::StreetFrame::uncut(&job)?;
    /// assert_eq!(piece.buildings(), people.buildings());
    /// # Ok::<(), shequ::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Job`] when the working CRS is `auto`; as [`build`](crate::build).
    pub fn uncut(job: &Job) -> Result<(StreetPiece, PeopleFrame)> {
        given_working_crs(job)?;
        let frame = crate::model::build::build(&small_layers(job))?;
        Ok((StreetPiece::whole(&frame), PeopleFrame::of(&frame.model)))
    }

    /// Cuts a built frame by street; `search_m` is the job's building search.
    fn of(frame: &Build, search_m: f64) -> Result<StreetFrame> {
        let model = &frame.model;
        if !model.has(Layer::Street) {
            return Err(frame
                .job
                .error("households placed by street need a street layer"));
        }
        let level = model.finest_polygon_level().expect("a street level");
        let streets = model.streets.len() as u32;
        let key = |l: &Lineage| l.street.unwrap_or(streets);
        let units = model_units(model, level);
        let area_boxes: Vec<Option<Rect<f64>>> =
            units.iter().map(|u| u.0.bounding_rect()).collect();
        let building_boxes: Vec<Option<Rect<f64>>> = model
            .buildings
            .iter()
            .map(|b| {
                let point = Rect::new(b.point, b.point);
                Some(
                    b.footprint
                        .as_ref()
                        .and_then(|f| f.bounding_rect())
                        .unwrap_or(point),
                )
            })
            .collect();
        let mut reach: Vec<Option<Rect<f64>>> = vec![None; streets as usize + 1];
        for (k, s) in model.streets.iter().enumerate() {
            if let Some(b) = s.geometry.bounding_rect() {
                reach[k] = Some(joined(reach[k], b));
            }
        }
        for (i, b) in area_boxes.iter().enumerate() {
            let k = key(&model.lineage(level, i as u32)) as usize;
            if let Some(b) = b {
                reach[k] = Some(joined(reach[k], *b));
            }
        }
        for (b, building) in building_boxes.iter().zip(&model.buildings) {
            let k = key(&building.lineage) as usize;
            reach[k] = Some(joined(reach[k], b.expect("every building has a box")));
        }
        let (areas, buildings) = (box_tree(&area_boxes), box_tree(&building_boxes));
        let pieces = (0..=streets)
            .into_par_iter()
            .map(|k| {
                let Some(r) = reach[k as usize] else {
                    return StreetPiece::empty(k, Some(level));
                };
                let within = grown(r, 2.0 * search_m);
                let bs = meeting(&buildings, within);
                let mut all = within;
                for &b in &bs {
                    if model.buildings[b as usize].footprint.is_some() {
                        all = joined(Some(all), building_boxes[b as usize].expect("a box"));
                    }
                }
                let found = meeting(&areas, all);
                StreetPiece::of(model, Some(level), k, &found, &bs)
            })
            .collect();
        let mut codes: Vec<(String, u32)> = model
            .buildings
            .iter()
            .map(|b| (b.id.as_str().to_owned(), key(&b.lineage)))
            .collect();
        codes.sort_unstable();
        let boxes = reach
            .iter()
            .map(|r| match r {
                Some(r) => {
                    let g = grown(*r, search_m);
                    [g.min().x, g.min().y, g.max().x, g.max().y]
                }
                None => [
                    f64::INFINITY,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::NEG_INFINITY,
                ],
            })
            .collect();
        Ok(StreetFrame {
            keys: StreetKeys::new(boxes, codes),
            pieces,
            people: PeopleFrame::of(model),
        })
    }
}

impl StreetPiece {
    fn empty(key: u32, level: Option<Layer>) -> StreetPiece {
        StreetPiece {
            key,
            level,
            areas: Vec::new(),
            buildings: Vec::new(),
        }
    }

    /// The whole frame `frame` as one piece (key `u32::MAX`), for the processes that place
    /// households without reading the small layers (the broadcast mode of
    /// `docs/scale-out.md`): [`HouseholdPlacer::for_piece`](crate::HouseholdPlacer::for_piece)
    /// against it places every row as [`HouseholdPlacer::new`](crate::HouseholdPlacer::new)
    /// does.
    ///
    /// # Examples
    /// ```
    /// let mut job = shequ::Job::from_toml("data-samples/sample-city/job.toml")?;
    /// job.options.working_crs = shequ::crs::WorkingCrs::Given(shequ::resolve_working_crs(&job, None)?);
    /// let frame = shequ::build(&job)?;
    /// let piece = shequ::StreetPiece::whole(&frame);
    /// assert_eq!(piece.buildings(), frame.model.buildings.len());
    /// assert_eq!(piece.areas(), frame.model.grids.len());
    /// # Ok::<(), shequ::Error>(())
    /// ```
    pub fn whole(frame: &Build) -> StreetPiece {
        let model = &frame.model;
        let level = model.finest_polygon_level();
        let areas = level.map_or(0, |l| model_units(model, l).len()) as u32;
        let buildings = model.buildings.len() as u32;
        let (areas, buildings): (Vec<u32>, Vec<u32>) =
            ((0..areas).collect(), (0..buildings).collect());
        StreetPiece::of(model, level, u32::MAX, &areas, &buildings)
    }

    fn of(
        model: &Model,
        level: Option<Layer>,
        key: u32,
        areas: &[u32],
        buildings: &[u32],
    ) -> StreetPiece {
        let areas = match level {
            Some(level) => {
                let units = model_units(model, level);
                areas
                    .iter()
                    .map(|&a| PieceArea {
                        id: units[a as usize].2.to_owned(),
                        polygon: rings(units[a as usize].0),
                        lineage: lineage_array(&model.lineage(level, a)),
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        let buildings = buildings
            .iter()
            .map(|&b| {
                let b = &model.buildings[b as usize];
                PieceBuilding {
                    id: b.id.as_str().to_owned(),
                    footprint: b.footprint.as_ref().map(rings),
                    point: (b.point.x, b.point.y),
                    lineage: lineage_array(&b.lineage),
                }
            })
            .collect();
        StreetPiece {
            key,
            level,
            areas,
            buildings,
        }
    }

    /// Each household of `partial` (placed against this piece) with its data row and home
    /// in the working CRS: its location, else its building's point; `None` when it is not
    /// placed. These are the homes coverage measures
    /// ([`FacilityHalo::measure`](crate::analytics::coverage::halo::FacilityHalo::measure)).
    pub fn homes(&self, partial: &HouseholdsPartial) -> Vec<(usize, Option<Coord<f64>>)> {
        partial.homes(|b| {
            let at = self
                .buildings
                .binary_search_by_key(&Some(b), |p| p.lineage[3])
                .ok()?;
            let (x, y) = self.buildings[at].point;
            Some(Coord { x, y })
        })
    }

    /// Its key: the street's index in the frame, or one past the last street (`u32::MAX` for
    /// the [`whole`](Self::whole) frame).
    pub fn key(&self) -> u32 {
        self.key
    }

    /// Buildings it holds.
    pub fn buildings(&self) -> usize {
        self.buildings.len()
    }

    /// Areas of the finest level it holds.
    pub fn areas(&self) -> usize {
        self.areas.len()
    }

    /// The piece as bytes (postcard), to send between processes.
    ///
    /// # Panics
    /// Never: every field serialises.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("a piece always serialises")
    }

    /// A piece from [`to_bytes`](Self::to_bytes).
    ///
    /// # Errors
    /// [`Error::Data`] if the bytes are not a piece of a frame.
    pub fn from_bytes(bytes: &[u8]) -> Result<StreetPiece> {
        postcard::from_bytes(bytes).map_err(|e| not_a("piece of a frame", &e))
    }

    /// What placing reads: a model holding the piece's buildings (in `working`), the finest
    /// level's index over its areas (none without an area layer), and each area's lineage in
    /// the whole frame.
    pub(crate) fn placing(
        &self,
        working: Crs,
    ) -> (Model, Option<(Layer, PolygonIndex)>, Vec<Lineage>) {
        let mut model = Model::empty(working);
        model.buildings = self
            .buildings
            .iter()
            .enumerate()
            .map(|(i, b)| Building {
                id: BuildingId::new(&b.id),
                name: None,
                footprint: b.footprint.as_ref().map(multipolygon),
                point: Coord {
                    x: b.point.0,
                    y: b.point.1,
                },
                declared_parent: None,
                lineage: lineage_of(b.lineage),
                source_index: i,
            })
            .collect();
        let polygons: Vec<MultiPolygon<f64>> = self
            .areas
            .iter()
            .map(|a| multipolygon(&a.polygon))
            .collect();
        let ids: Vec<&str> = self.areas.iter().map(|a| a.id.as_str()).collect();
        let refs: Vec<Option<&MultiPolygon<f64>>> = polygons.iter().map(Some).collect();
        let index = PolygonIndex::new(&refs, &ranks_by_id(&ids));
        let lineages = self.areas.iter().map(|a| lineage_of(a.lineage)).collect();
        (model, self.level.map(|l| (l, index)), lineages)
    }
}

impl HouseholdPlacer {
    /// A placer against one street's part of the frame ([`StreetFrame::cut`](crate::StreetFrame::cut)), for the rows
    /// [`street_keys`](crate::street_keys) gives its key: it places them as [`new`](Self::new) does, without the
    /// rest of the frame. Against the [`whole`](StreetPiece::whole) frame as one piece, it places
    /// every row, without reading the small layers.
    ///
    /// # Examples
    /// ```
    /// use shequ::{HouseholdPlacer, StreetFrame, street_keys};
    /// let mut job = shequ::Job::from_toml("data-samples/sample-city/job.toml")?;
    /// job.options.working_crs = shequ::crs::WorkingCrs::Given(shequ::resolve_working_crs(&job, None)?);
    /// let cut = StreetFrame::cut(&job)?;
    /// let file = std::path::Path::new("data-samples/sample-city/households.csv");
    /// let keys = street_keys(&job, &cut.keys, file)?;
    /// let placer = HouseholdPlacer::for_piece(&job, &cut.pieces[keys[0] as usize])?;
    /// assert!(placer.model().buildings.len() <= shequ::build(&job)?.model.buildings.len());
    /// # Ok::<(), shequ::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`new`](Self::new), without building the frame.
    pub fn for_piece(job: &Job, piece: &StreetPiece) -> Result<HouseholdPlacer> {
        let (layer, working) = given_working_crs(job)?;
        let (model, finest, areas) = piece.placing(working.clone());
        Ok(HouseholdPlacer {
            job: job.clone(),
            layer,
            model,
            finest,
            areas: Some(areas),
            working,
        })
    }
}

fn not_a(what: &str, e: &postcard::Error) -> Error {
    Error::data(
        Location::layer(Layer::Household.name()),
        format!("not a {what}: {e}"),
    )
}

impl StreetKeys {
    fn new(boxes: Vec<[f64; 4]>, codes: Vec<(String, u32)>) -> StreetKeys {
        let rects: Vec<Option<Rect<f64>>> = boxes
            .iter()
            .map(|&[w, s, e, n]| {
                (w <= e && s <= n).then(|| Rect::new(Coord { x: w, y: s }, Coord { x: e, y: n }))
            })
            .collect();
        StreetKeys {
            tree: box_tree(&rects),
            boxes,
            codes,
        }
    }

    /// Each key's box (working CRS): the rows keyed to it by their coordinates lie in it;
    /// `None` for a key with nothing.
    pub fn boxes(&self) -> Vec<Option<Rect<f64>>> {
        self.boxes
            .iter()
            .map(|&[w, s, e, n]| {
                (w <= e).then(|| Rect::new(Coord { x: w, y: s }, Coord { x: e, y: n }))
            })
            .collect()
    }

    /// Streets of the frame (keys are `0..=streets`: the last holds what has no street).
    pub fn streets(&self) -> u32 {
        self.boxes.len() as u32 - 1
    }

    /// The key of a row with building code `code` and coordinates `at` (working CRS): its
    /// building's when the code is known, else the first box `at` falls in, else the last.
    pub fn key(&self, code: Option<&str>, at: Option<Coord<f64>>) -> u32 {
        if let Some(code) = code {
            if let Ok(i) = self.codes.binary_search_by(|(c, _)| c.as_str().cmp(code)) {
                return self.codes[i].1;
            }
        }
        at.and_then(|c| {
            self.tree
                .locate_all_at_point(&[c.x, c.y])
                .map(|g| g.data)
                .min()
        })
        .unwrap_or(self.streets())
    }

    /// The keys as bytes (postcard), to send between processes.
    ///
    /// # Panics
    /// Never: every field serialises.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("keys always serialise")
    }

    /// Keys from [`to_bytes`](Self::to_bytes), indexed for lookups.
    ///
    /// # Errors
    /// [`Error::Data`] if the bytes are not the keys of a frame.
    pub fn from_bytes(bytes: &[u8]) -> Result<StreetKeys> {
        let k: StreetKeys = postcard::from_bytes(bytes).map_err(|e| not_a("street keys", &e))?;
        if k.boxes.is_empty() {
            return Err(Error::data(
                Location::layer(Layer::Household.name()),
                "street keys without boxes",
            ));
        }
        Ok(StreetKeys::new(k.boxes, k.codes))
    }
}

/// Each data row's street key in `path` (a file with the layer's columns), in row order (see
/// [`StreetKeys::key`]; unreadable rows take the last key).
///
/// # Errors
/// [`Error::Job`] without `[layers.households]` or with an `auto` working CRS; as reading the
/// file and transforming its coordinates.
pub fn street_keys(job: &Job, keys: &StreetKeys, path: &Path) -> Result<Vec<u32>> {
    let (layer, working) = given_working_crs(job)?;
    let t = read_household_table(&layer, path, &[])?;
    let mut b = Builder::new(job, &NoProgress);
    let rows = layer_rows(&layer, &working, &mut b, path, &t)?;
    let mut out = vec![keys.streets(); t.rows_read];
    for i in 0..rows.ids.len() {
        out[rows.source[i]] = keys.key(rows.building(i), rows.coords[i]);
    }
    Ok(out)
}
