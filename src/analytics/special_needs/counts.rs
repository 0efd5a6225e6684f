//! The special-needs count columns per unit: every resident's flags counted at every level,
//! with the relations between the columns (groups that add up, nested pairs).

use std::borrow::Cow;

use polars::prelude::*;
use rayon::prelude::*;

use super::{AGE_BANDS, DISABILITY_TYPES, SpecialNeeds};
use crate::analytics::counts::{CountColumns, LEVELS};
use crate::error::{Error, Location, Result};
use crate::model::Model;
use crate::model::level::Layer;

/// Per level of [`LEVELS`]: one row of values per unit.
type Values = [Vec<Vec<u64>>; 4];

fn polars_err(e: PolarsError) -> Error {
    Error::Polars {
        at: Location::layer(Layer::Resident.name()),
        source: Box::new(e),
    }
}

impl SpecialNeeds {
    /// The count columns for the release, appended to
    /// `base` (which must hold `residents`), with their relations: residents = the age bands;
    /// disabled = its types = its grades; nested pairs (living alone within empty-nest,
    /// co-occurrence within each of its categories).
    ///
    /// # Errors
    /// [`Error::Polars`].
    ///
    /// # Panics
    /// If `base` lacks the `residents` column that [`CountColumns::from_tally`](crate::analytics::counts::CountColumns::from_tally) makes.
    pub fn columns(&self, model: &Model, mut base: CountColumns) -> Result<CountColumns> {
        let names = self.count_names();
        let residents = base.index("residents").expect("base columns");
        let index_columns = self.index_columns()?;
        let units: Vec<Cow<'_, [u32]>> = index_columns.iter().map(unit_slice).collect();
        let levels: Vec<usize> = (0..LEVELS.len())
            .filter(|li| model.has(LEVELS[*li]))
            .collect();
        let nf = names.len();
        let mut values: Values = Default::default();
        for (li, level) in LEVELS.iter().enumerate() {
            values[li] = vec![vec![0u64; nf]; model.units(*level)];
        }
        match &self.masks {
            Some(masks) => count_masks(model, masks, &units, &levels, nf, &mut values),
            None => self.count_flags(model, &names, &units, &levels, &mut values)?,
        }
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

    /// Each resident's unit at every level, from the `<level>_index` columns.
    fn index_columns(&self) -> Result<Vec<UInt32Chunked>> {
        LEVELS
            .iter()
            .map(|level| {
                self.residents
                    .column(&format!("{}_index", level.singular()))
                    .and_then(|c| c.u32().map(|c| c.rechunk().into_owned()))
                    .map_err(polars_err)
            })
            .collect()
    }

    /// More than 64 columns: the flags from polars, counted per (level, flag) in parallel.
    fn count_flags(
        &self,
        model: &Model,
        names: &[String],
        units: &[Cow<'_, [u32]>],
        levels: &[usize],
        values: &mut Values,
    ) -> Result<()> {
        let flags = self
            .residents
            .clone()
            .lazy()
            .select(self.flag_exprs())
            .collect()
            .map_err(polars_err)?;
        let flags: Vec<BooleanChunked> = names
            .iter()
            .map(|n| {
                flags
                    .column(n)
                    .and_then(|c| c.bool().map(|b| b.rechunk().into_owned()))
                    .map_err(polars_err)
            })
            .collect::<Result<_>>()?;
        let tasks: Vec<(usize, usize)> = levels
            .iter()
            .flat_map(|&li| (0..flags.len()).map(move |f| (li, f)))
            .collect();
        let counted: Vec<Vec<u64>> = tasks
            .par_iter()
            .map(|&(li, f)| {
                let unit = &units[li];
                let mut counts = vec![0u64; model.units(LEVELS[li])];
                for arr in flags[f].downcast_iter() {
                    let set = match arr.validity() {
                        Some(v) => arr.values() & v,
                        None => arr.values().clone(),
                    };
                    for i in set.true_idx_iter() {
                        if let Some(c) = counts.get_mut(unit[i] as usize) {
                            *c += 1;
                        }
                    }
                }
                counts
            })
            .collect();
        for (&(li, f), counts) in tasks.iter().zip(&counted) {
            for (u, x) in counts.iter().enumerate() {
                values[li][u][f] = *x;
            }
        }
        Ok(())
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

/// A unit index column as a slice (`u32::MAX` outside the level), borrowed where it has no
/// nulls.
fn unit_slice(c: &UInt32Chunked) -> Cow<'_, [u32]> {
    match c.cont_slice() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(
            c.downcast_iter()
                .flat_map(|a| a.iter().map(|v| v.copied().unwrap_or(u32::MAX)))
                .collect(),
        ),
    }
}

/// One parallel pass over the residents' bit masks, counting every set bit at every level
/// into a counter table per task; the tables are then added up.
fn count_masks(
    model: &Model,
    masks: &[u64],
    units: &[Cow<'_, [u32]>],
    levels: &[usize],
    nf: usize,
    values: &mut Values,
) {
    let tasks = 2 * rayon::current_num_threads();
    let per = masks.len().div_ceil(tasks).max(1);
    let tables: Vec<Vec<Vec<u32>>> = masks
        .par_chunks(per)
        .enumerate()
        .map(|(k, chunk)| {
            let mut t: Vec<Vec<u32>> = LEVELS
                .iter()
                .map(|l| {
                    let units = if model.has(*l) { model.units(*l) } else { 0 };
                    vec![0u32; units * nf]
                })
                .collect();
            for (j, &m) in chunk.iter().enumerate() {
                let i = k * per + j;
                for &li in levels {
                    let u = units[li][i];
                    if u == u32::MAX {
                        continue;
                    }
                    let row = &mut t[li][u as usize * nf..(u as usize + 1) * nf];
                    let mut bits = m;
                    while bits != 0 {
                        row[bits.trailing_zeros() as usize] += 1;
                        bits &= bits - 1;
                    }
                }
            }
            t
        })
        .collect();
    for t in &tables {
        for &li in levels {
            for (u, row) in values[li].iter_mut().enumerate() {
                for (f, v) in row.iter_mut().enumerate() {
                    *v += u64::from(t[li][u * nf + f]);
                }
            }
        }
    }
}
