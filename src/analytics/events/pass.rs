//! The cases read chunk by chunk against the frame: each chunk placed and judged in parallel,
//! folded into the partial, every row placed or reported.

use chrono::NaiveDateTime;
use rayon::prelude::*;

use super::OpenCase;
use super::cases::{ChunkReader, Context, Status};
use super::deadlines::Card;
use super::steps::Step;
use super::tally::Tally;
use crate::error::Result;
use crate::io::table::{Table, clean_code_ref};
use crate::model::duplicates::SeenIds;
use crate::model::level::Layer;
use crate::model::quality::{IssueKind, LayerCount, QualityIssue, Severity};

/// The state of one reading of cases: the partial being folded, the ids seen, the buffers
/// kept from chunk to chunk.
pub(super) struct Pass {
    pub(super) tally: Tally,
    pub(super) open: Vec<OpenCase>,
    pub(super) issues: Vec<QualityIssue>,
    pub(super) count: LayerCount,
    pub(super) seen: SeenIds,
    /// The partials of the parts of a chunk, kept across chunks.
    pub(super) parts: Vec<Tally>,
    /// Buffers kept from chunk to chunk: the ids' keys, the coordinates.
    keys: Vec<Option<(u64, u64)>>,
    located: super::cases::Located,
    period: super::options::Period,
    /// Wall time of reading, ids, placing and judging (coordinates included), folding, and
    /// the coordinates alone (for the trace).
    pub(super) times: [std::time::Duration; 5],
}

impl Pass {
    /// An empty pass over `units` units of the finest level.
    pub(super) fn new(units: usize, categories: usize, period: super::options::Period) -> Pass {
        Pass {
            tally: Tally::new(units, categories),
            open: Vec::new(),
            issues: Vec::new(),
            count: LayerCount::default(),
            seen: SeenIds::new(0),
            parts: Vec::new(),
            keys: Vec::new(),
            located: Default::default(),
            period,
            times: Default::default(),
        }
    }

    /// One chunk: ids checked across chunks, rows placed and judged, folded in.
    pub(super) fn chunk(
        &mut self,
        cx: &Context<'_, '_>,
        t: &Table,
        rows_read: usize,
    ) -> Result<()> {
        let t0 = std::time::Instant::now();
        let ids = t.text_column(&cx.layer.id);
        let seen = &self.seen;
        let mut keys = std::mem::take(&mut self.keys);
        keys.clear();
        keys.par_extend(
            (0..ids.len())
                .into_par_iter()
                .with_min_len(4096)
                .map(|i| Some(seen.key(&ids.get(i).and_then(clean_code_ref)?))),
        );
        let first = self.seen.first_rows(&keys, |i| t.source_row(i) as u32);
        self.keys = keys;
        self.times[1] += t0.elapsed();
        self.fold_chunk(cx, t, rows_read, &first)
    }

    /// One chunk whose repeated ids are known: `first[i]` is the first row with row `i`'s id
    /// when it repeats one. Rows placed and judged, folded in.
    pub(super) fn fold_chunk(
        &mut self,
        cx: &Context<'_, '_>,
        t: &Table,
        rows_read: usize,
        first: &[Option<u32>],
    ) -> Result<()> {
        self.count.read += rows_read;
        for (row, why) in &t.unreadable {
            self.issues.push(case_issue(
                *row as u32,
                None,
                IssueKind::UnreadableRow,
                Severity::Rejected,
                why.clone(),
            ));
            self.count.rejected += 1;
        }
        let t1 = std::time::Instant::now();
        let reader = ChunkReader::new(cx, t, std::mem::take(&mut self.located))?;
        self.times[4] += t1.elapsed();
        // Parts read and folded in parallel, each into its own partial, merged in row order.
        let n = t.frame.height();
        let size = n.div_ceil(2 * rayon::current_num_threads()).max(1024);
        let starts: Vec<usize> = (0..n).step_by(size).collect();
        let units = self.tally.units();
        let period = self.period;
        // One partial per part, kept across chunks: merged once, after the last chunk.
        if self.parts.len() < starts.len() {
            let categories = cx.rules.categories.len();
            self.parts
                .resize_with(starts.len(), || Tally::new(units, categories));
        }
        let parts: Vec<PartRows> = (self.parts.par_iter_mut())
            .zip(starts)
            .map(|(tally, lo)| {
                let hi = (lo + size).min(n);
                tally.reserve(hi - lo);
                let mut part = Part::new(tally);
                let mut warnings = Vec::new();
                for (i, f) in first.iter().enumerate().take(hi).skip(lo) {
                    let (row, id, case) = reader.row(cx, i, *f, &mut warnings);
                    part.fold(cx, row, id, case, &mut warnings, period);
                }
                // The chunk's durations grouped and its sightings sorted here, in parallel,
                // not in the finish.
                part.tally.seal();
                part.done()
            })
            .collect();
        let t2 = std::time::Instant::now();
        self.located = reader.into_buffers();
        for p in parts {
            self.issues.extend(p.issues);
            self.open.extend(p.open);
            self.count.placed += p.placed;
            self.count.rejected += p.rejected;
        }
        self.times[2] += t2 - t1;
        self.times[3] += t2.elapsed();
        Ok(())
    }
}

/// One part of a chunk, read and folded on one thread into its partial.
struct Part<'p> {
    tally: &'p mut Tally,
    issues: Vec<QualityIssue>,
    open: Vec<OpenCase>,
    placed: usize,
    rejected: usize,
}

/// What a part gives besides its partial, in row order.
struct PartRows {
    issues: Vec<QualityIssue>,
    open: Vec<OpenCase>,
    placed: usize,
    rejected: usize,
}

impl<'p> Part<'p> {
    fn new(tally: &'p mut Tally) -> Part<'p> {
        Part {
            tally,
            issues: Vec::new(),
            open: Vec::new(),
            placed: 0,
            rejected: 0,
        }
    }

    fn done(self) -> PartRows {
        PartRows {
            issues: self.issues,
            open: self.open,
            placed: self.placed,
            rejected: self.rejected,
        }
    }

    /// Folds one row in: its warnings, then its case or its rejection.
    fn fold(
        &mut self,
        cx: &Context<'_, '_>,
        row: u32,
        id: Option<&str>,
        case: std::result::Result<super::cases::Case<'_>, super::cases::Problem>,
        warnings: &mut Vec<super::cases::Problem>,
        period: super::options::Period,
    ) {
        for (kind, detail) in warnings.drain(..) {
            self.issues
                .push(case_issue(row, id, kind, Severity::Warning, detail));
        }
        match case {
            Err((kind, detail)) => {
                self.issues
                    .push(case_issue(row, id, kind, Severity::Rejected, detail));
                self.rejected += 1;
            }
            Ok(c) => {
                let class = &cx.rules.classes[c.class as usize];
                let first = chrono::DateTime::from_timestamp(c.first, 0)
                    .map(|d| d.naive_utc().date())
                    .unwrap_or_default();
                self.tally.add(&c, class.category, period, first);
                if c.status != Status::Closed {
                    self.open.push(open_case(cx, &c));
                }
                self.placed += 1;
            }
        }
    }
}

/// A quality issue of the cases layer at data row `row`.
fn case_issue(
    row: u32,
    id: Option<&str>,
    kind: IssueKind,
    severity: Severity,
    detail: String,
) -> QualityIssue {
    QualityIssue {
        layer: Layer::Event,
        index: Some(row as usize),
        id: id.map(str::to_owned),
        kind,
        severity,
        detail,
    }
}

fn open_case(cx: &Context<'_, '_>, c: &super::cases::Case<'_>) -> OpenCase {
    let (step, since, deadline, card) =
        c.current
            .unwrap_or((Step::Visited, NaiveDateTime::default(), None, Card::Green));
    OpenCase {
        id: c.id.to_owned(),
        row: c.row,
        unit: c.unit,
        category: cx.rules.categories[cx.rules.classes[c.class as usize].category as usize].clone(),
        department: c.department.map(str::to_owned),
        step: c.current.map(|_| step),
        since: c.current.map(|_| since),
        deadline,
        card,
        reopened: c.status == Status::Reopened,
        text: c.text.clone(),
    }
}
