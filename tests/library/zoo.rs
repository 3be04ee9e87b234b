//! The idiom zoo (`tests/gen/zoo.py`): files written by real torch in many of the ways real code
//! saves checkpoints, each read by ckptscope exactly as `torch.load` read it back — every
//! tensor's name, dtype, shape, strides, storage offset, device, bytes and storage sharing, and
//! the non-tensor values — and converted bit-exactly.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ckptscope::format::{Layout, gather};
use ckptscope::pickle::policy::Verdict;
use ckptscope::{Checkpoint, TensorEntry};
use common::sha256_hex;
use serde_json::Value;

#[derive(Debug, serde::Deserialize)]
struct Tensor {
    dtype: String,
    shape: Vec<u64>,
    stride: Vec<u64>,
    storage_offset: u64,
    sha256: String,
    device: String,
    shares_storage_with: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct Truth {
    weights_only: bool,
    weights_only_error: Option<String>,
    tensors: BTreeMap<String, Tensor>,
    unsupported: BTreeMap<String, String>,
    values: Value,
}

fn zoo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/zoo")
}

/// The zoo, then the real checkpoints of `tests/fixtures/real` (files from public packages,
/// written by their authors; truth by `tests/gen/real.py`).
fn files() -> Vec<PathBuf> {
    fn list(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let truth = PathBuf::from(format!("{}.expected.json", path.display()));
            if path.is_dir() {
                list(&path, out);
            } else if truth.exists() && path.extension().is_some_and(|e| e != "jit") {
                out.push(path);
            }
        }
    }
    let mut zoo_files = Vec::new();
    list(&zoo(), &mut zoo_files);
    zoo_files.sort();
    assert!(
        zoo_files.len() >= 30,
        "the zoo has {} files",
        zoo_files.len()
    );
    let mut real = Vec::new();
    list(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real"),
        &mut real,
    );
    real.sort();
    assert!(real.len() >= 9, "{} real files", real.len());
    zoo_files.into_iter().chain(real).collect()
}

fn truth(path: &Path) -> Truth {
    let text = std::fs::read_to_string(format!("{}.expected.json", path.display())).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// ckptscope's value tree in the zoo's canonical form: tensors are `<tensor>`, NumPy values
/// (arrays, scalars, dtypes: objects of a `numpy` class) `<numpy>`.
fn canonical(v: &Value) -> Value {
    match v {
        Value::String(s) if s.starts_with("<tensor ") => Value::String("<tensor>".into()),
        Value::Object(map)
            if map
                .get("__class__")
                .and_then(Value::as_str)
                .is_some_and(|c| c.starts_with("numpy.")) =>
        {
            Value::String("<numpy>".into())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), canonical(v))).collect())
        }
        other => other.clone(),
    }
}

fn check_tensors(name: &str, ckpt: &Checkpoint, truth: &Truth) {
    let ours: BTreeMap<&str, &TensorEntry> =
        ckpt.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    assert_eq!(
        ours.keys().copied().collect::<Vec<_>>(),
        truth.tensors.keys().map(String::as_str).collect::<Vec<_>>(),
        "{name}: tensor names"
    );
    for (tname, want) in &truth.tensors {
        let t = ours[tname.as_str()];
        let at = format!("{name}/{tname}");
        assert_eq!(t.dtype.name(), want.dtype, "{at} dtype");
        assert_eq!(t.shape, want.shape, "{at} shape");
        match &t.layout {
            Layout::Strided { offset, strides } => {
                assert_eq!(*strides, want.stride, "{at} stride");
                assert_eq!(*offset, want.storage_offset, "{at} storage offset");
            }
            Layout::Contiguous => panic!("{at}: a pickled tensor has a strided layout"),
        }
        assert_eq!(
            t.device.as_deref(),
            Some(want.device.as_str()),
            "{at} device"
        );
        let region = ckpt.tensor_bytes(t).unwrap();
        let packed = gather::to_vec(t, region).unwrap();
        assert_eq!(sha256_hex(&packed), want.sha256, "{at} bytes");
        match &want.shares_storage_with {
            Some(other) => assert_eq!(t.storage, ours[other.as_str()].storage, "{at} shares"),
            None => {
                // Owners of a storage share it with no earlier tensor.
                for (earlier, e) in &truth.tensors {
                    if earlier == tname {
                        break;
                    }
                    if e.shares_storage_with.is_none() {
                        assert_ne!(
                            t.storage,
                            ours[earlier.as_str()].storage,
                            "{at} / {earlier}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn every_idiom_reads_as_torch_reads_it() {
    let mut failures = Vec::new();
    for path in files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let truth = truth(&path);
        let result = std::panic::catch_unwind(|| {
            let ckpt = ckptscope::open(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            let report = ckpt.pickle.as_ref().expect("a pickle report");
            assert_eq!(
                report.verdict,
                Verdict::Safe,
                "{name}: a benign file is safe: {:#?}",
                report.findings
            );
            // Tensors safetensors cannot hold are named, with why, never lost.
            let mut unsupported: Vec<&str> =
                report.unsupported.iter().map(|u| u.name.as_str()).collect();
            unsupported.sort();
            assert_eq!(
                unsupported,
                truth
                    .unsupported
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
                "{name}: unsupported tensors {:?}",
                report.unsupported
            );
            check_tensors(&name, &ckpt, &truth);
            assert_eq!(
                canonical(&report.objects),
                truth.values,
                "{name}: values (weights_only={})",
                truth.weights_only
            );
        });
        if let Err(e) = result {
            let text = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(text);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of the zoo differ from torch:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

fn convert(path: &Path, all: bool) -> (tempfile::TempDir, ckptscope::convert::ConvertReport) {
    convert_with(path, all, false)
}

fn convert_with(
    path: &Path,
    all: bool,
    skip_unreadable: bool,
) -> (tempfile::TempDir, ckptscope::convert::ConvertReport) {
    let dir = tempfile::tempdir().unwrap();
    let options = ckptscope::convert::ConvertOptions {
        output: Some(dir.path().join("out.safetensors")),
        all,
        skip_unreadable,
        ..Default::default()
    };
    let report = ckptscope::convert::convert(path, &options, &Default::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (dir, report)
}

/// The names a converted file holds: its tensors and the aliases its metadata records.
fn output_names(report: &ckptscope::convert::ConvertReport) -> Vec<String> {
    let out = ckptscope::open(&report.output).unwrap();
    let mut names: Vec<String> = out.tensors.iter().map(|t| t.name.clone()).collect();
    names.extend(report.aliases.iter().map(|(dropped, _)| dropped.clone()));
    names.sort();
    names
}

#[test]
fn every_idiom_converts_bit_exactly() {
    for path in files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let truth = truth(&path);
        if truth.tensors.is_empty() {
            continue;
        }
        let (_dir, report) = convert_with(&path, true, !truth.unsupported.is_empty());
        assert!(report.verified, "{name}");
        let mut skipped: Vec<&str> = report.skipped.iter().map(|u| u.name.as_str()).collect();
        skipped.sort();
        assert_eq!(
            skipped,
            truth
                .unsupported
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            "{name}: what convert skipped"
        );
        let out = ckptscope::open(&report.output).unwrap();
        let aliases: BTreeMap<&str, &str> = report
            .aliases
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        for (tname, want) in &truth.tensors {
            let stored = if tname.is_empty() { "tensor" } else { tname };
            let stored = aliases.get(stored).copied().unwrap_or(stored);
            let t = out
                .tensor(stored)
                .unwrap_or_else(|| panic!("{name}: `{tname}` is not in the output"));
            assert_eq!(t.dtype.name(), want.dtype, "{name}/{tname}");
            assert_eq!(t.shape, want.shape, "{name}/{tname}");
            let bytes = out.tensor_bytes(t).unwrap();
            assert_eq!(sha256_hex(bytes), want.sha256, "{name}/{tname} bytes");
        }
    }
}

fn names(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

const MLP: [&str; 6] = [
    "0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias",
];

#[test]
fn a_flat_hugging_face_state_dict_keeps_every_name() {
    for file in ["hf_flat_tied.pt", "hf_flat_tied_legacy.pt"] {
        let (_dir, report) = convert(&zoo().join(file), false);
        assert_eq!(report.exported, None, "{file}");
        assert!(report.left_out.is_empty(), "{file}: {:?}", report.left_out);
        assert_eq!(
            output_names(&report),
            names(&[
                "lm_head.weight",
                "model.embed_tokens.weight",
                "model.layers.0.input_layernorm.weight",
                "model.layers.0.self_attn.q_proj.weight",
                "model.norm.weight",
            ]),
            "{file}"
        );
        // The tied head is stored once, as the embedding `transformers` ties it back to, and
        // recorded as an alias.
        assert_eq!(
            report.aliases,
            vec![(
                "lm_head.weight".to_string(),
                "model.embed_tokens.weight".to_string()
            )],
            "{file}"
        );
    }
}

#[test]
fn ddp_module_prefixes_stay() {
    let (_dir, report) = convert(&zoo().join("ddp_module.pt"), false);
    assert_eq!(report.exported, None);
    let want: Vec<String> = MLP.iter().map(|n| format!("module.{n}")).collect();
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    assert_eq!(output_names(&report), names(&want));
}

#[test]
fn lightning_exports_its_state_dict_and_lists_what_it_left_out() {
    let path = zoo().join("lightning.pt");
    let (_dir, report) = convert(&path, false);
    assert_eq!(report.exported.as_deref(), Some("state_dict"));
    let want: Vec<String> = MLP.iter().map(|n| format!("model.{n}")).collect();
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    assert_eq!(output_names(&report), names(&want));
    // Every optimizer tensor is named as left out, in the report and the file's metadata.
    let truth = truth(&path);
    let optimizer: Vec<&String> = truth
        .tensors
        .keys()
        .filter(|k| k.starts_with("optimizer_states."))
        .collect();
    assert_eq!(optimizer.len(), 18);
    let mut left_out = report.left_out.clone();
    left_out.sort();
    assert_eq!(left_out.iter().collect::<Vec<_>>(), optimizer);
    let out = ckptscope::open(&report.output).unwrap();
    let listed: Vec<String> =
        serde_json::from_str(out.metadata_value("ckptscope.left_out").unwrap()).unwrap();
    assert_eq!(listed.len(), 18);
    assert_eq!(out.metadata_value("ckptscope.exported"), Some("state_dict"));
    assert_eq!(out.metadata_value("epoch"), Some("3"));

    // --all keeps everything under its full name.
    let (_dir, all) = convert(&path, true);
    assert_eq!(all.exported, None);
    assert!(all.left_out.is_empty());
    assert_eq!(output_names(&all).len(), truth.tensors.len());
}

#[test]
fn model_optimizer_epoch_exports_the_model() {
    let (_dir, report) = convert(&zoo().join("model_optimizer_epoch.pt"), false);
    assert_eq!(report.exported.as_deref(), Some("model"));
    assert_eq!(output_names(&report), names(&MLP));
    assert_eq!(report.left_out.len(), 18);
    assert!(report.left_out.iter().all(|n| n.starts_with("optimizer.")));
}

#[test]
fn a_bare_tensor_and_a_list_of_tensors_keep_their_names() {
    let (_dir, bare) = convert(&zoo().join("bare_tensor.pt"), false);
    assert_eq!(output_names(&bare), names(&["tensor"]));
    let (_dir, list) = convert(&zoo().join("tensor_list.pt"), false);
    assert_eq!(output_names(&list), names(&["0", "1", "2"]));
    let (_dir, pairs) = convert(&zoo().join("pairs_lists_legacy.pt"), false);
    assert_eq!(output_names(&pairs), names(&MLP));
}

/// The weights-only answer agrees with what `torch.load(weights_only=True)` really did to each
/// file: it loads, or it fails on the global or the opcode torch named.
#[test]
fn the_weights_only_answer_matches_torch() {
    for path in files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let truth = truth(&path);
        let ckpt = ckptscope::open(&path).unwrap();
        let answer = ckpt
            .pickle
            .as_ref()
            .and_then(|r| r.weights_only.clone())
            .unwrap_or_else(|| panic!("{name}: no weights-only answer"));
        assert_eq!(answer.loads, truth.weights_only, "{name}: {answer:?}");
        let Some(error) = &truth.weights_only_error else {
            continue;
        };
        if let Some(rest) = error.strip_prefix("Unsupported global: GLOBAL ") {
            let global = rest.split_whitespace().next().unwrap();
            let global = if global.contains('.') {
                global.to_string()
            } else {
                format!("builtins.{global}")
            };
            assert_eq!(
                answer.needs.first(),
                Some(&global),
                "{name}: torch said {error}"
            );
        } else if error.starts_with("Unsupported operand") {
            let blocker = answer.blocker.as_deref().unwrap_or_default();
            assert!(
                blocker.contains(error.as_str()),
                "{name}: torch said {error}, we {blocker}"
            );
        } else {
            panic!("{name}: a refusal the test does not know: {error}");
        }
    }
}

/// `scan` of a folder of benign files from everywhere (the zoo, real checkpoints from public
/// packages, a TorchScript model, Hugging Face's `rng_state.pth`, NumPy payloads, Lightning and
/// optimizer checkpoints, the shared fixtures) calls none of them dangerous, and every one of
/// them safe but the TorchScript programs, which are suspicious for their code alone.
#[test]
fn a_folder_of_benign_real_world_files_has_nothing_dangerous() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut copied = 0;
    for sub in [
        "zoo",
        "zoo_odd",
        "real",
        "real/hf_trainer",
        "real/hf_trainer/checkpoint-2",
        "compat",
        "torchscript",
        "",
    ] {
        for entry in std::fs::read_dir(fixtures.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let hostile =
                name.starts_with("malicious") || name == "writes_file.pt" || name == "custom_op.pt";
            if !path.is_file() || name.ends_with(".json") || name.ends_with(".md") || hostile {
                continue;
            }
            std::fs::copy(
                &path,
                dir.path().join(format!("{}{name}", sub.replace('/', "_"))),
            )
            .unwrap();
            copied += 1;
        }
    }
    assert!(copied >= 70, "{copied} files");
    let (code, out, err) = common::run(&["scan", "--json", dir.path().to_str().unwrap()]);
    let entries: Vec<Value> =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    assert_eq!(entries.len(), copied, "{out}");
    for e in &entries {
        let path = e["path"].as_str().unwrap();
        let verdict = e["verdict"].as_str().unwrap();
        let torchscript = e["format"] == "torchscript";
        // A dict built through itertools, and Trainer's pickled TrainingArguments: classes
        // outside the allowlist, running nothing that is known to run code.
        let odd = path.contains("zoo_oddordered_from_zip") || path.ends_with("training_args.bin");
        let want = if torchscript || odd {
            "suspicious"
        } else {
            "safe"
        };
        assert_eq!(verdict, want, "{path}: {e:#}");
    }
    assert_eq!(code, 1, "some are suspicious: exit 1");
}

#[test]
fn a_real_trainer_pytorch_model_bin_converts_under_its_own_names() {
    // Written by transformers (`tests/gen/hf_trainer.py`): a flat Llama state dict with a tied
    // head. Every name stays; the head is the alias. (Checked by hand with transformers: the
    // converted file loads with from_pretrained and gives the same logits.)
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real/hf_trainer/pytorch_model.bin");
    let truth = truth(&path);
    let (_dir, report) = convert(&path, false);
    assert_eq!(report.exported, None);
    assert!(report.left_out.is_empty());
    assert_eq!(
        output_names(&report),
        truth.tensors.keys().cloned().collect::<Vec<_>>()
    );
    assert_eq!(
        report.aliases,
        vec![(
            "lm_head.weight".to_string(),
            "model.embed_tokens.weight".to_string()
        )]
    );
}
