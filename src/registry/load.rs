//! Reading one register into rows normalised for linkage.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::names::name_key;
use super::options::RegisterOptions;
use super::report::{Finding, FindingKind};
use crate::error::Result;
use crate::io::sheet::{is_spreadsheet, read_sheet};
use crate::io::table::{Table, TextColumn, parse_birth_date, read_table};
use crate::model::Sex;
use crate::privacy::{CitizenId, IdNumberProblem, link_id_number};

/// One row of a register, normalised for linkage. Identifiers stay inside the library: the
/// ID number is packed ([`CitizenId`]), the name is a comparison key.
#[derive(Debug, Clone)]
pub struct RegisterRow {
    /// The row as the file's user sees it: the spreadsheet's row number, or for CSV and
    /// Parquet the 1-based data row.
    pub row: usize,
    /// The ID number, or why it cannot be used.
    pub id: std::result::Result<CitizenId, IdNumberProblem>,
    /// The ID number was a 15-digit first-generation number, upgraded.
    pub upgraded: bool,
    /// The masked ID number as written, for reports.
    pub masked: String,
    /// The name's comparison key ([`name_key`]).
    pub name: Option<String>,
    /// The birth date: the register's column, else the ID number's.
    pub birth: Option<NaiveDate>,
    /// The register's sex column.
    pub sex: Option<Sex>,
    /// The register's community (name or code), trimmed.
    pub community: Option<String>,
    /// The status value when it is one of the register's inactive values.
    pub inactive: Option<String>,
    /// The values of the register's `fields`, in the order of its `fields` table.
    pub fields: Vec<Option<String>>,
}

/// A register read: its rows and what reading found.
#[derive(Debug, Clone)]
pub struct Register {
    /// The options it was read with.
    pub options: RegisterOptions,
    /// The file.
    pub path: PathBuf,
    /// Spreadsheets: the sheet and its header rows (1-based).
    pub sheet: Option<(String, (usize, usize))>,
    /// Data rows read (blank spreadsheet rows aside).
    pub rows_read: usize,
    /// The rows that name a person, in file order.
    pub rows: Vec<RegisterRow>,
    /// What reading found: rows that are not a person, unusable or duplicated ID numbers,
    /// sex contradicting the ID number.
    pub findings: Vec<Finding>,
}

/// Reads `options`'s file (relative paths against `base`).
///
/// # Errors
/// The reader's: the file cannot be opened or read, a column is not in its header.
pub fn read_register(options: &RegisterOptions, base: &Path) -> Result<Register> {
    let path = if options.path.is_absolute() {
        options.path.clone()
    } else {
        base.join(&options.path)
    };
    let layer = format!("registers.{}", options.id);
    let (required, optional) = options.columns.named();
    let mut columns: Vec<&str> = required.iter().map(|(_, c)| *c).collect();
    let mut opt: Vec<&str> = optional.iter().map(|(_, c)| *c).collect();
    opt.extend(options.fields.values().map(String::as_str));
    let (table, sheet, rows): (Table, _, Vec<usize>) = if is_spreadsheet(&path) {
        columns.extend(opt.iter().copied());
        let s = read_sheet(&layer, &path, options.sheet.as_deref(), &columns, &[])?;
        let rows = (0..s.table.frame.height())
            .map(|i| s.sheet_row(i))
            .collect();
        (s.table, Some((s.sheet, s.header_rows)), rows)
    } else {
        columns.extend(opt.iter().copied());
        let t = read_table(&layer, &path, &columns, options.encoding)?;
        let rows = (0..t.frame.height()).map(|i| t.source_row(i) + 1).collect();
        (t, None, rows)
    };
    let mut reg = Register {
        options: options.clone(),
        path,
        sheet,
        rows_read: table.rows_read,
        rows: Vec::with_capacity(table.frame.height()),
        findings: Vec::new(),
    };
    for (i, why) in &table.unreadable {
        reg.push(*i + 1, FindingKind::Unreadable, String::new(), why.clone());
    }
    normalise_rows(&mut reg, &table, &rows);
    Ok(reg)
}

/// Reads every register of `job` ([`read_registers_from`] with the job's directory).
///
/// # Errors
/// As [`read_register`].
pub fn read_registers(job: &crate::Job) -> Result<Vec<Register>> {
    read_registers_from(&job.registers, &job.base_dir)
}

/// Reads the registers of `options` (relative paths against `base`), several at a time; the
/// registers come in the order of `options`, and an error is the first register's in that
/// order.
///
/// # Errors
/// As [`read_register`].
///
/// # Examples
/// ```
/// use shequ::registry::{RegisterOptions, read_registers_from};
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("a.csv"), "身份证号,姓名\n11010519491231002X,张三\n")?;
/// std::fs::write(dir.path().join("b.csv"), "身份证号,姓名\n,李四\n,王五\n")?;
/// let options: Vec<RegisterOptions> = ["a", "b"]
///     .iter()
///     .map(|k| {
///         toml::from_str(&format!(
///             "id = '{k}'\npath = '{k}.csv'\n[columns]\nid_number = '身份证号'\nname = '姓名'"
///         ))
///     })
///     .collect::<Result<_, _>>()?;
/// let registers = read_registers_from(&options, dir.path())?;
/// assert_eq!(registers.iter().map(|r| r.rows.len()).collect::<Vec<_>>(), [1, 2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_registers_from(options: &[RegisterOptions], base: &Path) -> Result<Vec<Register>> {
    use rayon::prelude::*;
    let read: Vec<Result<Register>> = options.par_iter().map(|o| read_register(o, base)).collect();
    read.into_iter().collect()
}

impl Register {
    fn push(&mut self, row: usize, kind: FindingKind, masked: String, detail: String) {
        self.findings.push(Finding {
            register: self.options.id.clone(),
            row,
            id: masked,
            kind,
            detail,
            resident: None,
            community: None,
        });
    }
}

/// The register's columns, by role.
struct Columns<'t> {
    id: TextColumn<'t>,
    name: TextColumn<'t>,
    by_role: Vec<(&'static str, TextColumn<'t>)>,
    fields: Vec<TextColumn<'t>>,
}

impl<'t> Columns<'t> {
    fn new(options: &RegisterOptions, t: &'t Table) -> Columns<'t> {
        let (_, optional) = options.columns.named();
        Columns {
            id: t.text_column(&options.columns.id_number),
            name: t.text_column(&options.columns.name),
            by_role: optional
                .into_iter()
                .map(|(role, c)| (role, t.text_column(c)))
                .collect(),
            fields: options.fields.values().map(|c| t.text_column(c)).collect(),
        }
    }

    fn role(&self, role: &str, i: usize) -> Option<&'t str> {
        self.by_role
            .iter()
            .find(|(r, _)| *r == role)
            .and_then(|(_, c)| c.get(i))
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

/// A row normalised on its own: not a person, or its form and a sex conflict.
enum Normalised {
    NotAPerson,
    Row(RegisterRow, Option<String>),
}

/// Normalises every row (in parallel); rows naming nobody (no ID number, no name: notes,
/// totals) and duplicated ID numbers become findings, in row order.
fn normalise_rows(reg: &mut Register, t: &Table, rows: &[usize]) {
    use rayon::prelude::*;
    let cols = Columns::new(&reg.options, t);
    let options = &reg.options;
    let normalised: Vec<Normalised> = rows
        .par_iter()
        .enumerate()
        .with_min_len(4096)
        .map(|(i, &row)| {
            let raw_id = cols.id.get(i).map(str::trim).unwrap_or("");
            let raw_name = cols.name.get(i).unwrap_or("");
            let name = name_key(raw_name);
            if raw_id.is_empty() && (name.is_none() || looks_like_note(raw_name)) {
                return Normalised::NotAPerson;
            }
            let (r, sex) = normalise_row(options, &cols, i, row, raw_id, name);
            Normalised::Row(r, sex)
        })
        .collect();
    let mut seen: foldhash::HashMap<CitizenId, usize> = foldhash::HashMap::default();
    for (n, &row) in normalised.into_iter().zip(rows) {
        let (r, sex) = match n {
            Normalised::NotAPerson => {
                let detail = "no ID number and no name (a note or total row?)".to_owned();
                reg.push(row, FindingKind::NotAPerson, String::new(), detail);
                continue;
            }
            Normalised::Row(r, sex) => (r, sex),
        };
        if let Some(detail) = sex {
            reg.push(row, FindingKind::SexConflict, r.masked.clone(), detail);
        }
        if let Ok(id) = r.id {
            if let Some(first) = seen.insert(id, row) {
                seen.insert(id, first);
                let detail = format!("the same ID number as row {first}");
                reg.push(row, FindingKind::Duplicate, r.masked.clone(), detail);
                continue;
            }
        }
        reg.rows.push(r);
    }
}

/// Text a spreadsheet puts below its data in the name column: a note (`注：`, `说明`, `填表人：`)
/// or a total (`合计`), never a name (names have no colon).
fn looks_like_note(s: &str) -> bool {
    let s = s.trim();
    s.contains(['：', ':'])
        || [
            "注", "备注", "说明", "填表", "制表", "审核", "合计", "总计", "小计",
        ]
        .iter()
        .any(|p| s.starts_with(p))
}

/// One row's normalised form, and a sex contradicting its ID number (the finding's detail).
fn normalise_row(
    options: &RegisterOptions,
    cols: &Columns<'_>,
    i: usize,
    row: usize,
    raw_id: &str,
    name: Option<String>,
) -> (RegisterRow, Option<String>) {
    let masked = crate::privacy::mask_identifier(raw_id);
    // Outcomes (unusable numbers included) are the linker's: a fallback may still link.
    let linked = if raw_id.is_empty() {
        Err(IdNumberProblem::Length(0))
    } else {
        link_id_number(raw_id)
    };
    let sex = cols.role("sex", i).and_then(Sex::parse);
    let mut conflict = None;
    if let (Ok(l), Some(s)) = (&linked, sex) {
        let from_id = if l.id.male() { Sex::Male } else { Sex::Female };
        if s != Sex::Unknown && s != from_id {
            conflict = Some(format!(
                "sex {s:?} but the ID number's sequence digit gives {from_id:?}"
            ));
        }
    }
    let inactive = cols
        .role("status", i)
        .filter(|s| options.inactive_status.iter().any(|v| v.trim() == *s));
    let upgraded = linked.as_ref().is_ok_and(|l| l.upgraded);
    let id_birth = linked.as_ref().ok().map(|l| l.id.birth());
    let r = RegisterRow {
        row,
        id: linked.map(|l| l.id),
        upgraded,
        masked,
        name,
        birth: cols
            .role("birth_date", i)
            .and_then(parse_birth_date)
            .or(id_birth),
        sex,
        community: cols.role("community", i).map(str::to_owned),
        inactive: inactive.map(str::to_owned),
        fields: cols
            .fields
            .iter()
            .map(|c| {
                c.get(i)
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
            })
            .collect(),
    };
    (r, conflict)
}
