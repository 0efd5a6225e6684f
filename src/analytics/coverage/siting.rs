//! Where the next facilities should go: the maximal covering location problem (Church &
//! ReVelle 1974). Choose `k` candidate sites that together cover the most demand not yet
//! covered.
//!
//! * [`greedy`]: repeatedly the site with the largest marginal gain (lazy evaluation). The
//!   objective is monotone submodular, so greedy covers at least `1 − 1/e ≈ 63.2%` of the
//!   optimum (Nemhauser, Wolsey & Fisher 1978).
//! * [`exact`]: the integer programme, solved with `good_lp` (pure-Rust `microlp` solver),
//!   for small instances.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use good_lp::{Expression, Solution, SolverModel, constraint, microlp, variable, variables};

/// A pick: the candidate and the demand it newly covers.
pub type Pick = (u32, u64);

/// Greedy maximal covering: `sets[c]` lists the demand points candidate `c` covers, `weights`
/// the demand at each point (a point listed twice in a set counts once). Picks at most `k` candidates, each with the largest marginal
/// gain (ties: the lowest index), and stops early when no candidate adds anything: a pick
/// never has zero gain.
///
/// # Examples
/// ```
/// use shequ::analytics::coverage::siting::greedy;
/// let sets = vec![vec![0, 1], vec![1, 2, 3], vec![3]];
/// let picks = greedy(&sets, &[5, 1, 1, 4], 3);
/// // Candidates 0 and 1 both cover 6: the lower index wins; then candidate 1 adds 5 and
/// // candidate 2 nothing, so it is not picked.
/// assert_eq!(picks, vec![(0, 6), (1, 5)]);
/// ```
///
/// # Performance
/// Lazy greedy (a max-heap of stale gains): each candidate's gain is recomputed only when it
/// reaches the top, `O(Σ|sets| · log n)` in practice.
pub fn greedy(sets: &[Vec<u32>], weights: &[u64], k: usize) -> Vec<Pick> {
    // A point listed twice in a set counts once.
    let sets: Vec<Vec<u32>> = sets
        .iter()
        .map(|s| {
            let mut v = s.clone();
            v.sort_unstable();
            v.dedup();
            v
        })
        .collect();
    let mut covered = vec![false; weights.len()];
    let gain = |c: usize, covered: &[bool]| -> u64 {
        sets[c]
            .iter()
            .filter(|p| !covered[**p as usize])
            .map(|p| weights[*p as usize])
            .sum()
    };
    let mut heap: BinaryHeap<(u64, Reverse<u32>)> = (0..sets.len())
        .map(|c| (gain(c, &covered), Reverse(c as u32)))
        .filter(|(g, _)| *g > 0)
        .collect();
    let mut picks = Vec::new();
    while picks.len() < k {
        let Some((stale, Reverse(c))) = heap.pop() else {
            break;
        };
        let g = gain(c as usize, &covered);
        if g == 0 {
            continue;
        }
        // Gains only shrink: if the fresh gain still beats (or ties with a higher index)
        // every stale bound, it is the best.
        let best = match heap.peek() {
            None => true,
            Some(&(next, Reverse(nc))) => g > next || (g == next && c < nc),
        };
        if g == stale || best {
            picks.push((c, g));
            for p in &sets[c as usize] {
                covered[*p as usize] = true;
            }
        } else {
            heap.push((g, Reverse(c)));
        }
    }
    picks
}

/// Demand covered by a set of picks.
pub fn covered_by(sets: &[Vec<u32>], weights: &[u64], picks: &[u32]) -> u64 {
    let mut covered = vec![false; weights.len()];
    let mut total = 0;
    for c in picks {
        for p in &sets[*c as usize] {
            if !std::mem::replace(&mut covered[*p as usize], true) {
                total += weights[*p as usize];
            }
        }
    }
    total
}

/// Exact maximal covering as an integer programme: maximise `Σ w_g y_g` subject to
/// `y_g ≤ Σ_{c covers g} x_c`, `Σ x_c ≤ k`, `x` binary, `0 ≤ y ≤ 1`, where demand points
/// covered by the same candidates are merged into one group `g`. Returns the chosen
/// candidates ordered by their marginal gain (as greedy would order them) with those gains.
///
/// # Examples
/// ```
/// use shequ::analytics::coverage::siting::{exact, greedy};
/// // Greedy takes the big middle set (6) first and then adds only 2; the optimum is 10.
/// let sets = vec![vec![0, 1], vec![1, 2], vec![2, 3]];
/// let w = [2, 3, 3, 2];
/// assert_eq!(greedy(&sets, &w, 2), vec![(1, 6), (0, 2)]);
/// let best = exact(&sets, &w, 2)?;
/// assert_eq!(best.iter().map(|p| p.1).sum::<u64>(), 10);
/// # Ok::<(), String>(())
/// ```
///
/// # Errors
/// The solver's message if it fails.
pub fn exact(sets: &[Vec<u32>], weights: &[u64], k: usize) -> Result<Vec<Pick>, String> {
    // Group demand points by the candidates that cover them.
    let mut cover: Vec<Vec<u32>> = vec![Vec::new(); weights.len()];
    for (c, s) in sets.iter().enumerate() {
        for p in s {
            cover[*p as usize].push(c as u32);
        }
    }
    let mut groups: HashMap<Vec<u32>, u64> = HashMap::new();
    for (p, cs) in cover.into_iter().enumerate() {
        if !cs.is_empty() && weights[p] > 0 {
            *groups.entry(cs).or_insert(0) += weights[p];
        }
    }
    let mut groups: Vec<(Vec<u32>, u64)> = groups.into_iter().collect();
    groups.sort();
    if groups.is_empty() || k == 0 {
        return Ok(Vec::new());
    }
    let mut vars = variables!();
    let x: Vec<_> = (0..sets.len())
        .map(|_| vars.add(variable().binary()))
        .collect();
    let y: Vec<_> = groups
        .iter()
        .map(|_| vars.add(variable().min(0).max(1)))
        .collect();
    let objective: Expression = groups
        .iter()
        .zip(&y)
        .map(|((_, w), y)| *w as f64 * *y)
        .sum();
    let mut model = vars.maximise(objective).using(microlp);
    for ((cs, _), yv) in groups.iter().zip(&y) {
        let any: Expression = cs.iter().map(|c| x[*c as usize]).sum();
        model = model.with(constraint!(*yv <= any));
    }
    let all: Expression = x.iter().copied().sum();
    model = model.with(constraint!(all <= k as f64));
    let solution = model.solve().map_err(|e| e.to_string())?;
    let chosen: Vec<u32> = (0..sets.len() as u32)
        .filter(|c| solution.value(x[*c as usize]) > 0.5)
        .collect();
    // Order the chosen sites by marginal gain among themselves.
    let sub: Vec<Vec<u32>> = chosen.iter().map(|c| sets[*c as usize].clone()).collect();
    Ok(greedy(&sub, weights, chosen.len())
        .into_iter()
        .map(|(i, g)| (chosen[i as usize], g))
        .collect())
}
