//! The operational lists of coverage: each resident's reach and the uncovered households.

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, StringArray, UInt32Array};
use arrow_schema::{DataType, Field};

use super::{DIR, f64s, measure_columns};
use crate::analytics::coverage::Coverage;
use crate::error::{Error, Result};
use crate::model::build::Build;
use crate::output::operational::roster_id;
use crate::output::partition::write_rows;
use crate::output::person_list::{self, Ident, PersonList, placeholder};
use crate::privacy::Policy;

/// Operational runs: every resident of the scope in some target population, with keyed
/// pseudonyms (plain ids only with `plain_identifiers`), and per measure: in the target,
/// nearest facility, its distance, facilities within each threshold, covered within the
/// standard, and the home's three accessibility scores.
pub(super) fn write_residents(
    dir: &crate::output::Out,
    build: &Build,
    cov: &Coverage,
    policy: &Policy,
) -> Result<Vec<String>> {
    let model = &build.model;
    let people = crate::output::operational::scoped_residents(build, policy)?;
    let people: Vec<_> = people
        .into_iter()
        .filter(|p| cov.targets.iter().any(|t| t.members[p.resident]))
        .collect();
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
        fields.push(Field::new("resident_id", DataType::Utf8, false));
        cols.push(placeholder(n));
        idents.push(("resident_id".into(), Ident::Column(roster_id(build)?)));
        fields.push(Field::new("household_id", DataType::Utf8, false));
        cols.push(Arc::new(StringArray::from_iter_values(
            people
                .iter()
                .map(|p| model.households[p.household].id.as_str()),
        )));
    }
    let households: Vec<usize> = people.iter().map(|p| p.household).collect();
    crate::output::operational::unit_columns(model, &households, &mut fields, &mut cols);
    let mut add = |name: String, a: ArrayRef, nullable: bool| {
        fields.push(Field::new(name, a.data_type().clone(), nullable));
        cols.push(a);
    };
    for m in &cov.measures {
        let rule = cov.rule(m);
        let t = &cov.targets[m.target];
        // Per resident of the target, else null.
        let of = |p: &crate::output::operational::ScopedResident| {
            t.members[p.resident].then_some(p.household)
        };
        add(
            format!("{}_target", m.id),
            Arc::new(BooleanArray::from(
                people
                    .iter()
                    .map(|p| of(p).is_some())
                    .collect::<Vec<bool>>(),
            )),
            false,
        );
        let near: Vec<Option<(&str, f64)>> = people
            .iter()
            .map(|p| of(p).and_then(|h| cov.nearest(model, m, h)))
            .collect();
        add(
            format!("{}_nearest_facility", m.id),
            Arc::new(near.iter().map(|n| n.map(|x| x.0)).collect::<StringArray>()),
            true,
        );
        add(
            format!("{}_nearest_m", m.id),
            f64s(near.iter().map(|n| n.map(|x| x.1)).collect()),
            true,
        );
        for th in &rule.thresholds_m {
            add(
                format!("{}_within_{th}m", m.id),
                Arc::new(UInt32Array::from(
                    people
                        .iter()
                        .map(|p| of(p).and_then(|h| cov.within(m, h, *th)))
                        .collect::<Vec<_>>(),
                )),
                true,
            );
        }
        add(
            format!("{}_covered", m.id),
            Arc::new(BooleanArray::from(
                people
                    .iter()
                    .map(|p| of(p).and_then(|h| cov.covered(m, h)))
                    .collect::<Vec<_>>(),
            )),
            true,
        );
        for (k, (name, _)) in cov.accessibility.methods().iter().enumerate() {
            add(
                format!("{}_{name}", m.id),
                f64s(
                    people
                        .iter()
                        .map(|p| of(p).and_then(|h| m.access[k].get(h)))
                        .collect(),
                ),
                true,
            );
        }
    }
    let rows = people.iter().map(|p| Some(p.row)).collect();
    let key = crate::output::operational::key(policy)?;
    let partitioned = dir.is_partitioned();
    let list = PersonList::new(dir, "residents", partitioned, (fields, cols), rows, idents);
    person_list::write(dir, &format!("{DIR}/"), &build.job, key, list)
}

/// Operational runs: the grid worker's blind-spot list: every household of the scope with
/// target residents whose nearest facility is beyond the rule's standard (or unreachable, or
/// whose home has no location), one row per household and measure.
pub(super) fn write_uncovered_households(
    dir: &crate::output::Out,
    build: &Build,
    cov: &Coverage,
    policy: &Policy,
) -> Result<Vec<String>> {
    let model = &build.model;
    let key = crate::output::operational::key(policy)?;
    let (layer, code) = policy.scope.as_ref().ok_or_else(|| Error::Privacy {
        message: "named lists need a scope: privacy.grid, privacy.community or privacy.street"
            .into(),
    })?;
    let in_scope = |h: usize| {
        let hh = &model.households[h];
        hh.placed
            && hh
                .lineage
                .at(*layer)
                .is_some_and(|u| model.code(*layer, u) == code.as_str())
    };
    // (household, measure)
    let mut rows: Vec<(usize, usize)> = Vec::new();
    for (mi, m) in cov.measures.iter().enumerate() {
        let w = &cov.targets[m.target].weights;
        for (h, wh) in w.iter().enumerate() {
            if *wh > 0 && cov.covered(m, h) != Some(true) && in_scope(h) {
                rows.push((h, mi));
            }
        }
    }
    rows.sort_unstable();
    let hh = |h: usize| &model.households[h];
    let mut fields = vec![Field::new("household_key", DataType::Utf8, false)];
    let mut cols: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(
        rows.iter()
            .map(|(h, _)| key.pseudonym("household", hh(*h).id.as_str())),
    ))];
    if policy.plain_identifiers {
        fields.push(Field::new("household_id", DataType::Utf8, false));
        cols.push(Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(h, _)| hh(*h).id.as_str()),
        )));
    }
    let households: Vec<usize> = rows.iter().map(|r| r.0).collect();
    crate::output::operational::unit_columns(model, &households, &mut fields, &mut cols);
    let near = |h: usize, mi: usize| cov.nearest(model, &cov.measures[mi], h);
    let measures: Vec<usize> = rows.iter().map(|r| r.1).collect();
    measure_columns(cov, &measures, true, &mut fields, &mut cols);
    fields.extend([
        Field::new("target_residents", DataType::UInt32, false),
        Field::new("located", DataType::Boolean, false),
        Field::new("nearest_facility", DataType::Utf8, true),
        Field::new("nearest_m", DataType::Float64, true),
    ]);
    cols.extend([
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|(h, mi)| {
            cov.targets[cov.measures[*mi].target].weights[*h]
        }))) as ArrayRef,
        Arc::new(BooleanArray::from(
            rows.iter()
                .map(|(h, _)| cov.homes[*h].is_some())
                .collect::<Vec<bool>>(),
        )),
        Arc::new(
            rows.iter()
                .map(|(h, mi)| near(*h, *mi).map(|x| x.0))
                .collect::<StringArray>(),
        ),
        f64s(
            rows.iter()
                .map(|(h, mi)| near(*h, *mi).map(|x| x.1))
                .collect(),
        ),
    ]);
    let partitioned = dir.is_partitioned();
    write_rows(
        dir,
        &format!("{DIR}/"),
        "uncovered_households",
        partitioned,
        fields,
        cols,
    )
}
