//! The job's `[special_needs]` section.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::analytics::categories::{Category, default_categories, merge};
use crate::model::level::Layer;

/// The `[special_needs]` section of a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecialNeedsOptions {
    /// The date ages are computed at (`YYYY-MM-DD`). Required: results must not change with
    /// the day the job runs.
    pub reference_date: String,
    /// Roster fields: logical name (`birth_date`, `disability_type`, `disability_grade`,
    /// `minimum_living_allowance`, `unemployed`, ...) → roster column.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Categories added to the defaults, or replacing the default with the same id.
    #[serde(default)]
    pub categories: Vec<Category>,
    /// Pairs of categories whose co-occurrence is counted (default: elderly living alone and
    /// disabled; disabled and minimum living allowance; oldest-old and living alone).
    #[serde(default = "default_pairs")]
    pub co_occurrence: Vec<[String; 2]>,
    /// Categories with hot-spot statistics (default: every care category computed).
    pub hot_spots: Option<Vec<String>>,
    /// Gi* z-value at or above which a grid is flagged a hot spot (default 1.96, p < 0.05).
    #[serde(default = "default_z")]
    pub hot_spot_z: f64,
    /// Include restricted-tier categories (operational runs with
    /// `privacy.allow_restricted` only).
    #[serde(default)]
    pub include_restricted: bool,
    /// Research releases: the finest level of the disability type and grade counts,
    /// `street`, `community` (default), `grid` or `building`. At a disability prevalence of
    /// about 6%, a grid's 20–30 disabled residents split seven ways (or five) are mostly below
    /// k; the breakdown is published where it can be read, the total everywhere.
    #[serde(default = "default_detail_finest")]
    pub disability_detail_finest: DetailLevel,
}

/// A published level, for options that stop a column's detail above the finest level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetailLevel {
    /// Streets only.
    Street,
    /// Communities and streets.
    Community,
    /// Grids and above.
    Grid,
    /// Every level.
    Building,
}

impl DetailLevel {
    /// The level.
    pub fn layer(self) -> Layer {
        match self {
            DetailLevel::Street => Layer::Street,
            DetailLevel::Community => Layer::Community,
            DetailLevel::Grid => Layer::Grid,
            DetailLevel::Building => Layer::Building,
        }
    }
}

fn default_detail_finest() -> DetailLevel {
    DetailLevel::Community
}

fn default_pairs() -> Vec<[String; 2]> {
    [
        ["elderly_alone", "disabled"],
        ["disabled", "minimum_living_allowance"],
        ["oldest_old", "elderly_alone"],
    ]
    .iter()
    .map(|[a, b]| [(*a).to_owned(), (*b).to_owned()])
    .collect()
}
fn default_z() -> f64 {
    1.96
}

impl SpecialNeedsOptions {
    /// Options with a reference date and field mapping, defaults otherwise.
    ///
    /// # Examples
    /// ```
    /// let o = shequ::SpecialNeedsOptions::new("2026-01-01", [("birth_date", "出生日期")]);
    /// assert_eq!(o.fields["birth_date"], "出生日期");
    /// assert!(o.check().is_ok());
    /// ```
    pub fn new<'a>(
        reference_date: &str,
        fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        SpecialNeedsOptions {
            reference_date: reference_date.into(),
            fields: fields
                .into_iter()
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .collect(),
            categories: Vec::new(),
            co_occurrence: default_pairs(),
            hot_spots: None,
            hot_spot_z: default_z(),
            include_restricted: false,
            disability_detail_finest: default_detail_finest(),
        }
    }

    /// Checks the options on their own.
    ///
    /// # Errors
    /// A message: bad date, bad category ids, unknown categories in pairs or hot spots.
    pub fn check(&self) -> std::result::Result<(), String> {
        self.date()?;
        let cats = merge(default_categories(), &self.categories)?;
        let known = |id: &str| cats.iter().any(|c| c.id == id);
        for [a, b] in &self.co_occurrence {
            if !known(a) || !known(b) || a == b {
                return Err(format!(
                    "special_needs.co_occurrence: [{a:?}, {b:?}] needs two different known categories"
                ));
            }
        }
        for h in self.hot_spots.iter().flatten() {
            if !known(h) {
                return Err(format!("special_needs.hot_spots: unknown category {h:?}"));
            }
        }
        if !self.hot_spot_z.is_finite() {
            return Err("special_needs.hot_spot_z must be a number".into());
        }
        Ok(())
    }

    pub(super) fn date(&self) -> std::result::Result<NaiveDate, String> {
        NaiveDate::parse_from_str(self.reference_date.trim(), "%Y-%m-%d").map_err(|_| {
            format!(
                "special_needs.reference_date {:?} is not a date (YYYY-MM-DD)",
                self.reference_date
            )
        })
    }
}
