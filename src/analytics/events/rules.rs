//! The rules a run judges cases by, resolved once: the calendar, the classification with each
//! category and sub-category's limits per step, the card rule and `as_of`.

use chrono::NaiveDateTime;
use foldhash::HashMap;

use super::calendar::WorkCalendar;
use super::classes::Classification;
use super::deadlines::{CardRule, DeadlineTable, Limit};
use super::options::EventsOptions;
use super::steps::Step;
use crate::error::{Error, Result};
use crate::job::Job;

/// A class: one category and sub-category of the classification (or a category alone).
#[derive(Debug, Clone)]
pub(crate) struct ClassRules {
    /// Index into [`Rules::categories`].
    pub(crate) category: u16,
    /// The limit of each step ([`Step::ALL`] order; `discovered` has none).
    pub(crate) limits: [Option<Limit>; 6],
}

/// Everything a case is judged by.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The working-day calendar.
    pub calendar: WorkCalendar,
    /// The yellow share.
    pub cards: CardRule,
    /// The time open steps are judged at.
    pub as_of: NaiveDateTime,
    /// The categories, sorted (the columns `ev_cat_<category>`).
    pub categories: Vec<String>,
    pub(crate) classes: Vec<ClassRules>,
    /// Category → (its class without a sub-category, sub-category → class).
    lookup: HashMap<String, (u32, HashMap<String, u32>)>,
    /// The deadline table in force (for the rules table of the outputs).
    pub deadlines: DeadlineTable,
}

impl Rules {
    /// The rules of a job: the bundled tables extended by the job's, and `as_of`.
    ///
    /// # Errors
    /// An unreadable or invalid table; [`Error::Job`] without a way to know `as_of`.
    pub fn of(job: &Job, o: &EventsOptions) -> Result<Rules> {
        let read = |p: &std::path::Path| {
            let path = job.resolve(p);
            std::fs::read_to_string(&path)
                .map_err(|e| Error::io(&path, e))
                .map(|t| (t, path.display().to_string()))
        };
        let mut calendar = WorkCalendar::china();
        if let Some(p) = &o.calendar {
            let (t, f) = read(p)?;
            calendar.extend_csv(&t, &f)?;
        }
        let mut classes = Classification::bundled();
        if let Some(p) = &o.classes {
            let (t, f) = read(p)?;
            classes.extend_csv(&t, &f)?;
        }
        let mut deadlines = DeadlineTable::defaults();
        if let Some(p) = &o.deadlines {
            let (t, f) = read(p)?;
            deadlines.extend_csv(&t, &f)?;
        }
        let as_of = o
            .as_of(super::options::reference_date(job))
            .map_err(|m| job.error(m))?;
        Ok(Rules::new(
            calendar,
            &classes,
            deadlines,
            CardRule {
                yellow_permille: o.yellow_permille(),
            },
            as_of,
        ))
    }

    /// Rules from tables already read.
    pub fn new(
        calendar: WorkCalendar,
        classes: &Classification,
        deadlines: DeadlineTable,
        cards: CardRule,
        as_of: NaiveDateTime,
    ) -> Rules {
        let categories: Vec<String> = classes.categories().map(str::to_owned).collect();
        let mut rules = Rules {
            calendar,
            cards,
            as_of,
            categories: categories.clone(),
            classes: Vec::new(),
            lookup: HashMap::default(),
            deadlines,
        };
        for (ci, c) in categories.iter().enumerate() {
            let own = rules.add_class(ci as u16, c, "");
            let subs = classes
                .subcategories(c)
                .map(|s| (s.to_owned(), rules.add_class(ci as u16, c, s)))
                .collect();
            rules.lookup.insert(c.clone(), (own, subs));
        }
        rules
    }

    fn add_class(&mut self, category: u16, c: &str, sub: &str) -> u32 {
        let limits = Step::ALL.map(|s| {
            (s != Step::Discovered)
                .then(|| self.deadlines.limit(c, sub, s).map(|r| r.limit))
                .flatten()
        });
        self.classes.push(ClassRules { category, limits });
        (self.classes.len() - 1) as u32
    }

    /// The class of a category and sub-category (blank: the category's own); `None` when the
    /// classification does not know them.
    pub(crate) fn class(&self, category: &str, sub: Option<&str>) -> Option<u32> {
        use crate::io::table::trim;
        let (own, subs) = self.lookup.get(trim(category))?;
        match sub.map(trim).filter(|s| !s.is_empty()) {
            None => Some(*own),
            Some(s) => subs.get(s).copied(),
        }
    }
}
