//! The real app driven by egui_kittest: open files, find tensors, filter, inspect, scan,
//! compare, follow lineage; snapshots of the main views rendered headless (wgpu on lavapipe).
#![cfg(feature = "gui")]

use crate::common;

use std::path::PathBuf;

use ckptscope::gui::{App, StartupArgs};
use common::{fixture, step_until, threaded_harness};
use egui_kittest::kittest::Queryable as _;
use egui_kittest::{Harness, SnapshotOptions};

fn harness(files: Vec<PathBuf>) -> Harness<'static, App> {
    common::app_harness(files)
}

/// Snapshots tolerate small anti-aliasing differences between Mesa versions.
fn snapshot(h: &mut Harness<'_, App>, name: &str) {
    h.remove_cursor();
    h.run_ok();
    h.snapshot_options(
        name,
        &SnapshotOptions::new()
            .threshold(2.0)
            .max_failed_pixels(4000),
    );
}

/// What the app does when a system dialog returns at once (no portal, no zenity): its own path
/// field, where `path` is typed and confirmed.
fn type_in_path_field(
    h: &mut Harness<'_, App>,
    purpose: ckptscope::gui::command::PathPurpose,
    path: &std::path::Path,
) {
    h.state_mut().push(ckptscope::gui::Command::AskPath(
        ckptscope::gui::command::PathPrompt {
            purpose,
            text: String::new(),
        },
    ));
    h.run();
    assert!(labels_containing(h, "could not be shown") == 1);
    h.get_by_label("Path").focus();
    h.run();
    h.get_by_label("Path")
        .type_text(&path.display().to_string());
    h.run();
    h.get_by_label("OK").click();
    h.run();
}

fn labels_containing(h: &Harness<'_, App>, text: &str) -> usize {
    h.query_all_by_label_contains(text).count()
}

#[test]
fn opens_a_fixture_finds_filters_and_inspects_a_tensor() {
    let mut h = harness(vec![fixture("st_basic.safetensors")]);
    h.run();
    assert!(labels_containing(&h, "st_basic.safetensors") > 0);
    // Every tensor is listed.
    for name in ["0.weight", "0.bias", "1.weight", "3.weight", "3.bias"] {
        assert!(h.query_all_by_label(name).count() >= 1, "{name}");
    }
    // Filter.
    h.get_by_label("Filter").focus();
    h.run();
    h.get_by_label("Filter").type_text("bias");
    h.run();
    assert!(h.query_by_label("0.weight").is_none(), "filtered out");
    assert!(h.query_all_by_label("3.bias").count() >= 1);
    assert!(labels_containing(&h, "3 of 6") == 1);
    // Select a tensor and see its statistics, computed independently here.
    h.get_all_by_label("3.bias").next().unwrap().click();
    h.run();
    let ckpt = ckptscope::open(&fixture("st_basic.safetensors")).unwrap();
    let t = ckpt.require("3.bias").unwrap();
    let values: Vec<f64> = ckpt
        .tensor_bytes(t)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
        .collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let fmt = ckptscope::analysis::decode::format_float;
    assert!(
        h.query_all_by_label(&fmt(mean)).count() >= 1,
        "mean {} shown",
        fmt(mean)
    );
    assert!(
        h.query_all_by_label(&fmt(max)).count() >= 1,
        "max {} shown",
        fmt(max)
    );
    assert_eq!(
        h.state().doc.as_ref().unwrap().selected,
        ckpt.tensors.iter().position(|x| x.name == "3.bias")
    );
}

#[test]
fn slices_are_decoded_on_their_own() {
    let mut h = harness(vec![fixture("st_basic.safetensors")]);
    h.run();
    h.get_all_by_label("0.weight").next().unwrap().click();
    h.run();
    h.get_by_label("Slice").focus();
    h.run();
    h.get_by_label("Slice").type_text("[2, 0:4]");
    h.key_press(egui::Key::Enter);
    h.run();
    let inspector = &h.state().doc.as_ref().unwrap().inspector;
    let result = inspector.result.as_ref().expect("statistics of the slice");
    assert_eq!(result.stats.count, 4, "row 2, columns 0..4");
}

#[test]
fn a_malformed_file_shows_the_core_error_and_the_app_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.safetensors");
    std::fs::write(
        &bad,
        common::safetensors_bytes(
            r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}"#,
            &[0u8; 8],
        ),
    )
    .unwrap();
    let mut h = harness(vec![bad]);
    h.run();
    assert!(labels_containing(&h, "needs 16 bytes but data_offsets [0, 8] cover 8") > 0);
    h.get_by_label("Dismiss").click();
    h.run();
    h.get_by_label("Open demo checkpoint").click();
    h.run();
    assert!(labels_containing(&h, "demo-v2.safetensors") > 0);
}

#[test]
fn a_dangerous_pickle_opens_with_a_red_banner_and_no_code_run() {
    let mut h = harness(vec![fixture("malicious_os_system.pt")]);
    h.run();
    assert!(labels_containing(&h, "DANGEROUS pickle") > 0);
    assert!(h.query_all_by_label("posix.system").count() >= 1);
    snapshot(&mut h, "pickle_dangerous");
    // Tensors on request, still without executing anything.
    h.get_by_label("Show tensors anyway").click();
    h.run();
    assert!(h.query_all_by_label("w").count() >= 1);
}

#[test]
fn a_safe_pickle_lists_its_tensors_and_values() {
    let mut h = harness(vec![fixture("lightning_like.ckpt")]);
    h.run();
    assert!(labels_containing(&h, "SAFE pickle") > 0);
    assert!(h.query_all_by_label("state_dict.model.0.weight").count() >= 1);
    h.get_by_label("Scan & values").click();
    h.run();
    assert!(labels_containing(&h, "global_step") > 0);
}

#[test]
fn a_torchscript_program_opens_on_its_flagged_code_line() {
    let mut h = harness(vec![fixture("torchscript/writes_file.pt")]);
    h.run();
    assert!(labels_containing(&h, "DANGEROUS TorchScript program") > 0);
    // The Code tab comes first: the flagged line, with the reason in the banner and on hover.
    assert!(labels_containing(&h, "1 line reaches files") == 1);
    assert!(
        labels_containing(&h, "torch.save(x, _0)") >= 2,
        "line and banner"
    );
    assert!(labels_containing(&h, "writes a file (aten::save)") >= 1);
    snapshot(&mut h, "code_view");
    // Another source file of the program, read-only.
    h.get_by_label_contains("torch_mangle_9.py").click();
    h.run();
    assert!(labels_containing(&h, "return torch.linear(input, weight, bias)") == 1);
}

#[test]
fn a_benign_torchscript_lists_its_state_dict_and_shows_its_code() {
    let mut h = harness(vec![fixture("torchscript/scripted.pt")]);
    h.run();
    assert!(labels_containing(&h, "TorchScript program (suspicious)") > 0);
    for name in ["bn.num_batches_tracked", "out.weight", "blocks.2.bias"] {
        assert!(h.query_all_by_label(name).count() >= 1, "{name}");
    }
    h.get_by_label("Code").click();
    h.run();
    assert!(labels_containing(&h, "No line reaches files") == 1);
    assert!(labels_containing(&h, "class Scripted(Module):") == 1);
}

#[test]
fn compare_view_shows_both_histograms_of_the_changed_head() {
    let mut h = harness(vec![
        fixture("st_lineage_v1.safetensors"),
        fixture("st_lineage_v2.safetensors"),
    ]);
    h.run();
    assert!(h.state().compare.is_some());
    assert!(h.query_all_by_label("only in A").count() >= 1);
    assert!(h.query_all_by_label("only in B").count() >= 1);
    h.get_all_by_label("3.weight").next().unwrap().click();
    h.run();
    assert!(h.query_by_label("Histograms of A and B").is_some());
    assert!(labels_containing(&h, "A: st_lineage_v1.safetensors") > 0);
    assert!(labels_containing(&h, "B: st_lineage_v2.safetensors") > 0);
    assert!(h.query_by_label("Histogram of A − B").is_some());
    snapshot(&mut h, "compare");
    h.get_by_label_contains("Metadata diff").click();
    h.run();
    assert!(h.query_all_by_label("parent").count() >= 1);
}

#[test]
fn lineage_view_draws_the_family_and_compares_with_the_parent() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["st_lineage_v1.safetensors", "st_lineage_v2.safetensors"] {
        std::fs::copy(fixture(f), dir.path().join(f)).unwrap();
    }
    let mut h = harness(vec![dir.path().join("st_lineage_v2.safetensors")]);
    h.run();
    h.get_by_label("Lineage").click();
    h.run();
    assert!(labels_containing(&h, "st_lineage_v1.safetensors\nv1.0") > 0);
    assert!(labels_containing(&h, "st_lineage_v2.safetensors\nv2.0") > 0);
    snapshot(&mut h, "lineage");
    h.get_by_label("Compare with parent").click();
    h.run();
    assert!(h.state().compare.is_some());
}

#[test]
fn start_screen_and_demo() {
    let mut h = harness(Vec::new());
    h.run();
    assert!(h.query_by_label("Open checkpoint…").is_some());
    snapshot(&mut h, "start");
    h.get_by_label("Open demo checkpoint").click();
    h.run();
    assert!(labels_containing(&h, "demo-v2.safetensors") > 0);
    // The first tensor is selected: its inspector is shown at once.
    assert!(h.query_by_label("Statistics").is_some());
    snapshot(&mut h, "explorer");
}

#[test]
fn dropping_a_second_file_opens_the_compare_view() {
    #[derive(Debug)]
    struct Dropped(PathBuf);
    impl egui::DroppedFile for Dropped {
        fn path(&self) -> &std::path::Path {
            &self.0
        }
        fn bytes(&self) -> Result<Vec<u8>, String> {
            std::fs::read(&self.0).map_err(|e| e.to_string())
        }
    }
    let mut h = harness(vec![fixture("st_lineage_v1.safetensors")]);
    h.run();
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(fixture(
            "st_lineage_v2.safetensors",
        ))));
    h.run();
    let cmp = h.state().compare.as_ref().expect("compare view");
    assert!(cmp.b.path.ends_with("st_lineage_v2.safetensors"));
}

#[test]
fn a_first_run_without_a_file_opens_the_demo() {
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .with_max_steps(12)
        .build_eframe(|cc| {
            App::new(
                cc,
                StartupArgs {
                    files: Vec::new(),
                    sync_jobs: true,
                    demo_on_first_run: true,
                    ..Default::default()
                },
            )
        });
    h.run();
    assert!(labels_containing(&h, "demo-v2.safetensors") > 0);
}

// ---- jobs on real threads: progress, cancel, outcomes ------------------------------------------

/// A pickle the engine takes seconds to judge in a test build (20,000,000 BUILDs, 40 MB): long
/// enough to see its job's row and press Cancel, which stops the engine within 65,536 opcodes.
fn slow_file(path: &std::path::Path) {
    std::fs::write(path, common::bombs::build_bomb(20_000_000)).unwrap();
}

/// Waits until the worker that held `progress` has finished.
fn wait_for_worker(progress: std::sync::Arc<ckptscope::progress::Progress>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::sync::Arc::strong_count(&progress) > 1 {
        assert!(std::time::Instant::now() < deadline, "worker never ended");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn opening_shows_its_progress_and_cancel_then_the_document() {
    use ckptscope::gui::jobs::JobKind;
    let dir = tempfile::tempdir().unwrap();
    let stuck = dir.path().join("stuck.safetensors");
    slow_file(&stuck);
    let mut h = threaded_harness(vec![fixture("st_basic.safetensors")]);
    step_until(&mut h, "first document", |h| h.state().doc.is_some());
    h.state_mut()
        .push(ckptscope::gui::Command::Open(stuck.clone()));
    step_until(&mut h, "open job", |h| h.state().jobs.open.running());
    h.step();
    assert!(h.query_by_label("opening stuck.safetensors").is_some());
    // The previous document stays usable while the new file opens.
    assert!(labels_containing(&h, "st_basic.safetensors") > 0);
    let progress = h.state().jobs.progress(JobKind::Open).unwrap();
    h.get_by_label("Cancel").click_accesskit();
    h.step();
    h.step();
    assert!(!h.state().jobs.open.running(), "control is back at once");
    assert!(progress.is_cancelled());
    assert!(h.query_by_label("opening stuck.safetensors").is_none());
    assert!(
        h.state()
            .doc
            .as_ref()
            .unwrap()
            .ckpt
            .path
            .ends_with("st_basic.safetensors")
    );
    // The engine saw the cancel and stopped; its answer is dropped.
    wait_for_worker(progress);
    // Opening another file on a real thread: the document replaces the first one.
    h.state_mut().push(ckptscope::gui::Command::Open(fixture(
        "lightning_like.ckpt",
    )));
    step_until(&mut h, "second document", |h| {
        h.state()
            .doc
            .as_ref()
            .is_some_and(|d| d.ckpt.path.ends_with("lightning_like.ckpt"))
    });
    h.step();
    assert!(labels_containing(&h, "SAFE pickle") > 0);
    assert!(h.state().error.is_none(), "{:?}", h.state().error);
}

#[test]
fn cancelling_an_open_returns_to_the_start_screen_and_drops_the_late_result() {
    let dir = tempfile::tempdir().unwrap();
    let stuck = dir.path().join("stuck.pt");
    slow_file(&stuck);
    let mut h = threaded_harness(vec![stuck.clone()]);
    h.step();
    assert!(h.query_by_label("opening stuck.pt").is_some());
    let progress = h
        .state()
        .jobs
        .progress(ckptscope::gui::jobs::JobKind::Open)
        .unwrap();
    h.get_by_label("Cancel").click_accesskit();
    h.step();
    h.step();
    assert!(!h.state().jobs.open.running());
    assert!(
        h.query_by_label("Open checkpoint…").is_some(),
        "start screen"
    );
    // The worker now ends (cancelled); nobody may show its answer.
    wait_for_worker(progress);
    for _ in 0..5 {
        h.step();
    }
    assert!(h.state().error.is_none(), "{:?}", h.state().error);
    assert!(h.state().doc.is_none());
    assert!(h.query_by_label("Open checkpoint…").is_some());
    assert!(
        h.state().state.recent.is_empty(),
        "a cancelled open is not recent"
    );
}

#[test]
fn cancelling_convert_leaves_compare_running() {
    use ckptscope::gui::Command;
    use ckptscope::gui::jobs::JobKind;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("model.pt");
    std::fs::copy(fixture("torch_zip_basic.pt"), &input).unwrap();
    let mut h = threaded_harness(vec![input.clone()]);
    step_until(&mut h, "document", |h| h.state().doc.is_some());
    // Both jobs take seconds: the convert job re-opens its input, now a slow pickle, and the
    // comparison opens another.
    slow_file(&input);
    let other = dir.path().join("other.pt");
    slow_file(&other);
    let out = dir.path().join("model.safetensors");
    h.state_mut().push(Command::Convert {
        source: input.clone(),
        dest: out.clone(),
        accept: Some(ckptscope::pickle::policy::Verdict::Safe),
    });
    h.state_mut().push(Command::Compare {
        a: other.clone(),
        b: fixture("st_basic.safetensors"),
    });
    step_until(&mut h, "both jobs", |h| {
        h.state().jobs.convert.running() && h.state().jobs.compare.running()
    });
    h.step();
    assert!(h.query_by_label("converting model.pt").is_some());
    assert!(
        h.query_by_label("comparing other.pt and st_basic.safetensors")
            .is_some()
    );
    let compare = h.state().jobs.progress(JobKind::Compare).unwrap();
    let convert = h.state().jobs.progress(JobKind::Convert).unwrap();
    // Two rows, two Cancel buttons; the conversion's is pressed (through its command, as its
    // button sends it: the rows' order is not what is tested here).
    assert_eq!(h.get_all_by_label("Cancel").count(), 2);
    h.state_mut().push(Command::Cancel(JobKind::Convert));
    h.step();
    h.step();
    assert!(convert.is_cancelled());
    assert!(!compare.is_cancelled(), "compare has its own cancel");
    assert!(!h.state().jobs.convert.running());
    assert!(h.state().jobs.compare.running());
    assert!(h.query_by_label("converting model.pt").is_none());
    wait_for_worker(convert);
    for _ in 0..5 {
        h.step();
    }
    assert!(
        h.state().error.is_none(),
        "the cancelled conversion says nothing"
    );
    assert!(!out.exists());
    // The comparison goes on, uncancelled, and delivers its own outcome.
    step_until(&mut h, "compare outcome", |h| {
        !h.state().jobs.compare.running()
    });
    assert!(!compare.is_cancelled());
}

#[test]
fn a_set_parent_failure_is_shown_to_the_user() {
    use ckptscope::gui::Command;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("child.safetensors");
    std::fs::copy(fixture("st_lineage_v2.safetensors"), &file).unwrap();
    let mut h = threaded_harness(vec![file.clone()]);
    step_until(&mut h, "document", |h| h.state().doc.is_some());
    let missing = dir.path().join("no-such-parent.safetensors");
    h.state_mut().push(Command::SetParent {
        file: file.clone(),
        parent: missing,
    });
    step_until(&mut h, "set-parent outcome", |h| {
        !h.state().jobs.set_parent.running() && h.state().error.is_some()
    });
    h.step();
    assert!(labels_containing(&h, "no-such-parent.safetensors") > 0);
    assert!(h.query_by_label("Error").is_some());
    // It stays until dismissed.
    for _ in 0..5 {
        h.step();
    }
    assert!(h.state().error.is_some());
    h.get_by_label("Dismiss").click();
    // The click pushes the command; the next frame's logic does it.
    h.step();
    h.step();
    assert!(h.state().error.is_none());
    // A parent that exists is recorded, said so, and the file is reopened with it.
    let parent = dir.path().join("parent.safetensors");
    std::fs::copy(fixture("st_lineage_v1.safetensors"), &parent).unwrap();
    h.state_mut().push(Command::SetParent {
        file: file.clone(),
        parent,
    });
    step_until(&mut h, "set-parent success", |h| {
        !h.state().jobs.set_parent.running()
            && !h.state().jobs.open.running()
            && h.state().notice.is_some()
    });
    let notice = h.state().notice.clone().unwrap();
    assert!(
        notice.contains("Parent recorded in child.safetensors"),
        "{notice}"
    );
    let reread = ckptscope::open(&file).unwrap();
    assert!(
        reread
            .metadata
            .iter()
            .any(|(k, v)| k == "parent" && v.contains("parent.safetensors")),
        "{:?}",
        reread.metadata
    );
}

#[test]
fn hostile_files_on_real_threads_show_the_scan_verdict_or_an_error() {
    let mut h = threaded_harness(vec![fixture("malicious_os_system.pt")]);
    step_until(&mut h, "document", |h| h.state().doc.is_some());
    h.step();
    assert!(labels_containing(&h, "DANGEROUS pickle") > 0);
    assert!(h.query_all_by_label("posix.system").count() >= 1);
    let (_dir, junk) = common::write_temp("junk.pt", b"\x00\x01 not a checkpoint at all");
    h.state_mut().push(ckptscope::gui::Command::Open(junk));
    step_until(&mut h, "error", |h| h.state().error.is_some());
    h.step();
    assert!(labels_containing(&h, "junk.pt") > 0);
    // The previous document is still there to work with.
    assert!(labels_containing(&h, "DANGEROUS pickle") > 0);
}

// ---- flows driven through their commands (no native dialog) ------------------------------------

#[test]
fn set_parent_through_its_command_rewrites_the_header_and_the_metadata_tab_shows_it() {
    use ckptscope::gui::Command;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("child.safetensors");
    let parent = dir.path().join("base.safetensors");
    std::fs::copy(fixture("st_basic.safetensors"), &file).unwrap();
    std::fs::copy(fixture("st_lineage_v1.safetensors"), &parent).unwrap();
    let mut h = harness(vec![file.clone()]);
    h.run();
    h.get_by_label("Metadata").click();
    h.run();
    assert!(
        h.query_by_label("Parent checkpoint").is_none(),
        "no parent yet"
    );
    h.state_mut().push(Command::SetParent {
        file: file.clone(),
        parent: parent.clone(),
    });
    h.run();
    let notice = h.state().notice.clone().expect("a notice");
    assert!(
        notice.contains("Parent recorded in child.safetensors"),
        "{notice}"
    );
    assert!(labels_containing(&h, "Parent recorded in child.safetensors") == 1);
    // The file on disk has the parent, and so has the document reopened from it.
    let reread = ckptscope::open(&file).unwrap();
    let recorded = |m: &[(String, String)]| {
        m.iter()
            .any(|(k, v)| k == "parent" && v.contains("base.safetensors"))
    };
    assert!(recorded(&reread.metadata), "{:?}", reread.metadata);
    let doc = h.state().doc.as_ref().unwrap();
    assert!(recorded(&doc.ckpt.metadata), "{:?}", doc.ckpt.metadata);
    assert_eq!(
        h.state().ended(ckptscope::gui::jobs::JobKind::SetParent),
        Some(&Ok(()))
    );
    // The metadata tab shows the new key with its label, linked to the lineage view.
    h.get_by_label("Metadata").click();
    h.run();
    assert!(h.query_by_label("Parent checkpoint").is_some());
    assert!(labels_containing(&h, "base.safetensors") >= 1);
    assert!(h.query_all_by_label("Show in lineage").count() >= 1);
}

#[test]
fn convert_through_its_command_writes_the_file_and_offers_to_open_it() {
    use ckptscope::gui::Command;
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("model.pt");
    std::fs::copy(fixture("torch_zip_basic.pt"), &source).unwrap();
    let dest = dir.path().join("exported.safetensors");
    let mut h = harness(vec![source.clone()]);
    h.run();
    assert!(labels_containing(&h, "SAFE pickle") > 0);
    h.state_mut().push(Command::Convert {
        source: source.clone(),
        dest: dest.clone(),
        accept: None,
    });
    h.run();
    // A safe pickle converts without a question.
    assert!(h.query_by_label_contains("Convert anyway").is_none());
    let written = ckptscope::open(&dest).expect("the output is a safetensors file");
    let input = ckptscope::open(&source).unwrap();
    assert_eq!(written.tensors.len(), input.tensors.len());
    assert!(labels_containing(&h, "Converted to") == 1);
    assert!(labels_containing(&h, "exported.safetensors") >= 1);
    h.get_by_label("Open").click();
    h.run();
    let doc = h.state().doc.as_ref().unwrap();
    assert!(doc.ckpt.path.ends_with("exported.safetensors"));
    assert!(
        h.state().notice.is_none(),
        "the notice went with its button"
    );
}

#[test]
fn converting_a_dangerous_pickle_asks_first_and_its_cancel_writes_nothing() {
    use ckptscope::gui::Command;
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("evil.pt");
    std::fs::copy(fixture("malicious_os_system.pt"), &source).unwrap();
    let dest = dir.path().join("evil.safetensors");
    let mut h = harness(vec![source.clone()]);
    h.run();
    let convert = Command::Convert {
        source: source.clone(),
        dest: dest.clone(),
        accept: None,
    };
    h.state_mut().push(convert.clone());
    h.run();
    assert!(h.query_by_label("Convert a dangerous file?").is_some());
    h.get_by_label("Cancel").click();
    h.run();
    assert!(h.query_by_label("Convert a dangerous file?").is_none());
    assert!(!dest.exists(), "nothing written without a yes");
    // Asked again and accepted: only tensor bytes are copied, the verdict recorded.
    h.state_mut().push(convert);
    h.run();
    h.get_by_label("Convert anyway to evil.safetensors").click();
    h.run();
    assert!(h.state().error.is_none(), "{:?}", h.state().error);
    let written = ckptscope::open(&dest).expect("written once accepted");
    assert!(
        written
            .metadata
            .iter()
            .any(|(k, v)| k == "ckptscope.scan_verdict" && v.contains("dangerous")),
        "{:?}",
        written.metadata
    );
}

#[test]
fn a_cancelled_conversion_ends_as_cancelled_and_says_so() {
    use ckptscope::gui::Command;
    use ckptscope::gui::jobs::{JobError, JobKind};
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("model.pt");
    std::fs::copy(fixture("torch_zip_basic.pt"), &source).unwrap();
    let mut h = threaded_harness(vec![source.clone()]);
    step_until(&mut h, "document", |h| h.state().doc.is_some());
    // The conversion re-opens its input, now a pickle that takes seconds to judge.
    slow_file(&source);
    let dest = dir.path().join("model.safetensors");
    h.state_mut().push(Command::Convert {
        source: source.clone(),
        dest: dest.clone(),
        accept: Some(ckptscope::pickle::policy::Verdict::Safe),
    });
    step_until(&mut h, "convert job", |h| h.state().jobs.convert.running());
    h.step();
    assert!(h.query_by_label("converting model.pt").is_some());
    assert_eq!(h.state().ended(JobKind::Convert), None, "still running");
    let progress = h.state().jobs.progress(JobKind::Convert).unwrap();
    h.state_mut().push(Command::Cancel(JobKind::Convert));
    h.step();
    h.step();
    assert!(progress.is_cancelled());
    assert!(!h.state().jobs.convert.running(), "control is back at once");
    assert_eq!(
        h.state().ended(JobKind::Convert),
        Some(&Err(JobError::Cancelled))
    );
    assert!(h.query_by_label("converting model.pt").is_none());
    assert!(
        h.query_by_label("Cancelled: converting model.pt.")
            .is_some()
    );
    // The worker sees the flag and stops; its late answer changes nothing.
    wait_for_worker(progress);
    for _ in 0..5 {
        h.step();
    }
    assert!(h.state().error.is_none(), "{:?}", h.state().error);
    assert!(!dest.exists());
    assert_eq!(
        h.state().ended(JobKind::Convert),
        Some(&Err(JobError::Cancelled))
    );
    assert!(
        h.query_by_label("Cancelled: converting model.pt.")
            .is_some()
    );
}

#[test]
fn every_file_opened_in_a_row_is_remembered() {
    let mut h = threaded_harness(Vec::new());
    let names = [
        "st_basic.safetensors",
        "st_dtypes.safetensors",
        "torch_zip_basic.pt",
    ];
    for name in names {
        h.state_mut()
            .push(ckptscope::gui::Command::Open(fixture(name)));
        h.step();
    }
    step_until(&mut h, "the last open", |h| {
        !h.state().jobs.open.running() && h.state().doc.is_some()
    });
    let recent: Vec<String> = h
        .state()
        .state
        .recent
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        recent,
        [
            "torch_zip_basic.pt",
            "st_dtypes.safetensors",
            "st_basic.safetensors"
        ]
    );
}

#[test]
fn one_click_convert_writes_beside_the_pickle_never_replaces_and_undo_removes_it() {
    use ckptscope::gui::Command;
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("pytorch_model.bin");
    std::fs::copy(fixture("torch_zip_basic.pt"), &source).unwrap();
    let dest = dir.path().join("model.safetensors");
    let mut h = harness(vec![source.clone()]);
    h.run();
    h.get_by_label("Convert to safetensors").click();
    h.run();
    assert!(
        dest.is_file(),
        "written beside the source, without a dialog"
    );
    assert_eq!(
        ckptscope::open(&dest).unwrap().tensors.len(),
        ckptscope::open(&source).unwrap().tensors.len()
    );
    assert!(labels_containing(&h, "Converted to") == 1);
    assert!(h.query_by_label("Show in folder").is_some());
    // A second click does not replace what is there.
    h.state_mut().push(Command::ConvertHere);
    h.run();
    let error = h.state().error.clone().unwrap_or_default();
    assert!(error.contains("already exists"), "{error}");
    h.state_mut().push(Command::DismissError);
    h.run();
    h.get_by_label("Undo").click();
    h.run();
    assert!(!dest.exists(), "Undo removes the file just written");
    assert!(source.is_file());
    assert!(labels_containing(&h, "Removed") == 1);
}

#[test]
fn without_a_system_dialog_a_path_typed_in_the_window_converts() {
    use ckptscope::gui::command::PathPurpose;
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("model.pt");
    std::fs::copy(fixture("torch_zip_basic.pt"), &source).unwrap();
    let dest = dir.path().join("typed.safetensors");
    let mut h = harness(vec![source.clone()]);
    h.run();
    // What the app does when the save dialog returns at once (no portal, no zenity).
    type_in_path_field(&mut h, PathPurpose::ConvertTo, &dest);
    assert!(dest.is_file(), "the typed path was written");
    assert!(
        labels_containing(&h, "could not be shown") == 0,
        "the field closed"
    );
}

// ---- export for PyTorch ------------------------------------------------------------------------

#[test]
fn one_click_export_writes_pytorch_model_bin_that_scans_safe_never_replaces_and_undo_removes_it() {
    use ckptscope::gui::Command;
    use ckptscope::pickle::policy::{Policy, Verdict};
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("model.safetensors");
    std::fs::copy(fixture("st_basic.safetensors"), &source).unwrap();
    let dest = dir.path().join("pytorch_model.bin");
    let mut h = harness(vec![source.clone()]);
    h.run();
    h.get_by_label("Export for PyTorch").click();
    h.run();
    assert!(
        dest.is_file(),
        "written beside the source, without a dialog: {:?}",
        h.state().error
    );
    // A valid torch zip checkpoint that ckptscope's own scan calls safe, with every tensor.
    let scan =
        ckptscope::scan::scan_file(&dest, &Policy::default(), &ckptscope::Limits::DEFAULT).unwrap();
    assert_eq!(scan.verdict, Verdict::Safe, "{:?}", scan.findings);
    assert!(scan.weights_only.as_ref().unwrap().loads);
    let written = ckptscope::open(&dest).unwrap();
    assert_eq!(written.format, ckptscope::Format::PytorchZip);
    let original = ckptscope::open(&source).unwrap();
    assert_eq!(written.tensors.len(), original.tensors.len());
    for t in &original.tensors {
        let w = written.require(&t.name).unwrap();
        assert_eq!(w.shape, t.shape, "{}", t.name);
        assert_eq!(
            written.tensor_bytes(w).unwrap(),
            original.tensor_bytes(t).unwrap(),
            "{}",
            t.name
        );
    }
    assert_eq!(labels_containing(&h, "Exported to"), 1);
    for action in ["Open", "Show in folder", "Undo"] {
        assert!(h.query_by_label(action).is_some(), "{action}");
    }
    // A second click does not replace what is there.
    let before = std::fs::read(&dest).unwrap();
    h.state_mut().push(Command::ExportHere);
    h.run();
    let error = h.state().error.clone().unwrap_or_default();
    assert!(error.contains("already exists"), "{error}");
    assert_eq!(std::fs::read(&dest).unwrap(), before);
    h.state_mut().push(Command::DismissError);
    h.run();
    h.get_by_label("Undo").click();
    h.run();
    assert!(!dest.exists(), "Undo removes the file just written");
    assert!(source.is_file());
    assert_eq!(labels_containing(&h, "Removed"), 1);
}

#[test]
fn the_file_menu_exports_a_sharded_model_shard_by_shard_and_undo_removes_every_file() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture("sharded")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let index = dir.path().join("model.safetensors.index.json");
    let mut h = harness(vec![index.clone()]);
    h.run();
    h.get_by_label("File").click();
    h.run();
    // The File menu's item, not the summary's button (further right).
    h.get_all_by_label("Export for PyTorch")
        .min_by(|a, b| a.rect().left().total_cmp(&b.rect().left()))
        .unwrap()
        .click();
    h.run();
    let out_index = dir.path().join("pytorch_model.bin.index.json");
    assert!(out_index.is_file(), "{:?}", h.state().error);
    let shards: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    assert_eq!(shards.len(), 2, "{shards:?}");
    let written: usize = shards
        .iter()
        .map(|s| ckptscope::open(s).unwrap().tensors.len())
        .sum();
    assert_eq!(written, ckptscope::open(&index).unwrap().tensors.len());
    assert!(labels_containing(&h, "2 shards beside it") == 1);
    h.get_by_label("Undo").click();
    h.run();
    assert!(!out_index.exists());
    for shard in &shards {
        assert!(!shard.exists(), "{}", shard.display());
    }
}

#[test]
fn one_click_export_refuses_when_a_shard_it_would_write_is_there() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture("sharded")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let index = dir.path().join("model.safetensors.index.json");
    let shard = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .unwrap();
    let taken = ckptscope::export::default_output(&shard, false);
    std::fs::write(&taken, b"someone's file").unwrap();
    let mut h = harness(vec![index]);
    h.run();
    h.get_by_label("Export for PyTorch").click();
    h.run();
    let error = h.state().error.clone().unwrap_or_default();
    assert!(error.contains("already exists"), "{error}");
    assert_eq!(std::fs::read(&taken).unwrap(), b"someone's file");
    assert!(!dir.path().join("pytorch_model.bin.index.json").exists());
}

#[test]
fn without_a_system_dialog_a_path_typed_in_the_window_exports() {
    use ckptscope::gui::command::PathPurpose;
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("weights.safetensors");
    std::fs::copy(fixture("st_basic.safetensors"), &source).unwrap();
    let dest = dir.path().join("typed.pt");
    let mut h = harness(vec![source.clone()]);
    h.run();
    type_in_path_field(&mut h, PathPurpose::ExportTo, &dest);
    assert!(dest.is_file(), "{:?}", h.state().error);
    assert_eq!(
        ckptscope::open(&dest).unwrap().format,
        ckptscope::Format::PytorchZip
    );
}

#[test]
fn an_export_cancelled_as_it_starts_ends_cancelled_and_the_next_runs_to_its_end() {
    use ckptscope::gui::Command;
    use ckptscope::gui::jobs::{JobError, JobKind};
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("model.safetensors");
    std::fs::copy(fixture("st_basic.safetensors"), &source).unwrap();
    let mut h = threaded_harness(vec![source.clone()]);
    step_until(&mut h, "the open", |h| h.state().doc.is_some());
    // Cancelled in the frame it starts in. Whether the worker saw the flag before it linked its
    // file in depends on the scheduler (a tiny file exports in a millisecond), so only what the
    // window shows is asserted: the job ended cancelled and its late result is dropped.
    let dest = dir.path().join("pytorch_model.bin");
    h.state_mut().push(Command::Export {
        source: source.clone(),
        dest: dest.clone(),
        replace: false,
    });
    h.state_mut().push(Command::Cancel(JobKind::Export));
    h.step();
    assert_eq!(
        h.state().ended(JobKind::Export),
        Some(&Err(JobError::Cancelled))
    );
    assert!(!h.state().jobs.export.running());
    for _ in 0..5 {
        h.step();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(labels_containing(&h, "Cancelled: exporting model.safetensors") == 1);
    assert!(
        labels_containing(&h, "Exported to") == 0,
        "the late result is dropped"
    );
    assert!(h.query_by_label("Undo").is_none());
    let _ = std::fs::remove_file(&dest);
    // A second export on its thread runs to its end and says so.
    h.state_mut().push(Command::ExportHere);
    step_until(&mut h, "the export", |h| {
        h.state().ended(JobKind::Export) == Some(&Ok(()))
    });
    h.step();
    assert!(dest.is_file());
    assert!(labels_containing(&h, "Exported to") == 1);
}

// ---- details: long names, thin heatmaps --------------------------------------------------------

const LONG_NAME: &str =
    "encoder.layer.0.attention.output.dense.lora_adapter.scaling_factors.weight";

/// The details fixture is what its generator's truth says.
fn details() -> PathBuf {
    let path = fixture("gui/details.safetensors");
    let truth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("gui/details.safetensors.expected.json")).unwrap(),
    )
    .unwrap();
    let ckpt = ckptscope::open(&path).unwrap();
    for t in &ckpt.tensors {
        let want: Vec<u64> = truth[&t.name]["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(t.shape, want, "{}", t.name);
    }
    assert_eq!(truth[LONG_NAME]["shape"], serde_json::json!([1, 512]));
    path
}

/// The long name's label in the table: the leftmost of those that read it (the inspector's
/// heading names the selected tensor too).
fn name_cell<'t>(h: &'t Harness<'_, App>) -> egui_kittest::Node<'t> {
    h.get_all_by_label(LONG_NAME)
        .min_by(|a, b| a.rect().left().total_cmp(&b.rect().left()))
        .unwrap()
}

#[test]
fn a_long_tensor_name_cut_in_the_table_shows_in_full_on_hover() {
    let mut h = harness(vec![details()]);
    h.run();
    // The inspector's heading (the first tensor is selected) gives the name's full width.
    let full = h
        .get_all_by_label(LONG_NAME)
        .map(|n| n.rect().width())
        .fold(0.0, f32::max);
    let cell = name_cell(&h).rect();
    assert!(cell.width() < full / 2.0, "cut: {cell:?}, full {full}");
    let before: Vec<egui::Rect> = h.query_all_by_label(LONG_NAME).map(|n| n.rect()).collect();
    name_cell(&h).hover();
    h.run();
    let tips: Vec<egui::Rect> = h
        .query_all_by_label(LONG_NAME)
        .map(|n| n.rect())
        .filter(|r| !before.contains(r))
        .collect();
    let [tip] = tips.as_slice() else {
        panic!("the full name is shown on hover, once: {tips:?}");
    };
    assert!(tip.width() > cell.width() * 2.0, "in full: {tip:?}");
    assert!(tip.top() >= cell.top(), "beside the pointer: {tip:?}");
}

#[test]
fn the_name_column_is_resized_by_dragging_its_edge_to_read_a_long_name() {
    let mut h = harness(vec![details()]);
    h.run();
    let before = name_cell(&h).rect().width();
    // The resize handle sits between the name column and the dtype column's header.
    let dtype = h
        .get_all_by_label("dtype")
        .map(|n| n.rect())
        .min_by(|a, b| a.left().total_cmp(&b.left()))
        .unwrap();
    let (edge, y) = (dtype.left() - 4.0, dtype.center().y);
    h.hover_at(egui::pos2(edge, y));
    h.run();
    h.drag_at(egui::pos2(edge, y));
    h.step();
    for dx in [50.0, 150.0, 300.0, 420.0] {
        h.hover_at(egui::pos2(edge + dx, y));
        h.step();
    }
    h.drop_at(egui::pos2(edge + 420.0, y));
    h.run();
    let after = name_cell(&h).rect().width();
    assert!(
        after > before + 300.0,
        "the widened column shows more of the name: {before} -> {after}"
    );
}

#[test]
fn a_row_vector_heatmap_is_a_strip_of_usable_height_and_a_column_one_of_usable_width() {
    let mut h = harness(vec![details()]);
    h.run();
    name_cell(&h).click();
    h.run();
    let strip = h.get_by_label("heatmap").rect();
    assert!(strip.height() >= 24.0, "{strip:?}");
    assert!(strip.width() >= 200.0, "{strip:?}");
    h.get_by_label("pooler.column").click();
    h.run();
    let column = h.get_by_label("heatmap").rect();
    assert!(column.width() >= 24.0, "{column:?}");
    assert!(column.height() >= 200.0, "{column:?}");
    // A square matrix keeps its aspect.
    h.get_by_label("small.weight").click();
    h.run();
    let square = h.get_by_label("heatmap").rect();
    assert!((square.width() - square.height()).abs() < 2.0, "{square:?}");
}

#[test]
fn a_typed_export_path_where_a_file_is_asks_before_replacing_it() {
    use ckptscope::gui::Command;
    use ckptscope::gui::command::PathPurpose;
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("weights.safetensors");
    std::fs::copy(fixture("st_basic.safetensors"), &source).unwrap();
    let dest = dir.path().join("taken.bin");
    std::fs::write(&dest, b"someone's file").unwrap();
    let mut h = harness(vec![source]);
    h.run();
    h.state_mut()
        .push(Command::PathEntered(PathPurpose::ExportTo, dest.clone()));
    h.run();
    assert!(labels_containing(&h, "Replace existing files?") == 1);
    assert_eq!(std::fs::read(&dest).unwrap(), b"someone's file", "not yet");
    h.get_by_label("Cancel").click();
    h.run();
    assert_eq!(std::fs::read(&dest).unwrap(), b"someone's file");
    h.state_mut()
        .push(Command::PathEntered(PathPurpose::ExportTo, dest.clone()));
    h.run();
    h.get_by_label("Replace").click();
    h.run();
    assert_eq!(
        ckptscope::open(&dest).unwrap().format,
        ckptscope::Format::PytorchZip,
        "{:?}",
        h.state().error
    );
}
