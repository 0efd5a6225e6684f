//! What a case is: its category and sub-category (a classification shipped as data), where it
//! came from, and what the resident said at the return visit.

use std::collections::{BTreeMap, BTreeSet};

use super::tables::read_rows;
use crate::error::{Error, Location, Result};

/// One sub-category of the classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    /// `事件` (an event: an act or a state) or `部件` (a component: a public object).
    pub class: String,
    /// Where the row comes from (the standard's major class, or a local extension).
    pub standard: String,
}

/// The case classification: categories and their sub-categories, as data (CSV with the
/// columns `category,subcategory,class,standard`).
///
/// The bundled table ([`Classification::bundled`]) follows the major classes of digital city
/// management (GB/T 30428.2: the event classes 市容环境, 宣传广告, 施工管理, 突发事件 and
/// 街面秩序; the component classes 公用设施, 道路交通, 园林绿化 and 房屋土地) with common
/// sub-categories under them, plus community-governance categories (矛盾纠纷, 安全隐患,
/// 民生服务) marked as shequ's extension. Sub-category names are simplified; a city replaces or
/// extends them with its own ([`Classification::extend_csv`]).
///
/// # Examples
/// ```
/// use shequ::analytics::events::Classification;
/// let c = Classification::bundled();
/// assert!(c.knows("街面秩序", Some("店外经营")));
/// assert!(c.knows("街面秩序", None)); // a category without a sub-category
/// assert!(!c.knows("街面秩序", Some("暴露垃圾"))); // under another category
/// assert!(!c.knows("天气", None));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Classification {
    classes: BTreeMap<(String, String), Class>,
    categories: BTreeSet<String>,
}

const BUNDLED: &str = include_str!("classes_cn.csv");

impl Classification {
    /// The bundled classification.
    ///
    /// # Panics
    /// Never: the bundled table is checked by the tests.
    pub fn bundled() -> Classification {
        let mut c = Classification::default();
        c.extend_csv(BUNDLED, "classes_cn.csv")
            .expect("the bundled classification is valid");
        c
    }

    /// Adds (or replaces) rows from CSV text; `file` names it in errors.
    ///
    /// # Errors
    /// A located data error: a missing column, a blank category or sub-category.
    pub fn extend_csv(&mut self, text: &str, file: &str) -> Result<()> {
        let rows = read_rows(
            text,
            file,
            "classes",
            &["category", "subcategory", "class", "standard"],
        )?;
        for (i, f) in rows.into_iter().enumerate() {
            if f[0].is_empty() || f[1].is_empty() {
                return Err(Error::data(
                    Location::layer("classes").file(file).index(i),
                    "a category and a sub-category are required",
                ));
            }
            let [category, subcategory, class, standard] = f;
            self.categories.insert(category.clone());
            self.classes
                .insert((category, subcategory), Class { class, standard });
        }
        Ok(())
    }

    /// Whether the classification has `category` (and `subcategory` under it, when given).
    pub fn knows(&self, category: &str, subcategory: Option<&str>) -> bool {
        match subcategory {
            None => self.categories.contains(category),
            Some(s) => self
                .classes
                .contains_key(&(category.to_owned(), s.to_owned())),
        }
    }

    /// The sub-category's row.
    pub fn class(&self, category: &str, subcategory: &str) -> Option<&Class> {
        self.classes
            .get(&(category.to_owned(), subcategory.to_owned()))
    }

    /// Every category, sorted.
    pub fn categories(&self) -> impl Iterator<Item = &str> {
        self.categories.iter().map(String::as_str)
    }

    /// The sub-categories of `category`, sorted.
    ///
    /// # Examples
    /// ```
    /// let c = shequ::analytics::events::Classification::bundled();
    /// assert!(c.subcategories("市容环境").any(|s| s == "暴露垃圾"));
    /// ```
    pub fn subcategories<'a>(&'a self, category: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.classes
            .keys()
            .filter(move |(c, _)| c == category)
            .map(|(_, s)| s.as_str())
    }
}

/// Where a case came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CaseSource {
    /// A grid worker's patrol (巡查).
    Patrol,
    /// A resident's app or mini-program report (随手拍, 小程序).
    App,
    /// The 12345 government service hotline.
    Hotline,
    /// Anything else (a letter, a visit to the office, a referral).
    Other,
}

impl CaseSource {
    /// A source as offices write it (`巡查`, `网格员上报`, `APP`, `小程序`, `随手拍`, `12345`,
    /// `热线`, or the English names); other text is [`CaseSource::Other`], blank is `None`.
    ///
    /// # Examples
    /// ```
    /// use shequ::analytics::events::CaseSource;
    /// assert_eq!(CaseSource::parse("12345热线"), Some(CaseSource::Hotline));
    /// assert_eq!(CaseSource::parse("网格员巡查"), Some(CaseSource::Patrol));
    /// assert_eq!(CaseSource::parse("微信小程序"), Some(CaseSource::App));
    /// assert_eq!(CaseSource::parse("来信"), Some(CaseSource::Other));
    /// assert_eq!(CaseSource::parse(" "), None);
    /// ```
    pub fn parse(s: &str) -> Option<CaseSource> {
        let s = crate::io::table::trim(s);
        if s.is_empty() {
            return None;
        }
        // The names systems export most, matched whole before any search.
        Some(match s {
            "12345" | "热线" => CaseSource::Hotline,
            "巡查" | "网格员" | "网格员巡查" => CaseSource::Patrol,
            "APP" | "app" | "小程序" | "随手拍" => CaseSource::App,
            _ => CaseSource::searched(s),
        })
    }

    /// [`parse`](Self::parse) by searching the words in `s` (trimmed, not empty).
    fn searched(s: &str) -> CaseSource {
        let l = ascii_lowercase(s);
        let any = |keys: &[&str]| keys.iter().any(|k| l.contains(k));
        if any(&["12345", "热线", "hotline"]) {
            CaseSource::Hotline
        } else if any(&["巡查", "网格员", "patrol"]) {
            CaseSource::Patrol
        } else if any(&["app", "小程序", "随手拍", "公众号", "微信"]) {
            CaseSource::App
        } else {
            CaseSource::Other
        }
    }

    /// The name in tables and outputs.
    pub fn name(self) -> &'static str {
        match self {
            CaseSource::Patrol => "patrol",
            CaseSource::App => "app",
            CaseSource::Hotline => "hotline",
            CaseSource::Other => "other",
        }
    }
}

/// The resident's satisfaction at the return visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Satisfaction {
    /// 满意 (or 4–5 on a five-point scale).
    Satisfied,
    /// 基本满意 (3).
    Basic,
    /// 不满意 (1–2).
    Unsatisfied,
}

impl Satisfaction {
    /// A satisfaction as written: `满意` / `非常满意`, `基本满意` / `一般`, `不满意` /
    /// `非常不满意`, or a score of 1–5. Blank or unrecognised is `None`.
    ///
    /// The satisfaction rate offices are judged on counts 满意 and 基本满意 together
    /// ([`Satisfaction::counts_as_satisfied`]).
    ///
    /// # Examples
    /// ```
    /// use shequ::analytics::events::Satisfaction;
    /// assert_eq!(Satisfaction::parse("基本满意"), Some(Satisfaction::Basic));
    /// assert_eq!(Satisfaction::parse("不满意"), Some(Satisfaction::Unsatisfied));
    /// assert_eq!(Satisfaction::parse("5"), Some(Satisfaction::Satisfied));
    /// assert_eq!(Satisfaction::parse("2"), Some(Satisfaction::Unsatisfied));
    /// assert_eq!(Satisfaction::parse("6"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Satisfaction> {
        match crate::io::table::trim(s) {
            "满意" | "非常满意" | "5" | "4" => Some(Satisfaction::Satisfied),
            "基本满意" | "一般" | "3" => Some(Satisfaction::Basic),
            "不满意" | "非常不满意" | "2" | "1" => Some(Satisfaction::Unsatisfied),
            _ => None,
        }
    }

    /// 满意 or 基本满意.
    pub fn counts_as_satisfied(self) -> bool {
        self != Satisfaction::Unsatisfied
    }
}

/// `s` in ASCII lower case, copied only when it has an upper-case letter (statuses and
/// sources are read for every case).
pub(crate) fn ascii_lowercase(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(s.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_source_names_read_as_the_search_reads_them() {
        for w in [
            "12345",
            "热线",
            "巡查",
            "网格员",
            "网格员巡查",
            "APP",
            "app",
            "小程序",
            "随手拍",
        ] {
            assert_eq!(CaseSource::parse(w), Some(CaseSource::searched(w)), "{w}");
        }
    }

    #[test]
    fn the_bundled_classification_is_valid() {
        let c = Classification::bundled();
        assert!(c.categories().count() >= 10);
        assert_eq!(c.class("公用设施", "井盖破损丢失").unwrap().class, "部件");
    }

    #[test]
    fn a_bad_table_is_a_located_error() {
        let mut c = Classification::default();
        let e = c
            .extend_csv("category,subcategory,class\n", "x.csv")
            .unwrap_err();
        assert!(e.to_string().contains("standard"));
        let e = c
            .extend_csv("category,subcategory,class,standard\n,a,b,c\n", "x.csv")
            .unwrap_err();
        assert!(e.to_string().contains("required"));
    }
}
