//! The visit log (`[layers.visits]`) against the visit rules: per unit, the residents a rule
//! covers, the visits they required and were made, and the residents overdue; the overdue
//! residents themselves for the operational lists.

use chrono::{NaiveDate, NaiveDateTime};

use super::roster_ids::RosterIds;
use super::visits::{VisitRule, VisitRules, visit_standing};
use crate::analytics::SpecialNeeds;
use crate::error::{Error, Result};
use crate::io::sheet::{is_spreadsheet, read_sheet};
use crate::io::table::read_table;
use crate::job::Job;
use crate::model::Model;
use crate::model::level::Layer;
use crate::model::quality::{IssueKind, LayerCount, QualityIssue, Severity};

/// Per rule and unit: residents covered, visits required, visits made, residents overdue.
pub const VISIT_MEASURES: [&str; 4] = ["residents", "required", "made", "overdue"];

/// A resident overdue for a visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overdue {
    /// The rule (index into [`Visits::rules`]).
    pub rule: usize,
    /// Index into [`Model::residents`].
    pub resident: u32,
    /// The unit of the finest level.
    pub unit: u32,
    /// The worker of the last visit, else the unit's most frequent visitor.
    pub worker: Option<String>,
    /// The last visit in the period.
    pub last_visit: Option<NaiveDate>,
    /// Days since the last visit (or since the period's start).
    pub days_since: i64,
    /// Days past the allowed gap.
    pub overdue_days: i64,
}

/// Visits to special-needs residents, judged against the rules.
#[derive(Debug, Clone)]
pub struct Visits {
    /// The rules in force.
    pub rules: Vec<VisitRule>,
    /// Each rule's column label.
    pub labels: Vec<String>,
    /// The period visits are counted over.
    pub from: NaiveDate,
    /// Its last day.
    pub as_of: NaiveDate,
    /// `units × rules × 4` counts ([`VISIT_MEASURES`]).
    counts: Vec<u64>,
    /// Residents overdue, most overdue first.
    pub overdue: Vec<Overdue>,
    /// Rows rejected.
    pub issues: Vec<QualityIssue>,
    /// Rows read, placed (linked to a resident) and rejected.
    pub count: LayerCount,
}

impl Visits {
    /// Every count column's name.
    pub fn count_names(&self) -> Vec<String> {
        self.labels
            .iter()
            .flat_map(|l| VISIT_MEASURES.map(|m| format!("visit_{l}_{m}")))
            .collect()
    }

    /// Unit `u`'s counts, rule by rule.
    pub fn row(&self, u: usize) -> Vec<u64> {
        let w = self.rules.len() * 4;
        self.counts[u * w..(u + 1) * w].to_vec()
    }

    pub(crate) fn nested(&self, ix: &dyn Fn(&str) -> usize) -> Vec<(usize, usize)> {
        self.labels
            .iter()
            .map(|l| {
                (
                    ix(&format!("visit_{l}_overdue")),
                    ix(&format!("visit_{l}_residents")),
                )
            })
            .collect()
    }
}

/// One row of the log, linked.
struct Visit {
    resident: u32,
    date: NaiveDate,
    worker: Option<String>,
}

/// Reads the job's visit log and judges every resident each rule covers.
///
/// # Errors
/// An unreadable log or rules table; a rule naming a category the run did not compute.
pub fn read_visits(
    job: &Job,
    model: &Model,
    special: &SpecialNeeds,
    roster: &RosterIds,
    finest: Layer,
    as_of: NaiveDateTime,
) -> Result<Visits> {
    let layer = job
        .layers
        .visits
        .as_ref()
        .ok_or_else(|| job.error("no [layers.visits]"))?;
    let o = job.events.clone().unwrap_or_default();
    let rules_path = job.resolve(
        o.visit_rules
            .as_ref()
            .ok_or_else(|| job.error("no events.visit_rules"))?,
    );
    let text = std::fs::read_to_string(&rules_path).map_err(|e| Error::io(&rules_path, e))?;
    let rules = VisitRules::from_csv(&text, &rules_path.display().to_string())?;
    let from = o.visits_from(as_of).map_err(|m| job.error(m))?;
    let path = job.resolve(&layer.path);
    let mut cols = vec![layer.resident.as_str(), layer.date.as_str()];
    cols.extend(layer.worker.as_deref());
    let t = if is_spreadsheet(&path) {
        read_sheet(
            Layer::Visit.name(),
            &path,
            layer.sheet.as_deref(),
            &cols,
            &[],
        )?
        .table
    } else {
        read_table(Layer::Visit.name(), &path, &cols, layer.encoding)?
    };
    let mut v = Visits {
        labels: labels(rules.rules()),
        rules: rules.rules().to_vec(),
        from,
        as_of: as_of.date(),
        counts: vec![0; model.units(finest) * rules.rules().len() * 4],
        overdue: Vec::new(),
        issues: Vec::new(),
        count: LayerCount {
            read: t.rows_read,
            ..LayerCount::default()
        },
    };
    let log = v.link(&t, layer, roster, as_of);
    v.judge(job, model, special, finest, log)?;
    Ok(v)
}

/// A column label per rule: its category, numbered when a category has several rules.
fn labels(rules: &[VisitRule]) -> Vec<String> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let same = rules.iter().filter(|x| x.category == r.category).count();
            let nth = rules[..i]
                .iter()
                .filter(|x| x.category == r.category)
                .count();
            if same > 1 {
                format!("{}_{}", r.category, nth + 1)
            } else {
                r.category.clone()
            }
        })
        .collect()
}

impl Visits {
    fn reject(&mut self, row: usize, kind: IssueKind, detail: String) {
        self.issues.push(QualityIssue {
            layer: Layer::Visit,
            index: Some(row),
            id: None,
            kind,
            severity: Severity::Rejected,
            detail,
        });
        self.count.rejected += 1;
    }

    /// Each row linked to its resident, or rejected; sorted by resident and date.
    fn link(
        &mut self,
        t: &crate::io::table::Table,
        layer: &super::options::VisitLayer,
        roster: &RosterIds,
        as_of: NaiveDateTime,
    ) -> Vec<Visit> {
        for (row, why) in &t.unreadable {
            self.reject(*row, IssueKind::UnreadableRow, why.clone());
        }
        let ids = t.text_column(&layer.resident);
        let dates = t.text_column(&layer.date);
        let workers = layer.worker.as_ref().map(|w| t.text_column(w));
        let mut log = Vec::with_capacity(t.frame.height());
        for i in 0..t.frame.height() {
            let row = t.source_row(i);
            let Some(id) = ids.get(i).map(str::trim).filter(|s| !s.is_empty()) else {
                self.reject(row, IssueKind::MissingId, "no resident id".into());
                continue;
            };
            let Some(resident) = roster.find(id) else {
                let why = "the resident id is not in the roster".to_owned();
                self.reject(row, IssueKind::UnknownReference, why);
                continue;
            };
            let d = dates.get(i).unwrap_or_default().trim();
            let Some(date) = super::steps::parse_timestamp(d) else {
                self.reject(
                    row,
                    IssueKind::BadValue,
                    format!("visit date {d:?} is not a date"),
                );
                continue;
            };
            if date > as_of {
                self.reject(
                    row,
                    IssueKind::FutureTime,
                    format!("visit date {d} is after as_of"),
                );
                continue;
            }
            let worker = workers
                .as_ref()
                .and_then(|w| w.get(i))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            log.push(Visit {
                resident,
                date: date.date(),
                worker,
            });
            self.count.placed += 1;
        }
        log.sort_by_key(|v| (v.resident, v.date));
        log
    }

    /// Every covered resident's standing per rule, counted in its unit.
    fn judge(
        &mut self,
        job: &Job,
        model: &Model,
        special: &SpecialNeeds,
        finest: Layer,
        log: Vec<Visit>,
    ) -> Result<()> {
        let unit_worker = unit_workers(model, finest, &log);
        let nrules = self.rules.len();
        for (ri, rule) in self.rules.clone().iter().enumerate() {
            if let Some((field, _)) = &rule.only {
                if !matches!(field.as_str(), "disability_grade" | "disability_type") {
                    return Err(job.error(format!(
                        "visit rule for {:?}: `where` can test disability_grade or \
                         disability_type, not {field:?}",
                        rule.category
                    )));
                }
            }
            let members = special.members(&rule.category).ok_or_else(|| {
                job.error(format!(
                    "visit rule for {:?}: not a special-needs category of this run",
                    rule.category
                ))
            })?;
            for (r, _) in members.iter().enumerate().filter(|(_, m)| **m) {
                if !covered(rule, special, r) {
                    continue;
                }
                let h = model.residents[r].household as usize;
                let Some(unit) = model.households[h].lineage.at(finest) else {
                    continue;
                };
                let lo = log.partition_point(|v| v.resident < r as u32);
                let hi = log.partition_point(|v| v.resident <= r as u32);
                let dates: Vec<NaiveDate> = log[lo..hi].iter().map(|v| v.date).collect();
                let s = visit_standing(&dates, rule.every_days, self.from, self.as_of);
                let at = (unit as usize * nrules + ri) * 4;
                self.counts[at] += 1;
                self.counts[at + 1] += u64::from(s.required);
                self.counts[at + 2] += u64::from(s.made);
                if s.overdue_days > 0 {
                    self.counts[at + 3] += 1;
                    let last = log[lo..hi].iter().rev().find(|v| v.date <= self.as_of);
                    self.overdue.push(Overdue {
                        rule: ri,
                        resident: r as u32,
                        unit,
                        worker: last
                            .and_then(|v| v.worker.clone())
                            .or_else(|| unit_worker[unit as usize].clone()),
                        last_visit: last.map(|v| v.date).filter(|d| *d >= self.from),
                        days_since: s.days_since,
                        overdue_days: s.overdue_days,
                    });
                }
            }
        }
        self.overdue.sort_by(|a, b| {
            (b.overdue_days, a.resident, a.rule).cmp(&(a.overdue_days, b.resident, b.rule))
        });
        Ok(())
    }
}

/// Whether a rule's `where` admits resident `r` (`disability_grade` by number or 一级..四级,
/// `disability_type` in Chinese or English).
fn covered(rule: &VisitRule, special: &SpecialNeeds, r: usize) -> bool {
    let Some((field, values)) = &rule.only else {
        return true;
    };
    match field.as_str() {
        "disability_grade" => special
            .disability_grade(r)
            .is_some_and(|g| values.iter().any(|v| grade(v) == Some(g))),
        "disability_type" => special
            .disability_type(r)
            .is_some_and(|(zh, en)| values.iter().any(|v| v == zh || v == en)),
        _ => false,
    }
}

fn grade(s: &str) -> Option<u8> {
    let s = s.trim().trim_end_matches('级');
    match s {
        "一" | "1" => Some(1),
        "二" | "2" => Some(2),
        "三" | "3" => Some(3),
        "四" | "4" => Some(4),
        _ => None,
    }
}

/// Per unit, the worker with the most visits there (ties: the first by name).
fn unit_workers(model: &Model, finest: Layer, log: &[Visit]) -> Vec<Option<String>> {
    let mut by: Vec<std::collections::BTreeMap<&str, usize>> =
        vec![Default::default(); model.units(finest)];
    for v in log {
        let h = model.residents[v.resident as usize].household as usize;
        if let (Some(u), Some(w)) = (model.households[h].lineage.at(finest), &v.worker) {
            *by[u as usize].entry(w.as_str()).or_default() += 1;
        }
    }
    by.into_iter()
        .map(|m| {
            let best = m.values().copied().max()?;
            m.into_iter()
                .find(|(_, n)| *n == best)
                .map(|(w, _)| w.to_owned())
        })
        .collect()
}
