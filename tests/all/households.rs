//! Households placed apart (as Spark's executors place them) and merged: the model, the quality
//! report and every output table of one reading of the whole layer, however the rows are
//! split; a repeated id in two parts reported as one reading reports it; bad partials and row
//! numbers are located errors.

use std::path::{Path, PathBuf};

use shequ::analytics::events::first_rows;
use shequ::crs::WorkingCrs;
use shequ::{HouseholdPlacer, HouseholdsPartial, IssueKind, Job, Layer};

use super::events::tables_with;
use super::parts::{assert_one_reading, part_files, splits};

/// The sample city, its working CRS resolved over the whole household layer (as
/// `shequ.spark` resolves it), and its households file without the planted unreadable line
/// (a line of a part file is numbered in the part: Spark's parts are Parquet, never broken).
pub(crate) fn city(dir: &Path) -> (Job, PathBuf) {
    city_of(dir, 1)
}

/// [`city`] with its communities dealt to `streets` streets.
pub(crate) fn city_of(dir: &Path, streets: usize) -> (Job, PathBuf) {
    let cfg = shequ::sample::SampleConfig {
        streets,
        ..Default::default()
    };
    city_with(dir, &cfg)
}

/// [`city_of`] for any sample.
pub(crate) fn city_with(dir: &Path, cfg: &shequ::sample::SampleConfig) -> (Job, PathBuf) {
    shequ::sample::write_sample(dir, cfg).unwrap();
    let mut job = Job::from_toml(dir.join("job.toml")).unwrap();
    let file = job.resolve(&job.layers.households.as_ref().unwrap().path);
    let text = std::fs::read_to_string(&file).unwrap();
    let fields = |l: &str| l.split(',').count();
    let header = text.lines().next().unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| fields(l) == fields(header))
        .collect();
    assert_eq!(
        kept.len() + 1,
        text.lines().count(),
        "one unreadable line planted"
    );
    std::fs::write(&file, kept.join("\n") + "\n").unwrap();
    let extent = shequ::household_extent(&job, &file).unwrap();
    let crs = shequ::resolve_working_crs(&job, extent).unwrap();
    job.options.working_crs = WorkingCrs::Given(crs);
    (job, file)
}

/// The partials of `parts` (row indices of the households file, each part a file of its own
/// with the rows' numbers and first rows), passed through bytes.
fn partials(job: &Job, file: &Path, dir: &Path, parts: &[Vec<usize>]) -> Vec<HouseholdsPartial> {
    let placer = HouseholdPlacer::new(job).unwrap();
    let text = std::fs::read_to_string(file).unwrap();
    let first = first_rows(&placer.keys(file).unwrap());
    part_files(&text, &first, parts, dir, "households")
        .iter()
        .map(|path| {
            let p = placer.fold(path, "_row", "_first").unwrap();
            HouseholdsPartial::from_bytes(&p.to_bytes()).unwrap()
        })
        .collect()
}

/// What the model says of each household: (id, location, lineage, placed, members, row).
pub(crate) fn households(b: &shequ::Build) -> Vec<String> {
    b.model
        .households
        .iter()
        .map(|h| {
            format!(
                "{} {:?} {:?} {} {} {}",
                h.id, h.location, h.lineage, h.placed, h.residents, h.source_index
            )
        })
        .collect()
}

#[test]
fn households_placed_apart_and_merged_give_the_model_and_tables_of_one_reading() {
    let dir = tempfile::tempdir().unwrap();
    let (job, file) = city(dir.path());
    let whole = tables_with(&job, shequ::run::Partials::default());
    let n = whole.0.report.counts()[&Layer::Household].read;
    for (what, parts) in splits(n, 30) {
        let given = shequ::run::Partials {
            households: Some(partials(&job, &file, dir.path(), &parts)),
            ..Default::default()
        };
        let got = tables_with(&job, given);
        assert_one_reading(&got, &whole, what);
        assert_eq!(households(&got.0), households(&whole.0), "{what}");
        assert_eq!(got.0.model.residents.len(), whole.0.model.residents.len());
    }
}

#[test]
fn a_household_id_repeated_in_two_parts_is_reported_as_one_reading_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let (job, file) = city(dir.path());
    let whole = shequ::build(&job).unwrap();
    let dup: Vec<_> = whole
        .report
        .for_layer(Layer::Household)
        .filter(|i| i.kind == IssueKind::DuplicateId)
        .cloned()
        .collect();
    assert_eq!(dup.len(), 1, "the sample plants one repeated household id");
    let (row, first) = (dup[0].index.unwrap(), 0);
    assert!(dup[0].detail.ends_with(&format!("row {first}")));
    let n = whole.report.counts()[&Layer::Household].read;
    // The first row in the second part, its repeat in the first.
    let parts = vec![
        (0..n).filter(|&r| r != first).collect::<Vec<_>>(),
        vec![first],
    ];
    assert!(parts[0].contains(&row));
    let given = partials(&job, &file, dir.path(), &parts);
    let apart = shequ::build_with_households(&job, &shequ::NoProgress, &mut [], given).unwrap();
    let got: Vec<_> = apart
        .report
        .for_layer(Layer::Household)
        .filter(|i| i.kind == IssueKind::DuplicateId)
        .cloned()
        .collect();
    assert_eq!(got, dup);
    assert_eq!(households(&apart), households(&whole));
}

#[test]
fn bad_household_partials_and_row_numbers_are_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (job, file) = city(dir.path());
    let e = HouseholdsPartial::from_bytes(b"\xff\xff\xff").unwrap_err();
    assert!(e.to_string().contains("households"), "{e}");
    // A placer and a build with given households need the working CRS resolved.
    let mut auto = job.clone();
    auto.options.working_crs = WorkingCrs::Auto;
    let e = HouseholdPlacer::new(&auto).err().expect("auto is refused");
    assert!(e.to_string().contains("resolve_working_crs"), "{e}");
    let e = shequ::build_with_households(&auto, &shequ::NoProgress, &mut [], Vec::new());
    assert!(e.unwrap_err().to_string().contains("auto"));
    // A row without its number, and a number that is not one.
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let row = lines.next().unwrap();
    let placer = HouseholdPlacer::new(&job).unwrap();
    for (value, says) in [("", "no row number"), ("1.5", "is not a row number")] {
        let path = dir.path().join("bad.csv");
        std::fs::write(&path, format!("{header},_row,_first\n{row},{value},\n")).unwrap();
        let e = placer
            .fold(&path, "_row", "_first")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(says) && e.contains("_row") && e.contains("bad.csv"),
            "{e}"
        );
    }
}
