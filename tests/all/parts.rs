//! Rows of one input split into parts, as Spark's partitions split them: the splits the tests
//! use, and the part files written with each row's number and first row.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;

use rand::seq::SliceRandom;

/// Splits of `n` rows: one part; seven random parts; one part holding all but `small` rows.
pub(crate) fn splits(n: usize, small: usize) -> [(&'static str, Vec<Vec<usize>>); 3] {
    let mut shuffled: Vec<usize> = (0..n).collect();
    shuffled.shuffle(&mut rand::rng());
    [
        ("one part", vec![(0..n).collect()]),
        (
            "seven random parts",
            (0..7)
                .map(|k| shuffled.iter().copied().skip(k).step_by(7).collect())
                .collect(),
        ),
        (
            "one skewed part",
            vec![
                shuffled[..n - small].to_vec(),
                shuffled[n - small..].to_vec(),
            ],
        ),
    ]
}

/// Writes each of `parts` (row indices of the CSV text `text`) as `<stem><k>.csv` in `dir`:
/// the rows with columns `_row` (their number in `text`) and `_first` (the first row with
/// the same id, from `first`). Returns the files.
pub(crate) fn part_files(
    text: &str,
    first: &[Option<u32>],
    parts: &[Vec<usize>],
    dir: &Path,
    stem: &str,
) -> Vec<PathBuf> {
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    assert_eq!(first.len(), rows.len());
    parts
        .iter()
        .enumerate()
        .map(|(k, part)| {
            let path = dir.join(format!("{stem}{k}.csv"));
            let mut out = format!("{header},_row,_first\n");
            for &r in part {
                let f = first[r].map(|f| f.to_string()).unwrap_or_default();
                out.push_str(&format!("{},{r},{f}\n", rows[r]));
            }
            std::fs::write(&path, out).unwrap();
            path
        })
        .collect()
}

/// Asserts that a run from parts (`got`) has the quality report and every table of one
/// reading (`want`).
pub(crate) fn assert_one_reading(
    got: &(shequ::Build, BTreeMap<String, RecordBatch>),
    want: &(shequ::Build, BTreeMap<String, RecordBatch>),
    what: &str,
) {
    assert_eq!(got.0.report.counts(), want.0.report.counts(), "{what}");
    assert_eq!(got.0.report.issues(), want.0.report.issues(), "{what}");
    assert_eq!(
        got.1.keys().collect::<Vec<_>>(),
        want.1.keys().collect::<Vec<_>>(),
        "{what}"
    );
    for (name, t) in &want.1 {
        assert_eq!(&got.1[name], t, "{what}: {name}");
    }
}

/// Every file under `out` by path; `manifest.json` passed through `manifest` first (to drop
/// what differs between any two runs: times, say).
pub(crate) fn output_files(
    out: &Path,
    manifest: impl Fn(&mut serde_json::Value),
) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut stack = vec![out.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let name = p.strip_prefix(out).expect("inside").display().to_string();
            let mut bytes = std::fs::read(&p).expect("read");
            if name == "manifest.json" {
                let mut m: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
                manifest(&mut m);
                bytes = serde_json::to_vec(&m).expect("json");
            }
            found.insert(name, bytes);
        }
    }
    found
}

/// Removes the manifest's times and steps, which differ between any two runs.
pub(crate) fn without_times(m: &mut serde_json::Value) {
    let o = m.as_object_mut().expect("object");
    for k in ["started_at", "wall_seconds", "steps"] {
        o.remove(k);
    }
}
