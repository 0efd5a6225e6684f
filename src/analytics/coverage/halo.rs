//! The facilities' halo of a street: coverage's reach measured apart, street by street, with
//! the result of the whole district (the by-street mode of `docs/scale-out.md`).
//!
//! A street's homes lie in its key box. [`FacilityHalo::cut`] gives each box the facilities of
//! every type a rule names whose points lie within the type's largest threshold `H` of the
//! box, in the whole frame's order. Every facility within `H` of a home in the box is then in
//! the halo, so [`FacilityHalo::measure`] finds, for each home, the facilities within each
//! threshold and the nearest one when it lies within `H` exactly as the whole district does
//! (ties go to the lowest index, and the halo keeps the order). A home outside the box, or
//! with no facility within `H`, is left to the driver ([`ReachPart`] marks it unknown): its
//! nearest facility may lie anywhere.
//!
//! The parts merge into a [`GivenReach`] in the model's household order; coverage then takes
//! each known home's reach from it and measures only the others
//! ([`Coverage::compute_given`](super::Coverage::compute_given)). The 2SFCA scores, which
//! need the target residents of every home (known only once every register is linked), are
//! computed on the driver.

use std::collections::BTreeSet;

use geo::{Coord, Rect};
use rayon::prelude::*;
use rstar::primitives::GeomWithData;
use rstar::{AABB, RTree};
use serde::{Deserialize, Serialize};

use super::reach::{Reach, Reached, StraightReach};
use super::{CoverageOptions, RuleSet};
use crate::error::{Error, Location, Result};
use crate::model::Model;
use crate::model::build::Build;

/// The facilities of one type near a box.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HaloKind {
    kind: String,
    /// The type's thresholds (m), ascending, as coverage computes them.
    thresholds: Vec<f64>,
    /// Per facility: its index among the whole frame's facilities of the type.
    index: Vec<u32>,
    points: Vec<(f64, f64)>,
}

/// The facilities a street's homes can reach within each type's largest threshold.
///
/// # Examples
/// ```
/// use geo::{coord, Rect};
/// use shequ::analytics::coverage::CoverageOptions;
/// use shequ::analytics::coverage::halo::FacilityHalo;
/// let job = shequ::Job::from_toml("data-samples/sample-city/job.toml")?;
/// let built = shequ::build(&job)?;
/// let opts = CoverageOptions::default();
/// let whole = built.model.facilities.len();
/// let f = built.model.facilities[0].point;
/// let near = Rect::new(f, f);
/// let far = Rect::new(coord! { x: f.x + 1e6, y: f.y }, coord! { x: f.x + 1e6, y: f.y });
/// let halos = FacilityHalo::cut(&built, &opts, &[Some(near), Some(far), None])?;
/// // The sample is 1.1 km wide: every facility lies within 1,000 m of the box at one of them.
/// assert_eq!(halos[0].facilities(), whole);
/// assert_eq!((halos[1].facilities(), halos[2].facilities()), (0, 0));
/// let back = FacilityHalo::from_bytes(&halos[0].to_bytes())?;
/// assert_eq!(back.facilities(), halos[0].facilities());
/// assert!(FacilityHalo::from_bytes(b"\xff").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FacilityHalo {
    /// West, south, east, north (working CRS) of the homes it measures; `None`: none.
    bounds: Option<[f64; 4]>,
    kinds: Vec<HaloKind>,
}

/// A facility type, its thresholds and its facilities' points by index among the type's.
type Type = (String, Vec<f64>, RTree<GeomWithData<[f64; 2], u32>>);

/// Every facility type a rule names, with its thresholds (ascending, each once).
fn kinds(rules: &RuleSet) -> Vec<(String, Vec<f64>)> {
    let names: BTreeSet<&str> = rules.rules.iter().map(|r| r.facility.as_str()).collect();
    names
        .into_iter()
        .map(|kind| (kind.to_owned(), rules.thresholds_of(kind)))
        .collect()
}

impl FacilityHalo {
    /// One halo per box of `boxes` (working CRS; `None`: a box with no homes): the facilities
    /// of every type `opts`' rules name within the type's largest threshold of the box.
    ///
    /// # Errors
    /// [`Error::Job`] when the rules do not merge (as [`Coverage::compute`](super::Coverage::compute)).
    pub fn cut(
        build: &Build,
        opts: &CoverageOptions,
        boxes: &[Option<Rect<f64>>],
    ) -> Result<Vec<FacilityHalo>> {
        let rules = RuleSet::merge(opts.replace_default_rules, &opts.rules)
            .map_err(|m| build.job.error(format!("[coverage] {m}")))?;
        let model = &build.model;
        let types: Vec<Type> = kinds(&rules)
            .into_iter()
            .map(|(kind, thresholds)| {
                let points = model
                    .facilities
                    .iter()
                    .filter(|f| f.kind == kind)
                    .enumerate()
                    .map(|(j, f)| GeomWithData::new([f.point.x, f.point.y], j as u32))
                    .collect();
                (kind, thresholds, RTree::bulk_load(points))
            })
            .collect();
        Ok(boxes
            .par_iter()
            .map(|b| FacilityHalo::of(*b, &types))
            .collect())
    }

    /// The halo of box `b` (`None`: every type, no facilities).
    fn of(b: Option<Rect<f64>>, types: &[Type]) -> Self {
        let kinds = types
            .iter()
            .map(|(kind, thresholds, tree)| {
                let h = thresholds.last().copied().unwrap_or(0.0);
                let mut found: Vec<(u32, (f64, f64))> = match b {
                    Some(b) => tree
                        .locate_in_envelope(&AABB::from_corners(
                            [b.min().x - h, b.min().y - h],
                            [b.max().x + h, b.max().y + h],
                        ))
                        .map(|g| (g.data, (g.geom()[0], g.geom()[1])))
                        .collect(),
                    None => Vec::new(),
                };
                found.sort_unstable_by_key(|f| f.0);
                HaloKind {
                    kind: kind.clone(),
                    thresholds: thresholds.clone(),
                    index: found.iter().map(|f| f.0).collect(),
                    points: found.iter().map(|f| f.1).collect(),
                }
            })
            .collect();
        FacilityHalo {
            bounds: b.map(|b| [b.min().x, b.min().y, b.max().x, b.max().y]),
            kinds,
        }
    }

    /// Facilities it holds, of every type.
    pub fn facilities(&self) -> usize {
        self.kinds.iter().map(|k| k.index.len()).sum()
    }

    /// The reach of `homes` (each a household's data row and its home in the working CRS,
    /// `None` when it is not placed) to the halo's facilities of every type.
    ///
    /// # Examples
    /// See [`GivenReach`].
    pub fn measure(&self, homes: &[(usize, Option<Coord<f64>>)]) -> ReachPart {
        let inside = |p: &Coord<f64>| {
            self.bounds
                .is_some_and(|[w, s, e, n]| p.x >= w && p.x <= e && p.y >= s && p.y <= n)
        };
        let points: Vec<Option<Coord<f64>>> =
            homes.iter().map(|(_, p)| p.filter(|p| inside(p))).collect();
        let kinds = self
            .kinds
            .iter()
            .map(|k| {
                let sites: Vec<Coord<f64>> =
                    k.points.iter().map(|&(x, y)| Coord { x, y }).collect();
                let h = k.thresholds.last().copied().unwrap_or(0.0);
                let reach = StraightReach::for_cutoff(&sites, &points, h);
                let r = Reached::compute(&reach, points.len(), &k.thresholds);
                let nearest = r
                    .nearest
                    .iter()
                    .map(|n| {
                        n.filter(|(_, d)| *d <= h)
                            .map(|(j, d)| (k.index[j as usize], d))
                    })
                    .collect();
                PartKind {
                    kind: k.kind.clone(),
                    thresholds: k.thresholds.clone(),
                    nearest,
                    counts: r.counts,
                }
            })
            .collect();
        ReachPart {
            rows: homes.iter().map(|h| h.0).collect(),
            kinds,
        }
    }

    /// The halo as bytes (postcard), to send between processes.
    ///
    /// # Panics
    /// Never: every field serialises.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("a halo always serialises")
    }

    /// A halo from [`to_bytes`](Self::to_bytes).
    ///
    /// # Errors
    /// [`Error::Data`] if the bytes are not a halo.
    pub fn from_bytes(bytes: &[u8]) -> Result<FacilityHalo> {
        let halo: FacilityHalo =
            postcard::from_bytes(bytes).map_err(|e| not_a("facilities' halo", &e))?;
        match halo.kinds.iter().find(|k| k.index.len() != k.points.len()) {
            Some(k) => Err(bad(format!("a halo of {:?} is truncated", k.kind))),
            None => Ok(halo),
        }
    }
}

fn not_a(what: &str, e: &postcard::Error) -> Error {
    Error::data(Location::layer("coverage"), format!("not a {what}: {e}"))
}

/// One type's reach of some homes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PartKind {
    kind: String,
    thresholds: Vec<f64>,
    /// Per home: its nearest facility (index among the type's) and distance, when known.
    nearest: Vec<Option<(u32, f64)>>,
    /// `counts[i * thresholds.len() + t]`: facilities within `thresholds[t]` of home `i`.
    counts: Vec<u32>,
}

/// The reach of some households' homes, measured against a [`FacilityHalo`]. Parts of
/// disjoint households merge in any order into one [`GivenReach`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReachPart {
    rows: Vec<usize>,
    kinds: Vec<PartKind>,
}

impl ReachPart {
    /// Homes it holds.
    pub fn homes(&self) -> usize {
        self.rows.len()
    }

    /// Homes whose reach is known for every type (the others are measured on the driver).
    pub fn known(&self) -> usize {
        (0..self.rows.len())
            .filter(|i| self.kinds.iter().all(|k| k.nearest[*i].is_some()))
            .count()
    }

    /// The part as bytes (postcard).
    ///
    /// # Panics
    /// Never: every field serialises.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("a reach part always serialises")
    }

    /// A part from [`to_bytes`](Self::to_bytes).
    ///
    /// # Errors
    /// [`Error::Data`] if the bytes are not a reach part.
    pub fn from_bytes(bytes: &[u8]) -> Result<ReachPart> {
        postcard::from_bytes(bytes).map_err(|e| not_a("part of coverage's reach", &e))
    }
}

/// One type's reach of the model's households.
#[derive(Debug, Clone)]
struct GivenKind {
    kind: String,
    thresholds: Vec<f64>,
    nearest: Vec<Option<(u32, f64)>>,
    counts: Vec<u32>,
}

impl GivenKind {
    fn empty(k: &PartKind, n: usize) -> Self {
        GivenKind {
            kind: k.kind.clone(),
            thresholds: k.thresholds.clone(),
            nearest: vec![None; n],
            counts: vec![0; n * k.thresholds.len()],
        }
    }
}

fn bad(message: String) -> Error {
    Error::data(Location::layer("coverage"), message)
}

impl ReachPart {
    /// The part measures the types of `kinds` with their thresholds, one value per home.
    fn check(&self, kinds: &[GivenKind]) -> Result<()> {
        let same = self.kinds.len() == kinds.len()
            && self
                .kinds
                .iter()
                .zip(kinds)
                .all(|(k, g)| k.kind == g.kind && k.thresholds == g.thresholds);
        if !same {
            return Err(bad("reach parts measured different facility types".into()));
        }
        let n = self.rows.len();
        for k in &self.kinds {
            if k.nearest.len() != n || k.counts.len() != n * k.thresholds.len() {
                return Err(bad(format!("a reach part of {:?} is truncated", k.kind)));
            }
        }
        Ok(())
    }
}

/// The homes' reach measured apart, in the model's household order.
///
/// # Examples
/// ```
/// use shequ::analytics::coverage::{Coverage, CoverageOptions, HomeDetail};
/// use shequ::analytics::coverage::halo::{FacilityHalo, GivenReach};
/// let job = shequ::Job::from_toml("data-samples/sample-city/job.toml")?;
/// let built = shequ::build(&job)?;
/// let opts = CoverageOptions::default();
/// let m = &built.model;
/// let homes: Vec<(usize, Option<geo::Coord<f64>>)> = m.households.iter()
///     .map(|h| (h.source_index, shequ::home(h.placed, h.location, ||
///         h.lineage.building.map(|b| m.buildings[b as usize].point))))
///     .collect();
/// // One halo around every home, measured in two parts.
/// let all = geo::BoundingRect::bounding_rect(&geo::MultiPoint::from(
///     homes.iter().filter_map(|h| h.1.map(geo::Point::from)).collect::<Vec<_>>())).unwrap();
/// let halo = &FacilityHalo::cut(&built, &opts, &[Some(all)])?[0];
/// let (a, b) = homes.split_at(homes.len() / 2);
/// let given = GivenReach::new(m, vec![halo.measure(b), halo.measure(a)])?;
/// assert!(given.known() > 0 && given.known() <= homes.len());
/// let apart = Coverage::compute_given(&built, &opts, None, HomeDetail::Homes, Some(given))?;
/// let whole = Coverage::compute(&built, &opts, None)?;
/// assert_eq!(apart.measures[0].bands, whole.measures[0].bands);
/// assert_eq!(apart.reached[0].reached.counts, whole.reached[0].reached.counts);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct GivenReach {
    kinds: Vec<GivenKind>,
    known: usize,
}

impl GivenReach {
    /// The parts of `model`'s households merged into its household order.
    ///
    /// # Errors
    /// [`Error::Data`] when a part holds a row that is no household of the model, its types
    /// or thresholds differ from another part's, or it is truncated.
    pub fn new(model: &Model, parts: Vec<ReachPart>) -> Result<GivenReach> {
        let mut order: Vec<(usize, u32)> = model
            .households
            .iter()
            .enumerate()
            .map(|(i, h)| (h.source_index, i as u32))
            .collect();
        order.sort_unstable();
        let n = model.households.len();
        let mut kinds: Vec<GivenKind> = match parts.first() {
            Some(p) => p.kinds.iter().map(|k| GivenKind::empty(k, n)).collect(),
            None => Vec::new(),
        };
        for part in parts {
            part.check(&kinds)?;
            let mut homes = Vec::with_capacity(part.rows.len());
            for row in &part.rows {
                let Ok(at) = order.binary_search_by_key(row, |o| o.0) else {
                    return Err(bad(format!("reach of row {row}, which is no household")));
                };
                homes.push(order[at].1 as usize);
            }
            for (g, k) in kinds.iter_mut().zip(&part.kinds) {
                let nt = g.thresholds.len();
                for (i, &h) in homes.iter().enumerate() {
                    g.nearest[h] = k.nearest[i];
                    g.counts[h * nt..(h + 1) * nt].copy_from_slice(&k.counts[i * nt..(i + 1) * nt]);
                }
            }
        }
        // A nearest facility is given only for homes of a part.
        let known = if kinds.is_empty() {
            0
        } else {
            (0..n)
                .filter(|h| kinds.iter().all(|k| k.nearest[*h].is_some()))
                .count()
        };
        Ok(GivenReach { kinds, known })
    }

    /// Households whose reach is known for every type.
    pub fn known(&self) -> usize {
        self.known
    }

    /// The reach of every home to the facilities of `kind` (its `thresholds`): the known
    /// homes' as given, the others' from `reach`, exactly as [`Reached::compute`] gives it.
    /// The type's given reach is taken out. `None` when the type was not measured apart with
    /// these thresholds (or was taken already), or for another number of homes.
    pub(super) fn reached(
        &mut self,
        kind: &str,
        thresholds: &[f64],
        reach: &dyn Reach,
        n: usize,
    ) -> Option<Reached> {
        let at = self
            .kinds
            .iter()
            .position(|g| g.kind == kind && g.thresholds == thresholds)?;
        let nt = thresholds.len();
        if self.kinds[at].nearest.len() != n || nt == 0 {
            return None;
        }
        // Taken, not copied: each type is measured once, and its memory moves to the result.
        let g = self.kinds.swap_remove(at);
        let max = thresholds[nt - 1];
        let mut counts = g.counts;
        let given = &g.nearest;
        let nearest = counts
            .par_chunks_mut(nt)
            .enumerate()
            .map(|(i, c)| {
                if given[i].is_some() {
                    return given[i];
                }
                c.fill(0);
                Reached::one(reach, i, max, thresholds, c)
            })
            .collect();
        Some(Reached {
            thresholds: thresholds.to_vec(),
            nearest,
            counts,
        })
    }
}
