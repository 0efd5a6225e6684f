//! Linking registers to the roster, as a sink of the people stage: each roster chunk is
//! looked up in the registers' keys, and the registers' rows count the residents that fit.
//! The state is per register row (a count and the first resident), so it is the same for any
//! chunking; the outcomes are decided once, after the last chunk.

use std::hash::BuildHasher;

use chrono::Datelike;
use rayon::prelude::*;

use super::load::Register;
use super::names::name_key;
use super::report::{Finding, FindingKind, RegisterSummary};
use crate::error::{Error, Location, Result};
use crate::io::table::{Table, TextColumn, parse_birth_date};
use crate::model::Model;
use crate::model::build::{PeopleSink, Placed};
use crate::privacy::{IdNumberProblem, link_id_number};

/// The roster columns linkage reads.
#[derive(Debug, Clone, Default)]
pub struct RosterKeys {
    /// The roster's ID-number column.
    pub id_number: Option<String>,
    /// The roster's name column.
    pub name: Option<String>,
    /// The roster's birth-date column (else birth dates come from ID numbers).
    pub birth_date: Option<String>,
}

/// A register row's link state: residents that fit, the first of them, and whether its name
/// differs from the register's.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
struct Hits {
    count: u32,
    resident: u32,
    name_differs: bool,
}

/// Global register rows by a 64-bit key: the rows sorted by key, and per key its run.
#[derive(Debug, Default)]
struct KeyIndex {
    rows: Vec<u32>,
    runs: foldhash::HashMap<u64, (u32, u32)>,
}

impl KeyIndex {
    fn new(mut pairs: Vec<(u64, u32)>) -> KeyIndex {
        pairs.sort_unstable();
        let mut runs = foldhash::HashMap::default();
        let mut i = 0;
        while i < pairs.len() {
            let j = i + pairs[i..].iter().take_while(|p| p.0 == pairs[i].0).count();
            runs.insert(pairs[i].0, (i as u32, (j - i) as u32));
            i = j;
        }
        KeyIndex {
            rows: pairs.into_iter().map(|p| p.1).collect(),
            runs,
        }
    }

    /// The run of global rows with `key` (one hash probe), when there are any.
    fn run(&self, key: u64) -> Option<(u32, u32)> {
        self.runs.get(&key).copied()
    }

    fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// What one roster resident of a chunk brings to the registers, computed in parallel: its ID
/// key when a register has it, and its name key where a register row may need it.
struct Probe {
    resident: u32,
    household: u32,
    /// The run of register rows with its ID number.
    strong: Option<(u32, u32)>,
    /// The name's key, for a strong hit's name check or a weak candidate.
    name: Option<String>,
    /// The run of register rows with its name-and-birth key, and the birth date.
    weak: Option<((u32, u32), i32)>,
}

/// The registers, their lookup keys and the link state: a [`PeopleSink`].
pub struct Linker {
    registers: Vec<Register>,
    /// The first global row of each register (rows are numbered across registers).
    starts: Vec<usize>,
    /// Rows with a usable ID number: their global rows by ID key.
    strong: KeyIndex,
    /// Rows whose ID number is missing or unusable: their global rows by name-and-birth key.
    weak: KeyIndex,
    /// The birth dates of the weak keys, sorted (a cheap test before a name is normalised).
    weak_births: Vec<i32>,
    /// Per global row: the register's community resolved to a model community.
    community: Vec<Option<u32>>,
    hits: Vec<Hits>,
    keys: RosterKeys,
    hasher: foldhash::fast::FixedState,
}

/// What linking found: per register its counts, the findings, and the memberships.
#[derive(Debug, Clone)]
pub struct Links {
    /// The registers read.
    pub registers: Vec<Register>,
    /// Per register, counts by kind.
    pub summaries: Vec<RegisterSummary>,
    /// Every finding but the plain matches.
    pub findings: Vec<Finding>,
    /// (register index, row index in it, resident): the linked rows that give membership
    /// (matched or weakly matched, not inactive).
    pub memberships: Vec<(u16, u32, u32)>,
    /// (register index, resident): the rows matched by ID number (inactive ones too), which
    /// `findings` does not list.
    pub matched: Vec<(u16, u32)>,
}

impl Linker {
    /// A linker of `registers` to a roster read with `keys`.
    pub fn new(registers: Vec<Register>, keys: RosterKeys) -> Linker {
        let hasher = foldhash::fast::FixedState::with_seed(0x5e9_0a11);
        let mut starts = Vec::with_capacity(registers.len());
        let (mut strong, mut weak, mut births) = (Vec::new(), Vec::new(), Vec::new());
        let mut g = 0usize;
        for reg in &registers {
            starts.push(g);
            for r in &reg.rows {
                match (&r.id, &r.name, r.birth) {
                    (Ok(id), _, _) => strong.push((id.key(), g as u32)),
                    (Err(_), Some(name), Some(birth)) => {
                        let days = birth.num_days_from_ce();
                        weak.push((hasher.hash_one((name.as_str(), days)), g as u32));
                        births.push(days);
                    }
                    _ => {}
                }
                g += 1;
            }
        }
        births.sort_unstable();
        births.dedup();
        Linker {
            registers,
            starts,
            strong: KeyIndex::new(strong),
            weak: KeyIndex::new(weak),
            weak_births: births,
            community: Vec::new(),
            hits: vec![Hits::default(); g],
            keys,
            hasher,
        }
    }

    fn row(&self, g: usize) -> (usize, usize) {
        let r = self.starts.partition_point(|&s| s <= g) - 1;
        (r, g - self.starts[r])
    }

    /// Resolves every row's community against the model's codes and names (once).
    fn resolve_communities(&mut self, model: &Model) {
        let lookup = community_lookup(model);
        self.community = self
            .registers
            .iter()
            .flat_map(|reg| &reg.rows)
            .map(|r| {
                r.community
                    .as_deref()
                    .and_then(|c| lookup.get(&community_key(c)).copied())
            })
            .collect();
    }

    fn hit(&mut self, g: u32, resident: u32, name_differs: bool) {
        let h = &mut self.hits[g as usize];
        h.count = h.count.saturating_add(1);
        if h.count == 1 {
            h.resident = resident;
            h.name_differs = name_differs;
        }
    }
}

impl PeopleSink for Linker {
    fn columns(&self) -> Vec<String> {
        [&self.keys.id_number, &self.keys.name, &self.keys.birth_date]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    fn header(&mut self, names: &[String]) -> Result<()> {
        for c in self.columns() {
            if !names.contains(&c) {
                return Err(Error::column_not_found(
                    Location::layer("residents").column(c.as_str()),
                    names,
                ));
            }
        }
        Ok(())
    }

    /// The register rows some residents hit: (row, hits) where any did.
    fn take_part(&mut self) -> Result<Vec<u8>> {
        let hit: Vec<(u32, Hits)> = self
            .hits
            .iter_mut()
            .enumerate()
            .filter(|(_, h)| h.count > 0)
            .map(|(g, h)| (g as u32, std::mem::take(h)))
            .collect();
        Ok(crate::model::build::part_bytes(&hit))
    }

    /// Counts add up; a row's first resident is the one placed first, as in one reading.
    fn absorb_part(&mut self, part: &[u8], residents: &[u32], _total: usize) -> Result<()> {
        let hit: Vec<(u32, Hits)> = crate::model::build::from_part(part, "register links")?;
        for (g, h) in hit {
            let resident = crate::model::build::renumber(residents, h.resident)?;
            let mine = self.hits.get_mut(g as usize).ok_or_else(|| {
                Error::data(
                    Location::layer("registers"),
                    format!("a part of register links names row {g}, beyond the registers"),
                )
            })?;
            if mine.count == 0 || resident < mine.resident {
                mine.resident = resident;
                mine.name_differs = h.name_differs;
            }
            mine.count = mine.count.saturating_add(h.count);
        }
        Ok(())
    }

    fn chunk(&mut self, model: &Model, table: &Table, placed: &[Placed]) -> Result<()> {
        if self.community.is_empty() && !self.hits.is_empty() {
            self.resolve_communities(model);
        }
        let col = |c: &Option<String>| c.as_deref().map(|c| table.text_column(c));
        let cols = (
            col(&self.keys.id_number),
            col(&self.keys.name),
            col(&self.keys.birth_date),
        );
        // Keys in parallel (normalising names is the costly part), hits in row order.
        let this = &*self;
        let probes: Vec<Probe> = placed
            .par_iter()
            .with_min_len(2048)
            .filter_map(|p| this.probe(p, &cols))
            .collect();
        for p in &probes {
            self.apply(model, p);
        }
        Ok(())
    }
}

/// A chunk's ID-number, name and birth-date columns.
type KeyColumns<'t> = (
    Option<TextColumn<'t>>,
    Option<TextColumn<'t>>,
    Option<TextColumn<'t>>,
);

impl Linker {
    /// One resident's keys, or `None` when no register row can fit it.
    fn probe(&self, p: &Placed, (ids, names, births): &KeyColumns<'_>) -> Option<Probe> {
        let i = p.row as usize;
        let id = ids.as_ref().and_then(|c| c.get(i)).map(link_id_number);
        let strong = match &id {
            Some(Ok(l)) => self.strong.run(l.id.key()),
            _ => None,
        };
        let birth = || {
            births
                .as_ref()
                .and_then(|c| c.get(i))
                .and_then(parse_birth_date)
                .or(id
                    .as_ref()
                    .and_then(|r| r.as_ref().ok())
                    .map(|l| l.id.birth()))
                .map(|b| b.num_days_from_ce())
                .filter(|d| self.weak_births.binary_search(d).is_ok())
        };
        let days = if self.weak.is_empty() { None } else { birth() };
        if strong.is_none() && days.is_none() {
            return None;
        }
        let name = names.as_ref().and_then(|c| c.get(i)).and_then(name_key);
        let weak = days.and_then(|d| {
            let run = self.weak.run(self.hasher.hash_one((name.as_deref()?, d)))?;
            Some((run, d))
        });
        (strong.is_some() || weak.is_some()).then_some(Probe {
            resident: p.resident,
            household: p.household,
            strong,
            name,
            weak,
        })
    }

    /// A probe's hits on the register rows it fits.
    fn apply(&mut self, model: &Model, p: &Probe) {
        if let Some(run) = p.strong {
            for k in run.0..run.0 + run.1 {
                let g = self.strong.rows[k as usize];
                let (r, j) = self.row(g as usize);
                let theirs = self.registers[r].rows[j].name.as_deref();
                let differs = matches!((theirs, p.name.as_deref()), (Some(a), Some(b)) if a != b);
                self.hit(g, p.resident, differs);
            }
        }
        if let Some((run, days)) = p.weak {
            let community = model.households[p.household as usize].lineage.community;
            for k in run.0..run.0 + run.1 {
                let g = self.weak.rows[k as usize];
                let (r, j) = self.row(g as usize);
                let row = &self.registers[r].rows[j];
                // The hash is only a filter: the key itself must agree, and the community too
                // when the register names one.
                let same = row.name.as_deref() == p.name.as_deref()
                    && row.birth.map(|b| b.num_days_from_ce()) == Some(days);
                let place_ok = row.community.is_none() || self.community[g as usize] == community;
                if same && place_ok {
                    self.hit(g, p.resident, false);
                }
            }
        }
    }

    /// Decides every row's outcome and conflicts.
    pub fn finish(mut self, model: &Model) -> Links {
        // (Parts absorbed from other processes bring hits, not chunks.)
        if self.community.is_empty() && !self.hits.is_empty() {
            self.resolve_communities(model);
        }
        let mut links = Links {
            summaries: Vec::with_capacity(self.registers.len()),
            findings: Vec::new(),
            memberships: Vec::new(),
            matched: Vec::new(),
            registers: Vec::new(),
        };
        for (r, reg) in self.registers.iter().enumerate() {
            let at = self.starts[r];
            let mut findings = reg.findings.clone();
            // Reading's findings on a row that names a person: placed where the row is (the
            // rows are in file order).
            for f in &mut findings {
                if let Ok(k) = reg.rows.binary_search_by_key(&f.row, |x| x.row) {
                    let h = self.hits[at + k];
                    f.community = self.community.get(at + k).copied().flatten();
                    f.resident = (h.count == 1).then_some(h.resident);
                }
            }
            let mut matched = 0;
            for (k, row) in reg.rows.iter().enumerate() {
                let h = self.hits[at + k];
                let community = self.community.get(at + k).copied().flatten();
                let f = decide(reg, row, h, community, model);
                if f.member {
                    links.memberships.push((r as u16, k as u32, h.resident));
                }
                if f.matched {
                    links.matched.push((r as u16, h.resident));
                    matched += 1;
                }
                findings.extend(f.findings);
            }
            let mut s = summary(reg, &findings);
            if matched > 0 {
                s.counts.insert(FindingKind::Matched, matched);
            }
            links.summaries.push(s);
            links.findings.extend(findings);
        }
        links.registers = self.registers;
        links
    }
}

/// One row's outcome and conflicts (a plain match is not listed), and whether it gives
/// membership.
struct Decision {
    findings: Vec<Finding>,
    /// Matched by ID number (the outcome `findings` leaves out).
    matched: bool,
    member: bool,
}

fn decide(
    reg: &Register,
    row: &super::load::RegisterRow,
    h: Hits,
    community: Option<u32>,
    model: &Model,
) -> Decision {
    let finding = |kind, detail: String, resident| Finding {
        register: reg.options.id.clone(),
        row: row.row,
        id: row.masked.clone(),
        kind,
        detail,
        resident,
        community,
    };
    let outcome = match (&row.id, h.count) {
        (Ok(_), 0) => (
            FindingKind::IdNotFound,
            "no roster resident has the ID number".to_owned(),
        ),
        (Ok(_), 1) => (FindingKind::Matched, String::new()),
        (Err(_), 1) => (FindingKind::WeakMatch, weak_reason(&row.id)),
        (Ok(_), n) => (
            FindingKind::Ambiguous,
            format!("{n} roster residents have the ID number"),
        ),
        (Err(_), 0) => match row.id {
            Err(IdNumberProblem::StoredAsNumber) => {
                (FindingKind::UnrecoverableId, weak_reason(&row.id))
            }
            _ => (
                FindingKind::InvalidId,
                format!(
                    "{}; no resident has the name and birth date",
                    weak_reason(&row.id)
                ),
            ),
        },
        (Err(_), n) => (
            FindingKind::Ambiguous,
            format!("{n} roster residents have the name and birth date"),
        ),
    };
    let linked = matches!(outcome.0, FindingKind::Matched | FindingKind::WeakMatch);
    let resident = linked.then_some(h.resident);
    let matched = outcome.0 == FindingKind::Matched;
    let mut findings = Vec::new();
    if !matched {
        findings.push(finding(outcome.0, outcome.1, resident));
    }
    if !linked {
        return Decision {
            findings,
            matched,
            member: false,
        };
    }
    if h.name_differs {
        findings.push(finding(
            FindingKind::NameMismatch,
            "the roster's name for this ID number differs".into(),
            resident,
        ));
    }
    if let Some(status) = &row.inactive {
        findings.push(finding(
            FindingKind::InactiveInRegister,
            format!("status {status:?} in the register, active in the roster"),
            resident,
        ));
    }
    if row.community.is_some() {
        let placed = model.residents[h.resident as usize].household;
        let theirs = model.households[placed as usize].lineage.community;
        if community.is_none() || community != theirs {
            let detail = match community {
                None => "the register's community is not a community of the model".to_owned(),
                Some(_) => "the roster places the resident in another community".to_owned(),
            };
            findings.push(finding(FindingKind::CommunityMismatch, detail, resident));
        }
    }
    Decision {
        findings,
        matched,
        member: row.inactive.is_none(),
    }
}

fn weak_reason(id: &std::result::Result<crate::privacy::CitizenId, IdNumberProblem>) -> String {
    match id {
        Err(IdNumberProblem::Length(0)) => "no ID number".to_owned(),
        Err(e) => format!("the ID number {e}"),
        Ok(_) => String::new(),
    }
}

fn summary(reg: &Register, findings: &[Finding]) -> RegisterSummary {
    let mut counts = std::collections::BTreeMap::new();
    for f in findings {
        *counts.entry(f.kind).or_insert(0) += 1;
    }
    RegisterSummary {
        id: reg.options.id.clone(),
        department: reg.options.department.clone(),
        path: reg.path.display().to_string(),
        sheet: reg.sheet.as_ref().map(|(s, _)| s.clone()),
        header_rows: reg.sheet.as_ref().map(|(_, h)| *h),
        rows: reg.rows_read,
        upgraded_ids: reg.rows.iter().filter(|r| r.upgraded).count(),
        counts,
    }
}

/// A community name or code compared without spaces and full-width forms, and without a
/// trailing `社区` or `居委会`.
fn community_key(s: &str) -> String {
    let k = name_key(s).unwrap_or_default();
    let k = k
        .strip_suffix("社区")
        .or_else(|| k.strip_suffix("居委会"))
        .unwrap_or(&k);
    k.to_owned()
}

/// Every community's code and name keys → its index.
fn community_lookup(model: &Model) -> foldhash::HashMap<String, u32> {
    let mut m = foldhash::HashMap::default();
    for (i, c) in model.communities.iter().enumerate() {
        m.insert(community_key(c.id.as_str()), i as u32);
        if let Some(n) = &c.name {
            m.insert(community_key(n), i as u32);
        }
    }
    m
}

impl RosterKeys {
    /// The roster columns of `job`: its ID number and name, and the birth date of
    /// `[special_needs.fields]` when mapped.
    pub fn of(job: &crate::Job) -> RosterKeys {
        let r = job.layers.residents.as_ref();
        RosterKeys {
            id_number: r.and_then(|r| r.id_number.clone()),
            name: r.and_then(|r| r.name.clone()),
            birth_date: job
                .special_needs
                .as_ref()
                .and_then(|s| s.fields.get("birth_date").cloned()),
        }
    }
}
