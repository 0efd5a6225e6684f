//! Service rules as data: which facility type serves which population within which distances,
//! and where the norm comes from.

use serde::{Deserialize, Serialize};

/// The version of the default rule set. It changes whenever a default entry changes.
pub const DEFAULT_RULES_VERSION: &str = "shequ-default-rules/2026.1";

/// One service rule: facilities of type `facility` serve `target` within `thresholds_m`.
///
/// `target` is `all` (every placed resident) or a special-needs category id (`disabled`,
/// `empty_nest`, `elderly_alone`, ...; needs `[special_needs]`). Age groups that are sums of
/// published age bands (60+, 65+) are not targets: the suppression engine protects flat
/// groups, and a coverage total over a sum of bands would be a second, overlapping one.
///
/// # Examples
/// ```
/// use shequ::analytics::coverage::ServiceRule;
/// let r = ServiceRule::new("clinic", "all", &[300.0, 500.0, 1000.0], 300.0, "GB 50180-2018");
/// assert_eq!(r.id(), "clinic_all");
/// assert!(r.check().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceRule {
    /// The facility type, as in the facilities layer's `kind` column.
    pub facility: String,
    /// The population served.
    pub target: String,
    /// Distance thresholds in metres, ascending (coverage is reported within each).
    pub thresholds_m: Vec<f64>,
    /// The planning norm: a resident is covered within this distance (one of the
    /// thresholds). Grids below `blind_spot_below` covered are blind spots.
    pub standard_m: f64,
    /// Where the rule comes from (a standard, a local regulation, the job's author).
    pub source: String,
}

impl ServiceRule {
    /// A rule.
    pub fn new(
        facility: &str,
        target: &str,
        thresholds_m: &[f64],
        standard_m: f64,
        source: &str,
    ) -> Self {
        ServiceRule {
            facility: facility.into(),
            target: target.into(),
            thresholds_m: thresholds_m.to_vec(),
            standard_m,
            source: source.into(),
        }
    }

    /// The rule's id, used in column names: `<facility>_<target>`.
    pub fn id(&self) -> String {
        format!("{}_{}", self.facility, self.target)
    }

    /// Checks the rule: names usable in column names, 1 to 16 thresholds, positive whole
    /// metres, strictly ascending, the standard one of them.
    ///
    /// # Errors
    /// A message saying what is wrong.
    pub fn check(&self) -> Result<(), String> {
        let id = self.id();
        let ok_name = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        if !ok_name(&self.facility) || !ok_name(&self.target) {
            return Err(format!(
                "rule {id:?}: facility and target must be lower-case ASCII letters, digits and _"
            ));
        }
        if self.thresholds_m.is_empty() || self.thresholds_m.len() > 16 {
            return Err(format!("rule {id:?}: give 1 to 16 thresholds_m"));
        }
        if self
            .thresholds_m
            .iter()
            .any(|t| !t.is_finite() || *t <= 0.0 || t.fract() != 0.0)
        {
            return Err(format!(
                "rule {id:?}: thresholds must be positive whole metres, got {:?}",
                self.thresholds_m
            ));
        }
        if self.thresholds_m.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!(
                "rule {id:?}: thresholds must be strictly ascending, got {:?}",
                self.thresholds_m
            ));
        }
        if !self.thresholds_m.contains(&self.standard_m) {
            return Err(format!(
                "rule {id:?}: standard_m {} is not one of thresholds_m {:?}",
                self.standard_m, self.thresholds_m
            ));
        }
        if self.source.trim().is_empty() {
            return Err(format!("rule {id:?}: give the rule's source"));
        }
        Ok(())
    }
}

/// The rule set in force for a run, with its version.
///
/// # Examples
/// ```
/// use shequ::analytics::coverage::{RuleSet, ServiceRule};
/// let defaults = RuleSet::defaults();
/// assert!(defaults.rules.iter().any(|r| r.id() == "rehabilitation_disabled"));
/// // A job overrides the clinic rule and adds one.
/// let set = RuleSet::merge(false, &[
///     ServiceRule::new("clinic", "all", &[500.0, 1000.0], 500.0, "city norm"),
///     ServiceRule::new("clinic", "disabled", &[300.0], 300.0, "study design"),
/// ])?;
/// assert_eq!(set.rules.len(), defaults.rules.len() + 1);
/// assert!(set.version.ends_with("+job(2)"));
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleSet {
    /// The version: the default set's, with `+job(n)` when a job changed or added `n`
    /// entries; `job` when the job replaced the defaults.
    pub version: String,
    /// The rules, in output order.
    pub rules: Vec<ServiceRule>,
}

const LIFE_CIRCLES: [f64; 3] = [300.0, 500.0, 1000.0];

impl RuleSet {
    /// The thresholds (m) of every rule of facility type `kind`, ascending, each once: the
    /// distances that type's reach is counted within.
    ///
    /// # Examples
    /// ```
    /// let rules = shequ::analytics::coverage::RuleSet::defaults();
    /// assert_eq!(rules.thresholds_of("clinic"), vec![300.0, 500.0, 1000.0]);
    /// assert!(rules.thresholds_of("no such type").is_empty());
    /// ```
    pub fn thresholds_of(&self, kind: &str) -> Vec<f64> {
        let mut t: Vec<f64> = self
            .rules
            .iter()
            .filter(|r| r.facility == kind)
            .flat_map(|r| r.thresholds_m.iter().copied())
            .collect();
        t.sort_by(f64::total_cmp);
        t.dedup();
        t
    }

    /// The default rules, after the community life circles of GB 50180-2018 (5-, 10- and
    /// 15-minute walks: 300, 500 and 1000 m; `shared/domain.md` §3).
    pub fn defaults() -> RuleSet {
        let gb = "GB 50180-2018 community life circles (5/10/15-minute walks: 300/500/1000 m)";
        RuleSet {
            version: DEFAULT_RULES_VERSION.into(),
            rules: vec![
                ServiceRule::new(
                    "clinic",
                    "all",
                    &LIFE_CIRCLES,
                    300.0,
                    &format!("{gb}; community health station in the 5-minute circle"),
                ),
                ServiceRule::new(
                    "elderly_daycare",
                    "empty_nest",
                    &LIFE_CIRCLES,
                    300.0,
                    &format!(
                        "{gb}; elderly day-care centre in the 5-minute circle, for older people \
                         alone at home in the day (empty-nest, which includes living alone)"
                    ),
                ),
                ServiceRule::new(
                    "rehabilitation",
                    "disabled",
                    &LIFE_CIRCLES,
                    1000.0,
                    &format!(
                        "{gb}; rehabilitation as a 15-minute-circle service (no national radius; \
                         TD/T 1062-2021 stresses barrier-free access)"
                    ),
                ),
                ServiceRule::new(
                    "activity_centre",
                    "all",
                    &LIFE_CIRCLES,
                    300.0,
                    &format!("{gb}; community service station in the 5-minute circle"),
                ),
            ],
        }
    }

    /// The defaults (unless `replace_defaults`) with the job's rules: a job rule with the
    /// same facility and target replaces the default entry, others are appended.
    ///
    /// # Errors
    /// A message for an invalid rule or two job rules with the same id.
    pub fn merge(replace_defaults: bool, job: &[ServiceRule]) -> Result<RuleSet, String> {
        let mut set = if replace_defaults {
            RuleSet {
                version: "job".into(),
                rules: Vec::new(),
            }
        } else {
            RuleSet::defaults()
        };
        let mut seen = std::collections::HashSet::new();
        for r in job {
            r.check()?;
            if !seen.insert(r.id()) {
                return Err(format!("rule {:?} is given twice", r.id()));
            }
            match set.rules.iter_mut().find(|d| d.id() == r.id()) {
                Some(d) => *d = r.clone(),
                None => set.rules.push(r.clone()),
            }
        }
        if !replace_defaults && !job.is_empty() {
            set.version = format!("{}+job({})", set.version, job.len());
        }
        Ok(set)
    }
}
