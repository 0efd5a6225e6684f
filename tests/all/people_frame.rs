//! The by-street mode's residents and cases (`docs/scale-out.md`): folded against the frame
//! without its footprints (`PeopleFrame`, made by the driver that cut the frame), they give
//! the residents' partials of the whole frame byte for byte, and the tables of one reading.

use std::path::Path;

use shequ::analytics::events::{CaseFolder, CasesPartial, first_rows};
use shequ::run::{Partials, ResidentsStage};
use shequ::{HouseholdPlacer, HouseholdsPartial, Job, PeopleFrame, ResidentsPartial, StreetFrame};

use super::events::tables_with;
use super::households::city_of;
use super::parts::{assert_one_reading, part_files};

/// The rows `0..n` dealt into three parts.
fn thirds(n: usize) -> Vec<Vec<usize>> {
    (0..3).map(|k| (k..n).step_by(3).collect()).collect()
}

/// The roster rewritten in UTF-8 (the parts are written as text lines).
fn utf8_roster(job: &mut Job) -> std::path::PathBuf {
    let r = job.layers.residents.as_mut().unwrap();
    let file = job.base_dir.join(&r.path);
    let bytes = std::fs::read(&file).unwrap();
    let (text, _, bad) = encoding_rs::GB18030.decode(&bytes);
    assert!(!bad);
    std::fs::write(&file, text.as_bytes()).unwrap();
    r.encoding = shequ::io::table::Encoding::Utf8;
    file
}

/// Every household row placed against the whole frame, in one partial.
fn placed(job: &Job, file: &Path, dir: &Path) -> HouseholdsPartial {
    let placer = HouseholdPlacer::new(job).unwrap();
    let first = first_rows(&placer.keys(file).unwrap());
    let text = std::fs::read_to_string(file).unwrap();
    let n = first.len();
    let [path] = part_files(&text, &first, &[(0..n).collect()], dir, "households")
        .try_into()
        .unwrap();
    placer.fold(&path, "_row", "_first").unwrap()
}

/// Each part of the roster folded by both stages: the same bytes; the partials of `thin`.
fn residents(
    whole: &ResidentsStage,
    thin: &ResidentsStage,
    file: &Path,
    dir: &Path,
) -> Vec<ResidentsPartial> {
    let keys = whole.keys(file).unwrap();
    assert_eq!(thin.keys(file).unwrap(), keys);
    let text = std::fs::read_to_string(file).unwrap();
    let parts = thirds(keys.len());
    let files = part_files(&text, &first_rows(&keys), &parts, dir, "residents");
    files
        .iter()
        .map(|path| {
            let got = thin.fold(path, "_row", "_first").unwrap().to_bytes();
            let want = whole.fold(path, "_row", "_first").unwrap().to_bytes();
            assert!(
                got == want,
                "{}: the thin frame's partial differs",
                path.display()
            );
            ResidentsPartial::from_bytes(&got).unwrap()
        })
        .collect()
}

/// The cases folded against both frames (the roster's ids from `people`): the same counts;
/// the partials of the frame of people.
fn cases(
    job: &Job,
    frame: &PeopleFrame,
    people: &[ResidentsPartial],
    dir: &Path,
) -> Vec<CasesPartial> {
    let ids = || shequ::run::roster_ids_of(job, people).unwrap();
    let (whole, roster) = shequ::run::cases_frame_with(job, ids()).unwrap();
    let (thin, thin_roster) = shequ::run::cases_frame_of(job, frame, ids()).unwrap();
    let whole = CaseFolder::new(job, &whole.model, roster.as_ref(), false).unwrap();
    let thin = CaseFolder::new(job, &thin.model, thin_roster.as_ref(), false).unwrap();
    let file = whole.path().to_path_buf();
    let keys = whole.keys(&file).unwrap();
    assert_eq!(thin.keys(&file).unwrap(), keys);
    let text = std::fs::read_to_string(&file).unwrap();
    let parts = thirds(keys.len());
    let mut all = Vec::new();
    for path in part_files(&text, &first_rows(&keys), &parts, dir, "cases") {
        // A partial's maps of names serialise in hash order, so the cases' partials are
        // compared by their counts here and by the tables they give below.
        let got = thin.fold(&path, "_row", "_first").unwrap();
        let want = whole.fold(&path, "_row", "_first").unwrap();
        assert_eq!(got.count(), want.count(), "{}", path.display());
        let got = got.to_bytes();
        all.push(CasesPartial::from_bytes(&got).unwrap());
    }
    all
}

#[test]
fn residents_and_cases_folded_against_the_frame_without_footprints_give_one_readings_tables() {
    let dir = tempfile::tempdir().unwrap();
    let (mut job, households_file) = city_of(dir.path(), 3);
    let roster = utf8_roster(&mut job);
    let households = placed(&job, &households_file, dir.path());
    let cut = StreetFrame::cut(&job).unwrap();
    let bytes = cut.people.to_bytes();
    let frame = PeopleFrame::from_bytes(&bytes).unwrap();
    // The whole frame has footprints; the frame of people keeps every building, none of them.
    let whole_frame = HouseholdPlacer::new(&job).unwrap();
    let buildings = &whole_frame.model().buildings;
    assert!(buildings.iter().all(|b| b.footprint.is_some()));
    assert_eq!(frame.buildings(), buildings.len());
    let thin_model = frame.model(whole_frame.model().working_crs.clone());
    assert!(thin_model.buildings.iter().all(|b| b.footprint.is_none()));
    let whole = ResidentsStage::new(&job, Some(households.clone())).unwrap();
    let thin = ResidentsStage::with_frame(&job, &frame, households.clone()).unwrap();
    let people = residents(&whole, &thin, &roster, dir.path());
    let folded = cases(&job, &frame, &people, dir.path());
    // And the run on those partials gives one reading's tables.
    let given = Partials {
        households: Some(vec![households]),
        residents: Some(people),
        cases: Some(folded),
        ..Default::default()
    };
    let one = tables_with(&job, Partials::default());
    assert!(one.1.keys().any(|k| k.starts_with("events/")));
    assert!(one.1.keys().any(|k| k.starts_with("special_needs/")));
    assert_one_reading(
        &tables_with(&job, given),
        &one,
        "folded against the frame of people",
    );
}
