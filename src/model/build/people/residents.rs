//! Residents: the roster read, each row joined to its household, sex taken from the roster or
//! the ID number.

use rayon::prelude::*;

use crate::error::Result;
use crate::io::chunks::TableChunks;
use crate::io::table::{Table, TextColumn, clean_code_ref};
use crate::job::Job;
use crate::model::build::Builder;
use crate::model::duplicates::SeenIds;
use crate::model::level::Layer;
use crate::model::quality::{IssueKind, Severity};
use crate::model::{Household, Model, Resident, Sex};
use crate::privacy::{id_number_is_male, mask_identifier};

/// What the people stage hands each analysis of people: the roster one chunk at a time, with
/// the residents placed from it. An analysis keeps per-unit partial state from the chunks and
/// finishes it once, after the build (see `docs/architecture.md`).
pub trait PeopleSink {
    /// The roster columns it reads; they are read with the build's own where the file has
    /// them (a column the file lacks is absent from the chunks: the sink reports it).
    fn columns(&self) -> Vec<String>;

    /// Called once before the first chunk with every column name of the roster file.
    ///
    /// # Errors
    /// A column the sink needs is not in the file.
    fn header(&mut self, names: &[String]) -> Result<()>;

    /// One chunk of the roster and, in row order, each resident placed from it. Households'
    /// units are final; their member counts are not until the last chunk.
    ///
    /// # Errors
    /// The sink's own (a value it cannot read).
    fn chunk(&mut self, model: &Model, table: &Table, placed: &[Placed]) -> Result<()>;

    /// The state gathered from the chunks so far, as bytes, for another process to
    /// [`absorb_part`](Self::absorb_part) (residents numbered as this process placed them);
    /// the sink is left empty. Sinks that cannot travel say so (the default).
    ///
    /// # Errors
    /// [`Error::Internal`](crate::Error::Internal) for a sink that cannot travel.
    fn take_part(&mut self) -> Result<Vec<u8>> {
        Err(cannot_travel())
    }

    /// Adds a part taken elsewhere: its resident `i` is resident `residents[i]` here, of
    /// `total` residents in all. Parts may come in any order; the result is that of one
    /// reading of every row.
    ///
    /// # Errors
    /// [`Error::Data`](crate::Error::Data) for bytes that are not this sink's part;
    /// [`Error::Internal`](crate::Error::Internal) for a sink that cannot travel.
    fn absorb_part(&mut self, part: &[u8], residents: &[u32], total: usize) -> Result<()> {
        let _ = (part, residents, total);
        Err(cannot_travel())
    }
}

fn cannot_travel() -> crate::Error {
    crate::Error::Internal {
        at: crate::Location::layer(Layer::Resident.name()),
        message: "this analysis of people cannot run on other processes".into(),
    }
}

/// A resident placed from a roster chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// Its row in the chunk's frame.
    pub row: u32,
    /// Its index in [`Model::residents`].
    pub resident: u32,
    /// Its household's index in [`Model::households`].
    pub household: u32,
}

/// A message of the roster stream: the file's header first, then its chunks.
pub(crate) enum RosterPart {
    /// Every column name and an estimate of the rows.
    Header(Vec<String>, usize),
    /// A chunk of rows.
    Chunk(Table),
}

/// Reads a job's roster in chunks on the calling thread, sending each to `tx`: the id,
/// household and identity columns (required), and `extra` (the sinks' columns, read when the
/// file has them). Stops at the first error (sent) or when the receiver is gone.
pub(crate) fn stream_roster(
    job: &Job,
    r: &crate::job::ResidentLayer,
    extra: &[String],
    tx: &std::sync::mpsc::SyncSender<Result<RosterPart>>,
) {
    let mut cols = vec![r.id.as_str(), r.household.as_str()];
    cols.extend(r.id_number.as_deref());
    cols.extend(r.sex.as_deref());
    let later: Vec<&str> = extra.iter().map(String::as_str).collect();
    let opened = TableChunks::open(
        Layer::Resident.name(),
        &job.resolve(&r.path),
        &cols,
        &[],
        &later,
        r.encoding,
        job.options.chunk_rows.rows(),
    );
    let mut chunks = match opened {
        Ok(c) => c,
        Err(e) => {
            let _ = tx.send(Err(e));
            return;
        }
    };
    let header = RosterPart::Header(chunks.header().to_vec(), chunks.rows_estimate());
    if tx.send(Ok(header)).is_err() {
        return;
    }
    for chunk in &mut chunks {
        let failed = chunk.is_err();
        if tx.send(chunk.map(RosterPart::Chunk)).is_err() || failed {
            return;
        }
    }
}

/// The residents' state across chunks: households found by code, ids seen, members counted.
pub(crate) struct Placer<'m> {
    lookup: HouseholdLookup<'m>,
    /// Every id seen, with the first row that has it.
    seen: SeenIds,
    /// Members per household.
    pub(crate) counts: Vec<u32>,
    /// The residents placed so far, in row order.
    pub(crate) residents: Vec<Resident>,
}

impl<'m> Placer<'m> {
    pub(crate) fn new(households: &'m [Household], rows_estimate: usize) -> Placer<'m> {
        Placer {
            lookup: HouseholdLookup::new(households),
            seen: SeenIds::new(rows_estimate),
            counts: vec![0; households.len()],
            residents: Vec::with_capacity(rows_estimate.min(1 << 24)),
        }
    }

    /// For each row of a chunk with an id (its cleaned id): the first row with the same id,
    /// when an earlier row (of this chunk or an earlier one) has it; else the id is remembered
    /// as at the row's source row. Two ids are taken as equal when their 128-bit hashes are:
    /// with 50 million ids, the chance of two different ids colliding is below 10^-23.
    fn first_rows(&mut self, ids: &TextColumn<'_>, t: &Table) -> Vec<Option<u32>> {
        let seen = &self.seen;
        let keys: Vec<Option<(u64, u64)>> = (0..ids.len())
            .into_par_iter()
            .with_min_len(4096)
            .map(|i| Some(seen.key(&ids.get(i).and_then(clean_code_ref)?)))
            .collect();
        self.seen.first_rows(&keys, |i| t.source_row(i) as u32)
    }
}

impl Builder<'_> {
    /// Joins every row of a roster chunk to its household; rows without an id, repeating an
    /// earlier row's id (in this chunk or an earlier one), or whose household is unknown or
    /// unplaced are reported. Returns the residents placed, in row order.
    ///
    /// `given` is each row's first row with the same id, when the rows were numbered across
    /// every part of the roster (see [`ResidentFolder`](super::ResidentFolder)); `None` finds
    /// repeats among the rows this placer has seen.
    pub(crate) fn place_chunk(
        &mut self,
        placer: &mut Placer<'_>,
        households: &[Household],
        t: &Table,
        given: Option<&[Option<u32>]>,
    ) -> Vec<Placed> {
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
            id_numbers: cfg.id_number.as_deref().map(|c| TextColumn::new(t.text(c))),
            sexes: cfg.sex.as_deref().map(|c| TextColumn::new(t.text(c))),
            sex_column: cfg.sex.as_deref().unwrap_or_default(),
        };
        let found = placer.lookup.rows(&hh);
        let firsts = match given {
            Some(f) => f.to_vec(),
            None => placer.first_rows(&ids, t),
        };
        let sexes: Vec<SexFound> = (0..found.len())
            .into_par_iter()
            .with_min_len(4096)
            .map(|i| sex_of(&columns, i))
            .collect();
        let mut placed = Vec::with_capacity(found.len());
        for (i, &h) in found.iter().enumerate() {
            let src = t.source_row(i);
            let cleaned = ids.get(i).and_then(clean_code_ref);
            let id = cleaned.as_deref();
            let first = firsts[i];
            let found = (h != NONE).then(|| (h, households[h as usize].placed));
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
                    placer.counts[h as usize] += 1;
                    let sex = sexes[i].sex;
                    self.report_sex(&columns, &sexes[i], src, id);
                    placed.push(Placed {
                        row: i as u32,
                        resident: placer.residents.len() as u32,
                        household: h,
                    });
                    placer.residents.push(Resident {
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
        placed
    }

    /// Reports what [`sex_of`] found wrong with row `src`'s sex columns, as warnings.
    fn report_sex(&mut self, c: &SexColumns, found: &SexFound, src: usize, id: &str) {
        let masked = || Some(mask_identifier(id));
        if let Some(why) = &found.bad_id_number {
            self.report.push(
                Layer::Resident,
                Some(src),
                masked().as_deref(),
                IssueKind::BadIdNumber,
                Severity::Warning,
                why.clone(),
            );
        }
        if found.bad_sex {
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
        }
    }
}

/// A row's sex and what was wrong with its sex columns.
struct SexFound {
    sex: Sex,
    /// The ID number's problem (the warning's detail).
    bad_id_number: Option<String>,
    /// The sex column's value is not recognised.
    bad_sex: bool,
}

/// Row `i`'s sex: the roster's sex column, else the ID number's sex digit; unrecognised values
/// and invalid ID numbers are noted for warnings. Pure, so a chunk's rows run in parallel.
fn sex_of(c: &SexColumns, i: usize) -> SexFound {
    let mut bad_id_number = None;
    let from_id = match c.id_numbers.as_ref().and_then(|c| c.get(i)) {
        Some(raw) if !raw.trim().is_empty() => match id_number_is_male(raw) {
            Ok(male) => Some(if male { Sex::Male } else { Sex::Female }),
            Err(why) => {
                bad_id_number = Some(format!("ID number {} {why}", mask_identifier(raw.trim())));
                None
            }
        },
        _ => None,
    };
    let (given, bad_sex) = match c.sexes.as_ref().and_then(|c| c.get(i)) {
        Some(v) => Sex::parse(v).map_or((Sex::Unknown, true), |s| (s, false)),
        None => (Sex::Unknown, false),
    };
    let sex = match (given, from_id) {
        (Sex::Unknown, Some(s)) => s,
        (g, _) => g,
    };
    SexFound {
        sex,
        bad_id_number,
        bad_sex,
    }
}

/// The roster columns a resident's sex is read from.
struct SexColumns<'t> {
    id_numbers: Option<TextColumn<'t>>,
    sexes: Option<TextColumn<'t>>,
    sex_column: &'t str,
}

/// No household.
const NONE: u32 = u32::MAX;

/// Households found by code: by binary search when their ids are sorted, else in a hash map
/// built the first time one is needed. Built once for every chunk.
struct HouseholdLookup<'m> {
    households: &'m [Household],
    sorted: bool,
    map: std::sync::OnceLock<foldhash::HashMap<&'m str, u32>>,
}

impl<'m> HouseholdLookup<'m> {
    fn new(households: &'m [Household]) -> HouseholdLookup<'m> {
        let sorted = households
            .par_windows(2)
            .all(|w| w[0].id.as_str() < w[1].id.as_str());
        HouseholdLookup {
            households,
            sorted,
            map: std::sync::OnceLock::new(),
        }
    }

    /// The household with id `code`, or `NONE`.
    fn find(&self, code: &str) -> u32 {
        let households = self.households;
        if self.sorted {
            return households
                .binary_search_by(|h| h.id.as_str().cmp(code))
                .map_or(NONE, |h| h as u32);
        }
        let map = self.map.get_or_init(|| {
            let mut m =
                foldhash::HashMap::with_capacity_and_hasher(households.len(), Default::default());
            m.extend(
                households
                    .iter()
                    .enumerate()
                    .map(|(i, h)| (h.id.as_str(), i as u32)),
            );
            m
        });
        map.get(code).copied().unwrap_or(NONE)
    }

    /// In parallel: each roster row's household index (`NONE` without a known code). Rosters
    /// are usually exported in the order of the household table, members of a household
    /// together, so each row is first compared with the previous row's household and the one
    /// after it (a merge join); other rows (and the first of each task) look their code up.
    fn rows(&self, hh: &TextColumn) -> Vec<u32> {
        const CHUNK: usize = 16 * 1024;
        let households = self.households;
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
                        _ => self.find(&code),
                    };
                    cursor = (h != NONE).then_some(h as usize);
                    *o = h;
                }
            });
        found
    }
}
