//! Reading lineage conventions: every way a checkpoint says where it came from, normalised
//! into one [`Record`].
//!
//! ckptscope's own keys (written by the converter and by `set-parent`), ModelSpec, kohya
//! sd-scripts, Hugging Face / PEFT configs beside the file, anemoi-style uuids (also inside
//! JSON-valued metadata), and Lightning's epoch/global_step.
//!
//! Owns: [`Record`], [`ParentRef`], [`record`]. Must not import: `graph`, `set_parent`.

use std::path::Path;

use crate::error::Error;
use crate::format::Format;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefKind {
    /// A file name (`model-v1.safetensors`).
    Name,
    /// A path, relative to the child's folder or absolute.
    Path,
    /// A SHA-256 of the parent's file or tensor data.
    Sha256,
    /// A uuid the parent declares as its own.
    Uuid,
    /// A Hugging Face repository id (`meta-llama/Llama-3-8B`).
    HfRepo,
    /// A short hash of the AUTOMATIC1111 kind (not comparable to SHA-256).
    ShortHash,
}

/// One reference to a parent.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ParentRef {
    /// How it refers.
    pub kind: RefKind,
    /// The value (a name, path, hash or uuid).
    pub value: String,
    /// The metadata key (or file) it was read from.
    pub via: String,
}

/// What a checkpoint says about itself and where it came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Record {
    /// Display name (ModelSpec title, or the file name).
    pub name: String,
    /// Version label.
    pub version: Option<String>,
    /// When it was made (as written).
    pub created: Option<String>,
    /// Training step.
    pub step: Option<u64>,
    /// Training epoch.
    pub epoch: Option<u64>,
    /// Its own uuid.
    pub uuid: Option<String>,
    /// Hashes it declares for itself (normalised lowercase hex).
    pub own_hashes: Vec<String>,
    /// Architecture, when declared.
    pub architecture: Option<String>,
    /// Its parents.
    pub parents: Vec<ParentRef>,
}

fn norm_hash(s: &str) -> Option<String> {
    let h = s.trim().trim_start_matches("0x").to_ascii_lowercase();
    (h.len() >= 8 && h.bytes().all(|b| b.is_ascii_hexdigit())).then_some(h)
}

fn parse_u64(s: &str) -> Option<u64> {
    s.trim()
        .trim_matches('"')
        .parse::<f64>()
        .ok()
        .filter(|v| *v >= 0.0 && v.is_finite())
        .map(|v| v as u64)
}

/// `org/name` (names may hold dots, `Llama-3.1-8B`), not a relative file path.
fn looks_like_hub_repo(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    v.matches('/').count() == 1
        && !v.starts_with(['/', '.', '~'])
        && !v.contains('\\')
        && ![
            ".safetensors",
            ".bin",
            ".pt",
            ".pth",
            ".ckpt",
            ".pkl",
            ".json",
            ".gguf",
        ]
        .iter()
        .any(|e| lower.ends_with(e))
}

/// Classifies a free-text parent reference.
fn reference(value: &str, via: &str) -> Option<ParentRef> {
    let v = value.trim().trim_matches('"');
    if v.is_empty() || v == "None" || v == "null" {
        return None;
    }
    let kind = if let Some(h) = norm_hash(v).filter(|h| h.len() == 64) {
        return Some(ParentRef {
            kind: RefKind::Sha256,
            value: h,
            via: via.into(),
        });
    } else if looks_like_hub_repo(v) {
        RefKind::HfRepo
    } else if v.contains('/') || v.contains('\\') {
        RefKind::Path
    } else {
        RefKind::Name
    };
    Some(ParentRef {
        kind,
        value: v.to_string(),
        via: via.into(),
    })
}

/// Reads the lineage of a checkpoint from its metadata (and the configs beside `path`).
pub fn record(path: &Path, metadata: &[(String, String)]) -> Record {
    let get = |k: &str| {
        metadata
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut r = Record {
        name: get("modelspec.title")
            .map(str::to_string)
            .unwrap_or(file_name),
        version: get("version")
            .or(get("modelspec.version"))
            .map(str::to_string),
        created: get("created")
            .or(get("modelspec.date"))
            .map(str::to_string)
            .or_else(|| {
                get("ss_training_started_at").and_then(parse_u64).map(|s| {
                    crate::timefmt::rfc3339_utc(
                        std::time::UNIX_EPOCH + std::time::Duration::from_secs(s),
                    )
                })
            })
            .or(get("ckptscope.converted_at").map(str::to_string)),
        step: get("step")
            .or(get("global_step"))
            .or(get("ss_steps"))
            .and_then(parse_u64),
        epoch: get("epoch").or(get("ss_epoch")).and_then(parse_u64),
        uuid: get("uuid").map(str::to_string),
        architecture: get("modelspec.architecture").map(str::to_string),
        ..Record::default()
    };
    for key in ["modelspec.hash_sha256", "sshs_model_hash", "hash_sha256"] {
        if let Some(h) = get(key).and_then(norm_hash) {
            r.own_hashes.push(h);
        }
    }
    let add = |r: &mut Record, p: Option<ParentRef>| {
        if let Some(p) = p
            && !r
                .parents
                .iter()
                .any(|q| q.kind == p.kind && q.value == p.value)
        {
            r.parents.push(p);
        }
    };
    // ckptscope's own keys and the documented general ones.
    add(
        &mut r,
        get("ckptscope.source").and_then(|v| reference(v, "ckptscope.source")),
    );
    add(
        &mut r,
        get("ckptscope.source_sha256").and_then(|v| reference(v, "ckptscope.source_sha256")),
    );
    add(&mut r, get("parent").and_then(|v| reference(v, "parent")));
    add(
        &mut r,
        get("parent_sha256").and_then(|v| reference(v, "parent_sha256")),
    );
    // ModelSpec: merged_from is a comma-separated list of names or hashes.
    if let Some(list) = get("modelspec.merged_from") {
        for part in list.split(',') {
            add(&mut r, reference(part, "modelspec.merged_from"));
        }
    }
    // kohya sd-scripts.
    add(
        &mut r,
        get("ss_sd_model_name").and_then(|v| reference(v, "ss_sd_model_name")),
    );
    add(
        &mut r,
        get("ss_new_sd_model_hash").and_then(|v| reference(v, "ss_new_sd_model_hash")),
    );
    if let Some(h) = get("ss_sd_model_hash")
        .and_then(norm_hash)
        .filter(|h| h.len() < 64)
    {
        add(
            &mut r,
            Some(ParentRef {
                kind: RefKind::ShortHash,
                value: h,
                via: "ss_sd_model_hash".into(),
            }),
        );
    }
    // Hugging Face base_model: a string or a JSON list.
    if let Some(v) = get("base_model") {
        match serde_json::from_str::<Vec<String>>(v) {
            Ok(list) => list
                .iter()
                .for_each(|b| add(&mut r, reference(b, "base_model"))),
            Err(_) => add(&mut r, reference(v, "base_model")),
        }
    }
    // anemoi-style uuids, at the top level or inside JSON-valued metadata.
    if let Some(p) = get("parent_uuid") {
        add(
            &mut r,
            Some(ParentRef {
                kind: RefKind::Uuid,
                value: p.to_string(),
                via: "parent_uuid".into(),
            }),
        );
    }
    for (key, value) in metadata {
        if !value.trim_start().starts_with('{') {
            continue;
        }
        let Ok(json) = serde_json::from_str::<serde_json::Value>(value) else {
            continue;
        };
        if let Some(u) = find_key(&json, "uuid", 0) {
            r.uuid.get_or_insert(u);
        }
        if let Some(p) = find_key(&json, "parent_uuid", 0) {
            add(
                &mut r,
                Some(ParentRef {
                    kind: RefKind::Uuid,
                    value: p,
                    via: format!("{key}.parent_uuid"),
                }),
            );
        }
    }
    // PEFT / transformers configs beside the file.
    if let Some(folder) = path.parent() {
        for (file, key) in [
            ("adapter_config.json", "base_model_name_or_path"),
            ("config.json", "_name_or_path"),
        ] {
            let Ok(text) = std::fs::read_to_string(folder.join(file)) else {
                continue;
            };
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            if let Some(v) = json.get(key).and_then(|v| v.as_str()) {
                add(&mut r, reference(v, &format!("{file}:{key}")));
            }
        }
    }
    r
}

fn find_key(v: &serde_json::Value, key: &str, depth: usize) -> Option<String> {
    if depth > 8 {
        return None;
    }
    match v {
        serde_json::Value::Object(map) => map
            .get(key)
            .and_then(|x| x.as_str().map(str::to_string))
            .or_else(|| map.values().find_map(|x| find_key(x, key, depth + 1))),
        _ => None,
    }
}

/// Reads the lineage record of one file (headers only; pickles through the safe engine).
pub fn read_record(path: &Path) -> Result<(Record, Format), Error> {
    let ckpt = crate::format::open(path)?;
    let pairs = ckpt.metadata_pairs();
    Ok((record(path, &pairs), ckpt.format))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn conventions_are_normalised() {
        let r = record(
            Path::new("/x/lora.safetensors"),
            &pairs(&[
                ("modelspec.title", "My LoRA"),
                ("modelspec.date", "2025-03-01"),
                (
                    "modelspec.hash_sha256",
                    "0xABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
                ),
                (
                    "modelspec.merged_from",
                    "base-a.safetensors, base-b.safetensors",
                ),
                ("ss_sd_model_name", "v1-5-pruned.ckpt"),
                ("ss_sd_model_hash", "e1441589"),
                ("ss_steps", "1500"),
                ("ss_epoch", "3"),
                (
                    "config",
                    r#"{"run": {"uuid": "u-2", "parent_uuid": "u-1"}}"#,
                ),
            ]),
        );
        assert_eq!(r.name, "My LoRA");
        assert_eq!(r.created.as_deref(), Some("2025-03-01"));
        assert_eq!((r.step, r.epoch), (Some(1500), Some(3)));
        assert_eq!(r.uuid.as_deref(), Some("u-2"));
        assert_eq!(
            r.own_hashes,
            ["abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"]
        );
        let kinds: Vec<(RefKind, &str)> = r
            .parents
            .iter()
            .map(|p| (p.kind, p.value.as_str()))
            .collect();
        assert!(kinds.contains(&(RefKind::Name, "base-a.safetensors")));
        assert!(kinds.contains(&(RefKind::Name, "base-b.safetensors")));
        assert!(kinds.contains(&(RefKind::Name, "v1-5-pruned.ckpt")));
        assert!(kinds.contains(&(RefKind::ShortHash, "e1441589")));
        assert!(kinds.contains(&(RefKind::Uuid, "u-1")));
    }

    #[test]
    fn references_are_classified() {
        assert_eq!(
            reference("meta-llama/Llama-3-8B", "k").unwrap().kind,
            RefKind::HfRepo
        );
        assert_eq!(
            reference("../base/model.safetensors", "k").unwrap().kind,
            RefKind::Path
        );
        assert_eq!(reference("model.pt", "k").unwrap().kind, RefKind::Name);
        assert_eq!(
            reference(&"a".repeat(64), "k").unwrap().kind,
            RefKind::Sha256
        );
        assert!(reference("None", "k").is_none());
    }
}
