//! Residents placed apart (as Spark's executors place them), their analyses' parts absorbed
//! on one process: the model, the quality report and every table (special needs, registers,
//! visits) of one reading of the whole roster, however the rows are split; a repeated id in
//! two parts reported as one reading reports it; partials that do not fit are located errors.

use std::path::{Path, PathBuf};

use shequ::analytics::events::first_rows;
use shequ::run::{Partials, ResidentsStage};
use shequ::{IssueKind, Job, Layer, ResidentsPartial};

use super::events::tables_with;
use super::parts::{assert_one_reading, part_files, splits};

/// The sample city with its roster in UTF-8 (the parts are written as text lines).
fn city(dir: &Path) -> (Job, PathBuf) {
    shequ::sample::write_sample(dir, &shequ::sample::SampleConfig::default()).unwrap();
    let mut job = Job::from_toml(dir.join("job.toml")).unwrap();
    let r = job.layers.residents.as_mut().unwrap();
    let file = dir.join(&r.path);
    let bytes = std::fs::read(&file).unwrap();
    let (text, _, bad) = encoding_rs::GB18030.decode(&bytes);
    assert!(!bad);
    std::fs::write(&file, text.as_bytes()).unwrap();
    r.encoding = shequ::io::table::Encoding::Utf8;
    (job, file)
}

/// The partials of `parts` (row indices of the roster, each part a file of its own with the
/// rows' numbers and first rows) folded by one stage, passed through bytes.
fn partials(
    stage: &ResidentsStage,
    file: &Path,
    dir: &Path,
    parts: &[Vec<usize>],
) -> Vec<ResidentsPartial> {
    let text = std::fs::read_to_string(file).unwrap();
    let first = first_rows(&stage.keys(file).unwrap());
    part_files(&text, &first, parts, dir, "residents")
        .iter()
        .map(|path| {
            let p = stage.fold(path, "_row", "_first").unwrap();
            ResidentsPartial::from_bytes(&p.to_bytes()).unwrap()
        })
        .collect()
}

/// What the model says of each resident and household.
fn people(b: &shequ::Build) -> (Vec<String>, Vec<String>) {
    let residents = b.model.residents.iter();
    let households = b.model.households.iter();
    (
        residents
            .map(|r| format!("{} {:?} {}", r.household, r.sex, r.source_index))
            .collect(),
        households
            .map(|h| format!("{} {} {}", h.id, h.residents, h.source_index))
            .collect(),
    )
}

#[test]
fn residents_placed_apart_and_merged_give_the_model_and_tables_of_one_reading() {
    let dir = tempfile::tempdir().unwrap();
    let (job, file) = city(dir.path());
    let whole = tables_with(&job, Partials::default());
    assert!(whole.1.keys().any(|k| k.starts_with("registers/")));
    assert!(whole.1.keys().any(|k| k.starts_with("special_needs/")));
    let n = whole.0.report.counts()[&Layer::Resident].read;
    // Each part also read in chunks of 97 rows.
    let mut chunked = job.clone();
    chunked.options.chunk_rows = "97".parse().expect("a chunk size");
    let stage = ResidentsStage::new(&chunked, None).unwrap();
    for (what, parts) in splits(n, 60) {
        let given = Partials {
            residents: Some(partials(&stage, &file, dir.path(), &parts)),
            ..Default::default()
        };
        let got = tables_with(&job, given);
        assert_one_reading(&got, &whole, what);
        assert_eq!(people(&got.0), people(&whole.0), "{what}");
    }
}

#[test]
fn a_resident_id_repeated_in_two_parts_is_reported_as_one_reading_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let (job, file) = city(dir.path());
    let (whole, _) = tables_with(&job, Partials::default());
    let repeats = |b: &shequ::Build| -> Vec<shequ::QualityIssue> {
        b.report
            .for_layer(Layer::Resident)
            .filter(|i| i.kind == IssueKind::DuplicateId)
            .cloned()
            .collect()
    };
    let dup = repeats(&whole);
    assert_eq!(dup.len(), 1, "the sample plants one repeated resident id");
    assert!(dup[0].detail.ends_with("row 0"), "{}", dup[0].detail);
    let n = whole.report.counts()[&Layer::Resident].read;
    let parts = vec![(1..n).collect::<Vec<_>>(), vec![0]];
    let stage = ResidentsStage::new(&job, None).unwrap();
    let given = Partials {
        residents: Some(partials(&stage, &file, dir.path(), &parts)),
        ..Default::default()
    };
    let (apart, _) = tables_with(&job, given);
    assert_eq!(repeats(&apart), dup);
    assert_eq!(people(&apart), people(&whole));
}

#[test]
fn residents_partials_that_do_not_fit_the_run_are_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (job, file) = city(dir.path());
    let e = ResidentsPartial::from_bytes(b"\xff\xff").unwrap_err();
    assert!(e.to_string().contains("residents"), "{e}");
    // Folded by a run without registers: one analysis' part fewer than the run has.
    let mut fewer = job.clone();
    fewer.registers.clear();
    let stage = ResidentsStage::new(&fewer, None).unwrap();
    let n = std::fs::read_to_string(&file).unwrap().lines().count() - 1;
    let given = partials(&stage, &file, dir.path(), &[(0..n).collect()]);
    let policy = shequ::run::policy(&job).unwrap();
    let partials = Partials {
        residents: Some(given),
        ..Default::default()
    };
    let e = shequ::run::people_stage_with(&job, &policy, &shequ::NoProgress, partials)
        .expect_err("refused");
    assert!(
        e.to_string()
            .contains("carries 2 analyses' parts, the run has 3"),
        "{e}"
    );
}

#[test]
fn cases_folded_against_the_roster_ids_of_the_residents_partials_give_one_readings_tables() {
    use shequ::analytics::events::{CaseFolder, CasesPartial};
    let dir = tempfile::tempdir().unwrap();
    let (job, file) = city(dir.path());
    let whole = tables_with(&job, Partials::default());
    let n = whole.0.report.counts()[&Layer::Resident].read;
    let [_, (_, parts), _] = splits(n, 60);
    let stage = ResidentsStage::new(&job, None).unwrap();
    let residents = partials(&stage, &file, dir.path(), &parts);
    // The cases' frame: the small layers, and the ids made from the residents' partials.
    let ids = shequ::run::roster_ids_of(&job, &residents).unwrap();
    assert_eq!(
        ids.as_ref().map(|i| i.len()),
        Some(whole.0.model.residents.len())
    );
    let (frame, roster) = shequ::run::cases_frame_with(&job, ids).unwrap();
    assert!(frame.model.residents.is_empty() && frame.model.households.is_empty());
    let folder = CaseFolder::new(&job, &frame.model, roster.as_ref(), false).unwrap();
    let cases_file = folder.path().to_path_buf();
    let first = first_rows(&folder.keys(&cases_file).unwrap());
    let text = std::fs::read_to_string(&cases_file).unwrap();
    let n = first.len();
    let [path] = part_files(&text, &first, &[(0..n).collect()], dir.path(), "cases")
        .try_into()
        .unwrap();
    let cases = folder.fold(&path, "_row", "_first").unwrap();
    let given = Partials {
        residents: Some(residents),
        cases: Some(vec![CasesPartial::from_bytes(&cases.to_bytes()).unwrap()]),
        ..Default::default()
    };
    assert_one_reading(
        &tables_with(&job, given),
        &whole,
        "cases against the partials' ids",
    );
}
