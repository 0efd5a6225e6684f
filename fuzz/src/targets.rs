//! Fuzz targets: one per reader and one for the whole `validate` path, shared by the
//! coverage-guided `cargo fuzz` targets (`fuzz/fuzz_targets/`, nightly, libFuzzer) and the
//! stable mutation harness of the test suite (`tests/all/fuzz.rs`, proptest over real files).
//!
//! Each target writes its input where shequ reads it, runs the reader or the build, and panics
//! (so the fuzzer records the input) when a promise breaks:
//! - no panic, no hang: the call returns;
//! - every row accounted for: a build's layers satisfy `read = placed + reported`, which the
//!   build itself checks ([`shequ::Error::Internal`] is a failure here); a table read keeps or
//!   lists every row;
//! - errors and report entries say where and stay short: no Rust debug structs, no message
//!   longer than [`MAX_MESSAGE`] characters beyond the file's path.
//!
//! Seeds come from `data-samples/sample-city` ([`seeds`]).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Longest error message or report detail a target accepts, in characters, not counting the
/// temporary paths it names.
pub const MAX_MESSAGE: usize = 600;

/// The targets, by name (the names of `fuzz/fuzz_targets/*.rs`).
pub const TARGETS: &[&str] = &[
    "roster_csv",
    "roster_parquet",
    "geojson",
    "geoparquet",
    "shapefile",
    "job_toml",
    "validate_sample",
];

/// Runs target `name` on `data`; true if the input was read and built (false: it was refused
/// with a clean error).
///
/// # Panics
/// When `data` breaks one of the promises above, or `name` is not in [`TARGETS`].
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "roster_csv" => roster_csv(data),
        "roster_parquet" => roster_parquet(data),
        "geojson" => geojson(data),
        "geoparquet" => geoparquet(data),
        "shapefile" => shapefile(data),
        "job_toml" => job_toml(data),
        "validate_sample" => validate_sample(data),
        other => panic!("no fuzz target {other:?}"),
    }
}

/// The bundled sample district, `data-samples/sample-city` (every planted problem included):
/// the frame that the roster and layer targets place their rows in, the base of the sample
/// targets, and the source of the seeds.
pub fn sample_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        [
            here.join("data-samples/sample-city"),
            here.join("../data-samples/sample-city"),
        ]
        .into_iter()
        .find(|d| d.join("job.toml").is_file())
        .expect("data-samples/sample-city beside the crate")
    })
}

/// The sample's files, copied into a fresh directory (each input gets its own, so that
/// targets can run on many threads).
fn district_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(sample_dir(), dir.path());
    dir
}

/// Copies a directory's files and subdirectories (the sample's `registers/`).
fn copy_dir(src: &Path, to: &Path) {
    for e in std::fs::read_dir(src).expect("sample") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

/// Checks a build's outcome: accounting holds (the build checks it and returns
/// `Error::Internal` otherwise), and every message is short and plain.
fn check_build(result: shequ::Result<shequ::Build>, dir: &Path) -> bool {
    match result {
        Ok(b) => {
            for (layer, c) in b.report.counts() {
                assert_eq!(c.read, c.placed + c.rejected, "{layer}");
            }
            for i in b.report.issues() {
                check_message(&i.to_string(), dir);
            }
            true
        }
        Err(e) => {
            check_error(&e, dir);
            false
        }
    }
}

fn check_error(e: &shequ::Error, dir: &Path) {
    assert!(
        !matches!(e, shequ::Error::Internal { .. }),
        "internal error: {e}"
    );
    check_message(&e.to_string(), dir);
}

/// A message is short once the temporary directory's paths are left out, and prints no Rust
/// debug struct.
fn check_message(msg: &str, dir: &Path) {
    let plain = msg.replace(&dir.display().to_string(), "");
    let plain = plain.replace(&sample_dir().display().to_string(), "");
    assert!(
        plain.chars().count() <= MAX_MESSAGE,
        "message of {} characters: {}",
        plain.chars().count(),
        plain.chars().take(300).collect::<String>()
    );
    for debug in ["Error {", "Error(", "{ kind", "Kind(", "Os {", "Custom {"] {
        assert!(!plain.contains(debug), "debug struct in message: {plain}");
    }
}

fn job(dir: &Path, text: &str) -> shequ::Job {
    shequ::Job::from_toml_str(text, dir).expect("the target's own job is valid")
}

const FRAME: &str = "[options]\nworking_crs = \"EPSG:4545\"\n[layers.communities]\npath = \"communities.geojson\"\nid = \"code\"\nparent = \"street_code\"\n[layers.grids]\npath = \"grids.geojson\"\nid = \"code\"\nparent = \"community_code\"\n[layers.buildings]\npath = \"buildings.geojson\"\nid = \"code\"\nparent = \"grid_code\"\n";

const HOUSEHOLDS: &str = "[layers.households]\nid = \"household_id\"\nbuilding = \"building_code\"\nlon = \"lon\"\nlat = \"lat\"\n";

const RESIDENTS: &str = "[layers.residents]\npath = \"residents.csv\"\nid = \"居民编号\"\nhousehold = \"户编号\"\nid_number = \"公民身份号码\"\nsex = \"性别\"\n";

/// A CSV roster: the first byte picks households (even) or residents (odd); the rest is the
/// file, placed in the sample's frame (communities, grids, buildings).
pub fn roster_csv(data: &[u8]) -> bool {
    let Some((&pick, file)) = data.split_first() else {
        return false;
    };
    let dir = district_copy();
    let name = if pick % 2 == 0 {
        "households.csv"
    } else {
        "residents.csv"
    };
    std::fs::write(dir.path().join(name), file).expect("write");
    let text = format!(
        "{FRAME}{HOUSEHOLDS}path = \"households.csv\"\nencoding = \"auto\"\n{RESIDENTS}encoding = \"auto\"\n"
    );
    check_build(shequ::build(&job(dir.path(), &text)), dir.path())
}

/// A Parquet household roster, placed in the sample's frame.
pub fn roster_parquet(data: &[u8]) -> bool {
    let dir = district_copy();
    std::fs::write(dir.path().join("households.parquet"), data).expect("write");
    let text = format!("{FRAME}{HOUSEHOLDS}path = \"households.parquet\"\n");
    check_build(shequ::build(&job(dir.path(), &text)), dir.path())
}

/// Reads `file` as the grids layer with the reader, then builds the grids (their community
/// code in column `parent`) with the sample's communities above them.
fn grids_layer(file: &str, parent: &str, data: &[u8]) -> bool {
    let dir = district_copy();
    let path = dir.path().join(file);
    std::fs::write(&path, data).expect("write");
    let opts = shequ::io::ReadOptions::default();
    match shequ::io::read_features("grids", &path, &["code"], opts) {
        Ok(fl) => {
            assert_eq!(fl.geometries.len(), fl.len());
            assert!(fl.columns.iter().all(|c| c.len() == fl.len()));
        }
        Err(e) => check_error(&e, dir.path()),
    }
    let text = format!(
        "[options]\nworking_crs = \"EPSG:4545\"\n[layers.communities]\npath = \"communities.geojson\"\nid = \"code\"\n[layers.grids]\npath = \"{file}\"\nid = \"code\"\nparent = \"{parent}\"\n"
    );
    check_build(shequ::build(&job(dir.path(), &text)), dir.path())
}

/// A GeoJSON grids layer.
pub fn geojson(data: &[u8]) -> bool {
    grids_layer("grids.geojson", "community_code", data)
}

/// A GeoParquet (WKB) grids layer.
pub fn geoparquet(data: &[u8]) -> bool {
    grids_layer("grids.parquet", "parent", data)
}

/// A shapefile grids layer: the input is `.shp` and `.dbf` joined, the first four bytes the
/// `.shp` part's length (little-endian), so the fuzzer mutates both files and their sizes.
pub fn shapefile(data: &[u8]) -> bool {
    let Some((len, rest)) = data.split_first_chunk::<4>() else {
        return false;
    };
    let n = (u32::from_le_bytes(*len) as usize).min(rest.len());
    let (shp, dbf) = rest.split_at(n);
    let dir = district_copy();
    std::fs::write(dir.path().join("grids.shp"), shp).expect("write");
    std::fs::write(dir.path().join("grids.dbf"), dbf).expect("write");
    std::fs::write(dir.path().join("grids.prj"), CGCS2000_PRJ).expect("write");
    let path = dir.path().join("grids.shp");
    if let Err(e) = shequ::io::read_features("grids", &path, &["code"], Default::default()) {
        check_error(&e, dir.path());
    }
    let text = "[options]\nworking_crs = \"EPSG:4545\"\n[layers.communities]\npath = \"communities.geojson\"\nid = \"code\"\n[layers.grids]\npath = \"grids.shp\"\nid = \"code\"\nparent = \"parent\"\n";
    check_build(shequ::build(&job(dir.path(), text)), dir.path())
}

/// The CGCS2000 geographic CRS as a `.prj` holds it.
pub const CGCS2000_PRJ: &str = r#"GEOGCS["GCS_China_Geodetic_Coordinate_System_2000",DATUM["D_China_2000",SPHEROID["CGCS2000",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]"#;

/// A job file, read beside the sample's files; a job that reads is built, and if the build
/// succeeds its analyses run.
pub fn job_toml(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let dir = district_copy();
    match shequ::Job::from_toml_str(text, dir.path()) {
        Ok(job) => {
            let built = shequ::build(&job);
            if let Ok(mut b) = built {
                if let Ok(policy) = shequ::run::policy(&job) {
                    if let Err(e) = shequ::run::analyse(&job, &mut b, policy) {
                        check_error(&e, dir.path());
                    }
                }
                check_build(Ok(b), dir.path())
            } else {
                check_build(built, dir.path())
            }
        }
        Err(e) => {
            check_message(&e.to_string(), dir.path());
            false
        }
    }
}

/// The sample's files by index, as [`validate_sample`] picks them.
pub const SAMPLE_FILES: &[&str] = &[
    "communities.geojson",
    "grids.geojson",
    "buildings.geojson",
    "facilities.geojson",
    "households.csv",
    "residents.csv",
];

/// The whole `validate` path on a mutated sample: the first byte picks one of
/// [`SAMPLE_FILES`], the rest replaces it; the sample's own job is built.
pub fn validate_sample(data: &[u8]) -> bool {
    let Some((&pick, file)) = data.split_first() else {
        return false;
    };
    let dir = district_copy();
    let name = SAMPLE_FILES[pick as usize % SAMPLE_FILES.len()];
    std::fs::write(dir.path().join(name), file).expect("write");
    let job = shequ::Job::from_toml(dir.path().join("job.toml")).expect("the sample's job");
    check_build(
        shequ::run::validate(&job, &shequ::NoProgress).map(|(b, _)| b),
        dir.path(),
    )
}

/// Seed inputs for a target, from the bundled sample ([`sample_dir`]): its files, the first
/// rows of its rosters, and its grids and households converted to the target's format.
///
/// # Panics
/// If the sample cannot be read or converted.
pub fn seeds(name: &str) -> Vec<Vec<u8>> {
    let sample_dir = sample_dir();
    let read = |f: &str| std::fs::read(sample_dir.join(f)).expect("sample file");
    let head = |bytes: Vec<u8>, lines: usize| -> Vec<u8> {
        let end = bytes
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == b'\n')
            .nth(lines)
            .map_or(bytes.len(), |(i, _)| i + 1);
        bytes[..end].to_vec()
    };
    let tagged = |tag: u8, bytes: Vec<u8>| {
        let mut v = vec![tag];
        v.extend(bytes);
        v
    };
    match name {
        "roster_csv" => vec![
            tagged(0, head(read("households.csv"), 120)),
            tagged(1, head(read("residents.csv"), 80)),
        ],
        "roster_parquet" => vec![households_parquet(sample_dir)],
        "geojson" => vec![read("grids.geojson")],
        "geoparquet" => vec![grids_parquet(sample_dir)],
        "shapefile" => vec![grids_shapefile(sample_dir)],
        "job_toml" => vec![
            read("job.toml"),
            read("job-grid-worker.toml"),
            format!("{FRAME}{HOUSEHOLDS}path = \"households.csv\"\n").into_bytes(),
        ],
        "validate_sample" => SAMPLE_FILES
            .iter()
            .enumerate()
            .map(|(i, f)| tagged(i as u8, read(f)))
            .collect(),
        other => panic!("no fuzz target {other:?}"),
    }
}

fn sample_grids(sample_dir: &Path) -> shequ::io::FeatureLayer {
    shequ::io::read_features(
        "grids",
        &sample_dir.join("grids.geojson"),
        &["code", "community_code"],
        Default::default(),
    )
    .expect("sample grids")
}

/// The sample's grids as GeoParquet (WKB, with `geo` metadata).
fn grids_parquet(sample_dir: &Path) -> Vec<u8> {
    use arrow_array::{ArrayRef, BinaryArray, RecordBatch, StringArray};
    use std::sync::Arc;
    let fl = sample_grids(sample_dir);
    let wkb: Vec<Vec<u8>> = fl
        .geometries
        .iter()
        .map(|g| {
            let mut out = Vec::new();
            wkb::writer::write_geometry(
                &mut out,
                g.as_ref().expect("geometry"),
                &Default::default(),
            )
            .expect("wkb");
            out
        })
        .collect();
    let code: ArrayRef = Arc::new(StringArray::from(fl.columns[0].clone()));
    let parent: ArrayRef = Arc::new(StringArray::from(fl.columns[1].clone()));
    let geometry: ArrayRef = Arc::new(BinaryArray::from_iter_values(wkb.iter()));
    let batch =
        RecordBatch::try_from_iter([("code", code), ("parent", parent), ("geometry", geometry)])
            .expect("batch");
    let meta = r#"{"version":"1.1.0","primary_column":"geometry","columns":{"geometry":{"encoding":"WKB","geometry_types":["Polygon","MultiPolygon"]}}}"#;
    let props = parquet::file::properties::WriterProperties::builder()
        .set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
            "geo".into(),
            meta.to_owned(),
        )]))
        .build();
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), Some(props))
        .expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
    out
}

/// The sample's first 300 households as Parquet, coordinates as numbers.
fn households_parquet(sample_dir: &Path) -> Vec<u8> {
    use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let text = String::from_utf8(std::fs::read(sample_dir.join("households.csv")).expect("csv"))
        .expect("utf-8");
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .take(300)
        .map(|l| l.split(',').collect())
        .filter(|r: &Vec<&str>| r.len() == 4)
        .collect();
    let text_col = |k: usize| -> ArrayRef {
        Arc::new(StringArray::from(
            rows.iter()
                .map(|r| (!r[k].is_empty()).then_some(r[k]))
                .collect::<Vec<_>>(),
        ))
    };
    let num_col = |k: usize| -> ArrayRef {
        Arc::new(Float64Array::from(
            rows.iter()
                .map(|r| r[k].parse::<f64>().ok())
                .collect::<Vec<_>>(),
        ))
    };
    let batch = RecordBatch::try_from_iter([
        ("household_id", text_col(0)),
        ("building_code", text_col(1)),
        ("lon", num_col(2)),
        ("lat", num_col(3)),
    ])
    .expect("batch");
    let mut out = Vec::new();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
    out
}

/// The sample's grids as a shapefile, in [`shapefile`]'s input form.
fn grids_shapefile(sample_dir: &Path) -> Vec<u8> {
    use dbase::{FieldName, FieldValue, Record, TableWriterBuilder};
    let fl = sample_grids(sample_dir);
    let dir = tempfile::tempdir().expect("temp dir");
    let shp = dir.path().join("g.shp");
    let table = TableWriterBuilder::new()
        .add_character_field(FieldName::try_from("code").expect("name"), 40)
        .add_character_field(FieldName::try_from("parent").expect("name"), 40);
    let mut w = shapefile::Writer::from_path(&shp, table).expect("writer");
    for (i, g) in fl.geometries.iter().enumerate() {
        let mut rec = Record::default();
        rec.insert(
            "code".into(),
            FieldValue::Character(fl.columns[0][i].clone()),
        );
        rec.insert(
            "parent".into(),
            FieldValue::Character(fl.columns[1][i].clone()),
        );
        let shape: shapefile::Polygon = match g.as_ref().expect("geometry") {
            geo::Geometry::Polygon(p) => p.clone().into(),
            geo::Geometry::MultiPolygon(m) => m.clone().into(),
            _ => continue,
        };
        w.write_shape_and_record(&shape, &rec).expect("shape");
    }
    drop(w);
    let (s, d) = (
        std::fs::read(&shp).expect("shp"),
        std::fs::read(shp.with_extension("dbf")).expect("dbf"),
    );
    let mut out = (s.len() as u32).to_le_bytes().to_vec();
    out.extend(s);
    out.extend(d);
    out
}
