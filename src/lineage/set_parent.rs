//! `set-parent`: writing a parent reference into a safetensors file's metadata, rewriting the
//! header only.
//!
//! Owns: [`set_parent`]. Must not import: `graph`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Problem};
use crate::format::Format;
use crate::hash::{CacheDir, HashCache, HashKind};
use crate::progress::Progress;

/// What `set_parent` wrote.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SetParentReport {
    /// The file rewritten.
    pub file: PathBuf,
    /// Keys written.
    pub keys: Vec<(String, String)>,
    /// Content id before and after (equal: only the header changed).
    pub content_id: String,
}

/// Writes `parent`, `parent_sha256` (whole-file SHA-256 of the parent) into `file`'s
/// `__metadata__`, rewriting only the header: the data bytes are copied unchanged into a
/// temporary file that replaces `file` atomically once it is verified.
pub fn set_parent(
    file: &Path,
    parent: &Path,
    cache: &CacheDir,
    progress: &Progress,
) -> Result<SetParentReport, Error> {
    let ckpt = crate::format::open(file)?;
    if ckpt.format != Format::Safetensors {
        return Err(Error::Unsupported {
            path: file.to_path_buf(),
            what: format!(
                "set-parent writes safetensors metadata; this is a {}",
                ckpt.format.label()
            ),
        });
    }
    if !parent.is_file() {
        return Err(Error::io(
            "open",
            parent,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such parent file"),
        ));
    }
    let parent_ref = match (file.parent(), parent.parent()) {
        (Some(a), Some(b)) if a.canonicalize().ok() == b.canonicalize().ok() => parent
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        _ => parent
            .canonicalize()
            .unwrap_or_else(|_| parent.to_path_buf())
            .to_string_lossy()
            .into_owned(),
    };
    let mut cache = HashCache::load(cache);
    let parent_sha = cache.hash_of(parent, HashKind::File, progress)?;
    cache.save();
    let keys = vec![
        ("parent".to_string(), parent_ref),
        ("parent_sha256".to_string(), parent_sha),
    ];
    let mut metadata: Vec<(String, String)> = ckpt
        .metadata
        .iter()
        .filter(|(k, _)| !keys.iter().any(|(n, _)| n == k))
        .cloned()
        .collect();
    metadata.extend(keys.iter().cloned());
    let before = crate::hash::content_id(&ckpt, &Progress::default())?;
    crate::format::safetensors::rewrite_metadata(&ckpt, &metadata)?;
    let after = crate::hash::content_id(&crate::format::open(file)?, &Progress::default())?;
    if before != after {
        return Err(Error::invalid(
            file,
            Problem::Other("the data changed while rewriting the header".into()),
        ));
    }
    Ok(SetParentReport {
        file: file.to_path_buf(),
        keys,
        content_id: after,
    })
}
