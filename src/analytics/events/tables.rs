//! The small tables the events analysis ships as data (calendar, classification, deadlines),
//! read the same way.

use crate::error::{Error, Location, Result};

/// The rows of a small CSV table, each as its `columns` (trimmed), in order.
pub(super) fn read_rows<const N: usize>(
    text: &str,
    file: &str,
    layer: &str,
    columns: &[&str; N],
) -> Result<Vec<[String; N]>> {
    let at = || Location::layer(layer).file(file);
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| Error::data(at(), e.to_string()))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    let mut cols = [0usize; N];
    for (c, n) in cols.iter_mut().zip(columns) {
        *c = header
            .iter()
            .position(|h| h == n)
            .ok_or_else(|| Error::column_not_found(at().column(*n), &header))?;
    }
    let mut rows = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| Error::data(at().index(i), e.to_string()))?;
        rows.push(cols.map(|c| rec.get(c).unwrap_or("").trim().to_owned()));
    }
    Ok(rows)
}
