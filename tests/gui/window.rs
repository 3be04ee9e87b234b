//! The window's frame loop driven by egui_kittest: tensor bytes are read on workers (the values
//! grid arrives frames after it is asked for, the window drawing meanwhile),
//! and the folder view lists what "Convert all pickles" wrote and scrolls as a whole.
#![cfg(feature = "gui")]

use crate::common;

use ckptscope::gui::App;
use ckptscope::gui::jobs::JobKind;
use common::{fixture, step_until, threaded_harness};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;

fn labels_containing(h: &Harness<'_, App>, text: &str) -> usize {
    h.query_all_by_label_contains(text).count()
}

fn selected_name(h: &Harness<'_, App>) -> Option<String> {
    let doc = h.state().doc.as_ref()?;
    let t = doc.ckpt.tensors.get(doc.selected?)?;
    Some(t.name.clone())
}

#[test]
fn the_values_of_a_deflated_npz_member_arrive_from_a_worker_while_the_window_draws() {
    let path = fixture("numpy/deflated.npz");
    let mut h = threaded_harness(vec![path.clone()]);
    step_until(&mut h, "the document", |h| h.state().doc.is_some());
    let first = selected_name(&h).expect("the first tensor is selected");
    assert!(
        h.query_all_by_label(&first).count() >= 1,
        "the tensor list is drawn"
    );
    step_until(&mut h, "the first values", |h| {
        h.state().ended(JobKind::Values) == Some(&Ok(()))
    });
    h.step();
    assert!(labels_containing(&h, "reading values") == 0);

    // Another tensor: its values come the same way, frames later. `steps` holds -325, 488, -42
    // (numpy's truth, tests/fixtures/numpy/deflated.npz.expected.json); only the grid shows -42.
    h.get_all_by_label("steps").next().unwrap().click();
    step_until(&mut h, "steps selected", |h| {
        selected_name(h).as_deref() == Some("steps")
    });
    // The frame that takes the click still shows the first tensor's inspector; the values of
    // `steps` are read by the next frames' logic.
    assert_eq!(h.query_all_by_label("-42").count(), 0, "not read yet");
    step_until(&mut h, "the values of steps", |h| {
        h.query_all_by_label("-42").count() == 1
    });
    assert!(h.query_all_by_label("488").count() >= 1);
    assert!(h.state().error.is_none(), "{:?}", h.state().error);
}

#[test]
fn after_convert_all_the_new_files_and_totals_are_listed_without_reopening_the_folder() {
    let (_tmp, dir) = common::package_copy("hf_run");
    let mut h = common::app_harness(vec![dir.clone()]);
    h.run();
    let before = h.state().package.as_ref().unwrap().package.totals.clone();
    assert_eq!(before.files, 29);
    h.get_by_label_contains("Convert all pickles (").click();
    h.run();
    assert_eq!(h.state().ended(JobKind::ConvertAll), Some(&Ok(())));
    assert_eq!(h.state().ended(JobKind::Reread), Some(&Ok(())));
    let view = h.state().package.as_ref().unwrap();
    let listed: Vec<String> = view
        .package
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    for out in [
        "model.safetensors.index.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ] {
        assert!(listed.iter().any(|p| p == out), "{out} listed: {listed:?}");
    }
    // The totals count them, and the header shows the new totals.
    let after = &view.package.totals;
    assert_eq!(after.files, before.files + 3);
    assert!(after.safe_format_bytes > before.safe_format_bytes);
    let files = format!("{} files · ", after.files);
    assert!(labels_containing(&h, &files) == 1, "{files}");
    // Nothing is left to convert.
    assert!(labels_containing(&h, "Convert all pickles (0)") == 1);
    // The new shards are rows of the table (scrolled to, as a user would).
    let row = "model-00002-of-00002.safetensors";
    scroll_until_shown(&mut h, row, 1, 900.0);
}

/// Scrolls the folder's central column down with the mouse wheel until `copies` labels read
/// `name` (the file table's row is the last) and that row is drawn inside the window, `height`
/// points tall.
fn scroll_until_shown(h: &mut Harness<'_, App>, name: &str, copies: usize, height: f32) {
    for _ in 0..60 {
        if in_window(h, name, copies, height) {
            return;
        }
        h.hover_at(egui::pos2(300.0, height - 60.0));
        h.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Point,
            delta: egui::vec2(0.0, -120.0),
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Wheel,
            modifiers: egui::Modifiers::NONE,
        });
        h.run();
    }
    panic!("{name} never scrolled into the window");
}

/// `copies` labels read `name` and the last is inside the window.
fn in_window(h: &Harness<'_, App>, name: &str, copies: usize, height: f32) -> bool {
    let nodes: Vec<_> = h.query_all_by_label(name).collect();
    nodes.len() == copies
        && nodes
            .last()
            .is_some_and(|n| n.rect().top() >= 0.0 && n.rect().bottom() <= height)
}

#[test]
fn the_folder_view_scrolls_to_its_last_file_after_convert_all_and_compare_consecutive() {
    let (_tmp, dir) = common::package_copy("hf_run");
    let mut h = common::app_harness_with(vec![dir.clone()], egui::vec2(1000.0, 560.0), true);
    h.run();
    h.get_by_label_contains("Convert all pickles (").click();
    h.run();
    h.get_by_label("Compare consecutive").click();
    h.run();
    assert!(h.state().package.as_ref().unwrap().changes.is_some());
    let last = h
        .state()
        .package
        .as_ref()
        .unwrap()
        .package
        .files
        .last()
        .unwrap()
        .path
        .display()
        .to_string();
    // The convert-all summary names it too; the table's row is the second label.
    assert!(
        !in_window(&h, &last, 2, 560.0),
        "{last} starts below the window"
    );
    scroll_until_shown(&mut h, &last, 2, 560.0);
}
