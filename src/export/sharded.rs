//! A sharded safetensors model (`model.safetensors.index.json`) as a sharded PyTorch one:
//! `pytorch_model-0000N-of-0000M.bin` per shard and `pytorch_model.bin.index.json`, the split
//! unchanged.
//!
//! Why shards by default: the `transformers` versions that read an index (4.18 and later, April
//! 2022) are the ones between it and safetensors support (4.25 and later), and they load the
//! shards one at a time, so peak memory stays one shard's; `save_pretrained` of those versions
//! wrote exactly these names. Versions before 4.18 read only `pytorch_model.bin`:
//! [`super::ExportOptions::single_file`] (`--single-file`) writes that instead. Ties are restored
//! within a shard (a storage lives in one file); a tie across shards is left to
//! `transformers`, which ties those weights when it loads them, and is noted.
//!
//! Owns: the sharded route. Must not import: `write`, `pickle`.

use std::collections::BTreeMap;
use std::path::Path;

use super::{ExportError, ExportOptions, ExportReport, Target, default_output, export};
use crate::error::Error;
use crate::format::Checkpoint;
use crate::progress::Progress;

/// Where the shard `source` is written: its default name, in the output index's folder.
pub(super) fn shard_output(out_folder: &Path, source: &Path) -> std::path::PathBuf {
    let out_name = default_output(source, false);
    out_folder.join(out_name.file_name().unwrap_or_default())
}

/// Every shard of `ckpt` (an opened index) exported beside the output index, then the index.
/// Shards already written stay if a later one fails; the index is written last, so a failure
/// leaves no index.
pub(super) fn export_shards(
    ckpt: &Checkpoint,
    options: &ExportOptions,
    progress: &Progress,
) -> Result<ExportReport, ExportError> {
    let out_index = options
        .output
        .clone()
        .unwrap_or_else(|| default_output(&ckpt.path, false));
    super::check_output(ckpt, &out_index, options.force)?;
    let out_folder = out_index.parent().unwrap_or(Path::new(""));
    let text = std::fs::read(&ckpt.path).map_err(|e| Error::io("read", &ckpt.path, e))?;
    let index: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
        Error::invalid(
            &ckpt.path,
            crate::error::Problem::BadIndex {
                message: e.to_string(),
            },
        )
    })?;
    let mut total = ExportReport {
        input: ckpt.path.clone(),
        output: out_index.clone(),
        to: Target::Pytorch,
        tensors: 0,
        storages: 0,
        bytes: 0,
        tied: Vec::new(),
        notes: Vec::new(),
        source_sha256: crate::hash::file_sha256(&ckpt.path)?,
        shards: Vec::new(),
        verified: true,
    };
    let mut weight_map: BTreeMap<String, String> = BTreeMap::new();
    let mut written = crate::pipeline::Shards::new(&ckpt.path);
    for source in &ckpt.sources {
        let output = shard_output(out_folder, &source.path);
        let shard_options = ExportOptions {
            output: Some(output.clone()),
            single_file: false,
            ..options.clone()
        };
        let r = export(&source.path, &shard_options, progress)?;
        let shard = crate::format::open(&source.path)?;
        let shard_name = output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for t in &shard.tensors {
            weight_map.insert(t.name.clone(), shard_name.clone());
        }
        for (alias, _) in &r.tied {
            weight_map.insert(alias.clone(), shard_name.clone());
        }
        total.tensors += r.tensors;
        total.storages += r.storages;
        total.tied.extend(r.tied);
        total.notes.extend(r.notes);
        written.add(r.output, r.bytes)?;
    }
    // Ties the index names across shards (a dropped name mapped to a shard lacking its target)
    // are not restored: say so.
    if let Some(map) = index.get("weight_map").and_then(|m| m.as_object()) {
        for name in map.keys() {
            if !weight_map.contains_key(name) {
                total.notes.push(format!(
                    "`{name}` is in the index but in no shard: not written"
                ));
            }
        }
    }
    let metadata = index
        .get("metadata")
        .and_then(|m| m.as_object())
        .cloned()
        .unwrap_or_default();
    total.bytes = written.bytes();
    total.shards = written.finish(
        &out_index,
        metadata,
        &weight_map,
        crate::pipeline::replace_if(options.force),
    )?;
    Ok(total)
}
