//! Reading a spatial layer: ids, geometry, coordinates checked and brought to lon/lat; the
//! working CRS chosen from what was read.

use foldhash::{HashMap, HashMapExt};
use geo::{BoundingRect, Coord, Geometry};
use rayon::prelude::*;

use crate::crs::{
    CoordCheck, Crs, FeatureCheck, Region, Transformer, check_feature, metric_crs_for, utm_crs_for,
};
use crate::error::Result;
use crate::io::table::clean_code;
use crate::io::{FeatureLayer, ReadOptions, read_features};
use crate::job::{RegionName, SpatialLayer};
use crate::model::build::{Builder, InputInfo, relocate};
use crate::model::level::Layer;
use crate::model::quality::{IssueKind, Severity};

/// A spatial layer after reading, before placement: geometry in lon/lat, then in the working CRS.
pub(crate) struct Staged {
    pub(crate) layer: Layer,
    /// `None` once a row is rejected.
    pub(crate) geoms: Vec<Option<Geometry<f64>>>,
    pub(crate) ids: Vec<Option<String>>,
    pub(crate) names: Vec<Option<String>>,
    pub(crate) parents: Vec<Option<String>>,
    pub(crate) extra: Vec<Vec<Option<String>>>,
}

impl Staged {
    /// A layer's columns as read (id first, then the name at `name_at`, the parent at
    /// `parent_at` and extra columns from `extra_at`), with codes cleaned; no geometry yet.
    fn new(
        layer: Layer,
        n: usize,
        mut columns: Vec<Vec<Option<String>>>,
        name_at: Option<usize>,
        parent_at: Option<usize>,
        extra_at: usize,
    ) -> Staged {
        let mut take = |at: Option<usize>| {
            at.map(|i| std::mem::take(&mut columns[i]))
                .unwrap_or_else(|| vec![None; n])
        };
        let codes = |v: Vec<Option<String>>| -> Vec<Option<String>> {
            v.into_iter()
                .map(|v| v.as_deref().and_then(clean_code))
                .collect()
        };
        let ids = codes(take(Some(0)));
        let names = take(name_at);
        let parents = codes(take(parent_at));
        Staged {
            layer,
            geoms: Vec::with_capacity(n),
            ids,
            names,
            parents,
            extra: columns.split_off(extra_at),
        }
    }
}

impl Builder<'_> {
    pub(crate) fn read_spatial(&mut self, layer: Layer, cfg: &SpatialLayer) -> Result<Staged> {
        self.read_spatial_with(layer, cfg, &[])
    }

    /// Reads a spatial layer, rejects missing ids, duplicates and bad coordinates, and brings
    /// the geometry to longitude/latitude.
    pub(crate) fn read_spatial_with(
        &mut self,
        layer: Layer,
        cfg: &SpatialLayer,
        extra: &[&str],
    ) -> Result<Staged> {
        let path = self
            .job
            .resolve(cfg.path.as_deref().expect("checked by caller"));
        let mut cols = vec![cfg.id.as_str()];
        let name_at = cfg.name.as_ref().map(|n| {
            cols.push(n);
            cols.len() - 1
        });
        let parent_at = cfg.parent.as_ref().map(|p| {
            cols.push(p);
            cols.len() - 1
        });
        let extra_at = cols.len();
        cols.extend_from_slice(extra);
        let opts = ReadOptions {
            geometry_column: cfg.geometry_column.as_deref(),
            encoding: cfg.encoding.as_deref(),
        };
        let mut fl: FeatureLayer = read_features(layer.name(), &path, &cols, opts)?;
        let (crs, crs_source) =
            crate::io::layer_crs(layer.name(), &path, cfg.crs.as_deref(), fl.crs.as_ref())?;
        self.inputs.push(InputInfo {
            layer,
            path: path.clone(),
            rows: fl.len(),
            crs: Some(crs.to_string()),
            crs_source: Some(crs_source),
            conversions: Vec::new(),
        });
        let columns = std::mem::take(&mut fl.columns);
        let mut s = Staged::new(layer, fl.len(), columns, name_at, parent_at, extra_at);
        if let Some(k) = cfg.parent_prefix {
            for (p, id) in s.parents.iter_mut().zip(&s.ids) {
                *p = id.as_ref().and_then(|id| id.get(..k)).map(str::to_owned);
            }
        }
        self.take_geometries(&mut s, fl, parent_at);
        self.check_ids(&mut s);
        // To longitude/latitude, then check every coordinate.
        let to_lonlat =
            Transformer::new(&crs, &self.lonlat).map_err(|e| relocate(e, layer, &path))?;
        let failures = to_lonlat.transform_geometries(&mut s.geoms)?;
        for (i, why) in failures {
            self.reject(
                &mut s,
                i,
                IssueKind::OutOfRange,
                format!("cannot transform from {crs}: {why}"),
            );
        }
        self.check_coordinates(&mut s, &crs);
        Ok(s)
    }

    /// Moves the layer's geometries into `s`. Undecodable text is fatal to the feature in its
    /// id or parent code (column `parent_at`), a warning elsewhere; a feature without usable
    /// geometry is rejected.
    fn take_geometries(&mut self, s: &mut Staged, fl: FeatureLayer, parent_at: Option<usize>) {
        let layer = s.layer;
        let mut unreadable = vec![false; fl.geometries.len()];
        for (i, c, why) in fl.unreadable {
            let fatal = c == 0 || Some(c) == parent_at;
            unreadable[i] |= fatal;
            let severity = if fatal {
                Severity::Rejected
            } else {
                Severity::Warning
            };
            let id = s.ids[i].clone();
            let kind = IssueKind::UnreadableRow;
            self.report
                .push(layer, Some(i), id.as_deref(), kind, severity, why);
        }
        let mut reasons = Vec::new();
        for (i, g) in fl.geometries.into_iter().enumerate() {
            match g {
                Ok(_) if unreadable[i] => s.geoms.push(None),
                Ok(g) => s.geoms.push(Some(g)),
                Err(why) => {
                    s.geoms.push(None);
                    if !unreadable[i] {
                        reasons.push((i, why));
                    }
                }
            }
        }
        for (i, why) in reasons {
            let id = s.ids[i].clone();
            let (kind, severity) = (IssueKind::MissingGeometry, Severity::Rejected);
            self.report
                .push(layer, Some(i), id.as_deref(), kind, severity, why);
        }
    }

    /// Checks every feature (in lon/lat, read in `crs`) against the expected region: a
    /// feature whose interior point lies outside is rejected; one with only some vertices
    /// outside is kept with a warning.
    fn check_coordinates(&mut self, s: &mut Staged, crs: &Crs) {
        let region = self.region_for(crs);
        let verdicts: Vec<(usize, FeatureCheck)> = s
            .geoms
            .par_iter()
            .enumerate()
            .filter_map(|(i, g)| {
                let c = check_feature(g.as_ref()?, &region);
                (c.verdict != CoordCheck::Ok || c.outside > 0).then_some((i, c))
            })
            .collect();
        for (i, c) in verdicts {
            if c.verdict == CoordCheck::Ok {
                // The feature lies in the region; some of its vertices do not.
                let v = c.first_outside.unwrap_or_default();
                let id = s.ids[i].clone();
                self.report.push(
                    s.layer,
                    Some(i),
                    id.as_deref(),
                    IssueKind::OutOfRange,
                    Severity::Warning,
                    format!(
                        "{} of {} vertices lie outside the expected region ({}), the first at \
                         ({:.6}, {:.6}); the feature is kept: its interior point ({:.6}, {:.6}) \
                         lies inside",
                        c.outside,
                        c.vertices,
                        region_text(&region),
                        v.x,
                        v.y,
                        c.at.x,
                        c.at.y
                    ),
                );
                continue;
            }
            let (kind, mut detail) = coord_issue(c.verdict, c.at, crs, 6);
            if c.verdict != CoordCheck::Invalid && c.vertices > 1 {
                detail = format!("the feature's interior point: {detail}");
            }
            self.reject(s, i, kind, detail);
        }
    }

    /// Where coordinates of a layer in `crs` are expected: China's extent, or with
    /// `region = "world"` the CRS's area of use from the PROJ database.
    pub(crate) fn region_for(&self, crs: &Crs) -> Region {
        match self.job.options.region {
            RegionName::China => Region::china(),
            RegionName::World => crs.area_of_use().unwrap_or(Region::world()),
        }
    }

    /// Rejects rows without an id and later rows repeating an id.
    pub(crate) fn check_ids(&mut self, s: &mut Staged) {
        let mut first: HashMap<String, usize> = HashMap::with_capacity(s.ids.len());
        for i in 0..s.ids.len() {
            match s.ids[i].clone() {
                None => self.reject(s, i, IssueKind::MissingId, "empty id"),
                Some(id) => {
                    if let Some(&j) = first.get(&id) {
                        if s.geoms[i].is_some() {
                            self.reject(
                                s,
                                i,
                                IssueKind::DuplicateId,
                                format!("id already used by feature {j}"),
                            );
                        }
                    } else if s.geoms[i].is_some() {
                        first.insert(id, i);
                    }
                }
            }
        }
    }

    pub(crate) fn working_crs(
        &self,
        staged: &HashMap<Layer, Staged>,
        households: Option<geo::Rect<f64>>,
    ) -> Result<Crs> {
        if let Some(given) = self.job.options.working_crs.given() {
            return Ok(given.clone());
        }
        let mut bbox: Option<geo::Rect<f64>> = None;
        let mut grow = |r: geo::Rect<f64>| {
            bbox = Some(bbox.map_or(r, |b| crate::index::union(b, r)));
        };
        for s in staged.values() {
            for g in s.geoms.iter().flatten() {
                if let Some(r) = g.bounding_rect() {
                    grow(r);
                }
            }
        }
        if let Some(r) = households {
            grow(r);
        }
        let Some(b) = bbox else {
            return Err(self.job.error(
                "no usable geometry to choose a working CRS from; set options.working_crs",
            ));
        };
        let lon = (b.min().x + b.max().x) / 2.0;
        Ok(metric_crs_for(lon).unwrap_or_else(|| utm_crs_for(lon)))
    }
}

/// The issue for a bad coordinate. `digits` is the precision shown: households' locations are
/// personal data and are shown to 2 decimals only.
pub(crate) fn coord_issue(
    v: CoordCheck,
    c: Coord<f64>,
    crs: &Crs,
    digits: usize,
) -> (IssueKind, String) {
    let rounded = if digits < 6 { " (rounded)" } else { "" };
    match v {
        CoordCheck::Swapped => (
            IssueKind::SwappedLatLon,
            format!(
                "coordinate ({:.digits$}, {:.digits$}){rounded} in {crs} looks like latitude/longitude swapped",
                c.x, c.y
            ),
        ),
        CoordCheck::Invalid => (
            IssueKind::OutOfRange,
            format!(
                "coordinate ({:.digits$}, {:.digits$}){rounded} in {crs} is not a valid longitude/latitude",
                c.x, c.y
            ),
        ),
        CoordCheck::OutsideRegion | CoordCheck::Ok => (
            IssueKind::OutOfRange,
            format!(
                "coordinate ({:.digits$}, {:.digits$}){rounded} lies outside the expected region (region = \"china\": lon 73–135.2, lat 3.5–54; region = \"world\": the CRS's area of use)",
                c.x, c.y
            ),
        ),
    }
}

/// A region's box for a message.
pub(crate) fn region_text(r: &Region) -> String {
    format!("lon {}–{}, lat {}–{}", r.west, r.east, r.south, r.north)
}
