//! The explorer window's frame costs, measured on the real app through egui_kittest (layout
//! and tessellation on the CPU; no GPU): from choosing a 20,000-tensor file to the first frame
//! showing its table, and frames of a 100,000-row table, still and while scrolling.
//!
//! Run: `cargo bench --bench gui`

mod support;

use std::time::{Duration, Instant};

use ckptscope::gui::Command;
use ckptscope::gui::{App, StartupArgs};
use egui_kittest::Harness;
use support::*;

fn harness() -> Harness<'static, App> {
    Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .with_max_steps(1000)
        .build_eframe(|cc| {
            App::new(
                cc,
                StartupArgs {
                    files: Vec::new(),
                    sync_jobs: true,
                    demo_on_first_run: false,
                    ..Default::default()
                },
            )
        })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let f20k = dir.path().join("20k.safetensors");
    let f100k = dir.path().join("100k.safetensors");
    let name = |i| format!("model.layers.{}.block.{}.weight", i / 100, i % 100);
    write_f32_checkpoint(&f20k, 20_000, 16, name);
    write_f32_checkpoint(&f100k, 100_000, 4, name);

    println!("# explorer window (egui_kittest, no GPU)");
    // From choosing a file to the first frame that shows its table.
    let mut opens = Vec::new();
    for _ in 0..10 {
        let mut h = harness();
        h.run();
        let start = Instant::now();
        h.state_mut().push(Command::Open(f20k.clone()));
        while h.state().doc.is_none() {
            h.step();
        }
        h.step();
        opens.push(start.elapsed());
        assert_eq!(h.state().doc.as_ref().unwrap().ckpt.tensors.len(), 20_000);
    }
    println!(
        "20,000 tensors: file chosen -> first frame with the table: median {:.1} ms",
        median(opens).as_secs_f64() * 1e3
    );

    let mut h = harness();
    h.run();
    h.state_mut().push(Command::Open(f100k.clone()));
    h.run();
    assert_eq!(h.state().doc.as_ref().unwrap().table.rows.len(), 100_000);
    let mut still = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        h.step();
        still.push(t.elapsed());
    }
    println!(
        "100,000-row table, frame: median {:.2} ms",
        median(still).as_secs_f64() * 1e3
    );
    // Scroll the table: pointer over it, one wheel event per frame.
    h.input_mut()
        .events
        .push(egui::Event::PointerMoved(egui::pos2(200.0, 400.0)));
    h.step();
    let mut scrolling = Vec::new();
    for _ in 0..200 {
        h.input_mut().events.push(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Line,
            delta: egui::vec2(0.0, -20.0),
            modifiers: egui::Modifiers::NONE,
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Wheel,
        });
        let t = Instant::now();
        h.step();
        scrolling.push(t.elapsed());
    }
    println!(
        "100,000-row table, frame while scrolling: median {:.2} ms",
        median(scrolling).as_secs_f64() * 1e3
    );
}
