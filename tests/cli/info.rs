//! `ckptscope info`, run as a user runs it: the real binary, its stdout, stderr and exit code.

use crate::common;

use common::{expected, fixture, run};

#[test]
fn json_has_the_documented_shape_and_ground_truth() {
    let path = fixture("st_basic.safetensors");
    let (code, out, err) = run(&["info", "--json", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["format"], "safetensors");
    assert_eq!(v["file_size"], 1424);
    assert_eq!(v["header_size"], 440);
    assert_eq!(
        v["metadata"],
        serde_json::json!({"format": "pt", "note": "tiny mlp"})
    );
    assert!(v.get("shards").is_none() && v.get("findings").is_none());
    let tensors = v["tensors"].as_array().unwrap();
    let truth = expected("st_basic.safetensors");
    assert_eq!(tensors.len(), truth.len());
    for t in tensors {
        let e = &truth[t["name"].as_str().unwrap()];
        assert_eq!(t["dtype"], e.dtype.as_str());
        assert_eq!(t["shape"], serde_json::json!(e.shape));
        let [b, end] = [
            t["data_offsets"][0].as_u64().unwrap(),
            t["data_offsets"][1].as_u64().unwrap(),
        ];
        assert_eq!(t["file_offset"].as_u64().unwrap(), 8 + 440 + b);
        assert!(end >= b);
    }
    assert_eq!(tensors[1]["name"], "0.weight");
    assert_eq!(tensors[1]["data_offsets"], serde_json::json!([64, 576]));
}

#[test]
fn json_of_a_sharded_model_lists_shards() {
    let path = fixture("sharded/model.safetensors.index.json");
    let (code, out, _) = run(&["info", "--json", path.to_str().unwrap()]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["format"], "safetensors_sharded");
    assert_eq!(v["shards"].as_array().unwrap().len(), 2);
    assert_eq!(v["tensors"][5]["shard"], "model-00002-of-00002.safetensors");
    // The folder itself is a package: the index is its model, with every tensor counted.
    let (code, out, _) = run(&["info", "--json", fixture("sharded").to_str().unwrap()]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kind"], "package");
    let index = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "model.safetensors.index.json")
        .unwrap();
    assert_eq!(index["role"], "weights_index");
    assert_eq!(
        index["tensors"],
        ckptscope::open(&path).unwrap().tensors.len()
    );
}

#[test]
fn human_output_has_a_summary_and_an_aligned_table() {
    let path = fixture("st_dtypes.safetensors");
    let (code, out, _) = run(&["info", path.to_str().unwrap()]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[1].starts_with("safetensors · 16 tensors · 229 parameters · 767 B of tensors"),
        "{out}"
    );
    assert!(lines[1].contains("F64 ×1 (120 B)"), "{out}");
    let header = lines.iter().position(|l| l.starts_with("name ")).unwrap();
    let dtype_col = lines[header].find("dtype").unwrap();
    for row in &lines[header + 1..] {
        assert!(
            row.as_bytes()[dtype_col - 1] == b' ' && row.as_bytes()[dtype_col] != b' ',
            "misaligned: {row}"
        );
    }
    assert!(
        out.contains("f8_e4m3  F8_E4M3  [3, 5]  [692, 707]"),
        "{out}"
    );
}

#[test]
fn errors_go_to_stderr_with_exit_code_2() {
    let (code, out, err) = run(&["info", "/definitely/not/here.safetensors"]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.starts_with("error: cannot open") && err.contains("/definitely/not/here.safetensors"),
        "{err}"
    );
}

#[test]
fn a_pickle_is_read_by_the_safe_engine() {
    let (code, out, err) = run(&["info", fixture("torch_legacy_basic.pt").to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("PyTorch legacy checkpoint (pickle)"), "{out}");
    assert!(out.contains("scan: SAFE"), "{out}");
    assert!(out.contains("0.weight") && out.contains("[16, 8]"), "{out}");
}

#[test]
fn pickle_info_json_has_scan_storage_and_values() {
    let (code, out, err) = run(&[
        "info",
        "--json",
        fixture("lightning_like.ckpt").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["format"], "pytorch_zip");
    assert_eq!(v["scan"]["verdict"], "safe");
    assert_eq!(v["scan"]["objects"]["global_step"], 1000);
    let t = &v["tensors"][0];
    assert_eq!(t["name"], "state_dict.model.0.weight");
    assert_eq!(t["storage"], "0");
    assert_eq!(t["stride"], serde_json::json!([8, 1]));
}

#[test]
fn dangerous_pickle_tensors_only_on_request() {
    let path = fixture("malicious_os_system.pt");
    let (code, out, _) = run(&["info", path.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        out.contains("scan: DANGEROUS") && out.contains("posix.system"),
        "{out}"
    );
    assert!(out.contains("--allow-dangerous"), "{out}");
    let (_, out, _) = run(&["info", "--allow-dangerous", path.to_str().unwrap()]);
    assert!(out.lines().any(|l| l.starts_with("w ")), "{out}");
}

#[test]
fn fast_json_writer_matches_serde_byte_for_byte() {
    for name in [
        "st_basic.safetensors",
        "st_dtypes.safetensors",
        "sharded/model.safetensors.index.json",
        "lightning_like.ckpt",
        "torch_views.pt",
        "malicious_os_system.pt",
    ] {
        let ckpt = ckptscope::open(&fixture(name)).unwrap();
        let mut fast = Vec::new();
        ckptscope::output::info::write_json(&mut fast, &ckpt).unwrap();
        let mut reference =
            serde_json::to_vec(&ckptscope::output::info::InfoJson::new(&ckpt)).unwrap();
        reference.push(b'\n');
        assert_eq!(
            String::from_utf8(fast).unwrap(),
            String::from_utf8(reference).unwrap(),
            "{name}"
        );
    }
    // Names that need escaping.
    let (_dir, path) = common::write_temp(
        "esc.safetensors",
        &common::safetensors_bytes(
            r#"{"a\"b\\c\u0001é":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#,
            &[7],
        ),
    );
    let ckpt = ckptscope::open(&path).unwrap();
    let mut fast = Vec::new();
    ckptscope::output::info::write_json(&mut fast, &ckpt).unwrap();
    let mut reference = serde_json::to_vec(&ckptscope::output::info::InfoJson::new(&ckpt)).unwrap();
    reference.push(b'\n');
    assert_eq!(fast, reference);
}
