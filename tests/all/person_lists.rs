//! Person lists filled where the roster's rows are: a run that keeps its lists, each file
//! then filled from only the roster rows of its own residents (as Spark's executors fill
//! them), writes the same files as a run that writes them itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use shequ::output::person_list::write_part_from;
use shequ::{Job, NoProgress};

/// Every file under `out` by path (the manifest without its times).
fn files(out: &Path) -> BTreeMap<String, Vec<u8>> {
    crate::parts::output_files(out, crate::parts::without_times)
}

/// The street office's job on the sample city: the whole street's lists, partitioned, with
/// plain identifiers.
fn street_job(tmp: &Path) -> Job {
    let city = Path::new(env!("CARGO_MANIFEST_DIR")).join("data-samples/sample-city");
    let mut job = Job::from_toml(city.join("job-grid-worker.toml")).expect("job");
    let key = tmp.join("key");
    std::fs::write(&key, "the street office's secret key 2026").expect("key");
    let p = job.privacy.as_mut().expect("privacy");
    (p.secret_file, p.grid, p.street) = (Some(key), None, Some("500103001".into()));
    p.plain_identifiers = true;
    job.output.partitioned = true;
    job.output.map = false;
    job
}

/// The roster rows `rows` of the job's roster file as a file of their own, each with its row
/// number in `_row` (the file's encoding kept).
fn roster_part(job: &Job, rows: &[u32], path: &Path) -> PathBuf {
    let r = job.layers.residents.as_ref().expect("residents");
    let bytes = std::fs::read(job.resolve(&r.path)).expect("roster");
    let (text, _, bad) = encoding_rs::GB18030.decode(&bytes);
    assert!(!bad);
    let mut lines = text.lines();
    let mut out = format!("{},_row\n", lines.next().expect("header"));
    let all: Vec<&str> = lines.collect();
    // Reversed: the executor's rows come in any order.
    for &row in rows.iter().rev() {
        out.push_str(&format!("{},{row}\n", all[row as usize]));
    }
    std::fs::write(path, encoding_rs::GB18030.encode(&out).0).expect("write");
    path.to_path_buf()
}

#[test]
fn lists_filled_from_their_own_roster_rows_are_the_files_of_one_run() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let job = street_job(tmp.path());
    let one = tmp.path().join("one");
    shequ::run::run(&job, &one, &NoProgress).expect("run");
    let kept = tmp.path().join("kept");
    let (_, summary, lists) =
        shequ::run::run_deferring_lists(&job, &kept, &NoProgress, Default::default()).expect("run");
    assert_eq!(
        lists.len(),
        4,
        "residents, coverage's residents, visits, fix list"
    );
    let policy = shequ::run::policy(&job).expect("policy");
    let key = shequ::output::operational::key(&policy).expect("key");
    let mut parts = 0;
    for list in &lists {
        let list = shequ::output::person_list::PersonList::from_bytes(&list.to_bytes().unwrap())
            .expect("round trip");
        for (k, (file, idx)) in list.parts().expect("parts").iter().enumerate() {
            assert!(!kept.join(file).exists(), "{file}: kept, not written");
            let rows: Vec<u32> = idx
                .iter()
                .filter_map(|&i| list.roster_rows()[i as usize])
                .collect();
            let roster = roster_part(&job, &rows, &tmp.path().join(format!("r{parts}.csv")));
            let written = write_part_from(&job, key, list.clone(), k, &roster, "_row", &kept)
                .expect("part written");
            assert_eq!(&written, file);
            parts += 1;
        }
    }
    assert!(
        parts > 4,
        "the street's lists in several partitions ({parts})"
    );
    let (want, got) = (files(&one), files(&kept));
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &want {
        assert!(&got[name] == bytes, "{name} differs");
    }
    assert!(
        summary
            .written
            .files
            .iter()
            .any(|f| f.starts_with("residents/street_id="))
    );
}

#[test]
fn a_part_whose_roster_rows_are_missing_is_a_located_error() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let job = street_job(tmp.path());
    let (_, _, lists) = shequ::run::run_deferring_lists(
        &job,
        &tmp.path().join("out"),
        &NoProgress,
        Default::default(),
    )
    .expect("run");
    let policy = shequ::run::policy(&job).expect("policy");
    let key = shequ::output::operational::key(&policy).expect("key");
    let list = lists.into_iter().next().expect("a list");
    let (_, idx) = &list.parts().expect("parts")[0];
    let mut rows: Vec<u32> = idx
        .iter()
        .filter_map(|&i| list.roster_rows()[i as usize])
        .collect();
    let missing = rows.pop().expect("a row");
    let roster = roster_part(&job, &rows, &tmp.path().join("short.csv"));
    let err = write_part_from(&job, key, list.clone(), 0, &roster, "_row", tmp.path())
        .expect_err("a row missing");
    let text = err.to_string();
    assert!(
        text.contains("short.csv") && text.contains("not in the roster"),
        "{text}"
    );
    assert!(text.contains(&format!("row {missing}")), "{text}");
    let none = write_part_from(&job, key, list, 10_000, &roster, "_row", tmp.path());
    assert!(matches!(none, Err(shequ::Error::Data { .. })));
    assert!(shequ::output::person_list::PersonList::from_bytes(b"not a list").is_err());
}
