//! What the window asks outside itself or of the user: the native open and save dialogs (rfd,
//! on the UI thread as the platform wants), the system file manager, and the confirmation
//! before converting an unsafe pickle.
//!
//! Owns [`Confirm`] and the modal that asks it. The dialogs only find the data a command needs;
//! the app then pushes the command that carries it, so tests drive the same flows without them.
//! It must not import the app or any view.

use std::path::{Path, PathBuf};

use crate::gui::command::Command;
use crate::gui::widgets::display_name;
use crate::pickle::policy::Verdict;

/// A question waiting for the user.
#[derive(Clone, Debug, PartialEq)]
pub enum Confirm {
    /// Converting a pickle judged unsafe.
    ConvertUnsafe {
        /// The pickle.
        source: PathBuf,
        /// The safetensors file to write.
        dest: PathBuf,
        /// The verdict of its scan.
        verdict: Verdict,
    },
}

/// Draws the question; its answer is pushed as a command, and [`Command::DismissConfirm`] once
/// the modal closes.
pub fn confirm_ui(ui: &mut egui::Ui, confirm: &Confirm, commands: &mut Vec<Command>) {
    let Confirm::ConvertUnsafe {
        source,
        dest,
        verdict,
    } = confirm;
    let verdict = *verdict;
    let modal = egui::Modal::new(egui::Id::unique("confirm-convert")).show(ui.ctx(), |ui| {
        ui.set_max_width(460.0);
        ui.heading(format!("Convert a {verdict} file?"));
        ui.label(format!(
            "The scan judged this file {verdict}. Converting never executes it: only tensor bytes are copied. \
             The output records the verdict in its metadata."
        ));
        ui.horizontal(|ui| {
            if ui.button(format!("Convert anyway to {}", display_name(dest))).clicked() {
                commands.push(Command::Convert {
                    source: source.clone(),
                    dest: dest.clone(),
                    accept: Some(verdict),
                });
                ui.close();
            }
            if ui.button("Cancel").clicked() {
                ui.close();
            }
        });
    });
    if modal.should_close() {
        commands.push(Command::DismissConfirm);
    }
}

const CHECKPOINT_EXTENSIONS: [&str; 10] = [
    "safetensors",
    "json",
    "pt",
    "pth",
    "bin",
    "ckpt",
    "pkl",
    "npy",
    "npz",
    "onnx",
];

/// Asks for a checkpoint to read. `frame` is `None` before the first frame (no parent window).
pub fn open_dialog(title: &str, frame: Option<&eframe::Frame>) -> Option<PathBuf> {
    let mut dialog = rfd::FileDialog::new()
        .set_title(title)
        .add_filter("Checkpoints", &CHECKPOINT_EXTENSIONS)
        .add_filter("All files", &["*"]);
    if let Some(frame) = frame {
        dialog = dialog.set_parent(frame);
    }
    dialog.pick_file()
}

/// Asks where to write a safetensors file, suggesting `suggested`.
pub fn save_dialog(suggested: &Path, frame: Option<&eframe::Frame>) -> Option<PathBuf> {
    let mut dialog = rfd::FileDialog::new()
        .set_title("Export to safetensors")
        .add_filter("safetensors", &["safetensors"])
        .set_file_name(display_name(suggested));
    if let Some(dir) = suggested.parent().filter(|d| !d.as_os_str().is_empty()) {
        dialog = dialog.set_directory(dir);
    }
    if let Some(frame) = frame {
        dialog = dialog.set_parent(frame);
    }
    dialog.save_file()
}

/// Opens the folder holding `path` in the system's file manager.
pub fn reveal(path: &Path) -> std::io::Result<()> {
    let folder = if path.is_dir() {
        path
    } else {
        path.parent().unwrap_or(Path::new("."))
    };
    let mut cmd = if cfg!(target_os = "macos") {
        let mut c = std::process::Command::new("open");
        c.arg("-R").arg(path);
        c
    } else if cfg!(windows) {
        let mut c = std::process::Command::new("explorer");
        c.arg(format!("/select,{}", path.display()));
        c
    } else {
        let mut c = std::process::Command::new("xdg-open");
        c.arg(folder);
        c
    };
    cmd.spawn().map(drop)
}
