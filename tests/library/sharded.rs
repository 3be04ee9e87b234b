//! Sharded safetensors: one logical checkpoint over every shard, disagreements as findings.

use crate::common;

use std::path::Path;

use ckptscope::format::Severity;
use ckptscope::{Format, open};
use common::{expected, fixture, safetensors_bytes, sha256_hex};

#[test]
fn fixture_opens_from_the_index_and_from_its_folder() {
    for path in [
        fixture("sharded/model.safetensors.index.json"),
        fixture("sharded"),
    ] {
        let c = open(&path).unwrap();
        assert_eq!(c.format, Format::SafetensorsSharded);
        assert_eq!(c.sources.len(), 2);
        assert!(c.issues.is_empty(), "{:?}", c.issues);
        assert_eq!(c.tensors.len(), 6);
        for shard in [
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
        ] {
            for (name, e) in expected(&format!("sharded/{shard}")) {
                let t = c.tensor(&name).unwrap();
                assert!(
                    c.sources[t.source].path.ends_with(shard),
                    "{name} in the wrong shard"
                );
                assert_eq!(t.shape, e.shape);
                assert_eq!(sha256_hex(c.tensor_bytes(t).unwrap()), e.sha256, "{name}");
            }
        }
    }
}

#[test]
fn shards_are_mapped_only_when_their_bytes_are_needed() {
    let c = open(&fixture("sharded/model.safetensors.index.json")).unwrap();
    assert!(c.sources.iter().all(|s| !s.is_mapped()));
    let t = c.tensor("3.weight").unwrap();
    c.tensor_bytes(t).unwrap();
    assert!(!c.sources[0].is_mapped());
    assert!(c.sources[1].is_mapped());
}

fn shard(dir: &Path, name: &str, tensors: &[(&str, usize)]) {
    let mut header = String::from("{");
    let mut offset = 0;
    for (i, (t, n)) in tensors.iter().enumerate() {
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            r#""{t}":{{"dtype":"U8","shape":[{n}],"data_offsets":[{offset},{}]}}"#,
            offset + n
        ));
        offset += n;
    }
    header.push('}');
    std::fs::write(dir.join(name), safetensors_bytes(&header, &vec![1; offset])).unwrap();
}

fn messages(c: &ckptscope::Checkpoint) -> Vec<String> {
    c.issues.iter().map(|f| f.message.clone()).collect()
}

#[test]
fn disagreements_between_index_and_shards_are_findings_not_errors() {
    let dir = tempfile::tempdir().unwrap();
    shard(dir.path(), "a.safetensors", &[("x", 4), ("stray", 2)]);
    shard(dir.path(), "b.safetensors", &[("y", 8)]);
    let index = r#"{"metadata":{"total_size":999},"weight_map":{"x":"a.safetensors","y":"b.safetensors","ghost":"b.safetensors"}}"#;
    let index_path = dir.path().join("model.safetensors.index.json");
    std::fs::write(&index_path, index).unwrap();
    let c = open(&index_path).unwrap();
    assert_eq!(c.tensors.len(), 3);
    let m = messages(&c);
    assert!(
        m.iter().any(|s| s
            .contains("lists tensor `ghost` in `b.safetensors` but that shard does not hold it")),
        "{m:?}"
    );
    assert!(
        m.iter()
            .any(|s| s
                .contains("`stray` is in shard `a.safetensors` but the index does not list it")),
        "{m:?}"
    );
    assert!(
        m.iter()
            .any(|s| s.contains("total_size says 999 bytes but the shards' tensors hold 14 bytes")),
        "{m:?}"
    );
    assert_eq!(c.metadata_value("index.total_size"), Some("999"));
}

#[test]
fn a_missing_or_broken_shard_is_reported_and_the_rest_opens() {
    let dir = tempfile::tempdir().unwrap();
    shard(dir.path(), "a.safetensors", &[("x", 4)]);
    std::fs::write(
        dir.path().join("c.safetensors"),
        b"\x02\x00\x00\x00\x00\x00\x00\x00[]",
    )
    .unwrap();
    let index = r#"{"weight_map":{"x":"a.safetensors","y":"b.safetensors","z":"c.safetensors","evil":"../../etc/passwd"}}"#;
    let index_path = dir.path().join("model.safetensors.index.json");
    std::fs::write(&index_path, index).unwrap();
    let c = open(&index_path).unwrap();
    assert_eq!(c.tensors.len(), 1);
    let m = messages(&c);
    assert!(
        m.iter()
            .any(|s| s.starts_with("shard `b.safetensors` cannot be read: cannot open")),
        "{m:?}"
    );
    assert!(
        m.iter().any(
            |s| s.starts_with("shard `c.safetensors` cannot be read: header is not valid JSON")
        ),
        "{m:?}"
    );
    assert!(
        m.iter()
            .any(|s| s.contains("`../../etc/passwd`, which is not a plain file name")),
        "{m:?}"
    );
    assert!(
        m.iter().any(|s| s.contains(
            "1 tensor(s) the index places in unreadable shard `b.safetensors` are missing"
        )),
        "{m:?}"
    );
    assert!(c.issues.iter().all(|f| f.severity >= Severity::Warning));
}

#[test]
fn an_index_that_is_not_an_index_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let index_path = dir.path().join("model.safetensors.index.json");
    std::fs::write(&index_path, r#"{"weight_map": [1, 2]}"#).unwrap();
    let err = open(&index_path).unwrap_err();
    assert!(err.to_string().starts_with("index file: expected"), "{err}");
}

#[test]
fn a_folder_with_several_checkpoints_asks_which_one() {
    let dir = tempfile::tempdir().unwrap();
    shard(dir.path(), "one.safetensors", &[("x", 1)]);
    shard(dir.path(), "two.safetensors", &[("x", 1)]);
    let err = open(dir.path()).unwrap_err();
    assert!(
        err.to_string()
            .contains("several checkpoints (one.safetensors, two.safetensors)"),
        "{err}"
    );
    std::fs::remove_file(dir.path().join("two.safetensors")).unwrap();
    assert_eq!(open(dir.path()).unwrap().tensors.len(), 1);
}
