//! Comparing across formats: a Hugging Face Llama checkpoint against its GGUF conversions
//! (`tests/gen/xformat.py`, written with llama.cpp's gguf-py), paired by llama.cpp's names with
//! its Q/K permutation undone, against the quantization errors NumPy computed.

use crate::common;

use ckptscope::analysis::diff::{self, Pair, Status, TensorDiff};
use ckptscope::analysis::namemap::{Mapping, MappingError, Which};
use ckptscope::progress::Progress;
use common::{fixture, run};
use serde_json::Value;

fn open(name: &str) -> ckptscope::Checkpoint {
    ckptscope::open(&fixture(&format!("xformat/{name}"))).unwrap()
}

fn truth() -> Value {
    let text = std::fs::read_to_string(fixture("xformat/xformat.truth.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn pairs_of(file: &str) -> Vec<Value> {
    truth()["files"][file].as_array().unwrap().clone()
}

fn find<'d>(d: &'d diff::Diff, name: &str) -> &'d TensorDiff {
    d.tensors
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no pair for {name}"))
}

fn close(x: f64, y: f64, what: &str) {
    assert!((x - y).abs() <= 1e-6, "{what}: {x} vs truth {y}");
}

#[test]
fn the_llama_mapping_pairs_every_converted_tensor() {
    let (hf, gguf) = (open("llama_hf.safetensors"), open("llama_f32.gguf"));
    let m = Mapping::offered(&hf, &gguf).expect("offered for a Llama GGUF file");
    assert_eq!(
        m,
        Mapping {
            gguf: Which::B,
            n_head: 4,
            n_head_kv: 2
        }
    );
    let mut made = m.pairs(&hf, &gguf);
    made.sort();
    let mut expected: Vec<(String, String)> = pairs_of("llama_f32.gguf")
        .iter()
        .map(|p| {
            (
                p["hf"].as_str().unwrap().to_string(),
                p["gguf"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(made, expected);
    assert_eq!(made.len(), gguf.tensors.len(), "every GGUF tensor paired");

    let d = diff::diff_mapped(&hf, &gguf, Some(&m), &Progress::default());
    let counts = d.counts();
    assert_eq!(counts.get(&Status::OnlyInA), Some(&1));
    assert_eq!(counts.get(&Status::OnlyInB), None);
    let unpaired = truth()["unpaired_hf"][0].as_str().unwrap().to_string();
    assert_eq!(find(&d, &unpaired).status, Status::OnlyInA);
    let q = find(&d, "model.layers.1.self_attn.q_proj.weight");
    assert_eq!(q.name_b.as_deref(), Some("blk.1.attn_q.weight"));
    assert_eq!(q.unpermute.map(|u| (u.side, u.heads)), Some((Which::B, 4)));
    let k = find(&d, "model.layers.1.self_attn.k_proj.weight");
    assert_eq!(k.unpermute.map(|u| u.heads), Some(2));
    assert_eq!(
        find(&d, "model.layers.1.self_attn.v_proj.weight").unpermute,
        None
    );
    assert!(d.renames.is_empty());
}

#[test]
fn f32_conversion_is_identical_after_undoing_the_permutation() {
    let (hf, gguf) = (open("llama_hf.safetensors"), open("llama_f32.gguf"));
    let m = Mapping::llama(&hf, &gguf).unwrap();
    let d = diff::diff_mapped(&hf, &gguf, Some(&m), &Progress::default());
    for p in pairs_of("llama_f32.gguf") {
        let t = find(&d, p["hf"].as_str().unwrap());
        assert_eq!(t.status, Status::Identical, "{}", t.name);
        assert_eq!(p["max_abs_diff"].as_f64(), Some(0.0));
    }
    // The permutation matters: undone over the wrong number of heads, Q and K differ.
    let wrong = Mapping {
        n_head: 1,
        n_head_kv: 1,
        ..m.clone()
    };
    let d = diff::diff_mapped(&hf, &gguf, Some(&wrong), &Progress::default());
    for n in [
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.self_attn.k_proj.weight",
    ] {
        let t = find(&d, n);
        assert_eq!(t.status, Status::ValuesChanged, "{n}");
        assert!(t.measures.as_ref().unwrap().max_abs_diff > 0.01, "{n}");
    }
    assert_eq!(
        find(&d, "model.layers.0.self_attn.v_proj.weight").status,
        Status::Identical
    );
}

#[test]
fn quantization_errors_equal_numpy_from_gguf_dequantize() {
    let hf = open("llama_hf.safetensors");
    for file in ["llama_q8_0.gguf", "llama_q4_0.gguf"] {
        let gguf = open(file);
        let m = Mapping::offered(&hf, &gguf).unwrap();
        let d = diff::diff_mapped(&hf, &gguf, Some(&m), &Progress::default());
        for p in pairs_of(file) {
            let name = p["hf"].as_str().unwrap();
            let t = find(&d, name);
            let what = format!("{file} {name}");
            assert_eq!(t.name_b.as_deref(), p["gguf"].as_str(), "{what}");
            assert_eq!(t.type_b, p["ggml_type"].as_str(), "{what}");
            if p["ggml_type"] == "F32" {
                assert_eq!(t.status, Status::Identical, "{what}");
                continue;
            }
            assert_eq!(t.status, Status::DtypeChanged, "{what}");
            let ms = t.measures.as_ref().unwrap();
            close(ms.max_abs_diff, p["max_abs_diff"].as_f64().unwrap(), &what);
            close(
                ms.mean_abs_diff,
                p["mean_abs_diff"].as_f64().unwrap(),
                &what,
            );
            close(ms.rel_l2, p["rel_l2"].as_f64().unwrap(), &what);
            close(ms.cosine, p["cosine"].as_f64().unwrap(), &what);
            close(ms.min_diff, p["min_diff"].as_f64().unwrap(), &what);
            close(ms.max_diff, p["max_diff"].as_f64().unwrap(), &what);
            assert_eq!(Some(ms.differing), p["differing"].as_u64(), "{what}");
            assert_eq!(Some(ms.count), p["count"].as_u64(), "{what}");
            // The histogram of a − b, over the same range in the same 20 bins.
            let pair = Pair::of(&hf, &gguf, t);
            let h = diff::pair_histogram(&hf, &gguf, &pair, ms, 20, &Progress::default()).unwrap();
            let counts: Vec<u64> = p["histogram"]["counts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_u64().unwrap())
                .collect();
            assert_eq!(h.counts, counts, "{what}");
            close(h.lo, p["histogram"]["lo"].as_f64().unwrap(), &what);
            close(h.hi, p["histogram"]["hi"].as_f64().unwrap(), &what);
        }
    }
}

#[test]
fn gguf_as_a_pairs_the_other_way() {
    let (gguf, hf) = (open("llama_q8_0.gguf"), open("llama_hf.safetensors"));
    let m = Mapping::offered(&gguf, &hf).unwrap();
    assert_eq!(m.gguf, Which::A);
    let d = diff::diff_mapped(&gguf, &hf, Some(&m), &Progress::default());
    for p in pairs_of("llama_q8_0.gguf") {
        let t = find(&d, p["gguf"].as_str().unwrap());
        assert_eq!(t.name_b.as_deref(), p["hf"].as_str());
        let ms = t.measures.as_ref().map(|m| (m.max_abs_diff, m.cosine));
        match ms {
            Some((max, cos)) => {
                close(max, p["max_abs_diff"].as_f64().unwrap(), &t.name);
                close(cos, p["cosine"].as_f64().unwrap(), &t.name);
                // a − b is now GGUF − HF: the range flips.
                let m = t.measures.as_ref().unwrap();
                close(m.min_diff, -p["max_diff"].as_f64().unwrap(), &t.name);
            }
            None => assert_eq!(t.status, Status::Identical, "{}", t.name),
        }
    }
    let q = find(&d, "blk.0.attn_q.weight");
    assert_eq!(q.unpermute.map(|u| u.side), Some(Which::A));
}

#[test]
fn the_mapping_is_refused_where_it_does_not_apply() {
    let hf = open("llama_hf.safetensors");
    let gguf = open("llama_q8_0.gguf");
    assert!(matches!(
        Mapping::llama(&hf, &hf),
        Err(MappingError::Sides(_))
    ));
    assert!(matches!(
        Mapping::llama(&gguf, &gguf),
        Err(MappingError::Sides(_))
    ));
    assert_eq!(Mapping::offered(&hf, &hf), None);
    // A GGUF file of another architecture is not offered the mapping, and asking for it is an
    // error.
    let mut bytes = std::fs::read(fixture("xformat/llama_q8_0.gguf")).unwrap();
    let value = b"general.architecture\x08\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00llama";
    let at = bytes
        .windows(value.len())
        .position(|w| w == value)
        .expect("the architecture entry");
    bytes[at + value.len() - 5..at + value.len()].copy_from_slice(b"gemma");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gemma.gguf");
    std::fs::write(&path, &bytes).unwrap();
    let other = ckptscope::open(&path).unwrap();
    assert_eq!(other.metadata_value("general.architecture"), Some("gemma"));
    assert_eq!(Mapping::offered(&hf, &other), None);
    let err = Mapping::llama(&hf, &other).unwrap_err();
    assert!(matches!(err, MappingError::Architecture { .. }), "{err}");
    assert!(err.to_string().contains("says `gemma`"), "{err}");
}

#[test]
fn a_head_count_that_does_not_split_the_rows_is_an_error_per_pair() {
    let (hf, gguf) = (open("llama_hf.safetensors"), open("llama_q4_0.gguf"));
    let m = Mapping {
        gguf: Which::B,
        n_head: 5,
        n_head_kv: 2,
    };
    let d = diff::diff_mapped(&hf, &gguf, Some(&m), &Progress::default());
    let q = find(&d, "model.layers.0.self_attn.q_proj.weight");
    assert!(q.measures.is_none());
    assert!(
        q.error
            .as_deref()
            .unwrap()
            .contains("do not split into 5 heads"),
        "{:?}",
        q.error
    );
    // The other pairs are still measured.
    assert!(
        find(&d, "model.layers.0.self_attn.k_proj.weight")
            .measures
            .is_some()
    );
}

#[test]
fn a_missing_head_count_is_named() {
    let mut bytes = std::fs::read(fixture("xformat/llama_q8_0.gguf")).unwrap();
    let key = b"llama.attention.head_count\x04\x00\x00\x00";
    let at = bytes
        .windows(key.len())
        .position(|w| w == key)
        .expect("the head count entry");
    bytes[at + "llama.attention.head_c".len()] = b'O';
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no_heads.gguf");
    std::fs::write(&path, &bytes).unwrap();
    let gguf = ckptscope::open(&path).unwrap();
    let hf = open("llama_hf.safetensors");
    let err = Mapping::llama(&hf, &gguf).unwrap_err();
    assert!(
        err.to_string()
            .contains("`llama.attention.head_count` is missing"),
        "{err}"
    );
    assert_eq!(Mapping::offered(&hf, &gguf), None);
    let (code, _, stderr) = run(&[
        "diff",
        fixture("xformat/llama_hf.safetensors").to_str().unwrap(),
        path.to_str().unwrap(),
        "--map",
        "llama",
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("head_count` is missing"), "{stderr}");
}

fn cli_json(args: &[&str]) -> (i32, Value) {
    let (code, stdout, stderr) = run(args);
    assert!(code == 0 || code == 1, "exit {code}: {stderr}");
    (code, serde_json::from_str(&stdout).unwrap())
}

#[test]
fn cli_diff_maps_automatically_and_reports_per_tensor_errors() {
    let hf = fixture("xformat/llama_hf.safetensors");
    let q4 = fixture("xformat/llama_q4_0.gguf");
    let (hf, q4) = (hf.to_str().unwrap(), q4.to_str().unwrap());
    let (code, doc) = cli_json(&["diff", hf, q4, "--json"]);
    assert_eq!(code, 1);
    assert_eq!(doc["mapping"]["gguf"], "B");
    assert_eq!(doc["mapping"]["n_head"], 4);
    assert_eq!(doc["mapping"]["n_head_kv"], 2);
    let tensors = doc["tensors"].as_array().unwrap();
    for p in pairs_of("llama_q4_0.gguf") {
        let t = tensors
            .iter()
            .find(|t| t["name"] == p["hf"])
            .unwrap_or_else(|| panic!("{}", p["hf"]));
        assert_eq!(t["name_b"], p["gguf"]);
        assert_eq!(t["dtype_b"], p["ggml_type"]);
        let what = p["hf"].to_string();
        for key in ["max_abs_diff", "rel_l2", "cosine", "mean_abs_diff"] {
            close(t[key].as_f64().unwrap(), p[key].as_f64().unwrap(), &what);
        }
        match p["heads"].as_u64() {
            Some(n) => assert_eq!(t["unpermuted_heads"].as_u64(), Some(n), "{what}"),
            None => assert!(t.get("unpermuted_heads").is_none(), "{what}"),
        }
    }
    // Without the mapping nothing pairs.
    let (_, doc) = cli_json(&["diff", hf, q4, "--json", "--map", "none"]);
    assert!(doc["mapping"].is_null());
    assert_eq!(doc["summary"]["counts"]["only_in_a"], 22);
    assert_eq!(doc["summary"]["counts"]["only_in_b"], 21);
    // The human report says how the pairs were made.
    let (_, text, _) = run(&["diff", hf, q4]);
    assert!(text.contains("paired by llama.cpp names (B is GGUF; 4 heads, 2 KV heads"));
    assert!(text.contains("model.layers.0.self_attn.q_proj.weight → blk.0.attn_q.weight"));
}

#[test]
fn cli_diff_of_one_mapped_tensor_by_either_name() {
    let hf = fixture("xformat/llama_hf.safetensors");
    let q8 = fixture("xformat/llama_q8_0.gguf");
    let (hf, q8) = (hf.to_str().unwrap(), q8.to_str().unwrap());
    let p = pairs_of("llama_q8_0.gguf")
        .into_iter()
        .find(|p| p["gguf"] == "blk.1.attn_k.weight")
        .unwrap();
    for name in [
        "blk.1.attn_k.weight",
        "model.layers.1.self_attn.k_proj.weight",
    ] {
        let (code, doc) = cli_json(&["diff", hf, q8, "--tensor", name, "--json"]);
        assert_eq!(code, 1);
        let t = &doc["tensor"];
        assert_eq!(t["name"], "model.layers.1.self_attn.k_proj.weight");
        assert_eq!(t["name_b"], "blk.1.attn_k.weight");
        assert_eq!(t["unpermute"]["heads"], 2);
        close(
            t["measures"]["rel_l2"].as_f64().unwrap(),
            p["rel_l2"].as_f64().unwrap(),
            name,
        );
        assert_eq!(
            doc["histogram"]["counts"], p["histogram"]["counts"],
            "{name}"
        );
    }
    let (code, _, stderr) = run(&["diff", hf, q8, "--tensor", "blk.9.attn_k.weight"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no tensor named `blk.9.attn_k.weight`"));
}
