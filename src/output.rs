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
) -> (Vec<(String, ArrayRef)>, Vec<Option<Geometry<f64>>>) {
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

/// Writes the model's layers, the households table and the quality report under `out`.
///
/// # Errors
/// [`Error::Io`], [`Error::Parquet`], [`Error::Polars`] or [`Error::Crs`] (output CRS).
pub fn write_model(build: &Build, out: &Path, output_crs: &Crs) -> Result<Written> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let model = &build.model;
    let tally = Tally::of(model);
    let to_out = Transformer::new(&model.working_crs, output_crs)?;
    let provenance = json!({
        "shequ:working_crs": model.working_crs.definition(),
        "shequ:conversions": [format!("{} -> {} (PROJ)", model.working_crs, output_crs)],
    });
    let mut written = Written::default();
    let mut write_geo = |name: &str,
                         cols: Vec<(String, ArrayRef)>,
                         mut geoms: Vec<Option<Geometry<f64>>>|
     -> Result<()> {
        let failed = to_out.transform_geometries(&mut geoms)?;
        if let Some((i, why)) = failed.first() {
            return Err(Error::crs(
                Location::default().file(name).index(*i),
                format!("cannot write in {output_crs}: {why}"),
            ));
        }
        geoparquet::write(
            &out.join(name),
            cols,
            &geoms,
            output_crs,
            Some(provenance.clone()),
        )?;
        written.files.push(name.to_owned());
        Ok(())
    };
    if model.has(Layer::Street) {
        let (c, g) = area_columns(model, Layer::Street, &model.streets, &tally);
        write_geo("streets.parquet", c, g)?;
    }
    if model.has(Layer::Community) {
        let (c, g) = area_columns(model, Layer::Community, &model.communities, &tally);
        write_geo("communities.parquet", c, g)?;
    }
    if model.has(Layer::Grid) {
        let (c, g) = area_columns(model, Layer::Grid, &model.grids, &tally);
        write_geo("grids.parquet", c, g)?;
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
            Arc::new(Float64Array::from_iter(b.iter().map(|x| {
                x.footprint.as_ref().map(|f| geo::Area::unsigned_area(f))
            }))),
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
        write_geo("buildings.parquet", cols, geoms)?;
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
        write_geo("facilities.parquet", cols, geoms)?;
    }
    if model.has(Layer::Household) {
        let mut df = model.households_frame()?;
        let path = out.join("households.parquet");
        let file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        ParquetWriter::new(file)
            .finish(&mut df)
            .map_err(|e| Error::Polars {
                at: Location::default().file(&path),
                source: e,
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
            source: e,
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
