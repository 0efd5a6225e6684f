//! `registers/`: what linking the departments' registers to the roster found. Research runs
//! publish counts per register and kind per grid, community and street, through the one
//! suppression; operational runs write the staff's fix-list of their unit.

use std::sync::Arc;

use arrow_array::{ArrayRef, StringArray, UInt64Array};
use arrow_schema::Field;

use crate::error::Result;
use crate::model::Model;
use crate::model::build::Build;
use crate::model::level::Layer;
use crate::output::columns::suppressed_column;
use crate::output::operational::roster_id;
use crate::output::person_list::{self, Ident, PersonList, placeholder};
use crate::output::release::Release;
use crate::output::{Columns, GeoWriter, parent_columns};
use crate::privacy::{OutputKind, Policy};
use crate::registry::Links;

/// The directory of the register outputs.
pub const DIR: &str = "registers";

/// Writes `registers/<level>.parquet` for every released level down to grids (the count of
/// each register and kind, `suppressed` in research runs), the remainders and suppression
/// tables of those columns, and in operational runs `registers/fix_list.parquet`.
pub(crate) fn write(
    w: &mut GeoWriter<'_>,
    release: &Release,
    build: &Build,
    links: &Links,
    policy: &Policy,
) -> Result<()> {
    let out = w.out;
    out.sub(DIR).create()?;
    let model = &build.model;
    let names = links.count_names();
    for &level in release.levels() {
        if level == Layer::Building || !model.has(level) {
            continue;
        }
        let units = model.units(level);
        let mut cols: Columns = vec![(
            format!("{}_id", level.singular()),
            Arc::new(StringArray::from_iter_values(
                (0..units as u32).map(|i| model.code(level, i)),
            )),
        )];
        let lineages: Vec<crate::model::Lineage> =
            (0..units as u32).map(|i| model.lineage(level, i)).collect();
        cols.extend(parent_columns(model, level, &lineages));
        for n in &names {
            let v: Vec<Option<u64>> = (0..units as u32)
                .map(|u| release.count(level, u, n))
                .collect();
            cols.push((n.clone(), Arc::new(UInt64Array::from(v))));
        }
        if policy.kind == OutputKind::Research {
            cols.push((
                "suppressed".into(),
                suppressed_column(release, level, units, &names),
            ));
        }
        let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = cols
            .into_iter()
            .map(|(n, a)| (Field::new(n, a.data_type().clone(), true), a))
            .unzip();
        let rel = format!("{DIR}/{}.parquet", level.singular());
        crate::output::write_table(out, &rel, fields, arrays)?;
        w.written.files.push(rel);
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let files = release.write_tables(model, out, DIR, &refs)?;
    w.written.files.extend(files);
    if policy.kind == OutputKind::Operational {
        let f = write_fix_list(&out.sub(DIR), build, links, policy)?;
        w.written
            .files
            .extend(f.into_iter().map(|f| format!("{DIR}/{f}")));
    }
    Ok(())
}

/// The fix-list of the policy's unit: every finding about a resident of it (or, without one,
/// naming its community), register, row and kind, the masked ID number, the resident's keyed
/// pseudonyms and units. Plain resident ids only with `plain_identifiers`.
fn write_fix_list(
    dir: &crate::output::Out,
    build: &Build,
    links: &Links,
    policy: &Policy,
) -> Result<Vec<String>> {
    let model = &build.model;
    let people = crate::output::operational::scoped_residents(build, policy)?;
    let by_resident: foldhash::HashMap<usize, usize> = people
        .iter()
        .enumerate()
        .map(|(i, p)| (p.resident, i))
        .collect();
    let scope_community = scope_community(model, policy);
    let rows: Vec<(&crate::registry::Finding, Option<usize>)> = links
        .findings
        .iter()
        .filter_map(|f| match f.resident {
            Some(r) => by_resident.get(&(r as usize)).map(|&p| (f, Some(p))),
            None => (f.community.is_some() && f.community == scope_community).then_some((f, None)),
        })
        .collect();
    let text = |v: Vec<Option<&str>>| -> ArrayRef { Arc::new(StringArray::from(v)) };
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    let mut add = |name: &str, a: ArrayRef| {
        fields.push(Field::new(name, a.data_type().clone(), true));
        cols.push(a);
    };
    add(
        "register",
        text(
            rows.iter()
                .map(|(f, _)| Some(f.register.as_str()))
                .collect(),
        ),
    );
    add(
        "row",
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|(f, _)| f.row as u64),
        )),
    );
    add(
        "kind",
        text(rows.iter().map(|(f, _)| Some(f.kind.code())).collect()),
    );
    add(
        "id_number_masked",
        text(
            rows.iter()
                .map(|(f, _)| Some(f.id.as_str()).filter(|s| !s.is_empty()))
                .collect(),
        ),
    );
    add(
        "detail",
        text(rows.iter().map(|(f, _)| Some(f.detail.as_str())).collect()),
    );
    let person = |i: &Option<usize>| i.map(|i| &people[i]);
    let mut idents = vec![("resident_key".to_owned(), Ident::Key)];
    add("resident_key", placeholder(rows.len()));
    add(
        "household_key",
        text(
            rows.iter()
                .map(|(_, p)| person(p).map(|p| p.household_key.as_str()))
                .collect(),
        ),
    );
    if policy.plain_identifiers {
        add("resident_id", placeholder(rows.len()));
        idents.push(("resident_id".into(), Ident::Column(roster_id(build)?)));
    }
    for l in [Layer::Grid, Layer::Community] {
        if !model.has(l) {
            continue;
        }
        let codes: Vec<Option<&str>> = rows
            .iter()
            .map(|(f, p)| {
                let unit = match person(p) {
                    Some(p) => model.households[p.household].lineage.at(l),
                    None if l == Layer::Community => f.community,
                    None => None,
                };
                unit.map(|u| model.code(l, u))
            })
            .collect();
        add(&format!("{}_id", l.singular()), text(codes));
    }
    let of_rows = rows.iter().map(|(_, p)| person(p).map(|p| p.row)).collect();
    let list = PersonList::new(dir, "fix_list", false, (fields, cols), of_rows, idents);
    let key = crate::output::operational::key(policy)?;
    person_list::write(dir, "", &build.job, key, list)
}

/// The community of the policy's scope (its own, or a grid's), for findings without a
/// resident.
fn scope_community(model: &Model, policy: &Policy) -> Option<u32> {
    let (layer, code) = policy.scope.as_ref()?;
    match layer {
        Layer::Community => model
            .communities
            .iter()
            .position(|c| c.id.as_str() == code)
            .map(|i| i as u32),
        Layer::Grid => {
            model
                .grids
                .iter()
                .find(|g| g.id.as_str() == code)?
                .lineage
                .community
        }
        _ => None,
    }
}
