//! Residents: the roster read, each row joined to its household, sex taken from the roster or
//! the ID number.

use foldhash::HashMap;
use polars::prelude::StringChunked;
use rayon::prelude::*;

use crate::error::Result;
use crate::io::table::{Table, TextColumn, clean_code_ref, read_table_with};
use crate::job::Job;
use crate::model::build::{Builder, InputInfo};
use crate::model::duplicates::duplicates;
use crate::model::level::Layer;
use crate::model::quality::{IssueKind, Severity};
use crate::model::{Household, Model, Resident, Sex};
use crate::privacy::{id_number_is_male, mask_identifier};

/// Reads a job's roster with the columns the build needs: the id, household and identity
/// columns (required), and those the special-needs pass may use (read when the file has them,
/// so that pass does not read the roster again).
pub(crate) fn read_roster(job: &Job, r: &crate::job::ResidentLayer) -> Result<Table> {
    let mut cols = vec![r.id.clone(), r.household.clone()];
    cols.extend(r.id_number.clone());
    cols.extend(r.sex.clone());
    let mut later: Vec<String> = Vec::new();
    if let Some(sn) = &job.special_needs {
        later.extend(sn.fields.values().cloned());
        for c in &sn.categories {
            if let Some(f) = &c.rule.field {
                later.push(sn.fields.get(f).unwrap_or(f).clone());
            }
        }
    }
    let cols: Vec<&str> = cols.iter().map(String::as_str).collect();
    let later: Vec<&str> = later.iter().map(String::as_str).collect();
    read_table_with(
        Layer::Resident.name(),
        &job.resolve(&r.path),
        &cols,
        &[],
        &later,
        r.encoding,
    )
}

impl Builder<'_> {
    pub(crate) fn read_residents(&mut self, r: &crate::job::ResidentLayer) -> Result<Table> {
        let t = match self.roster.take() {
            Some(wait) => wait()?,
            None => read_roster(self.job, r)?,
        };
        let path = self.job.resolve(&r.path);
        self.inputs.push(InputInfo {
            layer: Layer::Resident,
            path,
            rows: t.rows_read,
            crs: None,
            crs_source: None,
            conversions: Vec::new(),
        });
        Ok(t)
    }

    /// Joins every roster row to its household; rows without an id, repeating an id, or
    /// whose household is unknown or unplaced are reported. Sets each household's count.
    pub(crate) fn place_residents(&mut self, model: &mut Model, t: &Table) {
        let cfg = self
            .job
            .layers
            .residents
            .as_ref()
            .expect("residents configured");
        for (row, why) in &t.unreadable {
            self.report.push(
                Layer::Resident,
                Some(*row),
                None,
                IssueKind::UnreadableRow,
                Severity::Rejected,
                why.clone(),
            );
        }
        let ids = TextColumn::new(t.text(&cfg.id));
        let hh = TextColumn::new(t.text(&cfg.household));
        let columns = SexColumns {
            id_numbers: cfg.id_number.as_deref().map(|c| t.text(c)),
            sexes: cfg.sex.as_deref().map(|c| t.text(c)),
            sex_column: cfg.sex.as_deref().unwrap_or_default(),
        };
        let n = ids.len();
        let found = household_of_rows(&model.households, &hh);
        let repeats = duplicates(n, |i| ids.get(i).and_then(clean_code_ref));
        let mut repeats = repeats.into_iter().peekable();
        let mut residents = Vec::with_capacity(n);
        let mut counts = vec![0u32; model.households.len()];
        for (i, &h) in found.iter().enumerate() {
            let src = t.source_row(i);
            let cleaned = ids.get(i).and_then(clean_code_ref);
            let id = cleaned.as_deref();
            let first = repeats
                .next_if(|&(r, _)| r as usize == i)
                .map(|(_, j)| t.source_row(j as usize));
            let found = (h != NONE).then(|| (h, model.households[h as usize].placed));
            let code = || hh.get(i).and_then(clean_code_ref);
            let failure = match (id, found) {
                (None, _) => Some((IssueKind::MissingId, "empty id".to_owned())),
                (Some(_), _) if first.is_some() => Some((
                    IssueKind::DuplicateId,
                    format!("id already used by row {}", first.unwrap_or_default()),
                )),
                (Some(_), None) => Some(match code() {
                    None => (IssueKind::Unlocated, "no household code".to_owned()),
                    Some(code) => (
                        IssueKind::UnknownReference,
                        format!(
                            "household {} is not in the roster (unknown or rejected)",
                            mask_identifier(&code)
                        ),
                    ),
                }),
                (Some(_), Some((_, false))) => Some((
                    IssueKind::Unlocated,
                    format!(
                        "household {} could not be placed",
                        mask_identifier(&code().unwrap_or_default())
                    ),
                )),
                (Some(id), Some((h, true))) => {
                    counts[h as usize] += 1;
                    let sex = self.resident_sex(&columns, i, src, id);
                    residents.push(Resident {
                        household: h,
                        sex,
                        source_index: src,
                    });
                    None
                }
            };
            if let Some((kind, detail)) = failure {
                let masked = id.map(mask_identifier);
                self.report.push(
                    Layer::Resident,
                    Some(src),
                    masked.as_deref(),
                    kind,
                    Severity::Rejected,
                    detail,
                );
            }
        }
        for (h, c) in model.households.iter_mut().zip(counts) {
            h.residents = c;
        }
        model.residents = residents;
        self.reads.insert(Layer::Resident, t.rows_read);
    }

    /// Row `i`'s sex: the roster's sex column, else the ID number's sex digit. Unrecognised
    /// values and invalid ID numbers are reported as warnings.
    fn resident_sex(&mut self, c: &SexColumns, i: usize, src: usize, id: &str) -> Sex {
        let masked = || Some(mask_identifier(id));
        let from_id = match c.id_numbers.and_then(|c| c.get(i)) {
            Some(raw) if !raw.trim().is_empty() => match id_number_is_male(raw) {
                Ok(male) => Some(if male { Sex::Male } else { Sex::Female }),
                Err(why) => {
                    self.report.push(
                        Layer::Resident,
                        Some(src),
                        masked().as_deref(),
                        IssueKind::BadIdNumber,
                        Severity::Warning,
                        format!("ID number {} {why}", mask_identifier(raw.trim())),
                    );
                    None
                }
            },
            _ => None,
        };
        let given = match c.sexes.and_then(|c| c.get(i)) {
            Some(v) => Sex::parse(v).unwrap_or_else(|| {
                self.report.push(
                    Layer::Resident,
                    Some(src),
                    masked().as_deref(),
                    IssueKind::BadValue,
                    Severity::Warning,
                    format!(
                        "column {:?}: sex not recognised (男/女, M/F, 1/2)",
                        c.sex_column
                    ),
                );
                Sex::Unknown
            }),
            None => Sex::Unknown,
        };
        match (given, from_id) {
            (Sex::Unknown, Some(s)) => s,
            (g, _) => g,
        }
    }
}

/// The roster columns a resident's sex is read from.
struct SexColumns<'t> {
    id_numbers: Option<&'t StringChunked>,
    sexes: Option<&'t StringChunked>,
    sex_column: &'t str,
}

/// No household.
const NONE: u32 = u32::MAX;

/// In parallel: each roster row's household index (`NONE` without a known code). Rosters are
/// usually exported in the order of the household table, members of a household together, so
/// each row is first compared with the previous row's household and the one after it (a merge
/// join). Other rows (and the first of each task) look their code up: by binary search when
/// the household ids are sorted, else in a hash map built the first time one is needed.
fn household_of_rows(households: &[Household], hh: &TextColumn) -> Vec<u32> {
    const CHUNK: usize = 16 * 1024;
    let sorted = households
        .par_windows(2)
        .all(|w| w[0].id.as_str() < w[1].id.as_str());
    let household_of: std::sync::OnceLock<HashMap<&str, u32>> = std::sync::OnceLock::new();
    let lookup = |code: &str| -> u32 {
        if sorted {
            return households
                .binary_search_by(|h| h.id.as_str().cmp(code))
                .map_or(NONE, |h| h as u32);
        }
        let map = household_of.get_or_init(|| {
            let mut m = HashMap::with_capacity_and_hasher(households.len(), Default::default());
            m.extend(
                households
                    .iter()
                    .enumerate()
                    .map(|(i, h)| (h.id.as_str(), i as u32)),
            );
            m
        });
        map.get(code).copied().unwrap_or(NONE)
    };
    let mut found = vec![NONE; hh.len()];
    found
        .par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(c, out)| {
            let mut cursor: Option<usize> = None;
            for (k, o) in out.iter_mut().enumerate() {
                let Some(code) = hh.get(c * CHUNK + k).and_then(clean_code_ref) else {
                    continue;
                };
                let at = |h: usize| households.get(h).is_some_and(|x| x.id.as_str() == code);
                let h = match cursor {
                    Some(h) if at(h) => h as u32,
                    Some(h) if at(h + 1) => h as u32 + 1,
                    _ => lookup(&code),
                };
                cursor = (h != NONE).then_some(h as usize);
                *o = h;
            }
        });
    found
}
