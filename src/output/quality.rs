//! `quality.parquet`: the quality report as a table.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};

use crate::error::{Error, Location, Result};
use crate::io::geoparquet;
use crate::model::level::Layer;
use crate::model::quality::QualityReport;
use crate::privacy::OutputKind;
/// Writes the quality report as a Parquet table with columns `layer`, `index`, `id`, `kind`,
/// `severity`, `detail`. Household and resident ids are masked in the report; in a research
/// run they are left out (null): the row index points into the data owner's own roster.
///
/// # Errors
/// [`Error::Io`] or [`Error::Parquet`].
pub fn write_quality(report: &QualityReport, path: &Path, kind: OutputKind) -> Result<()> {
    let (schema, batch) = quality_batch(report, kind)?;
    geoparquet::write_batch(path, schema, &batch)
}

/// The quality report as the record batch [`write_quality`] writes.
pub(crate) fn quality_batch(
    report: &QualityReport,
    kind: OutputKind,
) -> Result<(Arc<Schema>, arrow_array::RecordBatch)> {
    let issues = report.issues();
    let personal = |l: Layer| matches!(l, Layer::Household | Layer::Resident);
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
                .map(|i| match kind {
                    OutputKind::Research | OutputKind::ResearchDp if personal(i.layer) => None,
                    _ => i.id.as_deref(),
                })
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
            at: Location::layer("quality"),
            message: e.to_string(),
        })?;
    Ok((schema, batch))
}
