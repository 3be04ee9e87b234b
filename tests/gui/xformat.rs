//! Cross-format compare in the real app: a Hugging Face Llama checkpoint against its Q4_0 GGUF
//! conversion is paired by llama.cpp's names at once, the selected pair shows the quantization
//! error NumPy computed, and the "Names" choice switches to the names as stored and back.
#![cfg(feature = "gui")]

use crate::common;

use common::fixture;
use egui_kittest::SnapshotOptions;
use egui_kittest::kittest::Queryable as _;

#[test]
fn a_gguf_conversion_is_compared_by_llama_cpp_names() {
    let files = vec![
        fixture("xformat/llama_hf.safetensors"),
        fixture("xformat/llama_q4_0.gguf"),
    ];
    let mut h = common::app_harness(files);
    h.run();
    {
        let cmp = h.state().compare.as_ref().expect("compare view");
        let m = cmp
            .diff
            .mapping
            .as_ref()
            .expect("paired by llama.cpp names");
        assert_eq!((m.n_head, m.n_head_kv), (4, 2));
    }
    assert!(
        h.query_all_by_label_contains("paired by llama.cpp names")
            .count()
            >= 1
    );
    let q = "model.layers.0.self_attn.q_proj.weight → blk.0.attn_q.weight";
    h.get_all_by_label(q)
        .next()
        .expect("the mapped pair")
        .click();
    h.run();
    assert!(
        h.query_all_by_label_contains("permutation over 4 heads undone")
            .count()
            >= 1
    );
    // The measures shown are NumPy's, from gguf.quants.dequantize (tests/gen/xformat.py).
    let text = std::fs::read_to_string(fixture("xformat/xformat.truth.json")).unwrap();
    let truth: serde_json::Value = serde_json::from_str(&text).unwrap();
    let p = truth["files"]["llama_q4_0.gguf"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["gguf"] == "blk.0.attn_q.weight")
        .unwrap();
    let fmt = ckptscope::analysis::decode::format_float;
    for key in ["rel_l2", "max_abs_diff", "cosine"] {
        let shown = fmt(p[key].as_f64().unwrap());
        assert!(
            h.query_all_by_label(&shown).count() >= 1,
            "{key} {shown} shown"
        );
    }
    assert!(h.query_by_label("Histogram of A − B").is_some());
    h.remove_cursor();
    h.run_ok();
    h.snapshot_options(
        "compare_llama",
        &SnapshotOptions::new()
            .threshold(2.0)
            .max_failed_pixels(4000),
    );

    // Names as stored: nothing pairs.
    h.get_by_label("Names").click();
    h.run();
    h.get_by_label("as stored").click();
    h.run();
    {
        let cmp = h.state().compare.as_ref().unwrap();
        assert!(cmp.diff.mapping.is_none());
        assert!(cmp.diff.tensors.iter().all(|t| t.measures.is_none()));
    }
    assert!(
        h.query_all_by_label_contains("is a Llama GGUF file")
            .count()
            >= 1
    );
}

/// A format ckptscope does not read yet (a Keras archive) opened in the window says it was not
/// scanned and is not known to be safe; nothing in the window calls it safe.
#[test]
fn a_format_not_read_yet_is_shown_as_not_scanned_never_safe() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("model.keras");
    let bytes = common::Zip::new()
        .add("config.json", br#"{"class_name": "Lambda"}"#)
        .add("metadata.json", b"{}")
        .add("model.weights.h5", b"\x89HDF\r\n\x1a\n\x00\x00")
        .bytes();
    std::fs::write(&path, bytes).unwrap();
    let mut h = common::app_harness(vec![path]);
    h.run();
    assert!(
        h.query_by_label_contains("not scanned and is not known to be safe")
            .is_some(),
        "the refusal is shown"
    );
    assert!(h.query_by_label_contains("Keras").is_some());
    assert!(h.query_by_label("SAFE").is_none());
    assert!(h.query_by_label_contains("Verdict: safe").is_none());
}
