//! The grid work loop on the sample city: every planted defect reported, every row accounted
//! for, results that do not depend on the chunking, cards and visit lists for a grid worker.

use std::collections::BTreeMap;
use std::path::Path;

use arrow_array::{Array, Float64Array, RecordBatch, StringArray, UInt64Array};
use shequ::output::Out;
use shequ::{IssueKind, Job, Layer, Severity};

fn sample(dir: &Path) -> Job {
    shequ::sample::write_sample(dir, &shequ::sample::SampleConfig::default()).unwrap();
    Job::from_toml(dir.join("job.toml")).unwrap()
}

fn tables(job: &Job) -> (shequ::Build, BTreeMap<String, RecordBatch>) {
    tables_with(job, shequ::run::Partials::default())
}

/// Every table of a run (in memory), with the rows given as `partials` where it has them.
pub(crate) fn tables_with(
    job: &Job,
    partials: shequ::run::Partials,
) -> (shequ::Build, BTreeMap<String, RecordBatch>) {
    let out = Out::memory();
    let policy = shequ::run::policy(job).unwrap();
    let p = shequ::run::people_stage_with(job, &policy, &shequ::NoProgress, partials).unwrap();
    let mut build = p.build;
    let mut a =
        shequ::run::analyse_labelled_given(job, &mut build, policy, p.special, p.reach).unwrap();
    a.registers = p.links;
    a.events = p.events;
    shequ::run::write_tables(&build, &a, &out).unwrap();
    (build, out.tables().into_iter().collect())
}

fn issue(build: &shequ::Build, layer: Layer, id: &str) -> Vec<(IssueKind, Severity)> {
    build
        .report
        .for_layer(layer)
        .filter(|i| i.id.as_deref() == Some(id))
        .map(|i| (i.kind, i.severity))
        .collect()
}

#[test]
fn every_planted_case_defect_is_reported_and_every_row_accounted_for() {
    let dir = tempfile::tempdir().unwrap();
    let job = sample(dir.path());
    let (build, _) = tables(&job);
    let rejected = |id: &str, kind: IssueKind| {
        assert!(
            issue(&build, Layer::Event, id).contains(&(kind, Severity::Rejected)),
            "{id}: {:?}",
            issue(&build, Layer::Event, id)
        );
    };
    rejected("SJP000001", IssueKind::Unlocated);
    rejected("SJP000002", IssueKind::OutsideParent);
    rejected("SJP000003", IssueKind::StepsOutOfOrder);
    rejected("SJP000004", IssueKind::FutureTime);
    rejected("SJ2025000011", IssueKind::DuplicateId);
    rejected("SJP000005", IssueKind::UnknownCategory);
    rejected("SJP000006", IssueKind::BadValue);
    rejected("SJP000007", IssueKind::UnknownReference);
    rejected("SJP000008", IssueKind::SwappedLatLon);
    rejected("SJP000011", IssueKind::UnknownCategory);
    let warned = |id: &str, kind: IssueKind| {
        assert!(
            issue(&build, Layer::Event, id).contains(&(kind, Severity::Warning)),
            "{id}"
        );
    };
    warned("SJP000009", IssueKind::UnknownReference);
    warned("SJP000010", IssueKind::BadValue);
    let missing = build
        .report
        .for_layer(Layer::Event)
        .filter(|i| i.kind == IssueKind::MissingId);
    assert_eq!(missing.count(), 1);
    let c = build.report.counts()[&Layer::Event];
    assert_eq!(c.read, c.placed + c.rejected);
    assert_eq!(c.rejected, 11);
    assert!(c.placed > 5000, "{c:?}");
    let v = build.report.counts()[&Layer::Visit];
    assert_eq!((v.read, v.rejected), (v.placed + 4, 4));
    for kind in [
        IssueKind::UnknownReference,
        IssueKind::BadValue,
        IssueKind::FutureTime,
        IssueKind::MissingId,
    ] {
        assert_eq!(
            build
                .report
                .for_layer(Layer::Visit)
                .filter(|i| i.kind == kind)
                .count(),
            1,
            "{kind}"
        );
    }
    build.report.check_accounting().unwrap();
}

#[test]
fn events_tables_do_not_depend_on_the_chunking() {
    let dir = tempfile::tempdir().unwrap();
    let mut job = sample(dir.path());
    let (_, whole) = tables(&job);
    job.options.chunk_rows = "97".parse().expect("a chunk size");
    let (_, chunked) = tables(&job);
    let names: Vec<&String> = whole.keys().filter(|k| k.starts_with("events/")).collect();
    assert!(names.len() >= 8, "{names:?}");
    for n in names {
        assert_eq!(whole[n], chunked[n], "{n}");
    }
}

/// Every table of a run whose cases come as partials, folded from `parts` (row indices of the
/// cases file, each part written as a file of its own) and passed through bytes.
fn tables_from_parts(
    job: &Job,
    dir: &Path,
    parts: &[Vec<usize>],
) -> (shequ::Build, BTreeMap<String, RecordBatch>) {
    use shequ::analytics::events::{CaseFolder, CasesPartial, first_rows};
    let (frame, roster) = shequ::run::cases_frame(job).unwrap();
    let folder = CaseFolder::new(job, &frame.model, roster.as_ref(), false).unwrap();
    let text = std::fs::read_to_string(folder.path()).unwrap();
    let first = first_rows(&folder.keys(folder.path()).unwrap());
    let partials: Vec<CasesPartial> = super::parts::part_files(&text, &first, parts, dir, "part")
        .iter()
        .map(|path| {
            let p = folder.fold(path, "_row", "_first").unwrap();
            CasesPartial::from_bytes(&p.to_bytes()).unwrap()
        })
        .collect();
    let partials = shequ::run::Partials {
        cases: Some(partials),
        ..Default::default()
    };
    tables_with(job, partials)
}

#[test]
fn cases_folded_apart_and_merged_from_bytes_give_the_tables_of_one_reading() {
    let dir = tempfile::tempdir().unwrap();
    let job = sample(dir.path());
    let (whole_build, whole) = tables(&job);
    let n = whole_build.report.counts()[&Layer::Event].read;
    // Each part also read in chunks of 97 rows: row numbers come from the part's column, not
    // from the chunk.
    let mut chunked = job.clone();
    chunked.options.chunk_rows = "97".parse().expect("a chunk size");
    for (what, parts) in super::parts::splits(n, 40) {
        let j = if what == "seven random parts" {
            &chunked
        } else {
            &job
        };
        let (build, split) = tables_from_parts(j, dir.path(), &parts);
        assert_eq!(
            build.report.counts()[&Layer::Event],
            whole_build.report.counts()[&Layer::Event],
            "{what}"
        );
        let issues = |b: &shequ::Build| {
            b.report
                .for_layer(Layer::Event)
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(issues(&build), issues(&whole_build), "{what}");
        for (name, t) in &whole {
            assert_eq!(&split[name], t, "{what}: {name}");
        }
    }
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> &'a UInt64Array {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("{name}"))
        .as_any()
        .downcast_ref()
        .unwrap()
}

#[test]
fn research_counts_add_up_and_respect_k() {
    let dir = tempfile::tempdir().unwrap();
    let job = sample(dir.path());
    let (build, t) = tables(&job);
    let grid = &t["events/grid"];
    assert_eq!(grid.num_rows(), build.model.grids.len());
    let (cases, open, closed) = (
        column(grid, "ev_cases"),
        column(grid, "ev_open"),
        column(grid, "ev_closed"),
    );
    let mut published = 0;
    for i in 0..grid.num_rows() {
        for c in [cases, open, closed] {
            if c.is_valid(i) {
                assert!(
                    c.value(i) == 0 || c.value(i) >= 5,
                    "a published count below k"
                );
            }
        }
        if cases.is_valid(i) && open.is_valid(i) && closed.is_valid(i) {
            assert_eq!(cases.value(i), open.value(i) + closed.value(i));
            published += 1;
        }
    }
    assert!(published > 20);
    // The street's total is every placed case.
    let street = &t["events/street"];
    let placed = build.report.counts()[&Layer::Event].placed as u64;
    assert_eq!(column(street, "ev_cases").value(0), placed);
    // The planted pair of repeated cases is counted.
    assert!(column(street, "ev_repeated").value(0) >= 1);
    let periods = &t["events/periods_street"];
    let per: u64 = column(periods, "cases").iter().flatten().sum();
    assert_eq!(per, placed);
    let rate: &Float64Array = grid
        .column_by_name("satisfaction_rate")
        .unwrap()
        .as_any()
        .downcast_ref()
        .unwrap();
    assert!(rate.iter().flatten().all(|r| (0.0..=1.0).contains(&r)));
}

#[test]
fn a_grid_worker_gets_the_card_list_and_the_visit_list() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    std::fs::write(dir.path().join("key"), "a secret for the events lists").unwrap();
    let mut job = Job::from_toml(dir.path().join("job-grid-worker.toml")).unwrap();
    job.privacy.as_mut().unwrap().secret_file = Some(dir.path().join("key"));
    let (build, t) = tables(&job);
    let cards = &t["events/cards"];
    assert!(cards.num_rows() > 0);
    let card: &StringArray = cards
        .column_by_name("card")
        .unwrap()
        .as_any()
        .downcast_ref()
        .unwrap();
    let left: &Float64Array = cards
        .column_by_name("hours_left")
        .unwrap()
        .as_any()
        .downcast_ref()
        .unwrap();
    let rank = |c: &str| {
        ["red", "yellow", "green"]
            .iter()
            .position(|x| *x == c)
            .unwrap()
    };
    for i in 1..cards.num_rows() {
        assert!(rank(card.value(i - 1)) <= rank(card.value(i)), "red first");
    }
    for i in 0..cards.num_rows() {
        if card.value(i) == "red" {
            assert!(left.value(i) < 0.0, "a red card is past its deadline");
        }
    }
    let grid: &StringArray = cards
        .column_by_name("grid_id")
        .unwrap()
        .as_any()
        .downcast_ref()
        .unwrap();
    let scope = build.model.grids[0].id.as_str().to_owned();
    assert!(grid.iter().all(|g| g == Some(scope.as_str())));
    assert!(
        cards.column_by_name("text").is_none(),
        "free text only with plain_identifiers"
    );
    let visits = &t["events/visit_lists"];
    assert!(
        visits.num_rows() > 0,
        "the sample leaves residents unvisited"
    );
    let key: &StringArray = visits
        .column_by_name("resident_key")
        .unwrap()
        .as_any()
        .downcast_ref()
        .unwrap();
    assert!(key.iter().all(|k| k.is_some_and(|k| !k.starts_with('R'))));
    assert!(visits.column_by_name("resident_id").is_none());
}

#[test]
fn a_bad_chunk_late_in_the_file_stops_the_read_with_a_located_error() {
    // The reader thread meets text it cannot decode in the sixth chunk: the error reaches
    // the caller with its line, and neither thread hangs.
    let dir = tempfile::tempdir().unwrap();
    let mut job = sample(dir.path());
    job.options.chunk_rows = "97".parse().expect("a chunk size");
    let build = shequ::build(&job).unwrap();
    let b = build.model.buildings[0].id.as_str().to_owned();
    let mut text = String::from("id,category,building,reported\n");
    for i in 0..500 {
        text += &format!("C{i},市容环境,{b},2025-06-02 09:00\n");
    }
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(b"C999,\xff\xfe,x,2025-06-02 09:00\n");
    std::fs::write(dir.path().join("bad.csv"), bytes).unwrap();
    job.layers.events = Some(
        toml::from_str(
            "path = 'bad.csv'\nid = 'id'\ncategory = 'category'\nbuilding = 'building'\n\
             steps = { reported = 'reported' }",
        )
        .unwrap(),
    );
    job.events = Some(toml::from_str("as_of = '2025-07-01'").unwrap());
    let e =
        shequ::analytics::events::read_events(&job, &build.model, None, false, &shequ::NoProgress)
            .unwrap_err()
            .to_string();
    assert!(e.contains("bad.csv") && e.contains("line 502"), "{e}");
}

#[test]
fn bad_partials_and_bad_row_numbers_are_located_errors() {
    use shequ::analytics::events::{CaseFolder, CasesPartial};
    let e = CasesPartial::from_bytes(b"not a partial").unwrap_err();
    assert!(e.to_string().contains("not a partial of cases"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let job = sample(dir.path());
    let (frame, roster) = shequ::run::cases_frame(&job).unwrap();
    let folder = CaseFolder::new(&job, &frame.model, roster.as_ref(), false).unwrap();
    let text = std::fs::read_to_string(folder.path()).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.take(3).collect();
    let write = |name: &str, numbers: [&str; 3]| {
        let path = dir.path().join(name);
        let mut out = format!("{header},_row,_first\n");
        for (r, n) in rows.iter().zip(numbers) {
            out.push_str(&format!("{r},{n},\n"));
        }
        std::fs::write(&path, out).unwrap();
        path
    };
    for (numbers, want) in [
        (["0", "x", "2"], "\"x\" is not a row number"),
        (["0", "1.5", "2"], "1.5 is not a row number"),
        (["0", "", "2"], "no row number"),
    ] {
        let e = folder
            .fold(&write("bad.csv", numbers), "_row", "_first")
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(want) && msg.contains("_row"), "{msg}");
        assert_eq!(e.location().and_then(|l| l.index), Some(1), "{msg}");
    }
    let ok = folder
        .fold(&write("ok.csv", ["7", "8", "9"]), "_row", "_first")
        .unwrap();
    assert_eq!(ok.count().read, 3);
}
