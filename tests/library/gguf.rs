//! GGUF: the fixtures written by the real `gguf` package (tests/gen/gguf_fixtures.py) read as
//! `gguf.GGUFReader` reads them and decode to exactly the values `gguf.quants.dequantize`
//! gives; every malformed header is a clear error, never a panic, in bounded time and memory.

use crate::common;

use std::time::{Duration, Instant};

use ckptscope::analysis::{self as stats, Control, SliceSpec, View};
use ckptscope::format::gguf::{self, GgufProblem, Value, ValueType};
use ckptscope::{Error, Format, Limits, Problem};
use common::{fixture, run, sha256_hex, write_temp};

// ---- ground truth -----------------------------------------------------------------------------

#[derive(serde::Deserialize)]
struct Truth {
    version: u32,
    alignment: u64,
    metadata: serde_json::Map<String, serde_json::Value>,
    tensors: Vec<TensorTruth>,
}

#[derive(serde::Deserialize)]
struct TensorTruth {
    name: String,
    ggml_type: String,
    shape: Vec<u64>,
    data_offset: u64,
    bytes: u64,
    values: Option<ValuesTruth>,
}

#[derive(serde::Deserialize)]
struct ValuesTruth {
    sha256: String,
    count: u64,
    min: f64,
    max: f64,
    mean: f64,
    std: f64,
    first: Vec<f32>,
}

fn truth(name: &str) -> Truth {
    let text = std::fs::read_to_string(fixture(&format!("gguf/{name}.expected.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1e-3)
}

/// Opens fixture `name` and checks every tensor against the ground truth: names, ggml types,
/// PyTorch-order shapes, offsets, sizes, and the SHA-256 of every decoded value, then the
/// streamed statistics against NumPy's.
fn check_fixture(name: &str) {
    let t = truth(name);
    let path = fixture(&format!("gguf/{name}"));
    let ckpt = ckptscope::open(&path).unwrap();
    assert_eq!(ckpt.format, Format::Gguf);
    let header = gguf::parse(&std::fs::read(&path).unwrap(), &Limits::DEFAULT).unwrap();
    assert_eq!(header.version, t.version);
    assert_eq!(header.alignment, t.alignment);
    assert_eq!(ckpt.tensors.len(), t.tensors.len());
    for (ours, want) in ckpt.tensors.iter().zip(&t.tensors) {
        assert_eq!(ours.name, want.name);
        assert_eq!(ours.type_name(), want.ggml_type, "{}", want.name);
        assert_eq!(ours.shape, want.shape, "{}", want.name);
        assert_eq!(ours.file_offset, want.data_offset, "{}", want.name);
        assert_eq!(ours.byte_len(), want.bytes, "{}", want.name);
        assert_eq!(ours.region_len(), want.bytes, "{}", want.name);
        let Some(values) = &want.values else {
            let err = ckptscope::analysis::source(&ckpt, ours).unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("statistics not supported for {}", want.ggml_type)),
                "{err}"
            );
            continue;
        };
        let src = ckptscope::analysis::source(&ckpt, ours).unwrap();
        let n = ours.elements();
        assert_eq!(n, values.count);
        let decoded: Vec<f32> = (0..n).map(|i| src.value(i).unwrap() as f32).collect();
        let bytes: Vec<u8> = decoded.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(sha256_hex(&bytes), values.sha256, "{} values", want.name);
        assert_eq!(&decoded[..values.first.len()], values.first.as_slice());

        let a = stats::analyze(&src, &View::of(ours), 64, &Control::default()).unwrap();
        assert_eq!(a.stats.count, n);
        // Compared as f32: the JSON holds float32 values, and serde_json's default float
        // parsing is not correctly rounded in the last bit of an f64.
        let as32 = |v: f64| v as f32;
        assert_eq!(
            (as32(a.stats.min), as32(a.stats.max)),
            (as32(values.min), as32(values.max)),
            "{}",
            want.name
        );
        assert!(
            close(a.stats.mean, values.mean),
            "{}: {} vs {}",
            want.name,
            a.stats.mean,
            values.mean
        );
        assert!(
            close(a.stats.std, values.std),
            "{}: {} vs {}",
            want.name,
            a.stats.std,
            values.std
        );
        assert_eq!(a.histogram.counts.iter().sum::<u64>(), n);

        // A slice decodes only what it selects, and the same values: the last row, then a
        // strided column walk.
        if ours.shape.len() == 2 && ours.shape[0] > 1 && ours.shape[1] > 5 {
            let (rows, cols) = (ours.shape[0], ours.shape[1]);
            for spec in ["[-1, :]", "[:, 3]", "[1:, 5::7]"] {
                let view = View::select(ours, &SliceSpec::parse(spec).unwrap()).unwrap();
                let got = stats::analyze(&src, &view, 8, &Control::default()).unwrap();
                let picked: Vec<f64> = (0..view.elements())
                    .map(|k| f64::from(decoded[view.element(k) as usize]))
                    .collect();
                let min = picked.iter().copied().fold(f64::INFINITY, f64::min);
                let max = picked.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                assert_eq!(
                    (got.stats.min, got.stats.max),
                    (min, max),
                    "{} {spec}",
                    want.name
                );
                assert_eq!(got.stats.count, picked.len() as u64);
            }
            let sample = stats::analyze_sample(&src, &View::of(ours), 8, 16).unwrap();
            assert_eq!(sample.sampled, Some(16));
            assert!(rows * cols > 16);
        }
    }
}

#[test]
fn basic_fixture_matches_the_gguf_reader_and_numpy() {
    check_fixture("basic.gguf");
}

#[test]
fn block_types_decode_exactly_as_gguf_quants_dequantize() {
    check_fixture("blocks.gguf");
}

#[test]
fn version_2_reads_like_version_3() {
    check_fixture("v2.gguf");
    let ckpt = ckptscope::open(&fixture("gguf/v2.gguf")).unwrap();
    assert!(
        ckpt.issues[0].message.contains("GGUF v2"),
        "{:?}",
        ckpt.issues
    );
}

fn json_value(v: &Value) -> serde_json::Value {
    match v {
        Value::Uint(_, x) => (*x).into(),
        Value::Int(_, x) => (*x).into(),
        Value::Float(_, x) => (*x).into(),
        Value::Bool(b) => (*b).into(),
        Value::Str(s) => s.clone().into(),
        Value::Array { first, .. } => first.iter().map(json_value).collect(),
    }
}

#[test]
fn metadata_of_every_value_type_and_nested_arrays() {
    let t = truth("basic.gguf");
    let bytes = std::fs::read(fixture("gguf/basic.gguf")).unwrap();
    let header = gguf::parse(&bytes, &Limits::DEFAULT).unwrap();
    let keys: Vec<&str> = header.metadata.iter().map(|(k, _)| k.as_str()).collect();
    let mut want: Vec<&str> = t.metadata.keys().map(String::as_str).collect();
    want.sort();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(sorted, want);
    for (key, value) in &header.metadata {
        let truth = &t.metadata[key];
        let kind = truth["type"].as_str().unwrap();
        match value {
            Value::Array { item, len, first } => {
                assert_eq!(kind, "ARRAY", "{key}");
                assert_eq!(item.name(), truth["item"].as_str().unwrap(), "{key}");
                assert_eq!(*len, truth["len"].as_u64().unwrap(), "{key}");
                let got: Vec<serde_json::Value> = first.iter().map(json_value).collect();
                assert_eq!(serde_json::Value::from(got), truth["first"], "{key}");
            }
            Value::Uint(t, _) | Value::Int(t, _) | Value::Float(t, _) => {
                assert_eq!(t.name(), kind, "{key}");
                assert_eq!(json_value(value), truth["value"], "{key}");
            }
            Value::Bool(_) => assert_eq!(kind, "BOOL"),
            Value::Str(_) => {
                assert_eq!(kind, "STRING", "{key}");
                assert_eq!(json_value(value), truth["value"], "{key}");
            }
        }
    }
    // The metadata the views show: labels, summaries, the chat template as text.
    let ckpt = ckptscope::open(&fixture("gguf/basic.gguf")).unwrap();
    let shown = |k: &str| ckpt.metadata_value(k).unwrap().to_string();
    assert_eq!(shown("general.file_type"), "7 (mostly Q8_0)");
    assert_eq!(shown("test.nested"), "[[1, 2], [3, 4, 5], [6]]");
    assert!(
        shown("tokenizer.ggml.tokens").starts_with("array of 1000 strings: [\"<unk>\", \"<s>\"")
    );
    assert!(shown("tokenizer.chat_template").contains("{% for message in messages %}"));
    assert_eq!(
        gguf::key_label("tokenizer.chat_template").as_deref(),
        Some("Chat template")
    );
    assert_eq!(header.alignment, 64);
}

// ---- the command line -------------------------------------------------------------------------

#[test]
fn info_json_lists_ggml_types_in_pytorch_order() {
    let path = fixture("gguf/basic.gguf");
    let (code, out, err) = run(&["info", path.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["format"], "gguf");
    let tensors = doc["tensors"].as_array().unwrap();
    let cube = tensors
        .iter()
        .find(|t| t["name"] == "blk.0.cube.weight")
        .unwrap();
    assert_eq!(cube["shape"], serde_json::json!([2, 3, 32]));
    let q = tensors
        .iter()
        .find(|t| t["name"] == "blk.0.attn_q.weight")
        .unwrap();
    assert_eq!(q["dtype"], "Q8_0");
    assert_eq!(doc["metadata"]["general.alignment"], "64");
    let (code, human, _) = run(&["info", path.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(human.contains("GGUF model · 8 tensors"), "{human}");
    assert!(human.contains("Q8_0 ×1"), "{human}");
}

#[test]
fn scan_calls_gguf_data_only_after_checking_it() {
    let path = fixture("gguf/blocks.gguf");
    let (code, out, err) = run(&["scan", path.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc[0]["verdict"], "safe");
    assert_eq!(doc[0]["format"], "gguf");
    let reason = doc[0]["findings"][0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("no pickle: data-only format"),
        "{reason}"
    );
    assert!(reason.contains("13 tensors"), "{reason}");

    // Broken after the magic: not scanned, never "safe".
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(200);
    let (_dir, broken) = write_temp("broken.gguf", &bytes);
    let (code, out, _) = run(&["scan", broken.to_str().unwrap(), "--json"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("\"verdict\":\"error\"") || out.contains("\"verdict\": \"error\""),
        "{out}"
    );
    assert!(out.contains("starts like a GGUF file"), "{out}");
}

#[test]
fn a_chat_template_reaching_python_internals_is_suspicious() {
    let mut g = Builder::new(3);
    g.kv_str(
        "tokenizer.chat_template",
        "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('id').read() }}",
    );
    let (_dir, path) = write_temp("t.gguf", &g.finish());
    let (code, out, _) = run(&["scan", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("SUSPICIOUS"), "{out}");
    assert!(out.contains("CVE-2024-34359"), "{out}");
    let ckpt = ckptscope::open(&path).unwrap();
    assert!(
        ckpt.issues
            .iter()
            .any(|f| f.message.contains("__globals__"))
    );
}

#[test]
fn convert_refuses_gguf_and_names_the_quantized_types() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.safetensors");
    let path = fixture("gguf/basic.gguf");
    let (code, _, err) = run(&[
        "convert",
        path.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("block-quantized tensors of its 8 (Q4_0, Q8_0)")
            && err.contains("--dequantize"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn diff_of_gguf_tensors_goes_through_the_usual_path() {
    let path = fixture("gguf/basic.gguf");
    let (code, _, err) = run(&["diff", path.to_str().unwrap(), path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    // Change one F32 value and one Q8_0 code.
    let t = truth("basic.gguf");
    let mut bytes = std::fs::read(&path).unwrap();
    let f32_at = t.tensors[0].data_offset as usize;
    bytes[f32_at..f32_at + 4].copy_from_slice(&1000f32.to_le_bytes());
    let q_at = t.tensors[6].data_offset as usize + 5;
    bytes[q_at] = bytes[q_at].wrapping_add(1);
    let (_dir, changed) = write_temp("b.gguf", &bytes);
    let (code, out, err) = run(&[
        "diff",
        path.to_str().unwrap(),
        changed.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 1, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let row = |name: &str| {
        doc["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()
            .clone()
    };
    let embd = row("token_embd.weight");
    assert_eq!(embd["status"], "values_changed");
    assert_eq!(embd["differing"], 1);
    let q = row("blk.0.attn_q.weight");
    assert_eq!(q["dtype_a"], "Q8_0");
    assert_eq!(q["status"], "values_changed");
    assert_eq!(q["differing"], 1);
    assert_eq!(row("blk.0.ffn_up.weight")["status"], "identical");
}

// ---- hostile headers --------------------------------------------------------------------------

/// A GGUF file written field by field.
struct Builder {
    version: u32,
    kvs: Vec<u8>,
    n_kv: u64,
    tensors: Vec<u8>,
    n_tensors: u64,
    data: Vec<u8>,
    alignment: usize,
}

impl Builder {
    fn new(version: u32) -> Self {
        Builder {
            version,
            kvs: Vec::new(),
            n_kv: 0,
            tensors: Vec::new(),
            n_tensors: 0,
            data: Vec::new(),
            alignment: 32,
        }
    }

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }

    fn kv_raw(&mut self, key: &str, type_id: u32, value: &[u8]) -> &mut Self {
        Self::string(&mut self.kvs, key);
        self.kvs.extend_from_slice(&type_id.to_le_bytes());
        self.kvs.extend_from_slice(value);
        self.n_kv += 1;
        self
    }

    fn kv_str(&mut self, key: &str, value: &str) -> &mut Self {
        let mut v = Vec::new();
        Self::string(&mut v, value);
        self.kv_raw(key, 8, &v)
    }

    fn tensor(&mut self, name: &str, ne: &[u64], type_id: u32, offset: u64) -> &mut Self {
        Self::string(&mut self.tensors, name);
        self.tensors
            .extend_from_slice(&(ne.len() as u32).to_le_bytes());
        for d in ne {
            self.tensors.extend_from_slice(&d.to_le_bytes());
        }
        self.tensors.extend_from_slice(&type_id.to_le_bytes());
        self.tensors.extend_from_slice(&offset.to_le_bytes());
        self.n_tensors += 1;
        self
    }

    fn finish(&self) -> Vec<u8> {
        self.finish_with_counts(self.n_tensors, self.n_kv)
    }

    fn finish_with_counts(&self, n_tensors: u64, n_kv: u64) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&self.version.to_le_bytes());
        b.extend_from_slice(&n_tensors.to_le_bytes());
        b.extend_from_slice(&n_kv.to_le_bytes());
        b.extend_from_slice(&self.kvs);
        b.extend_from_slice(&self.tensors);
        b.resize(b.len().next_multiple_of(self.alignment), 0);
        b.extend_from_slice(&self.data);
        b
    }
}

fn problem_of(bytes: &[u8]) -> GgufProblem {
    problem_with(bytes, &Limits::DEFAULT)
}

fn problem_with(bytes: &[u8], limits: &Limits) -> GgufProblem {
    let direct = gguf::parse(bytes, limits).expect_err("should be rejected");
    let (_dir, path) = write_temp("t.gguf", bytes);
    let err = ckptscope::format::open_with_limits(&path, limits).expect_err("should be rejected");
    let message = err.to_string();
    assert!(message.contains("not a valid GGUF file"), "{message}");
    assert!(message.contains("t.gguf"), "{message}");
    match err {
        Error::Invalid {
            problem: Problem::Gguf(p),
            ..
        } => assert_eq!(p, direct),
        other => panic!("{other}"),
    }
    direct
}

fn four_f32(b: &mut Builder) {
    b.tensor("w", &[4], 0, 0);
    b.data = [1f32, 2.0, 3.0, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
}

#[test]
fn every_truncation_is_a_clear_error() {
    for name in ["v2.gguf", "basic.gguf", "blocks.gguf"] {
        let bytes = std::fs::read(fixture(&format!("gguf/{name}"))).unwrap();
        // The writer pads after the last tensor: cuts into that padding are valid files.
        let end = truth(name)
            .tensors
            .iter()
            .map(|t| t.data_offset + t.bytes)
            .max()
            .unwrap() as usize;
        let step = if end > 1000 { 7 } else { 1 };
        let mut n = 0;
        while n < end {
            match gguf::parse(&bytes[..n], &Limits::DEFAULT) {
                Err(
                    GgufProblem::NotGguf
                    | GgufProblem::Truncated { .. }
                    | GgufProblem::CountPastEnd { .. }
                    | GgufProblem::OutOfFile { .. },
                ) => {}
                other => panic!("{name} cut at {n}: {other:?}"),
            }
            n += step;
        }
    }
}

#[test]
fn versions_other_than_2_and_3_are_named() {
    for (version, words) in [
        (1, "version 1"),
        (4, "version 4"),
        (0x0300_0000, "big-endian"),
        (0, "version 0"),
    ] {
        let mut b = Builder::new(version);
        four_f32(&mut b);
        let p = problem_of(&b.finish());
        assert_eq!(p, GgufProblem::Version { version });
        assert!(p.to_string().contains(words), "{p}");
    }
}

#[test]
fn absurd_counts_fail_before_allocating() {
    let b = Builder::new(3);
    for (tensors, kvs) in [(u64::MAX, 0), (0, u64::MAX), (1 << 40, 0), (0, 999)] {
        let p = problem_of(&b.finish_with_counts(tensors, kvs));
        assert!(
            matches!(
                p,
                GgufProblem::OverLimit { .. } | GgufProblem::CountPastEnd { .. }
            ),
            "{p:?}"
        );
    }
    let p = problem_of(&b.finish_with_counts(u64::MAX, 0));
    assert!(p.to_string().contains("--limit gguf-tensors=N"), "{p}");
    // Under the limit but more than the file can hold.
    let mut limits = Limits::DEFAULT;
    limits.max_gguf_kvs = u64::MAX;
    let p = problem_with(&b.finish_with_counts(0, 1 << 50), &limits);
    assert!(matches!(p, GgufProblem::CountPastEnd { .. }), "{p:?}");
}

#[test]
fn strings_past_the_end_and_over_the_limit() {
    let mut b = Builder::new(3);
    // A value string declaring 1000 bytes with 3 present.
    let mut v = 1000u64.to_le_bytes().to_vec();
    v.extend_from_slice(b"abc");
    b.kv_raw("k", 8, &v);
    let p = problem_of(&b.finish());
    assert!(
        matches!(&p, GgufProblem::Truncated { what, need: 1000, .. } if what.contains("`k`")),
        "{p:?}"
    );
    // A key of u64::MAX bytes.
    let mut b = Builder::new(3);
    b.kvs.extend_from_slice(&u64::MAX.to_le_bytes());
    b.kvs.extend_from_slice(&[0; 16]);
    b.n_kv = 1;
    let p = problem_of(&b.finish());
    assert!(
        matches!(
            p,
            GgufProblem::OverLimit {
                name: "gguf-string",
                ..
            }
        ),
        "{p:?}"
    );
    // A tensor name past the end.
    let mut b = Builder::new(3);
    b.tensors.extend_from_slice(&500u64.to_le_bytes());
    b.tensors.extend_from_slice(&[b'x'; 30]);
    b.n_tensors = 1;
    let p = problem_of(&b.finish());
    assert!(
        matches!(&p, GgufProblem::Truncated { what, .. } if what.contains("name of tensor 0")),
        "{p:?}"
    );
}

#[test]
fn huge_and_deep_arrays_are_bounded() {
    // An array of arrays declaring 2^40 items.
    let mut b = Builder::new(3);
    let mut v = 9u32.to_le_bytes().to_vec();
    v.extend_from_slice(&(1u64 << 40).to_le_bytes());
    b.kv_raw("nested", 9, &v);
    let p = problem_of(&b.finish());
    assert!(
        matches!(
            p,
            GgufProblem::OverLimit {
                name: "gguf-array",
                ..
            }
        ),
        "{p:?}"
    );
    // A million inner arrays declared in a few bytes.
    let mut b = Builder::new(3);
    let mut v = 9u32.to_le_bytes().to_vec();
    v.extend_from_slice(&1_000_000u64.to_le_bytes());
    v.extend_from_slice(&[0; 40]);
    b.kv_raw("nested", 9, &v);
    let p = problem_of(&b.finish());
    assert!(matches!(p, GgufProblem::CountPastEnd { .. }), "{p:?}");
    // Arrays nested 100 deep.
    let mut b = Builder::new(3);
    let mut v = Vec::new();
    for _ in 0..100 {
        v.extend_from_slice(&9u32.to_le_bytes());
        v.extend_from_slice(&1u64.to_le_bytes());
    }
    v.extend_from_slice(&0u32.to_le_bytes());
    b.kv_raw("deep", 9, &v);
    let p = problem_of(&b.finish());
    assert_eq!(p, GgufProblem::TooDeep { key: "deep".into() });
    // An inner array of an unknown type.
    let mut b = Builder::new(3);
    let mut v = 77u32.to_le_bytes().to_vec();
    v.extend_from_slice(&1u64.to_le_bytes());
    b.kv_raw("bad", 9, &v);
    assert!(matches!(
        problem_of(&b.finish()),
        GgufProblem::UnknownValueType { id: 77, .. }
    ));
}

#[test]
fn a_large_string_array_costs_one_pass_and_is_summarised() {
    // 2 million short strings (26 MB): walked once, kept as 8.
    let mut b = Builder::new(3);
    let n = 2_000_000u64;
    let mut v = 8u32.to_le_bytes().to_vec();
    v.extend_from_slice(&n.to_le_bytes());
    for i in 0..n {
        let s = format!("t{}", i % 100_000);
        v.extend_from_slice(&(s.len() as u64).to_le_bytes());
        v.extend_from_slice(s.as_bytes());
    }
    b.kv_raw("tokenizer.ggml.tokens", 9, &v);
    // And a 64 MiB UINT8 array, skipped without a pass.
    let mut u = 0u32.to_le_bytes().to_vec();
    u.extend_from_slice(&(64u64 << 20).to_le_bytes());
    u.resize(u.len() + (64 << 20), 7);
    b.kv_raw("blob", 9, &u);
    let bytes = b.finish();
    let started = Instant::now();
    let h = gguf::parse(&bytes, &Limits::DEFAULT).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    match &h.metadata[0].1 {
        Value::Array { item, len, first } => {
            assert_eq!((*item, *len, first.len()), (ValueType::String, n, 8));
        }
        other => panic!("{other:?}"),
    }
    let mut limits = Limits::DEFAULT;
    limits.max_gguf_array = 1000;
    assert!(matches!(
        gguf::parse(&bytes, &limits),
        Err(GgufProblem::OverLimit {
            name: "gguf-array",
            ..
        })
    ));
}

#[test]
fn tensor_layout_problems_are_named() {
    // Overlap.
    let mut b = Builder::new(3);
    b.tensor("a", &[16], 0, 0).tensor("b", &[16], 0, 32);
    b.data = vec![0; 128];
    assert_eq!(
        problem_of(&b.finish()),
        GgufProblem::Overlap {
            name: "b".into(),
            begin: 32,
            other: "a".into(),
            other_end: 64
        }
    );
    // Misaligned.
    let mut b = Builder::new(3);
    b.tensor("a", &[4], 0, 8);
    b.data = vec![0; 64];
    assert!(matches!(
        problem_of(&b.finish()),
        GgufProblem::Misaligned {
            offset: 8,
            alignment: 32,
            ..
        }
    ));
    // Out of the file, and an offset that overflows.
    for offset in [64, u64::MAX - 31] {
        let mut b = Builder::new(3);
        b.tensor("a", &[16], 0, offset);
        b.data = vec![0; 64];
        let p = problem_of(&b.finish());
        assert!(matches!(p, GgufProblem::OutOfFile { .. }), "{p:?}");
        assert!(p.to_string().contains("past the end"), "{p}");
    }
    // Unknown type id (4 was Q4_2, removed from ggml).
    let mut b = Builder::new(3);
    b.tensor("a", &[32], 4, 0);
    assert_eq!(
        problem_of(&b.finish()),
        GgufProblem::UnknownType {
            name: "a".into(),
            id: 4
        }
    );
    // Five dimensions.
    let mut b = Builder::new(3);
    b.tensor("a", &[1, 1, 1, 1, 1], 0, 0);
    assert_eq!(
        problem_of(&b.finish()),
        GgufProblem::TooManyDims {
            name: "a".into(),
            dims: 5
        }
    );
    // A Q4_K row of 100 values.
    let mut b = Builder::new(3);
    b.tensor("a", &[100, 2], 12, 0);
    assert!(matches!(
        problem_of(&b.finish()),
        GgufProblem::PartialBlock {
            row: 100,
            block: 256,
            ..
        }
    ));
    // A shape whose size overflows.
    let mut b = Builder::new(3);
    b.tensor("a", &[1 << 32, 1 << 32, 1 << 8], 0, 0);
    assert!(matches!(
        problem_of(&b.finish()),
        GgufProblem::ShapeOverflow { .. }
    ));
    // Duplicates.
    let mut b = Builder::new(3);
    b.tensor("a", &[8], 0, 0).tensor("a", &[8], 0, 32);
    b.data = vec![0; 64];
    assert_eq!(
        problem_of(&b.finish()),
        GgufProblem::DuplicateTensor { name: "a".into() }
    );
    let mut b = Builder::new(3);
    b.kv_str("k", "1").kv_str("k", "2");
    assert_eq!(
        problem_of(&b.finish()),
        GgufProblem::DuplicateKey { key: "k".into() }
    );
}

#[test]
fn bad_alignments_and_value_types() {
    for value in [
        (4u32, 0u32.to_le_bytes().to_vec()),
        (4, 48u32.to_le_bytes().to_vec()),
        (10, 32u64.to_le_bytes().to_vec()),
    ] {
        let mut b = Builder::new(3);
        b.kv_raw("general.alignment", value.0, &value.1);
        assert!(matches!(
            problem_of(&b.finish()),
            GgufProblem::BadAlignment { .. }
        ));
    }
    let mut b = Builder::new(3);
    b.kv_raw("k", 13, &[0; 8]);
    assert!(matches!(
        problem_of(&b.finish()),
        GgufProblem::UnknownValueType { id: 13, .. }
    ));
}

#[test]
fn gaps_open_with_a_note_that_llama_cpp_would_refuse_them() {
    let mut b = Builder::new(3);
    b.tensor("a", &[8], 0, 64).tensor("b", &[8], 0, 0);
    b.data = vec![0; 96];
    let (_dir, path) = write_temp("t.gguf", &b.finish());
    let ckpt = ckptscope::open(&path).unwrap();
    assert!(
        ckpt.issues
            .iter()
            .any(|f| f.message.contains("llama.cpp expects 0")),
        "{:?}",
        ckpt.issues
    );
    assert_eq!(ckpt.tensors[0].data_offsets, [64, 96]);
}

#[test]
fn mutated_fixtures_never_panic_and_stay_bounded() {
    let original = std::fs::read(fixture("gguf/blocks.gguf")).unwrap();
    let header_len = 768;
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    let started = Instant::now();
    let mut opened = 0;
    for _ in 0..400 {
        let mut bytes = original.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % header_len) as usize;
            bytes[at] = match next() % 4 {
                0 => 0xff,
                1 => 0,
                2 => bytes[at].wrapping_add(1),
                _ => next() as u8,
            };
        }
        std::fs::write(&path, &bytes).unwrap();
        let Ok(ckpt) = ckptscope::open(&path) else {
            continue;
        };
        opened += 1;
        for t in &ckpt.tensors {
            if let Ok(src) = ckptscope::analysis::source(&ckpt, t) {
                let view = View::of(t);
                let _ = stats::analyze_sample(&src, &view, 16, 64);
                let _ = stats::analyze(&src, &view, 16, &Control::default());
            }
        }
    }
    assert!(opened > 0);
    assert!(started.elapsed() < Duration::from_secs(60));
}
