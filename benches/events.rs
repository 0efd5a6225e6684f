//! The grid work loop at scale: `SHEQU_BENCH_CASES` cases (default 5,000,000) over a generated
//! district of `SHEQU_BENCH_HOUSEHOLDS` households (default 1,000,000), read from Parquet in
//! chunks, placed in the grids by coordinates (a fifth by building code), judged on China's
//! working-day calendar, counted per unit, and every events table written (to memory) through
//! the one suppression pass of a research release.
//!
//! `cargo bench --bench events` (release). The frame is built once, outside the measurement.
//! `SHEQU_BENCH_CHUNK_ROWS` sets the rows per chunk (default: the job's, 500,000).
//! Four cases in five are located by longitude and latitude (brought to the working CRS by
//! PROJ), one in five by building code.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use chrono::{Duration, NaiveDate, NaiveDateTime};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};

mod common;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const KINDS: [(&str, &str, &str, f64); 6] = [
    ("市容环境", "暴露垃圾", "区城市管理局", 10.0),
    ("宣传广告", "非法小广告", "区城市管理局", 16.0),
    ("施工管理", "施工扰民", "区住房城乡建设委", 40.0),
    ("突发事件", "道路积水", "区应急管理局", 6.0),
    ("街面秩序", "店外经营", "区城市管理局", 12.0),
    ("矛盾纠纷", "邻里纠纷", "街道综治中心", 60.0),
];

fn t(d: NaiveDateTime) -> String {
    d.format("%Y-%m-%d %H:%M").to_string()
}

/// Writes the cases as Parquet, in row groups of 256k rows.
fn write_cases(path: &std::path::Path, model: &shequ::Model, n: usize) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(24);
    let start = NaiveDate::from_ymd_opt(2025, 1, 1)
        .unwrap()
        .and_hms_opt(8, 0, 0)
        .unwrap();
    let names = [
        "id", "category", "sub", "source", "x", "y", "building", "dept", "status", "rating",
    ];
    let steps = ["reported", "assigned", "handled", "fed_back", "visited"];
    let mut fields: Vec<Field> = names
        .iter()
        .map(|n| {
            Field::new(
                *n,
                if matches!(*n, "x" | "y") {
                    DataType::Float64
                } else {
                    DataType::Utf8
                },
                true,
            )
        })
        .collect();
    fields.extend(steps.iter().map(|s| Field::new(*s, DataType::Utf8, true)));
    let schema = Arc::new(Schema::new(fields));
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema.clone(), None).unwrap();
    let b = &model.buildings;
    // Cases come with longitude and latitude (WGS84), as patrol and app reports do.
    let to_lonlat =
        shequ::crs::Transformer::new(&model.working_crs, &shequ::Crs::lonlat()).unwrap();
    for chunk in 0..n.div_ceil(262_144) {
        let rows = 262_144.min(n - chunk * 262_144);
        let mut text: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(rows); 8 + steps.len()];
        let (mut xs, mut ys) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
        for i in 0..rows {
            let k = &KINDS[rng.random_range(0..KINDS.len())];
            let bi = rng.random_range(0..b.len());
            let by_code = rng.random_range(0..5) == 0;
            let p = b[bi].point;
            let reported = start + Duration::minutes(rng.random_range(0..364 * 24 * 60));
            let assigned = reported + Duration::minutes(rng.random_range(5..300));
            let handled =
                assigned + Duration::minutes((k.3 * 60.0 * rng.random_range(0.2..3.0)) as i64);
            let fed_back = handled + Duration::minutes(rng.random_range(30..600));
            let visited = fed_back + Duration::minutes(rng.random_range(60..5000));
            let open = rng.random_range(0..40) == 0;
            let row = [
                Some(format!("C{:09}", chunk * 262_144 + i)),
                Some(k.0.to_owned()),
                Some(k.1.to_owned()),
                Some(["巡查", "APP", "12345"][rng.random_range(0..3)].to_owned()),
                by_code.then(|| b[bi].id.as_str().to_owned()),
                Some(k.2.to_owned()),
                Some(if open { "处理中" } else { "已结案" }.to_owned()),
                (!open).then(|| {
                    ["满意", "基本满意", "不满意", "4"][rng.random_range(0..4)].to_owned()
                }),
                Some(t(reported)),
                Some(t(assigned)),
                (!open).then(|| t(handled)),
                (!open).then(|| t(fed_back)),
                (!open).then(|| t(visited)),
            ];
            for (c, v) in text.iter_mut().zip(row) {
                c.push(v);
            }
            let (dx, dy): (f64, f64) =
                (rng.random_range(-15.0..15.0), rng.random_range(-15.0..15.0));
            let mut pt = [Some(geo::coord! { x: p.x + dx, y: p.y + dy })];
            to_lonlat.transform_points(&mut pt).unwrap();
            let ll = pt[0].unwrap();
            xs.push((!by_code).then_some(ll.x));
            ys.push((!by_code).then_some(ll.y));
        }
        let s = |v: &Vec<Option<String>>| -> ArrayRef { Arc::new(StringArray::from(v.clone())) };
        let mut cols: Vec<ArrayRef> = text[..4].iter().map(s).collect();
        cols.push(Arc::new(Float64Array::from(xs)));
        cols.push(Arc::new(Float64Array::from(ys)));
        cols.extend(text[4..].iter().map(s));
        w.write(&RecordBatch::try_new(schema.clone(), cols).unwrap())
            .unwrap();
    }
    w.close().unwrap();
}

fn bench_events(c: &mut Criterion) {
    // The process settings the CLI and the Python module run with (no transparent huge pages:
    // see `shequ::process`).
    shequ::process::avoid_transparent_huge_pages();
    let n = common::households(1_000_000);
    let cases: usize = std::env::var("SHEQU_BENCH_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000_000);
    let (dir, job) = common::district(n, 0);
    let mut job = job;
    job.special_needs = None;
    job.coverage = None;
    job.registers.clear();
    let built = shequ::build(&job).expect("build");
    let path = dir.path().join("cases.parquet");
    write_cases(&path, &built.model, cases);
    let layer = format!(
        "path = '{}'\nid = 'id'\ncategory = 'category'\nsubcategory = 'sub'\nsource = 'source'\n\
         lon = 'x'\nlat = 'y'\nbuilding = 'building'\ndepartment = 'dept'\n\
         status = 'status'\nsatisfaction = 'rating'\n\
         steps = {{ reported = 'reported', assigned = 'assigned', handled = 'handled', fed_back = 'fed_back', visited = 'visited' }}",
        path.display()
    );
    job.layers.events = Some(toml::from_str(&layer).expect("events layer"));
    job.events = Some(toml::from_str("as_of = '2026-01-01'").expect("options"));
    if let Some(rows) = std::env::var("SHEQU_BENCH_CHUNK_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        job.options.chunk_rows = shequ::io::chunks::ChunkRows::Rows(rows);
    }
    let policy = shequ::run::policy(&job).expect("policy");
    let mut built = built;
    let mut analysis = shequ::run::analyse(&job, &mut built, policy).expect("analysis");
    let mut g = c.benchmark_group("events");
    g.sample_size(10);
    g.bench_function(
        format!("{cases} cases over {n} households: read, placed, judged, every table"),
        |b| {
            b.iter(|| {
                let ev = shequ::analytics::events::read_events(
                    &job,
                    &built.model,
                    None,
                    false,
                    &shequ::NoProgress,
                )
                .expect("events");
                assert_eq!(ev.count.read, cases);
                analysis.events = Some(ev);
                let out = shequ::output::Out::memory();
                shequ::run::write_tables(&built, &analysis, &out).expect("tables");
                out.tables().len()
            })
        },
    );
}

criterion_group!(benches, bench_events);
criterion_main!(benches);
