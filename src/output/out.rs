//! Where outputs go: files under a directory (written in the background) or tables in memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow_schema::Schema;

use crate::error::{Error, Result};
use crate::io::geoparquet;
use crate::output::person_list::PersonList;
/// Where [`write_model_to`](crate::output::write_model_to) puts its outputs: files under a directory, or Arrow record batches
/// and texts in memory (for bindings and notebooks, which hand the tables on without copying).
///
/// Every table is addressed by its path relative to the output directory without extension:
/// `grids`, `special_needs/grid`, `coverage/blind_spots`. In memory, GeoJSON copies are not
/// made and partitioned tables stay whole; Parquet tables and the summaries are kept exactly as
/// the files would hold them (spatial tables keep their `geo` schema metadata).
///
/// # Examples
/// ```
/// use shequ::output::Out;
/// let out = Out::memory();
/// assert!(out.is_memory());
/// assert!(out.tables().is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct Out {
    dir: PathBuf,
    prefix: String,
    memory: Option<Arc<Mutex<Memory>>>,
    /// Writes the Parquet files of a directory output on its own thread, so that encoding and
    /// compressing one table overlaps computing the next.
    writer: Option<Arc<Writer>>,
    /// Person-level tables as Hive partitions by street and community (`[output] partitioned`).
    partitioned: bool,
    /// Person lists kept for the executors that fill and write them, when deferred.
    deferred: Option<Arc<Mutex<Vec<PersonList>>>>,
}

/// A table waiting to be written.
pub(crate) type Pending = (PathBuf, Arc<Schema>, arrow_array::RecordBatch);

/// The background Parquet writer of a directory [`Out`]: files are written in the order they
/// are given; [`Out::finish`] waits for all of them and returns the first error.
#[derive(Debug)]
pub(crate) struct Writer {
    queue: Mutex<Option<std::sync::mpsc::Sender<Pending>>>,
    thread: Mutex<Option<std::thread::JoinHandle<Result<()>>>>,
}

impl Writer {
    fn new() -> Writer {
        let (tx, rx) = std::sync::mpsc::channel::<Pending>();
        let thread = std::thread::spawn(move || {
            let mut result = Ok(());
            for (path, schema, batch) in rx {
                let written = geoparquet::write_batch(&path, schema, &batch);
                if result.is_ok() {
                    result = written;
                }
            }
            result
        });
        Writer {
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        }
    }

    fn send(&self, item: Pending) -> Result<()> {
        let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        match queue.as_ref() {
            Some(tx) if tx.send(item.clone()).is_ok() => Ok(()),
            // Finished already (or the thread is gone): write here.
            _ => geoparquet::write_batch(&item.0, item.1, &item.2),
        }
    }

    fn finish(&self) -> Result<()> {
        drop(self.queue.lock().unwrap_or_else(|e| e.into_inner()).take());
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        match thread {
            Some(t) => t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            None => Ok(()),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Only reached without `finish` when an error is already being returned.
        let _ = self.finish();
    }
}

/// The outputs kept by an in-memory [`Out`].
#[derive(Debug, Clone, Default)]
pub struct Memory {
    /// Tables by name (`grids`, `special_needs/grid`, ...), as written to Parquet.
    pub tables: BTreeMap<String, arrow_array::RecordBatch>,
    /// Texts by file name (`special_needs/summary.md`, ...).
    pub texts: BTreeMap<String, String>,
}

impl Out {
    /// Files under `dir`.
    pub fn dir(dir: impl Into<PathBuf>) -> Out {
        Out {
            dir: dir.into(),
            prefix: String::new(),
            memory: None,
            writer: Some(Arc::new(Writer::new())),
            partitioned: false,
            deferred: None,
        }
    }

    /// Tables in memory.
    pub fn memory() -> Out {
        Out {
            dir: PathBuf::new(),
            prefix: String::new(),
            memory: Some(Arc::default()),
            writer: None,
            partitioned: false,
            deferred: None,
        }
    }

    /// The same target, writing person-level tables as Hive partitions by street and
    /// community when `partitioned` is set (as `[output] partitioned = true` asks; memory
    /// targets keep tables whole).
    ///
    /// # Examples
    /// ```
    /// let out = shequ::output::Out::memory().with_partitioned(true);
    /// assert!(out.is_partitioned());
    /// ```
    pub fn with_partitioned(mut self, partitioned: bool) -> Out {
        self.partitioned = partitioned;
        self
    }

    /// The same target, keeping the person-level lists whose identifiers come from the
    /// roster ([`PersonList`]) instead of writing them: an engine whose executors hold the
    /// roster's rows fills and writes them
    /// ([`write_part_from`](crate::output::person_list::write_part_from)). Their files are
    /// still listed as written.
    ///
    /// # Examples
    /// ```
    /// let out = shequ::output::Out::dir("out").deferring_lists();
    /// assert!(out.take_lists().is_empty());
    /// ```
    pub fn deferring_lists(mut self) -> Out {
        self.deferred = Some(Arc::default());
        self
    }

    /// The person lists kept so far ([`deferring_lists`](Self::deferring_lists)), taken out.
    ///
    /// # Panics
    /// If another thread panicked while keeping a list.
    pub fn take_lists(&self) -> Vec<PersonList> {
        self.deferred
            .as_ref()
            .map(|d| std::mem::take(&mut *d.lock().expect("not poisoned")))
            .unwrap_or_default()
    }

    /// Keeps `list` when this target defers lists; gives it back when not.
    pub(crate) fn defer(&self, list: PersonList) -> Option<PersonList> {
        match &self.deferred {
            Some(d) => {
                d.lock().expect("not poisoned").push(list);
                None
            }
            None => Some(list),
        }
    }

    /// The directory of this target below the output's root (`coverage/`, or empty).
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// True if person-level tables are written as Hive partitions.
    pub fn is_partitioned(&self) -> bool {
        self.partitioned
    }

    /// Waits until every table given so far is written (Parquet files of a directory output
    /// are written on a background thread).
    ///
    /// # Errors
    /// The first write error.
    pub fn finish(&self) -> Result<()> {
        match &self.writer {
            Some(w) => w.finish(),
            None => Ok(()),
        }
    }

    /// Whether outputs are kept in memory rather than written.
    pub fn is_memory(&self) -> bool {
        self.memory.is_some()
    }

    /// The directory written to (empty for memory).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The tables kept so far (empty when writing files).
    ///
    /// # Panics
    /// If another thread panicked while writing into this memory target.
    pub fn tables(&self) -> BTreeMap<String, arrow_array::RecordBatch> {
        self.memory
            .as_ref()
            .map(|m| m.lock().expect("not poisoned").tables.clone())
            .unwrap_or_default()
    }

    /// Everything kept so far (empty when writing files).
    ///
    /// # Panics
    /// If another thread panicked while writing into this memory target.
    pub fn into_memory(self) -> Memory {
        self.memory
            .map(|m| m.lock().expect("not poisoned").clone())
            .unwrap_or_default()
    }

    /// The same output, for the sub-directory `name`.
    pub(crate) fn sub(&self, name: &str) -> Out {
        Out {
            dir: self.dir.join(name),
            prefix: format!("{}{name}/", self.prefix),
            memory: self.memory.clone(),
            writer: self.writer.clone(),
            partitioned: self.partitioned,
            deferred: self.deferred.clone(),
        }
    }

    /// Creates the directory (nothing in memory).
    pub(crate) fn create(&self) -> Result<()> {
        if self.memory.is_none() {
            std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        }
        Ok(())
    }

    /// Writes `rel` (a `.parquet` path below this directory) or keeps it under its name
    /// without the extension.
    pub(crate) fn batch(
        &self,
        rel: &str,
        schema: Arc<Schema>,
        batch: &arrow_array::RecordBatch,
    ) -> Result<()> {
        match &self.memory {
            Some(m) => {
                let name = format!("{}{}", self.prefix, rel.trim_end_matches(".parquet"));
                m.lock()
                    .expect("not poisoned")
                    .tables
                    .insert(name, batch.clone());
                Ok(())
            }
            None => {
                let path = self.dir.join(rel);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                }
                match &self.writer {
                    Some(w) => w.send((path, schema, batch.clone())),
                    None => geoparquet::write_batch(&path, schema, batch),
                }
            }
        }
    }

    /// Writes or keeps a text file `rel`.
    pub(crate) fn text(&self, rel: &str, text: String) -> Result<()> {
        match &self.memory {
            Some(m) => {
                let name = format!("{}{rel}", self.prefix);
                m.lock().expect("not poisoned").texts.insert(name, text);
                Ok(())
            }
            None => {
                let path = self.dir.join(rel);
                std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
            }
        }
    }
}
