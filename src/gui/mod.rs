//! The explorer window (feature `gui`): the only part of ckptscope that uses egui.
//!
//! Layers, each importing only those below it:
//!
//! - [`app`]: the top. [`App`] keeps the document, the comparison, the job registry and the
//!   persisted state. In eframe's `App::logic`, before each frame is drawn, it collects the
//!   jobs' results and drains the [`Command`]s (doing what touches files or starts jobs);
//!   `App::ui` only draws and pushes commands.
//! - [`menu`], [`dialogs`], [`messages`]: the menu bar and shortcuts; the native dialogs, the file
//!   manager and the unsafe-convert question; the error, notice and job rows.
//! - [`doc`]: one open checkpoint and its layout; [`compare`]: two side by side.
//! - The views: [`table`], [`inspector`], [`metadata`], [`pickle`], [`code`], [`lineage`],
//!   [`folder_view`] (a model folder), [`start`]. They draw from state computed once (by a job or on change) and push commands;
//!   they never read the file or parse.
//! - [`command`], [`state`], [`tab`]: what views may ask, what is persisted, which tab is shown.
//! - [`jobs`]: named worker threads with typed results, progress and cancel; [`widgets`] and
//!   [`demo`]: leaves.

pub mod app;
pub mod code;
pub mod command;
pub mod compare;
pub mod demo;
pub mod dialogs;
pub mod doc;
pub mod folder_view;
pub mod inspector;
pub mod jobs;
pub mod lineage;
pub mod menu;
pub mod messages;
pub mod metadata;
pub mod notices;
pub mod pickle;
pub mod start;
pub mod state;
pub mod tab;
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
                    cache: crate::hash::CacheDir::User,
                },
            )))
        }),
    )
}
