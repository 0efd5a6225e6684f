//! The special-needs category registry: categories as data, with the rule that gives a resident
//! the label.

use serde::{Deserialize, Serialize};

use crate::privacy::Sensitivity;

/// Who may see a category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Care and welfare categories, used for services and coverage.
    Care,
    /// Sensitive public-security categories: never in default exports, never in research
    /// outputs.
    Restricted,
}

/// A household condition of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HouseholdRule {
    /// The resident's household has one member.
    Alone,
    /// Every member of the household is 60 or older (ages known).
    #[serde(rename = "all_60_plus")]
    All60Plus,
}

/// How a resident gets a label. Every condition given must hold.
///
/// A roster condition names a `field`: a key of the job's `[special_needs.fields]` table (which
/// maps it to a roster column) or else a roster column itself. It holds when the value is one of
/// `values` (compared trimmed, case-insensitive), or when `values` is empty, when it is a yes
/// flag (是, 1, Y, yes, true, √); with `any_value` any non-blank value holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The roster field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Values that give the label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Any non-blank value gives the label.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub any_value: bool,
    /// Age at the reference date at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_age: Option<u32>,
    /// Age at the reference date below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below_age: Option<u32>,
    /// A household condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub household: Option<HouseholdRule>,
    /// The household has at most this many members (a collective household, such as a care
    /// home, is not an empty nest). It also bounds how many labels one resident joining or
    /// leaving a household can change, which a differentially private release needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_household: Option<u32>,
}

impl Rule {
    /// The most one resident added to or removed from the roster changes the number of
    /// residents with the label in one unit: 1, except for an all-60-plus household rule,
    /// where everyone in the household can change with one member (`max_household`; `None`
    /// without it: no bound).
    ///
    /// # Examples
    /// ```
    /// use shequ::analytics::categories::default_categories;
    /// let all = default_categories();
    /// let bound = |id: &str| all.iter().find(|c| c.id == id).unwrap().rule.bound();
    /// assert_eq!(bound("disabled"), Some(1));
    /// assert_eq!(bound("elderly_alone"), Some(1));
    /// assert_eq!(bound("empty_nest"), Some(10));
    /// ```
    pub fn bound(&self) -> Option<u64> {
        match self.household {
            Some(HouseholdRule::All60Plus) => self.max_household.map(u64::from),
            _ => Some(1),
        }
    }

    /// Whether the rule needs the resident's age.
    pub fn needs_age(&self) -> bool {
        self.min_age.is_some() || self.below_age.is_some() || self.household.is_some()
    }
}

/// A special-needs category.
///
/// # Examples
/// ```
/// use shequ::analytics::categories::{default_categories, Tier};
/// let all = default_categories();
/// let alone = all.iter().find(|c| c.id == "elderly_alone").unwrap();
/// assert_eq!(alone.zh, "独居老人");
/// assert_eq!(alone.rule.min_age, Some(60));
/// assert!(all.iter().any(|c| c.tier == Tier::Restricted));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// Identifier, used in column names (`[a-z0-9_]`).
    pub id: String,
    /// Chinese name.
    pub zh: String,
    /// English name.
    pub en: String,
    /// Tier.
    pub tier: Tier,
    /// How sensitive its counts are in research releases (default `sensitive`).
    #[serde(default)]
    pub sensitivity: Sensitivity,
    /// How a resident gets the label.
    #[serde(flatten)]
    pub rule: Rule,
}

/// The default categories (`shared/domain.md` §2): the care tier, then the restricted tier.
/// Roster-based ones read the fields of the same name. Every one is
/// [`Sensitivity::Sensitive`] except the two defined by age and household make-up alone
/// (`empty_nest`, `oldest_old`), which a census would publish. The table is data, shipped as
/// `src/analytics/default_categories.toml` in the keys of `[[special_needs.categories]]`.
///
/// # Examples
/// ```
/// use shequ::{analytics::categories::default_categories, privacy::Sensitivity};
/// let all = default_categories();
/// let class = |id: &str| all.iter().find(|c| c.id == id).unwrap().sensitivity;
/// assert_eq!(class("disabled"), Sensitivity::Sensitive);
/// assert_eq!(class("elderly_alone"), Sensitivity::Sensitive);
/// assert_eq!(class("oldest_old"), Sensitivity::Low);
/// ```
///
/// # Panics
/// Never: the table is compiled in, and a unit test parses it.
pub fn default_categories() -> Vec<Category> {
    /// The table as shipped, parsed once.
    static DEFAULTS: std::sync::OnceLock<Vec<Category>> = std::sync::OnceLock::new();
    #[derive(Deserialize)]
    struct Table {
        categories: Vec<Category>,
    }
    DEFAULTS
        .get_or_init(|| {
            toml::from_str::<Table>(include_str!("default_categories.toml"))
                .expect("the shipped table parses (a unit test reads it)")
                .categories
        })
        .clone()
}

/// Values read as "yes" in flag columns.
pub const YES: [&str; 8] = ["是", "1", "y", "yes", "true", "√", "有", "t"];

/// Whether a roster value satisfies a rule's value condition.
///
/// # Examples
/// ```
/// use shequ::analytics::categories::{value_matches, Rule};
/// let flag = Rule { field: Some("x".into()), ..Rule::default() };
/// assert!(value_matches(&flag, " 是 ") && value_matches(&flag, "Yes") && !value_matches(&flag, "否"));
/// let any = Rule { any_value: true, ..flag.clone() };
/// assert!(value_matches(&any, "肢体") && !value_matches(&any, "  "));
/// ```
pub fn value_matches(rule: &Rule, value: &str) -> bool {
    let v = value.trim();
    if rule.any_value {
        !v.is_empty()
    } else if rule.values.is_empty() {
        YES.iter().any(|y| y.eq_ignore_ascii_case(v))
    } else {
        rule.values.iter().any(|y| y.trim().eq_ignore_ascii_case(v))
    }
}

/// Merges user categories into the defaults: a user category with a default's id replaces it;
/// others are added in order.
///
/// # Errors
/// A message for an id that is not `[a-z0-9_]+` or is repeated among the user's.
pub fn merge(defaults: Vec<Category>, user: &[Category]) -> Result<Vec<Category>, String> {
    let mut out = defaults;
    let mut seen = std::collections::HashSet::new();
    for c in user {
        if c.id.is_empty()
            || !c
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(format!(
                "category id {:?} must be lower-case letters, digits and _",
                c.id
            ));
        }
        if !seen.insert(c.id.clone()) {
            return Err(format!("category {:?} is defined twice", c.id));
        }
        match out.iter_mut().find(|d| d.id == c.id) {
            Some(d) => *d = c.clone(),
            None => out.push(c.clone()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    /// The shipped table parses, with unique ids, and every rule is one the engine can apply.
    #[test]
    fn default_table_parses() {
        let all = super::default_categories();
        assert!(all.len() >= 10, "{}", all.len());
        let mut ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), all.len());
        for c in &all {
            let r = &c.rule;
            assert!(r.field.is_some() || r.needs_age(), "{}: no condition", c.id);
            assert!(r.bound().is_some(), "{}: unbounded", c.id);
        }
    }
}
