//! Hot spots: queen contiguity between polygons, z-scores among siblings, and the local
//! Getis-Ord Gi* statistic.

use std::collections::HashMap;

use geo::MultiPolygon;
use rayon::prelude::*;

/// Queen contiguity: two polygons are neighbours when they share at least one vertex (after
/// snapping vertices to `snap` units of the CRS, e.g. 0.01 m), as PySAL's `Queen` weights do.
///
/// # Runtime
/// One parallel sort of the snapped vertices: O(V log V) for V vertices.
///
/// # Examples
/// ```
/// use geo::{polygon, MultiPolygon};
/// use shequ::analytics::hotspots::queen_neighbours;
/// let sq = |x: f64, y: f64| MultiPolygon::new(vec![polygon![
///     (x: x, y: y), (x: x + 1.0, y: y), (x: x + 1.0, y: y + 1.0), (x: x, y: y + 1.0), (x: x, y: y)]]);
/// // A 2 × 2 block plus a far square: the diagonal pair touches at a corner (queen).
/// let n = queen_neighbours(&[sq(0.0, 0.0), sq(1.0, 0.0), sq(0.0, 1.0), sq(1.0, 1.0), sq(9.0, 9.0)], 0.01);
/// assert_eq!(n[0], vec![1, 2, 3]);
/// assert!(n[4].is_empty());
/// ```
pub fn queen_neighbours(polygons: &[MultiPolygon<f64>], snap: f64) -> Vec<Vec<usize>> {
    // Every snapped vertex with its polygon, sorted: polygons sharing a vertex are adjacent.
    let mut at: Vec<((i64, i64), u32)> = polygons
        .par_iter()
        .enumerate()
        .flat_map_iter(|(i, mp)| {
            mp.0.iter()
                .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
                .flat_map(|ring| ring.coords())
                .map(move |c| {
                    let key = ((c.x / snap).round() as i64, (c.y / snap).round() as i64);
                    (key, i as u32)
                })
        })
        .collect();
    at.par_sort_unstable();
    at.dedup();
    let mut out = vec![Vec::new(); polygons.len()];
    for group in at.chunk_by(|a, b| a.0 == b.0) {
        for &(_, a) in group {
            for &(_, b) in group {
                if a != b {
                    out[a as usize].push(b as usize);
                }
            }
        }
    }
    out.par_iter_mut().for_each(|v| {
        v.sort_unstable();
        v.dedup();
    });
    out
}

/// The local Getis-Ord Gi* statistic (Getis & Ord 1992; Ord & Getis 1995) with binary weights
/// that include the unit itself, as PySAL `esda.G_Local(star=True, transform="B")` computes
/// its z-value:
///
/// Gi* = (Σⱼ wᵢⱼ xⱼ − x̄ Wᵢ) / (s √((n Wᵢ − Wᵢ²) / (n − 1))), with Wᵢ = Σⱼ wᵢⱼ, x̄ and s the
/// mean and (population) standard deviation of x over the n units with a value.
///
/// Units without a value (`None`) are left out, as are their links; their Gi* is `None`, as it
/// is when s = 0 or a unit is linked to every unit.
///
/// # Examples
/// Five units in a row, values 1, 2, 3, 4, 10: the high end is the hot spot.
/// ```
/// use shequ::analytics::hotspots::gi_star;
/// let nb = vec![vec![1], vec![0, 2], vec![1, 3], vec![2, 4], vec![3]];
/// let x = [1.0, 2.0, 3.0, 4.0, 10.0].map(Some);
/// let g = gi_star(&x, &nb);
/// assert!((g[4].unwrap() - 1.5491933384829668).abs() < 1e-12);
/// ```
pub fn gi_star(x: &[Option<f64>], neighbours: &[Vec<usize>]) -> Vec<Option<f64>> {
    let vals: Vec<f64> = x.iter().flatten().copied().collect();
    let n = vals.len() as f64;
    if vals.len() < 3 {
        return vec![None; x.len()];
    }
    let mean = vals.iter().sum::<f64>() / n;
    let var = vals.iter().map(|v| v * v).sum::<f64>() / n - mean * mean;
    if var <= 0.0 {
        return vec![None; x.len()];
    }
    let s = var.sqrt();
    (0..x.len())
        .map(|i| {
            let xi = x[i]?;
            let mut w = 1.0;
            let mut sum = xi;
            for &j in &neighbours[i] {
                if let Some(xj) = x[j] {
                    w += 1.0;
                    sum += xj;
                }
            }
            let denom = (n * w - w * w) / (n - 1.0);
            (denom > 0.0).then(|| (sum - mean * w) / (s * denom.sqrt()))
        })
        .collect()
}

/// The z-score of each unit's value among the units of its group (siblings under one parent):
/// (x − mean) / sd with the population sd of the group's values. `None` without a value, a
/// group, at least 3 values in the group, or spread.
///
/// # Examples
/// ```
/// use shequ::analytics::hotspots::sibling_z;
/// let z = sibling_z(&[Some(1.0), Some(2.0), Some(3.0), Some(5.0)], &[Some(0), Some(0), Some(0), None]);
/// assert!((z[2].unwrap() - 1.224744871391589).abs() < 1e-12);
/// assert_eq!(z[3], None);
/// ```
pub fn sibling_z(x: &[Option<f64>], group: &[Option<usize>]) -> Vec<Option<f64>> {
    let mut acc: HashMap<usize, (f64, f64, f64)> = HashMap::new();
    for (v, g) in x.iter().zip(group) {
        if let (Some(v), Some(g)) = (v, g) {
            let e = acc.entry(*g).or_default();
            e.0 += 1.0;
            e.1 += v;
            e.2 += v * v;
        }
    }
    x.iter()
        .zip(group)
        .map(|(v, g)| {
            let (n, s, ss) = acc.get(&(*g)?)?;
            let v = (*v)?;
            if *n < 3.0 {
                return None;
            }
            let mean = s / n;
            let var = ss / n - mean * mean;
            (var > 1e-15).then(|| (v - mean) / var.sqrt())
        })
        .collect()
}
