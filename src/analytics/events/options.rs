//! The job's side of the grid work loop: the cases layer (`[layers.events]`), the visit log
//! (`[layers.visits]`) and the analysis options (`[events]`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use super::steps::{Step, parse_timestamp};
use crate::io::table::Encoding;

/// The cases table (`[layers.events]`): one row per case, from CSV, Parquet or a spreadsheet.
///
/// A case is placed by `lon`/`lat` (point in polygon), else by `building` code, else by
/// `unit` code (a grid's, else a community's).
///
/// # Examples
/// ```
/// let job = shequ::Job::from_toml_str(r#"
///     [layers.events]
///     path = "cases.csv"
///     id = "案件编号"
///     category = "大类"
///     lon = "经度"
///     lat = "纬度"
///     steps = { reported = "上报时间", "处置" = "处置时间" }
///     [events]
///     as_of = "2026-01-01"
/// "#, ".")?;
/// let e = job.layers.events.as_ref().unwrap();
/// assert_eq!(e.step_columns()?.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventLayer {
    /// CSV, Parquet or spreadsheet file.
    pub path: PathBuf,
    /// Text encoding of a CSV file.
    #[serde(default)]
    pub encoding: Encoding,
    /// The sheet of a workbook (default: the first).
    pub sheet: Option<String>,
    /// Column with the case's id.
    pub id: String,
    /// Column with the category (大类).
    pub category: String,
    /// Column with the sub-category (小类).
    pub subcategory: Option<String>,
    /// Column with the source (巡查, APP, 12345, ...).
    pub source: Option<String>,
    /// Column with the longitude (or x).
    pub lon: Option<String>,
    /// Column with the latitude (or y).
    pub lat: Option<String>,
    /// CRS of the coordinate columns (default longitude/latitude WGS84).
    pub crs: Option<String>,
    /// Column with a building code.
    pub building: Option<String>,
    /// Column with a grid's (or, failing that, a community's) code.
    pub unit: Option<String>,
    /// Column with the department the case is assigned to.
    pub department: Option<String>,
    /// Column with the status (办结 / 已结案 / closed, 处理中 / open, 重办 / reopened).
    pub status: Option<String>,
    /// Column with the resident's satisfaction at the return visit.
    pub satisfaction: Option<String>,
    /// Column with the resident's roster id (linked, and pseudonymised in every output).
    pub resident: Option<String>,
    /// Columns of free text (描述, 处置意见): read only for an operational card list with
    /// `privacy.plain_identifiers`; never in research outputs.
    #[serde(default)]
    pub text: Vec<String>,
    /// Step → timestamp column (steps named in English or Chinese).
    #[serde(default)]
    pub steps: BTreeMap<String, String>,
}

impl EventLayer {
    /// The step columns, by step.
    ///
    /// # Errors
    /// A step name that is not a step of the loop, or a step named twice.
    pub fn step_columns(&self) -> std::result::Result<Vec<(Step, String)>, String> {
        let mut out: Vec<(Step, String)> = Vec::new();
        for (name, column) in &self.steps {
            let step = Step::parse(name).ok_or_else(|| {
                format!(
                    "[layers.events] steps: {name:?} is not a step (discovered, reported, \
                     assigned, handled, fed_back, visited, or 发现, 上报, 交办, 处置, 反馈, 回访)"
                )
            })?;
            if out.iter().any(|(s, _)| *s == step) {
                return Err(format!(
                    "[layers.events] steps: {} is named twice",
                    step.name()
                ));
            }
            out.push((step, column.clone()));
        }
        out.sort();
        Ok(out)
    }

    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        if self.lon.is_some() != self.lat.is_some() {
            return Err("[layers.events] needs both `lon` and `lat`".into());
        }
        if self.lon.is_none() && self.building.is_none() && self.unit.is_none() {
            return Err("[layers.events] needs `lon` and `lat`, `building` or `unit`".into());
        }
        if self.step_columns()?.is_empty() {
            return Err("[layers.events] needs at least one step column in `steps`".into());
        }
        Ok(())
    }
}

/// The visit log (`[layers.visits]`): one row per visit to a resident.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitLayer {
    /// CSV, Parquet or spreadsheet file.
    pub path: PathBuf,
    /// Text encoding of a CSV file.
    #[serde(default)]
    pub encoding: Encoding,
    /// The sheet of a workbook (default: the first).
    pub sheet: Option<String>,
    /// Column with the resident's roster id.
    pub resident: String,
    /// Column with the visit's date.
    pub date: String,
    /// Column with the grid worker's id or name.
    pub worker: Option<String>,
}

/// How cases are counted over time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Calendar days (`2025-03-01`).
    Day,
    /// ISO weeks (`2025-W09`).
    Week,
    /// Calendar months (`2025-03`).
    #[default]
    Month,
}

impl Period {
    /// The label of the period holding `date`.
    ///
    /// # Examples
    /// ```
    /// use shequ::analytics::events::Period;
    /// let d = chrono::NaiveDate::from_ymd_opt(2025, 12, 29).unwrap();
    /// assert_eq!(Period::Month.label(d), "2025-12");
    /// assert_eq!(Period::Week.label(d), "2026-W01"); // ISO week of the next year
    /// assert_eq!(Period::Day.label(d), "2025-12-29");
    /// ```
    pub fn label(self, date: NaiveDate) -> String {
        use chrono::Datelike;
        match self {
            Period::Day => date.format("%Y-%m-%d").to_string(),
            Period::Week => {
                let w = date.iso_week();
                format!("{}-W{:02}", w.year(), w.week())
            }
            Period::Month => date.format("%Y-%m").to_string(),
        }
    }
}

impl Period {
    /// A number per period, increasing with time (for sorting and for the period before).
    pub fn key(self, date: NaiveDate) -> i32 {
        use chrono::Datelike;
        match self {
            Period::Day => date.num_days_from_ce(),
            Period::Week => {
                let w = date.iso_week();
                w.year() * 100 + w.week() as i32
            }
            Period::Month => date.year() * 12 + date.month0() as i32,
        }
    }

    /// The label of the period numbered `key` ([`Period::key`]).
    ///
    /// # Examples
    /// ```
    /// use shequ::analytics::events::Period;
    /// let d = chrono::NaiveDate::from_ymd_opt(2025, 3, 9).unwrap();
    /// for p in [Period::Day, Period::Week, Period::Month] {
    ///     assert_eq!(p.key_label(p.key(d)), p.label(d));
    /// }
    /// ```
    pub fn key_label(self, key: i32) -> String {
        match self {
            Period::Day => NaiveDate::from_num_days_from_ce_opt(key)
                .map_or_else(String::new, |d| self.label(d)),
            Period::Week => format!("{}-W{:02}", key / 100, key % 100),
            Period::Month => format!("{}-{:02}", key / 12, key % 12 + 1),
        }
    }
}

/// The analysis options (`[events]`); every one has a default.
///
/// # Examples
/// ```
/// let o: shequ::analytics::events::EventsOptions = toml::from_str("as_of = '2026-01-01'")?;
/// assert_eq!(o.yellow_share, 0.8);
/// assert_eq!(o.repeat_days, 30);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsOptions {
    /// The time cards and overdue visits are judged at (default: the special-needs reference
    /// date, at midnight), so a run is reproducible.
    pub as_of: Option<String>,
    /// A deadline table extending the bundled one (`category,subcategory,step,limit,unit,source`).
    pub deadlines: Option<PathBuf>,
    /// A calendar table extending the bundled one (`date,kind,name,source`).
    pub calendar: Option<PathBuf>,
    /// A classification extending the bundled one (`category,subcategory,class,standard`).
    pub classes: Option<PathBuf>,
    /// The share of a limit after which an open step gets a yellow card.
    #[serde(default = "default_yellow")]
    pub yellow_share: f64,
    /// Cases of the same category at the same place within this many days repeat each other.
    #[serde(default = "default_repeat_days")]
    pub repeat_days: u32,
    /// The side of the squares that make a place for cases located by coordinates (metres);
    /// cases with a building code are at their building.
    #[serde(default = "default_repeat_metres")]
    pub repeat_metres: f64,
    /// Cases per day, week or month.
    #[serde(default)]
    pub period: Period,
    /// Gi* threshold of the hot spots of cases per resident.
    #[serde(default = "default_z")]
    pub hot_spot_z: f64,
    /// Visit rules (`category,where,every_days,source`).
    pub visit_rules: Option<PathBuf>,
    /// The first day visits are counted over (default: 90 days before `as_of`).
    pub visits_from: Option<String>,
}

fn default_yellow() -> f64 {
    0.8
}
fn default_repeat_days() -> u32 {
    30
}
fn default_repeat_metres() -> f64 {
    50.0
}
fn default_z() -> f64 {
    1.96
}

impl Default for EventsOptions {
    fn default() -> Self {
        toml::from_str("").expect("every option has a default")
    }
}

impl EventsOptions {
    /// `as_of`, else midnight of `fallback` (the special-needs reference date).
    ///
    /// # Errors
    /// An unreadable `as_of`, or neither given.
    pub fn as_of(&self, fallback: Option<NaiveDate>) -> std::result::Result<NaiveDateTime, String> {
        match (&self.as_of, fallback) {
            (Some(s), _) => {
                parse_timestamp(s).ok_or_else(|| format!("events.as_of: {s:?} is not a time"))
            }
            (None, Some(d)) => Ok(d.and_time(chrono::NaiveTime::MIN)),
            (None, None) => Err(
                "[events] needs `as_of` (the time cards are judged at), or a \
                 special_needs.reference_date"
                    .into(),
            ),
        }
    }

    /// The first day of the visits counted.
    ///
    /// # Errors
    /// An unreadable `visits_from`.
    pub fn visits_from(&self, as_of: NaiveDateTime) -> std::result::Result<NaiveDate, String> {
        match &self.visits_from {
            Some(s) => parse_timestamp(s)
                .map(|t| t.date())
                .ok_or_else(|| format!("events.visits_from: {s:?} is not a date")),
            None => Ok(as_of.date() - chrono::Days::new(90)),
        }
    }

    /// The yellow share in thousandths.
    pub fn yellow_permille(&self) -> u32 {
        (self.yellow_share * 1000.0).round() as u32
    }

    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        if !(self.yellow_share > 0.0 && self.yellow_share <= 1.0) {
            return Err("events.yellow_share must be above 0 and at most 1".into());
        }
        if !(self.repeat_metres.is_finite() && self.repeat_metres > 0.0) {
            return Err("events.repeat_metres must be a positive number".into());
        }
        Ok(())
    }
}

/// The special-needs reference date of a job, the default `as_of`.
pub(crate) fn reference_date(job: &crate::Job) -> Option<NaiveDate> {
    let s = job.special_needs.as_ref()?;
    parse_timestamp(&s.reference_date).map(|t| t.date())
}

/// Checks the events parts of a job: the layers, the options, and that `as_of` can be known.
pub(crate) fn check_events(job: &crate::Job) -> std::result::Result<(), String> {
    let l = &job.layers;
    if let Some(e) = &l.events {
        e.check()?;
    }
    if l.visits.is_some() && job.special_needs.is_none() {
        return Err("[layers.visits] needs [special_needs] (who must be visited)".into());
    }
    if (l.events.is_some() || l.visits.is_some()) || job.events.is_some() {
        let o = job.events.clone().unwrap_or_default();
        o.check()?;
        o.as_of(reference_date(job))?;
    }
    if l.visits.is_some() && job.events.as_ref().is_none_or(|o| o.visit_rules.is_none()) {
        return Err("[layers.visits] needs events.visit_rules".into());
    }
    Ok(())
}
