//! The job's `[[registers]]`: one department's list each.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::io::table::Encoding;

/// A department's list (`[[registers]]` in the job): where it is, which columns identify a
/// person, and what being on it gives.
///
/// # Examples
/// ```
/// let r: shequ::registry::RegisterOptions = toml::from_str(r#"
///     id = "disabled_federation"
///     department = "区残联"
///     path = "registers/残联.xlsx"
///     category = "disabled"
///     fields = { disability_type = "残疾类别", disability_grade = "残疾等级" }
///     [columns]
///     id_number = "身份证号"
///     name = "姓名"
/// "#)?;
/// assert!(r.check().is_ok());
/// assert_eq!(r.inactive_status, ["死亡", "迁出", "注销"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterOptions {
    /// The register's id in outputs (`[a-z0-9_]`).
    pub id: String,
    /// The department that keeps it (`区残联`, `民政`), for reports.
    #[serde(default)]
    pub department: Option<String>,
    /// CSV, Parquet or a spreadsheet (`.xlsx`, `.xlsm`, `.xls`, `.xlsb`, `.ods`), relative to
    /// the job file.
    pub path: PathBuf,
    /// Spreadsheets: the sheet (default the first).
    #[serde(default)]
    pub sheet: Option<String>,
    /// CSV: the text encoding.
    #[serde(default)]
    pub encoding: Encoding,
    /// The columns that identify a person.
    pub columns: RegisterColumns,
    /// The special-needs category that membership gives (a category id).
    #[serde(default)]
    pub category: Option<String>,
    /// Special-needs fields the register supplies: field name → the register's column.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Status values meaning the person is no longer on the list (compared trimmed).
    #[serde(default = "default_inactive")]
    pub inactive_status: Vec<String>,
}

/// The columns of a register that identify a person (header names as the file writes them).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterColumns {
    /// Citizen ID number (公民身份号码): the linkage key.
    pub id_number: String,
    /// Name: checked against the roster, and with the birth date the fallback key.
    pub name: String,
    /// Household (a household number or the householder's ID number), for lists by household.
    #[serde(default)]
    pub household: Option<String>,
    /// Address, shown to staff in fix-lists.
    #[serde(default)]
    pub address: Option<String>,
    /// Community (name or code): checked against where the roster places the person, and
    /// part of the fallback key.
    #[serde(default)]
    pub community: Option<String>,
    /// Phone number (a direct identifier: never in research outputs).
    #[serde(default)]
    pub phone: Option<String>,
    /// Sex: checked against the ID number's sequence digit.
    #[serde(default)]
    pub sex: Option<String>,
    /// Birth date: the fallback key when the ID number is missing or unusable.
    #[serde(default)]
    pub birth_date: Option<String>,
    /// Status (`死亡`, `迁出`, `注销`, ...).
    #[serde(default)]
    pub status: Option<String>,
    /// The date of the status.
    #[serde(default)]
    pub status_date: Option<String>,
}

fn default_inactive() -> Vec<String> {
    ["死亡", "迁出", "注销"].map(String::from).to_vec()
}

/// Columns by role: (role, the column's header name).
pub type Roles<'a> = Vec<(&'static str, &'a str)>;

impl RegisterColumns {
    /// The required columns and then the optional ones given, as (role, column).
    pub fn named(&self) -> (Roles<'_>, Roles<'_>) {
        let required = vec![
            ("id_number", self.id_number.as_str()),
            ("name", self.name.as_str()),
        ];
        let optional = [
            ("household", &self.household),
            ("address", &self.address),
            ("community", &self.community),
            ("phone", &self.phone),
            ("sex", &self.sex),
            ("birth_date", &self.birth_date),
            ("status", &self.status),
            ("status_date", &self.status_date),
        ]
        .into_iter()
        .filter_map(|(role, c)| c.as_deref().map(|c| (role, c)))
        .collect();
        (required, optional)
    }
}

impl RegisterOptions {
    /// Checks the options on their own (the category is checked against the job's categories
    /// when the job is).
    ///
    /// # Errors
    /// A message naming the register: a bad id, a blank column name.
    pub fn check(&self) -> std::result::Result<(), String> {
        let ok_id = !self.id.is_empty()
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok_id {
            return Err(format!(
                "registers: id {:?} must be non-empty [a-z0-9_]",
                self.id
            ));
        }
        let (req, opt) = self.columns.named();
        let fields = self.fields.iter().map(|(f, c)| (f.as_str(), c.as_str()));
        let blank = req
            .into_iter()
            .chain(opt)
            .chain(fields)
            .find(|(_, c)| c.trim().is_empty());
        if let Some((role, _)) = blank {
            return Err(format!(
                "registers.{}: the column of {role:?} is blank",
                self.id
            ));
        }
        Ok(())
    }
}

/// Checks a job's registers: each on its own, unique ids, a roster to link to, known
/// categories and fields.
pub(crate) fn check_registers(job: &crate::Job) -> std::result::Result<(), String> {
    if job.registers.is_empty() {
        return Ok(());
    }
    let roster = job
        .layers
        .residents
        .as_ref()
        .ok_or("[[registers]] needs [layers.residents] to link to")?;
    if roster.id_number.is_none() && roster.name.is_none() {
        return Err("[[registers]] needs layers.residents.id_number (or at least name)".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    for r in &job.registers {
        r.check()?;
        if !seen.insert(r.id.as_str()) {
            return Err(format!("registers: the id {:?} is used twice", r.id));
        }
        let uses_labels = r.category.is_some() || !r.fields.is_empty();
        let Some(sn) = job.special_needs.as_ref().filter(|_| uses_labels) else {
            if uses_labels {
                return Err(format!(
                    "registers.{}: a category or fields need [special_needs]",
                    r.id
                ));
            }
            continue;
        };
        if let Some(c) = &r.category {
            let cats = crate::analytics::categories::merge(
                crate::analytics::categories::default_categories(),
                &sn.categories,
            )?;
            if !cats.iter().any(|k| &k.id == c) {
                return Err(format!("registers.{}: unknown category {c:?}", r.id));
            }
        }
    }
    Ok(())
}
