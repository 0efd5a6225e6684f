//! `manifest.json`: what a run read, chose, computed and wrote, section by section. A noisy
//! release's manifest holds nothing computed exactly from person-level data.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::Analysis;
use crate::analytics::{Coverage, SpecialNeeds};
use crate::crs::Crs;
use crate::error::Result;
use crate::job::Job;
use crate::model::build::Build;
use crate::model::level::Layer;
use crate::output::{Written, sha256_file};
use crate::privacy::{OutputKind, Policy};

/// The whole manifest (its `outputs` as `written` lists them).
pub(super) fn manifest(
    job: &Job,
    build: &Build,
    analysis: &Analysis,
    written: &Written,
    started: chrono::DateTime<chrono::Utc>,
    t0: std::time::Instant,
) -> Result<Value> {
    let policy = &analysis.policy;
    let noisy = policy.kind == OutputKind::ResearchDp;
    let counts: serde_json::Map<String, Value> = build
        .report
        .counts()
        .iter()
        .map(|(l, c)| {
            (
                l.name().to_owned(),
                serde_json::to_value(c).expect("plain struct"),
            )
        })
        .collect();
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for i in build.report.issues() {
        *by_kind.entry(i.kind.code()).or_insert(0) += 1;
    }
    let mut m = json!({
        "shequ_version": env!("CARGO_PKG_VERSION"),
        "job": {
            "name": job.name,
            "file": job.source,
            "options": job.options,
        },
        "started_at": started.to_rfc3339(),
        "wall_seconds": t0.elapsed().as_secs_f64(),
        "inputs": inputs(build, noisy)?,
        "crs": {
            "working": build.model.working_crs.definition(),
            "working_name": build.model.working_crs.name().ok(),
            "working_chosen": working_chosen(job, &build.model.working_crs),
            "output": analysis.output_crs.definition(),
            "geojson": analysis.geojson_crs.as_ref().map(|c| c.definition()),
            "proj_version": crate::crs::proj_version(),
        },
        "levels": build.model.levels.iter().map(|l| l.name()).collect::<Vec<_>>(),
        "privacy": privacy(policy, written),
        "special_needs": analysis.special_needs.as_ref().map(special_needs),
        "coverage": analysis.coverage.as_ref().map(|c| coverage(c, policy)),
        "counts": (!noisy).then_some(counts),
        "issues_by_kind": (!noisy).then_some(by_kind),
        "steps": build.steps,
        "outputs": written.files,
    });
    if let Some(links) = &analysis.registers {
        m["registers"] = registers(links, noisy)?;
    }
    if let Some(e) = &analysis.events {
        m["events"] = events(e, noisy);
    }
    Ok(m)
}

/// The rules cases were judged by; the periods and departments found; visit rules.
fn events(e: &crate::analytics::events::Events, noisy: bool) -> Value {
    let rows: Vec<Value> = e
        .rules
        .deadlines
        .rows()
        .map(|r| {
            json!({"category": r.category, "subcategory": r.subcategory, "step": r.step.name(),
                   "limit_seconds": r.limit.seconds(), "working": matches!(r.limit, crate::analytics::events::Limit::Working(_)),
                   "source": r.source})
        })
        .collect();
    json!({
        "as_of": e.rules.as_of.to_string(),
        "yellow_share": e.options.yellow_share,
        "calendar_years": e.rules.calendar.years(),
        "deadlines": rows,
        "period": e.period(),
        "periods": e.periods.iter().map(|p| p.1.clone()).collect::<Vec<_>>(),
        "departments": (!noisy).then(|| e.departments.clone()),
        "visit_rules": e.visits.as_ref().map(|v| v.rules.iter().map(|r| json!({
            "category": r.category, "every_days": r.every_days, "source": r.source,
        })).collect::<Vec<_>>()),
    })
}

/// Every register: its file and hash, where its header was, the rules it was linked by, and
/// (not in a noisy release) its counts by kind.
fn registers(links: &crate::registry::Links, noisy: bool) -> Result<Value> {
    let mut out = Vec::new();
    for (reg, s) in links.registers.iter().zip(&links.summaries) {
        let o = &reg.options;
        out.push(json!({
            "id": s.id,
            "department": s.department,
            "path": s.path,
            "sha256": sha256_file(&reg.path)?,
            "sheet": s.sheet,
            "header_rows": s.header_rows,
            "rows": (!noisy).then_some(s.rows),
            "upgraded_ids": (!noisy).then_some(s.upgraded_ids),
            "counts": (!noisy).then(|| s.counts.iter().map(|(k, v)| (k.code().to_owned(), json!(v))).collect::<serde_json::Map<_, _>>()),
            "rules": {
                "category": o.category,
                "fields": o.fields,
                "inactive_status": o.inactive_status,
                "strong_key": "citizen ID number (GB 11643), normalised; 15-digit numbers upgraded",
                "weak_key": if o.columns.community.is_some() { "name + birth date + community" } else { "name + birth date" },
            },
        }));
    }
    Ok(Value::Array(out))
}

/// Every input read: path, hash, rows, CRS and conversions (no hash or rows of the rosters
/// in a noisy release).
fn inputs(build: &Build, noisy: bool) -> Result<Vec<Value>> {
    let personal = |l: Layer| noisy && matches!(l, Layer::Household | Layer::Resident);
    let mut inputs = Vec::new();
    for i in &build.inputs {
        inputs.push(json!({
            "layer": i.layer.name(),
            "path": i.path,
            "sha256": if personal(i.layer) { None } else { Some(sha256_file(&i.path)?) },
            "rows": (!personal(i.layer)).then_some(i.rows),
            "crs": i.crs,
            "crs_source": i.crs_source,
            "conversions": i.conversions,
        }));
    }
    Ok(inputs)
}

/// The privacy policy applied and what it hid or noised.
fn privacy(policy: &Policy, written: &Written) -> Value {
    let research = policy.kind == OutputKind::Research;
    json!({
        "output": policy.kind.code(),
        "k": research.then_some(policy.k),
        "finest": policy.kind.is_aggregate().then_some(policy.finest),
        "k_low": research.then_some(policy.k_low),
        "suppress_zeros": research.then_some(policy.suppress_zeros),
        "suppressed_cells": written.suppressed.map(|(b, c)| json!({"below_k": b, "complementary": c})),
        "published_cells": research.then(|| written.published.iter().map(|p| json!({"table": p.table, "published": p.published, "cells": p.cells})).collect::<Vec<_>>()),
        "dp": policy.dp.as_ref().map(|p| dp_manifest(p, written)),
        "scope": policy.scope.as_ref().map(|(l, c)| json!({"level": l.singular(), "id": c})),
        "key_fingerprint": policy.key_fingerprint,
        "plain_identifiers": policy.plain_identifiers,
        "allow_restricted": policy.allow_restricted,
    })
}

/// The special-needs pass: reference date, categories computed and not, hot spots.
fn special_needs(sn: &SpecialNeeds) -> Value {
    json!({
        "reference_date": sn.reference_date.to_string(),
        "categories": sn.categories.iter().map(|c| &c.id).collect::<Vec<_>>(),
        "not_computed": sn.unavailable.iter().map(|(id, why)| json!({"id": id, "why": why})).collect::<Vec<_>>(),
        "hot_spots": {
            "method": "Getis-Ord Gi* (star, binary queen contiguity incl. self) and z-scores among sibling grids",
            "gi_threshold": sn.hot_spot_z,
            "categories": sn.hot_spots.iter().map(|i| &sn.categories[*i].id).collect::<Vec<_>>(),
        },
        "residents_without_age": sn.issues.len(),
    })
}

/// Coverage: rules in force, distances, measures, accessibility, network and siting.
fn coverage(c: &Coverage, policy: &Policy) -> Value {
    json!({
        "rules_version": c.rules.version,
        "rules": c.rules.rules,
        "not_computed": c.unavailable.iter().map(|(id, why)| json!({"rule": id, "why": why})).collect::<Vec<_>>(),
        "distances": c.modes.iter().map(|m| m.code()).collect::<Vec<_>>(),
        "measures": c.measures.iter().map(|m| json!({"id": m.id, "rule": c.rule(m).id(), "distance": m.mode.code()})).collect::<Vec<_>>(),
        "blind_spot_below": c.blind_spot_below,
        "accessibility": c.accessibility,
        "network": c.network,
        "siting": c.siting.as_ref().map(|s| json!({
            "rule": s.rule, "k": s.k, "distance": s.mode.code(), "distance_m": s.distance_m,
            "candidates": s.sites.len(),
            "exact": match &s.exact { Ok(_) => "solved".to_owned(), Err(w) => w.clone() },
        })),
        "residents_list": if policy.kind == OutputKind::Operational { "coverage/residents.parquet (scoped, pseudonymous)" } else { "not written: research runs write aggregates only" },
    })
}

/// The `privacy.dp` part of a noisy release's manifest: the mechanism, the budget, its split
/// per (level, table) and its sums.
fn dp_manifest(plan: &crate::privacy::dp::Plan, written: &Written) -> serde_json::Value {
    let o = &plan.options;
    let gaussian = o.mechanism == crate::privacy::dp::Mechanism::Gaussian;
    json!({
        "mechanism": o.mechanism.code(),
        "guarantee": if gaussian { "rho-zero-concentrated DP" } else { "pure epsilon-DP" },
        "neighbours": "rosters differing by one resident",
        "budget": plan.budget,
        "budget_from": {"rho": o.rho, "epsilon": o.epsilon, "delta": o.delta},
        "release": o.release,
        "level_weights": o.levels,
        "table_weights": o.tables,
        "split": written.dp_shares,
        "allotted_total": written.dp_shares.iter().map(|s| s.allotted).sum::<f64>(),
        "spent_total": written.dp_shares.iter().map(|s| s.spent).sum::<f64>(),
        "accuracy": "dp_accuracy.parquet: noise scale and 95% half-width per level and column",
        "post_processing": "top down: roots made non-negative, children the closest non-negative integers adding up to their parent",
    })
}

/// How the working CRS was chosen, for the manifest: by the job, or automatically as a
/// Gauss–Krüger zone or, outside China's zones, a UTM zone.
fn working_chosen(job: &Job, working: &Crs) -> &'static str {
    if job.options.working_crs.given().is_some() {
        return "job";
    }
    let gk = working
        .definition()
        .strip_prefix("EPSG:")
        .and_then(|c| c.parse::<u32>().ok())
        .is_some_and(|c| (4534..=4554).contains(&c));
    if gk {
        "auto: CGCS2000 3-degree Gauss-Kruger zone with the central meridian nearest the data's centre"
    } else {
        "auto: WGS84 UTM zone of the data's centre (it lies outside China's CGCS2000 zones)"
    }
}
