//! A deterministic synthetic district for examples, tests and benchmarks.
//!
//! The default sample is one street of 7 communities and 28 grids in Chongqing's Yuzhong
//! district (around 106.55E, 29.56N), with building footprints, facilities, about 4,000
//! households and their residents (ages, sexes and special-needs labels in the national
//! proportions of `shared/domain.md`), plus deliberate data-quality problems of every kind the
//! quality report knows. Every number comes from a seeded ChaCha8 generator, so the same seed
//! gives byte-identical files.

use std::f64::consts::PI;
use std::fmt::Write as _;
use std::path::Path;

use ::geojson::JsonObject;
use geo::{Coord, Geometry, LineString, Point, Polygon};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde_json::json;

use crate::error::{Error, Result};
use crate::io::geojson;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleConfig {
    /// Seed of the generator.
    pub seed: u64,
    /// Number of households (about; buildings are filled whole).
    pub households: usize,
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

fn to_lonlat(c: Coord<f64>) -> Coord<f64> {
    let mx = 111_320.0 * (LAT0 * PI / 180.0).cos();
    Coord {
        x: LON0 + c.x / mx,
        y: LAT0 + c.y / 110_574.0,
    }
}

/// A cheap deterministic hash of integers, for jitter that both sides of an edge agree on.
fn hash(seed: u64, parts: &[i64]) -> f64 {
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
    for &p in parts {
        h ^= p as u64;
        h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 31;
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

struct Lattice {
    seed: u64,
    cell: f64,
    detail: usize,
}

impl Lattice {
    fn vertex(&self, i: i64, j: i64) -> Coord<f64> {
        let jx = (hash(self.seed, &[i, j, 1]) - 0.5) * 0.24 * self.cell;
        let jy = (hash(self.seed, &[i, j, 2]) - 0.5) * 0.24 * self.cell;
        Coord {
            x: i as f64 * self.cell + jx,
            y: j as f64 * self.cell + jy,
        }
    }

    /// Points from lattice vertex a to b (a included, b excluded), with wiggles that depend only
    /// on the unordered edge, so both neighbours get identical coordinates.
    fn edge(&self, a: (i64, i64), b: (i64, i64), out: &mut Vec<Coord<f64>>) {
        let (lo, hi, rev) = if a <= b { (a, b, false) } else { (b, a, true) };
        let (p, q) = (self.vertex(lo.0, lo.1), self.vertex(hi.0, hi.1));
        let (dx, dy) = (q.x - p.x, q.y - p.y);
        let len = (dx * dx + dy * dy).sqrt();
        let (nx, ny) = (-dy / len, dx / len);
        let mut pts = Vec::with_capacity(self.detail + 2);
        pts.push(p);
        for m in 1..=self.detail {
            let t = m as f64 / (self.detail + 1) as f64;
            let amp =
                (hash(self.seed, &[lo.0, lo.1, hi.0, hi.1, m as i64]) - 0.5) * 0.04 * self.cell;
            pts.push(Coord {
                x: p.x + dx * t + nx * amp,
                y: p.y + dy * t + ny * amp,
            });
        }
        pts.push(q);
        if rev {
            pts.reverse();
        }
        out.extend_from_slice(&pts[..pts.len() - 1]);
    }

    /// The counter-clockwise boundary of the block of cells [i0, i1) x [j0, j1).
    fn block(&self, i0: i64, i1: i64, j0: i64, j1: i64) -> Polygon<f64> {
        let mut ring = Vec::new();
        for i in i0..i1 {
            self.edge((i, j0), (i + 1, j0), &mut ring);
        }
        for j in j0..j1 {
            self.edge((i1, j), (i1, j + 1), &mut ring);
        }
        for i in (i0..i1).rev() {
            self.edge((i + 1, j1), (i, j1), &mut ring);
        }
        for j in (j0..j1).rev() {
            self.edge((i0, j + 1), (i0, j), &mut ring);
        }
        ring.push(ring[0]);
        Polygon::new(LineString(ring), vec![])
    }

    /// A point inside cell (i, j) at fractions (u, v) of its corners.
    fn inside(&self, i: i64, j: i64, u: f64, v: f64) -> Coord<f64> {
        let (a, b, c, d) = (
            self.vertex(i, j),
            self.vertex(i + 1, j),
            self.vertex(i + 1, j + 1),
            self.vertex(i, j + 1),
        );
        Coord {
            x: (1.0 - v) * ((1.0 - u) * a.x + u * b.x) + v * ((1.0 - u) * d.x + u * c.x),
            y: (1.0 - v) * ((1.0 - u) * a.y + u * b.y) + v * ((1.0 - u) * d.y + u * c.y),
        }
    }
}

fn rect(center: Coord<f64>, w: f64, h: f64) -> Polygon<f64> {
    let (x, y) = (center.x, center.y);
    Polygon::new(
        LineString(vec![
            Coord {
                x: x - w / 2.0,
                y: y - h / 2.0,
            },
            Coord {
                x: x + w / 2.0,
                y: y - h / 2.0,
            },
            Coord {
                x: x + w / 2.0,
                y: y + h / 2.0,
            },
            Coord {
                x: x - w / 2.0,
                y: y + h / 2.0,
            },
            Coord {
                x: x - w / 2.0,
                y: y - h / 2.0,
            },
        ]),
        vec![],
    )
}

fn lonlat_geom(g: Geometry<f64>) -> Geometry<f64> {
    geo::MapCoords::map_coords(&g, to_lonlat)
}

fn props(v: serde_json::Value) -> JsonObject {
    match v {
        serde_json::Value::Object(m) => m,
        _ => unreachable!("object literal"),
    }
}

/// Pushes the middle of the ring segment that is extreme in direction `dir` by `by` metres
/// along `dir`, creating an overlap (outward) or a gap (inward) with the neighbour.
fn push_edge(p: &mut Polygon<f64>, dir: Coord<f64>, by: f64) {
    let ring = &p.exterior().0;
    let mut best = (f64::MIN, 0);
    for k in 0..ring.len() - 1 {
        let m = (ring[k].x + ring[k + 1].x) * dir.x + (ring[k].y + ring[k + 1].y) * dir.y;
        if m > best.0 {
            best = (m, k);
        }
    }
    let k = best.1;
    let mid = Coord {
        x: (ring[k].x + ring[k + 1].x) / 2.0 + dir.x * by,
        y: (ring[k].y + ring[k + 1].y) / 2.0 + dir.y * by,
    };
    p.exterior_mut(|r| r.0.insert(k + 1, mid));
}

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "罗", "高",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀英", "桂英", "建华", "志强", "玉兰", "淑珍", "德明",
];
const COMMUNITY_NAMES: &[&str] = &[
    "七星岗",
    "解放碑",
    "较场口",
    "望龙门",
    "朝天门",
    "南纪门",
    "菜园坝",
    "两路口",
    "上清寺",
    "大溪沟",
    "化龙桥",
    "石油路",
];
const DISABILITY: &[&str] = &["视力", "听力", "言语", "肢体", "智力", "精神", "多重"];

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

/// One resident row (after the header) of household `hid`, resident number `rid`.
fn resident_row(rng: &mut ChaCha8Rng, out: &mut String, rid: usize, hid: &str, low_income: bool) {
    let age = draw_age(rng);
    let (by, bm, bd) = (
        2025 - age as i32,
        rng.random_range(1..=12u32),
        rng.random_range(1..=28u32),
    );
    let male = rng.random::<bool>();
    let seq = rng.random_range(0..500u32) * 2 + u32::from(male);
    let first17 = format!("500103{by:04}{bm:02}{bd:02}{seq:03}");
    let idno = format!("{first17}{}", id_check_char(&first17));
    let name = format!(
        "{}{}",
        SURNAMES[rng.random_range(0..SURNAMES.len())],
        GIVEN[rng.random_range(0..GIVEN.len())]
    );
    let birth = match rid % 4 {
        0 => format!("{by:04}{bm:02}{bd:02}"),
        1 => format!("{by:04}-{bm:02}-{bd:02}"),
        2 => format!("{by}/{bm}/{bd}"),
        _ => format!("{by}年{bm}月{bd}日"),
    };
    let phone = format!(
        "1{}{:09}",
        rng.random_range(3..=9u32),
        rng.random_range(0..1_000_000_000u64)
    );
    let kind = if rng.random::<f64>() < 0.82 {
        "户籍"
    } else {
        "流动"
    };
    let (dtype, dgrade) = if rng.random::<f64>() < 0.063 {
        (
            DISABILITY[rng.random_range(0..DISABILITY.len())].to_owned(),
            format!("{}级", rng.random_range(1..=4u32)),
        )
    } else {
        (String::new(), String::new())
    };
    let unemployed = (18..60).contains(&age) && rng.random::<f64>() < 0.05;
    let _ = writeln!(
        out,
        "R{rid:08},{hid},{name},{idno},{},{birth},{phone},{kind},{dtype},{dgrade},{},{}",
        if male { "男" } else { "女" },
        if low_income { "是" } else { "否" },
        if unemployed { "是" } else { "否" },
    );
}

/// Independent generator streams of one seed: the grids, household sizes and residents of each
/// chunk draw from their own, so they can be generated in parallel.
const STREAM_GRIDS: u64 = 1 << 40;
const STREAM_SIZES: u64 = 2 << 40;
const STREAM_RESIDENTS: u64 = 3 << 40;
/// Households per chunk of the resident roster.
const RESIDENT_CHUNK: usize = 8192;

/// Stream `n` of the generator seeded with `seed`.
fn stream(seed: u64, n: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(n);
    rng
}

/// A household roster row: id, building code (empty if located by coordinates), coordinates.
type HouseholdRow = (String, String, Option<Coord<f64>>);
/// One grid's buildings (geometries, properties) and households.
type GridPart = (
    Vec<Option<Geometry<f64>>>,
    Vec<JsonObject>,
    Vec<HouseholdRow>,
);

/// The running totals before each item: `[0, a, a + b, ...]`.
fn prefix_sums(items: impl Iterator<Item = usize>) -> Vec<usize> {
    items
        .scan(0usize, |acc, n| {
            let first = *acc;
            *acc += n;
            Some(first)
        })
        .collect()
}

/// Draws an age with about 18.7% aged 60+ and 13.5% aged 65+ (2020 census shares).
fn draw_age(rng: &mut ChaCha8Rng) -> u32 {
    let u: f64 = rng.random();
    if u < 0.18 {
        rng.random_range(0..15)
    } else if u < 0.18 + 0.633 {
        rng.random_range(15..60)
    } else if u < 0.18 + 0.633 + 0.052 {
        rng.random_range(60..65)
    } else if u < 0.18 + 0.633 + 0.052 + 0.11 {
        rng.random_range(65..80)
    } else {
        rng.random_range(80..98)
    }
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
    let gx = 2i64;
    let gy = (cfg.grids_per_community as i64 + 1) / 2;
    let cx = (cfg.communities as f64).sqrt().ceil() as i64;

    let mut counts = SampleCounts::default();
    let mut community_geoms = Vec::new();
    let mut community_props = Vec::new();
    let mut grid_cells: Vec<(String, i64, i64)> = Vec::new();
    let mut grid_polys: Vec<Polygon<f64>> = Vec::new();
    let mut grid_props = Vec::new();
    for c in 0..cfg.communities {
        let (a, b) = (c as i64 % cx, c as i64 / cx);
        let code = format!("{STREET}{:03}", c + 1);
        let name = format!("{}社区", COMMUNITY_NAMES[c % COMMUNITY_NAMES.len()]);
        let poly = lat.block(a * gx, (a + 1) * gx, b * gy, (b + 1) * gy);
        community_geoms.push(Some(lonlat_geom(Geometry::Polygon(poly))));
        community_props.push(props(
            json!({"code": code, "name": name, "street_code": STREET}),
        ));
        let mut k = 0;
        for j in 0..gy {
            for i in 0..gx {
                if k >= cfg.grids_per_community {
                    break;
                }
                k += 1;
                let (ci, cj) = (a * gx + i, b * gy + j);
                let gcode = format!("{code}{k:02}");
                grid_polys.push(lat.block(ci, ci + 1, cj, cj + 1));
                grid_props.push(props(json!({
                    "code": gcode, "name": format!("{name}第{k}网格"), "community_code": code
                })));
                grid_cells.push((gcode, ci, cj));
            }
        }
    }
    if cfg.plant_problems && grid_polys.len() >= 6 {
        // Overlap (and crossing into the next community): push grid 2's east edge 30 m east.
        push_edge(&mut grid_polys[1], Coord { x: 1.0, y: 0.0 }, 30.0);
        // Gap: pull grid 5's north edge 30 m south, away from its sibling above.
        push_edge(&mut grid_polys[4], Coord { x: 0.0, y: 1.0 }, -30.0);
    }
    counts.communities = community_geoms.len();
    counts.grids = grid_polys.len();
    let grid_geoms: Vec<Option<Geometry<f64>>> = grid_polys
        .iter()
        .map(|p| Some(lonlat_geom(Geometry::Polygon(p.clone()))))
        .collect();

    // Buildings and households: the number per grid is drawn first, then every grid is filled
    // in parallel from its own stream of the generator, so the output does not depend on the
    // number of threads.
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
    let first_household = prefix_sums(targets.iter().copied());
    let parts: Vec<GridPart> = grid_cells
        .par_iter()
        .enumerate()
        .map(|(g, (gcode, ci, cj))| {
            let mut rng = stream(cfg.seed, STREAM_GRIDS + g as u64);
            let target = targets[g];
            let (mut geoms, mut props_out, mut hh) = (Vec::new(), Vec::new(), Vec::new());
            let mut placed = 0;
            let mut b = 0;
            let side = ((target as f64 / 40.0).sqrt().ceil() as usize).max(1);
            while placed < target {
                let per = rng.random_range(12..80).min(target - placed);
                let slot = b % (side * side);
                let (u, v) = (
                    0.18 + 0.64 * ((slot % side) as f64 + 0.5) / side as f64,
                    0.18 + 0.64 * ((slot / side) as f64 + 0.5) / side as f64,
                );
                let center = lat.inside(*ci, *cj, u, v);
                let w = rng.random_range(10.0..16.0);
                let h = rng.random_range(18.0..(cell * 0.64 / side as f64).clamp(19.0, 45.0));
                let code = format!("{gcode}{:03}", b + 1);
                geoms.push(Some(lonlat_geom(Geometry::Polygon(rect(center, w, h)))));
                props_out.push(props(json!({
                    "code": code, "name": format!("{}栋", b + 1), "grid_code": gcode
                })));
                for _ in 0..per {
                    let hid = format!("H{:07}", first_household[g] + hh.len() + 1);
                    // About 3% of households (self-built houses) are located by coordinates
                    // only.
                    if rng.random::<f64>() < 0.03 {
                        let p = Coord {
                            x: center.x + rng.random_range(-w / 3.0..w / 3.0),
                            y: center.y + rng.random_range(-h / 3.0..h / 3.0),
                        };
                        hh.push((hid, String::new(), Some(to_lonlat(p))));
                    } else {
                        hh.push((hid, code.clone(), None));
                    }
                }
                placed += per;
                b += 1;
            }
            (geoms, props_out, hh)
        })
        .collect();
    let mut b_geoms = Vec::new();
    let mut b_props = Vec::new();
    let mut households: Vec<HouseholdRow> = Vec::with_capacity(cfg.households);
    for (g, p, h) in parts {
        b_geoms.extend(g);
        b_props.extend(p);
        households.extend(h);
    }

    // Residents, in chunks of households: household sizes first (each chunk from its own
    // stream), then, with every chunk's first resident number known, the residents themselves.
    let chunks: Vec<&[HouseholdRow]> = households.chunks(RESIDENT_CHUNK).collect();
    let sizes: Vec<Vec<(usize, bool)>> = chunks
        .par_iter()
        .enumerate()
        .map(|(k, chunk)| {
            let mut rng = stream(cfg.seed, STREAM_SIZES + k as u64);
            chunk
                .iter()
                .map(|_| {
                    let size = match rng.random::<f64>() {
                        u if u < 0.20 => 1,
                        u if u < 0.50 => 2,
                        u if u < 0.75 => 3,
                        u if u < 0.90 => 4,
                        u if u < 0.97 => 5,
                        _ => 6,
                    };
                    (size, rng.random::<f64>() < 0.03)
                })
                .collect()
        })
        .collect();
    let first_resident = prefix_sums(sizes.iter().map(|v| v.iter().map(|x| x.0).sum()));
    let resident_parts: Vec<String> = chunks
        .par_iter()
        .enumerate()
        .map(|(k, chunk)| {
            let mut rng = stream(cfg.seed, STREAM_RESIDENTS + k as u64);
            let mut out = String::with_capacity(chunk.len() * 260);
            let mut rid = first_resident[k];
            for ((hid, _, _), &(size, low_income)) in chunk.iter().zip(&sizes[k]) {
                for _ in 0..size {
                    rid += 1;
                    resident_row(&mut rng, &mut out, rid, hid, low_income);
                }
            }
            out
        })
        .collect();
    let mut residents = String::from(
        "居民编号,户编号,姓名,公民身份号码,性别,出生日期,联系电话,人员类型,残疾类别,残疾等级,是否低保,是否失业\n",
    );
    residents.reserve(resident_parts.iter().map(String::len).sum());
    for part in resident_parts {
        residents.push_str(&part);
    }

    // Facilities.
    let mut f_geoms = Vec::new();
    let mut f_props = Vec::new();
    let kinds = [
        ("clinic", "社区卫生服务站", 0.5, 8.0),
        ("elderly_daycare", "日间照料中心", 0.8, 30.0),
        ("rehabilitation", "康复中心", 0.3, 20.0),
        ("activity_centre", "党群服务中心", 1.0, 100.0),
    ];
    for (kind, cname, per_community, cap) in kinds {
        let n = ((cfg.communities as f64 * per_community).round() as usize).max(1);
        for k in 0..n {
            let &(_, ci, cj) = &grid_cells[rng.random_range(0..grid_cells.len())];
            let p = lat.inside(
                ci,
                cj,
                rng.random_range(0.2..0.8),
                rng.random_range(0.2..0.8),
            );
            f_geoms.push(Some(lonlat_geom(Geometry::Point(Point(p)))));
            f_props.push(props(json!({
                "code": format!("F-{kind}-{:02}", k + 1),
                "name": format!("{cname}{}", k + 1),
                "type": kind,
                "capacity": (cap * rng.random_range(0.6..1.6f64)).round(),
            })));
        }
    }

    let mut hh_csv = String::from("household_id,building_code,lon,lat\n");
    let hh_parts: Vec<String> = households
        .par_chunks(RESIDENT_CHUNK)
        .map(|chunk| {
            let mut csv = String::with_capacity(chunk.len() * 40);
            for (id, b, c) in chunk {
                let _ = match c {
                    Some(c) => writeln!(csv, "{id},{b},{:.7},{:.7}", c.x, c.y),
                    None => writeln!(csv, "{id},{b},,"),
                };
            }
            csv
        })
        .collect();
    for part in hh_parts {
        hh_csv.push_str(&part);
    }

    if cfg.plant_problems && !grid_cells.is_empty() {
        plant(
            &lat,
            &grid_cells,
            &mut b_geoms,
            &mut b_props,
            &mut hh_csv,
            &mut residents,
            &mut f_geoms,
            &mut f_props,
            &households,
        );
    }
    // Walking paths: streets along every cell edge and two diagonal footpaths across each
    // cell, meeting at its centre (they share the lattice's vertices, so they connect).
    let mut p_geoms = Vec::new();
    let mut p_props = Vec::new();
    let mut seen_edges = std::collections::BTreeSet::new();
    for (_, ci, cj) in &grid_cells {
        let (i, j) = (*ci, *cj);
        for (a, b) in [
            ((i, j), (i + 1, j)),
            ((i + 1, j), (i + 1, j + 1)),
            ((i, j + 1), (i + 1, j + 1)),
            ((i, j), (i, j + 1)),
        ] {
            if seen_edges.insert((a, b)) {
                let mut pts = Vec::new();
                lat.edge(a, b, &mut pts);
                pts.push(lat.vertex(b.0, b.1));
                p_geoms.push(Some(lonlat_geom(Geometry::LineString(LineString(pts)))));
                p_props.push(props(json!({"kind": "street"})));
            }
        }
        let centre = lat.inside(i, j, 0.5, 0.5);
        for (a, b) in [((i, j), (i + 1, j + 1)), ((i + 1, j), (i, j + 1))] {
            let line = vec![lat.vertex(a.0, a.1), centre, lat.vertex(b.0, b.1)];
            p_geoms.push(Some(lonlat_geom(Geometry::LineString(LineString(line)))));
            p_props.push(props(json!({"kind": "footway"})));
        }
    }
    if cfg.plant_problems && !grid_cells.is_empty() {
        // A point is not a path: reported, not used.
        let (_, ci, cj) = &grid_cells[0];
        p_geoms.push(Some(lonlat_geom(Geometry::Point(Point(
            lat.inside(*ci, *cj, 0.3, 0.3),
        )))));
        p_props.push(props(json!({"kind": "planted: not a line"})));
    }
    counts.paths = p_geoms.len();
    counts.buildings = b_geoms.len();
    counts.households = hh_csv.lines().count() - 1;
    counts.residents = residents.lines().count() - 1;
    counts.facilities = f_geoms.len();

    geojson::write(
        &dir.join("communities.geojson"),
        pairs(&community_geoms, &community_props),
        None,
        7,
    )?;
    geojson::write(
        &dir.join("grids.geojson"),
        pairs(&grid_geoms, &grid_props),
        None,
        7,
    )?;
    geojson::write(
        &dir.join("buildings.geojson"),
        pairs(&b_geoms, &b_props),
        None,
        7,
    )?;
    geojson::write(
        &dir.join("facilities.geojson"),
        pairs(&f_geoms, &f_props),
        None,
        7,
    )?;
    geojson::write(
        &dir.join("paths.geojson"),
        pairs(&p_geoms, &p_props),
        None,
        7,
    )?;
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(|e| Error::io(&p, e))
    };
    write("households.csv", hh_csv.as_bytes())?;
    // GB18030 has no state across characters: lines encode independently, in parallel.
    let lines: Vec<&str> = residents.split_inclusive('\n').collect();
    let gb: Vec<Vec<u8>> = lines
        .par_chunks(RESIDENT_CHUNK)
        .map(|chunk| encoding_rs::GB18030.encode(&chunk.concat()).0.into_owned())
        .collect();
    write("residents.csv", &gb.concat())?;
    write("job.toml", SAMPLE_JOB.as_bytes())?;
    if let Some((g, _, _)) = grid_cells.first() {
        write("job-grid-worker.toml", grid_worker_job(g).as_bytes())?;
    }
    write("job-dp.toml", dp_job().as_bytes())?;
    Ok(counts)
}

/// The job file written beside the sample.
pub const SAMPLE_JOB: &str = r#"# shequ job for the synthetic sample district (see README.md beside this file).
name = "sample district (synthetic, Yuzhong, Chongqing)"

[options]
working_crs = "auto"        # CGCS2000 3-degree Gauss-Kruger zone nearest the data
output_crs = "EPSG:4326"
parent_rule = "declared"    # declared parent codes win over location; conflicts are reported
region = "china"
area_tolerance_m2 = 1.0

# No street polygons: derive the street by dissolving communities by their street code.
[layers.streets]
derive = true

[layers.communities]
path = "communities.geojson"
id = "code"
name = "name"
parent = "street_code"

[layers.grids]
path = "grids.geojson"
id = "code"
name = "name"
parent = "community_code"

[layers.buildings]
path = "buildings.geojson"
id = "code"
name = "name"
parent = "grid_code"

[layers.households]
path = "households.csv"
encoding = "utf-8"
id = "household_id"
building = "building_code"
lon = "lon"
lat = "lat"

[layers.residents]
path = "residents.csv"
encoding = "gb18030"
id = "居民编号"
household = "户编号"
name = "姓名"                  # direct identifiers: never written unless an operational
id_number = "公民身份号码"      # run sets privacy.plain_identifiers
phone = "联系电话"
sex = "性别"
columns = ["出生日期", "人员类型", "残疾类别", "残疾等级", "是否低保", "是否失业"]

[layers.facilities]
path = "facilities.geojson"
id = "code"
name = "name"
kind = "type"
capacity = "capacity"

# Research output: aggregates only, counts below k suppressed (with complementary
# suppression), finest geometry the building. For a grid worker's named list use
# output = "operational" with grid = "<grid code>" and a secret in SHEQU_SECRET.
[privacy]
output = "research"
k = 5

# Special-needs populations per building, grid, community and street (special_needs/).
[special_needs]
reference_date = "2026-01-01"    # ages are computed at this date

[special_needs.fields]            # roster columns behind the default categories
birth_date = "出生日期"
disability_type = "残疾类别"
disability_grade = "残疾等级"
minimum_living_allowance = "是否低保"
unemployed = "是否失业"

# Service coverage (coverage/): the default rules (GB 50180-2018 life circles: 300/500/1000 m),
# in straight lines and over the walking network, 2SFCA accessibility, blind spots, and where
# three new elderly day-care centres would newly reach the most empty-nest elderly.
[coverage]
blind_spot_below = 0.5           # a grid is a blind spot below 50% covered at the standard

[coverage.network]
path = "paths.geojson"           # streets and footways; network distances as well

[coverage.siting]
rule = "elderly_daycare_empty_nest"
k = 3                            # candidates: the buildings' points

# map.html: the grids coloured by a coverage share (switchable), facilities, blind spots and
# the siting picks, in one HTML file that opens offline (also: `shequ map OUT_DIR`).
[output]
map = true
"#;

/// The sample job for the worker of one grid: an operational run whose named lists (and
/// `coverage/residents.parquet`) hold that grid's residents under keyed pseudonyms. The run
/// needs a secret in `SHEQU_SECRET`.
///
/// # Examples
/// ```
/// let text = shequ::sample::grid_worker_job("50010300100101");
/// let job = shequ::Job::from_toml_str(&text, ".")?;
/// assert_eq!(job.privacy.unwrap().grid.as_deref(), Some("50010300100101"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Panics
/// Never: the sample job it rewrites is shequ's own (a test checks it).
pub fn grid_worker_job(grid: &str) -> String {
    with_privacy(
        "the worker of one grid of the synthetic sample district",
        &format!(
            "[privacy]\noutput = \"operational\"\ngrid = \"{grid}\"\nsecret_env = \"SHEQU_SECRET\"\n"
        ),
    )
}

/// The sample job with its title's subject and its `[privacy]` section replaced.
///
/// # Panics
/// If the sample job lost its research privacy section (a test checks it has it).
fn with_privacy(subject: &str, privacy: &str) -> String {
    let research = "[privacy]\noutput = \"research\"\nk = 5\n";
    assert!(
        SAMPLE_JOB.contains(research),
        "the sample job's privacy section"
    );
    SAMPLE_JOB
        .replace(
            "# shequ job for the synthetic sample district",
            &format!("# shequ job for {subject}"),
        )
        .replace(research, privacy)
}

/// The sample job as a differentially private release (`output = "research-dp"`, ρ = 1, the
/// noise key in `SHEQU_SECRET`).
///
/// # Examples
/// ```
/// let job = shequ::Job::from_toml_str(&shequ::sample::dp_job(), ".")?;
/// let p = job.privacy.unwrap();
/// assert_eq!(p.output, shequ::privacy::OutputKind::ResearchDp);
/// assert_eq!(p.dp.unwrap().rho, Some(1.0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Panics
/// Never: the sample job it rewrites is shequ's own (a test checks it).
pub fn dp_job() -> String {
    with_privacy(
        "a differentially private release of the synthetic sample district",
        "[privacy]\noutput = \"research-dp\"\nsecret_env = \"SHEQU_SECRET\"    # the noise key: \
         the same key and release label give the same release\n\n[privacy.dp]\n\
         mechanism = \"gaussian\"         # discrete Gaussian, zero-concentrated DP\n\
         rho = 1.0                      # the budget, split over levels and tables\n\
         release = \"sample-1\"\n",
    )
    .replace(
        "# Research output: aggregates only, counts below k suppressed (with complementary\n\
         # suppression), finest geometry the building. For a grid worker's named list use\n\
         # output = \"operational\" with grid = \"<grid code>\" and a secret in SHEQU_SECRET.\n",
        "# A differentially private release: every count of every level with noise, adding \
         up\n# across levels; the budget and its split are in manifest.json (docs/privacy.md).\n",
    )
}

/// Appends one deliberate problem of each kind the quality report knows.
#[allow(clippy::too_many_arguments)]
fn plant(
    lat: &Lattice,
    grid_cells: &[(String, i64, i64)],
    b_geoms: &mut Vec<Option<Geometry<f64>>>,
    b_props: &mut Vec<JsonObject>,
    hh: &mut String,
    residents: &mut String,
    f_geoms: &mut Vec<Option<Geometry<f64>>>,
    f_props: &mut Vec<JsonObject>,
    households: &[(String, String, Option<Coord<f64>>)],
) {
    let (g0, ci, cj) = &grid_cells[0];
    let (g1, _, _) = &grid_cells[1];
    let first_code = b_props[0]["code"].as_str().unwrap_or_default().to_owned();
    let mut building = |geom: Geometry<f64>, code: &str, grid: &str| {
        b_geoms.push(Some(lonlat_geom(geom)));
        b_props.push(props(
            json!({"code": code, "name": "planted", "grid_code": grid}),
        ));
    };
    // invalid_geometry: a bow-tie footprint.
    let c = lat.inside(*ci, *cj, 0.1, 0.1);
    let bow = Polygon::new(
        LineString(vec![
            c,
            Coord {
                x: c.x + 10.0,
                y: c.y + 10.0,
            },
            Coord {
                x: c.x + 10.0,
                y: c.y,
            },
            Coord {
                x: c.x,
                y: c.y + 10.0,
            },
            c,
        ]),
        vec![],
    );
    building(Geometry::Polygon(bow), "PLANTED-BOWTIE", g0);
    // duplicate_id: the first building's code again, elsewhere in its grid.
    building(
        Geometry::Polygon(rect(lat.inside(*ci, *cj, 0.9, 0.1), 8.0, 8.0)),
        &first_code,
        g0,
    );
    // unknown_parent (placed by location): a grid code that does not exist.
    building(
        Geometry::Polygon(rect(lat.inside(*ci, *cj, 0.1, 0.9), 8.0, 8.0)),
        "PLANTED-UNKNOWN-GRID",
        "99999999999999",
    );
    // parent_conflict: lies in grid 0 but declares grid 1.
    building(
        Geometry::Polygon(rect(lat.inside(*ci, *cj, 0.9, 0.9), 8.0, 8.0)),
        "PLANTED-CONFLICT",
        g1,
    );
    // crosses_parent: a footprint straddling the edge between grid 0 and grid 1.
    let edge_mid = lat.inside(*ci, *cj, 1.0, 0.5);
    building(
        Geometry::Polygon(rect(edge_mid, 30.0, 8.0)),
        "PLANTED-STRADDLE",
        g0,
    );
    // outside_parent: 3 km south of the district.
    let far = lat.inside(*ci, *cj, 0.5, 0.5);
    building(
        Geometry::Polygon(rect(
            Coord {
                x: far.x,
                y: far.y - 3000.0,
            },
            10.0,
            10.0,
        )),
        "PLANTED-OUTSIDE",
        g0,
    );
    // missing_geometry: a building without geometry.
    b_geoms.push(None);
    b_props.push(props(
        json!({"code": "PLANTED-NOGEOM", "name": "planted", "grid_code": g0}),
    ));

    let good = to_lonlat(lat.inside(*ci, *cj, 0.5, 0.5));
    let lines = [
        // unlocated: no building, no coordinates.
        "HX000001,,,".to_owned(),
        // out_of_range: an extra digit in the longitude.
        format!("HX000002,,{:.7},{:.7}", good.x * 10.0, good.y),
        // swapped_lat_lon.
        format!("HX000003,,{:.7},{:.7}", good.y, good.x),
        // unreadable_row: a field missing.
        "HX000004,".to_owned(),
        // bad_value: coordinates that are not numbers.
        "HX000005,,abc,def".to_owned(),
        // unknown_reference: a building that does not exist, no coordinates.
        "HX000006,NO-SUCH-BUILDING,,".to_owned(),
        // missing_id.
        format!(",{},,", households[0].1),
        // duplicate_id: the first household again.
        format!("{},{},,", households[0].0, households[0].1),
        // outside_parent: a valid coordinate 3 km outside the district.
        {
            let p = to_lonlat(Coord {
                x: far.x,
                y: far.y - 3000.0,
            });
            format!("HX000007,,{:.7},{:.7}", p.x, p.y)
        },
    ];
    for l in lines {
        hh.push_str(&l);
        hh.push('\n');
    }
    // Residents of an unknown household and a repeated resident id.
    let first_resident = residents.lines().nth(1).unwrap_or_default().to_owned();
    let _ = writeln!(
        residents,
        "RX0000001,H9999999,测试,,男,19800101,,户籍,,,否,否"
    );
    residents.push_str(&first_resident);
    residents.push('\n');
    // A resident whose ID number has a wrong check character (kept, reported masked).
    let first17 = "50010319800101002";
    let right = id_check_char(first17);
    let wrong = if right == '0' { '1' } else { '0' };
    let _ = writeln!(
        residents,
        "RX0000002,H0000001,测试乙,{first17}{wrong},女,19800101,,户籍,,,否,否"
    );
    // Facility problems: bad capacity (kept), no geometry (rejected).
    let p = lat.inside(*ci, *cj, 0.4, 0.6);
    f_geoms.push(Some(lonlat_geom(Geometry::Point(Point(p)))));
    f_props.push(props(
        json!({"code": "F-PLANTED-CAP", "name": "planted", "type": "clinic", "capacity": "many"}),
    ));
    f_geoms.push(None);
    f_props.push(props(
        json!({"code": "F-PLANTED-NOGEOM", "name": "planted", "type": "clinic", "capacity": 5}),
    ));
}

/// Geometries and their properties, as [`geojson::write`] takes them.
fn pairs<'a>(
    geoms: &'a [Option<Geometry<f64>>],
    props: &'a [JsonObject],
) -> impl Iterator<Item = (Option<&'a Geometry<f64>>, JsonObject)> + 'a {
    geoms.iter().map(Option::as_ref).zip(props.iter().cloned())
}
