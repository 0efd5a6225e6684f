//! Optimal complementary suppression of a column outside every group: an integer programme
//! (solved with `good_lp`'s pure-Rust `microlp`) that hides the fewest cells.
//!
//! The only published relations of such a column are the hierarchy's: every unit's count is
//! the sum of its children's. Think of a graph whose vertices are those relations and one
//! ground vertex `G`, and whose edges are the cells: a unit's cell joins its parent's relation
//! to its own (a root's upper end and a leaf's lower end are `G`). A change of the hidden
//! values that keeps every sum is a circulation on the hidden edges, so a hidden cell can be
//! recovered exactly if and only if it lies on no cycle of hidden cells. The relations form a
//! tree, so every cycle runs through `G`: a hidden cell is protected when, with the cell
//! removed, both of its ends still reach `G` through hidden cells.
//!
//! [`protected`] checks that condition exactly; [`solve`] finds the cheapest set of cells to
//! hide that gives it to every primary cell. Tables with groups of columns are not trees;
//! [`solve_small`] solves those exactly when they are small. Cells the programme adds lie on the cycle that
//! protects some primary cell, so they are protected too. The programme has one binary and
//! four continuous variables per cell (reachability below, above, and through each child), so
//! its size grows linearly with the table.

use good_lp::{Expression, Solution, SolverModel, constraint, microlp, variable, variables};

/// The most rows [`solve`] takes; larger columns keep the heuristic's cells.
pub const MAX_ROWS: usize = 20_000;

/// Whether every hidden cell of a one-column hierarchy is protected (lies on a cycle of hidden
/// cells), for rows whose parents come before them.
///
/// # Examples
/// Two hidden grids of one community protect each other; one alone does not.
/// ```
/// use shequ::privacy::optimal::protected;
/// let parents = [None, Some(0), Some(0), Some(0)];
/// assert!(protected(&parents, &[false, true, true, false]));
/// assert!(!protected(&parents, &[false, true, false, false]));
/// // Or a hidden grid with its hidden community (the root's upper end is free).
/// assert!(protected(&parents, &[true, true, false, false]));
/// ```
pub fn protected(parents: &[Option<usize>], hidden: &[bool]) -> bool {
    let reach = Reach::of(parents, hidden);
    (0..parents.len()).all(|r| !hidden[r] || reach.protects(parents, hidden, r))
}

/// Reachability of the ground vertex through hidden cells.
struct Reach {
    /// Row `r`'s lower end reaches `G` through hidden cells below it (a leaf's lower end is
    /// `G`).
    below: Vec<bool>,
    /// Row `r`'s upper end reaches `G` through hidden cells without using `r` (a root's upper
    /// end is `G`).
    above: Vec<bool>,
}

impl Reach {
    fn of(parents: &[Option<usize>], hidden: &[bool]) -> Reach {
        let n = parents.len();
        let mut leaf = vec![true; n];
        for p in parents.iter().flatten() {
            leaf[*p] = false;
        }
        let mut below = leaf;
        // Children come after their parents: fill bottom-up.
        for r in (0..n).rev() {
            if let Some(p) = parents[r]
                && hidden[r]
                && below[r]
            {
                below[p] = true;
            }
        }
        // Per relation: how many hidden children reach G below.
        let mut open = vec![0usize; n];
        for r in 0..n {
            if let Some(p) = parents[r]
                && hidden[r]
                && below[r]
            {
                open[p] += 1;
            }
        }
        let mut above = vec![true; n];
        for r in 0..n {
            if let Some(p) = parents[r] {
                let own = usize::from(hidden[r] && below[r]);
                let up = hidden[p] && above[p];
                above[r] = up || open[p] > own;
            }
        }
        Reach { below, above }
    }

    /// A lone unit (no parent, no children) is in no relation: both its ends are `G`.
    fn protects(&self, parents: &[Option<usize>], hidden: &[bool], r: usize) -> bool {
        hidden[r] && self.below[r] && (parents[r].is_none() || self.above[r])
    }
}

/// The cheapest cells to hide in a one-column hierarchy so that every `primary` cell is
/// protected: fewest cells first, then smallest counts. `None` if the column has more than
/// [`MAX_ROWS`] rows or the solver fails.
///
/// # Examples
/// A community of 30 with grids of 2, 10 and 18: the 2 is hidden with the 10, not the 18, and
/// the community stays published.
/// ```
/// use shequ::privacy::optimal::solve;
/// let parents = [None, Some(0), Some(0), Some(0)];
/// let hidden = solve(&parents, &[30, 2, 10, 18], &[false, true, false, false]).unwrap();
/// assert_eq!(hidden, vec![false, true, true, false]);
/// ```
pub fn solve(parents: &[Option<usize>], values: &[u64], primary: &[bool]) -> Option<Vec<bool>> {
    let n = parents.len();
    if n > MAX_ROWS || values.len() != n || primary.len() != n {
        return None;
    }
    if !primary.iter().any(|p| *p) {
        return Some(vec![false; n]);
    }
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (r, p) in parents.iter().enumerate() {
        if let Some(p) = p {
            children[*p].push(r);
        }
    }
    let total: f64 = values.iter().map(|v| *v as f64).sum::<f64>() + 1.0;
    let mut vars = variables!();
    let x: Vec<_> = (0..n).map(|_| vars.add(variable().binary())).collect();
    let unit = || variable().min(0).max(1);
    let below: Vec<_> = (0..n).map(|_| vars.add(unit())).collect();
    let through: Vec<_> = (0..n).map(|_| vars.add(unit())).collect();
    let up: Vec<_> = (0..n).map(|_| vars.add(unit())).collect();
    let above: Vec<_> = (0..n).map(|_| vars.add(unit())).collect();
    // Count first; the value only breaks ties (it sums to less than one cell).
    let objective: Expression = (0..n)
        .filter(|r| !primary[*r])
        .map(|r| (1.0 + values[r] as f64 / total) * x[r])
        .sum();
    let mut model = vars.minimise(objective).using(microlp);
    for r in 0..n {
        if primary[r] {
            model = model.with(constraint!(x[r] >= 1));
        }
        // through[r]: r is hidden and its lower end reaches G.
        model = model.with(constraint!(through[r] <= x[r]));
        if children[r].is_empty() {
            model = model.with(constraint!(below[r] <= 1));
        } else {
            model = model.with(constraint!(through[r] <= below[r]));
            let any: Expression = children[r].iter().map(|c| through[*c]).sum();
            model = model.with(constraint!(below[r] <= any));
        }
        // up[r]: r is hidden and its upper end reaches G without r's subtree.
        model = model.with(constraint!(up[r] <= x[r]));
        if let Some(p) = parents[r] {
            model = model.with(constraint!(up[r] <= above[r]));
            let siblings: Expression = children[p]
                .iter()
                .filter(|s| **s != r)
                .map(|s| through[*s])
                .sum();
            model = model.with(constraint!(above[r] <= up[p] + siblings));
        }
        if primary[r] {
            model = model.with(constraint!(below[r] >= 1));
            if parents[r].is_some() {
                model = model.with(constraint!(above[r] >= 1));
            }
        }
    }
    let solution = model.solve().ok()?;
    let hidden: Vec<bool> = (0..n)
        .map(|r| primary[r] || solution.value(x[r]) > 0.5)
        .collect();
    protected(parents, &hidden).then_some(hidden)
}

/// The most cells [`solve_small`] takes: its model has one copy of the table per cell.
pub const MAX_SMALL_CELLS: usize = 30;

/// The exact complementary problem of a small table with any linear relations (Fischetti and
/// Salazar's model, as τ-ARGUS' optimal method): the fewest cells to hide, then the smallest
/// counts, such that every hidden cell can be moved by a change of the hidden values that
/// keeps every relation. One binary per cell, and per cell a perturbation of the whole table
/// (zero outside the hidden cells, 1 at the cell when it is hidden) that satisfies every
/// relation. `relations` are lists of (cell, coefficient) summing to zero; `fixed` cells must
/// be hidden. `None` above [`MAX_SMALL_CELLS`] cells or if the solver fails.
///
/// # Examples
/// A total of 10 split 3 + 7, the 3 hidden: the 7 must go too (and the total stays).
/// ```
/// use shequ::privacy::optimal::solve_small;
/// let rel = vec![vec![(0, 1), (1, -1), (2, -1)]];
/// let hidden = solve_small(3, &rel, &[10, 3, 7], &[false, true, false]).unwrap();
/// assert_eq!(hidden, vec![false, true, true]);
/// ```
pub fn solve_small(
    cells: usize,
    relations: &[Vec<(usize, i64)>],
    values: &[u64],
    fixed: &[bool],
) -> Option<Vec<bool>> {
    if cells > MAX_SMALL_CELLS || values.len() != cells || fixed.len() != cells {
        return None;
    }
    // Perturbations of these 0/±1 systems need entries no larger than the number of cells.
    let big = cells as f64;
    let total: f64 = values.iter().map(|v| *v as f64).sum::<f64>() + 1.0;
    let mut vars = variables!();
    let x: Vec<_> = (0..cells).map(|_| vars.add(variable().binary())).collect();
    let y: Vec<Vec<_>> = (0..cells)
        .map(|_| {
            (0..cells)
                .map(|_| vars.add(variable().min(-big).max(big)))
                .collect()
        })
        .collect();
    let objective: Expression = (0..cells)
        .filter(|c| !fixed[*c])
        .map(|c| (1.0 + values[c] as f64 / total) * x[c])
        .sum();
    let mut model = vars.minimise(objective).using(microlp);
    for c in 0..cells {
        if fixed[c] {
            model = model.with(constraint!(x[c] >= 1));
        }
    }
    for j in 0..cells {
        model = model.with(constraint!(y[j][j] == x[j]));
        for i in 0..cells {
            model = model.with(constraint!(y[j][i] <= big * x[i]));
            model = model.with(constraint!(y[j][i] >= -big * x[i]));
        }
        for rel in relations {
            let sum: Expression = rel.iter().map(|(c, k)| *k as f64 * y[j][*c]).sum();
            model = model.with(constraint!(sum == 0));
        }
    }
    let solution = model.solve().ok()?;
    Some(
        (0..cells)
            .map(|c| fixed[c] || solution.value(x[c]) > 0.5)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_of_only_children_hides_up_to_a_branch() {
        // street 0 → community 1 (only child) → grids 2, 3.
        let parents = [None, Some(0), Some(1), Some(1)];
        let hidden = solve(&parents, &[20, 20, 3, 17], &[false, false, true, false]).unwrap();
        assert_eq!(hidden, vec![false, false, true, true]);
        // A hidden community must be protected through its street: it is an only child, so
        // the street (whose upper end is free) hides with it, and a grid below.
        let hidden = solve(&parents, &[20, 20, 3, 17], &[false, true, false, false]).unwrap();
        assert!(hidden[0] && hidden[1] && (hidden[2] || hidden[3]));
        assert!(protected(&parents, &hidden));
    }

    #[test]
    fn the_check_rejects_a_bridge() {
        // Two hidden grids under different communities, nothing else: neither is protected.
        let parents = [None, Some(0), Some(0), Some(1), Some(1), Some(2), Some(2)];
        let mut h = vec![false; 7];
        h[3] = true;
        h[5] = true;
        assert!(!protected(&parents, &h));
        // With both communities hidden the four form a cycle through the street's sum.
        h[1] = true;
        h[2] = true;
        assert!(protected(&parents, &h));
    }
}
