//! Model folders as packages, against real training outputs: a Hugging Face Trainer run written
//! by transformers and a Lightning-style run written by torch (tests/gen/package_runs.py), with
//! torch.load ground truth beside them (roles as written, weights-only answers, tensors).

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ckptscope::convert::ConvertOptions;
use ckptscope::package::convert_all::{Outcome, RunProgress, convert_all};
use ckptscope::package::inference::{self, Action, InferenceError};
use ckptscope::package::{Check, Package, PackageOptions, PointKind, Role, open_package};
use ckptscope::pickle::policy::Verdict;
use ckptscope::progress::Progress;
use common::{fixture, run, sha256_hex};

#[derive(serde::Deserialize)]
struct Truth {
    roles: BTreeMap<String, String>,
    weights_only: BTreeMap<String, String>,
    timeline: Vec<String>,
}

#[derive(serde::Deserialize)]
struct TensorTruth {
    dtype: String,
    shape: Vec<u64>,
    sha256: String,
}

fn truth(name: &str) -> Truth {
    let text = std::fs::read_to_string(fixture(&format!("package/{name}.expected.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn tensor_truth() -> BTreeMap<String, BTreeMap<String, TensorTruth>> {
    let text = std::fs::read_to_string(fixture("package/tensors.expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn open(dir: &Path) -> Package {
    open_package(dir, &PackageOptions::default(), &Progress::new()).unwrap()
}

/// A copy of a fixture folder to write into.
fn copy_of(name: &str) -> (tempfile::TempDir, PathBuf) {
    common::package_copy(name)
}

/// Every tensor of the safetensors model at `path` equals the torch truth `want`.
fn assert_model_matches(path: &Path, want: &BTreeMap<String, TensorTruth>) {
    let ckpt = ckptscope::format::open(path).unwrap();
    let names: Vec<&str> = ckpt.tensors.iter().map(|t| t.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        want.keys().map(String::as_str).collect::<Vec<_>>(),
        "{}",
        path.display()
    );
    for t in &ckpt.tensors {
        let w = &want[&t.name];
        assert_eq!(
            t.dtype.name().to_lowercase(),
            dtype_name(&w.dtype),
            "{}",
            t.name
        );
        assert_eq!(t.shape, w.shape, "{}", t.name);
        let bytes = ckptscope::format::gather::to_vec(t, ckpt.tensor_bytes(t).unwrap()).unwrap();
        assert_eq!(sha256_hex(&bytes), w.sha256, "{} bytes", t.name);
    }
}

fn dtype_name(torch: &str) -> String {
    match torch {
        "float32" => "f32".into(),
        "float16" => "f16".into(),
        "bfloat16" => "bf16".into(),
        "int64" => "i64".into(),
        other => other.into(),
    }
}

#[test]
fn every_file_of_a_trainer_run_gets_the_role_it_was_written_for() {
    for name in ["hf_run", "lightning_run"] {
        let package = open(&fixture(&format!("package/{name}")));
        let truth = truth(name);
        let ours: BTreeMap<String, &str> = package
            .files
            .iter()
            .map(|f| (f.path.to_string_lossy().into_owned(), f.role.json_name()))
            .collect();
        let want: BTreeMap<String, &str> = truth
            .roles
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str()))
            .collect();
        assert_eq!(ours, want, "{name}");
    }
}

#[test]
fn the_weights_only_answers_are_what_torch_load_did() {
    for name in ["hf_run", "lightning_run"] {
        let package = open(&fixture(&format!("package/{name}")));
        for (rel, torch) in truth(name).weights_only {
            let f = package.file(Path::new(&rel)).unwrap();
            let w = f.check.weights_only().unwrap_or_else(|| panic!("{rel}"));
            if torch == "loads" {
                assert!(w.loads, "{rel}: torch loads it, we say {w:?}");
            } else {
                assert!(!w.loads, "{rel}: torch refused it ({torch})");
                // The global torch names first is the first one we say is needed.
                let first = w.needs.first().unwrap_or_else(|| panic!("{rel}: {w:?}"));
                assert!(
                    torch.contains(&format!("GLOBAL {first} ")),
                    "{rel}: {torch} / {first}"
                );
            }
        }
    }
}

#[test]
fn verdicts_totals_config_and_timeline_of_a_trainer_run() {
    let dir = fixture("package/hf_run");
    let package = open(&dir);
    // Every pickle and safetensors file is scanned; JSON and text are not called safe.
    for f in &package.files {
        let name = f.path.to_string_lossy();
        let checkpoint = name.ends_with(".bin")
            || name.ends_with(".pt")
            || name.ends_with(".pth")
            || name.ends_with(".safetensors");
        match &f.check {
            Check::Scanned { verdict, .. } => {
                assert!(checkpoint, "{name} scanned");
                assert_ne!(*verdict, Verdict::Dangerous, "{name}");
            }
            Check::NotCheckpoint => assert!(!checkpoint, "{name} not scanned"),
            Check::NotScanned { reason } => panic!("{name}: {reason}"),
        }
    }
    // TrainingArguments is a transformers class: outside the allowlist, suspicious.
    let args = package.file(Path::new("training_args.bin")).unwrap();
    assert_eq!(args.check.verdict(), Some(Verdict::Suspicious));
    assert_eq!(package.totals.verdict(), Some(Verdict::Suspicious));

    // Totals add up to what is on disk.
    let t = &package.totals;
    assert_eq!(t.files, 29);
    let on_disk: u64 = package
        .files
        .iter()
        .map(|f| std::fs::metadata(dir.join(&f.path)).unwrap().len())
        .sum();
    assert_eq!(t.bytes, on_disk);
    assert_eq!(t.pickle_files, 11);
    assert_eq!(t.pickle_files + t.safe_format_files, t.files);
    assert_eq!(t.by_role.iter().map(|r| r.bytes).sum::<u64>(), t.bytes);
    let optimizer = t
        .by_role
        .iter()
        .find(|r| r.role == Role::Optimizer)
        .unwrap();
    assert_eq!(optimizer.files, 2);
    // The sharded model counts its tensors once, at its index.
    let index = package
        .file(Path::new("pytorch_model.bin.index.json"))
        .unwrap();
    assert_eq!(index.tensors, Some(21));
    let shard = package
        .file(Path::new("pytorch_model-00001-of-00002.bin"))
        .unwrap();
    assert_eq!(
        shard.model.as_deref(),
        Some(Path::new("pytorch_model.bin.index.json"))
    );

    // config.json as written.
    let config = package.config.as_ref().unwrap();
    let get = |k: &str| {
        config
            .entries
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        get("architectures"),
        Some(serde_json::json!(["LlamaForCausalLM"]))
    );
    assert_eq!(get("model_type"), Some(serde_json::json!("llama")));
    assert_eq!(
        get("transformers_version"),
        Some(serde_json::json!("5.24.0"))
    );
    assert_eq!(get("num_hidden_layers"), Some(serde_json::json!(2)));

    // The run, by step, with the loss the trainer logged.
    let points: Vec<String> = package
        .timeline
        .iter()
        .map(|p| p.path.to_string_lossy().into_owned())
        .collect();
    assert_eq!(points, truth("hf_run").timeline);
    for p in &package.timeline {
        assert_eq!(p.kind, PointKind::Folder);
        assert_eq!(p.weights, vec![p.path.join("model.safetensors")]);
        let state: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join(&p.path).join("trainer_state.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(Some(p.step), state["global_step"].as_u64());
        let last_loss = state["log_history"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find_map(|e| e["loss"].as_f64());
        assert_eq!(p.loss, last_loss);
    }
}

#[test]
fn lightning_checkpoints_make_a_timeline_by_step() {
    let package = open(&fixture("package/lightning_run"));
    let points: Vec<String> = package
        .timeline
        .iter()
        .map(|p| p.path.to_string_lossy().into_owned())
        .collect();
    assert_eq!(points, truth("lightning_run").timeline);
    assert_eq!(
        package.timeline.iter().map(|p| p.step).collect::<Vec<_>>(),
        [2, 4, 6]
    );
    assert_eq!(package.timeline[1].epoch, Some(1.0));
    let ckpt = &package.files[0];
    assert_eq!(ckpt.role, Role::TrainingCheckpoint);
    // The whole file: model weights and optimizer state.
    assert!(ckpt.tensors.unwrap() > 4);
}

#[test]
fn info_on_a_folder_shows_the_package_in_json_and_text() {
    let dir = fixture("package/hf_run");
    let (code, out, err) = run(&["info", "--json", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kind"], "package");
    assert_eq!(v["verdict"], "suspicious");
    assert_eq!(v["files"].as_array().unwrap().len(), 29);
    let optimizer = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "checkpoint-2/optimizer.pt")
        .unwrap();
    assert_eq!(optimizer["role"], "optimizer");
    assert_eq!(optimizer["format"], "pytorch_zip");
    assert_eq!(optimizer["check"]["status"], "scanned");
    assert_eq!(optimizer["check"]["verdict"], "safe");
    assert_eq!(optimizer["check"]["weights_only"]["loads"], true);
    assert_eq!(v["timeline"][0]["path"], "checkpoint-2");
    assert_eq!(v["timeline"][1]["step"], 4);
    assert_eq!(v["totals"]["pickle_files"], 11);
    assert_eq!(v["config"]["entries"][1][0], "model_type");

    let (code, out, _) = run(&["info", dir.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("model package: 29 files"), "{out}");
    assert!(
        out.contains("verdict   SUSPICIOUS (3 suspicious, 10 safe)"),
        "{out}"
    );
    assert!(out.contains("run timeline (2 checkpoints)"), "{out}");
    assert!(out.contains("index of pickle shards"), "{out}");
}

#[test]
fn convert_all_converts_the_sharded_pickle_model_bit_exactly_and_never_overwrites() {
    let (_tmp, dir) = copy_of("hf_run");
    let truth = tensor_truth();
    let (code, out, err) = run(&["convert", "--json", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let items = v["items"].as_array().unwrap();
    // 12 pickles: the model (through its index), its 2 shards, 9 training-only files.
    assert_eq!(items.len(), 12, "{out}");
    let converted: Vec<&serde_json::Value> = items
        .iter()
        .filter(|i| i["outcome"] == "converted")
        .collect();
    assert_eq!(converted.len(), 1);
    assert_eq!(converted[0]["input"], "pytorch_model.bin.index.json");
    assert_eq!(converted[0]["verdict"], "safe");
    for i in items.iter().filter(|i| i["outcome"] == "skipped") {
        let reason = i["reason"].as_str().unwrap();
        assert!(
            reason.contains("not weights") || reason.contains("converted with its model"),
            "{i}"
        );
    }
    // The converted model is the torch truth, and equals the safetensors transformers wrote at
    // the same step.
    let mut want: BTreeMap<String, TensorTruth> = BTreeMap::new();
    for (file, tensors) in truth {
        if file.starts_with("hf_run/pytorch_model-") {
            want.extend(tensors);
        }
    }
    assert_model_matches(&dir.join("model.safetensors.index.json"), &want);
    // Every tensor is identical; only the metadata differs (the conversion's provenance).
    let (code, out, _) = run(&[
        "diff",
        "--json",
        dir.join("model.safetensors.index.json").to_str().unwrap(),
        dir.join("checkpoint-4/model.safetensors").to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let tensors = v["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), 21);
    for t in tensors {
        assert_eq!(t["status"], "identical", "{t}");
    }

    // Again: the outputs exist and are not replaced.
    let before = std::fs::read(dir.join("model-00001-of-00002.safetensors")).unwrap();
    let (code, out, _) = run(&["convert", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 converted"), "{out}");
    assert!(
        out.contains("model.safetensors.index.json exists (--force replaces it)"),
        "{out}"
    );
    assert_eq!(
        before,
        std::fs::read(dir.join("model-00001-of-00002.safetensors")).unwrap()
    );
    let (code, out, _) = run(&["convert", "--force", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 converted"), "{out}");
}

#[test]
fn convert_all_goes_on_after_a_failure_and_refuses_dangerous_files() {
    let (_tmp, dir) = copy_of("lightning_run");
    let ck = dir.join("lightning_logs/version_0/checkpoints");
    // A truncated checkpoint and a malicious pickle named like weights.
    let broken = ck.join("epoch=1-step=4.ckpt");
    let bytes = std::fs::read(&broken).unwrap();
    std::fs::write(&broken, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::copy(fixture("malicious_os_system.pt"), dir.join("model.pt")).unwrap();
    // A checkpoint whose first storage lost a bit on the disk: it scans (the pickle is intact),
    // and its conversion fails on the storage's CRC-32.
    let flipped = ck.join("epoch=2-step=6.ckpt");
    let at = ckptscope::format::open(&flipped).unwrap().tensors[0].file_offset as usize;
    let mut bytes = std::fs::read(&flipped).unwrap();
    bytes[at] ^= 0x10;
    std::fs::write(&flipped, &bytes).unwrap();

    let package = open(&dir);
    let summary = convert_all(
        &package,
        &ConvertOptions::default(),
        &RunProgress::new(),
        |_| {},
    );
    let outcome = |rel: &str| {
        summary
            .items
            .iter()
            .find(|i| i.input == Path::new(rel))
            .map(|i| i.outcome.clone())
            .unwrap_or_else(|| panic!("{rel} not in {:?}", summary.items))
    };
    // Unreadable is not safe: the truncated file is refused, not passed over.
    match outcome("lightning_logs/version_0/checkpoints/epoch=1-step=4.ckpt") {
        Outcome::Refused { reason } => assert!(reason.contains("cannot be read"), "{reason}"),
        other => panic!("{other:?}"),
    }
    match outcome("lightning_logs/version_0/checkpoints/epoch=2-step=6.ckpt") {
        Outcome::Failed { reason } => assert!(reason.to_lowercase().contains("crc"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(
        !ck.join("epoch=2-step=6.safetensors").exists(),
        "nothing left behind"
    );
    assert!(matches!(outcome("model.pt"), Outcome::Refused { .. }));
    assert_eq!(summary.converted(), 2);
    assert_eq!(summary.exit_code(), 2);
    assert!(!dir.join("model.safetensors").exists());
    assert!(!ck.join("epoch=1-step=4.safetensors").exists());
    // The others are the torch truth (the state_dict of each checkpoint).
    let truth = tensor_truth();
    for name in ["epoch=0-step=2", "last"] {
        let key = format!("lightning_run/lightning_logs/version_0/checkpoints/{name}.ckpt");
        assert_model_matches(&ck.join(format!("{name}.safetensors")), &truth[&key]);
    }
    // From the CLI: exit 2 when one failed.
    let (_tmp2, dir2) = copy_of("lightning_run");
    std::fs::copy(fixture("malicious_os_system.pt"), dir2.join("model.pt")).unwrap();
    let (code, out, _) = run(&["convert", dir2.to_str().unwrap()]);
    assert_eq!(code, 1, "refused only: {out}");
    assert!(out.contains("REFUSED    model.pt  (dangerous)"), "{out}");
}

#[test]
fn the_inference_package_keeps_what_inference_needs_and_converts_the_pickles() {
    let (_tmp, dir) = copy_of("hf_run");
    let package = open(&dir);
    let plan = inference::plan(&package);
    let kept: Vec<(String, Action)> = plan
        .entries
        .iter()
        .map(|e| (e.dest.to_string_lossy().into_owned(), e.action))
        .collect();
    assert_eq!(
        kept,
        [
            ("README.md", Action::Copy),
            ("config.json", Action::Copy),
            ("generation_config.json", Action::Copy),
            ("model.safetensors.index.json", Action::Convert),
            ("tokenizer.json", Action::Copy),
            ("tokenizer_config.json", Action::Copy),
        ]
        .map(|(a, b)| (a.to_string(), b))
    );
    // Training state and the two run checkpoints; the pickle shards go in through their index.
    assert_eq!(plan.left_out.len(), 21);
    assert_eq!(
        plan.saved_bytes,
        plan.left_out.iter().map(|l| l.bytes).sum::<u64>()
    );
    assert_eq!(plan.kept_bytes + plan.saved_bytes, package.totals.bytes);
    for l in &plan.left_out {
        let f = package.file(&l.path).unwrap();
        assert!(
            f.role.is_training_only()
                || l.path.starts_with("checkpoint-2")
                || l.path.starts_with("checkpoint-4"),
            "{l:?}"
        );
    }

    let target = dir.parent().unwrap().join("ship");
    let written = inference::write(
        &package,
        &plan,
        &target,
        &ConvertOptions::default(),
        &Progress::new(),
    )
    .unwrap();
    let names = common::file_names(&target);
    assert_eq!(
        names,
        [
            "README.md",
            "config.json",
            "generation_config.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json",
            "tokenizer.json",
            "tokenizer_config.json"
        ]
    );
    assert_eq!(
        written.bytes,
        names
            .iter()
            .map(|n| std::fs::metadata(target.join(n)).unwrap().len())
            .sum::<u64>()
    );
    let mut want: BTreeMap<String, TensorTruth> = BTreeMap::new();
    for (file, tensors) in tensor_truth() {
        if file.starts_with("hf_run/pytorch_model-") {
            want.extend(tensors);
        }
    }
    assert_model_matches(&target.join("model.safetensors.index.json"), &want);
    // Every file of it scans without a pickle.
    let scan = ckptscope::scan::scan_paths(
        std::slice::from_ref(&target),
        &Default::default(),
        &Default::default(),
    );
    assert_eq!(scan.exit_code(), 0);
    // The source folder is untouched; an existing target is never replaced.
    assert!(dir.join("pytorch_model.bin.index.json").exists());
    assert!(!dir.join("model.safetensors.index.json").exists());
    let again = inference::write(
        &package,
        &plan,
        &target,
        &ConvertOptions::default(),
        &Progress::new(),
    );
    assert!(matches!(again, Err(InferenceError::Exists(_))), "{again:?}");
    // Nothing staged is left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".ckptscope"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_inference_archive_holds_the_same_files() {
    let (_tmp, dir) = copy_of("lightning_run");
    let target = dir.parent().unwrap().join("ship.tar.gz");
    let (code, out, err) = run(&[
        "inference",
        "--json",
        dir.to_str().unwrap(),
        "-o",
        target.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["plan"]["left_out"].as_array().unwrap().len(), 3);
    let gz = std::fs::read(&target).unwrap();
    assert_eq!(v["bytes"], gz.len() as u64);
    assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    let tar = miniz_oxide::inflate::decompress_to_vec(&gz[10..gz.len() - 8]).unwrap();
    let members = ckptscope::archive::tar::members(&tar);
    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        ["ship/", "ship/model.safetensors", "ship/hparams.yaml"]
    );
    // The model in it is last.ckpt's state_dict, bit for bit.
    let model = &members[1];
    let bytes = &tar[model.data.start as usize..model.data.end as usize];
    let (_t, path) = common::write_temp("model.safetensors", bytes);
    let truth = tensor_truth();
    assert_model_matches(
        &path,
        &truth["lightning_run/lightning_logs/version_0/checkpoints/last.ckpt"],
    );
    // --dry-run writes nothing.
    let other = dir.parent().unwrap().join("dry");
    let (code, out, _) = run(&[
        "inference",
        "--dry-run",
        dir.to_str().unwrap(),
        "-o",
        other.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("saves"), "{out}");
    assert!(!other.exists());
}

#[test]
fn hostile_folders_are_bounded_and_fail_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // An empty weights file, unknown bytes named like a checkpoint, a loop of links.
    std::fs::write(dir.join("pytorch_model.bin"), b"").unwrap();
    std::fs::write(dir.join("model.ckpt"), b"\x00\x01junk").unwrap();
    std::fs::write(dir.join("config.json"), b"{not json").unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(dir, dir.join("loop")).unwrap();
        let fifo = dir.join("pipe.fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe_free_mkfifo(&c), 0);
    }
    let package = open(dir);
    let empty = package.file(Path::new("pytorch_model.bin")).unwrap();
    assert!(
        matches!(empty.check, Check::NotScanned { .. }),
        "{:?}",
        empty.check
    );
    let junk = package.file(Path::new("model.ckpt")).unwrap();
    assert!(
        matches!(junk.check, Check::NotScanned { .. }),
        "{:?}",
        junk.check
    );
    // Never safe while something could not be judged.
    assert_eq!(package.totals.verdict(), None);
    assert_eq!(package.totals.not_scanned, 2);
    assert!(package.config.as_ref().unwrap().problem.is_some());
    #[cfg(unix)]
    assert!(
        package
            .skipped
            .iter()
            .any(|s| s.path.ends_with("pipe.fifo") && s.reason.contains("FIFO")),
        "{:?}",
        package.skipped
    );
    // Exit 2, as `scan` does: nothing can be promised about the folder.
    let (code, out, _) = run(&["info", dir.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        out.contains("verdict   INCOMPLETE (2 not scanned)"),
        "{out}"
    );
}

/// `mkfifo` through the tests' own process (the crate forbids unsafe code; `libc` is a
/// dependency of the library only, so the FIFO is made by the `mkfifo` program).
#[cfg(unix)]
fn unsafe_free_mkfifo(path: &std::ffi::CStr) -> i32 {
    let status = std::process::Command::new("mkfifo")
        .arg(path.to_str().unwrap())
        .status()
        .unwrap();
    if status.success() { 0 } else { 1 }
}
