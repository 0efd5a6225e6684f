//! Household rows: read, coordinates parsed, checked and brought to lon/lat.

use geo::Coord;
use polars::prelude::{DataType, Float64Chunked, StaticArray, StringChunked};
use rayon::prelude::*;

use crate::crs::{CoordCheck, Crs, Transformer};
use crate::error::{Error, Location, Result, excerpt};
use crate::io::table::{Table, clean_code, clean_code_ref, parse_number, read_table_with};
use crate::model::build::frame::coord_issue;
use crate::model::build::{Builder, InputInfo, relocate};
use crate::model::ids::HouseholdId;
use crate::model::level::Layer;
use crate::model::quality::{IssueKind, Severity};

impl Builder<'_> {
    pub(crate) fn read_households(
        &mut self,
        h: &crate::job::HouseholdLayer,
    ) -> Result<HouseholdRows> {
        let path = self.job.resolve(&h.path);
        let t = read_household_table(h, &path, &[])?;
        let crs = household_crs(h, &path)?;
        let located = h.lon.is_some();
        self.inputs.push(InputInfo {
            layer: Layer::Household,
            path: path.clone(),
            rows: t.rows_read,
            crs: located.then(|| crs.to_string()),
            crs_source: located.then_some(if h.crs.is_some() { "job" } else { "default" }),
            conversions: Vec::new(),
        });
        self.household_rows(h, &t, &crs)
    }

    /// The household rows of a table read with [`read_household_table`]: ids cleaned, building
    /// codes, coordinates parsed, checked and brought to lon/lat (in `crs` before), unreadable
    /// rows reported. Rows are numbered by the table's source rows.
    pub(crate) fn household_rows(
        &mut self,
        h: &crate::job::HouseholdLayer,
        t: &Table,
        crs: &Crs,
    ) -> Result<HouseholdRows> {
        let n = t.frame.height();
        let ids = t.text_column(&h.id);
        let mut rows = HouseholdRows {
            rows_read: t.rows_read,
            source: (0..n).into_par_iter().map(|i| t.source_row(i)).collect(),
            ids: (0..n)
                .into_par_iter()
                .map(|i| ids.get(i).and_then(clean_code_ref).map(HouseholdId::new))
                .collect(),
            buildings: h.building.as_ref().map(|b| {
                let b = t.text_column(b);
                (0..n)
                    .into_par_iter()
                    .map(|i| b.get(i).and_then(clean_code))
                    .collect()
            }),
            coords: vec![None; n],
            rejected: vec![false; n],
        };
        for (row, why) in &t.unreadable {
            self.report.push(
                Layer::Household,
                Some(*row),
                None,
                IssueKind::UnreadableRow,
                Severity::Rejected,
                why.clone(),
            );
        }
        if let (Some(lon), Some(lat)) = (&h.lon, &h.lat) {
            self.household_coords(t, &mut rows, lon, lat, crs)?;
        }
        Ok(rows)
    }

    /// Parses, checks and converts household coordinates to lon/lat.
    pub(crate) fn household_coords(
        &mut self,
        t: &Table,
        rows: &mut HouseholdRows,
        lon: &str,
        lat: &str,
        crs: &Crs,
    ) -> Result<()> {
        // Numeric columns (Parquet): no text to parse; in parallel.
        if let (Some(xs), Some(ys)) = (t.numbers(lon), t.numbers(lat)) {
            let (xs, ys) = (xs.rechunk(), ys.rechunk());
            let value = |c: &Float64Chunked, i: usize| match c.downcast_iter().next() {
                Some(a) if c.chunks().len() == 1 => a.get(i),
                _ => c.get(i),
            };
            let pair = |i: usize| (value(&xs, i), value(&ys, i));
            rows.coords.par_iter_mut().enumerate().for_each(|(i, c)| {
                if let (Some(x), Some(y)) = pair(i) {
                    if x.is_finite() && y.is_finite() {
                        *c = Some(Coord { x, y });
                    }
                }
            });
            let bad: Vec<usize> = (0..rows.coords.len())
                .into_par_iter()
                .filter(|&i| rows.coords[i].is_none() && pair(i) != (None, None))
                .collect();
            for i in bad {
                let (x, y) = pair(i);
                let detail = format!(
                    "coordinates {}, {} are not finite numbers",
                    x.map_or("(blank)".to_owned(), |v| v.to_string()),
                    y.map_or("(blank)".to_owned(), |v| v.to_string())
                );
                self.bad_coordinates(rows, i, IssueKind::BadValue, detail);
            }
            return self.check_household_coords(rows, crs);
        }
        let text = |name: &str| -> Result<StringChunked> {
            if t.numbers(name).is_none() {
                return Ok(t.text(name).clone());
            }
            let c = t.frame.column(name).and_then(|c| c.cast(&DataType::String));
            let c = c.map_err(|e| Error::Polars {
                at: Location::layer(Layer::Household.name()).column(name),
                source: Box::new(e),
            })?;
            Ok(c.str().expect("cast to String").clone())
        };
        let (xs, ys) = (text(lon)?, text(lat)?);
        for i in 0..t.frame.height() {
            let (x, y) = (xs.get(i), ys.get(i));
            let blank = |v: Option<&str>| v.is_none_or(|s| s.trim().is_empty());
            if blank(x) && blank(y) {
                continue;
            }
            match (x.and_then(parse_number), y.and_then(parse_number)) {
                (Some(x), Some(y)) => rows.coords[i] = Some(Coord { x, y }),
                _ => {
                    let detail = format!(
                        "coordinates {:?}, {:?} are not numbers",
                        x.unwrap_or(""),
                        y.unwrap_or("")
                    );
                    self.bad_coordinates(rows, i, IssueKind::BadValue, detail);
                }
            }
        }
        self.check_household_coords(rows, crs)
    }

    /// Reports household row `i`'s coordinates as unusable (`kind`): a warning when it has a
    /// building code to place it by, else the row is rejected.
    pub(crate) fn bad_coordinates(
        &mut self,
        rows: &mut HouseholdRows,
        i: usize,
        kind: IssueKind,
        detail: String,
    ) {
        let has_building = rows.building(i).is_some();
        self.report.push(
            Layer::Household,
            Some(rows.source[i]),
            rows.id(i),
            kind,
            if has_building {
                Severity::Warning
            } else {
                Severity::Rejected
            },
            detail,
        );
        rows.rejected[i] = !has_building;
    }

    /// Converts the parsed household coordinates (`rows.coords`, in `crs`) to lon/lat and
    /// checks them against the region; those outside are reported and dropped.
    pub(crate) fn check_household_coords(
        &mut self,
        rows: &mut HouseholdRows,
        crs: &Crs,
    ) -> Result<()> {
        let to_lonlat = Transformer::new(crs, &self.lonlat)?;
        for (i, why) in to_lonlat.transform_points(&mut rows.coords)? {
            let detail = format!("cannot transform from {crs}: {}", excerpt(&why));
            self.bad_coordinates(rows, i, IssueKind::OutOfRange, detail);
        }
        let region = self.region_for(crs);
        let bad: Vec<(usize, CoordCheck, Coord<f64>)> = rows
            .coords
            .par_iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let c = (*c)?;
                let v = region.check(c.x, c.y);
                (v != CoordCheck::Ok).then_some((i, v, c))
            })
            .collect();
        for (i, v, c) in bad {
            rows.coords[i] = None;
            let (kind, detail) = coord_issue(v, c, crs, 2);
            self.bad_coordinates(rows, i, kind, detail);
        }
        Ok(())
    }
}

/// The household layer's table at `path`: its id, building and coordinate columns (the
/// coordinates as numbers where the file has them so), and `more` (required).
pub(crate) fn read_household_table(
    h: &crate::job::HouseholdLayer,
    path: &std::path::Path,
    more: &[&str],
) -> Result<Table> {
    let mut cols = vec![h.id.as_str()];
    cols.extend(h.building.as_deref());
    cols.extend(h.lon.as_deref());
    cols.extend(h.lat.as_deref());
    cols.extend(more);
    let mut numbers: Vec<&str> = h.lon.iter().chain(&h.lat).map(String::as_str).collect();
    numbers.extend(more);
    read_table_with(
        Layer::Household.name(),
        path,
        &cols,
        &numbers,
        &[],
        h.encoding,
    )
}

/// The CRS of the household layer's coordinates (lon/lat unless the job names one).
pub(crate) fn household_crs(h: &crate::job::HouseholdLayer, path: &std::path::Path) -> Result<Crs> {
    match &h.crs {
        Some(c) => Crs::parse(c).map_err(|e| relocate(e, Layer::Household, path)),
        None => Ok(Crs::lonlat()),
    }
}

pub(crate) struct HouseholdRows {
    pub(crate) rows_read: usize,
    pub(crate) source: Vec<usize>,
    pub(crate) ids: Vec<Option<HouseholdId>>,
    /// The declared building codes, when the layer has a building column.
    pub(crate) buildings: Option<Vec<Option<String>>>,
    pub(crate) coords: Vec<Option<Coord<f64>>>,
    pub(crate) rejected: Vec<bool>,
}

impl HouseholdRows {
    /// Row `i`'s declared building code.
    pub(crate) fn building(&self, i: usize) -> Option<&str> {
        self.buildings.as_ref().and_then(|b| b[i].as_deref())
    }

    /// The box of the rows' coordinates (in lon/lat once checked), if any row has them.
    pub(crate) fn extent(&self) -> Option<geo::Rect<f64>> {
        let mut it = self.coords.iter().flatten();
        let first = *it.next()?;
        let (lo, hi) = it.fold((first, first), |(lo, hi), c| {
            (
                Coord {
                    x: lo.x.min(c.x),
                    y: lo.y.min(c.y),
                },
                Coord {
                    x: hi.x.max(c.x),
                    y: hi.y.max(c.y),
                },
            )
        });
        Some(geo::Rect::new(lo, hi))
    }

    /// Row `i`'s id.
    pub(crate) fn id(&self, i: usize) -> Option<&str> {
        self.ids[i].as_ref().map(HouseholdId::as_str)
    }
}
