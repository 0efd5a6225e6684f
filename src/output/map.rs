//! `map.html`: one self-contained HTML file (inline data, style and script; no tiles, fonts or
//! scripts fetched when it is opened) showing the grids as a choropleth of one indicator, the
//! facilities, the blind spots and the siting picks, with a legend and hover details.
//!
//! The map is drawn from an output directory's GeoJSON files, so it shows exactly what the run
//! published: in a research run, hidden (suppressed) values stay hidden and are drawn as such.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::error::{Error, Location, Result};

const TEMPLATE: &str = include_str!("map.html");
const DATA_MARK: &str = "/*SHEQU_DATA*/";

/// Columns that are codes or bookkeeping, never an indicator.
const NOT_INDICATORS: [&str; 3] = ["source_index", "derived", "suppressed"];

fn read_json(path: &Path) -> Result<Option<Value>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::data(Location::default().file(path), format!("not JSON: {e}")))
}

fn features(v: &Value) -> &[Value] {
    v["features"].as_array().map_or(&[], Vec::as_slice)
}

/// The candidates for the default indicator: each coverage measure's share at its rule's
/// standard distance, in the manifest's order.
fn coverage_shares(manifest: Option<&Value>) -> Vec<String> {
    let Some(c) = manifest.map(|m| &m["coverage"]) else {
        return Vec::new();
    };
    // The manifest lists the rules in order, and the measures rule by rule.
    let mut rules: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for m in c["measures"].as_array().map_or(&[][..], Vec::as_slice) {
        let (Some(id), Some(rule)) = (m["id"].as_str(), m["rule"].as_str()) else {
            continue;
        };
        if !rules.contains(&rule) {
            rules.push(rule);
        }
        let j = rules.len() - 1;
        if let Some(standard) = c["rules"][j]["standard_m"].as_f64() {
            out.push(format!("{id}_share_{}m", standard.round() as i64));
        }
    }
    out
}

/// Writes `map.html` into the output directory `out` (or to `to`) and returns its path.
///
/// Reads `grids.geojson` (required: the run must write GeoJSON, `geojson_crs` not `none`),
/// merges the grid rows of `special_needs/grid.geojson`, `coverage/grid.geojson` and
/// `events/grid.geojson` by `grid_id`, and adds `facilities.geojson` and `coverage/siting.geojson` when present.
/// `indicator` is any numeric grid column; the default is the coverage measure's share at its
/// rule's standard distance that is published for the most grids (first on ties), else
/// `residents_per_km2`. The page lets the reader switch
/// indicator; grids flagged in any `*_blind_spot` column are outlined, and so are the case hot
/// spots (`cases_hot` of `events/grid.geojson`), whose red cards show on hover.
///
/// # Examples
/// ```
/// let dir = tempfile::tempdir()?;
/// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(5))?;
/// let job = shequ::Job::from_toml(dir.path().join("job.toml"))?;
/// let out = dir.path().join("out");
/// shequ::run::run(&job, &out, &shequ::NoProgress)?;
/// let html = shequ::output::map::write_map(&out, Some("residents"), None)?;
/// let text = std::fs::read_to_string(html)?;
/// assert!(text.contains("\"grids\":[") && !text.contains("<script src") && !text.contains("href=\"http"));
/// // An indicator the grids do not have is an error that lists the ones they do.
/// let err = shequ::output::map::write_map(&out, Some("no_such_column"), None).unwrap_err();
/// assert!(err.to_string().contains("residents_per_km2"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Data`] if `grids.geojson` is missing or not GeoJSON, [`Error::ColumnNotFound`] for
/// an unknown indicator, [`Error::Io`].
pub fn write_map(out: &Path, indicator: Option<&str>, to: Option<&Path>) -> Result<PathBuf> {
    let grids_path = out.join("grids.geojson");
    let grids = read_json(&grids_path)?.ok_or_else(|| {
        Error::data(
            Location::default().file(&grids_path),
            "no grids.geojson here: the map is drawn from a run's GeoJSON outputs \
             (options.geojson_crs must not be \"none\")",
        )
    })?;
    let manifest = read_json(&crate::output::manifest_path(out))?;

    let rows = grid_rows(out, &grids)?;
    let mut numeric: BTreeSet<String> = BTreeSet::new();
    let mut blind: BTreeSet<String> = BTreeSet::new();
    for (_, p) in &rows {
        for (k, v) in p {
            if k.ends_with("_blind_spot") {
                blind.insert(k.clone());
            } else if v.is_number() && !NOT_INDICATORS.contains(&k.as_str()) {
                numeric.insert(k.clone());
            }
        }
    }
    let chosen = match indicator {
        Some(i) if numeric.contains(i) => i.to_owned(),
        Some(i) => {
            return Err(Error::ColumnNotFound {
                at: Location::layer("grids").file(&grids_path).column(i),
                available: numeric.iter().cloned().collect::<Vec<_>>().join(", "),
            });
        }
        // The coverage share that varies across grids and is published for the most of them
        // (suppression hides some), else the density of residents.
        None => {
            let score = |c: &String| {
                let v: Vec<f64> = rows
                    .iter()
                    .filter_map(|(_, p)| p[c.as_str()].as_f64())
                    .collect();
                let varies = v.iter().any(|x| *x != v[0]);
                (varies, v.len())
            };
            coverage_shares(manifest.as_ref())
                .into_iter()
                .filter(|c| numeric.contains(c))
                .map(|c| (score(&c), c))
                .rev()
                .max_by_key(|(n, _)| *n)
                .map(|(_, c)| c)
                .or_else(|| {
                    numeric
                        .contains("residents_per_km2")
                        .then(|| "residents_per_km2".into())
                })
                .or_else(|| numeric.iter().next().cloned())
                .unwrap_or_default()
        }
    };

    let points = |name: &str| -> Result<Vec<Value>> {
        Ok(read_json(&out.join(name))?
            .as_ref()
            .map(|v| {
                features(v)
                    .iter()
                    .filter(|f| f["geometry"]["type"] == "Point")
                    .map(|f| json!({"c": f["geometry"]["coordinates"], "p": f["properties"]}))
                    .collect()
            })
            .unwrap_or_default())
    };
    let title = manifest
        .as_ref()
        .and_then(|m| m["job"]["name"].as_str())
        .unwrap_or("shequ")
        .to_owned();
    let data = json!({
        "title": title,
        "coordinate_system": grids["shequ:coordinate_system"],
        "privacy": manifest.as_ref().map(|m| m["privacy"]["output"].clone()),
        "indicator": chosen,
        "indicators": numeric,
        "blind_spot_columns": blind,
        "grids": rows.iter().map(|(g, p)| json!({"g": g, "p": p})).collect::<Vec<_>>(),
        "facilities": points("facilities.geojson")?,
        "sites": points("coverage/siting.geojson")?,
    });
    // Inside <script type="application/json">: only "</" could end the element early.
    let data = data.to_string().replace("</", "<\\/");
    let html = TEMPLATE.replacen(DATA_MARK, &data, 1);
    let path = to.map_or_else(|| out.join("map.html"), Path::to_owned);
    std::fs::write(&path, html).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// The grids' features (geometry, properties), with the special-needs and coverage columns of
/// the same grid merged in by `grid_id`.
fn grid_rows(out: &Path, grids: &Value) -> Result<Vec<(Value, Map<String, Value>)>> {
    let mut rows: Vec<(Value, Map<String, Value>)> = features(grids)
        .iter()
        .map(|f| {
            let p = f["properties"].as_object().cloned().unwrap_or_default();
            (f["geometry"].clone(), p)
        })
        .collect();
    let index: std::collections::HashMap<String, usize> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, (_, p))| Some((p.get("grid_id")?.as_str()?.to_owned(), i)))
        .collect();
    for extra in [
        "special_needs/grid.geojson",
        "coverage/grid.geojson",
        "events/grid.geojson",
    ] {
        let Some(layer) = read_json(&out.join(extra))? else {
            continue;
        };
        for f in features(&layer) {
            let Some(props) = f["properties"].as_object() else {
                continue;
            };
            let Some(&i) = props
                .get("grid_id")
                .and_then(Value::as_str)
                .and_then(|id| index.get(id))
            else {
                continue;
            };
            for (k, v) in props {
                rows[i].1.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    Ok(rows)
}
