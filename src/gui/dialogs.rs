//! What the window asks outside itself or of the user: the native open and save dialogs (rfd,
//! on the UI thread as the platform wants), the system file manager, and the confirmations
//! before converting an unsafe pickle and before an export replaces files at a typed path.
//!
//! Owns [`Confirm`] and the modal that asks it. The dialogs only find the data a command needs;
//! the app then pushes the command that carries it, so tests drive the same flows without them.
//! Must not import: `app`, `table`, `inspector`, `metadata`, `pickle`, `code`, `lineage`, `start`,
//! `package`.

use std::path::{Path, PathBuf};

use crate::gui::command::{Command, PathPrompt, PathPurpose};
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
    /// Exporting to a path typed in the window's own path field (no system dialog asked) where
    /// files already are.
    ReplaceExport {
        /// The safetensors file or index.
        source: PathBuf,
        /// The checkpoint to write.
        dest: PathBuf,
        /// The files there that the export would replace.
        there: Vec<PathBuf>,
    },
}

/// Draws the question; its answer is pushed as a command, and [`Command::DismissConfirm`] once
/// the modal closes.
pub fn confirm_ui(ui: &mut egui::Ui, confirm: &Confirm, commands: &mut Vec<Command>) {
    let (source, dest, verdict) = match confirm {
        Confirm::ConvertUnsafe {
            source,
            dest,
            verdict,
        } => (source, dest, *verdict),
        Confirm::ReplaceExport {
            source,
            dest,
            there,
        } => return replace_export_ui(ui, source, dest, there, commands),
    };
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

/// Asks before an export replaces files at a path typed in the window.
fn replace_export_ui(
    ui: &mut egui::Ui,
    source: &Path,
    dest: &Path,
    there: &[PathBuf],
    commands: &mut Vec<Command>,
) {
    let modal = egui::Modal::new(egui::Id::unique("confirm-replace")).show(ui.ctx(), |ui| {
        ui.set_max_width(460.0);
        ui.heading("Replace existing files?");
        let names: Vec<String> = there.iter().map(|p| p.display().to_string()).collect();
        ui.label(format!(
            "Exporting for PyTorch to {} replaces {}.",
            dest.display(),
            names.join(", ")
        ));
        ui.horizontal(|ui| {
            if ui.button("Replace").clicked() {
                commands.push(Command::Export {
                    source: source.to_path_buf(),
                    dest: dest.to_path_buf(),
                    replace: true,
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

/// What a system file dialog answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Picked {
    /// The user chose this path.
    Path(PathBuf),
    /// The user closed the dialog.
    Cancelled,
    /// The dialog could not be shown (no desktop portal and no zenity): rfd then returns at
    /// once, faster than anyone can close a dialog.
    Unavailable,
}

/// A dialog that answers "nothing" sooner than this was never shown.
const UNAVAILABLE_BELOW: std::time::Duration = std::time::Duration::from_millis(150);

fn picked(started: std::time::Instant, answer: Option<PathBuf>) -> Picked {
    match answer {
        Some(path) => Picked::Path(path),
        None if started.elapsed() < UNAVAILABLE_BELOW => Picked::Unavailable,
        None => Picked::Cancelled,
    }
}

/// Asks for a checkpoint to read. `frame` is `None` before the first frame (no parent window).
pub fn open_dialog(title: &str, frame: Option<&eframe::Frame>) -> Picked {
    let mut dialog = rfd::FileDialog::new()
        .set_title(title)
        .add_filter("Checkpoints", &crate::format::registry::open_extensions())
        .add_filter("All files", &["*"]);
    if let Some(frame) = frame {
        dialog = dialog.set_parent(frame);
    }
    let started = std::time::Instant::now();
    picked(started, dialog.pick_file())
}

/// Asks for a model folder to open as a package.
pub fn folder_dialog(frame: Option<&eframe::Frame>) -> Picked {
    let mut dialog = rfd::FileDialog::new().set_title("Open model folder");
    if let Some(frame) = frame {
        dialog = dialog.set_parent(frame);
    }
    let started = std::time::Instant::now();
    picked(started, dialog.pick_folder())
}

/// What a save dialog asks for: its title and the file type it offers.
#[derive(Clone, Copy, Debug)]
pub struct SaveKind {
    /// The dialog's title.
    pub title: &'static str,
    /// The name of the file type.
    pub filter: &'static str,
    /// Its extensions.
    pub extensions: &'static [&'static str],
}

/// The save dialog of "Convert to…".
pub const SAVE_SAFETENSORS: SaveKind = SaveKind {
    title: "Export to safetensors",
    filter: "safetensors",
    extensions: &["safetensors"],
};

/// The save dialog of "Export for PyTorch…" for one file.
pub const SAVE_PYTORCH: SaveKind = SaveKind {
    title: "Export for PyTorch",
    filter: "PyTorch checkpoint",
    extensions: &["bin", "pt", "pth"],
};

/// The save dialog of "Export for PyTorch…" for a sharded model: its index (the shards are
/// written beside it).
pub const SAVE_PYTORCH_INDEX: SaveKind = SaveKind {
    title: "Export for PyTorch (index; the shards go beside it)",
    filter: "PyTorch index",
    extensions: &["json"],
};

/// Asks where to write a file of `kind`, suggesting `suggested`.
pub fn save_dialog(kind: SaveKind, suggested: &Path, frame: Option<&eframe::Frame>) -> Picked {
    let mut dialog = rfd::FileDialog::new()
        .set_title(kind.title)
        .add_filter(kind.filter, kind.extensions)
        .set_file_name(display_name(suggested));
    if let Some(dir) = suggested.parent().filter(|d| !d.as_os_str().is_empty()) {
        dialog = dialog.set_directory(dir);
    }
    if let Some(frame) = frame {
        dialog = dialog.set_parent(frame);
    }
    let started = std::time::Instant::now();
    picked(started, dialog.save_file())
}

/// Draws the window's own path field (when the system dialog could not be shown); pushes
/// [`Command::PathEntered`] on OK and [`Command::DismissPath`] when it closes.
pub fn path_prompt_ui(ui: &mut egui::Ui, prompt: &mut PathPrompt, commands: &mut Vec<Command>) {
    let title = match prompt.purpose {
        PathPurpose::Open => "Open a checkpoint",
        PathPurpose::Compare => "Compare with",
        PathPurpose::ConvertTo => "Convert to",
        PathPurpose::ExportTo => "Export for PyTorch to",
        PathPurpose::SetParent => "Choose the parent checkpoint",
    };
    let modal = egui::Modal::new(egui::Id::unique("path-prompt")).show(ui.ctx(), |ui| {
        ui.set_max_width(520.0);
        ui.heading(title);
        ui.label(
            "The system file dialog could not be shown (no desktop portal and no zenity). \
             Type the path instead:",
        );
        let edit = ui
            .horizontal(|ui| {
                let label = ui.label("Path");
                ui.add(
                    egui::TextEdit::singleline(&mut prompt.text)
                        .desired_width(460.0)
                        .font(egui::TextStyle::Monospace),
                )
                .labelled_by(label.id)
            })
            .inner;
        let entered = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        ui.horizontal(|ui| {
            let text = prompt.text.trim();
            if (ui
                .add_enabled(!text.is_empty(), egui::Button::new("OK"))
                .clicked()
                || entered)
                && !text.is_empty()
            {
                commands.push(Command::PathEntered(
                    prompt.purpose.clone(),
                    PathBuf::from(text),
                ));
                ui.close();
            }
            if ui.button("Cancel").clicked() {
                ui.close();
            }
        });
    });
    if modal.should_close() {
        commands.push(Command::DismissPath);
    }
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
