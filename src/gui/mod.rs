//! The explorer window (feature `gui`): the only part of ckptscope that uses egui.
//!
//! [`app`] holds the state and the command loop; [`doc`] lays out one open checkpoint;
//! [`table`], [`inspector`], [`metadata`], [`pickle`], [`code`], [`lineage`] and [`compare`]
//! are the views; [`jobs`] runs everything that reads files on worker threads.

pub mod app;
pub mod code;
pub mod command;
pub mod compare;
pub mod demo;
pub mod dialogs;
pub mod doc;
pub mod inspector;
pub mod jobs;
pub mod lineage;
pub mod menu;
pub mod messages;
pub mod metadata;
pub mod pickle;
pub mod start;
pub mod state;
pub mod table;
pub mod widgets;

pub use app::{App, StartupArgs};
pub use command::Command;
pub use state::Persisted;

/// The window's icon.
pub const ICON_PNG: &[u8] = include_bytes!("../../assets/icon.png");

/// Opens the window on `files` (none: start screen; one: explore it; two: compare them).
pub fn run(files: Vec<std::path::PathBuf>) -> eframe::Result {
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("ckptscope")
        .with_app_id("ckptscope")
        .with_inner_size([1360.0, 860.0])
        .with_min_inner_size([720.0, 420.0])
        .with_drag_and_drop(true);
    if let Ok(icon) = eframe::icon_data::from_png_bytes(ICON_PNG) {
        viewport = viewport.with_icon(icon);
    }
    let options = eframe::NativeOptions {
        viewport,
        ..Default::default()
    };
    eframe::run_native(
        "ckptscope",
        options,
        Box::new(move |cc| {
            Ok(Box::new(App::new(
                cc,
                StartupArgs {
                    files,
                    sync_jobs: false,
                    demo_on_first_run: true,
                },
            )))
        }),
    )
}
