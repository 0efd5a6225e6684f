//! File hashes for the manifest, and its path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};

/// SHA-256 of a file, hex encoded, remembered for the process by path, size and modification
/// time (so a file hashed ahead by [`prehash_files`] is not read twice, and a changed file is
/// hashed again). A caller asking for a file another thread is hashing waits for its answer.
///
/// # Examples
/// ```
/// let dir = tempfile::tempdir()?;
/// let p = dir.path().join("a.txt");
/// std::fs::write(&p, "abc")?;
/// let h = shequ::output::sha256_file(&p)?;
/// assert_eq!(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
/// std::fs::write(&p, "abcd")?; // another size: hashed again
/// assert_ne!(shequ::output::sha256_file(&p)?, h);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Io`].
pub fn sha256_file(path: &Path) -> Result<String> {
    type Key = (std::path::PathBuf, u64, Option<std::time::SystemTime>);
    type Cell = Arc<std::sync::Mutex<Option<String>>>;
    static SEEN: std::sync::LazyLock<std::sync::Mutex<HashMap<Key, Cell>>> =
        std::sync::LazyLock::new(Default::default);
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let key = (path.to_path_buf(), meta.len(), meta.modified().ok());
    let cell = SEEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(key)
        .or_default()
        .clone();
    let mut hash = cell
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(h) = hash.as_ref() {
        return Ok(h.clone());
    }
    let h = hash_file(path)?;
    *hash = Some(h.clone());
    Ok(h)
}

/// Hashes `paths` with [`sha256_file`] on a background thread, so a manifest written later
/// finds them done; errors are left for that later call to report.
pub fn prehash_files(paths: Vec<std::path::PathBuf>) {
    std::thread::spawn(move || {
        for p in paths {
            let _ = sha256_file(&p);
        }
    });
}

pub(crate) fn hash_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Where an output directory's manifest lives.
pub fn manifest_path(out: &Path) -> PathBuf {
    out.join("manifest.json")
}
