//! Coverage, accessibility and siting: reach against brute force, 2SFCA against hand-computed
//! examples, network distances on a hand-built graph, greedy siting properties, and the
//! sample city's outputs.

use std::path::Path;

use arrow_array::{Array, BooleanArray, Float64Array, StringArray, UInt64Array};
use geo::{Coord, LineString, coord};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shequ::analytics::coverage::fca::{Decay, gini, lorenz, two_step, two_step_many};
use shequ::analytics::coverage::network::Network;
use shequ::analytics::coverage::reach::{NetworkReach, Reach, Reached, StraightReach};
use shequ::analytics::coverage::siting::{covered_by, exact, greedy};
use shequ::{Job, PrivacyOptions};

use crate::fixtures::read_batches;

fn random_points(rng: &mut ChaCha8Rng, n: usize, size: f64) -> Vec<Coord<f64>> {
    (0..n)
        .map(|_| coord! { x: rng.random_range(0.0..size), y: rng.random_range(0.0..size) })
        .collect()
}

#[test]
fn nearest_and_within_counts_match_brute_force() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    // Cutoff 0: R-tree only; otherwise bucket cells of that size too (200 m: most nearest
    // queries search rings of cells beyond the 3 x 3 around the home; 1000 m: most are
    // answered by those). Homes spread over `spread` metres, sites over 3000 m: homes also lie
    // outside the cells' extent.
    for (homes_n, sites_n, cutoff, spread) in [
        (2000, 50, 0.0, 3000.0),
        (2000, 50, 200.0, 3000.0),
        (2000, 50, 1000.0, 3000.0),
        (500, 1, 1000.0, 3000.0),
        (300, 0, 1000.0, 3000.0),
        (1000, 400, 0.0, 3000.0),
        (1000, 400, 1000.0, 3000.0),
        (2000, 7, 150.0, 9000.0),
        (2000, 3, 500.0, 9000.0),
    ] {
        let mut sites = random_points(&mut rng, sites_n, 3000.0);
        if sites_n > 1 {
            // Two sites at one place: the nearest is the lower index.
            sites.push(sites[1]);
        }
        let mut homes: Vec<Option<Coord<f64>>> = random_points(&mut rng, homes_n, spread)
            .into_iter()
            .map(Some)
            .collect();
        homes[0] = None;
        if sites_n > 0 {
            // A home exactly on a threshold of a site: inclusive. (Whole metres, so that the
            // 300 m offset is exact.)
            sites[0] = coord! { x: sites[0].x.round(), y: sites[0].y.round() };
            homes[1] = Some(coord! { x: sites[0].x + 300.0, y: sites[0].y });
        }
        let th = [300.0, 500.0, 1000.0];
        let r = Reached::compute(
            &StraightReach::for_cutoff(&sites, &homes, cutoff),
            homes.len(),
            &th,
        );
        for (i, h) in homes.iter().enumerate() {
            let Some(h) = h else {
                assert_eq!(r.nearest[i], None);
                assert!((0..3).all(|t| r.count(i, t) == 0));
                continue;
            };
            let d: Vec<f64> = sites.iter().map(|s| (s.x - h.x).hypot(s.y - h.y)).collect();
            let best = d
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1).then(a.0.cmp(&b.0)));
            match (best, r.nearest[i]) {
                (None, None) => {}
                (Some((j, dj)), Some((k, dk))) => {
                    assert_eq!(j as u32, k, "home {i}");
                    assert!((dj - dk).abs() < 1e-9);
                }
                other => panic!("home {i}: {other:?}"),
            }
            for (t, limit) in th.iter().enumerate() {
                let want = d.iter().filter(|x| **x <= *limit).count() as u32;
                assert_eq!(r.count(i, t), want, "home {i} within {limit}");
            }
        }
        if sites_n > 0 {
            assert!(r.count(1, 0) >= 1, "a site at exactly 300 m counts");
        }
    }
}

/// A 3×3 street grid with 100 m blocks and a missing link: the shortest walk must detour.
///
/// ```text
///  (0,200)──(100,200)──(200,200)
///     │          │          │
///  (0,100)──(100,100)  ✗  (200,100)
///     │          │          │
///  (0,0) ───(100,0) ───(200,0)
/// ```
fn street_grid() -> Network {
    let l = |a: (f64, f64), b: (f64, f64)| LineString::from(vec![a, b]);
    let lines = vec![
        l((0.0, 0.0), (100.0, 0.0)),
        l((100.0, 0.0), (200.0, 0.0)),
        l((0.0, 100.0), (100.0, 100.0)),
        // (100,100)–(200,100) is missing: a wall.
        l((0.0, 200.0), (100.0, 200.0)),
        l((100.0, 200.0), (200.0, 200.0)),
        l((0.0, 0.0), (0.0, 100.0)),
        l((0.0, 100.0), (0.0, 200.0)),
        l((100.0, 0.0), (100.0, 100.0)),
        l((100.0, 100.0), (100.0, 200.0)),
        l((200.0, 0.0), (200.0, 100.0)),
        l((200.0, 100.0), (200.0, 200.0)),
        // A separate island far away.
        l((1000.0, 1000.0), (1100.0, 1000.0)),
    ];
    Network::from_lines(&lines, 0.5, 30.0)
}

#[test]
fn network_distances_on_a_hand_built_graph() {
    let net = street_grid();
    assert_eq!(net.nodes(), 11);
    assert_eq!(net.edges(), 12);
    let snap = |x: f64, y: f64| net.snap(coord! { x: x, y: y });
    // A facility 10 m off the street at the middle of the bottom-left block's top edge.
    let facility = snap(50.0, 110.0).unwrap();
    let homes = [
        snap(150.0, 95.0),    // 50 m from the nearest street: beyond the 30 m snap
        snap(50.0, 90.0),     // the same street, other side: 10 + 0 + 10
        snap(0.0, 150.0),     // 10 + 50 to the corner, then 50 up
        snap(1050.0, 1000.0), // the island: unreachable
        snap(500.0, 500.0),   // off the network
    ];
    assert!(homes[4].is_none());
    let d = net.distances_from(&[facility], 10_000.0, &homes);
    let of = |i: u32| d.iter().find(|x| x.0 == i).map(|x| x.1);
    assert!(homes[0].is_none());
    assert_eq!(of(1), Some(20.0));
    assert_eq!(of(2), Some(110.0));
    assert_eq!(of(3), None);
    // Through the wall: from (50,100) to (200,150) walks right to (100,100), up to (100,200),
    // right to (200,200), down to (200,150): 50 + 100 + 100 + 50 = 300, plus 10 off the street.
    let across = net.snap(coord! { x: 190.0, y: 150.0 }).unwrap();
    let d = net.distances_from(&[facility], 10_000.0, &[Some(across)]);
    assert_eq!(d, vec![(0, 10.0 + 300.0 + 10.0)]);
    // The cutoff is inclusive and applied to the whole walk.
    assert_eq!(
        net.distances_from(&[facility], 320.0, &[Some(across)])
            .len(),
        1
    );
    assert!(
        net.distances_from(&[facility], 319.9, &[Some(across)])
            .is_empty()
    );
    // Multi-source nearest agrees with the per-origin distances.
    let other = net.snap(coord! { x: 200.0, y: 180.0 }).unwrap();
    let n = net.nearest(
        &[facility, other],
        &[Some(across), Some(homes[1].unwrap()), homes[3]],
    );
    assert_eq!(n[0], Some((1, 30.0 + 10.0 + 0.0)));
    assert_eq!(n[1], Some((0, 20.0)));
    assert_eq!(n[2], None);
    // NetworkReach (per-facility searches transposed) agrees with both.
    let sites = [Some(facility), Some(other)];
    let points = [Some(across), homes[1], homes[3]];
    let r = NetworkReach::new(&net, &sites, &points, 1000.0);
    assert_eq!(r.nearest(0), Some((1, 40.0)));
    let mut seen = Vec::new();
    r.within(0, 1000.0, &mut |s, d| seen.push((s, d)));
    seen.sort_by_key(|a| a.0);
    assert_eq!(seen, vec![(0, 320.0), (1, 40.0)]);
}

#[test]
fn network_distance_is_never_shorter_than_straight_line() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    // A random street lattice with some links removed.
    let mut lines = Vec::new();
    for i in 0..12 {
        for j in 0..12 {
            let (x, y) = (i as f64 * 80.0, j as f64 * 80.0);
            if rng.random::<f64>() < 0.85 {
                lines.push(LineString::from(vec![(x, y), (x + 80.0, y)]));
            }
            if rng.random::<f64>() < 0.85 {
                lines.push(LineString::from(vec![(x, y), (x, y + 80.0)]));
            }
        }
    }
    let net = Network::from_lines(&lines, 0.5, 40.0);
    let sites = random_points(&mut rng, 20, 960.0);
    let homes: Vec<Option<Coord<f64>>> = random_points(&mut rng, 400, 960.0)
        .into_iter()
        .map(Some)
        .collect();
    let site_snaps: Vec<_> = sites.iter().map(|p| net.snap(*p)).collect();
    let home_snaps: Vec<_> = homes.iter().map(|p| p.and_then(|p| net.snap(p))).collect();
    let r = NetworkReach::new(&net, &site_snaps, &home_snaps, 600.0);
    let s = StraightReach::new(&sites, &homes);
    let mut pairs = 0;
    for (i, h) in homes.iter().enumerate() {
        let h = h.unwrap();
        r.within(i, 600.0, &mut |j, d| {
            pairs += 1;
            let p = sites[j as usize];
            assert!(d + 1e-6 >= (p.x - h.x).hypot(p.y - h.y));
        });
        if let (Some((_, dn)), Some((_, ds))) = (r.nearest(i), s.nearest(i)) {
            assert!(dn + 1e-6 >= ds);
        }
        // The nearest within the cutoff is the nearest overall.
        let mut best = f64::INFINITY;
        r.within(i, 600.0, &mut |_, d| best = best.min(d));
        if best.is_finite() {
            assert!((r.nearest(i).unwrap().1 - best).abs() < 1e-6);
        }
    }
    assert!(pairs > 100);
}

#[test]
fn two_step_measures_match_hand_computed_examples() {
    // Homes A (0,0) pop 100, B (400,0) pop 50, C (2000,0) pop 30.
    // Clinics X (200,0) capacity 10, Y (700,0) capacity 6.
    let homes = vec![
        Some(coord! { x: 0.0, y: 0.0 }),
        Some(coord! { x: 400.0, y: 0.0 }),
        Some(coord! { x: 2000.0, y: 0.0 }),
    ];
    let clinics = [coord! { x: 200.0, y: 0.0 }, coord! { x: 700.0, y: 0.0 }];
    let reach = StraightReach::new(&clinics, &homes);
    let pop = [100.0, 50.0, 30.0];
    let cap = [10.0, 6.0];
    // 2SFCA, catchment 500 (inclusive): d(A,X)=200, d(B,X)=200, d(B,Y)=300, d(A,Y)=700 ✗.
    // R_X = 10/150, R_Y = 6/50. A = R_X; B = R_X + R_Y; C has none (None, as PySAL's NaN).
    let a = two_step(&reach, &pop, &cap, 500.0, &Decay::None);
    let (rx, ry) = (10.0 / 150.0, 6.0 / 50.0);
    assert!((a[0].unwrap() - rx).abs() < 1e-12);
    assert!((a[1].unwrap() - (rx + ry)).abs() < 1e-12);
    assert_eq!(a[2], None);
    // The catchment is inclusive (PySAL access 1.1): at exactly 200 m, X reaches A and B, and
    // Y (300 m from B) nobody. Just below, nobody reaches anything.
    let a = two_step(&reach, &pop, &cap, 200.0, &Decay::None);
    assert_eq!(a[0], Some(10.0 / 150.0));
    assert_eq!(a[1], Some(10.0 / 150.0));
    let a = two_step(&reach, &pop, &cap, 199.9, &Decay::None);
    assert_eq!(a, vec![None, None, None]);
    // Points without demand take no part.
    let a = two_step(&reach, &[100.0, 0.0, 30.0], &cap, 500.0, &Decay::None);
    assert_eq!(a[1], None);
    assert_eq!(a[0], Some(10.0 / 100.0));
    // Several decays at once give the same as one at a time.
    let both = two_step_many(
        &reach,
        &pop,
        &cap,
        500.0,
        &[Decay::None, Decay::Gaussian(200.0)],
    );
    let values = |s: &shequ::analytics::coverage::fca::Scores| s.iter().collect::<Vec<_>>();
    assert_eq!(
        values(&both[0]),
        two_step(&reach, &pop, &cap, 500.0, &Decay::None)
    );
    assert_eq!(
        values(&both[1]),
        two_step(&reach, &pop, &cap, 500.0, &Decay::Gaussian(200.0))
    );
    // E2SFCA with bands ≤250: 1.0, ≤400: 0.5 (catchment 500).
    // Demand: X: 100·1 + 50·1 = 150; Y: 50·0.5 = 25 (d=300). R_X = 10/150, R_Y = 6/25.
    // A = 1·R_X; B = 1·R_X + 0.5·R_Y.
    let steps = Decay::Steps(vec![(250.0, 1.0), (400.0, 0.5)]);
    let a = two_step(&reach, &pop, &cap, 500.0, &steps);
    let (rx, ry) = (10.0 / 150.0, 6.0 / 25.0);
    assert!((a[0].unwrap() - rx).abs() < 1e-12);
    assert!((a[1].unwrap() - (rx + 0.5 * ry)).abs() < 1e-12);
    // Gaussian σ = 200: w(200) = e^-0.5, w(300) = e^-1.125.
    let g = Decay::Gaussian(200.0);
    let (w2, w3) = ((-0.5f64).exp(), (-1.125f64).exp());
    let a = two_step(&reach, &pop, &cap, 500.0, &g);
    let rx = 10.0 / (100.0 * w2 + 50.0 * w2);
    let ry = 6.0 / (50.0 * w3);
    assert!((a[0].unwrap() - rx * w2).abs() < 1e-12);
    assert!((a[1].unwrap() - (rx * w2 + ry * w3)).abs() < 1e-12);
    // Supply is conserved in 2SFCA: Σ P_i A_i = Σ S_j over facilities with demand.
    let a = two_step(&reach, &pop, &cap, 500.0, &Decay::None);
    let total: f64 = a.iter().zip(pop).map(|(a, p)| a.unwrap_or(0.0) * p).sum();
    assert!((total - 16.0).abs() < 1e-9);
}

#[test]
fn gini_and_lorenz() {
    // Brute-force Gini over all pairs.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for _ in 0..20 {
        let n = rng.random_range(2..30);
        let x: Vec<f64> = (0..n).map(|_| rng.random_range(0.0..5.0)).collect();
        let w: Vec<f64> = (0..n).map(|_| rng.random_range(1.0..100.0)).collect();
        let sw: f64 = w.iter().sum();
        let mean = x.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() / sw;
        let mut s = 0.0;
        for i in 0..n {
            for j in 0..n {
                s += w[i] * w[j] * (x[i] - x[j]).abs();
            }
        }
        let want = s / (2.0 * sw * sw * mean);
        assert!((gini(&x, &w).unwrap() - want).abs() < 1e-12);
        let l = lorenz(&x, &w);
        assert_eq!(l.first(), Some(&(0.0, 0.0)));
        let last = l.last().unwrap();
        assert!((last.0 - 1.0).abs() < 1e-12 && (last.1 - 1.0).abs() < 1e-12);
        // Convex, below the diagonal.
        assert!(l.iter().all(|(p, v)| *v <= *p + 1e-12));
    }
    assert_eq!(gini(&[0.0, 0.0], &[1.0, 1.0]), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Greedy never picks a site with zero gain while gains remain, its gains do not grow, it
    /// stops early only when nothing is left to gain, and it reaches 1 − 1/e of the optimum.
    #[test]
    fn greedy_siting_properties(
        sets in prop::collection::vec(prop::collection::vec(0u32..30, 0..8), 1..14),
        weights in prop::collection::vec(0u64..20, 30),
        k in 1usize..5,
    ) {
        let picks = greedy(&sets, &weights, k);
        prop_assert!(picks.len() <= k);
        let mut covered = vec![false; weights.len()];
        for (i, (c, g)) in picks.iter().enumerate() {
            prop_assert!(*g > 0, "a pick with zero gain");
            let fresh: u64 = sets[*c as usize].iter().copied().collect::<std::collections::BTreeSet<_>>()
                .iter().filter(|p| !covered[**p as usize]).map(|p| weights[*p as usize]).sum();
            prop_assert_eq!(fresh, *g, "reported gain is the marginal gain");
            // It is the best marginal gain available at that step.
            for s in &sets {
                let other: u64 = s.iter().copied().collect::<std::collections::BTreeSet<_>>()
                    .iter().filter(|p| !covered[**p as usize]).map(|p| weights[*p as usize]).sum();
                prop_assert!(other <= *g);
            }
            if i > 0 {
                prop_assert!(picks[i - 1].1 >= *g);
            }
            for p in &sets[*c as usize] {
                covered[*p as usize] = true;
            }
        }
        if picks.len() < k {
            for s in &sets {
                let left: u64 = s.iter().filter(|p| !covered[**p as usize]).map(|p| weights[*p as usize]).sum();
                prop_assert_eq!(left, 0, "stopped while a gain remained");
            }
        }
        let got = covered_by(&sets, &weights, &picks.iter().map(|p| p.0).collect::<Vec<_>>());
        let best = exact(&sets, &weights, k).unwrap();
        let opt = covered_by(&sets, &weights, &best.iter().map(|p| p.0).collect::<Vec<_>>());
        prop_assert!(best.len() <= k);
        prop_assert!(opt >= got, "exact below greedy: {} < {}", opt, got);
        prop_assert!(got as f64 >= (1.0 - 1.0 / std::f64::consts::E) * opt as f64 - 1e-9);
        // Brute force on the optimum over all k-subsets (small instances).
        if sets.len() <= 10 {
            let n = sets.len();
            let mut brute = 0;
            for mask in 0u32..(1 << n) {
                if mask.count_ones() as usize <= k {
                    let pick: Vec<u32> = (0..n as u32).filter(|i| mask >> i & 1 == 1).collect();
                    brute = brute.max(covered_by(&sets, &weights, &pick));
                }
            }
            prop_assert_eq!(opt, brute);
        }
    }
}

fn u64_col(path: &Path, name: &str) -> Vec<Option<u64>> {
    read_batches(path)
        .iter()
        .flat_map(|b| {
            let c = b.column_by_name(name).unwrap_or_else(|| panic!("{name}"));
            let c = c.as_any().downcast_ref::<UInt64Array>().unwrap().clone();
            (0..c.len()).map(move |i| c.is_valid(i).then(|| c.value(i)))
        })
        .collect()
}

fn f64_col(path: &Path, name: &str) -> Vec<Option<f64>> {
    read_batches(path)
        .iter()
        .flat_map(|b| {
            let c = b.column_by_name(name).unwrap_or_else(|| panic!("{name}"));
            let c = c.as_any().downcast_ref::<Float64Array>().unwrap().clone();
            (0..c.len()).map(move |i| c.is_valid(i).then(|| c.value(i)))
        })
        .collect()
}

fn str_col(path: &Path, name: &str) -> Vec<Option<String>> {
    read_batches(path)
        .iter()
        .flat_map(|b| {
            let c = b.column_by_name(name).unwrap_or_else(|| panic!("{name}"));
            let c = c.as_any().downcast_ref::<StringArray>().unwrap().clone();
            (0..c.len()).map(move |i| c.is_valid(i).then(|| c.value(i).to_owned()))
        })
        .collect()
}

#[test]
fn sample_city_writes_coverage_outputs() {
    let dir = tempfile::tempdir().unwrap();
    shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::default()).unwrap();
    let job = Job::from_toml(dir.path().join("job.toml")).unwrap();
    assert!(job.coverage.is_some(), "the sample job asks for coverage");
    let out = dir.path().join("out");
    let (built, summary) = shequ::run::run(&job, &out, &shequ::NoProgress).unwrap();
    for f in [
        "coverage/grid.parquet",
        "coverage/grid.geojson",
        "coverage/community.parquet",
        "coverage/street.parquet",
        "coverage/siting.parquet",
        "coverage/blind_spots.parquet",
        "coverage/equity.parquet",
        "coverage/lorenz.parquet",
        "coverage/rules.parquet",
        "coverage/summary.md",
    ] {
        assert!(out.join(f).is_file(), "{f}");
        assert!(summary.written.files.iter().any(|x| x == f), "{f} listed");
    }
    // Research: no per-resident list.
    assert!(!out.join("coverage/residents.parquet").exists());
    let grid = out.join("coverage/grid.parquet");
    let n = built.model.grids.len();
    let k = 5;
    for m in [
        "clinic_all",
        "clinic_all_network",
        "rehabilitation_disabled",
    ] {
        let target = u64_col(&grid, &format!("{m}_target"));
        assert_eq!(target.len(), n);
        let w: Vec<Vec<Option<u64>>> = [300, 500, 1000]
            .iter()
            .map(|t| u64_col(&grid, &format!("{m}_within_{t}m")))
            .collect();
        // Coverage of all residents is low-sensitivity: published in every grid. Coverage of
        // the disabled is sensitive.
        let low = m.contains("_all");
        for g in 0..n {
            let chain: Vec<Option<u64>> = vec![w[0][g], w[1][g], w[2][g], target[g]];
            if low {
                assert!(chain.iter().all(Option::is_some), "{m} grid {g}: published");
            }
            // Published sensitive counts are 0 or at least k, nested, and their differences
            // 0 or at least k.
            for a in 0..4 {
                if let Some(x) = chain[a]
                    && !low
                {
                    assert!(x == 0 || x >= k, "{m} grid {g}: {x}");
                }
                for b in a + 1..4 {
                    if let (Some(x), Some(y)) = (chain[a], chain[b]) {
                        assert!(x <= y, "{m} grid {g}: nested");
                        assert!(
                            low || y - x == 0 || y - x >= k,
                            "{m} grid {g}: difference {}",
                            y - x
                        );
                    }
                }
            }
            let share = f64_col(&grid, &format!("{m}_share_300m"))[g];
            if let (Some(a), Some(t)) = (w[0][g], target[g]) {
                assert!((share.unwrap() - a as f64 / t as f64).abs() < 1e-12);
            } else {
                assert_eq!(share, None);
            }
        }
    }
    // Straight-line coverage is at least network coverage (walks are never shorter), where
    // both are published.
    let s = u64_col(&grid, "clinic_all_within_300m");
    let nw = u64_col(&grid, "clinic_all_network_within_300m");
    for g in 0..n {
        if let (Some(a), Some(b)) = (s[g], nw[g]) {
            assert!(a >= b);
        }
    }
    // Blind spots agree with the grid file.
    let blind = out.join("coverage/blind_spots.parquet");
    let ids = str_col(&blind, "grid_id");
    let measures = str_col(&blind, "measure");
    let shares = f64_col(&blind, "share_covered");
    let grid_ids = str_col(&grid, "grid_id");
    for ((id, m), sh) in ids.iter().zip(&measures).zip(&shares) {
        let g = grid_ids.iter().position(|x| x == id).unwrap();
        let b = read_batches(&grid);
        let col = b[0]
            .column_by_name(&format!("{}_blind_spot", m.as_ref().unwrap()))
            .unwrap()
            .as_any()
            .downcast_ref::<BooleanArray>()
            .unwrap()
            .clone();
        assert!(col.value(g));
        assert!(sh.unwrap() < 0.5);
    }
    // The rules and their sources are recorded.
    let rules = out.join("coverage/rules.parquet");
    assert!(
        str_col(&rules, "source")
            .iter()
            .all(|s| !s.as_ref().unwrap().is_empty())
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["coverage"]["rules_version"],
        "shequ-default-rules/2026.1"
    );
    assert_eq!(
        manifest["coverage"]["distances"],
        serde_json::json!(["straight", "network"])
    );
    // Siting: gains are positive, published ones ≥ k, greedy gains do not grow.
    let siting = out.join("coverage/siting.parquet");
    let methods = str_col(&siting, "method");
    let gains = u64_col(&siting, "gain");
    let greedy_gains: Vec<Option<u64>> = methods
        .iter()
        .zip(&gains)
        .filter(|(m, _)| m.as_deref() == Some("greedy"))
        .map(|(_, g)| *g)
        .collect();
    assert!(!greedy_gains.is_empty());
    for g in greedy_gains.iter().flatten() {
        assert!(*g >= k);
    }
    // The planted non-line path feature is reported, not dropped silently.
    let q = out.join("quality.parquet");
    let layers = str_col(&q, "layer");
    assert!(layers.iter().any(|l| l.as_deref() == Some("paths")));
}

#[test]
fn operational_run_writes_the_scoped_pseudonymous_reach_list() {
    let dir = tempfile::tempdir().unwrap();
    shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::default()).unwrap();
    let mut job = Job::from_toml(dir.path().join("job-grid-worker.toml")).unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "the grid worker's secret key 2026").unwrap();
    let mut p = PrivacyOptions::operational_grid("50010300100101");
    p.secret_file = Some(key);
    job.privacy = Some(p);
    let out = dir.path().join("op");
    let (built, _) = shequ::run::run(&job, &out, &shequ::NoProgress).unwrap();
    let path = out.join("coverage/residents.parquet");
    let grids = str_col(&path, "grid_id");
    assert!(!grids.is_empty());
    assert!(grids.iter().all(|g| g.as_deref() == Some("50010300100101")));
    let keys = str_col(&path, "resident_key");
    assert!(keys.iter().all(|k| k.as_ref().unwrap().len() == 24));
    // No plain resident id anywhere in the file.
    let bytes = std::fs::read(&path).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("R0000"));
    // Every resident of the grid in some target is listed once: all residents are a target.
    let in_grid = built
        .model
        .residents
        .iter()
        .filter(|r| {
            let h = &built.model.households[r.household as usize];
            h.placed
                && h.lineage
                    .grid
                    .map(|g| built.model.grids[g as usize].id.as_str())
                    == Some("50010300100101")
        })
        .count();
    assert_eq!(keys.len(), in_grid);
    // The worker's blind-spot households: in the grid, with target residents, beyond the
    // standard (300 m for clinics), and each listed household is in the residents list.
    let un = out.join("coverage/uncovered_households.parquet");
    let hk = str_col(&un, "household_key");
    let measures = str_col(&un, "measure");
    let near_m = f64_col(&un, "nearest_m");
    let res_households: std::collections::HashSet<Option<String>> =
        str_col(&path, "household_key").into_iter().collect();
    assert!(!hk.is_empty());
    for ((h, m), d) in hk.iter().zip(&measures).zip(&near_m) {
        assert!(res_households.contains(h));
        if m.as_deref() == Some("clinic_all") {
            assert!(d.is_none_or(|d| d > 300.0));
        }
    }
    assert!(
        str_col(&un, "grid_id")
            .iter()
            .all(|g| g.as_deref() == Some("50010300100101"))
    );
    // Covered agrees with the nearest distance and the standard.
    let near = f64_col(&path, "clinic_all_nearest_m");
    let b = read_batches(&path);
    let covered = b[0]
        .column_by_name("clinic_all_covered")
        .unwrap()
        .as_any()
        .downcast_ref::<BooleanArray>()
        .unwrap()
        .clone();
    for (i, d) in near.iter().enumerate() {
        if let Some(d) = d {
            assert_eq!(covered.value(i), *d <= 300.0);
        }
    }
}

#[test]
fn bad_coverage_options_are_job_errors() {
    let dir = tempfile::tempdir().unwrap();
    shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(4)).unwrap();
    let base = std::fs::read_to_string(dir.path().join("job.toml")).unwrap();
    let cases = [
        (
            "[[coverage.rules]]\nfacility = \"clinic\"\ntarget = \"martians\"\nthresholds_m = [300]\nstandard_m = 300\nsource = \"x\"\n",
            "unknown target",
        ),
        (
            "[[coverage.rules]]\nfacility = \"clinic\"\ntarget = \"all\"\nthresholds_m = [500, 300]\nstandard_m = 300\nsource = \"x\"\n",
            "ascending",
        ),
        (
            "[[coverage.rules]]\nfacility = \"clinic\"\ntarget = \"all\"\nthresholds_m = [300]\nstandard_m = 400\nsource = \"x\"\n",
            "standard_m",
        ),
    ];
    for (extra, want) in cases {
        let text = format!("{base}\n{extra}");
        let job = Job::from_toml_str(&text, dir.path()).unwrap();
        let err = shequ::run::run(&job, &dir.path().join("o"), &shequ::NoProgress).unwrap_err();
        assert!(
            matches!(err, shequ::Error::Job { .. }) && err.to_string().contains(want),
            "{want}: {err}"
        );
    }
    // Siting over the network without a network.
    let text = base.replace("[coverage.network]\npath = \"paths.geojson\"", "");
    let text = text.replace("k = 3 ", "k = 3\ndistance = \"network\" ");
    let job = Job::from_toml_str(&text, dir.path()).unwrap();
    let err = shequ::run::run(&job, &dir.path().join("o2"), &shequ::NoProgress).unwrap_err();
    assert!(
        err.to_string().contains("needs [coverage.network]"),
        "{err}"
    );
}

#[test]
fn accessibility_is_the_same_bit_for_bit_on_any_number_of_threads() {
    // Facility totals are sums of floats over many homes: the order they are added in must not
    // depend on how rayon splits the work, or two runs of one job would differ in the last bit.
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let homes: Vec<Option<Coord<f64>>> = random_points(&mut rng, 30_000, 5000.0)
        .into_iter()
        .map(Some)
        .collect();
    let clinics = random_points(&mut rng, 40, 5000.0);
    let demand: Vec<f64> = (0..homes.len())
        .map(|_| rng.random_range(0.0..7.0))
        .collect();
    let supply: Vec<f64> = (0..clinics.len())
        .map(|_| rng.random_range(1.0..50.0))
        .collect();
    let reach = StraightReach::new(&clinics, &homes);
    let decays = [
        Decay::None,
        Decay::Gaussian(400.0),
        Decay::Steps(vec![(500.0, 1.0), (1000.0, 0.5)]),
    ];
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a pool")
            .install(|| two_step_many(&reach, &demand, &supply, 1200.0, &decays))
    };
    let one = run(1);
    for threads in [2, 3, 7] {
        let many = run(threads);
        for (a, b) in one.iter().zip(&many) {
            let bits = |v: &shequ::analytics::coverage::fca::Scores| {
                v.iter().map(|x| x.map(f64::to_bits)).collect::<Vec<_>>()
            };
            assert_eq!(bits(a), bits(b), "{threads} threads");
        }
    }
}

/// A research run keeps each home's reach as per-unit sums only (`HomeDetail::Units`): every
/// output table is the same as from the full per-home detail, and the detail is really gone.
#[test]
fn per_unit_sums_give_the_same_outputs_as_per_home_detail() {
    use shequ::analytics::coverage::{Coverage, HomeDetail};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data-samples/sample-city");
    let job = Job::from_toml(dir.join("job.toml")).unwrap();
    let opts = job.coverage.clone().unwrap();
    let tables = |detail: HomeDetail| {
        let mut build = shequ::build(&job).unwrap();
        let policy = shequ::run::policy(&job).unwrap();
        let mut analysis = shequ::run::analyse(&job, &mut build, policy).unwrap();
        let cov = Coverage::compute_with(&build, &opts, analysis.special_needs.as_ref(), detail);
        let cov = cov.unwrap();
        let kept = cov.reached.iter().any(|k| !k.reached.counts.is_empty());
        analysis.coverage = Some(cov);
        let out = shequ::output::Out::memory();
        shequ::run::write_tables(&build, &analysis, &out).unwrap();
        (out.tables(), kept)
    };
    let (homes, kept_homes) = tables(HomeDetail::Homes);
    let (units, kept_units) = tables(HomeDetail::Units);
    assert!(
        kept_homes && !kept_units,
        "the per-home counts go with Units"
    );
    assert!(homes.contains_key("coverage/grid") && homes.contains_key("coverage/siting"));
    assert_eq!(
        homes.keys().collect::<Vec<_>>(),
        units.keys().collect::<Vec<_>>()
    );
    for (name, batch) in &homes {
        assert_eq!(batch, &units[name], "{name}");
    }
}
