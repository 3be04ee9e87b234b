//! The strip under the menu: the last error (until dismissed), a short notice (a conversion
//! done, a parent recorded, a job cancelled) and one progress row per running job, each with its
//! own Cancel.
//!
//! Owns nothing: it draws [`Messages`] and pushes [`Command`]s. Must not import:
//! `app`, `menu`, `dialogs`, `table`, `inspector`, `metadata`, `pickle`, `code`, `lineage`,
//! `start`, `package`.

use std::path::PathBuf;

use crate::gui::command::Command;
use crate::gui::jobs::JobStatus;

/// What the strip shows.
pub struct Messages<'a> {
    /// The error, if any.
    pub error: Option<&'a str>,
    /// The notice, if any.
    pub notice: Option<&'a str>,
    /// The file a conversion just wrote ("Open it").
    pub converted: Option<&'a PathBuf>,
    /// The app's running jobs.
    pub running: &'a [JobStatus],
}

impl Messages<'_> {
    /// True when there is something to show.
    pub fn any(&self) -> bool {
        self.error.is_some() || self.notice.is_some() || !self.running.is_empty()
    }
}

/// Draws the strip.
pub fn messages_ui(ui: &mut egui::Ui, m: &Messages<'_>, commands: &mut Vec<Command>) {
    if let Some(error) = m.error {
        egui::Frame::new()
            .fill(ui.visuals().extreme_bg_color)
            .stroke(egui::Stroke::new(1.0, ui.visuals().error_fg_color))
            .inner_margin(8)
            .corner_radius(4)
            .show(ui, |ui| {
                ui.horizontal_wrapped(|ui| {
                    ui.colored_label(
                        ui.visuals().error_fg_color,
                        egui::RichText::new("Error").strong(),
                    );
                    ui.label(error);
                    if ui.button("Dismiss").clicked() {
                        commands.push(Command::DismissError);
                    }
                });
            });
    }
    if let Some(notice) = m.notice {
        ui.horizontal_wrapped(|ui| {
            ui.label(notice);
            if let Some(out) = m.converted {
                if ui.button("Open").clicked() {
                    commands.push(Command::Open(out.clone()));
                    commands.push(Command::DismissNotice);
                }
                if ui.button("Show in folder").clicked() {
                    commands.push(Command::Reveal(out.clone()));
                }
                if ui
                    .button("Undo")
                    .on_hover_text("Removes the file just written")
                    .clicked()
                {
                    commands.push(Command::UndoConvert(out.clone()));
                }
            }
            if ui.button("Dismiss").clicked() {
                commands.push(Command::DismissNotice);
            }
        });
    }
    for status in m.running {
        if crate::gui::widgets::job_row(ui, status) {
            commands.push(Command::Cancel(status.kind));
        }
    }
}
