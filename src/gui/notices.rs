//! What the window says when a job ends (the notices of convert, export and set-parent), the
//! theme switch, which open files can be exported, how files are opened and what a drop means:
//! small pure functions the app calls.
//!
//! It imports only core types, [`Command`], [`ThemeChoice`] and the display name helper.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::format::{OpenOptions, PickleOptions};
use crate::gui::command::Command;
use crate::gui::state::ThemeChoice;
use crate::gui::widgets::display_name;
use crate::pickle::policy::Verdict;

pub fn apply_theme(ctx: &egui::Context, theme: ThemeChoice) {
    ctx.set_theme(match theme {
        ThemeChoice::System => egui::ThemePreference::System,
        ThemeChoice::Dark => egui::ThemePreference::Dark,
        ThemeChoice::Light => egui::ThemePreference::Light,
    });
}

/// The open file can be exported for PyTorch: a safetensors file or a sharded safetensors model.
pub fn exportable(ckpt: &crate::Checkpoint) -> bool {
    matches!(
        ckpt.format,
        crate::Format::Safetensors | crate::Format::SafetensorsSharded
    )
}

/// What a finished export says: where, how much, that it was read back, what shares a storage.
pub fn export_notice(report: &crate::export::ExportReport) -> String {
    let mut parts = Vec::new();
    if !report.shards.is_empty() {
        parts.push(format!("{} shards beside it", report.shards.len()));
    }
    if !report.tied.is_empty() {
        parts.push(format!(
            "{} tied names share a storage again",
            report.tied.len()
        ));
    }
    parts.extend(report.notes.iter().cloned());
    format!(
        "Exported to {}: {} tensors, {}, verified (scans safe, loads with torch.load(weights_only=True)){}.",
        report.output.display(),
        report.tensors,
        crate::output::human::bytes(report.bytes),
        parts.iter().map(|p| format!("; {p}")).collect::<String>()
    )
}

/// What a finished conversion says: where, how much, and what was left out.
pub fn convert_notice(report: &crate::convert::ConvertReport) -> String {
    let mut parts = Vec::new();
    if let Some(root) = &report.exported {
        parts.push(format!("the `{root}` weights"));
    }
    if !report.aliases.is_empty() {
        parts.push(format!("{} aliases stored once", report.aliases.len()));
    }
    if !report.left_out.is_empty() {
        parts.push(format!(
            "{} other tensors left out (listed in its metadata; the CLI's --all keeps them)",
            report.left_out.len()
        ));
    }
    if !report.skipped.is_empty() {
        parts.push(format!(
            "{} unreadable tensors skipped",
            report.skipped.len()
        ));
    }
    format!(
        "Converted to {}: {} tensors, {}, verified{}.",
        report.output.display(),
        report.tensors,
        crate::output::human::bytes(report.bytes),
        parts.iter().map(|p| format!("; {p}")).collect::<String>()
    )
}

/// What recording a parent says: in which file, which keys.
pub fn set_parent_notice(report: &crate::lineage::SetParentReport) -> String {
    let keys: Vec<String> = report
        .keys
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    format!(
        "Parent recorded in {}: {}.",
        display_name(&report.file),
        keys.join(", ")
    )
}

/// How the window opens a file: pickles judged up to `trust`, progress reported to `progress`.
pub fn open_options(
    trust: Option<Verdict>,
    progress: &Arc<crate::progress::Progress>,
) -> OpenOptions {
    OpenOptions {
        pickle: PickleOptions {
            trust,
            ..PickleOptions::default()
        },
        progress: Some(progress.clone()),
        ..OpenOptions::default()
    }
}

/// What paths dropped on the window mean: one file dropped on the `open` one compares them; a
/// folder, or a file on no open one, opens; two compare each other.
pub fn dropped_command(dropped: &[PathBuf], open: Option<&Path>) -> Option<Command> {
    match dropped {
        [] => None,
        [one] => Some(match open {
            Some(a) if !one.is_dir() => Command::Compare {
                a: a.to_path_buf(),
                b: one.clone(),
            },
            _ => Command::Open(one.clone()),
        }),
        [a, b, ..] => Some(Command::Compare {
            a: a.clone(),
            b: b.clone(),
        }),
    }
}

/// The files a conversion or an export just wrote: what the notice's Open shows and its Undo
/// removes (named apart from the inference package's `Written` the folder view keeps).
pub struct Undoable {
    /// The file to open (an export's index, for a sharded model).
    pub path: PathBuf,
    /// The other files written with it (an export's shards), removed with it by Undo.
    pub also: Vec<PathBuf>,
}

impl Undoable {
    /// Removes every file written: the notice saying what was removed, and the error saying
    /// what could not be (each `None` when there is nothing to say).
    pub fn remove(&self) -> (Option<String>, Option<String>) {
        let mut removed = Vec::new();
        let mut failed = Vec::new();
        for path in std::iter::once(&self.path).chain(&self.also) {
            match std::fs::remove_file(path) {
                Ok(()) => removed.push(path.display().to_string()),
                Err(e) => failed.push(format!("cannot remove {}: {e}", path.display())),
            }
        }
        let notice = (!removed.is_empty()).then(|| format!("Removed {}.", removed.join(", ")));
        let error = (!failed.is_empty()).then(|| failed.join("; "));
        (notice, error)
    }
}

/// What a finished convert-all run says.
pub fn convert_all_notice(summary: &crate::package::convert_all::Summary) -> String {
    let mut parts = vec![format!("{} converted", summary.converted())];
    for (n, what) in [
        (summary.skipped(), "skipped"),
        (summary.refused(), "refused"),
        (summary.failed(), "failed"),
        (summary.cancelled(), "not reached"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    format!("Convert all pickles: {}.", parts.join(", "))
}
