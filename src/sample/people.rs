//! The people of the sample: households in buildings (a few located by coordinates only),
//! household sizes, and residents with ages, sexes, ID numbers and special-needs values in the
//! national proportions, each chunk from its own stream of the generator. The roster is
//! written chunk by chunk, so memory does not grow with the number of residents.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use ::geojson::JsonObject;
use geo::{Coord, Geometry};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde_json::json;

use super::SampleConfig;
use super::id_check_char;
use super::lattice::{Lattice, lonlat_geom, props, rect, to_lonlat};
use crate::error::{Error, Result};

pub(super) const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "罗", "高",
];
pub(super) const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀英", "桂英", "建华", "志强", "玉兰", "淑珍", "德明",
];
pub(super) const DISABILITY: &[&str] = &["视力", "听力", "言语", "肢体", "智力", "精神", "多重"];

/// One resident row (after the header) of household `hid`, resident number `rid`.
pub(super) fn resident_row(
    rng: &mut ChaCha8Rng,
    out: &mut String,
    rid: usize,
    hid: &str,
    low_income: bool,
) {
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
pub(super) const STREAM_GRIDS: u64 = 1 << 40;
pub(super) const STREAM_SIZES: u64 = 2 << 40;
pub(super) const STREAM_RESIDENTS: u64 = 3 << 40;
/// Households per chunk of the resident roster.
pub(super) const RESIDENT_CHUNK: usize = 8192;

/// Stream `n` of the generator seeded with `seed`.
pub(super) fn stream(seed: u64, n: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(n);
    rng
}

/// A household roster row: id, building code (empty if located by coordinates), coordinates.
pub(super) type HouseholdRow = (String, String, Option<Coord<f64>>);
/// One grid's buildings (geometries, properties) and households.
pub(super) type GridPart = (
    Vec<Option<Geometry<f64>>>,
    Vec<JsonObject>,
    Vec<HouseholdRow>,
);

/// The running totals before each item: `[0, a, a + b, ...]`.
pub(super) fn prefix_sums(items: impl Iterator<Item = usize>) -> Vec<usize> {
    items
        .scan(0usize, |acc, n| {
            let first = *acc;
            *acc += n;
            Some(first)
        })
        .collect()
}

/// Draws an age with about 18.7% aged 60+ and 13.5% aged 65+ (2020 census shares).
pub(super) fn draw_age(rng: &mut ChaCha8Rng) -> u32 {
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

/// The roster's header.
const RESIDENTS_HEADER: &str = "居民编号,户编号,姓名,公民身份号码,性别,出生日期,联系电话,人员类型,残疾类别,残疾等级,是否低保,是否失业\n";
/// Household chunks generated (and held) at once while the roster is written.
const CHUNKS_AT_ONCE: usize = 64;

/// Every grid's buildings and households, each grid from its own stream of the generator
/// (so the output does not depend on the number of threads); `targets[g]` households in
/// grid `g`, numbered on from `first_household[g]`.
pub(super) fn grid_parts(
    cfg: &SampleConfig,
    lat: &Lattice,
    grid_cells: &[(String, i64, i64)],
    targets: &[usize],
) -> Vec<GridPart> {
    let first_household = prefix_sums(targets.iter().copied());
    grid_cells
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
                let h = rng.random_range(18.0..(lat.cell * 0.64 / side as f64).clamp(19.0, 45.0));
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
        .collect()
}

/// Per chunk of households: each household's size and whether it is low-income.
fn household_sizes(seed: u64, chunks: &[&[HouseholdRow]]) -> Vec<Vec<(usize, bool)>> {
    chunks
        .par_iter()
        .enumerate()
        .map(|(k, chunk)| {
            let mut rng = stream(seed, STREAM_SIZES + k as u64);
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
        .collect()
}

/// Writes `residents.csv` (GB18030, Chinese headers) for the households, then the `extra`
/// rows (planted problems, given the first resident's row). Chunks of households are
/// generated in parallel, `CHUNKS_AT_ONCE` at a time, encoded and written in order: GB18030
/// has no state across characters, so the file is the same as one encoded whole. Returns the
/// number of rows.
pub(super) fn write_residents(
    path: &Path,
    seed: u64,
    households: &[HouseholdRow],
    extra: impl FnOnce(&str) -> String,
) -> Result<usize> {
    let io = |e| Error::io(path, e);
    let file = std::fs::File::create(path).map_err(io)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let encode = |s: &str| encoding_rs::GB18030.encode(s).0.into_owned();
    out.write_all(&encode(RESIDENTS_HEADER)).map_err(io)?;
    let chunks: Vec<&[HouseholdRow]> = households.chunks(RESIDENT_CHUNK).collect();
    let sizes = household_sizes(seed, &chunks);
    let first_resident = prefix_sums(sizes.iter().map(|v| v.iter().map(|x| x.0).sum()));
    let mut first_row = String::new();
    for batch in (0..chunks.len()).collect::<Vec<_>>().chunks(CHUNKS_AT_ONCE) {
        let parts: Vec<(String, Vec<u8>)> = batch
            .par_iter()
            .map(|&k| {
                let mut rng = stream(seed, STREAM_RESIDENTS + k as u64);
                let mut text = String::with_capacity(chunks[k].len() * 260);
                let mut rid = first_resident[k];
                for ((hid, _, _), &(size, low_income)) in chunks[k].iter().zip(&sizes[k]) {
                    for _ in 0..size {
                        rid += 1;
                        resident_row(&mut rng, &mut text, rid, hid, low_income);
                    }
                }
                let bytes = encode(&text);
                let first = if k == 0 {
                    text.lines().next().unwrap_or_default().to_owned()
                } else {
                    String::new()
                };
                (first, bytes)
            })
            .collect();
        for (first, bytes) in parts {
            if first_row.is_empty() {
                first_row = first;
            }
            out.write_all(&bytes).map_err(io)?;
        }
    }
    let extra = extra(&first_row);
    out.write_all(&encode(&extra)).map_err(io)?;
    out.flush().map_err(io)?;
    let residents: usize = sizes.iter().flatten().map(|x| x.0).sum();
    Ok(residents + extra.lines().count())
}

/// `households.csv` (UTF-8): id, building code, coordinates (for those located by them).
pub(super) fn households_csv(households: &[HouseholdRow]) -> String {
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
    hh_csv
}
