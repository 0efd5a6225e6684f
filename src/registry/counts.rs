//! The reconciliation as count columns of the one release: per register and kind, the
//! findings in each unit, suppressed with every other count.

use super::link::Links;
use super::report::FindingKind;
use crate::analytics::counts::{CountColumns, LEVELS};
use crate::model::Model;
use crate::model::level::Layer;
use crate::privacy::Sensitivity;

/// The finest level register counts are published at: a grid's list of a dozen fix-ups is
/// readable; a building's would point at a household.
pub const FINEST: Layer = Layer::Grid;

impl Links {
    /// The count column of a register and kind: `reg_<register>_<kind>`.
    ///
    /// # Examples
    /// ```
    /// use shequ::registry::{FindingKind, Links};
    /// assert_eq!(Links::column("dibao", FindingKind::IdNotFound), "reg_dibao_id_not_found");
    /// ```
    pub fn column(register: &str, kind: FindingKind) -> String {
        format!("reg_{register}_{}", kind.code())
    }

    /// The names of the count columns, register by register, kind by kind.
    pub fn count_names(&self) -> Vec<String> {
        self.summaries
            .iter()
            .flat_map(|s| FindingKind::ALL.map(|k| Links::column(&s.id, k)))
            .collect()
    }

    /// `base` with the register count columns appended. A finding about a roster resident is
    /// counted in the resident's units. A row about no resident (not in the roster, a
    /// duplicate, a note) has only the register's word for a place: it is in the manifest's
    /// totals and the operational fix-list, in no unit. Matched rows count too, so a published
    /// `matched` cell is a register's coverage of the unit.
    pub fn columns(&self, model: &Model, mut base: CountColumns) -> CountColumns {
        let names = self.count_names();
        let width = names.len();
        let mut values: [Vec<Vec<u64>>; 4] =
            LEVELS.map(|l| vec![vec![0u64; width]; if model.has(l) { model.units(l) } else { 0 }]);
        let mut add = |level: usize, unit: Option<u32>, col: usize| {
            if let Some(u) = unit {
                if let Some(row) = values[level].get_mut(u as usize) {
                    row[col] += 1;
                }
            }
        };
        let registers: foldhash::HashMap<&str, usize> = self
            .summaries
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        // A row about no roster resident has only the register's word for a place: skipped.
        let listed = self
            .findings
            .iter()
            .filter_map(|f| Some((registers[f.register.as_str()], f.kind, f.resident?)));
        let matched = self
            .matched
            .iter()
            .map(|&(r, resident)| (r as usize, FindingKind::Matched, resident));
        for (r, kind, resident) in listed.chain(matched) {
            let col = r * FindingKind::ALL.len() + kind as usize;
            let h = model.residents[resident as usize].household as usize;
            let lineage = model.households[h].lineage;
            for (li, level) in LEVELS.iter().enumerate() {
                add(li, lineage.at(*level), col);
            }
        }
        let bounds = self
            .summaries
            .iter()
            .flat_map(|s| FindingKind::ALL.map(|k| self.bound(&s.id, k)))
            .collect();
        base.append(CountColumns {
            classes: vec![Sensitivity::Sensitive; width],
            finest: vec![FINEST; width],
            table: vec!["registers"; width],
            bound: bounds,
            groups: Vec::new(),
            nested: Vec::new(),
            values,
            names,
        });
        base
    }

    /// The most one person changes a column's count in one unit: one row each, except
    /// repeated rows (a person listed again and again) and roster flags (one per category
    /// the register defines), which a differentially private release refuses.
    fn bound(&self, _register: &str, kind: FindingKind) -> Option<u64> {
        match kind {
            FindingKind::Duplicate | FindingKind::UnconfirmedRosterFlag => None,
            _ => Some(1),
        }
    }
}
