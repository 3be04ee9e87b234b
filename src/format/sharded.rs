//! Sharded safetensors: `model.safetensors.index.json` maps tensor names to shard files.
//!
//! The index and the shards are written separately and drift apart in practice (a re-uploaded
//! shard, a hand-edited index). ckptscope trusts the shards for what they hold and reports every
//! disagreement with the index as a finding instead of refusing to open: a user inspecting a
//! broken model needs to see it, not an error.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Problem};
use crate::format::{
    Checkpoint, Format, ReadIssue, Severity, Source, TensorEntry, read_header_file,
};
use crate::limits::Limits;

#[derive(Deserialize)]
struct IndexFile {
    #[serde(default)]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
    weight_map: BTreeMap<String, String>,
}

/// Opens a sharded checkpoint from its index file. Shard headers are read; shard data is mapped
/// only when a tensor's bytes are first needed.
pub fn open_index(index_path: &Path, limits: &Limits) -> Result<Checkpoint, Error> {
    let index = read_index(index_path, limits)?;
    let folder = index_path.parent().unwrap_or(Path::new("."));
    let mut findings = Vec::new();

    let mut shard_names: Vec<&str> = index.weight_map.values().map(String::as_str).collect();
    shard_names.sort_unstable();
    shard_names.dedup();
    if shard_names.len() > limits.max_shards {
        return Err(Error::invalid(
            index_path,
            Problem::BadIndex {
                message: format!(
                    "names {} shards, more than the limit of {}",
                    shard_names.len(),
                    limits.max_shards
                ),
            },
        ));
    }

    let mut sources: Vec<Source> = Vec::new();
    let mut tensors: Vec<TensorEntry> = Vec::new();
    let mut metadata: Vec<(String, String)> = Vec::new();
    // Where each tensor actually is (first shard that holds it).
    let mut located: HashMap<String, String> = HashMap::new();
    let mut unreadable: Vec<&str> = Vec::new();

    for &shard in &shard_names {
        if !is_plain_file_name(shard) {
            findings.push(ReadIssue::new(
                Severity::Error,
                format!("the index names shard `{shard}`, which is not a plain file name in the index's folder; it was not opened"),
            ));
            unreadable.push(shard);
            continue;
        }
        let shard_path = folder.join(shard);
        let (file_len, header) = match read_header_file(&shard_path, limits) {
            Ok(h) => h,
            Err(e) => {
                findings.push(ReadIssue::new(
                    Severity::Error,
                    format!("shard `{shard}` cannot be read: {e}"),
                ));
                unreadable.push(shard);
                continue;
            }
        };
        let source_index = sources.len();
        let mut held = 0;
        for t in header.tensors {
            if let Some(first) = located.get(&t.name) {
                findings.push(ReadIssue::new(
                    Severity::Warning,
                    format!("tensor `{}` is in both `{first}` and `{shard}`; the copy in `{first}` is shown", t.name),
                ));
                continue;
            }
            located.insert(t.name.clone(), shard.to_string());
            held += 1;
            tensors.push(TensorEntry {
                source: source_index,
                ..t
            });
        }
        if metadata.is_empty() {
            metadata = header.metadata;
        }
        sources.push(Source::new(shard_path, file_len, header.header_size, held));
    }

    compare_with_index(&index, &located, &unreadable, &tensors, &mut findings);
    if let Some(index_meta) = &index.metadata {
        for (key, value) in index_meta {
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            metadata.push((format!("index.{key}"), text));
        }
    }
    Ok(Checkpoint::new(
        index_path.to_path_buf(),
        Format::SafetensorsSharded,
        metadata,
        tensors,
        sources,
        findings,
    ))
}

fn read_index(path: &Path, limits: &Limits) -> Result<IndexFile, Error> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io("read", path, e))?
        .len();
    if len > limits.max_index_bytes {
        return Err(Error::invalid(
            path,
            Problem::BadIndex {
                message: format!(
                    "{len} bytes, more than the {}-byte limit",
                    limits.max_index_bytes
                ),
            },
        ));
    }
    let text = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    serde_json::from_slice(&text).map_err(|e| {
        Error::invalid(
            path,
            Problem::BadIndex {
                message: format!(
                    "expected {{\"metadata\": {{..}}, \"weight_map\": {{tensor: shard}}}}: {e}"
                ),
            },
        )
    })
}

/// The shard files an index (of safetensors or of pickles) names, each once, in name order:
/// only plain file names beside the index (a name with a folder in it is an error when the
/// model is opened, and is not listed here).
pub fn shard_names(index_path: &Path, limits: &Limits) -> Result<Vec<String>, Error> {
    let index = read_index(index_path, limits)?;
    let mut names: Vec<String> = index
        .weight_map
        .into_values()
        .filter(|n| is_plain_file_name(n))
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Every distinct shard an index's `weight_map` names, as written (not filtered: a name that
/// leaves the folder is the scan's to judge).
pub fn listed_shards(index_path: &Path, limits: &Limits) -> Result<Vec<String>, Error> {
    let index = read_index(index_path, limits)?;
    let mut names: Vec<String> = index.weight_map.into_values().collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Whether a shard name read from an index leaves the index's folder when a loader joins it to
/// that folder (`os.path.join` as transformers does): an absolute path, a drive, a `..`
/// component, or a backslash (a separator on Windows).
pub fn shard_escapes(name: &str) -> bool {
    name.starts_with('/')
        || name.contains('\\')
        || matches!(name.as_bytes(), [d, b':', ..] if d.is_ascii_alphabetic())
        || name.split('/').any(|c| c == "..")
}

fn is_plain_file_name(name: &str) -> bool {
    let p = PathBuf::from(name);
    !name.is_empty()
        && !name.contains(['/', '\\'])
        && name != "."
        && name != ".."
        && p.file_name().is_some_and(|f| f == name)
}

fn compare_with_index(
    index: &IndexFile,
    located: &HashMap<String, String>,
    unreadable: &[&str],
    tensors: &[TensorEntry],
    findings: &mut Vec<ReadIssue>,
) {
    let mut missing_per_shard: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, shard) in &index.weight_map {
        match located.get(name) {
            Some(actual) if actual == shard => {}
            Some(actual) => findings.push(ReadIssue::new(
                Severity::Warning,
                format!("the index places tensor `{name}` in `{shard}` but it is in `{actual}`"),
            )),
            None if unreadable.contains(&shard.as_str()) => {
                *missing_per_shard.entry(shard).or_default() += 1;
            }
            None => findings.push(ReadIssue::new(
                Severity::Error,
                format!(
                    "the index lists tensor `{name}` in `{shard}` but that shard does not hold it"
                ),
            )),
        }
    }
    for (shard, count) in missing_per_shard {
        findings.push(ReadIssue::new(
            Severity::Error,
            format!("{count} tensor(s) the index places in unreadable shard `{shard}` are missing"),
        ));
    }
    for t in tensors {
        if !index.weight_map.contains_key(&t.name) {
            let shard = located.get(&t.name).map(String::as_str).unwrap_or("?");
            findings.push(ReadIssue::new(
                Severity::Warning,
                format!(
                    "tensor `{}` is in shard `{shard}` but the index does not list it",
                    t.name
                ),
            ));
        }
    }
    let total_size = index
        .metadata
        .as_ref()
        .and_then(|m| m.get("total_size"))
        .and_then(serde_json::Value::as_u64);
    let actual: u64 = tensors.iter().map(TensorEntry::byte_len).sum();
    if let Some(declared) = total_size
        && declared != actual
    {
        findings.push(ReadIssue::new(
            Severity::Warning,
            format!("the index's total_size says {declared} bytes but the shards' tensors hold {actual} bytes"),
        ));
    }
}
