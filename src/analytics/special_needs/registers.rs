//! Registers as sources of special-needs labels: a linked register row gives its register's
//! category and the categories its fields meet; roster flags of categories the registers
//! define are checked against them.

use foldhash::HashMap;

use super::labels::{NO_AGE, NO_DETAIL, disability_type, parse_grade};
use super::pass::SpecialNeedsPass;
use crate::analytics::categories::value_matches;
use crate::registry::{Finding, FindingKind, Links};

/// Where the labels of residents that registers label came from.
#[derive(Debug, Clone, Default)]
pub(super) struct Sources {
    /// The registers' ids.
    pub(super) registers: Vec<String>,
    /// Per resident a register labels: its roster bits, and the bits each register gave.
    pub(super) given: HashMap<u32, (u64, Vec<(u16, u64)>)>,
}

impl Sources {
    /// The sources of label `c` of a resident with final bits `bits`: `roster` and the
    /// registers' ids, `;`-separated; `None` without the label.
    pub(super) fn of(&self, resident: u32, bits: u64, c: usize) -> Option<String> {
        if bits >> c & 1 == 0 {
            return None;
        }
        let Some((roster, regs)) = self.given.get(&resident) else {
            return Some("roster".to_owned());
        };
        let mut parts: Vec<&str> = Vec::new();
        if roster >> c & 1 == 1 {
            parts.push("roster");
        }
        for (r, b) in regs {
            if b >> c & 1 == 1 && !parts.contains(&self.registers[*r as usize].as_str()) {
                parts.push(&self.registers[*r as usize]);
            }
        }
        Some(parts.join(";"))
    }
}

/// The categories (bits) and disability detail one linked register row gives a resident.
struct Given {
    bits: u64,
    kind: Option<u8>,
    grade: Option<u8>,
}

impl SpecialNeedsPass {
    /// Adds the labels the registers give (call after the people stage, before
    /// [`finish`](Self::finish)): each membership of `links` sets its register's category and
    /// the categories whose rule its fields meet (with the resident's age), and fills the
    /// disability type and grade. A roster flag of a category some register defines that no
    /// register confirms becomes an [`UnconfirmedRosterFlag`](FindingKind::UnconfirmedRosterFlag)
    /// finding of the first register defining it, counted in its summary.
    ///
    /// # Panics
    /// If `links` names a resident the pass has not labelled (links of another model).
    pub fn apply_registers(&mut self, links: &mut Links) {
        let n = self.people.cats.len();
        let defined = self.defined_by(links);
        let mut given: HashMap<u32, u64> = HashMap::default();
        let mut sources = Sources {
            registers: links
                .registers
                .iter()
                .map(|g| g.options.id.clone())
                .collect(),
            given: HashMap::default(),
        };
        for &(r, k, resident) in &links.memberships {
            assert!((resident as usize) < n, "a membership of another model");
            let g = self.given(links, r as usize, k as usize, resident as usize);
            *given.entry(resident).or_insert(0) |= g.bits;
            let roster = self.people.cats[resident as usize];
            sources
                .given
                .entry(resident)
                .or_insert((roster, Vec::new()))
                .1
                .push((r, g.bits));
            self.fill_detail(resident as usize, &g);
        }
        self.unconfirmed(links, &defined, &given);
        for (resident, bits) in given {
            self.people.cats[resident as usize] |= bits;
        }
        self.sources = sources;
    }

    /// Per category, the first register that defines it (by its category or a field of the
    /// category's rule).
    fn defined_by(&self, links: &Links) -> Vec<Option<usize>> {
        self.categories
            .iter()
            .map(|c| {
                links.registers.iter().position(|g| {
                    g.options.category.as_deref() == Some(c.id.as_str())
                        || c.rule
                            .field
                            .as_ref()
                            .is_some_and(|f| g.options.fields.contains_key(f))
                })
            })
            .collect()
    }

    fn given(&self, links: &Links, r: usize, k: usize, resident: usize) -> Given {
        let reg = &links.registers[r];
        let row = &reg.rows[k];
        let mut g = Given {
            bits: 0,
            kind: None,
            grade: None,
        };
        if let Some(c) = reg.options.category.as_deref() {
            if let Some(i) = self.categories.iter().position(|x| x.id == c) {
                g.bits |= 1 << i;
            }
        }
        let age = self.people.ages[resident];
        let age = (age != NO_AGE).then_some(u32::from(age));
        for (field, value) in reg.options.fields.keys().zip(&row.fields) {
            let Some(v) = value else { continue };
            for (i, cat) in self.categories.iter().enumerate() {
                let rule = &cat.rule;
                let meets = rule.field.as_deref() == Some(field.as_str())
                    && value_matches(rule, v)
                    && rule.min_age.is_none_or(|m| age.is_some_and(|a| a >= m))
                    && rule.below_age.is_none_or(|m| age.is_some_and(|a| a < m));
                g.bits |= u64::from(meets) << i;
            }
            match field.as_str() {
                "disability_type" => g.kind = Some(disability_type(v)),
                "disability_grade" => g.grade = Some(parse_grade(v).unwrap_or(0) as u8),
                _ => {}
            }
        }
        g
    }

    /// The register's disability type and grade replace the roster's (the federation's list
    /// is the authority on them).
    fn fill_detail(&mut self, resident: usize, g: &Given) {
        let n = self.people.cats.len();
        for (value, detail, flag) in [
            (g.kind, &mut self.people.types, &mut self.register_detail.0),
            (
                g.grade,
                &mut self.people.grades,
                &mut self.register_detail.1,
            ),
        ] {
            if let Some(v) = value {
                if detail.is_empty() {
                    detail.resize(n, NO_DETAIL);
                }
                detail[resident] = v;
                *flag = true;
            }
        }
    }

    /// Roster flags of register-defined categories that no membership confirms.
    fn unconfirmed(&self, links: &mut Links, defined: &[Option<usize>], given: &HashMap<u32, u64>) {
        let mask: u64 = defined
            .iter()
            .enumerate()
            .filter(|(_, d)| d.is_some())
            .fold(0, |m, (i, _)| m | 1 << i);
        if mask == 0 {
            return;
        }
        for (resident, &bits) in self.people.cats.iter().enumerate() {
            let open = bits & mask & !given.get(&(resident as u32)).copied().unwrap_or(0);
            if open == 0 {
                continue;
            }
            for (i, cat) in self.categories.iter().enumerate() {
                let Some(r) = defined[i].filter(|_| open >> i & 1 == 1) else {
                    continue;
                };
                let id = links.registers[r].options.id.clone();
                links.findings.push(Finding {
                    register: id,
                    row: 0,
                    id: String::new(),
                    kind: FindingKind::UnconfirmedRosterFlag,
                    detail: format!("the roster flags {:?}; no register confirms it", cat.id),
                    resident: Some(resident as u32),
                    community: None,
                });
                *links.summaries[r]
                    .counts
                    .entry(FindingKind::UnconfirmedRosterFlag)
                    .or_insert(0) += 1;
            }
        }
    }
}
