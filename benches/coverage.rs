//! Coverage on a generated city: about 1,000,000 residents against 2,000 facilities (four
//! types, 500 each): nearest facility and counts within 300/500/1000 m for every home, per
//! rule (all four default rules), plus the three 2SFCA measures each; and the reach query
//! alone.
//!
//! `cargo bench --profile dev --bench coverage` (set `SHEQU_BENCH_HOUSEHOLDS`, default
//! 400,000 households: about 1.07 million residents).

use criterion::{Criterion, criterion_group, criterion_main};
use geo::Coord;
use rand::{Rng, SeedableRng};
use shequ::analytics::SpecialNeeds;
use shequ::analytics::coverage::reach::{Reached, StraightReach};
use shequ::analytics::coverage::{Coverage, CoverageOptions};
use shequ::{Facility, FacilityId};

mod common;

fn bench_coverage(c: &mut Criterion) {
    let n = common::households(400_000);
    let (_dir, job) = common::district(n, 0);
    let mut built = shequ::build(&job).expect("build");
    // 2,000 facilities spread over the district's homes' bounding box.
    // Homes as coverage sees them: the household's location, else its building's point.
    let m = &built.model;
    let homes: Vec<Coord<f64>> = m
        .households
        .iter()
        .filter(|h| h.placed)
        .filter_map(|h| {
            h.location
                .or_else(|| h.lineage.building.map(|b| m.buildings[b as usize].point))
        })
        .collect();
    let (mut lo, mut hi) = (homes[0], homes[0]);
    for p in &homes {
        lo = Coord {
            x: lo.x.min(p.x),
            y: lo.y.min(p.y),
        };
        hi = Coord {
            x: hi.x.max(p.x),
            y: hi.y.max(p.y),
        };
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let kinds = [
        "clinic",
        "elderly_daycare",
        "rehabilitation",
        "activity_centre",
    ];
    built.model.facilities = (0..2000)
        .map(|i| Facility {
            id: FacilityId::from(format!("F{i:05}").as_str()),
            name: None,
            kind: kinds[i % 4].to_owned(),
            capacity: Some(rng.random_range(10.0..100.0)),
            point: Coord {
                x: rng.random_range(lo.x..hi.x),
                y: rng.random_range(lo.y..hi.y),
            },
            lineage: Default::default(),
            source_index: i,
        })
        .collect();
    let sn = SpecialNeeds::compute(&built, job.special_needs.as_ref().expect("sample"), false)
        .expect("labels");
    let residents = built.model.residents.len();
    let opts = CoverageOptions::default();
    let mut g = c.benchmark_group("coverage");
    g.sample_size(10);
    g.bench_function(
        format!("4 rules × (reach + 3 × 2SFCA), {residents} residents, 2000 facilities"),
        |b| b.iter(|| Coverage::compute(&built, &opts, Some(&sn)).expect("coverage")),
    );
    let points: Vec<Option<Coord<f64>>> = homes.iter().copied().map(Some).collect();
    let sites: Vec<Coord<f64>> = built.model.facilities.iter().map(|f| f.point).collect();
    g.bench_function(
        format!(
            "reach within 300/500/1000 m, {} homes, 2000 facilities",
            points.len()
        ),
        |b| {
            b.iter(|| {
                let r = StraightReach::new(&sites, &points);
                Reached::compute(&r, points.len(), &[300.0, 500.0, 1000.0])
            })
        },
    );
    g.finish();
}

criterion_group!(benches, bench_coverage);
criterion_main!(benches);
