//! Lineage: parents read from every convention, linked by name, path, hash and uuid; the
//! header rewrite of set-parent keeps the tensor bytes and content id.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use ckptscope::lineage::{self, LineageOptions};
use ckptscope::progress::Progress;
use common::{fixture, safetensors_bytes};

/// A one-tensor safetensors file with `metadata` (JSON object text).
fn st(dir: &Path, name: &str, metadata: &str, value: f32) -> PathBuf {
    let header = format!(
        r#"{{"__metadata__":{metadata},"w":{{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}}}"#
    );
    let path = dir.join(name);
    std::fs::write(&path, safetensors_bytes(&header, &value.to_le_bytes())).unwrap();
    path
}

fn family(path: &Path, hash: bool) -> lineage::Graph {
    lineage::family(
        path,
        &LineageOptions {
            extra: Vec::new(),
            hash,
            cache: ckptscope::hash::CacheDir::Off,
        },
        &Progress::default(),
    )
    .unwrap()
}

fn edge(g: &lineage::Graph, child: &str, parent: &str) -> Option<String> {
    let name = |i: usize| {
        g.nodes[i]
            .path
            .as_ref()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .unwrap_or_else(|| g.nodes[i].name.clone())
    };
    g.edges
        .iter()
        .find(|e| name(e.child) == child && name(e.parent) == parent)
        .map(|e| e.via.clone())
}

/// Runs the binary with a private hash cache.
fn cli(cache: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .args(args)
        .env("CKPTSCOPE_CACHE_DIR", cache)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn v2_names_v1_as_its_parent() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["st_lineage_v1.safetensors", "st_lineage_v2.safetensors"] {
        std::fs::copy(fixture(f), dir.path().join(f)).unwrap();
    }
    let g = family(&dir.path().join("st_lineage_v2.safetensors"), false);
    assert_eq!(
        edge(&g, "st_lineage_v2.safetensors", "st_lineage_v1.safetensors").as_deref(),
        Some("parent (name)")
    );
    let v2 = g
        .nodes
        .iter()
        .find(|n| n.name == "st_lineage_v2.safetensors")
        .unwrap();
    assert_eq!(
        (v2.version.as_deref(), v2.step, v2.created.as_deref()),
        (Some("2.0"), Some(2000), Some("2026-02-10"))
    );
    assert_eq!(g.timelines.len(), 1, "v1 then v2 form a timeline");
}

#[test]
fn parents_by_relative_path_and_by_uuid_link_and_unknown_ones_dangle() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("run");
    std::fs::create_dir(&sub).unwrap();
    st(
        dir.path(),
        "base.safetensors",
        r#"{"uuid":"1b4e28ba-2fa1-11d2-883f-0016d3cca427"}"#,
        1.0,
    );
    st(
        &sub,
        "a.safetensors",
        r#"{"parent":"../base.safetensors"}"#,
        2.0,
    );
    st(
        &sub,
        "b.safetensors",
        r#"{"parent":"./a.safetensors"}"#,
        3.0,
    );
    st(
        &sub,
        "c.safetensors",
        r#"{"parent_uuid":"1b4e28ba-2fa1-11d2-883f-0016d3cca427"}"#,
        4.0,
    );
    st(
        &sub,
        "d.safetensors",
        r#"{"parent":"gone.safetensors"}"#,
        5.0,
    );
    let g = lineage::family(
        &sub,
        &LineageOptions {
            extra: vec![dir.path().join("base.safetensors")],
            hash: false,
            cache: ckptscope::hash::CacheDir::Off,
        },
        &Progress::default(),
    )
    .unwrap();
    assert_eq!(
        edge(&g, "a.safetensors", "base.safetensors").as_deref(),
        Some("parent (path)")
    );
    assert_eq!(
        edge(&g, "b.safetensors", "a.safetensors").as_deref(),
        Some("parent (path)")
    );
    assert!(edge(&g, "c.safetensors", "base.safetensors").is_some());
    assert_eq!(
        edge(&g, "d.safetensors", "gone.safetensors").as_deref(),
        Some("parent (name)"),
        "an unknown parent is a dangling node named as referred to"
    );
    assert_eq!(g.edges.len(), 4);
}

#[test]
fn a_converted_file_links_back_to_its_pickle_by_hash() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let input = dir.path().join("torch_zip_basic.pt");
    std::fs::copy(fixture("torch_zip_basic.pt"), &input).unwrap();
    let (code, _, err) = cli(cache.path(), &["convert", input.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    // The converter remembered the source's hash: name and hash both match, no rehashing.
    let (_, out, _) = cli(
        cache.path(),
        &["lineage", "--json", dir.path().to_str().unwrap()],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let via = v["edges"][0]["via"].as_str().unwrap();
    assert!(
        via.contains("ckptscope.source (name)") && via.contains("ckptscope.source_sha256 (sha256)"),
        "{via}"
    );
    // Renamed, the pickle is found by its content alone.
    std::fs::rename(&input, dir.path().join("renamed.pt")).unwrap();
    let (_, out, _) = cli(
        cache.path(),
        &["lineage", "--hash", "--json", dir.path().to_str().unwrap()],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let edges = v["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1, "{out}");
    assert!(edges[0]["parent"].as_str().unwrap().ends_with("renamed.pt"));
    assert_eq!(edges[0]["via"], "ckptscope.source_sha256 (sha256)");
    for node in v["nodes"].as_array().unwrap() {
        assert!(node["path"].is_string(), "no dangling node: {node}");
    }
}

#[test]
fn modelspec_kohya_and_uuid_conventions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let h = "ab".repeat(32);
    st(
        d,
        "base.safetensors",
        &format!(
            r#"{{"modelspec.title":"Base model","modelspec.hash_sha256":"0x{h}","modelspec.date":"2025-01-01"}}"#
        ),
        1.0,
    );
    st(
        d,
        "merge.safetensors",
        r#"{"modelspec.title":"Merge","modelspec.merged_from":"Base model, other.safetensors"}"#,
        2.0,
    );
    st(
        d,
        "lora.safetensors",
        &format!(
            r#"{{"ss_sd_model_name":"something-else.ckpt","ss_new_sd_model_hash":"{h}","ss_steps":"1500","ss_training_started_at":"1700000000"}}"#
        ),
        3.0,
    );
    st(
        d,
        "run-a.safetensors",
        r#"{"config":"{\"run\": {\"uuid\": \"u-1\"}}"}"#,
        4.0,
    );
    st(
        d,
        "run-b.safetensors",
        r#"{"config":"{\"run\": {\"uuid\": \"u-2\", \"parent_uuid\": \"u-1\"}}"}"#,
        5.0,
    );
    let g = family(d, false);
    assert_eq!(
        edge(&g, "merge.safetensors", "base.safetensors").as_deref(),
        Some("modelspec.merged_from (name)")
    );
    assert_eq!(
        edge(&g, "merge.safetensors", "other.safetensors").as_deref(),
        Some("modelspec.merged_from (name)"),
        "dangling"
    );
    assert_eq!(
        edge(&g, "lora.safetensors", "base.safetensors").as_deref(),
        Some("ss_new_sd_model_hash (sha256)")
    );
    assert_eq!(
        edge(&g, "run-b.safetensors", "run-a.safetensors").as_deref(),
        Some("config.parent_uuid (uuid)")
    );
    let lora = g
        .nodes
        .iter()
        .find(|n| n.name == "lora.safetensors")
        .unwrap();
    assert_eq!(lora.step, Some(1500));
    assert_eq!(lora.created.as_deref(), Some("2023-11-14T22:13:20Z"));
    let other = g
        .nodes
        .iter()
        .find(|n| n.name == "other.safetensors")
        .unwrap();
    assert!(other.path.is_none() && other.unresolved.is_some());
}

#[test]
fn peft_adapter_config_names_the_base_model() {
    let dir = tempfile::tempdir().unwrap();
    st(dir.path(), "adapter_model.safetensors", "{}", 1.0);
    std::fs::write(
        dir.path().join("adapter_config.json"),
        r#"{"base_model_name_or_path": "meta-llama/Llama-3.1-8B", "r": 8}"#,
    )
    .unwrap();
    let g = family(&dir.path().join("adapter_model.safetensors"), false);
    let base = g
        .nodes
        .iter()
        .find(|n| n.name == "meta-llama/Llama-3.1-8B")
        .expect("hub parent");
    assert_eq!(
        base.unresolved.as_ref().unwrap().kind,
        lineage::RefKind::HfRepo
    );
}

#[test]
fn checkpoints_of_one_run_form_a_timeline_by_step() {
    let dir = tempfile::tempdir().unwrap();
    for step in [2000, 500, 1000] {
        st(
            dir.path(),
            &format!("checkpoint-{step}.safetensors"),
            "{}",
            step as f32,
        );
    }
    let g = family(dir.path(), false);
    let names: Vec<String> = g.timelines[0]
        .iter()
        .map(|&i| g.nodes[i].name.clone())
        .collect();
    assert_eq!(
        names,
        [
            "checkpoint-500.safetensors",
            "checkpoint-1000.safetensors",
            "checkpoint-2000.safetensors"
        ]
    );
}

#[test]
fn set_parent_rewrites_only_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let parent = dir.path().join("st_lineage_v1.safetensors");
    std::fs::copy(fixture("st_lineage_v1.safetensors"), &parent).unwrap();
    let child = dir.path().join("child.safetensors");
    std::fs::copy(fixture("st_basic.safetensors"), &child).unwrap();
    let before = ckptscope::open(&child).unwrap();
    let id_before = ckptscope::hash::content_id(&before, &Progress::default()).unwrap();
    let data_before: Vec<Vec<u8>> = before
        .tensors
        .iter()
        .map(|t| before.tensor_bytes(t).unwrap().to_vec())
        .collect();
    let old_meta = before.metadata.clone();
    drop(before);

    let (code, out, err) = cli(
        cache.path(),
        &[
            "set-parent",
            child.to_str().unwrap(),
            parent.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("tensor data unchanged"), "{out}");
    let after = ckptscope::open(&child).unwrap();
    assert_eq!(
        ckptscope::hash::content_id(&after, &Progress::default()).unwrap(),
        id_before
    );
    let data_after: Vec<Vec<u8>> = after
        .tensors
        .iter()
        .map(|t| after.tensor_bytes(t).unwrap().to_vec())
        .collect();
    assert_eq!(data_after, data_before);
    assert_eq!(
        after.metadata_value("parent"),
        Some("st_lineage_v1.safetensors")
    );
    let sha = common::sha256_hex(&std::fs::read(&parent).unwrap());
    assert_eq!(after.metadata_value("parent_sha256"), Some(sha.as_str()));
    for (k, v) in &old_meta {
        assert_eq!(after.metadata_value(k), Some(v.as_str()), "{k} kept");
    }
    // Lineage now links the child to the parent by name and by hash.
    let (_, out, _) = cli(cache.path(), &["lineage", child.to_str().unwrap()]);
    assert!(
        out.contains("parent (name), parent_sha256 (sha256)"),
        "{out}"
    );
    // Not for pickles.
    let (code, _, err) = cli(
        cache.path(),
        &[
            "set-parent",
            fixture("torch_zip_basic.pt").to_str().unwrap(),
            parent.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("safetensors"), "{err}");
}
