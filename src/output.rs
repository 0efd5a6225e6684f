//! Writing a built model: GeoParquet layers, the households table, the quality report and the
//! run manifest.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use geo::{Geometry, MultiPolygon};
use polars::prelude::*;
use serde_json::json;

use crate::crs::{Crs, Transformer};
use crate::error::{Error, Location, Result};
use crate::io::geoparquet;
use crate::model::build::Build;
use crate::model::level::Layer;
use crate::model::quality::QualityReport;
use crate::model::{Area, Lineage, Model};

/// Counts of buildings, households and residents per unit of every level, from placed
/// households.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Per street: (buildings, households, residents).
    pub streets: Vec<[u64; 3]>,
    /// Per community.
    pub communities: Vec<[u64; 3]>,
    /// Per grid.
    pub grids: Vec<[u64; 3]>,
    /// Per building: (1, households, residents).
    pub buildings: Vec<[u64; 3]>,
}

impl Tally {
    /// Counts buildings, placed households and their residents per unit.
    ///
    /// # Examples
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(5))?;
    /// let built = shequ::build(&shequ::Job::from_toml(dir.path().join("job.toml"))?)?;
    /// let tally = shequ::output::Tally::of(&built.model);
    /// let households: u64 = tally.grids.iter().map(|g| g[1]).sum();
    /// assert_eq!(households as usize, built.model.households.iter().filter(|h| h.placed).count());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn of(model: &Model) -> Tally {
        let mut t = Tally {
            streets: vec![[0; 3]; model.streets.len()],
            communities: vec![[0; 3]; model.communities.len()],
            grids: vec![[0; 3]; model.grids.len()],
            buildings: vec![[0; 3]; model.buildings.len()],
        };
        let mut add = |l: &Lineage, k: usize, n: u64| {
            for (v, idx) in [
                (&mut t.streets, l.street),
                (&mut t.communities, l.community),
                (&mut t.grids, l.grid),
                (&mut t.buildings, l.building),
            ] {
                if let Some(i) = idx {
                    v[i as usize][k] += n;
                }
            }
        };
        for b in &model.buildings {
            add(&b.lineage, 0, 1);
        }
        for h in model.households.iter().filter(|h| h.placed) {
            add(&h.lineage, 1, 1);
            add(&h.lineage, 2, h.residents as u64);
        }
        t
    }

    /// The counts at a level.
    pub fn at(&self, layer: Layer) -> &[[u64; 3]] {
        match layer {
            Layer::Street => &self.streets,
            Layer::Community => &self.communities,
            Layer::Grid => &self.grids,
            Layer::Building => &self.buildings,
            _ => &[],
        }
    }
}

/// Named Arrow columns of an output table.
type Columns = Vec<(String, ArrayRef)>;

/// The ids up the chain of a lineage, as output columns.
fn parent_columns(model: &Model, layer: Layer, lineages: &[Lineage]) -> Vec<(String, ArrayRef)> {
    let mut cols = Vec::new();
    for parent in [Layer::Grid, Layer::Community, Layer::Street] {
        if parent >= layer || !model.has(parent) {
            continue;
        }
        let ids: StringArray = lineages
            .iter()
            .map(|l| l.at(parent).map(|i| model.code(parent, i)))
            .collect();
        cols.push((
            format!("{}_id", parent.singular()),
            Arc::new(ids) as ArrayRef,
        ));
    }
    cols
}

fn area_columns<I: AsRef<str>>(
    model: &Model,
    layer: Layer,
    units: &[Area<I>],
    tally: &Tally,
) -> (Columns, Vec<Option<Geometry<f64>>>) {
    let counts = tally.at(layer);
    let mut cols: Vec<(String, ArrayRef)> = vec![
        (
            format!("{}_id", layer.singular()),
            Arc::new(
                units
                    .iter()
                    .map(|u| Some(u.id.as_ref()))
                    .collect::<StringArray>(),
            ),
        ),
        (
            "name".into(),
            Arc::new(
                units
                    .iter()
                    .map(|u| u.name.as_deref())
                    .collect::<StringArray>(),
            ),
        ),
    ];
    let lineages: Vec<Lineage> = units.iter().map(|u| u.lineage).collect();
    cols.extend(parent_columns(model, layer, &lineages));
    cols.push((
        "area_m2".into(),
        Arc::new(Float64Array::from_iter_values(
            units.iter().map(|u| u.area_m2),
        )),
    ));
    for (k, name) in ["buildings", "households", "residents"].iter().enumerate() {
        cols.push((
            (*name).into(),
            Arc::new(UInt64Array::from_iter_values(counts.iter().map(|c| c[k]))),
        ));
    }
    cols.push((
        "derived".into(),
        Arc::new(BooleanArray::from_iter(
            units.iter().map(|u| Some(u.source_index.is_none())),
        )),
    ));
    cols.push((
        "source_index".into(),
        Arc::new(UInt64Array::from_iter(
            units.iter().map(|u| u.source_index.map(|i| i as u64)),
        )),
    ));
    let geoms = units
        .iter()
        .map(|u| Some(Geometry::MultiPolygon(u.geometry.clone())))
        .collect();
    (cols, geoms)
}

/// The files a run wrote.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Written {
    /// Paths, relative to the output directory.
    pub files: Vec<String>,
}

/// The value of row `i` of an Arrow array as JSON (the types output tables use).
fn json_value(a: &ArrayRef, i: usize) -> serde_json::Value {
    use arrow_array::Array;
    if a.is_null(i) {
        return serde_json::Value::Null;
    }
    let any = a.as_any();
    if let Some(v) = any.downcast_ref::<StringArray>() {
        json!(v.value(i))
    } else if let Some(v) = any.downcast_ref::<Float64Array>() {
        json!(v.value(i))
    } else if let Some(v) = any.downcast_ref::<UInt64Array>() {
        json!(v.value(i))
    } else if let Some(v) = any.downcast_ref::<BooleanArray>() {
        json!(v.value(i))
    } else {
        serde_json::Value::Null
    }
}

/// Where a layer's geometry came from, for the provenance metadata of its outputs.
fn provenance(build: &Build, layer: Layer, steps: &[String]) -> serde_json::Value {
    let input = build.inputs.iter().find(|i| i.layer == layer);
    let mut conversions: Vec<String> = input.map(|i| i.conversions.clone()).unwrap_or_default();
    conversions.extend(steps.iter().cloned());
    json!({
        "shequ:source": input
            .map(|i| i.path.display().to_string())
            .unwrap_or_else(|| "derived by dissolving the level below".into()),
        "shequ:source_crs": input.and_then(|i| i.crs.clone()),
        "shequ:working_crs": build.model.working_crs.definition(),
        "shequ:conversions": conversions,
    })
}

/// Writes the model's layers, the households table and the quality report under `out`.
/// GeoParquet is written in `output_crs`; when `geojson_crs` is given, every spatial layer is
/// also written as GeoJSON in it (WGS84 for RFC 7946, or GCJ-02 / BD-09 for AMap and Baidu
/// SDKs, flagged in the file's `shequ:coordinate_system` member).
///
/// # Errors
/// [`Error::Io`], [`Error::Parquet`], [`Error::Polars`] or [`Error::Crs`] (output CRS; GCJ-02
/// and BD-09 cannot be GeoParquet CRSs).
pub fn write_model(
    build: &Build,
    out: &Path,
    output_crs: &Crs,
    geojson_crs: Option<&Crs>,
) -> Result<Written> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let model = &build.model;
    let tally = Tally::of(model);
    let to_out = Transformer::new(&model.working_crs, output_crs)?;
    let to_json = geojson_crs
        .map(|c| Transformer::new(&model.working_crs, c).map(|t| (t, c)))
        .transpose()?;
    let mut written = Written::default();
    let mut write_geo = |layer: Layer,
                         cols: Vec<(String, ArrayRef)>,
                         geoms: Vec<Option<Geometry<f64>>>|
     -> Result<()> {
        if let Some((t, crs)) = &to_json {
            let mut g = geoms.clone();
            let failed = t.transform_geometries(&mut g)?;
            if let Some((i, why)) = failed.first() {
                return Err(Error::crs(
                    Location::layer(layer.name()).index(*i),
                    format!("cannot write GeoJSON in {crs}: {why}"),
                ));
            }
            let props: Vec<geojson::JsonObject> = (0..g.len())
                .map(|i| {
                    cols.iter()
                        .map(|(k, a)| (k.clone(), json_value(a, i)))
                        .collect()
                })
                .collect();
            let system = match crs.shift() {
                Some(crate::crs::Shift::Gcj02) => {
                    "GCJ-02 (not RFC 7946 WGS84: for AMap and Tencent map SDKs)".to_owned()
                }
                Some(crate::crs::Shift::Bd09) => {
                    "BD-09 (not RFC 7946 WGS84: for Baidu map SDKs)".to_owned()
                }
                None => format!("{crs} longitude/latitude (RFC 7946)"),
            };
            let mut foreign = geojson::JsonObject::new();
            foreign.insert("shequ:coordinate_system".into(), json!(system));
            foreign.insert(
                "shequ:provenance".into(),
                provenance(build, layer, &t.steps()),
            );
            let json_name = format!("{}.geojson", layer.name());
            crate::io::geojson::write(&out.join(&json_name), &g, &props, Some(foreign), 7)?;
            written.files.push(json_name);
        }
        let name = format!("{}.parquet", layer.name());
        let mut geoms = geoms;
        let failed = to_out.transform_geometries(&mut geoms)?;
        if let Some((i, why)) = failed.first() {
            return Err(Error::crs(
                Location::default().file(&name).index(*i),
                format!("cannot write in {output_crs}: {why}"),
            ));
        }
        let prov = provenance(build, layer, &to_out.steps());
        geoparquet::write(&out.join(&name), cols, &geoms, output_crs, Some(prov))?;
        written.files.push(name);
        Ok(())
    };
    if model.has(Layer::Street) {
        let (c, g) = area_columns(model, Layer::Street, &model.streets, &tally);
        write_geo(Layer::Street, c, g)?;
    }
    if model.has(Layer::Community) {
        let (c, g) = area_columns(model, Layer::Community, &model.communities, &tally);
        write_geo(Layer::Community, c, g)?;
    }
    if model.has(Layer::Grid) {
        let (c, g) = area_columns(model, Layer::Grid, &model.grids, &tally);
        write_geo(Layer::Grid, c, g)?;
    }
    if model.has(Layer::Building) {
        let b = &model.buildings;
        let mut cols: Vec<(String, ArrayRef)> = vec![
            (
                "building_id".into(),
                Arc::new(
                    b.iter()
                        .map(|x| Some(x.id.as_str()))
                        .collect::<StringArray>(),
                ),
            ),
            (
                "name".into(),
                Arc::new(b.iter().map(|x| x.name.as_deref()).collect::<StringArray>()),
            ),
        ];
        let lineages: Vec<Lineage> = b.iter().map(|x| x.lineage).collect();
        cols.extend(parent_columns(model, Layer::Building, &lineages));
        cols.push((
            "footprint_area_m2".into(),
            Arc::new(Float64Array::from_iter(
                b.iter()
                    .map(|x| x.footprint.as_ref().map(geo::Area::unsigned_area)),
            )),
        ));
        for (k, name) in [(1, "households"), (2, "residents")] {
            cols.push((
                name.into(),
                Arc::new(UInt64Array::from_iter_values(
                    tally.buildings.iter().map(|c| c[k]),
                )),
            ));
        }
        cols.push((
            "source_index".into(),
            Arc::new(UInt64Array::from_iter_values(
                b.iter().map(|x| x.source_index as u64),
            )),
        ));
        let geoms = b
            .iter()
            .map(|x| {
                Some(match &x.footprint {
                    Some(f) => Geometry::MultiPolygon(MultiPolygon::clone(f)),
                    None => Geometry::Point(x.point.into()),
                })
            })
            .collect();
        write_geo(Layer::Building, cols, geoms)?;
    }
    if !model.facilities.is_empty() {
        let f = &model.facilities;
        let mut cols: Vec<(String, ArrayRef)> = vec![
            (
                "facility_id".into(),
                Arc::new(
                    f.iter()
                        .map(|x| Some(x.id.as_str()))
                        .collect::<StringArray>(),
                ),
            ),
            (
                "name".into(),
                Arc::new(f.iter().map(|x| x.name.as_deref()).collect::<StringArray>()),
            ),
            (
                "type".into(),
                Arc::new(
                    f.iter()
                        .map(|x| Some(x.kind.as_str()))
                        .collect::<StringArray>(),
                ),
            ),
            (
                "capacity".into(),
                Arc::new(Float64Array::from_iter(f.iter().map(|x| x.capacity))),
            ),
        ];
        let lineages: Vec<Lineage> = f.iter().map(|x| x.lineage).collect();
        cols.extend(parent_columns(model, Layer::Facility, &lineages));
        let geoms = f
            .iter()
            .map(|x| Some(Geometry::Point(x.point.into())))
            .collect();
        write_geo(Layer::Facility, cols, geoms)?;
    }
    if model.has(Layer::Household) {
        let mut df = model.households_frame()?;
        let path = out.join("households.parquet");
        let file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        ParquetWriter::new(file)
            .finish(&mut df)
            .map_err(|e| Error::Polars {
                at: Location::default().file(&path),
                source: Box::new(e),
            })?;
        written.files.push("households.parquet".into());
    }
    write_quality(&build.report, &out.join("quality.parquet"))?;
    written.files.push("quality.parquet".into());
    Ok(written)
}

/// Writes the quality report as a Parquet table with columns `layer`, `index`, `id`, `kind`,
/// `severity`, `detail`.
///
/// # Errors
/// [`Error::Io`] or [`Error::Parquet`].
pub fn write_quality(report: &QualityReport, path: &Path) -> Result<()> {
    let issues = report.issues();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(
            issues
                .iter()
                .map(|i| Some(i.layer.name()))
                .collect::<StringArray>(),
        ),
        Arc::new(UInt64Array::from_iter(
            issues.iter().map(|i| i.index.map(|v| v as u64)),
        )),
        Arc::new(
            issues
                .iter()
                .map(|i| i.id.as_deref())
                .collect::<StringArray>(),
        ),
        Arc::new(
            issues
                .iter()
                .map(|i| Some(i.kind.code()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            issues
                .iter()
                .map(|i| Some(i.severity.code()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            issues
                .iter()
                .map(|i| Some(i.detail.as_str()))
                .collect::<StringArray>(),
        ),
    ];
    let schema = Arc::new(Schema::new(vec![
        Field::new("layer", DataType::Utf8, false),
        Field::new("index", DataType::UInt64, true),
        Field::new("id", DataType::Utf8, true),
        Field::new("kind", DataType::Utf8, false),
        Field::new("severity", DataType::Utf8, false),
        Field::new("detail", DataType::Utf8, false),
    ]));
    let batch =
        arrow_array::RecordBatch::try_new(schema.clone(), cols).map_err(|e| Error::Parquet {
            at: Location::default().file(path),
            message: e.to_string(),
        })?;
    geoparquet::write_batch(path, schema, &batch)
}

impl Model {
    /// Households as a polars `DataFrame`: `household_id`, `building_id`, `grid_id`,
    /// `community_id`, `street_id` (null where absent or unplaced), `residents`, `placed`,
    /// `source_index`. Locations are not included (they are person-level data).
    ///
    /// # Examples
    /// ```
    /// use polars::prelude::*;
    /// let dir = tempfile::tempdir()?;
    /// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(5))?;
    /// let built = shequ::build(&shequ::Job::from_toml(dir.path().join("job.toml"))?)?;
    /// let per_grid = built
    ///     .model
    ///     .households_frame()?
    ///     .lazy()
    ///     .filter(col("placed"))
    ///     .group_by([col("grid_id")])
    ///     .agg([len().alias("households")])
    ///     .collect()?;
    /// assert_eq!(per_grid.height(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Polars`] (should not happen).
    pub fn households_frame(&self) -> Result<DataFrame> {
        let h = &self.households;
        let code = |layer: Layer, l: &Lineage| l.at(layer).map(|i| self.code(layer, i));
        let col = |layer: Layer| -> Column {
            let v: Vec<Option<&str>> = h.iter().map(|x| code(layer, &x.lineage)).collect();
            Column::new(format!("{}_id", layer.singular()).into(), v)
        };
        DataFrame::new_infer_height(vec![
            Column::new(
                "household_id".into(),
                h.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
            ),
            col(Layer::Building),
            col(Layer::Grid),
            col(Layer::Community),
            col(Layer::Street),
            Column::new(
                "residents".into(),
                h.iter().map(|x| x.residents).collect::<Vec<u32>>(),
            ),
            Column::new(
                "placed".into(),
                h.iter().map(|x| x.placed).collect::<Vec<bool>>(),
            ),
            Column::new(
                "source_index".into(),
                h.iter()
                    .map(|x| x.source_index as u64)
                    .collect::<Vec<u64>>(),
            ),
        ])
        .map_err(|e| Error::Polars {
            at: Location::layer("households"),
            source: Box::new(e),
        })
    }
}

/// SHA-256 of a file, hex encoded.
///
/// # Errors
/// [`Error::Io`].
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Where an output directory's manifest lives.
pub fn manifest_path(out: &Path) -> PathBuf {
    out.join("manifest.json")
}
