//! The shard loop's bookkeeping: the files written so far (what the window's Undo removes),
//! their total size, and the index (`*.index.json`) written last, so a failure part-way leaves
//! no index and the shards already verified stay.
//!
//! Owns: [`Shards`], [`write_index`]. Must not import: the other files of `pipeline` but
//! `error` (through `mod.rs`).

use std::path::{Path, PathBuf};

use super::WriteError;
use crate::fsutil::Replace;

/// The shards of one sharded output, as they are written.
#[derive(Clone, Debug)]
pub struct Shards {
    input: PathBuf,
    bytes: u64,
    files: Vec<PathBuf>,
}

impl Shards {
    /// No shard yet; `input` names the model being written (for a size that overflows).
    pub fn new(input: &Path) -> Shards {
        Shards {
            input: input.to_path_buf(),
            bytes: 0,
            files: Vec::new(),
        }
    }

    /// One more shard written: the file and the bytes of tensor data it holds.
    pub fn add(&mut self, file: PathBuf, bytes: u64) -> Result<(), WriteError> {
        self.bytes = self
            .bytes
            .checked_add(bytes)
            .ok_or_else(|| WriteError::TooLarge {
                path: self.input.clone(),
                what: "the total size of the shards".into(),
            })?;
        self.files.push(file);
        Ok(())
    }

    /// Bytes of tensor data in the shards so far (the index's `total_size`).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Writes the index (`metadata` with `total_size` set, and `weight_map`) to `index` and
    /// returns the shard files written.
    pub fn finish(
        self,
        index: &Path,
        mut metadata: serde_json::Map<String, serde_json::Value>,
        weight_map: &impl serde::Serialize,
        replace: Replace,
    ) -> Result<Vec<PathBuf>, WriteError> {
        metadata.insert("total_size".into(), serde_json::Value::from(self.bytes));
        write_index(index, &metadata, weight_map, replace)?;
        Ok(self.files)
    }
}

/// Writes a shard index, `{"metadata": ..., "weight_map": ...}` as transformers writes it
/// (indented, one trailing newline), atomically.
pub fn write_index(
    index: &Path,
    metadata: &serde_json::Map<String, serde_json::Value>,
    weight_map: &impl serde::Serialize,
    replace: Replace,
) -> Result<PathBuf, WriteError> {
    #[derive(serde::Serialize)]
    struct Index<'a, W> {
        metadata: &'a serde_json::Map<String, serde_json::Value>,
        weight_map: &'a W,
    }
    let json = Index {
        metadata,
        weight_map,
    };
    crate::fsutil::atomic_write(index, replace, |f| {
        serde_json::to_writer_pretty(&mut *f, &json).map_err(std::io::Error::from)?;
        std::io::Write::write_all(f, b"\n")
    })
    .map_err(|error| match error.kind() {
        std::io::ErrorKind::AlreadyExists => WriteError::Exists(index.to_path_buf()),
        _ => WriteError::io(index, error),
    })
}
