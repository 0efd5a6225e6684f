//! `events/summary.md`: the grid work loop in words and small tables, from published counts.

use std::fmt::Write as _;

use crate::analytics::events::{Events, TIMED};
use crate::model::Model;
use crate::model::level::Layer;
use crate::output::release::Release;
use crate::privacy::{OutputKind, Policy};

fn pct(a: Option<u64>, b: Option<u64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0 => format!("{:.1}%", 100.0 * a as f64 / b as f64),
        _ => "—".into(),
    }
}

fn num(v: Option<u64>) -> String {
    v.map_or_else(|| "—".into(), |v| v.to_string())
}

/// The summary: cases, cards and on-time rates per street; the grids with the most red
/// cards; visits. Suppressed counts show as —.
pub(crate) fn summary(
    release: &Release,
    model: &Model,
    events: &Events,
    policy: &Policy,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# The grid work loop: cases, cards and visits\n");
    let _ = writeln!(
        s,
        "Judged at **{}** (as_of). Yellow card from {:.0}% of a step's limit; red past it. \
         Output: **{}**{}.\n",
        events.rules.as_of,
        events.options.yellow_share * 100.0,
        policy.kind.code(),
        if policy.kind == OutputKind::Research {
            format!(
                "; counts below k = {} suppressed (—), with complementary suppression",
                policy.k
            )
        } else {
            String::new()
        }
    );
    if events.has_cases {
        cases(&mut s, release, model, events);
        red_grids(&mut s, release, model);
    }
    if let Some(v) = &events.visits {
        let _ = writeln!(
            s,
            "## Visits to special-needs residents\n\nVisits counted from {} to {}.\n",
            v.from, v.as_of
        );
        let _ = writeln!(
            s,
            "| rule | every (days) | residents | visits made / required | overdue |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|");
        let level = model
            .finest_polygon_level()
            .map(|_| Layer::Street)
            .filter(|l| model.has(*l));
        for (r, l) in v.rules.iter().zip(&v.labels) {
            let total = |m: &str| -> Option<u64> {
                let level = level?;
                (0..model.units(level) as u32)
                    .map(|u| release.count(level, u, &format!("visit_{l}_{m}")))
                    .sum()
            };
            let _ = writeln!(
                s,
                "| {l} | {} | {} | {} | {} |",
                r.every_days,
                num(total("residents")),
                pct(total("made"), total("required")),
                num(total("overdue"))
            );
        }
        let _ = writeln!(s);
    }
    s
}

fn cases(s: &mut String, release: &Release, model: &Model, events: &Events) {
    let _ = writeln!(s, "## Cases per street\n");
    let _ = writeln!(
        s,
        "| street | cases | open | yellow | red | ever overdue | handled on time | satisfied |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
    if !model.has(Layer::Street) {
        return;
    }
    for u in 0..model.units(Layer::Street) as u32 {
        let c = |n: &str| release.count(Layer::Street, u, n);
        let judged = match (c("ev_handled_on_time"), c("ev_handled_late")) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            model.code(Layer::Street, u),
            num(c("ev_cases")),
            num(c("ev_open")),
            num(c("ev_yellow")),
            num(c("ev_red")),
            num(c("ev_overdue")),
            pct(c("ev_handled_on_time"), judged),
            pct(c("ev_satisfied"), c("ev_rated")),
        );
    }
    let _ = writeln!(
        s,
        "\nSteps timed: {}. Medians and 90th percentiles per unit are in `events/<level>.parquet`; \
         per {} in `events/periods_<level>.parquet`.\n",
        TIMED.map(|t| t.name()).join(", "),
        match events.period() {
            crate::analytics::events::Period::Day => "day",
            crate::analytics::events::Period::Week => "week",
            crate::analytics::events::Period::Month => "month",
        }
    );
}

fn red_grids(s: &mut String, release: &Release, model: &Model) {
    if !model.has(Layer::Grid) {
        return;
    }
    let mut red: Vec<(u64, &str)> = (0..model.grids.len() as u32)
        .filter_map(|u| {
            Some((
                release.count(Layer::Grid, u, "ev_red")?,
                model.code(Layer::Grid, u),
            ))
        })
        .filter(|(n, _)| *n > 0)
        .collect();
    red.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let _ = writeln!(s, "## Grids with the most red cards (published counts)\n");
    if red.is_empty() {
        let _ = writeln!(s, "None published.\n");
        return;
    }
    let _ = writeln!(s, "| grid | red cards |\n|---|---:|");
    for (n, g) in red.iter().take(10) {
        let _ = writeln!(s, "| {g} | {n} |");
    }
    let _ = writeln!(s);
}
