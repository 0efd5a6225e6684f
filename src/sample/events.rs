//! The sample's grid work loop: a year of cases (2025) with seasonality, realistic categories
//! and handling times, some still open at the reference date, and a visit log of the elderly
//! living alone and the severely disabled, with residents left unvisited. Planted problems of
//! every kind the events layer reports.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use chrono::{Duration, NaiveDate, NaiveDateTime};
use geo::{Centroid, Coord, Geometry};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::io::table::parse_birth_date;

/// The events' section of the sample jobs.
pub(super) const JOB_SECTION: &str = r#"
# The grid work loop (docs/events.md): a year of cases placed in the grids (by coordinates, or
# a building code for hotline calls), judged against the deadline table on China's working-day
# calendar at as_of; visits to the elderly living alone (weekly) and the severely disabled
# (monthly) against the visit rules.
[layers.events]
path = "events.csv"
id = "案件编号"
category = "大类"
subcategory = "小类"
source = "来源"
lon = "经度"
lat = "纬度"
building = "楼栋编码"
department = "处置部门"
status = "状态"
satisfaction = "满意度"
resident = "居民编号"
text = ["问题描述"]          # free text: never in research outputs
steps = { "发现" = "发现时间", "上报" = "上报时间", "交办" = "交办时间", "处置" = "处置时间", "反馈" = "反馈时间", "回访" = "回访时间" }

[layers.visits]
path = "visits.csv"
resident = "居民编号"
date = "走访日期"
worker = "网格员"

[events]
as_of = "2026-01-01 00:00"
visit_rules = "visit_rules.csv"
"#;

/// Visit rules of the sample (a street office's rule, illustrative).
const VISIT_RULES: &str = "category,where,every_days,source\n\
elderly_alone,,7,sample street office rule (illustrative): the elderly living alone weekly\n\
disabled,disability_grade=一级|二级,30,sample street office rule (illustrative): disability grade 1-2 monthly\n";

/// (category, sub-category, weight, department, median handling hours, summer factor).
const KINDS: [(&str, &str, f64, &str, f64, f64); 12] = [
    ("市容环境", "暴露垃圾", 18.0, "区城市管理局", 10.0, 1.3),
    ("市容环境", "积存垃圾渣土", 6.0, "区城市管理局", 20.0, 1.0),
    ("宣传广告", "非法小广告", 10.0, "区城市管理局", 16.0, 1.0),
    ("施工管理", "施工扰民", 7.0, "区住房城乡建设委", 40.0, 1.6),
    ("突发事件", "道路积水", 4.0, "区应急管理局", 6.0, 2.5),
    ("突发事件", "下水道堵塞", 5.0, "区市政设施中心", 8.0, 1.4),
    ("街面秩序", "无照经营游商", 9.0, "区城市管理局", 8.0, 1.2),
    ("街面秩序", "店外经营", 8.0, "区城市管理局", 12.0, 1.1),
    ("公用设施", "路灯损坏", 6.0, "区市政设施中心", 30.0, 0.9),
    ("道路交通", "护栏损坏", 5.0, "区市政设施中心", 48.0, 1.0),
    ("矛盾纠纷", "邻里纠纷", 6.0, "街道综治中心", 60.0, 1.0),
    ("安全隐患", "消防通道堵塞", 6.0, "街道应急办", 20.0, 1.0),
];

/// Cases per month, relative (fewer around the Spring Festival, more in the rainy summer).
const MONTHS: [f64; 12] = [0.8, 0.6, 0.9, 1.0, 1.1, 1.3, 1.4, 1.3, 1.1, 0.9, 0.9, 0.8];

fn t(d: NaiveDateTime) -> String {
    d.format("%Y-%m-%d %H:%M").to_string()
}

/// One resident of the roster, as the log needs.
struct Person {
    id: String,
    household: String,
    phone: String,
    birth: Option<NaiveDate>,
    grade: String,
}

fn people(roster: &str) -> Vec<Person> {
    roster
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f.len() >= 12).then(|| Person {
                id: f[0].to_owned(),
                household: f[1].to_owned(),
                phone: f[6].to_owned(),
                birth: parse_birth_date(f[5]),
                grade: f[9].to_owned(),
            })
        })
        .collect()
}

/// Writes `events.csv`, `visits.csv` and `visit_rules.csv`; `buildings` are the buildings'
/// codes, grid codes and lon/lat geometries, `roster` the residents' CSV text (decoded),
/// `household_grid` each household's grid code (about `cases_per_household` cases each).
pub(super) fn write(
    dir: &Path,
    seed: u64,
    buildings: &[(String, String, Option<Geometry<f64>>)],
    roster: &str,
    household_grid: &HashMap<String, String>,
    cases_per_household: f64,
) -> Result<()> {
    let households = household_grid.len().max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xe7e7);
    let points: Vec<(&str, Coord<f64>)> = buildings
        .iter()
        .filter_map(|(code, _, g)| Some((code.as_str(), g.as_ref()?.centroid()?.0)))
        .collect();
    let people = people(roster);
    let n = (households as f64 * cases_per_household) as usize;
    let mut csv = String::from(
        "案件编号,大类,小类,来源,经度,纬度,楼栋编码,处置部门,状态,满意度,居民编号,问题描述,\
         发现时间,上报时间,交办时间,处置时间,反馈时间,回访时间\n",
    );
    let start = NaiveDate::from_ymd_opt(2025, 1, 1)
        .expect("date")
        .and_hms_opt(0, 0, 0)
        .expect("t");
    let as_of = NaiveDate::from_ymd_opt(2026, 1, 1)
        .expect("date")
        .and_hms_opt(0, 0, 0)
        .expect("t");
    let weights: f64 = KINDS.iter().map(|k| k.2).sum();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let month = pick(&mut rng, &MONTHS);
        let day = rng.random_range(0..28);
        let reported = start
            .checked_add_months(chrono::Months::new(month as u32))
            .expect("in range")
            + Duration::days(day)
            + Duration::minutes(rng.random_range(7 * 60..21 * 60));
        let mut w = rng.random_range(0.0..weights);
        let kind = KINDS.iter().find(|k| {
            w -= k.2;
            w < 0.0
        });
        let kind = kind.unwrap_or(&KINDS[0]);
        let id = format!("SJ2025{:06}", i + 1);
        ids.push(id.clone());
        let line = case_line(&mut rng, &id, kind, reported, as_of, &points, &people);
        csv.push_str(&line);
    }
    plant_cases(&mut csv, &ids, &points, &people);
    let p = dir.join("events.csv");
    std::fs::write(&p, csv).map_err(|e| Error::io(&p, e))?;
    let visits = visit_log(&mut rng, &people, household_grid, as_of.date());
    let p = dir.join("visits.csv");
    std::fs::write(&p, visits).map_err(|e| Error::io(&p, e))?;
    let p = dir.join("visit_rules.csv");
    std::fs::write(&p, VISIT_RULES).map_err(|e| Error::io(&p, e))
}

fn pick(rng: &mut ChaCha8Rng, w: &[f64]) -> usize {
    let total: f64 = w.iter().sum();
    let mut x = rng.random_range(0.0..total);
    for (i, v) in w.iter().enumerate() {
        x -= v;
        if x < 0.0 {
            return i;
        }
    }
    w.len() - 1
}

/// Hours drawn around a median, log-normally (a long right tail, as handling times have).
fn hours(rng: &mut ChaCha8Rng, median: f64) -> Duration {
    let z: f64 = (0..6).map(|_| rng.random_range(-1.0..1.0)).sum::<f64>() / 1.4;
    Duration::minutes((median * (0.8 * z).exp() * 60.0).max(5.0) as i64)
}

fn case_line(
    rng: &mut ChaCha8Rng,
    id: &str,
    kind: &(&str, &str, f64, &str, f64, f64),
    reported: NaiveDateTime,
    as_of: NaiveDateTime,
    points: &[(&str, Coord<f64>)],
    people: &[Person],
) -> String {
    let (cat, sub, _, dept, median, _) = *kind;
    let source = ["网格员巡查", "居民随手拍(小程序)", "12345热线"][pick(rng, &[5.0, 3.0, 2.0])];
    let (code, p) = points[rng.random_range(0..points.len())];
    let (lon, lat, building) = if source.starts_with("12345") {
        (String::new(), String::new(), code.to_owned())
    } else {
        let (dx, dy): (f64, f64) = (rng.random_range(-2e-4..2e-4), rng.random_range(-2e-4..2e-4));
        (
            format!("{:.6}", p.x + dx),
            format!("{:.6}", p.y + dy),
            String::new(),
        )
    };
    let discovered = if source.starts_with("网格员") {
        String::new()
    } else {
        t(reported - Duration::minutes(rng.random_range(5..120)))
    };
    let assigned = reported + hours(rng, 1.5);
    let handled = assigned + hours(rng, median);
    let fed_back = handled + hours(rng, 6.0);
    let visited = fed_back + hours(rng, 40.0);
    // About one case in thirty is stuck with its department: never handled, long overdue.
    let stuck = rng.random_bool(0.035);
    let show = |x: NaiveDateTime| if x <= as_of { t(x) } else { String::new() };
    let later = |x: NaiveDateTime| if stuck { String::new() } else { show(x) };
    let closed = visited <= as_of && !stuck;
    let resident = (source != "网格员巡查" && rng.random_bool(0.5))
        .then(|| &people[rng.random_range(0..people.len())]);
    let satisfaction = if closed {
        ["满意", "基本满意", "不满意", "5", "4", "3", "2"]
            [pick(rng, &[50.0, 18.0, 8.0, 10.0, 8.0, 4.0, 2.0])]
    } else {
        ""
    };
    let text = match resident {
        Some(r) => format!("居民反映{sub}，联系电话{}", r.phone),
        None => format!("巡查发现{sub}"),
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{id},{cat},{sub},{source},{lon},{lat},{building},{dept},{},{satisfaction},{},{text},{discovered},{},{},{},{},{}",
        if closed { "已结案" } else { "处理中" },
        resident.map_or("", |r| r.id.as_str()),
        t(reported),
        show(assigned),
        later(handled),
        later(fed_back),
        later(visited),
    );
    s
}

/// One row of each problem the events layer reports, and a repeated case.
fn plant_cases(csv: &mut String, ids: &[String], points: &[(&str, Coord<f64>)], people: &[Person]) {
    let (code, p) = points[0];
    let at = format!("{:.6},{:.6},,", p.x, p.y);
    let swapped = format!("{:.6},{:.6},,", p.y, p.x);
    let steps = "2025-06-02 09:00,2025-06-02 09:30,2025-06-02 10:00,2025-06-02 16:00,2025-06-02 18:00,2025-06-03 10:00";
    let row = |id: &str, cat: &str, loc: &str, steps: &str, extra: (&str, &str)| {
        format!(
            "{id},{cat},,网格员巡查,{loc}区城市管理局,已结案,{},{},巡查发现,{steps}\n",
            extra.0, extra.1
        )
    };
    let rows = [
        row("SJP000001", "市容环境", ",,,", steps, ("满意", "")), // no location
        row(
            "SJP000002",
            "市容环境",
            "104.000000,31.000000,,",
            steps,
            ("满意", ""),
        ), // in no grid
        row(
            "SJP000003",
            "市容环境",
            &at,
            "2025-06-02 09:00,2025-06-02 09:30,2025-06-01 10:00,2025-06-02 16:00,2025-06-02 18:00,2025-06-03 10:00",
            ("满意", ""),
        ), // assigned before reported
        row(
            "SJP000004",
            "市容环境",
            &at,
            "2025-12-30 09:00,2025-12-30 09:30,2025-12-30 10:00,2026-03-01 16:00,,",
            ("", ""),
        ), // handled after as_of
        row(&ids[10], "市容环境", &at, steps, ("满意", "")),      // a repeated id
        row("SJP000005", "天气异常", &at, steps, ("满意", "")),   // not in the classification
        row(
            "SJP000006",
            "市容环境",
            &at,
            "2025-02-30 09:00,,,,,",
            ("", ""),
        ), // 30 February
        row("SJP000007", "市容环境", ",,B-NOSUCH,", steps, ("满意", "")), // unknown building
        row("SJP000008", "市容环境", &swapped, steps, ("满意", "")), // lat/lon swapped
        row("SJP000009", "市容环境", &at, steps, ("满意", "R99999999")), // unknown resident
        row(
            "SJP000010",
            "市容环境",
            &at,
            steps,
            ("很好", people[0].id.as_str()),
        ), // bad rating
        row("SJP000011", "", &at, steps, ("满意", "")),           // no category
        row("", "市容环境", &at, steps, ("满意", "")),            // no id
    ];
    for r in rows {
        csv.push_str(&r);
    }
    // Open at as_of: assigned at 03:00 on 31 December with one working day to handle it
    // (21 of 24 hours gone: yellow), and one assigned on 29 December (red).
    for (i, day) in [("SJP000014", "31 03:00"), ("SJP000015", "29 09:00")] {
        let _ = writeln!(
            csv,
            "{i},街面秩序,店外经营,网格员巡查,{:.6},{:.6},,区城市管理局,处理中,,,巡查发现,,2025-12-{day},2025-12-{day},,,",
            p.x, p.y
        );
    }
    // The same rubbish at the same building twice within a week: a repeated case.
    for (i, day) in [("SJP000012", "05"), ("SJP000013", "09")] {
        let steps = format!(
            "2025-08-{day} 09:00,2025-08-{day} 09:10,2025-08-{day} 09:40,2025-08-{day} 15:00,2025-08-{day} 17:00,2025-08-{day} 20:00"
        );
        let _ = writeln!(
            csv,
            "{i},市容环境,暴露垃圾,12345热线,,,{code},区城市管理局,已结案,满意,,居民来电,{steps}"
        );
    }
}

/// A year's visits to the elderly living alone (weekly, with gaps) and residents with a
/// disability of grade 1–2 (monthly); some residents are never visited; planted bad rows.
fn visit_log(
    rng: &mut ChaCha8Rng,
    people: &[Person],
    household_grid: &HashMap<String, String>,
    as_of: NaiveDate,
) -> String {
    let mut size: HashMap<&str, usize> = HashMap::new();
    for p in people {
        *size.entry(p.household.as_str()).or_default() += 1;
    }
    let mut s = String::from("居民编号,走访日期,网格员\n");
    let from = as_of - Duration::days(120);
    for p in people {
        let old = p
            .birth
            .is_some_and(|b| (as_of - b).num_days() >= 60 * 365 + 15);
        let alone = old && size.get(p.household.as_str()) == Some(&1);
        let severe = matches!(
            p.grade.trim().trim_end_matches('级'),
            "一" | "二" | "1" | "2"
        );
        let every = if alone {
            7
        } else if severe {
            30
        } else {
            continue;
        };
        // One in six is never visited; the others miss a visit now and then.
        if rng.random_range(0..6) == 0 {
            continue;
        }
        let Some(grid) = household_grid.get(&p.household) else {
            continue;
        };
        let worker = format!("网格员{grid}");
        let mut d = from + Duration::days(rng.random_range(0..every));
        while d < as_of {
            if rng.random_range(0..10) > 0 {
                let _ = writeln!(s, "{},{},{worker}", p.id, d.format("%Y-%m-%d"));
            }
            d += Duration::days(every - rng.random_range(0..3.min(every)));
        }
    }
    s.push_str("R99999999,2025-12-01,网格员01\n"); // not in the roster
    let first = people.first().map_or("", |p| p.id.as_str());
    let _ = writeln!(s, "{first},2025-13-01,网格员01"); // no such month
    let _ = writeln!(s, "{first},2026-02-01,网格员01"); // after as_of
    s.push_str(",2025-12-01,网格员01\n"); // no resident
    s
}
