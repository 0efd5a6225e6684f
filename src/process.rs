//! The process shequ runs in: settings that make its large allocations fast.

/// Turns transparent huge pages off for this process (Linux), unless `MIMALLOC_ALLOW_THP` is
/// set: mimalloc asks the kernel for huge pages on its 1 GiB arenas, and where the kernel
/// compacts memory to find them at fault time (`defrag` = `madvise`, the common default) or the
/// hypervisor backs guest memory lazily, a first touch of a 2 MiB page stalls. Measured on the
/// project's 2-core VM: touching 500 MB took 1.7–2.1 s with huge pages and 0.3 s without; the
/// 1M-household job spent 4–5 s in the kernel with them and 1.1–1.4 s without. mimalloc does
/// the same itself when `MIMALLOC_ALLOW_THP=0`, but reads that before `main`. The CLI calls it
/// first thing, and the Python module when it is imported (a library that changes its host
/// process: set `MIMALLOC_ALLOW_THP` to keep huge pages).
///
/// # Examples
/// ```
/// shequ::process::avoid_transparent_huge_pages(); // harmless where unsupported
/// ```
pub fn avoid_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours; it
        // fails harmlessly (returns -1) on kernels without it.
        #[allow(unsafe_code)]
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
}

/// mimalloc's option index of `purge_delay` (v3's `mi_option_e`).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc's current purge delay in milliseconds (-1: freed pages are never returned).
///
/// # Examples
/// ```
/// assert!(shequ::process::purge_delay() >= -1);
/// ```
pub fn purge_delay() -> std::ffi::c_long {
    // SAFETY: reads one option; thread-safe.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_get(PURGE_DELAY)
    }
}

/// How many [`KeepFreedPages`] are alive, and the purge delay to restore when the last goes.
static KEPT: std::sync::Mutex<(usize, std::ffi::c_long)> = std::sync::Mutex::new((0, 0));

/// While alive, mimalloc keeps the pages a streaming pass frees instead of returning them to
/// the kernel, so the next chunk's buffers reuse them without faulting them in again (each
/// fault zeroes a page). When the last guard is dropped, the purge delay the process had is
/// restored and freed pages go back to the kernel as before. Measured on the 5M-case
/// benchmark (`docs/performance.md`): 5.2 s → 4.2 s, peak 2.0 → 2.6 GB. A caller that set
/// `MIMALLOC_PURGE_DELAY` keeps its own choice: the guard then changes nothing. It changes
/// nothing either where mimalloc is not the global allocator (its options are then unused).
///
/// # Examples
/// ```
/// use shequ::process::{KeepFreedPages, purge_delay};
/// let before = purge_delay();
/// {
///     let _keep = KeepFreedPages::new();
///     let _nested = KeepFreedPages::new();
///     // ... a pass that frees and allocates chunk-sized buffers ...
///     if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
///         assert_eq!(purge_delay(), -1);
///     }
/// }
/// assert_eq!(purge_delay(), before); // the process' purge delay is back
/// ```
#[must_use = "the pages are kept only while the guard is alive"]
pub struct KeepFreedPages {
    active: bool,
}

impl KeepFreedPages {
    /// Keeps freed pages until the guard is dropped.
    pub fn new() -> Self {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return KeepFreedPages { active: false };
        }
        let mut kept = KEPT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.0 == 0 {
            // SAFETY: mimalloc's option calls take plain integers; they are thread-safe.
            #[allow(unsafe_code)]
            unsafe {
                kept.1 = libmimalloc_sys::mi_option_get(PURGE_DELAY);
                libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
            }
        }
        kept.0 += 1;
        KeepFreedPages { active: true }
    }
}

impl Default for KeepFreedPages {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for KeepFreedPages {
    fn drop(&mut self) {
        if !self.active {
            return;
        }
        let mut kept = KEPT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.0 -= 1;
        if kept.0 == 0 {
            // SAFETY: as in `new`.
            #[allow(unsafe_code)]
            unsafe {
                libmimalloc_sys::mi_option_set(PURGE_DELAY, kept.1);
            }
        }
    }
}
