//! Operational outputs: named lists of the households and residents of one grid or community,
//! for that unit's grid workers.

use std::sync::Arc;

use arrow_array::{ArrayRef, StringArray, UInt64Array};
use arrow_schema::{DataType, Field};

use crate::error::{Error, Result};
use crate::io::table::read_table;
use crate::model::build::Build;
use crate::model::level::Layer;
use crate::model::{Model, Sex};
use crate::output::partition::write_rows;
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

pub(crate) fn key(policy: &Policy) -> Result<&Pseudonymizer> {
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
    let partitioned = out.is_partitioned();
    let mut files = write_households(out, model, &in_scope, key, policy)?;

    let Some(r) = build.job.layers.residents.as_ref() else {
        return Ok(files);
    };
    let path = &build.job.resolve(&r.path);
    let mut wanted: Vec<&str> = vec![r.id.as_str()];
    let plain: Vec<(&str, &str)> = if policy.plain_identifiers {
        [
            ("name", r.name.as_deref()),
            ("id_number", r.id_number.as_deref()),
            ("phone", r.phone.as_deref()),
        ]
        .into_iter()
        .filter_map(|(n, c)| c.map(|c| (n, c)))
        .collect()
    } else {
        Vec::new()
    };
    wanted.extend(plain.iter().map(|(_, c)| *c));
    let mut extra: Vec<&str> = r.columns.iter().map(String::as_str).collect();
    if policy.allow_restricted {
        extra.extend(r.restricted_columns.iter().map(String::as_str));
    }
    wanted.extend(extra.iter().copied());
    wanted.sort_unstable();
    wanted.dedup();
    let t = read_table(Layer::Resident.name(), path, &wanted, r.encoding)?;
    let mut frame_row = vec![usize::MAX; t.rows_read];
    for i in 0..t.frame.height() {
        frame_row[t.source_row(i)] = i;
    }
    let people: Vec<(usize, usize, Sex)> = model
        .residents
        .iter()
        .filter(|p| in_scope[p.household as usize])
        .map(|p| (frame_row[p.source_index], p.household as usize, p.sex))
        .collect();
    let text = |col: &str| -> StringArray {
        let c = t.text(col);
        people
            .iter()
            .map(|(row, _, _)| c.get(*row).map(str::trim))
            .collect()
    };
    let ids = t.text(&r.id);
    let mut fields = vec![
        Field::new("resident_key", DataType::Utf8, false),
        Field::new("household_key", DataType::Utf8, false),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(people.iter().map(
            |(row, _, _)| {
                key.pseudonym("resident", ids.get(*row).map(str::trim).unwrap_or_default())
            },
        ))),
        Arc::new(StringArray::from_iter_values(people.iter().map(
            |(_, h, _)| key.pseudonym("household", model.households[*h].id.as_str()),
        ))),
    ];
    if policy.plain_identifiers {
        fields.push(Field::new("resident_id", DataType::Utf8, true));
        cols.push(Arc::new(text(&r.id)));
        fields.push(Field::new("household_id", DataType::Utf8, false));
        cols.push(Arc::new(StringArray::from_iter_values(
            people
                .iter()
                .map(|(_, h, _)| model.households[*h].id.as_str()),
        )));
        for (name, col) in &plain {
            fields.push(Field::new(*name, DataType::Utf8, true));
            cols.push(Arc::new(text(col)));
        }
    }
    let of_people: Vec<usize> = people.iter().map(|(_, h, _)| *h).collect();
    unit_columns(model, &of_people, &mut fields, &mut cols);
    fields.push(Field::new("sex", DataType::Utf8, false));
    cols.push(Arc::new(StringArray::from_iter_values(people.iter().map(
        |(_, _, s)| match s {
            Sex::Male => "male",
            Sex::Female => "female",
            Sex::Unknown => "unknown",
        },
    ))));
    for c in &extra {
        fields.push(Field::new(*c, DataType::Utf8, true));
        cols.push(Arc::new(text(c)));
    }
    files.extend(write_rows(out, "", "residents", partitioned, fields, cols)?);
    Ok(files)
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

/// A resident of the operational scope, with keyed pseudonyms.
#[derive(Debug, Clone)]
pub(crate) struct ScopedResident {
    /// Index into `model.residents`.
    pub resident: usize,
    /// Index into `model.households`.
    pub household: usize,
    /// Keyed pseudonym of the resident id.
    pub resident_key: String,
    /// Keyed pseudonym of the household id.
    pub household_key: String,
    /// The plain resident id (written only with `plain_identifiers`).
    pub resident_id: String,
}

/// The residents of the policy's grid or community (model order), with their pseudonyms.
///
/// # Errors
/// As [`write_lists`].
pub(crate) fn scoped_residents(build: &Build, policy: &Policy) -> Result<Vec<ScopedResident>> {
    require_operational(policy.kind, "per-resident lists")?;
    let key = key(policy)?;
    let model = &build.model;
    let (layer, unit) = scope_unit(model, policy)?;
    let Some(r) = build.job.layers.residents.as_ref() else {
        return Ok(Vec::new());
    };
    let t = read_table(
        Layer::Resident.name(),
        &build.job.resolve(&r.path),
        &[r.id.as_str()],
        r.encoding,
    )?;
    let mut frame_row = vec![usize::MAX; t.rows_read];
    for i in 0..t.frame.height() {
        frame_row[t.source_row(i)] = i;
    }
    let ids = t.text(&r.id);
    Ok(model
        .residents
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            let h = &model.households[p.household as usize];
            h.placed && h.lineage.at(layer) == Some(unit)
        })
        .map(|(i, p)| {
            let id = ids
                .get(frame_row[p.source_index])
                .map(str::trim)
                .unwrap_or_default();
            (i, p, id)
        })
        .map(|(i, p, id)| ScopedResident {
            resident: i,
            household: p.household as usize,
            resident_key: key.pseudonym("resident", id),
            resident_id: id.to_owned(),
            household_key: key.pseudonym(
                "household",
                model.households[p.household as usize].id.as_str(),
            ),
        })
        .collect())
}
