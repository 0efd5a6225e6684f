//! A deterministic synthetic district for examples, tests and benchmarks.
//!
//! The default sample is one street of 7 communities and 28 grids in Chongqing's Yuzhong
//! district (around 106.55E, 29.56N), with building footprints, facilities, about 4,000
//! households and their residents (ages, sexes and special-needs labels in the national
//! proportions of `shared/domain.md`), plus deliberate data-quality problems of every kind the
//! quality report knows. Every number comes from a seeded ChaCha8 generator, so the same seed
//! gives byte-identical files.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::io::geojson;

mod events;
mod jobs;
mod lattice;
mod layers;
mod people;
mod plant;
mod registers;

pub use jobs::{SAMPLE_JOB, dp_job, grid_worker_job};
use lattice::Lattice;
use plant::{pairs, plant, planted_residents};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleConfig {
    /// Seed of the generator.
    pub seed: u64,
    /// Number of households (about; buildings are filled whole).
    pub households: usize,
    /// Number of streets; the communities are dealt to them in order, in contiguous runs.
    pub streets: usize,
    /// Number of communities.
    pub communities: usize,
    /// Grids per community (arranged as a 2-wide block).
    pub grids_per_community: usize,
    /// Extra vertices per lattice edge: 0 gives simple quadrilaterals, 30 gives boundaries of a
    /// hundred-plus vertices that wiggle like surveyed ones.
    pub edge_detail: usize,
    /// Plant data-quality problems of every kind.
    pub plant_problems: bool,
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig {
            seed: 2024,
            households: 4000,
            streets: 1,
            communities: 7,
            grids_per_community: 4,
            edge_detail: 6,
            plant_problems: true,
        }
    }
}

impl SampleConfig {
    /// A tiny district (one community of four grids, 200 households) for doctests.
    pub fn small(seed: u64) -> Self {
        SampleConfig {
            seed,
            households: 200,
            streets: 1,
            communities: 1,
            grids_per_community: 4,
            edge_detail: 2,
            plant_problems: false,
        }
    }
}

/// What [`write_sample`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SampleCounts {
    /// Communities.
    pub communities: usize,
    /// Grids.
    pub grids: usize,
    /// Building features (including planted problems).
    pub buildings: usize,
    /// Household rows.
    pub households: usize,
    /// Resident rows.
    pub residents: usize,
    /// Facility features.
    pub facilities: usize,
    /// Path features (walking network).
    pub paths: usize,
}

const LON0: f64 = 106.53;
const LAT0: f64 = 29.55;
const STREET: &str = "500103001";
/// The reference date ages are computed at.
pub const REFERENCE_DATE: &str = "2026-01-01";

/// GB 11643 check character for the first 17 digits of a resident ID number.
///
/// # Examples
/// ```
/// // The standard's example number 11010519491231002X.
/// assert_eq!(shequ::sample::id_check_char("11010519491231002"), 'X');
/// ```
///
/// # Panics
/// If `first17` is not 17 ASCII digits.
pub fn id_check_char(first17: &str) -> char {
    crate::privacy::id_check_char(first17).expect("17 digits")
}
/// Writes the sample district into `dir`: GeoJSON layers, `households.csv` (UTF-8),
/// `residents.csv` (GB18030 with Chinese headers, as exported on Chinese Windows) and
/// `job.toml`. Streets are not written: the job derives them by dissolving communities.
///
/// # Examples
/// ```
/// let dir = tempfile::tempdir()?;
/// let counts = shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(7))?;
/// assert_eq!(counts.grids, 4);
/// assert!(dir.path().join("job.toml").exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Io`] if the directory cannot be written.
pub fn write_sample(dir: &Path, cfg: &SampleConfig) -> Result<SampleCounts> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let n_grids = (cfg.communities * cfg.grids_per_community).max(1);
    let hh_per_grid = (cfg.households as f64 / n_grids as f64).max(1.0);
    // About 30 m² of block per household at these densities, so cells of 150–600 m.
    let cell = (hh_per_grid * 220.0).sqrt().clamp(120.0, 800.0);
    let lat = Lattice {
        seed: cfg.seed,
        cell,
        detail: cfg.edge_detail,
    };
    let (communities, grids, grid_cells) = layers::areas(cfg, &lat);
    // Each grid gets a share of the households in proportion to a weight in 0.8–1.2, so every
    // grid is near the mean (the last one is not left with the rounding).
    let weights: Vec<f64> = (0..grid_cells.len())
        .map(|_| rng.random_range(0.8..1.2))
        .collect();
    let weight_sum: f64 = weights.iter().sum();
    let mut targets: Vec<usize> = weights
        .iter()
        .map(|w| (cfg.households as f64 * w / weight_sum).floor() as usize)
        .collect();
    let short = cfg.households - targets.iter().sum::<usize>().min(cfg.households);
    for t in targets.iter_mut().take(short) {
        *t += 1;
    }
    let (mut b_geoms, mut b_props) = (Vec::new(), Vec::new());
    let mut households = Vec::with_capacity(cfg.households);
    for (g, p, h) in people::grid_parts(cfg, &lat, &grid_cells, &targets) {
        b_geoms.extend(g);
        b_props.extend(p);
        households.extend(h);
    }
    let (mut f_geoms, mut f_props) = layers::facilities(cfg, &lat, &grid_cells, &mut rng);
    let mut hh_csv = people::households_csv(&households);
    let planted = cfg.plant_problems && !grid_cells.is_empty();
    // Cases happen at the buildings as generated, not at the planted problem ones.
    let clean_buildings = b_geoms.len();
    if planted {
        plant(
            &lat,
            &grid_cells,
            &mut b_geoms,
            &mut b_props,
            &mut hh_csv,
            &mut f_geoms,
            &mut f_props,
            &households,
        );
    }
    let paths = layers::paths(cfg, &lat, &grid_cells);
    let counts = SampleCounts {
        communities: communities.0.len(),
        grids: grids.0.len(),
        buildings: b_geoms.len(),
        households: hh_csv.lines().count() - 1,
        residents: 0,
        facilities: f_geoms.len(),
        paths: paths.0.len(),
    };
    let hh_community = planted.then(|| household_communities(&households, &b_props, &communities));
    let buildings = (b_geoms, b_props);
    for (name, (geoms, props)) in [
        ("communities", &communities),
        ("grids", &grids),
        ("buildings", &buildings),
        ("facilities", &(f_geoms, f_props)),
        ("paths", &paths),
    ] {
        let path = dir.join(format!("{name}.geojson"));
        geojson::write(&path, pairs(geoms, props), None, 7)?;
    }
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(|e| Error::io(&p, e))
    };
    write("households.csv", hh_csv.as_bytes())?;
    drop(hh_csv);
    let residents =
        people::write_residents(&dir.join("residents.csv"), cfg.seed, &households, |first| {
            if planted {
                planted_residents(first)
            } else {
                String::new()
            }
        })?;
    // The sample city (planted problems) has departmental registers too, and its jobs use them.
    let (section, loop_section) = match &hh_community {
        Some(hc) => {
            let text = std::fs::read(dir.join("residents.csv")).map_err(|e| Error::io(dir, e))?;
            let (text, _, _) = encoding_rs::GB18030.decode(&text);
            registers::write(dir, &text, hc)?;
            let n = clean_buildings;
            let buildings = building_points(&buildings.0[..n], &buildings.1[..n]);
            let grid_of = household_grids(&households, &buildings);
            events::write(dir, cfg.seed, &buildings, &text, &grid_of, 1.5)?;
            (registers::JOB_SECTION, events::JOB_SECTION)
        }
        None => ("", ""),
    };
    write(
        "job.toml",
        format!("{SAMPLE_JOB}{section}{loop_section}").as_bytes(),
    )?;
    if let Some((g, _, _)) = grid_cells.first() {
        write(
            "job-grid-worker.toml",
            format!("{}{section}{loop_section}", grid_worker_job(g)).as_bytes(),
        )?;
    }
    write("job-dp.toml", format!("{}{section}", dp_job()).as_bytes())?;
    Ok(SampleCounts {
        residents,
        ..counts
    })
}

/// Each building's code, grid code and geometry (lon/lat).
fn building_points(
    geoms: &[Option<::geo::Geometry<f64>>],
    props: &[::geojson::JsonObject],
) -> Vec<(String, String, Option<::geo::Geometry<f64>>)> {
    let text = |o: &::geojson::JsonObject, k: &str| {
        o.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    geoms
        .iter()
        .zip(props)
        .map(|(g, p)| (text(p, "code"), text(p, "grid_code"), g.clone()))
        .collect()
}

/// Each household's grid code, through its building (households located by coordinates only
/// have none).
fn household_grids(
    households: &[people::HouseholdRow],
    buildings: &[(String, String, Option<::geo::Geometry<f64>>)],
) -> std::collections::HashMap<String, String> {
    let grid_of: std::collections::HashMap<&str, &str> = buildings
        .iter()
        .map(|(c, g, _)| (c.as_str(), g.as_str()))
        .collect();
    households
        .iter()
        .filter_map(|(h, b, _)| Some((h.clone(), (*grid_of.get(b.as_str())?).to_owned())))
        .collect()
}

/// Each household's community name, through its building's grid (households located by
/// coordinates only have none).
fn household_communities(
    households: &[people::HouseholdRow],
    buildings: &[::geojson::JsonObject],
    communities: &layers::Features,
) -> std::collections::HashMap<String, String> {
    let text =
        |o: &::geojson::JsonObject, k: &str| o.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let grid_of: std::collections::HashMap<String, String> = buildings
        .iter()
        .filter_map(|b| Some((text(b, "code")?, text(b, "grid_code")?)))
        .collect();
    let name_of: std::collections::HashMap<String, String> = communities
        .1
        .iter()
        .filter_map(|c| Some((text(c, "code")?, text(c, "name")?)))
        .collect();
    households
        .iter()
        .filter_map(|(hid, building, _)| {
            let grid = grid_of.get(building)?;
            let community = name_of.get(&grid[..grid.len().saturating_sub(2)])?;
            Some((hid.clone(), community.clone()))
        })
        .collect()
}
