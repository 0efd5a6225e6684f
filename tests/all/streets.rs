//! Households placed by street (the by-street mode of `docs/scale-out.md`): the frame cut
//! into one piece per street, each row keyed to a street and placed against that street's
//! piece only, give the model, the quality report and every output table of one reading of
//! the whole layer, however each street's rows are split further. So do the rows placed
//! against the whole frame sent as one piece (the broadcast mode).

use std::collections::BTreeMap;
use std::path::Path;

use shequ::analytics::coverage::halo::{FacilityHalo, GivenReach, ReachPart};
use shequ::analytics::events::first_rows;
use shequ::{HouseholdPlacer, HouseholdsPartial, Job, StreetFrame, StreetKeys, StreetPiece};

use super::events::tables_with;
use super::households::{city_of, city_with, households};
use super::parts::{assert_one_reading, part_files};

/// Each row's key and the rows of each key, in row order.
fn keyed(job: &Job, cut: &StreetFrame, file: &Path) -> (Vec<u32>, BTreeMap<u32, Vec<usize>>) {
    let keys = StreetKeys::from_bytes(&cut.keys.to_bytes()).unwrap();
    let of_row = shequ::street_keys(job, &keys, file).unwrap();
    let mut by_key: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (r, k) in of_row.iter().enumerate() {
        by_key.entry(*k).or_default().push(r);
    }
    (of_row, by_key)
}

/// The partials of each key's rows split into `ways` parts, each placed against its key's
/// piece only (passed through bytes, as Spark sends it).
fn by_street(job: &Job, file: &Path, dir: &Path, ways: usize) -> Vec<HouseholdsPartial> {
    let cut = StreetFrame::cut(job).unwrap();
    let placed = with_reach(job, &cut, None, file, dir, ways);
    placed.into_iter().map(|p| p.0).collect()
}

/// [`by_street`], each part's homes also measured against its key's facilities' halo.
fn with_reach(
    job: &Job,
    cut: &StreetFrame,
    halos: Option<&[FacilityHalo]>,
    file: &Path,
    dir: &Path,
    ways: usize,
) -> Vec<(HouseholdsPartial, Option<ReachPart>)> {
    let (_, by_key) = keyed(job, cut, file);
    let text = std::fs::read_to_string(file).unwrap();
    let whole = HouseholdPlacer::new(job).unwrap();
    let first = first_rows(&whole.keys(file).unwrap());
    let mut out = Vec::new();
    for (k, rows) in by_key {
        let piece = StreetPiece::from_bytes(&cut.pieces[k as usize].to_bytes()).unwrap();
        assert_eq!(piece.key(), k);
        let placer = HouseholdPlacer::for_piece(job, &piece).unwrap();
        let parts: Vec<Vec<usize>> = (0..ways)
            .map(|w| rows.iter().copied().skip(w).step_by(ways).collect())
            .collect();
        let stem = format!("street{k}-");
        let halo = halos.map(|h| FacilityHalo::from_bytes(&h[k as usize].to_bytes()).unwrap());
        for path in part_files(&text, &first, &parts, dir, &stem) {
            let partial = placer.fold(&path, "_row", "_first").unwrap();
            let reach = halo.as_ref().map(|h| {
                let part = h.measure(&piece.homes(&partial));
                ReachPart::from_bytes(&part.to_bytes()).unwrap()
            });
            out.push((partial, reach));
        }
    }
    out
}

#[test]
fn households_placed_by_street_give_the_model_and_tables_of_one_reading() {
    let dir = tempfile::tempdir().unwrap();
    let (job, file) = city_of(dir.path(), 3);
    let whole = tables_with(&job, shequ::run::Partials::default());
    for ways in [1, 3] {
        let given = shequ::run::Partials {
            households: Some(by_street(&job, &file, dir.path(), ways)),
            ..Default::default()
        };
        let got = tables_with(&job, given);
        let what = format!("by street, {ways} parts per street");
        assert_one_reading(&got, &whole, &what);
        assert_eq!(households(&got.0), households(&whole.0), "{what}");
    }
}

#[test]
fn each_street_piece_holds_part_of_the_frame_and_every_building_its_rows_name() {
    let dir = tempfile::tempdir().unwrap();
    let (job, file) = city_of(dir.path(), 3);
    let frame = shequ::build(&job).unwrap();
    let cut = StreetFrame::cut(&job).unwrap();
    assert_eq!(cut.pieces.len(), frame.model.streets.len() + 1);
    let (of_row, by_key) = keyed(&job, &cut, &file);
    assert!(
        by_key.len() >= frame.model.streets.len(),
        "every street has rows"
    );
    for p in &cut.pieces[..frame.model.streets.len()] {
        assert!(p.buildings() > 0 && p.buildings() < frame.model.buildings.len());
        assert!(p.areas() > 0 && p.areas() < frame.model.grids.len());
    }
    // Every placed household's street is its key's street, or its key's piece reaches it:
    // the rows keyed by one street and placed in another (a footprint or grid across the
    // boundary) are those a halo is for.
    let whole = &frame.model.households;
    let placed: Vec<_> = whole.iter().filter(|h| h.placed).collect();
    assert!(placed.len() > 1000);
    let agree = placed
        .iter()
        .filter(|h| h.lineage.street == Some(of_row[h.source_index]))
        .count();
    assert!(agree * 10 > placed.len() * 9, "{agree} of {}", placed.len());
    // A job without a street level cannot be cut by street.
    let mut flat = job.clone();
    flat.layers.streets = None;
    let e = StreetFrame::cut(&flat).expect_err("no street level");
    assert!(e.to_string().contains("street"), "{e}");
}

#[test]
fn homes_measured_by_street_against_their_halos_give_the_coverage_of_one_reading() {
    let dir = tempfile::tempdir().unwrap();
    // Wide enough that a street's halo holds only part of the facilities.
    let cfg = shequ::sample::SampleConfig {
        streets: 8,
        communities: 64,
        households: 6000,
        ..Default::default()
    };
    let (job, file) = city_with(dir.path(), &cfg);
    let whole = tables_with(&job, shequ::run::Partials::default());
    let (cut, halos) = shequ::run::street_cut(&job).unwrap();
    let halos = halos.expect("the sample has [coverage]");
    let facilities = whole.0.model.facilities.len();
    // The outer streets' halos leave out the facilities beyond 1000 m (the largest threshold).
    let streets = whole.0.model.streets.len();
    let sizes: Vec<usize> = halos.iter().map(FacilityHalo::facilities).collect();
    let fewer = sizes[..streets].iter().filter(|n| **n < facilities).count();
    assert!(fewer * 2 >= streets, "{sizes:?} of {facilities}");
    assert_eq!(sizes[streets], 0, "nothing lies outside the streets");
    for ways in [1, 3] {
        let parts = with_reach(&job, &cut, Some(&halos), &file, dir.path(), ways);
        let (households, reach): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
        let reach: Vec<ReachPart> = reach.into_iter().map(Option::unwrap).collect();
        // Most homes' reach comes from the streets; the driver measures the rest.
        let given = GivenReach::new(&whole.0.model, reach.clone()).unwrap();
        let placed = whole.0.model.households.iter().filter(|h| h.placed).count();
        assert!(
            given.known() * 10 > placed * 9,
            "{} of {placed}",
            given.known()
        );
        let partials = shequ::run::Partials {
            households: Some(households),
            reach: Some(reach),
            ..Default::default()
        };
        let got = tables_with(&job, partials);
        let what = format!("by street with halos, {ways} parts per street");
        assert_one_reading(&got, &whole, &what);
    }
    // A part of rows that are no households of the model is refused.
    let mut stray = with_reach(&job, &cut, Some(&halos), &file, dir.path(), 1);
    let mut other = whole.0.model.clone();
    other.households.truncate(10);
    let parts: Vec<ReachPart> = stray.drain(..).filter_map(|p| p.1).collect();
    let e = GivenReach::new(&other, parts).expect_err("rows beyond the model");
    assert!(e.to_string().contains("no household"), "{e}");
}

#[test]
fn households_placed_against_the_whole_frame_as_one_piece_give_the_tables_of_one_reading() {
    let dir = tempfile::tempdir().unwrap();
    let (job, file) = city_of(dir.path(), 3);
    let whole = tables_with(&job, shequ::run::Partials::default());
    let (piece, people) = StreetFrame::uncut(&job).unwrap();
    let piece = StreetPiece::from_bytes(&piece.to_bytes()).unwrap();
    assert_eq!(piece.key(), u32::MAX);
    assert_eq!(piece.buildings(), whole.0.model.buildings.len());
    assert_eq!(people.buildings(), whole.0.model.buildings.len());
    assert_eq!(piece.areas(), whole.0.model.grids.len());
    let placer = HouseholdPlacer::for_piece(&job, &piece).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let rows = text.lines().count() - 1;
    let first = first_rows(&placer.keys(&file).unwrap());
    for ways in [1, 3] {
        let parts: Vec<Vec<usize>> = (0..ways)
            .map(|w| (w..rows).step_by(ways).collect())
            .collect();
        let stem = format!("whole{ways}-");
        let placed = part_files(&text, &first, &parts, dir.path(), &stem)
            .iter()
            .map(|p| placer.fold(p, "_row", "_first").unwrap())
            .collect();
        let given = shequ::run::Partials {
            households: Some(placed),
            ..Default::default()
        };
        let got = tables_with(&job, given);
        let what = format!("against the whole piece, {ways} parts");
        assert_one_reading(&got, &whole, &what);
        assert_eq!(households(&got.0), households(&whole.0), "{what}");
    }
    // The working CRS must be resolved first, as for every placer.
    let mut auto = job.clone();
    auto.options.working_crs = shequ::crs::WorkingCrs::Auto;
    assert!(StreetFrame::uncut(&auto).is_err());
}
