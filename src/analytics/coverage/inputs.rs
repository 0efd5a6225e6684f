//! Coverage's own inputs beside the model: the walking network's lines, candidate sites, and
//! the siting run over them.

use geo::{Coord, Geometry, LineString};
use rayon::prelude::*;
use rstar::RTree;
use rstar::primitives::GeomWithData;

use super::network::{Network, PointsByEdge, Snap};
use super::reach::DistanceMode;
use super::rules::RuleSet;
use super::siting;
use super::{
    CandidateLayer, KindReach, Measure, NetworkOptions, Site, Siting, SitingOptions, Target,
};
use crate::crs::{Crs, Transformer};
use crate::error::{Location, Result};
use crate::io::table::clean_code;
use crate::io::{ReadOptions, read_features};
use crate::model::build::Build;
use crate::model::level::Layer;
use crate::model::quality::{IssueKind, QualityIssue, Severity};

/// A point or line layer's CRS and a transformer to the working CRS.
fn layer_transformer(
    layer: Layer,
    path: &std::path::Path,
    job_crs: Option<&str>,
    file_crs: Option<&Crs>,
    working: &Crs,
) -> Result<Transformer> {
    let (crs, _) = crate::io::layer_crs(layer.name(), path, job_crs, file_crs)?;
    Transformer::new(&crs, working).map_err(|e| e.located(Location::layer(layer.name()).file(path)))
}

fn issue(
    layer: Layer,
    i: usize,
    id: Option<String>,
    kind: IssueKind,
    detail: String,
) -> QualityIssue {
    QualityIssue {
        layer,
        index: Some(i),
        id,
        kind,
        severity: Severity::Rejected,
        detail,
    }
}

/// Reads the network's lines in the working CRS; other features are reported.
pub(super) fn read_lines(
    build: &Build,
    n: &NetworkOptions,
) -> Result<(Vec<LineString<f64>>, usize, Vec<QualityIssue>)> {
    let path = build.job.resolve(&n.path);
    let opts = ReadOptions {
        geometry_column: n.geometry_column.as_deref(),
        encoding: None,
    };
    let fl = read_features(Layer::Path.name(), &path, &[], opts)?;
    let t = layer_transformer(
        Layer::Path,
        &path,
        n.crs.as_deref(),
        fl.crs.as_ref(),
        &build.model.working_crs,
    )?;
    let features = fl.len();
    let mut issues = Vec::new();
    let mut geoms: Vec<Option<Geometry<f64>>> = Vec::with_capacity(features);
    for (i, g) in fl.geometries.into_iter().enumerate() {
        match g {
            Ok(g @ (Geometry::LineString(_) | Geometry::MultiLineString(_))) => geoms.push(Some(g)),
            Ok(other) => {
                issues.push(issue(
                    Layer::Path,
                    i,
                    None,
                    IssueKind::MissingGeometry,
                    format!(
                        "a {} is not a path: the network takes LineStrings and MultiLineStrings",
                        crate::model::build::type_name(&other)
                    ),
                ));
                geoms.push(None);
            }
            Err(why) => {
                issues.push(issue(Layer::Path, i, None, IssueKind::MissingGeometry, why));
                geoms.push(None);
            }
        }
    }
    for (i, why) in t.transform_geometries(&mut geoms)? {
        issues.push(issue(
            Layer::Path,
            i,
            None,
            IssueKind::OutOfRange,
            format!("cannot transform to the working CRS: {why}"),
        ));
        geoms[i] = None;
    }
    let mut lines = Vec::new();
    for g in geoms.into_iter().flatten() {
        match g {
            Geometry::LineString(l) => lines.push(l),
            Geometry::MultiLineString(m) => lines.extend(m.0),
            _ => {}
        }
    }
    issues.sort_by_key(|i| i.index);
    Ok((lines, features, issues))
}

/// Candidate sites: the buildings' points, or a point layer (bad features reported).
fn candidate_sites(
    build: &Build,
    c: Option<&CandidateLayer>,
) -> Result<(Vec<Site>, Vec<QualityIssue>)> {
    let model = &build.model;
    let Some(c) = c else {
        return Ok((
            model
                .buildings
                .iter()
                .map(|b| Site {
                    id: b.id.to_string(),
                    source: "building",
                    point: b.point,
                })
                .collect(),
            Vec::new(),
        ));
    };
    let path = build.job.resolve(&c.path);
    let opts = ReadOptions {
        geometry_column: c.geometry_column.as_deref(),
        encoding: c.encoding.as_deref(),
    };
    let fl = read_features(Layer::Site.name(), &path, &[c.id.as_str()], opts)?;
    // Only the id is read: undecodable text there makes the site unusable.
    let unreadable: std::collections::HashMap<usize, String> = fl
        .unreadable
        .iter()
        .map(|(i, _, why)| (*i, why.clone()))
        .collect();
    let t = layer_transformer(
        Layer::Site,
        &path,
        c.crs.as_deref(),
        fl.crs.as_ref(),
        &model.working_crs,
    )?;
    let ids: Vec<Option<String>> = fl.columns[0]
        .iter()
        .map(|v| v.as_deref().and_then(clean_code))
        .collect();
    let mut issues = Vec::new();
    let mut geoms: Vec<Option<Geometry<f64>>> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, g) in fl.geometries.into_iter().enumerate() {
        let id = ids[i].clone();
        let bad = |kind, detail: String| issue(Layer::Site, i, id.clone(), kind, detail);
        match (g, &id) {
            (_, _) if unreadable.contains_key(&i) => {
                issues.push(bad(IssueKind::UnreadableRow, unreadable[&i].clone()));
                geoms.push(None);
            }
            (_, None) => {
                issues.push(bad(IssueKind::MissingId, format!("no {:?}", c.id)));
                geoms.push(None);
            }
            (_, Some(code)) if !seen.insert(code.clone()) => {
                issues.push(bad(
                    IssueKind::DuplicateId,
                    format!("site {code:?} given before"),
                ));
                geoms.push(None);
            }
            (Ok(g @ Geometry::Point(_)), _) => geoms.push(Some(g)),
            (Ok(other), _) => {
                issues.push(bad(
                    IssueKind::MissingGeometry,
                    format!(
                        "a {} is not a candidate site: give Points",
                        crate::model::build::type_name(&other)
                    ),
                ));
                geoms.push(None);
            }
            (Err(why), _) => {
                issues.push(bad(IssueKind::MissingGeometry, why));
                geoms.push(None);
            }
        }
    }
    for (i, why) in t.transform_geometries(&mut geoms)? {
        issues.push(issue(
            Layer::Site,
            i,
            ids[i].clone(),
            IssueKind::OutOfRange,
            format!("cannot transform to the working CRS: {why}"),
        ));
        geoms[i] = None;
    }
    let sites = geoms
        .into_iter()
        .zip(ids)
        .filter_map(|(g, id)| match (g, id) {
            (Some(Geometry::Point(p)), Some(id)) => Some(Site {
                id,
                source: "candidate",
                point: p.0,
            }),
            _ => None,
        })
        .collect();
    issues.sort_by_key(|i| i.index);
    Ok((sites, issues))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn site_facilities(
    build: &Build,
    s: &SitingOptions,
    rules: &RuleSet,
    measures: &[Measure],
    targets: &[Target],
    reached: &[KindReach],
    homes: &[Option<Coord<f64>>],
    net: Option<(&Network, &[Option<Snap>])>,
) -> Result<(Siting, Vec<QualityIssue>)> {
    let job_err = |message: String| build.job.error(format!("[coverage] {message}"));
    let Some(ri) = rules.rules.iter().position(|r| r.id() == s.rule) else {
        return Err(job_err(format!(
            "siting.rule {:?} is not a rule; rules: {}",
            s.rule,
            rules
                .rules
                .iter()
                .map(|r| r.id())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let Some(m) = measures
        .iter()
        .find(|m| m.rule == ri && m.mode == s.distance)
    else {
        return Err(job_err(format!(
            "siting.rule {:?} was not computed (its target is not available)",
            s.rule
        )));
    };
    let rule = &rules.rules[ri];
    let d = s.distance_m.unwrap_or(rule.standard_m);
    if !(d.is_finite() && d > 0.0) {
        return Err(job_err(format!(
            "siting.distance_m must be positive, got {d}"
        )));
    }
    let (sites, issues) = candidate_sites(build, s.candidates.as_ref())?;
    let w = &targets[m.target].weights;
    let kr = &reached[m.reach];
    // Demand not yet covered: located target households beyond `d` of every facility.
    let demand: Vec<u32> = (0..w.len() as u32)
        .filter(|h| {
            let h = *h as usize;
            w[h] > 0 && homes[h].is_some() && kr.reached.nearest[h].is_none_or(|(_, x)| x > d)
        })
        .collect();
    let weights: Vec<u64> = demand.iter().map(|h| u64::from(w[*h as usize])).collect();
    let sets = coverage_sets(s.distance, d, &demand, homes, &sites, net);
    let greedy = siting::greedy(&sets, &weights, s.k);
    let useful: Vec<u32> = (0..sets.len() as u32)
        .filter(|c| !sets[*c as usize].is_empty())
        .collect();
    let exact = if useful.len() > s.exact_max_candidates {
        Err(format!(
            "{} candidates cover someone; exact solving is limited to {} \
             (siting.exact_max_candidates)",
            useful.len(),
            s.exact_max_candidates
        ))
    } else {
        let sub: Vec<Vec<u32>> = useful.iter().map(|c| sets[*c as usize].clone()).collect();
        siting::exact(&sub, &weights, s.k).map(|p| {
            p.into_iter()
                .map(|(c, g)| (useful[c as usize], g))
                .collect()
        })
    };
    let target_total = w.iter().map(|x| u64::from(*x)).sum();
    Ok((
        Siting {
            rule: s.rule.clone(),
            mode: s.distance,
            distance_m: d,
            k: s.k,
            sites,
            target_total,
            uncovered_before: weights.iter().sum(),
            greedy,
            exact,
        },
        issues,
    ))
}

/// For each candidate site, the demand points (indices into `demand`) within `d` of it, in
/// straight lines or over the network, sorted.
fn coverage_sets(
    mode: DistanceMode,
    d: f64,
    demand: &[u32],
    homes: &[Option<Coord<f64>>],
    sites: &[Site],
    net: Option<(&Network, &[Option<Snap>])>,
) -> Vec<Vec<u32>> {
    match mode {
        DistanceMode::Straight => {
            let tree: RTree<GeomWithData<[f64; 2], u32>> = RTree::bulk_load(
                demand
                    .iter()
                    .enumerate()
                    .map(|(i, h)| {
                        let p = homes[*h as usize].expect("located");
                        GeomWithData::new([p.x, p.y], i as u32)
                    })
                    .collect(),
            );
            sites
                .par_iter()
                .map(|site| {
                    let mut v: Vec<u32> = tree
                        .locate_within_distance([site.point.x, site.point.y], d * d)
                        .map(|e| e.data)
                        .collect();
                    v.sort_unstable();
                    v
                })
                .collect()
        }
        DistanceMode::Network => {
            let (network, snaps) = net.expect("checked");
            let points: Vec<Option<Snap>> = demand.iter().map(|h| snaps[*h as usize]).collect();
            let by_edge = PointsByEdge::new(network, &points);
            sites
                .par_iter()
                .map(|site| match network.snap(site.point) {
                    Some(sn) => network
                        .reach(&[sn], d, &points, &by_edge)
                        .into_iter()
                        .map(|(p, _)| p)
                        .collect(),
                    None => Vec::new(),
                })
                .collect()
        }
    }
}
