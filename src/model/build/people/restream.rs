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
    let residents = &build.model.residents;
    let mut next = 0usize;
    let mut placed = Vec::new();
    while let Some(t) = chunks.next_chunk()? {
        placed.clear();
        for i in 0..t.frame.height() {
            let src = t.source_row(i);
            while next < residents.len() && residents[next].source_index < src {
                next += 1;
            }
            if next < residents.len() && residents[next].source_index == src {
                placed.push(Placed {
                    row: i as u32,
                    resident: next as u32,
                    household: residents[next].household,
                });
                next += 1;
            }
        }
        for s in sinks.iter_mut() {
            s.chunk(&build.model, &t, &placed)?;
        }
    }
    Ok(())
}
