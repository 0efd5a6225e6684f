//! `coverage/summary.md`: what the run found, in words and small tables.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::{LevelView, level_view, share};
use crate::analytics::coverage::{Coverage, Siting};
use crate::model::Model;
use crate::model::level::Layer;
use crate::output::release::Release;
use crate::privacy::{OutputKind, Policy};

/// The person-readable summary.
// The summary reads every part of the coverage output; bundling them would only rename them.
#[allow(clippy::too_many_arguments)]
pub(super) fn summary(
    cov: &Coverage,
    model: &Model,
    release: &Release,
    policy: &Policy,
    blind: &[(u32, usize, f64, u64, Option<u64>)],
    equity: &[(usize, &str, usize, Option<f64>)],
    gains_hidden: usize,
    views: &HashMap<(Layer, usize), LevelView>,
) -> String {
    let mut s = String::new();
    intro(&mut s, cov, policy);
    rules(&mut s, cov);
    district(&mut s, cov, model, release, views);
    network(&mut s, cov);
    blind_spots(&mut s, cov, model, policy, blind);
    accessibility(&mut s, cov, equity);
    if let Some(site) = cov.siting.as_ref().filter(|_| !release.is_noisy()) {
        siting(&mut s, site, policy, gains_hidden);
    }
    s
}

/// The title, the rules' version, the distances and the output kind.
fn intro(s: &mut String, cov: &Coverage, policy: &Policy) {
    let _ = writeln!(s, "# Service coverage and accessibility\n");
    let _ = writeln!(
        s,
        "Rules: **{}**. Distances: {}. Output: **{}**{}.\n",
        cov.rules.version,
        cov.modes
            .iter()
            .map(|m| match m {
                crate::analytics::coverage::DistanceMode::Straight =>
                    "straight line in the metric working CRS (columns without suffix)",
                crate::analytics::coverage::DistanceMode::Network =>
                    "shortest walk over the path network (columns ending `_network`)",
            })
            .collect::<Vec<_>>()
            .join("; "),
        policy.kind.code(),
        match policy.kind {
            OutputKind::Research => format!(
                " (counts below k = {} suppressed with complementary suppression; per-resident \
                 lists are written only by operational runs)",
                policy.k
            ),
            OutputKind::ResearchDp => " (every count with differentially private noise, see \
                 dp_accuracy.parquet; mean distances, accessibility scores, equity and siting \
                 need exact data and are not released)"
                .to_owned(),
            OutputKind::Operational => String::new(),
        }
    );
}

/// The rules in force, and those not computed.
fn rules(s: &mut String, cov: &Coverage) {
    let _ = writeln!(s, "## Rules\n");
    let _ = writeln!(
        s,
        "| rule | facility | target | thresholds (m) | standard (m) | source |"
    );
    let _ = writeln!(s, "|---|---|---|---|---:|---|");
    for r in &cov.rules.rules {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} | {} |",
            r.id(),
            r.facility,
            r.target,
            r.thresholds_m
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            r.standard_m,
            r.source
        );
    }
    for (id, why) in &cov.unavailable {
        let _ = writeln!(s, "\nNot computed: `{id}`: {why}");
    }
}

/// Each measure's target and counts within its thresholds over the top published level.
fn district(
    s: &mut String,
    cov: &Coverage,
    model: &Model,
    release: &Release,
    views: &HashMap<(Layer, usize), LevelView>,
) {
    let top = release.levels().first().copied();
    let _ = writeln!(s, "\n## Coverage of the district\n");
    let _ = writeln!(
        s,
        "| measure | target | within each threshold | share within the standard |"
    );
    let _ = writeln!(s, "|---|---:|---|---:|");
    for (mi, m) in cov.measures.iter().enumerate() {
        let rule = cov.rule(m);
        let Some(level) = top else { break };
        let computed;
        let v = match views.get(&(level, mi)) {
            Some(v) => v,
            None => {
                computed = level_view(cov, model, release, level, m);
                &computed
            }
        };
        let total = |x: &[Option<u64>]| -> Option<u64> { x.iter().copied().sum() };
        let target = total(&v.target);
        let within: Vec<String> = rule
            .thresholds_m
            .iter()
            .enumerate()
            .map(|(t, th)| match total(&v.within[t]) {
                Some(c) => format!("{th} m: {c}"),
                None => format!("{th} m: (suppressed)"),
            })
            .collect();
        let st = cov.standard_band(m);
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} |",
            m.id,
            target.map_or("(suppressed)".into(), |t| t.to_string()),
            within.join("; "),
            share(total(&v.within[st]), target)
                .map_or("—".into(), |x| format!("{:.1}%", x * 100.0))
        );
    }
    let _ = writeln!(
        s,
        "\nA resident is within a threshold when the nearest facility of the type is at that \
         distance or closer (residents whose home has no location are within none).\n"
    );
}

/// What the walking network held, when there is one.
fn network(s: &mut String, cov: &Coverage) {
    if let Some(n) = &cov.network {
        let _ = writeln!(
            s,
            "Network: {} ({} features, {} used; {} nodes, {} edges). Homes are joined to the \
             nearest path within {} m; {} located households and {} facilities are farther and \
             have no network distance (counted beyond every threshold).\n",
            n.path.display(),
            n.features,
            n.used,
            n.nodes,
            n.edges,
            n.snap_m,
            n.households_off_network,
            n.facilities_off_network
        );
    }
}

/// The grids that are blind spots.
fn blind_spots(
    s: &mut String,
    cov: &Coverage,
    model: &Model,
    policy: &Policy,
    blind: &[(u32, usize, f64, u64, Option<u64>)],
) {
    let _ = writeln!(s, "## Blind spots (grids)\n");
    let _ = writeln!(
        s,
        "A grid is a blind spot for a measure when less than {:.0}% of its target population is \
         within the rule's standard distance. {}\n",
        cov.blind_spot_below * 100.0,
        if policy.kind == OutputKind::Research {
            "Grids with a suppressed count are not judged."
        } else {
            ""
        }
    );
    if blind.is_empty() {
        let _ = writeln!(s, "None.");
    } else {
        let _ = writeln!(s, "| grid | measure | target | share covered |");
        let _ = writeln!(s, "|---|---|---:|---:|");
        for (g, mi, sh, t, _) in blind {
            let _ = writeln!(
                s,
                "| {} | `{}` | {t} | {:.1}% |",
                model.grids[*g as usize].id,
                cov.measures[*mi].id,
                sh * 100.0
            );
        }
    }
}

/// The 2SFCA definitions and each measure's Gini across grids.
fn accessibility(s: &mut String, cov: &Coverage, equity: &[(usize, &str, usize, Option<f64>)]) {
    let _ = writeln!(s, "\n## Accessibility (2SFCA family)\n");
    let a = &cov.accessibility;
    let _ = writeln!(
        s,
        "Definitions of PySAL `access` 1.1: catchment {} m (inclusive), supply = facility capacity \
         ({} facilities have none and supply nothing). 2SFCA: weight 1; E2SFCA: step weights {:?}; \
         Gaussian 2SFCA: exp(−d²/2σ²), σ = {} m. A unit's value is the mean over its target \
         residents (0 for those with no facility within the catchment). Gini across grids is \
         weighted by the grids' target populations (`equity.parquet`, Lorenz points in \
         `lorenz.parquet`).\n",
        a.catchment_m, cov.facilities_without_capacity, a.bands, a.gaussian_sigma_m
    );
    let _ = writeln!(s, "| measure | method | grids | Gini |");
    let _ = writeln!(s, "|---|---|---:|---:|");
    for (mi, name, grids, g) in equity {
        let _ = writeln!(
            s,
            "| `{}` | {name} | {grids} | {} |",
            cov.measures[*mi].id,
            g.map_or("—".into(), |g| format!("{g:.3}"))
        );
    }
}

/// The siting picks, greedy and exact, with gains below k hidden in research runs.
fn siting(s: &mut String, site: &Siting, policy: &Policy, gains_hidden: usize) {
    let _ = writeln!(s, "\n## Siting: `{}`\n", site.rule);
    let _ = writeln!(
        s,
        "Maximal covering location problem: {} new facilities, covering distance {} m ({}), \
         {} candidate sites. Target residents not yet covered: {}. Greedy picks the site \
         with the largest marginal gain each time (at least 1 − 1/e ≈ 63% of the optimum) \
         and stops when no site adds anyone.{}\n",
        site.k,
        site.distance_m,
        site.mode.code(),
        site.sites.len(),
        if policy.kind == OutputKind::Research && site.uncovered_before < policy.k {
            "(suppressed)".to_owned()
        } else {
            site.uncovered_before.to_string()
        },
        if gains_hidden > 0 {
            format!(" {gains_hidden} gains below k are not shown.")
        } else {
            String::new()
        }
    );
    let _ = writeln!(s, "| method | pick | site | gain |");
    let _ = writeln!(s, "|---|---:|---|---:|");
    let show = |g: u64| {
        if policy.kind == OutputKind::Research && g < policy.k {
            "(suppressed)".to_owned()
        } else {
            g.to_string()
        }
    };
    for (i, (c, g)) in site.greedy.iter().enumerate() {
        let _ = writeln!(
            s,
            "| greedy | {} | {} | {} |",
            i + 1,
            site.sites[*c as usize].id,
            show(*g)
        );
    }
    match &site.exact {
        Ok(ex) => {
            for (i, (c, g)) in ex.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "| exact | {} | {} | {} |",
                    i + 1,
                    site.sites[*c as usize].id,
                    show(*g)
                );
            }
        }
        Err(why) => {
            let _ = writeln!(s, "\nNo exact solution: {why}.");
        }
    }
}
