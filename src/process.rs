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
