//! Hashes of checkpoints, and the on-disk cache that makes a second look instant.
//!
//! Owns: whole-file SHA-256, content ids (SHA-256 of tensor data only), hex spelling, and the
//! hash cache. The cache is read once per operation ([`HashCache::load`]), consulted and filled
//! in memory, and written back once ([`HashCache::save`]) under a lock file, merged with what
//! other processes wrote meanwhile. Where it lives is the caller's choice ([`CacheDir`]): the
//! library default is [`CacheDir::Off`], so nothing but the CLI and the window touches a user's
//! cache folder, and tests stay hermetic.
//!
//! Must not import: `convert`, `lineage`, `analysis`, `output`, `gui` (both `convert` and
//! `lineage` use it).

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::format::Checkpoint;
use crate::limits::MAX_CACHE_ENTRIES;
use crate::progress::Progress;

/// Lower-case hexadecimal spelling of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// SHA-256 of a whole file, read in 4 MiB chunks.
pub fn file_sha256(path: &Path) -> Result<String, Error> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 22];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hex(&h.finalize()))
}

/// SHA-256 of a checkpoint's tensor data only: for safetensors the bytes after the header, for
/// sharded models the shards' data sections in order, for other files the whole file. Editing
/// metadata keeps it.
pub fn content_id(ckpt: &Checkpoint, progress: &Progress) -> Result<String, Error> {
    let mut h = Sha256::new();
    // Derived sources (deflated members, decoded fields) are made from a file hashed already.
    let files = || ckpt.sources.iter().filter(|s| s.derivation().is_none());
    progress.add_total(
        files()
            .map(|s| s.file_size - s.data_start.min(s.file_size))
            .sum(),
    );
    for s in files() {
        let bytes = s.mapped()?.bytes();
        let data = usize::try_from(s.data_start)
            .ok()
            .and_then(|start| bytes.get(start..))
            .unwrap_or_default();
        for chunk in data.chunks(1 << 22) {
            if progress.is_cancelled() {
                return Err(Error::Cancelled {
                    path: s.path.clone(),
                });
            }
            h.update(chunk);
            progress.add_done(chunk.len() as u64);
        }
    }
    Ok(hex(&h.finalize()))
}

/// Which hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashKind {
    /// SHA-256 of the tensor data ([`content_id`]).
    Content,
    /// SHA-256 of the whole file (what most tools record).
    File,
}

/// Where the hash cache lives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CacheDir {
    /// No cache: every hash is computed, nothing is written. The library default.
    #[default]
    Off,
    /// The user's cache folder: `$CKPTSCOPE_CACHE_DIR`, else `$XDG_CACHE_HOME/ckptscope` or the
    /// platform's cache folder ([`user_cache_dir`]).
    User,
    /// This folder.
    At(PathBuf),
}

impl CacheDir {
    /// The folder, when there is one.
    pub fn path(&self) -> Option<PathBuf> {
        match self {
            CacheDir::Off => None,
            CacheDir::User => user_cache_dir(),
            CacheDir::At(dir) => Some(dir.clone()),
        }
    }
}

/// The user's cache folder: `$CKPTSCOPE_CACHE_DIR`, else `$XDG_CACHE_HOME/ckptscope` (or the
/// platform's cache folder).
pub fn user_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CKPTSCOPE_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = if cfg!(target_os = "macos") {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join("Library/Caches"))
    } else if cfg!(windows) {
        std::env::var_os("LOCALAPPDATA").map(PathBuf::from)
    } else {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
    };
    base.map(|b| b.join("ckptscope"))
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct CacheFile {
    entries: BTreeMap<String, CacheEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct CacheEntry {
    size: u64,
    mtime_ns: u128,
    #[serde(default)]
    content_id: Option<String>,
    #[serde(default)]
    file_sha256: Option<String>,
}

/// What identifies a file's current version: (canonical path, size, mtime).
fn cache_key(path: &Path) -> Option<(String, u64, u128)> {
    let meta = std::fs::metadata(path).ok()?;
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    let canon = path.canonicalize().ok()?;
    Some((canon.to_string_lossy().into_owned(), meta.len(), mtime))
}

fn read_cache_file(dir: &Path) -> CacheFile {
    std::fs::read(dir.join("hashes.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Hashes known for (path, size, mtime), read once from disk and written back once.
#[derive(Default)]
pub struct HashCache {
    dir: Option<PathBuf>,
    entries: BTreeMap<String, CacheEntry>,
    /// Keys learnt since loading, written by [`HashCache::save`].
    fresh: Vec<String>,
}

impl std::fmt::Debug for HashCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashCache")
            .field("dir", &self.dir)
            .field("entries", &self.entries.len())
            .field("fresh", &self.fresh.len())
            .finish()
    }
}

impl HashCache {
    /// Reads the cache of `dir` (empty when there is none or it cannot be read: a cache only
    /// saves time).
    pub fn load(dir: &CacheDir) -> Self {
        let dir = dir.path();
        let entries = dir
            .as_deref()
            .map(|d| read_cache_file(d).entries)
            .unwrap_or_default();
        HashCache {
            dir,
            entries,
            fresh: Vec::new(),
        }
    }

    /// The hash of `path`'s current version, if known.
    pub fn get(&self, path: &Path, kind: HashKind) -> Option<String> {
        let (key, size, mtime) = cache_key(path)?;
        let e = self.entries.get(&key)?;
        if e.size != size || e.mtime_ns != mtime {
            return None;
        }
        match kind {
            HashKind::Content => e.content_id.clone(),
            HashKind::File => e.file_sha256.clone(),
        }
    }

    /// Records a hash of `path`'s current version (computed here or elsewhere: the converter
    /// hashes its input anyway).
    pub fn put(&mut self, path: &Path, kind: HashKind, value: &str) {
        let Some((key, size, mtime)) = cache_key(path) else {
            return;
        };
        let e = self.entries.entry(key.clone()).or_insert(CacheEntry {
            size,
            mtime_ns: mtime,
            content_id: None,
            file_sha256: None,
        });
        if e.size != size || e.mtime_ns != mtime {
            *e = CacheEntry {
                size,
                mtime_ns: mtime,
                content_id: None,
                file_sha256: None,
            };
        }
        let slot = match kind {
            HashKind::Content => &mut e.content_id,
            HashKind::File => &mut e.file_sha256,
        };
        *slot = Some(value.to_string());
        self.fresh.push(key);
    }

    /// The hash of `path`, from the cache or computed (and remembered).
    pub fn hash_of(
        &mut self,
        path: &Path,
        kind: HashKind,
        progress: &Progress,
    ) -> Result<String, Error> {
        if let Some(h) = self.get(path, kind) {
            return Ok(h);
        }
        let value = match kind {
            HashKind::Content => content_id(&crate::format::open(path)?, progress)?,
            HashKind::File => file_sha256(path)?,
        };
        self.put(path, kind, &value);
        Ok(value)
    }

    /// Writes what was learnt since loading, merged into what is on disk now (another process
    /// may have written meanwhile), under `hashes.lock`. Best effort: a cache that cannot be
    /// written only costs a recomputation later.
    pub fn save(&mut self) {
        let Some(dir) = self.dir.clone() else { return };
        if self.fresh.is_empty() || std::fs::create_dir_all(&dir).is_err() {
            return;
        }
        let Ok(lock) = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("hashes.lock"))
        else {
            return;
        };
        if lock.lock().is_err() {
            return;
        }
        let mut disk = read_cache_file(&dir);
        for key in std::mem::take(&mut self.fresh) {
            if let Some(e) = self.entries.get(&key) {
                disk.entries.insert(key, e.clone());
            }
        }
        // Forget files that are gone, and keep the cache small.
        disk.entries.retain(|path, _| Path::new(path).exists());
        while disk.entries.len() > MAX_CACHE_ENTRIES {
            disk.entries.pop_first();
        }
        let _ = crate::fsutil::atomic_write(
            &dir.join("hashes.json"),
            crate::fsutil::Replace::Always,
            |f| {
                let mut w = std::io::BufWriter::new(f);
                serde_json::to_writer(&mut w, &disk)?;
                w.flush()
            },
        );
        self.entries = disk.entries;
        let _ = lock.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_merge_with_what_another_process_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.bin");
        let b = dir.path().join("b.bin");
        std::fs::write(&a, b"aaaa").unwrap();
        std::fs::write(&b, b"bbbb").unwrap();
        let at = CacheDir::At(dir.path().join("cache"));
        let mut first = HashCache::load(&at);
        let mut second = HashCache::load(&at);
        first.put(&a, HashKind::File, "11");
        first.save();
        second.put(&b, HashKind::Content, "22");
        second.save();
        let third = HashCache::load(&at);
        assert_eq!(third.get(&a, HashKind::File).as_deref(), Some("11"));
        assert_eq!(third.get(&b, HashKind::Content).as_deref(), Some("22"));
        assert_eq!(third.get(&b, HashKind::File), None);
        // A changed file is a new version: its old hashes are not given.
        std::fs::write(&a, b"changed").unwrap();
        assert_eq!(HashCache::load(&at).get(&a, HashKind::File), None);
    }

    #[test]
    fn off_never_writes_and_hashes_are_computed() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.bin");
        std::fs::write(&a, b"abc").unwrap();
        let mut cache = HashCache::load(&CacheDir::Off);
        let h = cache
            .hash_of(&a, HashKind::File, &Progress::default())
            .unwrap();
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        cache.save();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
