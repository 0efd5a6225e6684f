//! Repeated ids among millions of rows, found in parallel without sorting or a full hash set.

use std::borrow::Cow;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use foldhash::HashSet;
use rayon::prelude::*;

/// Rows per rayon task.
const CHUNK: usize = 16 * 1024;

/// The rows whose id repeats an earlier row's, each with the first row that has the id:
/// `(row, first)` pairs in row order. `id(i)` is row `i`'s id; rows without one (`None`)
/// never repeat anything.
///
/// # Algorithm
/// Ids in strictly increasing order (rosters are often exported sorted by id) cannot repeat,
/// which one parallel pass of neighbour comparisons shows. Otherwise every id is hashed into a bitmap of about 32 bits per row (atomic `fetch_or`, in
/// parallel). Two rows with the same id set the same bit, so at least one of them finds it set
/// already: the hashes of such rows are the only candidates. A second parallel pass gathers
/// the rows whose hash is a candidate (every repeat with its namesakes, and by chance about
/// 3 % of the other rows), and only those are compared exactly, grouped by hash.
///
/// # Performance
/// Sorted ids: one parallel pass of comparisons (measured on 2.7 million roster ids: 12 ms,
/// where sorting (hash, row) pairs took 90–150 ms). Otherwise two parallel passes and a bitmap
/// of 4 bytes per row, memory for the candidates only; measured about as fast as the sort,
/// with a tenth of its memory.
pub(crate) fn duplicates<'a, F>(n: usize, id: F) -> Vec<(u32, u32)>
where
    F: Fn(usize) -> Option<Cow<'a, str>> + Sync,
{
    if strictly_increasing(n, &id) {
        return Vec::new();
    }
    let state = foldhash::fast::FixedState::with_seed(0x5e9);
    let words = (n * 32).next_power_of_two().div_ceil(64).max(64);
    let mask = (words * 64 - 1) as u64;
    let bits: Vec<AtomicU64> = (0..words).map(|_| AtomicU64::new(0)).collect();
    let chunks = n.div_ceil(CHUNK);
    let candidates: HashSet<u64> = (0..chunks)
        .into_par_iter()
        .flat_map_iter(|c| {
            let mut seen = Vec::new();
            for i in c * CHUNK..((c + 1) * CHUNK).min(n) {
                if let Some(s) = id(i) {
                    let h = state.hash_one(s.as_ref());
                    let b = h & mask;
                    let bit = 1u64 << (b & 63);
                    if bits[(b >> 6) as usize].fetch_or(bit, Ordering::Relaxed) & bit != 0 {
                        seen.push(h);
                    }
                }
            }
            seen
        })
        .collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    drop(bits);
    let mut keyed: Vec<(u64, u32)> = (0..chunks)
        .into_par_iter()
        .flat_map_iter(|c| {
            let mut found = Vec::new();
            for i in c * CHUNK..((c + 1) * CHUNK).min(n) {
                if let Some(s) = id(i) {
                    let h = state.hash_one(s.as_ref());
                    if candidates.contains(&h) {
                        found.push((h, i as u32));
                    }
                }
            }
            found
        })
        .collect();
    keyed.par_sort_unstable();
    let mut out = Vec::new();
    for group in keyed.chunk_by(|a, b| a.0 == b.0) {
        if group.len() < 2 {
            continue;
        }
        // In row order: each row against the group's first uses so far.
        let ids: Vec<Cow<'a, str>> = group
            .iter()
            .map(|&(_, i)| id(i as usize).expect("hashed rows have ids"))
            .collect();
        let mut firsts: Vec<usize> = Vec::new();
        for (a, &(_, i)) in group.iter().enumerate() {
            match firsts.iter().find(|&&f| ids[f] == ids[a]) {
                Some(&f) => out.push((i, group[f].1)),
                None => firsts.push(a),
            }
        }
    }
    out.sort_unstable();
    out
}

/// True if the ids, leaving out rows without one, are in strictly increasing byte order (as
/// rosters exported sorted by id are): then none repeats. One parallel pass of comparisons of
/// neighbours.
fn strictly_increasing<'a, F>(n: usize, id: &F) -> bool
where
    F: Fn(usize) -> Option<Cow<'a, str>> + Sync,
{
    (0..n.div_ceil(CHUNK)).into_par_iter().all(|c| {
        let (lo, hi) = (c * CHUNK, ((c + 1) * CHUNK).min(n));
        // The last id before this chunk, if any.
        let mut prev = (0..lo).rev().find_map(id);
        for i in lo..hi {
            if let Some(cur) = id(i) {
                if prev.as_deref().is_some_and(|p| p >= cur.as_ref()) {
                    return false;
                }
                prev = Some(cur);
            }
        }
        true
    })
}

#[cfg(test)]
mod tests {
    use super::duplicates;
    use proptest::prelude::*;
    use std::borrow::Cow;
    use std::collections::HashMap;

    fn naive(ids: &[Option<String>]) -> Vec<(u32, u32)> {
        let mut first: HashMap<&str, u32> = HashMap::new();
        let mut out = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            if let Some(s) = id {
                match first.get(s.as_str()) {
                    Some(&f) => out.push((i as u32, f)),
                    None => {
                        first.insert(s, i as u32);
                    }
                }
            }
        }
        out
    }

    fn run(ids: &[Option<String>]) -> Vec<(u32, u32)> {
        duplicates(ids.len(), |i| ids[i].as_deref().map(Cow::Borrowed))
    }

    #[test]
    fn repeats_point_at_the_first_row_with_the_id() {
        let ids: Vec<Option<String>> =
            [Some("a"), Some("b"), None, Some("a"), Some("a"), Some("b")]
                .iter()
                .map(|s| s.map(str::to_owned))
                .collect();
        assert_eq!(run(&ids), vec![(3, 0), (4, 0), (5, 1)]);
        // Many distinct ids (far more than one task's rows): none is a repeat.
        let ids: Vec<Option<String>> = (0..100_000).map(|i| Some(format!("R{i}"))).collect();
        assert!(run(&ids).is_empty());
        // The same, with every id given twice far apart.
        let twice: Vec<Option<String>> = ids.iter().chain(&ids).cloned().collect();
        let d = run(&twice);
        assert_eq!(d.len(), 100_000);
        assert!(d.iter().all(|&(r, f)| r == f + 100_000));
    }

    proptest! {
        /// Against a plain hash map, on ids from a small alphabet (many repeats) and with gaps.
        #[test]
        fn agrees_with_a_hash_map(ids in prop::collection::vec(prop::option::of("[ab]{0,3}"), 0..3000)) {
            prop_assert_eq!(run(&ids), naive(&ids));
        }
    }
}
