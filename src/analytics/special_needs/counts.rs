//! The special-needs count columns per unit: every resident's flags counted at every level,
//! with the relations between the columns (groups that add up, nested pairs).

use rayon::prelude::*;

use super::labels::{NO_AGE, NO_DETAIL};
use super::{AGE_BANDS, DISABILITY_TYPES, SpecialNeeds};
use crate::analytics::counts::{CountColumns, LEVELS};
use crate::error::Result;
use crate::model::Model;
use crate::model::level::Layer;

/// Per level of [`LEVELS`]: one row of values per unit.
pub(super) type Values = [Vec<Vec<u64>>; 4];

/// The merged counts: per level of [`LEVELS`] and unit, the residents and every column of
/// [`SpecialNeeds::count_names`].
#[derive(Debug, Clone, Default)]
pub(super) struct UnitCounts {
    pub(super) values: Values,
    pub(super) residents: [Vec<u64>; 4],
}

impl SpecialNeeds {
    /// The count columns for the release, appended to
    /// `base` (which must hold `residents`), with their relations: residents = the age bands;
    /// disabled = its types = its grades; nested pairs (living alone within empty-nest,
    /// co-occurrence within each of its categories).
    ///
    /// The counts were made when the labels were finished; `_model` is the model they were
    /// made on.
    ///
    /// # Errors
    /// None at present (the signature keeps room for checks).
    ///
    /// # Panics
    /// If `base` lacks the `residents` column that [`CountColumns::from_tally`](crate::analytics::counts::CountColumns::from_tally) makes.
    pub fn columns(&self, _model: &Model, mut base: CountColumns) -> Result<CountColumns> {
        let names = self.count_names();
        let residents = base.index("residents").expect("base columns");
        let values = self.counts.values.clone();
        let off = base.names.len();
        let finest = names
            .iter()
            .map(|n| {
                if n.starts_with("disabled_") && !n.contains("_and_") {
                    self.disability_detail_finest
                } else {
                    Layer::Building
                }
            })
            .collect();
        let bounds = self.count_bounds();
        base.append(CountColumns {
            names: names.clone(),
            classes: self.count_classes(),
            finest,
            table: vec!["special_needs"; bounds.len()],
            bound: bounds,
            groups: Vec::new(),
            nested: Vec::new(),
            values,
        });
        let at = |name: &str| names.iter().position(|n| n == name).map(|i| i + off);
        self.relations(&mut base, residents, at);
        Ok(base)
    }

    /// Every resident's columns counted in its units at every level: one parallel pass, a
    /// counter table per task, the tables then added up (integers: the same for any split).
    pub(super) fn count(&self, model: &Model) -> UnitCounts {
        let nf = self.count_names().len();
        let levels: Vec<usize> = (0..LEVELS.len())
            .filter(|li| model.has(LEVELS[*li]))
            .collect();
        let units = |li: usize| {
            if model.has(LEVELS[li]) {
                model.units(LEVELS[li])
            } else {
                0
            }
        };
        let n = model.residents.len();
        let tasks = 2 * rayon::current_num_threads();
        let per = n.div_ceil(tasks).max(1);
        let width = nf + 1;
        let tables: Vec<Vec<Vec<u32>>> = (0..n.div_ceil(per))
            .into_par_iter()
            .map(|k| {
                let mut t: Vec<Vec<u32>> = (0..LEVELS.len())
                    .map(|li| vec![0u32; units(li) * width])
                    .collect();
                let mut flags = Vec::with_capacity(nf);
                for i in k * per..((k + 1) * per).min(n) {
                    flags.clear();
                    self.flags_of(i, &mut flags);
                    let h = model.residents[i].household as usize;
                    let lineage = &model.households[h].lineage;
                    for &li in &levels {
                        let Some(u) = lineage.at(LEVELS[li]) else {
                            continue;
                        };
                        let row = &mut t[li][u as usize * width..(u as usize + 1) * width];
                        row[nf] += 1;
                        for &f in &flags {
                            row[f as usize] += 1;
                        }
                    }
                }
                t
            })
            .collect();
        let mut out = UnitCounts::default();
        for li in 0..LEVELS.len() {
            let nu = units(li);
            let mut values = vec![vec![0u64; nf]; nu];
            let mut residents = vec![0u64; nu];
            for t in &tables {
                for (u, row) in values.iter_mut().enumerate() {
                    let src = &t[li][u * width..(u + 1) * width];
                    for (v, x) in row.iter_mut().zip(src) {
                        *v += u64::from(*x);
                    }
                    residents[u] += u64::from(src[nf]);
                }
            }
            out.values[li] = values;
            out.residents[li] = residents;
        }
        out
    }

    /// The columns of [`count_names`](Self::count_names) resident `i` counts in, in order.
    fn flags_of(&self, i: usize, out: &mut Vec<u16>) {
        let p = &self.people;
        let age = p.ages[i];
        let bands = AGE_BANDS.len();
        let band = AGE_BANDS
            .iter()
            .position(|(_, lo, hi)| age != NO_AGE && u32::from(age) >= *lo && u32::from(age) < *hi);
        out.push(band.unwrap_or(bands) as u16);
        let cats_at = bands + 1;
        let mut bits = p.cats[i];
        while bits != 0 {
            out.push((cats_at + bits.trailing_zeros() as usize) as u16);
            bits &= bits - 1;
        }
        let mut at = cats_at + self.categories.len();
        if self.disability_detail.0 {
            if let Some(&t) = p.types.get(i).filter(|t| **t != NO_DETAIL) {
                out.push((at + t as usize) as u16);
            }
            at += DISABILITY_TYPES.len();
        }
        if self.disability_detail.1 {
            match p.grades.get(i).copied() {
                Some(g @ 1..=4) => out.push((at + g as usize - 1) as u16),
                Some(0) => out.push((at + 4) as u16),
                _ => {}
            }
            at += 5;
        }
        for (k, (a, b)) in self.pairs.iter().enumerate() {
            if p.cats[i] >> a & 1 == 1 && p.cats[i] >> b & 1 == 1 {
                out.push((at + k) as u16);
            }
        }
    }

    /// The relations between the columns: residents = the age bands; disabled = its types =
    /// its grades; living alone within empty-nest; a co-occurrence within each category.
    /// `at` gives a column's index in `base`.
    fn relations(
        &self,
        base: &mut CountColumns,
        residents: usize,
        at: impl Fn(&str) -> Option<usize>,
    ) {
        let bands: Vec<usize> = AGE_BANDS
            .iter()
            .map(|b| b.0)
            .chain(["age_unknown"])
            .filter_map(&at)
            .collect();
        base.groups.push((residents, bands));
        if let Some(d) = at("disabled") {
            if self.disability_detail.0 {
                let parts = DISABILITY_TYPES
                    .iter()
                    .filter_map(|(_, en)| at(&format!("disabled_{en}")))
                    .collect();
                base.groups.push((d, parts));
            }
            if self.disability_detail.1 {
                let parts = (1..=4)
                    .map(|g| format!("disabled_grade_{g}"))
                    .chain(["disabled_grade_unknown".to_owned()])
                    .filter_map(|n| at(&n))
                    .collect();
                base.groups.push((d, parts));
            }
        }
        if let (Some(a), Some(e)) = (at("elderly_alone"), at("empty_nest")) {
            base.nested.push((a, e));
        }
        for (a, b) in &self.pairs {
            let (a, b) = (&self.categories[*a].id, &self.categories[*b].id);
            if let (Some(ab), Some(ai), Some(bi)) = (at(&format!("{a}_and_{b}")), at(a), at(b)) {
                base.nested.push((ab, ai));
                base.nested.push((ab, bi));
            }
        }
    }
}
