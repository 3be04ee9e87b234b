//! `convert` of every format the readers give tensors for: ONNX (inline, typed fields, external
//! data, sub-graphs), NumPy (`.npy`, stored and deflated `.npz`, big-endian, Fortran order) and
//! GGUF (plain tensors exactly, block-quantized ones only with `--dequantize`). Every output
//! tensor's bytes are checked against the fixtures' ground truth (SHA-256 of the packed C-order
//! little-endian bytes, written by the reference libraries).

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ckptscope::DType;
use ckptscope::convert::{ConvertError, ConvertOptions, convert};
use ckptscope::progress::Progress;
use common::{file_truth, fixture, run, sha256_hex};

/// Copies fixtures (relative to tests/fixtures) into a temporary folder, keeping their names.
fn copy_to_temp(names: &[&str]) -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let paths = names
        .iter()
        .map(|n| {
            let to = dir.path().join(Path::new(n).file_name().unwrap());
            std::fs::copy(fixture(n), &to).unwrap();
            to
        })
        .collect();
    (dir, paths)
}

fn convert_with(
    input: &Path,
    options: ConvertOptions,
) -> Result<ckptscope::convert::ConvertReport, ConvertError> {
    convert(
        input,
        &ConvertOptions {
            cache: ckptscope::hash::CacheDir::Off,
            ..options
        },
        &Progress::default(),
    )
}

/// Every tensor of the safetensors file `out`: name → (dtype, shape, bytes).
fn tensors_of(out: &Path) -> BTreeMap<String, (DType, Vec<u64>, Vec<u8>)> {
    let ckpt = ckptscope::open(out).unwrap();
    assert_eq!(ckpt.format, ckptscope::Format::Safetensors);
    ckpt.tensors
        .iter()
        .map(|t| {
            let bytes = ckpt.tensor_bytes(t).unwrap().to_vec();
            (t.name.clone(), (t.dtype, t.shape.clone(), bytes))
        })
        .collect()
}

fn metadata_of(out: &Path) -> BTreeMap<String, String> {
    ckptscope::open(out).unwrap().metadata.into_iter().collect()
}

/// The output of `name` holds every tensor of its truth, bytes for bytes, and its metadata.
fn assert_converts_exactly(name: &str, options: ConvertOptions) {
    let truth = file_truth(name);
    let (_dir, paths) = copy_to_temp(&[name]);
    let input = &paths[0];
    let report = convert_with(input, options).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(report.verified);
    let out = tensors_of(&report.output);
    assert_eq!(
        out.keys().collect::<Vec<_>>(),
        truth.tensors.keys().collect::<Vec<_>>(),
        "{name}: names"
    );
    for (tname, want) in &truth.tensors {
        let (dtype, shape, bytes) = &out[tname];
        assert_eq!(dtype.name(), want.dtype, "{name}/{tname} dtype");
        assert_eq!(shape, &want.shape, "{name}/{tname} shape");
        assert_eq!(sha256_hex(bytes), want.sha256, "{name}/{tname} bytes");
    }
    let meta = metadata_of(&report.output);
    for (k, v) in &truth.metadata {
        assert_eq!(meta.get(k), Some(v), "{name}: metadata `{k}`");
    }
    assert_eq!(meta["format"], "pt");
    // What could not be read is named, never silently dropped.
    let skipped: BTreeMap<String, String> = truth
        .unsupported
        .is_empty()
        .then(BTreeMap::new)
        .unwrap_or_else(|| serde_json::from_str(&meta["ckptscope.skipped"]).unwrap());
    assert_eq!(
        skipped.keys().collect::<Vec<_>>(),
        truth.unsupported.iter().collect::<Vec<_>>(),
        "{name}: skipped"
    );
}

#[test]
fn onnx_models_convert_exactly_with_their_metadata_props() {
    for name in ["onnx/typed.onnx", "onnx/subgraphs.onnx"] {
        assert_converts_exactly(name, ConvertOptions::default());
    }
}

#[test]
fn onnx_external_data_converts_exactly() {
    let truth = file_truth("onnx/external.onnx");
    let (_dir, paths) = copy_to_temp(&["onnx/external.onnx", "onnx/external.data"]);
    let report = convert_with(&paths[0], ConvertOptions::default()).unwrap();
    let out = tensors_of(&report.output);
    assert_eq!(out.len(), truth.tensors.len());
    for (tname, want) in &truth.tensors {
        assert_eq!(sha256_hex(&out[tname].2), want.sha256, "{tname}");
    }
}

#[test]
fn an_onnx_model_with_unreadable_initializers_needs_skip_unreadable() {
    let (dir, paths) = copy_to_temp(&["onnx/raw.onnx"]);
    let err = convert_with(&paths[0], ConvertOptions::default()).unwrap_err();
    assert!(matches!(err, ConvertError::Unreadable { .. }), "{err}");
    assert!(err.to_string().contains("nibbles"), "{err}");
    assert_eq!(common::file_names(dir.path()), ["raw.onnx"]);
    assert_converts_exactly(
        "onnx/raw.onnx",
        ConvertOptions {
            skip_unreadable: true,
            ..Default::default()
        },
    );
}

#[test]
fn numpy_arrays_convert_exactly() {
    for name in [
        "numpy/dtype_le_f4.npy",
        "numpy/dtype_be_f4.npy",
        "numpy/dtype_be_i8.npy",
        "numpy/dtype_le_f2.npy",
        "numpy/dtype_b1.npy",
        "numpy/dtype_le_c8.npy",
        "numpy/fortran_2d.npy",
        "numpy/fortran_3d.npy",
        "numpy/fortran_be.npy",
        "numpy/scalar.npy",
        "numpy/version_2.npy",
        "numpy/version_3.npy",
        "numpy/stored.npz",
        "numpy/deflated.npz",
    ] {
        assert_converts_exactly(name, ConvertOptions::default());
    }
}

/// GGUF ground truth: per tensor, the SHA-256 of its values decoded to `f32` (little-endian).
fn gguf_truth(name: &str) -> Vec<(String, String, Vec<u64>, Option<String>)> {
    let text = std::fs::read_to_string(fixture(&format!("{name}.expected.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["ggml_type"].as_str().unwrap().to_string(),
                t["shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_u64().unwrap())
                    .collect(),
                t["values"]["sha256"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// The values of an output tensor as `f32` little-endian bytes.
fn as_f32_bytes(dtype: DType, bytes: &[u8]) -> Vec<u8> {
    let values: Vec<f32> = match dtype {
        DType::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        DType::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes(c.try_into().unwrap()).to_f32())
            .collect(),
        DType::BF16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes(c.try_into().unwrap()).to_f32())
            .collect(),
        DType::I32 => bytes
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect(),
        other => panic!("unexpected dtype {other}"),
    };
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn gguf_plain_tensors_convert_exactly_and_quantized_ones_need_dequantize() {
    let (dir, paths) = copy_to_temp(&["gguf/basic.gguf"]);
    let input = &paths[0];
    let err = convert_with(input, ConvertOptions::default()).unwrap_err();
    assert!(
        matches!(err, ConvertError::Quantized { quantized: 2, .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("Q4_0") && text.contains("Q8_0"), "{text}");
    assert!(
        !text.contains("--dequantize"),
        "the CLI adds the flag: {text}"
    );
    assert!(
        ckptscope::output::convert::error_text(&err).contains("--dequantize"),
        "{err}"
    );
    assert_eq!(common::file_names(dir.path()), ["basic.gguf"]);

    for (dtype, name) in [
        (DType::F32, "f32"),
        (DType::F16, "f16"),
        (DType::BF16, "bf16"),
    ] {
        let report = convert_with(
            input,
            ConvertOptions {
                dequantize: Some(dtype),
                force: true,
                ..Default::default()
            },
        )
        .unwrap();
        let source = ckptscope::open(input).unwrap();
        let out = tensors_of(&report.output);
        let meta = metadata_of(&report.output);
        assert_eq!(meta["ckptscope.dequantized"], name);
        assert_eq!(meta["general.architecture"], "llama");
        let types: BTreeMap<String, String> =
            serde_json::from_str(&meta["ckptscope.ggml_types"]).unwrap();
        for (tname, ggml, shape, sha) in gguf_truth("gguf/basic.gguf") {
            let (odtype, oshape, bytes) = &out[&tname];
            assert_eq!(oshape, &shape, "{tname}");
            assert_eq!(types[&tname], ggml, "{tname}");
            let t = source.require(&tname).unwrap();
            if t.quant.is_none() {
                // Plain tensors: the file's own bytes, whatever --dequantize says.
                assert_eq!(*odtype, t.dtype, "{tname}");
                assert_eq!(bytes, source.tensor_bytes(t).unwrap(), "{tname}");
                assert_eq!(
                    sha256_hex(&as_f32_bytes(*odtype, bytes)),
                    sha.unwrap(),
                    "{tname}"
                );
            } else if dtype == DType::F32 {
                assert_eq!(*odtype, DType::F32);
                // Decoded exactly as `gguf.quants.dequantize` decodes them.
                assert_eq!(sha256_hex(bytes), sha.unwrap(), "{tname}");
            } else {
                assert_eq!(*odtype, dtype);
                assert_eq!(bytes.len() as u64, t.elements() * 2);
            }
        }
    }
}

#[test]
fn gguf_f16_dequantization_rounds_the_f32_values() {
    let (_dir, paths) = copy_to_temp(&["gguf/basic.gguf"]);
    let f32_out = convert_with(
        &paths[0],
        ConvertOptions {
            dequantize: Some(DType::F32),
            output: Some(paths[0].with_extension("f32.safetensors")),
            ..Default::default()
        },
    )
    .unwrap();
    let f16_out = convert_with(
        &paths[0],
        ConvertOptions {
            dequantize: Some(DType::F16),
            output: Some(paths[0].with_extension("f16.safetensors")),
            ..Default::default()
        },
    )
    .unwrap();
    let a = tensors_of(&f32_out.output);
    let b = tensors_of(&f16_out.output);
    let (_, _, wide) = &a["blk.0.attn_k.weight"];
    let (_, _, narrow) = &b["blk.0.attn_k.weight"];
    let rounded: Vec<u8> = wide
        .chunks_exact(4)
        .flat_map(|c| half::f16::from_f32(f32::from_le_bytes(c.try_into().unwrap())).to_le_bytes())
        .collect();
    assert_eq!(narrow, &rounded);
}

#[test]
fn undecoded_gguf_block_types_are_named_and_skipped_only_on_request() {
    let (_dir, paths) = copy_to_temp(&["gguf/blocks.gguf"]);
    let dequantize = ConvertOptions {
        dequantize: Some(DType::F32),
        ..Default::default()
    };
    let err = convert_with(&paths[0], dequantize.clone()).unwrap_err();
    assert!(matches!(err, ConvertError::Unreadable { .. }), "{err}");
    assert!(err.to_string().contains("iq2_xxs.weight"), "{err}");
    let report = convert_with(
        &paths[0],
        ConvertOptions {
            skip_unreadable: true,
            ..dequantize
        },
    )
    .unwrap();
    assert_eq!(report.skipped.len(), 1);
    let out = tensors_of(&report.output);
    for (tname, _, _, sha) in gguf_truth("gguf/blocks.gguf") {
        match sha {
            Some(sha) => assert_eq!(sha256_hex(&out[&tname].2), sha, "{tname}"),
            None => assert!(!out.contains_key(&tname), "{tname}"),
        }
    }
}

#[test]
fn the_cli_converts_onnx_numpy_and_gguf() {
    let (dir, paths) = copy_to_temp(&["onnx/typed.onnx", "numpy/stored.npz", "gguf/basic.gguf"]);
    for input in &paths[..2] {
        let (code, out, err) = run(&["convert", "--json", input.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["verified"], true);
    }
    let gguf = paths[2].to_str().unwrap();
    let (code, _, err) = run(&["convert", gguf]);
    assert_eq!(code, 2);
    assert!(
        err.contains("block-quantized") && err.contains("--dequantize"),
        "{err}"
    );
    let (code, out, err) = run(&["convert", "--json", "--dequantize", "bf16", gguf]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["tensors"], 8);
    let (code, _, err) = run(&["convert", "--dequantize", "q4", gguf]);
    assert_eq!(code, 2, "{err}");
    let mut names = common::file_names(dir.path());
    names.sort();
    assert_eq!(
        names,
        [
            "basic.gguf",
            "basic.safetensors",
            "stored.npz",
            "stored.safetensors",
            "typed.onnx",
            "typed.safetensors"
        ]
    );
}
