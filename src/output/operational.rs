//! Operational outputs: named lists of the households and residents of one grid or community,
//! for that unit's grid workers.

use std::sync::Arc;

use arrow_array::{ArrayRef, StringArray, UInt64Array};
use arrow_schema::{DataType, Field};

use crate::error::{Error, Result};
use crate::model::build::Build;
use crate::model::level::Layer;
use crate::model::{Model, Sex};
use crate::output::partition::write_rows;
use crate::output::person_list::{self, Ident, PersonList, placeholder};
use crate::privacy::{Policy, Pseudonymizer, require_operational};

/// The index of the policy's scope unit in the model.
pub(crate) fn scope_unit(model: &Model, policy: &Policy) -> Result<(Layer, u32)> {
    let Some((layer, code)) = &policy.scope else {
        return Err(Error::Privacy {
            message: "named lists need a scope: privacy.grid, privacy.community or privacy.street"
                .into(),
        });
    };
    let found = match layer {
        Layer::Grid => model.grids.iter().position(|g| g.id.as_str() == code),
        Layer::Street => model.streets.iter().position(|s| s.id.as_str() == code),
        _ => model.communities.iter().position(|c| c.id.as_str() == code),
    };
    found
        .map(|i| (*layer, i as u32))
        .ok_or_else(|| Error::Privacy {
            message: format!(
                "privacy.{}: {code:?} is not a {} of the model",
                layer.singular(),
                layer.singular()
            ),
        })
}

/// The policy's pseudonym key: named lists are never written without one.
///
/// # Errors
/// [`Error::Privacy`] for a policy without a key.
///
/// # Examples
/// ```
/// let research = shequ::privacy::Policy::research(5);
/// assert!(shequ::output::operational::key(&research).is_err());
/// ```
pub fn key(policy: &Policy) -> Result<&Pseudonymizer> {
    policy.pseudonyms.as_ref().ok_or_else(|| Error::Privacy {
        message: "operational lists need a pseudonym key (privacy.secret_env or secret_file)"
            .into(),
    })
}

/// Appends `building_id`, `grid_id`, `community_id`, `street_id` (levels present) of the
/// given households.
pub(crate) fn unit_columns(
    model: &Model,
    households: &[usize],
    fields: &mut Vec<Field>,
    cols: &mut Vec<ArrayRef>,
) {
    for l in [
        Layer::Building,
        Layer::Grid,
        Layer::Community,
        Layer::Street,
    ] {
        if !model.has(l) {
            continue;
        }
        fields.push(Field::new(
            format!("{}_id", l.singular()),
            DataType::Utf8,
            true,
        ));
        cols.push(Arc::new(
            households
                .iter()
                .map(|&i| model.households[i].lineage.at(l).map(|j| model.code(l, j)))
                .collect::<StringArray>(),
        ));
    }
}

/// Writes `households.parquet` and `residents.parquet` for the policy's grid or community:
/// keyed pseudonyms (`household_key`, `resident_key`) in place of ids; plain ids, names, ID
/// numbers and phones only with `plain_identifiers`; the roster's `columns`, and its
/// `restricted_columns` only with `allow_restricted`. Returns the files written.
///
/// # Errors
/// [`Error::Privacy`] for a research policy (person-level rows are refused), a missing key or
/// a scope not in the model; read errors of the roster; write errors.
///
/// # Examples
/// ```
/// use shequ::privacy::Policy;
/// let dir = tempfile::tempdir()?;
/// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(5))?;
/// let built = shequ::build(&shequ::Job::from_toml(dir.path().join("job.toml"))?)?;
/// // A research policy never writes named lists.
/// let refused = shequ::output::operational::write_lists(&built, dir.path(), &Policy::research(5));
/// assert!(matches!(refused, Err(shequ::Error::Privacy { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_lists(build: &Build, out: &std::path::Path, policy: &Policy) -> Result<Vec<String>> {
    let out = crate::output::Out::dir(out).with_partitioned(build.job.output.partitioned);
    let files = write_lists_to(build, &out, policy)?;
    out.finish()?;
    Ok(files)
}

/// [`write_lists`] to files or memory.
///
/// # Errors
/// As [`write_lists`].
pub fn write_lists_to(
    build: &Build,
    out: &crate::output::Out,
    policy: &Policy,
) -> Result<Vec<String>> {
    require_operational(policy.kind, "households.parquet / residents.parquet")?;
    let key = key(policy)?;
    let model = &build.model;
    let (layer, unit) = scope_unit(model, policy)?;
    let in_scope: Vec<bool> = model
        .households
        .iter()
        .map(|h| h.placed && h.lineage.at(layer) == Some(unit))
        .collect();
    let mut files = write_households(out, model, &in_scope, key, policy)?;
    if let Some(r) = build.job.layers.residents.as_ref() {
        let list = residents_list(build, r, out, policy)?;
        files.extend(person_list::write(out, "", &build.job, key, list)?);
    }
    Ok(files)
}

/// `residents.parquet`: the scope's residents with keyed pseudonyms (and plain identifiers
/// when the policy asks), their units and sex, and the roster's `columns` (its
/// `restricted_columns` only with `allow_restricted`).
fn residents_list(
    build: &Build,
    r: &crate::job::ResidentLayer,
    out: &crate::output::Out,
    policy: &Policy,
) -> Result<PersonList> {
    let model = &build.model;
    let people = scoped_residents(build, policy)?;
    let n = people.len();
    let mut idents = vec![("resident_key".to_owned(), Ident::Key)];
    let mut fields = vec![
        Field::new("resident_key", DataType::Utf8, false),
        Field::new("household_key", DataType::Utf8, false),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        placeholder(n),
        Arc::new(StringArray::from_iter_values(
            people.iter().map(|p| p.household_key.as_str()),
        )),
    ];
    if policy.plain_identifiers {
        fields.push(Field::new("resident_id", DataType::Utf8, true));
        cols.push(placeholder(n));
        idents.push(("resident_id".into(), Ident::Column(r.id.clone())));
        fields.push(Field::new("household_id", DataType::Utf8, false));
        cols.push(Arc::new(StringArray::from_iter_values(
            people
                .iter()
                .map(|p| model.households[p.household].id.as_str()),
        )));
        for (name, col) in [
            ("name", &r.name),
            ("id_number", &r.id_number),
            ("phone", &r.phone),
        ] {
            if let Some(col) = col {
                fields.push(Field::new(name, DataType::Utf8, true));
                cols.push(placeholder(n));
                idents.push((name.into(), Ident::Column(col.clone())));
            }
        }
    }
    let households: Vec<usize> = people.iter().map(|p| p.household).collect();
    unit_columns(model, &households, &mut fields, &mut cols);
    fields.push(Field::new("sex", DataType::Utf8, false));
    cols.push(Arc::new(StringArray::from_iter_values(
        people
            .iter()
            .map(|p| sex_name(model.residents[p.resident].sex)),
    )));
    let mut extra: Vec<&String> = r.columns.iter().collect();
    if policy.allow_restricted {
        extra.extend(&r.restricted_columns);
    }
    for c in extra {
        if idents.iter().any(|(n, _)| n == c) {
            continue;
        }
        fields.push(Field::new(c.as_str(), DataType::Utf8, true));
        cols.push(placeholder(n));
        idents.push((c.clone(), Ident::Column(c.clone())));
    }
    let rows = people.iter().map(|p| Some(p.row)).collect();
    let partitioned = out.is_partitioned();
    Ok(PersonList::new(
        out,
        "residents",
        partitioned,
        (fields, cols),
        rows,
        idents,
    ))
}

/// The roster's id column (the plain `resident_id` of the lists).
///
/// # Errors
/// [`Error::Job`] for a job without `[layers.residents]`.
pub(crate) fn roster_id(build: &Build) -> Result<String> {
    Ok(roster_layer(&build.job)?.id.clone())
}

/// The job's `[layers.residents]`, which every person list's identifiers come from.
pub(crate) fn roster_layer(job: &crate::job::Job) -> Result<&crate::job::ResidentLayer> {
    (job.layers.residents.as_ref()).ok_or_else(|| job.error("person lists need [layers.residents]"))
}

/// A resident's sex as the lists write it.
pub(crate) fn sex_name(s: Sex) -> &'static str {
    match s {
        Sex::Male => "male",
        Sex::Female => "female",
        Sex::Unknown => "unknown",
    }
}

/// `households.parquet`: the scope's households with keyed pseudonyms (and plain ids when the
/// policy asks), their units and resident counts.
fn write_households(
    out: &crate::output::Out,
    model: &Model,
    in_scope: &[bool],
    key: &Pseudonymizer,
    policy: &Policy,
) -> Result<Vec<String>> {
    let hh: Vec<usize> = (0..in_scope.len()).filter(|i| in_scope[*i]).collect();
    let mut fields = vec![Field::new("household_key", DataType::Utf8, false)];
    let mut cols: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(
        hh.iter()
            .map(|&i| key.pseudonym("household", model.households[i].id.as_str())),
    ))];
    if policy.plain_identifiers {
        fields.push(Field::new("household_id", DataType::Utf8, false));
        cols.push(Arc::new(StringArray::from_iter_values(
            hh.iter().map(|&i| model.households[i].id.as_str()),
        )));
    }
    unit_columns(model, &hh, &mut fields, &mut cols);
    fields.push(Field::new("residents", DataType::UInt64, false));
    cols.push(Arc::new(UInt64Array::from_iter_values(
        hh.iter().map(|&i| model.households[i].residents as u64),
    )));
    write_rows(out, "", "households", out.is_partitioned(), fields, cols)
}

/// A resident of the operational scope: its place in the model and the roster, and its
/// household's keyed pseudonym (its own identifiers come from the roster when a
/// [`PersonList`] of it is written).
#[derive(Debug, Clone)]
pub(crate) struct ScopedResident {
    /// Index into `model.residents`.
    pub resident: usize,
    /// Index into `model.households`.
    pub household: usize,
    /// Its roster row (0-based data row).
    pub row: usize,
    /// Keyed pseudonym of the household id.
    pub household_key: String,
}

/// The residents of the policy's grid or community (model order), with their households'
/// pseudonyms. The roster is not read.
///
/// # Errors
/// As [`write_lists`].
pub(crate) fn scoped_residents(build: &Build, policy: &Policy) -> Result<Vec<ScopedResident>> {
    require_operational(policy.kind, "per-resident lists")?;
    let key = key(policy)?;
    let model = &build.model;
    let (layer, unit) = scope_unit(model, policy)?;
    Ok(model
        .residents
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            let h = &model.households[p.household as usize];
            h.placed && h.lineage.at(layer) == Some(unit)
        })
        .map(|(i, p)| ScopedResident {
            resident: i,
            household: p.household as usize,
            row: p.source_index,
            household_key: key.pseudonym(
                "household",
                model.households[p.household as usize].id.as_str(),
            ),
        })
        .collect())
}
