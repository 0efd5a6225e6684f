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

/// Shards of a [`SeenIds`].
const SHARDS: usize = 64;

/// Every id seen so far across chunks, as a 128-bit hash with the first row that has it; in
/// shards by the hash's top bits, so that a chunk's ids are looked up shard by shard in
/// parallel, each shard small enough to stay in cache. Two ids are taken as equal when their
/// 128-bit hashes are: with 50 million ids, the chance of two different ids colliding is below
/// 10^-23.
pub(crate) struct SeenIds {
    seen: Vec<foldhash::HashMap<(u64, u64), u32>>,
    hashers: (foldhash::fast::FixedState, foldhash::fast::FixedState),
}

impl SeenIds {
    /// An empty set sized for about `rows_estimate` ids.
    pub(crate) fn new(rows_estimate: usize) -> SeenIds {
        let seen = (0..SHARDS)
            .map(|_| {
                let mut m = foldhash::HashMap::default();
                m.reserve(rows_estimate / SHARDS);
                m
            })
            .collect();
        SeenIds {
            seen,
            hashers: (
                foldhash::fast::FixedState::with_seed(0x5e9),
                foldhash::fast::FixedState::with_seed(0x9e37_79b9),
            ),
        }
    }

    /// The 128-bit key of an id (already cleaned).
    pub(crate) fn key(&self, id: &str) -> (u64, u64) {
        (self.hashers.0.hash_one(id), self.hashers.1.hash_one(id))
    }

    /// For each row of a chunk with a key: the first row with the same key, when an earlier
    /// row (of this chunk or an earlier one) has it; else the key is remembered at
    /// `source_row(i)`. Each shard sees its rows in row order, so "first" is the same for any
    /// split into chunks.
    pub(crate) fn first_rows(
        &mut self,
        keys: &[Option<(u64, u64)>],
        source_row: impl Fn(usize) -> u32 + Sync,
    ) -> Vec<Option<u32>> {
        let mut by_shard: Vec<Vec<u32>> = vec![Vec::new(); SHARDS];
        for (i, k) in keys.iter().enumerate() {
            if let Some(k) = k {
                by_shard[(k.0 >> 58) as usize].push(i as u32);
            }
        }
        let dups: Vec<Vec<(u32, u32)>> = self
            .seen
            .par_iter_mut()
            .zip(by_shard)
            .map(|(map, rows)| {
                let mut dups = Vec::new();
                for i in rows {
                    let Some(key) = keys[i as usize] else {
                        continue;
                    };
                    match map.entry(key) {
                        std::collections::hash_map::Entry::Occupied(e) => {
                            dups.push((i, *e.get()));
                        }
                        std::collections::hash_map::Entry::Vacant(v) => {
                            v.insert(source_row(i as usize));
                        }
                    }
                }
                dups
            })
            .collect();
        let mut first = vec![None; keys.len()];
        for (i, f) in dups.into_iter().flatten() {
            first[i as usize] = Some(f);
        }
        first
    }
}

/// Each data row's key of its cleaned id in column `column` of the chunks, in row order
/// (`None` without an id; unreadable rows keep their place, without a key): what an engine
/// groups to find the first row of each id across parts of a layer.
pub(crate) fn id_keys(
    chunks: &mut crate::io::chunks::TableChunks,
    column: &str,
) -> crate::error::Result<Vec<Option<(u64, u64)>>> {
    let seen = SeenIds::new(0);
    let mut keys = Vec::new();
    while let Some(t) = chunks.next_chunk()? {
        keys.resize(keys.len() + t.rows_read, None);
        let ids = t.text_column(column);
        for i in 0..ids.len() {
            keys[t.source_row(i)] = ids
                .get(i)
                .and_then(crate::io::table::clean_code_ref)
                .map(|id| seen.key(&id));
        }
    }
    Ok(keys)
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
