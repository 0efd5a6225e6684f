//! `shequ registry`: the merged, de-duplicated resident registry (one row per placed resident
//! of the scope, every label with its sources), and the change report against the previous
//! one: the monthly update of grid workers.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BooleanArray, StringArray, UInt32Array};
use arrow_schema::{DataType, Field};

use crate::error::{Error, Location, Result};
use crate::job::Job;
use crate::output::Out;
use crate::output::operational::{
    ScopedResident, roster_id, scoped_residents, sex_name, unit_columns,
};
use crate::output::person_list::{Ident, PersonList, placeholder};
use crate::privacy::require_operational;
use crate::progress::Progress;

/// What [`write_registry`] wrote.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RegistrySummary {
    /// Residents in the registry.
    pub residents: usize,
    /// Per category, residents with the label.
    pub labelled: BTreeMap<String, usize>,
    /// With a previous registry: changes by kind (`moved_in`, `moved_out`, `gained`, `lost`).
    pub changes: Option<BTreeMap<String, usize>>,
    /// Files written, relative to the output directory.
    pub files: Vec<String>,
}

/// Writes `registry.parquet` under `out`: every placed resident of the job's operational scope
/// under keyed pseudonyms (plain ids only with `plain_identifiers`), its units, sex and age,
/// and per category computed `<id>` (bool) and `<id>_sources` (`roster` and the registers that
/// gave the label). Given the `previous` registry (a `registry.parquet` written with the same
/// key), also `changes.parquet`: residents moved in and out, labels gained and lost.
///
/// # Errors
/// [`Error::Privacy`] for a research job (the registry is person-level); the run's errors;
/// an unreadable previous registry.
pub fn write_registry(
    job: &Job,
    out: &Path,
    previous: Option<&Path>,
    progress: &dyn Progress,
) -> Result<RegistrySummary> {
    let policy = super::policy(job)?;
    require_operational(policy.kind, "the resident registry")?;
    let super::People { build, special, .. } = super::people_stage(job, &policy, progress)?;
    let people = scoped_residents(&build, &policy)?;
    let model = &build.model;
    let mut fields = vec![
        Field::new("resident_key", DataType::Utf8, false),
        Field::new("household_key", DataType::Utf8, false),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        placeholder(people.len()),
        strings(people.iter().map(|p| Some(p.household_key.as_str()))),
    ];
    let mut idents = vec![("resident_key".to_owned(), Ident::Key)];
    if policy.plain_identifiers {
        fields.push(Field::new("resident_id", DataType::Utf8, false));
        cols.push(placeholder(people.len()));
        idents.push(("resident_id".into(), Ident::Column(roster_id(&build)?)));
    }
    let households: Vec<usize> = people.iter().map(|p| p.household).collect();
    unit_columns(model, &households, &mut fields, &mut cols);
    fields.push(Field::new("sex", DataType::Utf8, false));
    cols.push(strings(
        people
            .iter()
            .map(|p| Some(sex_name(model.residents[p.resident].sex))),
    ));
    let mut summary = RegistrySummary {
        residents: people.len(),
        ..Default::default()
    };
    if let Some(sn) = &special {
        label_columns(sn, &people, &mut fields, &mut cols, &mut summary);
    }
    let dir = Out::dir(out);
    dir.create()?;
    let rows = people.iter().map(|p| Some(p.row)).collect();
    let list = PersonList::new(&dir, "registry", false, (fields, cols), rows, idents);
    let key = crate::output::operational::key(&policy)?;
    crate::output::person_list::write(&dir, "", &build.job, key, list)?;
    dir.finish()?; // on disk before it is read back for the changes
    summary.files.push("registry.parquet".into());
    if let Some(prev) = previous {
        let labels: Vec<String> = special
            .iter()
            .flat_map(|sn| sn.categories.iter().map(|c| c.id.clone()))
            .collect();
        let changes = changes(&dir.path().join("registry.parquet"), prev, &labels)?;
        summary.changes = Some(write_changes(&dir, changes)?);
        summary.files.push("changes.parquet".into());
        dir.finish()?;
    }
    Ok(summary)
}

fn strings<'a>(v: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(v.collect::<StringArray>())
}

/// Age and, per category, the label and its sources.
fn label_columns(
    sn: &crate::SpecialNeeds,
    people: &[ScopedResident],
    fields: &mut Vec<Field>,
    cols: &mut Vec<ArrayRef>,
    summary: &mut RegistrySummary,
) {
    let ages = sn.ages();
    fields.push(Field::new("age", DataType::UInt32, true));
    cols.push(Arc::new(
        people
            .iter()
            .map(|p| ages[p.resident])
            .collect::<UInt32Array>(),
    ));
    for (c, cat) in sn.categories.iter().enumerate() {
        let sources: Vec<Option<String>> =
            people.iter().map(|p| sn.sources(p.resident, c)).collect();
        let has: BooleanArray = sources.iter().map(|s| Some(s.is_some())).collect();
        summary
            .labelled
            .insert(cat.id.clone(), sources.iter().flatten().count());
        fields.push(Field::new(cat.id.as_str(), DataType::Boolean, false));
        cols.push(Arc::new(has));
        fields.push(Field::new(
            format!("{}_sources", cat.id),
            DataType::Utf8,
            true,
        ));
        cols.push(strings(sources.iter().map(Option::as_deref)));
    }
}

/// One change: resident key, kind, category (for gained and lost labels).
type Change = (String, &'static str, Option<String>);

/// The changes from the `previous` registry to the new one, by resident key.
fn changes(new: &Path, previous: &Path, labels: &[String]) -> Result<Vec<Change>> {
    let read = |p: &Path| -> Result<HashMap<String, Vec<String>>> {
        let batches = read_batches(p)?;
        let mut out = HashMap::new();
        for b in &batches {
            let key = b
                .column_by_name("resident_key")
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .ok_or_else(|| {
                    Error::data(
                        Location::layer("registry").file(p),
                        "not a shequ registry: no resident_key column",
                    )
                })?;
            let flags: Vec<(&String, &BooleanArray)> = labels
                .iter()
                .filter_map(|l| {
                    Some((
                        l,
                        b.column_by_name(l)?
                            .as_any()
                            .downcast_ref::<BooleanArray>()?,
                    ))
                })
                .collect();
            for i in 0..b.num_rows() {
                let has: Vec<String> = flags
                    .iter()
                    .filter(|(_, a)| a.is_valid(i) && a.value(i))
                    .map(|(l, _)| (*l).clone())
                    .collect();
                out.insert(key.value(i).to_owned(), has);
            }
        }
        Ok(out)
    };
    let (now, before) = (read(new)?, read(previous)?);
    let mut out: Vec<Change> = Vec::new();
    for (k, has) in &now {
        match before.get(k) {
            None => out.push((k.clone(), "moved_in", None)),
            Some(had) => {
                out.extend(
                    has.iter()
                        .filter(|l| !had.contains(l))
                        .map(|l| (k.clone(), "gained", Some(l.clone()))),
                );
                out.extend(
                    had.iter()
                        .filter(|l| !has.contains(l))
                        .map(|l| (k.clone(), "lost", Some(l.clone()))),
                );
            }
        }
    }
    out.extend(
        before
            .keys()
            .filter(|k| !now.contains_key(*k))
            .map(|k| (k.clone(), "moved_out", None)),
    );
    out.sort();
    Ok(out)
}

/// Writes `changes.parquet` (`resident_key`, `change`, `category`) and returns the counts.
fn write_changes(dir: &Out, changes: Vec<Change>) -> Result<BTreeMap<String, usize>> {
    let mut counts = BTreeMap::new();
    for (_, kind, _) in &changes {
        *counts.entry((*kind).to_owned()).or_insert(0) += 1;
    }
    let fields = vec![
        Field::new("resident_key", DataType::Utf8, false),
        Field::new("change", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, true),
    ];
    let cols: Vec<ArrayRef> = vec![
        strings(changes.iter().map(|c| Some(c.0.as_str()))),
        strings(changes.iter().map(|c| Some(c.1))),
        strings(changes.iter().map(|c| c.2.as_deref())),
    ];
    crate::output::write_table(dir, "changes.parquet", fields, cols)?;
    Ok(counts)
}

/// Every record batch of a Parquet file.
fn read_batches(p: &Path) -> Result<Vec<arrow_array::RecordBatch>> {
    let at = || Location::layer("registry").file(p);
    let file = std::fs::File::open(p).map_err(|e| Error::io(p, e))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| Error::data(at(), format!("not a readable Parquet file: {e}")))?;
    reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::data(at(), format!("not a readable Parquet file: {e}")))
}
