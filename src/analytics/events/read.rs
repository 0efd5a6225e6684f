//! The job's cases read from its own file on one machine: chunk by chunk, a thread decoding
//! the next chunk while the pass folds the last.

use super::Events;
use super::partial::CaseFolder;
use super::roster_ids::RosterIds;
use crate::error::Result;
use crate::io::chunks::TableChunks;
use crate::io::sheet::{is_spreadsheet, read_sheet};
use crate::io::table::Table;
use crate::job::Job;
use crate::model::Model;
use crate::model::duplicates::SeenIds;
use crate::model::level::Layer;
use crate::progress::Progress;

/// Reads the job's cases (`[layers.events]`) against a built model: each placed in the
/// finest polygon level, judged at `as_of`, counted per unit; every row placed or in the
/// returned issues. `roster` links resident ids; `keep_text` keeps the free text (operational
/// card lists with plain identifiers only).
///
/// # Examples
/// ```
/// let dir = tempfile::tempdir()?;
/// shequ::sample::write_sample(dir.path(), &shequ::sample::SampleConfig::small(3))?;
/// let mut job = shequ::Job::from_toml(dir.path().join("job.toml"))?;
/// let build = shequ::build(&job)?;
/// let b = build.model.buildings[0].id.as_str();
/// std::fs::write(
///     dir.path().join("cases.csv"),
///     format!("id,category,building,reported,handled\n\
///              C1,市容环境,{b},2025-06-02 09:00,2025-06-02 12:00\n\
///              C2,天气,{b},2025-06-02 09:00,\n"),
/// )?;
/// job.layers.events = Some(toml::from_str(
///     "path = 'cases.csv'\nid = 'id'\ncategory = 'category'\nbuilding = 'building'\n\
///      steps = { reported = 'reported', handled = 'handled' }",
/// )?);
/// job.events = Some(toml::from_str("as_of = '2025-07-01'")?);
/// let events = shequ::analytics::events::read_events(
///     &job, &build.model, None, false, &shequ::NoProgress)?;
/// assert_eq!((events.count.placed, events.count.rejected), (1, 1)); // 天气 is no category
/// assert_eq!(events.tally.count(0, 0) + events.tally.count(1, 0) + events.tally.count(2, 0)
///     + events.tally.count(3, 0), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// Whole-file problems (unreadable file, a mapped column missing), bad rule tables, a CRS
/// PROJ cannot use, a job without polygon levels.
pub fn read_events(
    job: &Job,
    model: &Model,
    roster: Option<&RosterIds>,
    keep_text: bool,
    progress: &dyn Progress,
) -> Result<Events> {
    let folder = CaseFolder::new(job, model, roster, keep_text)?;
    // Each chunk's columns and buffers are freed as the next is decoded: their pages are
    // kept for it rather than returned to the kernel and faulted in again.
    let _keep = crate::process::KeepFreedPages::new();
    let cx = folder.context();
    let mut pass = folder.pass();
    progress.start("reading cases", 0);
    let path = folder.path();
    if is_spreadsheet(path) {
        let (columns, _) = folder.wanted();
        let cols: Vec<&str> = columns.iter().map(String::as_str).collect();
        let s = read_sheet(
            Layer::Event.name(),
            path,
            cx.layer.sheet.as_deref(),
            &cols,
            &[],
        )?;
        pass.chunk(&cx, &s.table, s.table.rows_read)?;
    } else {
        let chunks = folder.open(path, &[])?;
        // Sized once for the whole file: the set of ids is not rehashed as it grows.
        pass.seen = SeenIds::new(chunks.rows_estimate());
        pass.times[0] = read_ahead(chunks, |t| {
            pass.chunk(&cx, &t, t.rows_read)?;
            progress.inc(t.rows_read as u64);
            Ok(())
        })?;
    }
    progress.finish();
    let times = pass.times;
    let partial = pass.into_partial();
    crate::trace::step(&format!(
        "cases (waiting for chunks {:.2} s, ids {:.2} s, coordinates {:.2} s, place and judge {:.2} s, \
         fold {:.2} s)",
        times[0].as_secs_f64(),
        times[1].as_secs_f64(),
        times[4].as_secs_f64(),
        times[2].as_secs_f64(),
        times[3].as_secs_f64()
    ));
    Ok(folder.finish([partial]))
}

/// Hands each chunk of `chunks` to `each`, in order, while a thread of its own decodes the
/// next one (one chunk waits at most, so memory stays bounded). Returns the time spent
/// waiting for chunks. An error of either side stops both; the reader ends at its next chunk.
fn read_ahead(
    mut chunks: TableChunks,
    mut each: impl FnMut(Table) -> Result<()>,
) -> Result<std::time::Duration> {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Table>>(1);
        scope.spawn(move || {
            while let Some(mut next) = chunks.next_chunk().transpose() {
                // One chunk per column, made here, off the critical path: cells are then read
                // without looking up their chunk.
                if let Ok(t) = &mut next {
                    t.frame.rechunk_mut();
                }
                let failed = next.is_err();
                if tx.send(next).is_err() || failed {
                    break;
                }
            }
        });
        let mut waiting = std::time::Duration::ZERO;
        loop {
            let t0 = std::time::Instant::now();
            let Ok(next) = rx.recv() else { break };
            waiting += t0.elapsed();
            each(next?)?;
        }
        Ok(waiting)
    })
}
