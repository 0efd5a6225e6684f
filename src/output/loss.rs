//! The information a release keeps: per count table, the share of cells published
//! (research) or the error of its noisy counts (research-dp), and `dp_accuracy.parquet`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, StringArray, UInt64Array};
use arrow_schema::{DataType, Field};

use crate::analytics::{Coverage, SpecialNeeds};
use crate::error::Result;
use crate::model::level::Layer;
use crate::output::release::Release;
use crate::output::{BASE_COLUMNS, Out, special, write_table};

/// Of one research output table's count cells (one per unit and released count column), how
/// many are published: the information kept by suppression.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Published {
    /// The table, as its file is named without extension (`grids`, `special_needs/grid`).
    pub table: String,
    /// Cells published.
    pub published: usize,
    /// Cells in all.
    pub cells: usize,
}

impl Published {
    /// The share of cells published (1 for a table without cells).
    pub fn share(&self) -> f64 {
        if self.cells == 0 {
            1.0
        } else {
            self.published as f64 / self.cells as f64
        }
    }
}

/// The count tables of a release: (table name, level, released columns): the level tables
/// (base counts), and the special-needs and coverage tables of each level.
fn count_tables(
    release: &Release,
    special_needs: Option<&SpecialNeeds>,
    coverage: Option<&Coverage>,
) -> Vec<(String, Layer, Vec<String>)> {
    let special: Option<Vec<String>> = special_needs.map(|sn| {
        let mut v = vec!["households".to_owned(), "residents".to_owned()];
        v.extend(sn.count_names());
        v
    });
    let within: Option<Vec<String>> = coverage.map(|cov| {
        cov.measures
            .iter()
            .flat_map(|m| crate::output::coverage::within_names(cov, m))
            .collect()
    });
    let mut out = Vec::new();
    for &level in release.levels() {
        let base = BASE_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
        out.push((level.name().to_owned(), level, base));
        for (dir, names) in [
            (special::DIR, &special),
            (crate::output::coverage::DIR, &within),
        ] {
            if let Some(names) = names {
                out.push((format!("{dir}/{}", level.singular()), level, names.clone()));
            }
        }
    }
    out
}

/// The [`Published`] shares of a research release's count tables.
pub(crate) fn published_shares(
    release: &Release,
    special_needs: Option<&SpecialNeeds>,
    coverage: Option<&Coverage>,
) -> Vec<Published> {
    count_tables(release, special_needs, coverage)
        .into_iter()
        .map(|(table, level, names)| {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let (published, cells) = release.published(level, &refs);
            Published {
                table,
                published,
                cells,
            }
        })
        .collect()
}

/// Of one noisy output table's count cells: the mean absolute error against the true counts.
/// For the data holder: the run reports it, no output file holds it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TableError {
    /// The table, as its file is named without extension.
    pub table: String,
    /// Mean absolute error of its cells.
    pub mean_abs_error: f64,
    /// Cells.
    pub cells: usize,
}

pub(crate) fn table_errors(
    release: &Release,
    special_needs: Option<&SpecialNeeds>,
    coverage: Option<&Coverage>,
) -> Vec<TableError> {
    count_tables(release, special_needs, coverage)
        .into_iter()
        .map(|(table, level, names)| {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let (mean_abs_error, cells) = release.mean_abs_error(level, &refs);
            TableError {
                table,
                mean_abs_error,
                cells,
            }
        })
        .collect()
}

/// Writes `dp_accuracy.parquet`: per level and column of a noisy release, its table, the
/// mechanism, the noise scale and the half-width of the noise's central 95% interval.
pub(crate) fn write_accuracy(
    out: &Out,
    release: &Release,
    noisy: &crate::privacy::dp::Noisy,
) -> Result<()> {
    let mechanism = release.mechanism().unwrap_or_default();
    let n = &noisy.noise;
    let fields = vec![
        Field::new("level", DataType::Utf8, false),
        Field::new("table", DataType::Utf8, false),
        Field::new("column", DataType::Utf8, false),
        Field::new("mechanism", DataType::Utf8, false),
        Field::new("scale", DataType::Float64, false),
        Field::new("ci95_half_width", DataType::UInt64, false),
    ];
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(n.iter().map(|x| x.level))),
        Arc::new(StringArray::from_iter_values(n.iter().map(|x| x.table))),
        Arc::new(StringArray::from_iter_values(
            n.iter().map(|x| release.names()[x.column].as_str()),
        )),
        Arc::new(StringArray::from_iter_values(n.iter().map(|_| mechanism))),
        Arc::new(Float64Array::from_iter_values(n.iter().map(|x| x.scale))),
        Arc::new(UInt64Array::from_iter_values(n.iter().map(|x| x.ci95))),
    ];
    write_table(out, "dp_accuracy.parquet", fields, cols)
}

/// Per level of a noisy release, each count column's mechanism, noise scale and 95%
/// half-width, as JSON for the metadata of the level's tables.
pub(crate) fn accuracy_by_level(
    release: &Release,
    noisy: &crate::privacy::dp::Noisy,
) -> HashMap<Layer, serde_json::Map<String, serde_json::Value>> {
    let mut out: HashMap<Layer, serde_json::Map<String, serde_json::Value>> = HashMap::new();
    for n in &noisy.noise {
        let Some(&level) = release.levels().iter().find(|l| l.singular() == n.level) else {
            continue;
        };
        out.entry(level).or_default().insert(
            release.names()[n.column].clone(),
            serde_json::json!({
                "mechanism": release.mechanism(),
                "scale": n.scale,
                "ci95_half_width": n.ci95,
            }),
        );
    }
    out
}
