//! ONNX models: the fixtures written by the real `onnx` library (`tests/gen/onnx_numpy.py`)
//! against what it reads back, and hand-made hostile models (truncated, lengths past the end,
//! absurd dims, external data that leaves the model's folder), each an error or a finding.

use crate::common;

use std::path::Path;

use ckptscope::format::{Format, Severity};
use ckptscope::pickle::policy::{Policy, Risk, Verdict};
use ckptscope::scan::scan_file;
use ckptscope::{Limits, detect::detect};

fn open(path: &Path) -> ckptscope::Checkpoint {
    ckptscope::format::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------- a small protobuf writer

fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

fn ld(field: u64, body: &[u8]) -> Vec<u8> {
    let mut v = varint(field << 3 | 2);
    v.extend(varint(body.len() as u64));
    v.extend_from_slice(body);
    v
}

fn vint(field: u64, value: u64) -> Vec<u8> {
    let mut v = varint(field << 3);
    v.extend(varint(value));
    v
}

/// A `TensorProto`: name, data_type, dims, then `extra` fields.
fn tensor(name: &str, data_type: u64, dims: &[i64], extra: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    for &d in dims {
        t.extend(vint(1, d as u64));
    }
    t.extend(vint(2, data_type));
    t.extend(ld(8, name.as_bytes()));
    t.extend_from_slice(extra);
    t
}

fn external(location: &str, offset: Option<u64>, length: Option<u64>) -> Vec<u8> {
    let entry = |k: &str, v: &str| ld(13, &[ld(1, k.as_bytes()), ld(2, v.as_bytes())].concat());
    let mut out = entry("location", location);
    if let Some(o) = offset {
        out.extend(entry("offset", &o.to_string()));
    }
    if let Some(l) = length {
        out.extend(entry("length", &l.to_string()));
    }
    out.extend(vint(14, 1));
    out
}

/// A `ModelProto` whose graph holds `initializers`.
fn model(initializers: &[Vec<u8>]) -> Vec<u8> {
    let mut graph = ld(2, b"g");
    for t in initializers {
        graph.extend(ld(5, t));
    }
    let mut m = vint(1, 8);
    m.extend(ld(2, b"handmade"));
    m.extend(ld(7, &graph));
    m.extend(ld(8, &vint(2, 17)));
    m
}

fn f32_raw(values: &[f32]) -> Vec<u8> {
    ld(
        9,
        &values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
}

fn finding_with<'a>(
    ckpt: &'a ckptscope::Checkpoint,
    text: &str,
) -> Option<&'a ckptscope::format::ReadIssue> {
    ckpt.issues.iter().find(|f| f.message.contains(text))
}

// ---------------------------------------------------------------- fixtures

#[test]
fn fixtures_match_what_onnx_reads_back() {
    for name in [
        "onnx/raw.onnx",
        "onnx/typed.onnx",
        "onnx/external.onnx",
        "onnx/subgraphs.onnx",
    ] {
        let path = common::fixture(name);
        assert_eq!(
            detect(&std::fs::read(&path).unwrap()),
            Format::Onnx,
            "{name}"
        );
        let ckpt = open(&path);
        assert_eq!(ckpt.format, Format::Onnx);
        assert!(ckpt.pickle.is_none());
        common::assert_arrays_match_truth(name, &ckpt);
        let truth = common::file_truth(name);
        for (k, v) in &truth.metadata {
            assert_eq!(
                ckpt.metadata_value(k),
                Some(v.as_str()),
                "{name}: metadata {k}"
            );
        }
        for u in &truth.unsupported {
            let f = finding_with(&ckpt, &format!("`{u}` not read"))
                .unwrap_or_else(|| panic!("{name}: {u} not reported: {:?}", ckpt.issues));
            assert_eq!(f.severity, Severity::Warning);
        }
        assert_eq!(
            ckpt.issues.len(),
            truth.unsupported.len(),
            "{:?}",
            ckpt.issues
        );
    }
}

#[test]
fn raw_data_and_packed_floats_are_viewed_in_place_and_varints_decoded_on_first_use() {
    let path = common::fixture("onnx/raw.onnx");
    let ckpt = open(&path);
    let file = std::fs::read(&path).unwrap();
    assert_eq!(ckpt.sources.len(), 1, "raw_data needs no other source");
    for t in &ckpt.tensors {
        let bytes = ckpt.tensor_bytes(t).unwrap();
        let r = t.file_range();
        assert_eq!(bytes, &file[r.start as usize..r.end as usize], "{}", t.name);
    }
    let ckpt = open(&common::fixture("onnx/typed.onnx"));
    let w = ckpt.require("w").unwrap();
    assert_eq!(w.source, 0, "a packed float_data is already the tensor");
    let int64 = ckpt.require("t_int64").unwrap();
    let source = &ckpt.sources[int64.source];
    let derived = source.derivation().expect("int64_data is varints");
    assert!(!derived.is_made(), "nothing is decoded at open");
    ckpt.tensor_bytes(int64).unwrap();
    assert!(derived.is_made());
    assert!(source.label().contains("decoded"), "{}", source.label());
    // Hand-written encodings protobuf never writes: unpacked floats and a split packed field.
    let split = ckpt.require("t_split").unwrap();
    let values: Vec<i64> = ckpt
        .tensor_bytes(split)
        .unwrap()
        .chunks(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(values, [1, 2, 3, 300]);
}

#[test]
fn external_data_is_mapped_from_its_file() {
    let ckpt = open(&common::fixture("onnx/external.onnx"));
    let data = common::fixture("onnx/external.data");
    let w = ckpt.require("w").unwrap();
    let source = &ckpt.sources[w.source];
    assert_eq!(source.path, data);
    assert_eq!(
        ckpt.sources.len(),
        2,
        "one model file and one external file"
    );
    assert_eq!(
        ckpt.file_size,
        std::fs::metadata(&data).unwrap().len()
            + std::fs::metadata(common::fixture("onnx/external.onnx"))
                .unwrap()
                .len()
    );
    let json = {
        let mut out = Vec::new();
        ckptscope::output::info::write_json(&mut out, &ckpt).unwrap();
        serde_json::from_slice::<serde_json::Value>(&out).unwrap()
    };
    assert_eq!(json["format"], "onnx");
    assert_eq!(json["tensors"][0]["shard"], "external.data");
}

#[test]
fn scans_say_data_only_and_flag_escaping_external_paths() {
    for name in [
        "onnx/raw.onnx",
        "onnx/typed.onnx",
        "onnx/external.onnx",
        "onnx/subgraphs.onnx",
    ] {
        let r = scan_file(&common::fixture(name), &Policy::default(), &Limits::DEFAULT).unwrap();
        assert_eq!(r.verdict, Verdict::Safe, "{name}");
        assert!(
            r.findings[0]
                .reason
                .starts_with("no pickle: data-only format")
        );
    }
    let bytes = model(&[tensor(
        "stolen",
        2,
        &[16],
        &external("../../etc/passwd", None, None),
    )]);
    let (_d, path) = common::write_temp("evil.onnx", &bytes);
    let r = scan_file(&path, &Policy::default(), &Limits::DEFAULT).unwrap();
    assert_eq!(r.verdict, Verdict::Dangerous, "{:?}", r.findings);
    assert_eq!(r.findings[0].risk, Risk::Dangerous);
    assert!(r.findings[0].reason.contains("escapes the model's folder"));
}

#[test]
fn subgraph_initializers_are_listed_under_their_scope_after_the_main_graph() {
    let ckpt = open(&common::fixture("onnx/subgraphs.onnx"));
    let names: Vec<&str> = ckpt.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "w",
            // Attributes in file order (onnx writes them sorted by name).
            "branch.else_branch.k",
            "branch.then_branch.w",
            "Loop_1.body.step",
            "Loop_1.body.inner.else_branch.deep",
            "Loop_1.body.inner.then_branch.deep",
            "scan.body.scale",
            "scan.body.ids",
            "pick.options.0.table",
            "pick.options.1.table",
        ]
    );
    // The Constant node's value is not a weight.
    assert!(ckpt.tensors.iter().all(|t| !t.name.contains("c_value")));
    assert_eq!(ckpt.metadata_value("onnx.nodes"), Some("5"));
}

/// A `NodeProto` named `name` with an `If` whose `then_branch` is `then`.
fn if_node(name: &str, then: &[u8]) -> Vec<u8> {
    let attribute = [ld(1, b"then_branch"), ld(6, then), vint(20, 5)].concat();
    [ld(3, name.as_bytes()), ld(4, b"If"), ld(5, &attribute)].concat()
}

#[test]
fn subgraphs_nested_past_the_bound_are_counted_not_entered() {
    // 40 Ifs, each branch holding an initializer and the next If.
    let mut graph = ld(5, &tensor("leaf", 1, &[1], &f32_raw(&[1.0])));
    for level in (0..40).rev() {
        graph = [
            ld(1, &if_node(&format!("n{level}"), &graph)),
            ld(5, &tensor("v", 1, &[1], &f32_raw(&[level as f32]))),
        ]
        .concat();
    }
    let bytes = [vint(1, 8), ld(7, &[ld(2, b"g"), graph].concat())].concat();
    let (_d, path) = common::write_temp("deep.onnx", &bytes);
    let ckpt = open(&path);
    let depth = ckptscope::limits::MAX_ONNX_GRAPH_DEPTH;
    // The main graph's `v`, then one `v` per level entered.
    assert_eq!(ckpt.tensors.len(), depth + 1);
    let last = ckpt.tensors.last().unwrap();
    assert_eq!(last.name.matches(".then_branch").count(), depth);
    assert!(
        last.name.starts_with("n0.then_branch.n1.then_branch."),
        "{}",
        last.name
    );
    let f = finding_with(&ckpt, "sub-graphs nested deeper than 16 levels not read").unwrap();
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.message.starts_with("1 sub-graphs"), "{}", f.message);
}

#[test]
fn a_node_that_cannot_be_read_costs_its_subgraphs_not_the_model() {
    let good = ld(
        1,
        &if_node("ok", &ld(5, &tensor("a", 1, &[1], &f32_raw(&[2.0])))),
    );
    // A node whose body is not protobuf (wire type 7 does not exist).
    let bad = ld(1, &[0x0f, 0x01]);
    let w = ld(5, &tensor("w", 1, &[1], &f32_raw(&[3.0])));
    let bytes = [vint(1, 8), ld(7, &[bad, good, w].concat())].concat();
    let (_d, path) = common::write_temp("badnode.onnx", &bytes);
    let ckpt = open(&path);
    let names: Vec<&str> = ckpt.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["w", "ok.then_branch.a"]);
    assert_eq!(ckpt.metadata_value("onnx.nodes"), Some("2"));
    let f = finding_with(&ckpt, "1 nodes could not be read in search of sub-graphs").unwrap();
    assert_eq!(f.severity, Severity::Warning);
}

// ---------------------------------------------------------------- hostile models

#[test]
fn external_paths_outside_the_folder_are_never_opened() {
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("model");
    std::fs::create_dir(&inner).unwrap();
    std::fs::write(dir.path().join("secret.bin"), [7u8; 64]).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.path().join("secret.bin"), inner.join("link.bin")).unwrap();
    let cases: &[(&str, &str)] = &[
        ("../secret.bin", "escapes the model's folder"),
        ("../../etc/passwd", "escapes the model's folder"),
        ("a/../../secret.bin", "escapes the model's folder"),
        ("..\\secret.bin", "escapes the model's folder"),
        ("/etc/passwd", "absolute path"),
        ("C:\\Windows\\win.ini", "absolute path"),
        #[cfg(unix)]
        ("link.bin", "through a symbolic link"),
    ];
    for (location, why) in cases {
        let bytes = model(&[
            tensor("ok", 1, &[2], &f32_raw(&[1.0, 2.0])),
            tensor("stolen", 2, &[16], &external(location, None, Some(16))),
        ]);
        let path = inner.join("m.onnx");
        std::fs::write(&path, &bytes).unwrap();
        let ckpt = open(&path);
        assert_eq!(ckpt.tensors.len(), 1, "{location}");
        assert_eq!(
            ckpt.sources.len(),
            1,
            "{location}: nothing else is a source"
        );
        let f = finding_with(&ckpt, "`stolen` not read").unwrap();
        assert_eq!(f.severity, Severity::Error);
        assert!(f.message.contains(why), "{location}: {}", f.message);
        let r = scan_file(&path, &Policy::default(), &Limits::DEFAULT).unwrap();
        assert_eq!(r.verdict, Verdict::Dangerous, "{location}");
    }
}

#[test]
fn sizes_that_do_not_add_up_are_findings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("w.bin"), [0u8; 32]).unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            tensor("short", 1, &[4], &f32_raw(&[1.0])),
            "raw_data holds 4 bytes but F32 [4] needs 16",
        ),
        (
            tensor("huge", 1, &[1 << 40, 1 << 40], &f32_raw(&[1.0])),
            "overflow",
        ),
        (tensor("negative", 1, &[-3], &[]), "negative"),
        (tensor("nothing", 1, &[3], &[]), "holds no values"),
        (tensor("wrong_field", 1, &[1], &ld(7, &[1])), "field 7"),
        (
            tensor("ext_past_end", 1, &[4], &external("w.bin", Some(24), None)),
            "runs past the end",
        ),
        (
            tensor(
                "ext_offset_overflow",
                1,
                &[4],
                &external("w.bin", Some(u64::MAX - 2), None),
            ),
            "runs past the end",
        ),
        (
            tensor("ext_length", 1, &[4], &external("w.bin", None, Some(8))),
            "length is 8 bytes",
        ),
        (
            tensor("ext_missing", 1, &[4], &external("nope.bin", None, None)),
            "cannot be read",
        ),
        (tensor("too_many_values", 7, &[2], &ld(7, &[1, 2, 3])), ""),
        (tensor("text", 8, &[1], &ld(6, b"x")), "STRING"),
        (tensor("unknown_type", 99, &[1], &[]), "data_type 99"),
        (
            tensor(
                "segment",
                1,
                &[1],
                &[ld(3, &vint(1, 0)), f32_raw(&[1.0])].concat(),
            ),
            "segment",
        ),
    ];
    for (t, why) in &cases {
        let bytes = model(&[t.clone(), tensor("fine", 1, &[1], &f32_raw(&[3.0]))]);
        let path = dir.path().join("m.onnx");
        std::fs::write(&path, &bytes).unwrap();
        let ckpt = open(&path);
        let name = ckpt
            .issues
            .first()
            .map(|f| f.message.clone())
            .unwrap_or_default();
        if why.is_empty() {
            // Too many varints is only found when the values are decoded.
            let t = ckpt.require("too_many_values").unwrap();
            let e = ckpt.tensor_bytes(t).unwrap_err().to_string();
            assert!(e.contains("more than the 2 values"), "{e}");
            continue;
        }
        assert!(name.contains(why), "expected `{why}` in {name:?}");
        assert!(ckpt.tensor("fine").is_some());
    }
}

#[test]
fn truncated_and_damaged_models_are_errors_never_panics() {
    let bytes = std::fs::read(common::fixture("onnx/typed.onnx")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.onnx");
    let mut errors = 0;
    for len in 0..bytes.len() {
        std::fs::write(&path, &bytes[..len]).unwrap();
        match ckptscope::format::open(&path) {
            Ok(ckpt) => {
                for t in &ckpt.tensors {
                    let _ = ckpt.tensor_bytes(t);
                }
            }
            Err(_) => errors += 1,
        }
        let _ = scan_file(&path, &Policy::default(), &Limits::DEFAULT);
    }
    assert!(errors > bytes.len() / 2, "most prefixes cut a length short");
    // A cut model is still recognised, and the error says where.
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_eq!(detect(&bytes[..bytes.len() / 2]), Format::Onnx);
    let e = ckptscope::format::open(&path).unwrap_err().to_string();
    assert!(
        e.contains("protobuf") && e.contains("bytes but only"),
        "{e}"
    );
    let r = scan_file(&path, &Policy::default(), &Limits::DEFAULT)
        .unwrap_err()
        .to_string();
    assert!(r.contains("starts like an ONNX model"), "{r}");
    // Every byte flipped in turn: still bounded and panic-free.
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0xa5;
        std::fs::write(&path, &b).unwrap();
        if let Ok(ckpt) = ckptscope::format::open(&path) {
            for t in &ckpt.tensors {
                let _ = ckpt.tensor_bytes(t);
            }
        }
    }
}

#[test]
fn random_bytes_and_other_formats_are_not_onnx() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2000 {
        let mut b = vec![0u8; 256];
        for x in &mut b {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *x = state as u8;
        }
        b[0] = 0x08;
        assert_ne!(detect(&b), Format::Onnx, "{:02x?}", &b[..16]);
    }
    for name in [
        "st_basic.safetensors",
        "torch_zip_basic.pt",
        "malicious_exec.pkl",
        "numpy/stored.npz",
    ] {
        assert_ne!(
            detect(&std::fs::read(common::fixture(name)).unwrap()),
            Format::Onnx
        );
    }
}

#[test]
fn typed_values_that_would_pass_the_budget_are_refused_when_read() {
    let values: Vec<u8> = (0..1000u64).flat_map(varint).collect();
    let bytes = model(&[tensor("big", 7, &[1000], &ld(7, &values))]);
    let (_d, path) = common::write_temp("m.onnx", &bytes);
    let mut limits = Limits::DEFAULT;
    limits.max_inflated_bytes = 4000;
    let ckpt = ckptscope::format::open_with_limits(&path, &limits).unwrap();
    let e = ckpt.tensor_bytes(&ckpt.tensors[0]).unwrap_err().to_string();
    assert!(e.contains("--limit inflated"), "{e}");
    let ckpt = ckptscope::format::open(&path).unwrap();
    let b = ckpt.tensor_bytes(&ckpt.tensors[0]).unwrap();
    assert_eq!(b.len(), 8000);
}

/// Models over 2 GiB keep their weights in external files (protobuf cannot hold more); offsets
/// are `u64` end to end. A sparse 3 GiB side file costs no disk.
#[test]
fn external_data_past_4_gib_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("big.data");
    let offset = (4u64 << 30) + 4096;
    let f = std::fs::File::create(&data).unwrap();
    if f.set_len(offset + 4096).is_err() {
        return; // a filesystem without sparse files
    }
    drop(f);
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&data).unwrap();
        f.seek(SeekFrom::Start(offset)).unwrap();
        f.write_all(&[1.0f32, -2.0, 3.5, 0.25].map(f32::to_le_bytes).concat())
            .unwrap();
    }
    let bytes = model(&[tensor(
        "far",
        1,
        &[4],
        &external("big.data", Some(offset), Some(16)),
    )]);
    let path = dir.path().join("big.onnx");
    std::fs::write(&path, &bytes).unwrap();
    let ckpt = open(&path);
    let t = ckpt.require("far").unwrap();
    assert_eq!(t.data_offsets, [offset, offset + 16]);
    let b = ckpt.tensor_bytes(t).unwrap();
    assert_eq!(f32::from_le_bytes(b[8..12].try_into().unwrap()), 3.5);
}

fn cli(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn info_and_scan_on_the_command_line() {
    let raw = common::fixture("onnx/raw.onnx");
    let (code, out) = cli(&["info", raw.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ONNX model") && out.contains("raw_float16"),
        "{out}"
    );
    assert!(
        out.contains("`text` not read: STRING tensors hold text"),
        "{out}"
    );
    let (code, out) = cli(&[
        "info",
        "--json",
        common::fixture("onnx/external.onnx").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["format"], "onnx");
    assert_eq!(v["metadata"]["weights"], "external");
    assert_eq!(v["metadata"]["onnx.producer_name"], "ckptscope-tests");
    let (code, out) = cli(&["scan", common::fixture("onnx").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("SAFE").count(), 4, "{out}");
    assert!(out.contains("no pickle: data-only format"), "{out}");
}
