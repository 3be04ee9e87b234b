//! The folder view driven by egui_kittest: a real Trainer run (written by transformers, see
//! `tests/gen/package_runs.py`) opened as a package, its files, roles, verdicts and timeline
//! shown; "Convert all pickles", "Make inference package" and "Compare consecutive" clicked.
#![cfg(feature = "gui")]

use crate::common;

use std::path::{Path, PathBuf};

use ckptscope::gui::App;
use ckptscope::gui::jobs::JobKind;
use common::fixture;
use egui_kittest::kittest::Queryable as _;
use egui_kittest::{Harness, SnapshotOptions};

fn harness(files: Vec<PathBuf>) -> Harness<'static, App> {
    common::app_harness(files)
}

fn copy_of(name: &str) -> (tempfile::TempDir, PathBuf) {
    common::package_copy(name)
}

fn labels_containing(h: &Harness<'_, App>, text: &str) -> usize {
    h.query_all_by_label_contains(text).count()
}

#[test]
fn a_folder_opens_as_a_package_with_roles_verdicts_config_and_timeline() {
    let (_tmp, dir) = copy_of("hf_run");
    let mut h = harness(vec![dir.clone()]);
    h.run();
    let view = h.state().package.as_ref().expect("the folder is a package");
    assert_eq!(view.package.files.len(), 29);
    assert!(h.state().doc.is_none());
    // Files, with their roles and formats.
    for label in [
        "pytorch_model.bin.index.json",
        "checkpoint-4/optimizer.pt",
        "sharded weights index",
        "optimizer state",
        "RNG state",
        "training arguments",
        "index of pickle shards",
        "tokenizer",
    ] {
        assert!(labels_containing(&h, label) > 0, "{label} shown");
    }
    // The overall verdict: training_args.bin needs a transformers class, so the package is not
    // all safe.
    let line = ckptscope::output::package::verdict_line(&view.package);
    assert!(labels_containing(&h, &line) == 1, "{line}");
    // config.json summarised, timeline in step order.
    assert!(labels_containing(&h, "model_type") > 0);
    assert!(labels_containing(&h, "Run timeline") == 1);
    let steps: Vec<u64> = view.package.timeline.iter().map(|p| p.step).collect();
    assert_eq!(steps, [2, 4]);
    assert!(h.query_all_by_label("checkpoint-2").count() >= 1);

    // A file opens in the explorer over the folder; the back button returns to it.
    h.get_by_label("checkpoint-4/model.safetensors").click();
    h.run();
    let doc = h.state().doc.as_ref().expect("the file is open");
    assert!(doc.ckpt.path.ends_with("checkpoint-4/model.safetensors"));
    assert!(h.state().package.is_some(), "the folder stays behind it");
    h.get_by_label("Back to hf_run").click();
    h.run();
    assert!(h.state().doc.is_none());
    assert!(h.state().package.is_some());
}

#[test]
fn convert_all_pickles_in_one_click_writes_every_model_and_says_so() {
    let (_tmp, dir) = copy_of("hf_run");
    let mut h = harness(vec![dir.clone()]);
    h.run();
    h.get_by_label_contains("Convert all pickles (").click();
    h.run();
    assert_eq!(h.state().ended(JobKind::ConvertAll), Some(&Ok(())));
    // The sharded pickle model became safetensors shards and an index.
    for out in [
        "model.safetensors.index.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ] {
        assert!(dir.join(out).is_file(), "{out} written");
    }
    let notice = h.state().notice.clone().expect("a summary is shown");
    assert!(
        notice.starts_with("Convert all pickles: 1 converted"),
        "{notice}"
    );
    assert!(labels_containing(&h, &notice) >= 1, "shown");
    // Training state is listed as skipped, with its reason.
    assert!(labels_containing(&h, "skipped") > 0);
    assert!(labels_containing(&h, "not weights") > 0);
    // The model converted reads back as the torch truth's shape of things: 21 tensors.
    let ckpt = ckptscope::format::open(&dir.join("model.safetensors.index.json")).unwrap();
    assert_eq!(ckpt.tensors.len(), 21);
}

#[test]
fn the_inference_package_shows_the_bytes_saved_then_writes_only_what_inference_needs() {
    let (tmp, dir) = copy_of("hf_run");
    let mut h = harness(vec![dir.clone()]);
    h.run();
    h.get_by_label("Make inference package…").click();
    h.run();
    let plan = h.state().package.as_ref().unwrap().plan.clone();
    assert!(plan.saved_bytes > 0);
    let saves = format!(
        "saves {} of {}",
        ckptscope::output::human::bytes(plan.saved_bytes),
        ckptscope::output::human::bytes(plan.package_bytes)
    );
    assert!(labels_containing(&h, &saves) == 1, "{saves}");
    h.get_by_label("Write").click();
    h.run();
    assert_eq!(h.state().ended(JobKind::Inference), Some(&Ok(())));
    let out = tmp.path().join("hf_run-inference");
    let names = common::file_names(&out);
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
            "tokenizer_config.json",
        ]
    );
    let notice = h.state().notice.clone().unwrap();
    assert!(
        notice.starts_with("Inference package written to"),
        "{notice}"
    );
}

#[test]
fn compare_consecutive_plots_the_change_per_layer_and_opens_a_pair() {
    let (_tmp, dir) = copy_of("hf_run");
    let mut h = harness(vec![dir.clone()]);
    h.run();
    h.get_by_label("Compare consecutive").click();
    h.run();
    let changes = h
        .state()
        .package
        .as_ref()
        .unwrap()
        .changes
        .clone()
        .expect("the run was compared");
    assert!(changes.problems.is_empty(), "{:?}", changes.problems);
    assert_eq!(changes.steps.len(), 1, "two points, one pair");
    let step = &changes.steps[0];
    assert_eq!(step.steps, (2, 4));
    // Training moved the weights: every layer changed, and the numbered ones come first.
    assert!(step.groups.iter().all(|g| g.rel_change > 0.0), "{step:?}");
    let layers: Vec<Option<u64>> = step.groups.iter().map(|g| g.layer).collect();
    assert_eq!(layers, [Some(0), Some(1), None], "{layers:?}");
    assert!(labels_containing(&h, "step 2 to 4") > 0);
    // The pair opens in the compare view.
    h.get_by_label("Compare").click();
    h.run();
    let compare = h
        .state()
        .compare
        .as_ref()
        .unwrap_or_else(|| panic!("the pair is compared: {:?}", h.state().error));
    assert!(
        compare
            .a
            .path
            .ends_with(Path::new("checkpoint-2/model.safetensors"))
    );
    assert!(
        compare
            .b
            .path
            .ends_with(Path::new("checkpoint-4/model.safetensors"))
    );
}

#[test]
fn snapshot_of_a_training_run() {
    // The committed fixture itself, so the paths shown do not change between runs.
    let mut h = harness(vec![fixture("package/hf_run")]);
    h.run();
    h.remove_cursor();
    h.run_ok();
    h.snapshot_options(
        "package_hf_run",
        &SnapshotOptions::new()
            .threshold(2.0)
            .max_failed_pixels(4000),
    );
}
