//! Spreadsheets (`.xlsx`, `.xlsm`, `.xls`, `.xlsb`, `.ods`) read through
//! [calamine](https://docs.rs/calamine) into a [`Table`](crate::io::table::Table), as a CSV roster is read.
//!
//! Departmental lists are rarely a clean table: a title row (often one merged cell) and a
//! date line above the header, a header over two rows with merged cells (`残疾信息` over
//! `残疾类别` and `残疾等级`), notes (`注：`, `填表人：`) below the data. [`read_sheet`](crate::io::sheet::read_sheet) finds the
//! header as the run of one to three rows, ending as early as possible within the first
//! [`HEADER_SEARCH_ROWS`](crate::io::sheet::HEADER_SEARCH_ROWS), in which every column asked for is named, either by one cell or as `parent/child` across the
//! rows (merged cells count for every cell they cover). The rows below it are the data; blank
//! rows are skipped.
//!
//! Cells become text: numbers that a spreadsheet holds exactly (integers below 10^15) as their
//! digits, larger or fractional numbers in a float's form (`1.1010519491231E17`), which the ID
//! check recognises as [stored as a number](crate::privacy::IdNumberProblem::StoredAsNumber);
//! dates as `YYYY-MM-DD` (with the time when it is not midnight); error cells as their code
//! (`#N/A`).

use std::path::{Path, PathBuf};

use calamine::{Data, Dimensions, Range, Reader, Sheets, open_workbook_auto};
use polars::prelude::*;

use super::rows::Table;
use crate::error::{Error, Location, Result};

/// Rows searched for the header from the top of the sheet.
pub const HEADER_SEARCH_ROWS: usize = 50;

/// A sheet read into a [`Table`], and where in the sheet its parts were found.
#[derive(Debug, Clone)]
pub struct SheetTable {
    /// The requested columns as text, one row per non-blank data row; `source_row(i)` counts
    /// data rows from the first row below the header, blank ones included.
    pub table: Table,
    /// The sheet read.
    pub sheet: String,
    /// The header's first and last row, 1-based as a spreadsheet shows them.
    pub header_rows: (usize, usize),
    /// Blank rows skipped below the header.
    pub blank_rows: usize,
}

impl SheetTable {
    /// The 1-based sheet row of table row `i`.
    pub fn sheet_row(&self, i: usize) -> usize {
        self.header_rows.1 + 1 + self.table.source_row(i)
    }
}

/// File extensions read as spreadsheets.
///
/// # Examples
/// ```
/// assert!(shequ::io::sheet::is_spreadsheet(std::path::Path::new("残联.XLSX")));
/// assert!(!shequ::io::sheet::is_spreadsheet(std::path::Path::new("roster.csv")));
/// ```
pub fn is_spreadsheet(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .is_some_and(|e| matches!(e.as_str(), "xlsx" | "xlsm" | "xls" | "xlsb" | "ods"))
}

/// Reads `columns` (header names as the sheet writes them) from `sheet` (or the first sheet)
/// of the workbook at `path`; `optional` columns too when the header has them.
///
/// # Examples
/// ```
/// use rust_xlsxwriter::{Format, Workbook};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("list.xlsx");
/// let mut book = Workbook::new();
/// let s = book.add_worksheet();
/// s.merge_range(0, 0, 0, 2, "某区残疾人名册", &Format::new())?; // a title row
/// s.write_row(2, 0, ["姓名", "身份证号", "残疾等级"])?;
/// s.write_row(3, 0, ["张三", "11010519491231002X", "二级"])?;
/// s.write_number(4, 1, 1.10105194912310e17)?; // an ID stored as a number
/// s.write(6, 0, "注：本表由社区填报")?;
/// book.save(&path)?;
///
/// let t = shequ::io::sheet::read_sheet("registers", &path, None, &["姓名", "身份证号"], &[])?;
/// assert_eq!(t.header_rows, (3, 3));
/// let ids = t.table.text("身份证号");
/// assert_eq!(ids.get(0), Some("11010519491231002X"));
/// assert_eq!(ids.get(1), Some("1.1010519491231E17"));
/// assert_eq!(t.table.text("姓名").get(2), Some("注：本表由社区填报"));
/// assert_eq!((t.sheet_row(2), t.blank_rows), (7, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Data`] naming the file (and sheet) for a workbook that cannot be opened (not a
/// spreadsheet, truncated, password-protected), a missing sheet, or a header not found (with
/// the closest row and the names it lacks); [`Error::Polars`] if the table cannot be made.
pub fn read_sheet(
    layer: &str,
    path: &Path,
    sheet: Option<&str>,
    columns: &[&str],
    optional: &[&str],
) -> Result<SheetTable> {
    let at = Location::layer(layer).file(path);
    // The reader is pure Rust over a zip or compound file; a damaged file must give a located
    // error, not a panic, whatever it does inside.
    std::panic::catch_unwind(|| read_book(path, sheet, columns, optional, &at)).unwrap_or_else(
        |_| {
            Err(Error::data(
                at.clone(),
                "not a readable workbook (the spreadsheet reader failed)",
            ))
        },
    )
}

fn read_book(
    path: &Path,
    sheet: Option<&str>,
    columns: &[&str],
    optional: &[&str],
    at: &Location,
) -> Result<SheetTable> {
    let at = at.clone();
    let mut book = open_workbook_auto(path)
        .map_err(|e| Error::data(at.clone(), format!("cannot open the workbook: {e}")))?;
    let names = book.sheet_names();
    let name = match sheet {
        Some(s) if names.iter().any(|n| n == s) => s.to_owned(),
        Some(s) => {
            return Err(Error::data(
                at,
                format!("no sheet {s:?}; the workbook has {names:?}"),
            ));
        }
        None => names
            .first()
            .cloned()
            .ok_or_else(|| Error::data(at.clone(), "the workbook has no sheet"))?,
    };
    let at = at.column(format!("sheet {name}"));
    let range = book
        .worksheet_range(&name)
        .map_err(|e| Error::data(at.clone(), format!("cannot read the sheet: {e}")))?;
    let merged = merged_cells(&mut book, &name);
    let grid = Grid::new(&range, &merged);
    let header = find_header(&grid, columns, optional).map_err(|m| Error::data(at.clone(), m))?;
    to_table(path.to_owned(), name, &grid, &header).map_err(|e| Error::Polars {
        at,
        source: Box::new(e),
    })
}

/// The merged regions of a sheet, in absolute cell positions (`.xlsx` and `.xls`; other
/// formats give none, and a header's empty parent cells are then filled from the left).
fn merged_cells(
    book: &mut Sheets<std::io::BufReader<std::fs::File>>,
    name: &str,
) -> Vec<Dimensions> {
    match book {
        Sheets::Xlsx(x) => x.worksheet_merge_cells(name).and_then(|r| r.ok()),
        Sheets::Xls(x) => x.worksheet_merge_cells(name),
        _ => None,
    }
    .unwrap_or_default()
}

/// The sheet's cells as text, relative to its used range.
struct Grid {
    /// 0-based sheet row and column of cell (0, 0).
    origin: (usize, usize),
    cells: Vec<Vec<Option<String>>>,
    /// Merged regions relative to `origin`.
    merged: Vec<((usize, usize), (usize, usize))>,
    /// Whether merged regions are known for this format.
    merges_known: bool,
}

impl Grid {
    fn new(range: &Range<Data>, merged: &[Dimensions]) -> Grid {
        let origin = range
            .start()
            .map_or((0, 0), |(r, c)| (r as usize, c as usize));
        let cells = range
            .rows()
            .map(|row| row.iter().map(cell_text).collect())
            .collect();
        let rel = |(r, c): (u32, u32)| {
            (
                (r as usize).saturating_sub(origin.0),
                (c as usize).saturating_sub(origin.1),
            )
        };
        Grid {
            origin,
            cells,
            merged: merged.iter().map(|d| (rel(d.start), rel(d.end))).collect(),
            merges_known: !merged.is_empty(),
        }
    }

    fn get(&self, r: usize, c: usize) -> Option<&str> {
        self.cells.get(r)?.get(c)?.as_deref()
    }

    fn width(&self) -> usize {
        self.cells.iter().map(Vec::len).max().unwrap_or(0)
    }

    /// A header cell: its own text, or the text of the merged region (or, without merge
    /// information, of the nearest cell to its left in a parent row) that covers it.
    fn header_cell(&self, r: usize, c: usize, parent_row: bool) -> Option<&str> {
        if let Some(t) = self.get(r, c) {
            return Some(t);
        }
        if let Some(&((r0, c0), _)) = self
            .merged
            .iter()
            .find(|((r0, c0), (r1, c1))| (*r0..=*r1).contains(&r) && (*c0..=*c1).contains(&c))
        {
            return self.get(r0, c0);
        }
        if parent_row && !self.merges_known {
            return (0..c).rev().find_map(|cc| self.get(r, cc));
        }
        None
    }
}

/// A cell as text (see the module docs); `None` for an empty or blank cell.
fn cell_text(d: &Data) -> Option<String> {
    let s = match d {
        Data::Empty => return None,
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.trim().to_owned(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => float_text(*f),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) => match dt.as_datetime() {
            Some(t) if t.time() == chrono::NaiveTime::MIN => t.date().to_string(),
            Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
            None => float_text(dt.as_f64()),
        },
        Data::Error(e) => e.to_string(),
    };
    (!s.is_empty()).then_some(s)
}

/// A number's text: its digits when a spreadsheet holds it exactly as an integer, else a
/// float's form, so no digit a spreadsheet dropped is ever printed as if it were kept.
fn float_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else if f.abs() >= 1e15 {
        format!("{f:E}")
    } else {
        format!("{f}")
    }
}

/// A header name compared without spaces, line breaks and full-width forms.
fn header_key(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// Where the header was found, and the column of each name asked for.
struct Header {
    rows: (usize, usize),
    /// (name asked for, relative column).
    columns: Vec<(String, usize)>,
}

/// The first run of 1–3 rows naming every column asked for.
fn find_header(
    grid: &Grid,
    columns: &[&str],
    optional: &[&str],
) -> std::result::Result<Header, String> {
    let want: Vec<String> = columns.iter().map(|c| header_key(c)).collect();
    let mut best: (usize, usize) = (0, 0); // (names found, row)
    // The earliest last row wins, then the fewest rows: a title row above is never taken in.
    for bottom in 0..grid.cells.len().min(HEADER_SEARCH_ROWS) {
        for depth in 1..=3usize.min(bottom + 1) {
            let top = bottom + 1 - depth;
            let labels = column_labels(grid, top, bottom);
            let found: Vec<Option<usize>> = want.iter().map(|w| find_label(&labels, w)).collect();
            let n = found.iter().flatten().count();
            if n > best.0 {
                best = (n, bottom);
            }
            if n == want.len() {
                let mut cols: Vec<(String, usize)> = columns
                    .iter()
                    .zip(found)
                    .map(|(c, f)| ((*c).to_owned(), f.expect("found")))
                    .collect();
                for o in optional {
                    if let Some(c) = find_label(&labels, &header_key(o)) {
                        cols.push(((*o).to_owned(), c));
                    }
                }
                return Ok(Header {
                    rows: (top, bottom),
                    columns: cols,
                });
            }
        }
    }
    let labels = column_labels(grid, best.1, best.1);
    let missing: Vec<&str> = columns
        .iter()
        .zip(&want)
        .filter(|(_, w)| find_label(&labels, w).is_none())
        .map(|(c, _)| *c)
        .collect();
    Err(format!(
        "no header row in the first {HEADER_SEARCH_ROWS} rows names every column asked for; \
         the closest, row {}, lacks {missing:?}",
        grid.origin.0 + best.1 + 1
    ))
}

/// Per column, the labels a header over rows `top..=bottom` gives it: each cell's text and the
/// `parent/child` path of the rows' texts.
fn column_labels(grid: &Grid, top: usize, bottom: usize) -> Vec<Vec<String>> {
    (0..grid.width())
        .map(|c| {
            let texts: Vec<String> = (top..=bottom)
                .filter_map(|r| grid.header_cell(r, c, r < bottom))
                .map(header_key)
                .collect();
            let mut labels = texts.clone();
            let mut path: Vec<&str> = Vec::new();
            for t in &texts {
                if path.last() != Some(&t.as_str()) {
                    path.push(t);
                }
            }
            if path.len() > 1 {
                labels.push(path.join("/"));
            }
            labels
        })
        .collect()
}

/// The first column with label `want`.
fn find_label(labels: &[Vec<String>], want: &str) -> Option<usize> {
    labels.iter().position(|l| l.iter().any(|x| x == want))
}

/// The data rows below the header as a table of the requested columns.
fn to_table(
    path: PathBuf,
    sheet: String,
    grid: &Grid,
    header: &Header,
) -> PolarsResult<SheetTable> {
    let first = header.rows.1 + 1;
    let mut kept: Vec<u32> = Vec::new();
    let mut blank_rows = 0;
    for r in first..grid.cells.len() {
        if grid.cells[r].iter().all(Option::is_none) {
            blank_rows += 1;
        } else {
            kept.push((r - first) as u32);
        }
    }
    let cols = header
        .columns
        .iter()
        .map(|(name, c)| {
            let values = kept.iter().map(|&i| grid.get(first + i as usize, *c));
            Column::new(
                name.as_str().into(),
                StringChunked::from_iter(values).into_series(),
            )
        })
        .collect();
    let rows_read = kept.len();
    let frame = DataFrame::new(rows_read, cols)?;
    let origin_row = grid.origin.0;
    Ok(SheetTable {
        table: Table {
            path,
            frame,
            source_rows: Some(kept),
            rows_read,
            unreadable: Vec::new(),
        },
        sheet,
        header_rows: (
            origin_row + header.rows.0 + 1,
            origin_row + header.rows.1 + 1,
        ),
        blank_rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_never_print_lost_digits() {
        assert_eq!(float_text(110105491231002.0), "110105491231002");
        assert_eq!(float_text(1.10105194912310e17), "1.1010519491231E17");
        assert_eq!(float_text(2.5), "2.5");
        assert_eq!(float_text(2.0), "2");
    }

    #[test]
    fn header_keys_ignore_spaces_and_full_width() {
        assert_eq!(header_key(" 身份证\n号码 "), "身份证号码");
        assert_eq!(header_key("ＩＤ"), "ID");
    }
}
