//! What a release derives from its columns before publishing: the nested rule's marks
//! (research) and the noisy counts (research-dp).

use crate::error::Result;
use crate::model::level::Layer;
use crate::privacy::dp::{Noisy, Spec, noisy_release};
use crate::privacy::{Policy, Sensitivity};

use super::{CountColumns, RowKind};

/// The noisy counts of a `research-dp` release (see [`crate::privacy::dp`]).
pub(super) fn noise(
    parents: &[Option<usize>],
    rows: &[RowKind],
    values: &[Vec<u64>],
    cols: &CountColumns,
    policy: &Policy,
) -> Result<Noisy> {
    let plan = policy.dp.as_ref().ok_or_else(|| crate::Error::Privacy {
        message: "a research-dp release needs a [privacy.dp] plan".into(),
    })?;
    let mut block: Vec<usize> = (0..cols.names.len()).collect();
    for (_, parts) in &cols.groups {
        for p in parts {
            block[*p] = parts[0];
        }
    }
    let specs = (0..cols.names.len())
        .map(|c| {
            let bound = cols.bound[c].ok_or_else(|| crate::Error::Privacy {
                message: format!(
                    "column {:?} has no bound on what one resident changes (a household rule \
                     without max_household): a differentially private release needs one",
                    cols.names[c]
                ),
            })?;
            Ok(Spec {
                table: cols.table[c],
                bound,
                block: block[c],
            })
        })
        .collect::<Result<Vec<Spec>>>()?;
    let levels: Vec<Layer> = rows
        .iter()
        .map(|k| {
            let (RowKind::Unit(l, _) | RowKind::Remainder(l)) = *k;
            l
        })
        .collect();
    noisy_release(parents, &levels, values, &specs, plan)
}

/// The cells of nested columns to hide because a sensitive count they lie in, less them,
/// would be unsafe: (row, column) pairs. Supersets are decided before their subsets, and a
/// superset that is hidden itself does not count (its difference cannot be taken); every
/// published superset does, through any chain of hidden ones.
pub(super) fn nested_marks(
    values: &[Vec<u64>],
    cols: &CountColumns,
    unsafe_cell: &dyn Fn(usize, u64) -> bool,
    policy: &Policy,
) -> Vec<(usize, usize)> {
    let n = cols.names.len();
    // Every superset of each column, through chains.
    let mut sups: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(sub, sup) in &cols.nested {
        sups[sub].push(sup);
    }
    for _ in 0..n {
        let mut grew = false;
        for c in 0..n {
            let more: Vec<usize> = sups[c].iter().flat_map(|s| sups[*s].clone()).collect();
            for s in more {
                if !sups[c].contains(&s) {
                    sups[c].push(s);
                    grew = true;
                }
            }
        }
        if !grew {
            break;
        }
    }
    // Supersets first: a column's depth is its number of supersets.
    let mut order: Vec<usize> = (0..n).filter(|c| !sups[*c].is_empty()).collect();
    order.sort_by_key(|c| (sups[*c].len(), *c));
    let difference = policy.threshold(Sensitivity::Sensitive);
    let mut marks = Vec::new();
    let mut hidden = vec![false; n];
    for (r, v) in values.iter().enumerate() {
        for c in 0..n {
            hidden[c] = unsafe_cell(c, v[c]);
        }
        for &c in &order {
            if hidden[c] {
                continue;
            }
            let exposed = sups[c].iter().any(|&s| {
                cols.classes[s] == Sensitivity::Sensitive
                    && !hidden[s]
                    && difference.is_unsafe(v[s].saturating_sub(v[c]))
            });
            if exposed {
                hidden[c] = true;
                marks.push((r, c));
            }
        }
    }
    marks
}
