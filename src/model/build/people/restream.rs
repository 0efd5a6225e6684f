//! The roster read again after a build, for analyses that were not sinks of it: each chunk's
//! rows are matched to the residents the build placed from them.

use super::residents::{PeopleSink, Placed};
use crate::error::Result;
use crate::io::chunks::TableChunks;
use crate::model::build::Build;
use crate::model::level::Layer;

/// Streams `build`'s roster through `sinks` as the build would have: the sinks' columns, in
/// chunks of `options.chunk_rows`, each with the residents placed from it.
///
/// # Errors
/// The roster cannot be read again; a sink's own errors.
pub fn restream(build: &Build, sinks: &mut [&mut dyn PeopleSink]) -> Result<()> {
    let job = &build.job;
    let Some(r) = job.layers.residents.as_ref() else {
        return Err(job.error("no [layers.residents] to read"));
    };
    let mut wanted: Vec<String> = sinks.iter().flat_map(|s| s.columns()).collect();
    wanted.sort();
    wanted.dedup();
    let refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
    let mut chunks = TableChunks::open(
        Layer::Resident.name(),
        &job.resolve(&r.path),
        &refs,
        &[],
        &[],
        r.encoding,
        job.options.chunk_rows.rows(),
    )?;
    for s in sinks.iter_mut() {
        s.header(chunks.header())?;
    }
    // The next chunks are read on their own thread while the sinks work on this one, as the
    // build reads the roster.
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        scope.spawn(move || {
            for chunk in &mut chunks {
                let failed = chunk.is_err();
                if tx.send(chunk).is_err() || failed {
                    return;
                }
            }
        });
        let mut at = Cursor::default();
        for t in rx {
            let t = t?;
            at.place(&build.model.residents, &t);
            for s in sinks.iter_mut() {
                s.chunk(&build.model, &t, &at.placed)?;
            }
        }
        Ok(())
    })
}

/// The residents placed from the chunks so far: the next resident to match, and the current
/// chunk's matches.
#[derive(Default)]
struct Cursor {
    next: usize,
    placed: Vec<Placed>,
}

impl Cursor {
    /// Matches `t`'s rows to the residents the build placed from them (both in file order).
    fn place(&mut self, residents: &[crate::model::Resident], t: &crate::io::table::Table) {
        self.placed.clear();
        for i in 0..t.frame.height() {
            let src = t.source_row(i);
            while self.next < residents.len() && residents[self.next].source_index < src {
                self.next += 1;
            }
            if self.next < residents.len() && residents[self.next].source_index == src {
                self.placed.push(Placed {
                    row: i as u32,
                    resident: self.next as u32,
                    household: residents[self.next].household,
                });
                self.next += 1;
            }
        }
    }
}
