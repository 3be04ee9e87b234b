//! Fail closed on every model file: a file whose name or content claims a format ckptscope does
//! not read is "not scanned" with exit 2, alone, in a folder and in the package view; never
//! skipped, never SAFE. Each test is a regression test for a case measured on main.

use crate::common;

use std::path::Path;

use common::{Zip, run, safetensors_bytes};

fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn safe_safetensors() -> Vec<u8> {
    safetensors_bytes(
        r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
        &[0; 4],
    )
}

/// A SavedModel as TensorFlow writes it: its graph's function reads a file and writes it out
/// (the op names are what matter to a reader; the bytes around them are a protobuf prefix).
fn saved_model(dir: &Path) {
    let mut graph = b"\x08\x01\x12\x80\x01\n\x7e\n\x0csaved_model\x12".to_vec();
    graph.extend_from_slice(b"ReadFile\x00WriteFile\x00/etc/passwd\x00/tmp/out");
    write(dir, "saved_model.pb", &graph);
    let mut index = vec![0u8; 40];
    index.extend_from_slice(&0xdb47_7524_8b80_fb57u64.to_le_bytes());
    write(dir, "variables/variables.index", &index);
    write(dir, "variables/variables.data-00000-of-00001", &[0x3f; 64]);
    write(dir, "fingerprint.pb", b"\x08\x9a\x8c\x01\x10\x02");
}

fn keras_with_lambda() -> Vec<u8> {
    let config = br#"{"module": "keras", "class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda", "config": {"function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAAAAAAAAEAAAADAAAAQwAAAHMMAAAAdABqAWQBgwEBAHwAUwApAk7aAmlk"}}}}]}}"#;
    Zip::new()
        .add("config.json", config)
        .add("metadata.json", br#"{"keras_version": "3.6.0"}"#)
        .add("model.weights.h5", b"\x89HDF\r\n\x1a\n\x00\x00\x00\x00")
        .bytes()
}

#[test]
fn a_corrupt_gguf_in_a_folder_is_not_scanned_and_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "model.gguf", b"GGUX\x03\x00\x00\x00 not a gguf");
    write(tmp.path(), "model.safetensors", &safe_safetensors());
    write(tmp.path(), "README.md", b"# a model\n");
    let (code, out, err) = run(&["scan", tmp.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("model.gguf  not scanned: not a format ckptscope can judge")
            && out.contains("named like a GGUF model (.gguf)"),
        "{out}"
    );
    assert!(
        out.contains("1 other files skipped"),
        "only the README is skipped: {out}"
    );
    let (code, out, _) = run(&["scan", tmp.path().join("model.gguf").to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
}

#[test]
fn a_saved_model_folder_is_one_model_not_scanned() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("export");
    saved_model(&model);
    write(tmp.path(), "model.safetensors", &safe_safetensors());
    let (code, out, err) = run(&["scan", "--json", tmp.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let entries = v.as_array().unwrap();
    // One entry for the SavedModel (its variables belong to it), one for the safetensors file.
    assert_eq!(entries.len(), 2, "{out}");
    let sm = entries
        .iter()
        .find(|e| e["path"].as_str().unwrap().ends_with("export"))
        .expect("the SavedModel folder is reported");
    assert_eq!(sm["verdict"], "error");
    let reason = sm["reason"].as_str().unwrap();
    assert!(
        reason.contains("TensorFlow SavedModel") && reason.contains("not known to be safe"),
        "{reason}"
    );
    let (code, out, _) = run(&["scan", model.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("0 files scanned") && out.contains("1 not scanned"),
        "{out}"
    );
    assert!(!out.contains("skipped"), "{out}");
    // Alone, each of its files is refused too.
    for rel in [
        "saved_model.pb",
        "fingerprint.pb",
        "variables/variables.index",
        "variables/variables.data-00000-of-00001",
    ] {
        let (code, out, _) = run(&["scan", model.join(rel).to_str().unwrap()]);
        assert_eq!(code, 2, "{rel}: {out}");
        assert!(out.contains("not scanned: a TensorFlow"), "{rel}: {out}");
    }
}

#[test]
fn the_package_view_judges_a_saved_model_as_one_and_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    saved_model(tmp.path());
    let (code, out, err) = run(&["info", "--json", tmp.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["totals"]["not_scanned"], 1, "{out}");
    assert_eq!(v["totals"]["safe"], 0, "{out}");
    assert_ne!(v["verdict"], "safe", "{out}");
    let (code, out, _) = run(&["info", tmp.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        out.contains("INCOMPLETE") && out.contains("NOT SCANNED"),
        "{out}"
    );
}

#[test]
fn a_keras_archive_with_a_lambda_layer_is_not_safe() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("model.keras");
    std::fs::write(&path, keras_with_lambda()).unwrap();
    let (code, out, _) = run(&["scan", path.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("not scanned: a Keras 3 model"), "{out}");
    assert!(!out.contains("SAFE"), "{out}");
    // Renamed, it is still recognised by its members.
    let renamed = tmp.path().join("model.zip");
    std::fs::copy(&path, &renamed).unwrap();
    let (code, out, _) = run(&["scan", renamed.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("Keras"), "{out}");
    // `info` refuses it the same way.
    let (code, _, err) = run(&["info", path.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("not known to be safe"), "{err}");
    // In a folder it is not skipped.
    write(tmp.path(), "notes.txt", b"hello");
    let (code, out, _) = run(&["scan", tmp.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("2 not scanned"), "{out}");
}

#[test]
fn a_zip_holding_a_member_ckptscope_does_not_read_is_not_scanned() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = Zip::new()
        .add("README.md", b"weights inside")
        .add("weights/model.h5", b"\x89HDF\r\n\x1a\n\x00\x00\x00\x00")
        .bytes();
    let path = tmp.path().join("bundle.zip");
    std::fs::write(&path, bytes).unwrap();
    let (code, out, _) = run(&["scan", path.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("member `weights/model.h5`"), "{out}");
    // Plain data and a safetensors file are judged: safe.
    let bytes = Zip::new()
        .add("README.md", b"weights inside")
        .add("config.json", b"{}")
        .add("model.safetensors", &safe_safetensors())
        .bytes();
    std::fs::write(&path, bytes).unwrap();
    let (code, out, _) = run(&["scan", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("SAFE"), "{out}");
}

#[test]
fn formats_not_read_are_refused_by_content_and_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let mut tflite = b"\x1c\x00\x00\x00TFL3".to_vec();
    tflite.extend_from_slice(&[0; 16]);
    let mut h5_user_block = vec![0u8; 512];
    h5_user_block.extend_from_slice(b"\x89HDF\r\n\x1a\n\x00\x00");
    let cases: [(&str, Vec<u8>, &str); 10] = [
        ("weights.bin", h5_user_block, "HDF5"),
        ("model.tflite", tflite, "TensorFlow Lite"),
        ("table.dat", b"ARROW1\x00\x00rest".to_vec(), "Arrow"),
        ("old.dat", b"FEA1rest".to_vec(), "Arrow"),
        (
            "archive.dat",
            b"7z\xbc\xaf\x27\x1c\x00\x04".to_vec(),
            "7-Zip",
        ),
        ("flax_model.msgpack", b"\x81\xa6params\x80".to_vec(), "Flax"),
        (
            "inference.pdmodel",
            b"\x0a\x05\x0a\x03abc".to_vec(),
            "PaddlePaddle",
        ),
        (
            "model.joblib",
            b"\x78\x9c\x6b\x60\x00\x00".to_vec(),
            "joblib",
        ),
        (
            "data.tar.gz",
            b"\x1f\x8b\x08\x00\x00\x00\x00\x00".to_vec(),
            "compressed tar",
        ),
        ("model.weights.h5", b"not hdf5 at all".to_vec(), "HDF5"),
    ];
    for (name, bytes, label) in &cases {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let (code, out, _) = run(&["scan", path.to_str().unwrap()]);
        assert_eq!(code, 2, "{name}: {out}");
        assert!(
            out.contains(label) && out.contains("not scanned"),
            "{name}: {out}"
        );
        let (code, _, err) = run(&["info", path.to_str().unwrap()]);
        assert_eq!(code, 2, "{name}: {err}");
    }
    // In a folder none is skipped; a compressed log that claims nothing is.
    write(
        tmp.path(),
        "train.log.gz",
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00",
    );
    let (code, out, _) = run(&["scan", "--json", tmp.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), cases.len(), "{out}");
    let (_, out, _) = run(&["scan", tmp.path().to_str().unwrap()]);
    assert!(out.contains("(1 other files skipped)"), "{out}");
}

#[test]
fn a_plain_tar_is_recognised_and_refused() {
    let mut tar = vec![0u8; 2048];
    tar[..9].copy_from_slice(b"notes.txt");
    tar[124..135].copy_from_slice(b"00000000012");
    tar[257..262].copy_from_slice(b"ustar");
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bundle.dat");
    std::fs::write(&path, &tar).unwrap();
    let (code, out, _) = run(&["scan", path.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("not scanned: a tar archive"), "{out}");
}

/// A FIFO named `model.pt` and a dangling `model.safetensors` link claim models that cannot be
/// opened: not scanned (exit 2), in `scan DIR` and in the package view, never only noted.
#[test]
fn special_files_named_like_models_are_not_scanned() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "ok.safetensors", &safe_safetensors());
    let fifo = tmp.path().join("model.pt");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    std::os::unix::fs::symlink(
        tmp.path().join("gone"),
        tmp.path().join("model.safetensors"),
    )
    .unwrap();
    let (code, out, err) = run(&["scan", tmp.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("model.pt  not scanned: named like a model, but a FIFO"),
        "{out}"
    );
    assert!(
        out.contains("model.safetensors  not scanned: named like a model, but a link"),
        "{out}"
    );
    let (code, out, err) = run(&["info", "--json", tmp.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["totals"]["not_scanned"], 2, "{out}");
}

/// A linked folder is not followed (no loops, nothing outside), and the report says so instead
/// of passing over it in silence.
#[test]
fn a_linked_folder_is_reported_not_passed_over() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "model.safetensors", &safe_safetensors());
    write(tmp.path(), "ok.safetensors", &safe_safetensors());
    std::os::unix::fs::symlink(outside.path(), tmp.path().join("linked")).unwrap();
    let (_, out, _) = run(&["scan", tmp.path().to_str().unwrap()]);
    assert!(
        out.contains("linked  (a link to a folder, not followed"),
        "{out}"
    );
}

/// A file name that is not UTF-8 is reported (lossily) instead of failing the JSON report.
#[test]
fn a_file_name_that_is_not_utf8_does_not_break_the_json() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let name = std::ffi::OsStr::from_bytes(b"model-\xff.safetensors");
    std::fs::write(tmp.path().join(name), safe_safetensors()).unwrap();
    let (code, out, err) = run(&["scan", "--json", tmp.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        v[0]["path"]
            .as_str()
            .unwrap()
            .ends_with("model-\u{fffd}.safetensors"),
        "{out}"
    );
    let (code, out, err) = run(&["info", "--json", tmp.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("model-\u{fffd}.safetensors"), "{out}");
}

/// A torch zip that also holds a Keras config, named `.keras`: `keras.saving.load_model` loads
/// it as Keras (Lambda bytecode and all), so the name decides: not scanned, never safe.
#[test]
fn a_torch_keras_polyglot_named_keras_is_not_scanned() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = Zip::new()
        .add("archive/data.pkl", b"\x80\x02}q\x00.")
        .add("config.json", br#"{"class_name": "Lambda"}"#)
        .bytes();
    write(tmp.path(), "model.keras", &bytes);
    let (code, out, err) = run(&["scan", tmp.path().join("model.keras").to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("not scanned: a Keras"), "{out}");
}

/// A `.npy` whose header cannot be read (version 32) was SAFE: now it is not scanned.
#[test]
fn a_npy_with_an_unreadable_header_is_not_scanned() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "a.npy", b"\x93NUMPY junk");
    let (code, out, err) = run(&["scan", tmp.path().join("a.npy").to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("not scanned: starts like a NumPy .npy array, but .npy format version"),
        "{out}"
    );
    // `info` lists what it can, but never calls it safe (it said SAFE while scan did not).
    let (_, out, _) = run(&["info", "--json", tmp.path().join("a.npy").to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["scan"]["verdict"], "suspicious", "{out}");
}

/// A SavedModel folder is one model made of its own parts: a pickle beside it (which
/// transformers would load) is still judged, and its dangerous finding is not hidden behind the
/// SavedModel's "not scanned".
#[test]
fn a_pickle_beside_a_saved_model_is_still_judged() {
    let tmp = tempfile::tempdir().unwrap();
    saved_model(tmp.path());
    std::fs::copy(
        common::fixture("malicious_os_system.pt"),
        tmp.path().join("pytorch_model.bin"),
    )
    .unwrap();
    let (code, out, err) = run(&["scan", tmp.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("DANGEROUS") && out.contains("pytorch_model.bin"),
        "{out}"
    );
    assert!(out.contains("a TensorFlow SavedModel"), "{out}");
    let (code, out, _) = run(&["info", "--json", tmp.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let bin = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "pytorch_model.bin")
        .unwrap();
    assert_eq!(bin["check"]["verdict"], "dangerous", "{bin}");
}

/// A shard index is data, but it says which files a loader reads: a shard named outside the
/// folder is dangerous, a shard that is not there leaves the model unjudged.
#[test]
fn a_shard_index_is_judged_by_the_shards_it_names() {
    let tmp = tempfile::tempdir().unwrap();
    let index = |map: &str| format!(r#"{{"metadata": {{}}, "weight_map": {map}}}"#);
    write(
        tmp.path(),
        "a/pytorch_model.bin.index.json",
        index(r#"{"w": "../../outside/evil.pt"}"#).as_bytes(),
    );
    let (code, out, err) = run(&[
        "scan",
        tmp.path()
            .join("a/pytorch_model.bin.index.json")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.starts_with("DANGEROUS") && out.contains("outside the model's folder"),
        "{out}"
    );
    write(
        tmp.path(),
        "b/model.safetensors.index.json",
        index(r#"{"w": "model-00001-of-00002.safetensors"}"#).as_bytes(),
    );
    let (code, out, _) = run(&[
        "scan",
        tmp.path()
            .join("b/model.safetensors.index.json")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("which is not there"), "{out}");
    write(
        tmp.path(),
        "b/model-00001-of-00002.safetensors",
        &safe_safetensors(),
    );
    let (code, out, _) = run(&["scan", tmp.path().join("b").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
}

/// Model files of other runtimes, known by their names alone, are refused in folders, never
/// skipped (they were passed over as "other files").
#[test]
fn model_files_of_other_runtimes_are_not_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let names = [
        "a.mlmodel",
        "a.pte",
        "a.nemo",
        "a.engine",
        "a.mar",
        "a.llamafile",
        "a.ggml",
        "a.lite",
        "graph.pbtxt",
    ];
    for name in names {
        write(tmp.path(), name, b"\x01\x02 not read");
    }
    write(tmp.path(), "README.md", b"# notes\n");
    let (code, out, err) = run(&["scan", tmp.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    for name in names {
        assert!(
            out.contains(&format!("{name}  not scanned")),
            "{name}: {out}"
        );
    }
    assert!(
        out.contains("9 not scanned (1 other files skipped)"),
        "{out}"
    );
}
