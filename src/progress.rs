//! Progress reporting for long steps, so a CLI can show bars without the library depending on a
//! terminal.

/// Receives progress from long-running steps. All methods have empty defaults.
///
/// # Examples
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// struct Count(AtomicU64);
/// impl shequ::Progress for Count {
///     fn inc(&self, n: u64) { self.0.fetch_add(n, Ordering::Relaxed); }
/// }
/// let c = Count(AtomicU64::new(0));
/// shequ::Progress::inc(&c, 3);
/// assert_eq!(c.0.load(Ordering::Relaxed), 3);
/// ```
pub trait Progress: Sync {
    /// A step starts; `total` is its number of work items (0 if unknown).
    fn start(&self, _step: &str, _total: u64) {}
    /// `n` more items of the current step are done.
    fn inc(&self, _n: u64) {}
    /// The current step is done.
    fn finish(&self) {}
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
