//! Converting a sharded pickle model (`pytorch_model.bin.index.json`): every shard, then an
//! index for the safetensors shards.
//!
//! Owns: the sharded route. Must not import: `write`, `verify`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::{ConvertError, ConvertOptions, ConvertReport, check_output, convert, default_output};
use crate::error::Error;
use crate::pickle::policy::Verdict;
use crate::progress::Progress;

// ---- sharded pickle models ---------------------------------------------------------------------

/// Whether `path` names the index of a sharded *pickle* model (`pytorch_model.bin.index.json`).
pub fn is_sharded_pickle_index(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.ends_with(".bin.index.json")
        || name.ends_with(".pt.index.json")
        || name.ends_with(".pth.index.json")
}

#[derive(serde::Deserialize)]
pub(super) struct PickleIndex {
    #[serde(default)]
    metadata: serde_json::Map<String, serde_json::Value>,
    weight_map: BTreeMap<String, String>,
}

/// `pytorch_model.bin.index.json` + shards → `model.safetensors.index.json` + one safetensors
/// file per shard, with the same split. Shards already converted stay if a later one fails;
/// the index is written last, so a failure leaves no index.
pub(super) fn convert_sharded(
    index: &Path,
    options: &ConvertOptions,
    progress: &Progress,
) -> Result<ConvertReport, ConvertError> {
    let out_index = options
        .output
        .clone()
        .unwrap_or_else(|| default_output(index));
    check_output(index, &out_index, options.force)?;
    let text = std::fs::read(index).map_err(|e| Error::io("read", index, e))?;
    let parsed: PickleIndex = serde_json::from_slice(&text).map_err(|e| {
        Error::invalid(
            index,
            crate::error::Problem::BadIndex {
                message: format!("expected {{\"weight_map\": {{tensor: shard}}}}: {e}"),
            },
        )
    })?;
    let folder = index.parent().unwrap_or(Path::new(""));
    let out_folder = out_index.parent().unwrap_or(Path::new(""));
    let mut shards: Vec<&String> = parsed.weight_map.values().collect();
    shards.sort();
    shards.dedup();
    let mut renamed: HashMap<String, String> = HashMap::new();
    let mut written = crate::pipeline::Shards::new(index);
    let mut total = ConvertReport {
        input: index.to_path_buf(),
        output: out_index.clone(),
        verdict: Verdict::Safe,
        exported: None,
        left_out: Vec::new(),
        tensors: 0,
        bytes: 0,
        aliases: Vec::new(),
        skipped: Vec::new(),
        source_sha256: crate::hash::file_sha256(index)?,
        shards: Vec::new(),
        verified: true,
    };
    for shard in shards {
        let input = folder.join(shard);
        let out_name = default_output(Path::new(shard));
        let output = out_folder.join(out_name.file_name().unwrap_or_default());
        let shard_options = ConvertOptions {
            output: Some(output.clone()),
            // A shard holds a flat state dict: every tensor under its own name.
            all: true,
            ..options.clone()
        };
        let r = convert(&input, &shard_options, progress)?;
        renamed.insert(
            shard.clone(),
            output
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        );
        total.verdict = total.verdict.max(r.verdict);
        total.tensors += r.tensors;
        total.aliases.extend(r.aliases);
        total.skipped.extend(r.skipped);
        written.add(r.output, r.bytes)?;
    }
    let weight_map: BTreeMap<&String, &String> = parsed
        .weight_map
        .iter()
        .filter_map(|(t, s)| renamed.get(s).map(|n| (t, n)))
        .collect();
    total.bytes = written.bytes();
    total.shards = written.finish(
        &out_index,
        parsed.metadata.clone(),
        &weight_map,
        crate::pipeline::replace_if(options.force),
    )?;
    Ok(total)
}
