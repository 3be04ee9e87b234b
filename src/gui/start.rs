//! The start screen: open, demo, drop zone and recent files.
//!
//! A pure view: it reads the recent files as the app checked them ([`RecentFile`]) and pushes
//! [`Command`]s. Must not import: `app` (nor touch the
//! file system).

use egui::{RichText, Ui};

use crate::gui::command::Command;
use crate::gui::state::RecentFile;

/// Draws the start screen.
pub fn start_ui(ui: &mut Ui, recent: &[RecentFile], opening: bool, commands: &mut Vec<Command>) {
    ui.vertical_centered(|ui| {
        ui.add_space(36.0);
        ui.label(RichText::new("ckptscope").size(30.0).strong());
        ui.label("Explore, scan, convert and compare ML checkpoints. Nothing in a file is ever executed.");
        ui.add_space(16.0);
        ui.horizontal(|ui| {
            let width = 3.0 * 190.0 + 2.0 * ui.spacing().item_spacing.x;
            ui.add_space((ui.available_width() - width).max(0.0) / 2.0);
            if ui.add_sized([190.0, 34.0], egui::Button::new("Open checkpoint…")).clicked() {
                commands.push(Command::OpenDialog);
            }
            if ui.add_sized([190.0, 34.0], egui::Button::new("Open folder…")).on_hover_text("A model folder or training run, seen as one package").clicked() {
                commands.push(Command::OpenFolderDialog);
            }
            if ui.add_sized([190.0, 34.0], egui::Button::new("Open demo checkpoint")).clicked() {
                commands.push(Command::OpenDemo);
            }
        });
        ui.add_space(16.0);
        let hovering = ui.input(|i| !i.raw.hovered_files.is_empty());
        let stroke = if hovering { ui.visuals().selection.stroke } else { ui.visuals().widgets.noninteractive.bg_stroke };
        egui::Frame::new()
            .stroke(egui::Stroke::new(if hovering { 2.0 } else { 1.0 }, stroke.color))
            .corner_radius(8)
            .inner_margin(24)
            .show(ui, |ui| {
                ui.set_width(420.0);
                ui.vertical_centered(|ui| {
                    ui.label(if hovering { "Drop to open" } else { "Drop a checkpoint or a model folder here, or two checkpoints to compare them" });
                    ui.weak(crate::format::registry::shown_names());
                });
            });
        if opening {
            ui.add_space(8.0);
            ui.spinner();
        }
        ui.add_space(20.0);
        if !recent.is_empty() {
            ui.label(RichText::new("Recent files").strong());
            for RecentFile { path: p, exists } in recent {
                ui.horizontal(|ui| {
                    let width = 560.0f32.min(ui.available_width());
                    ui.add_space((ui.available_width() - width).max(0.0) / 2.0);
                    let exists = *exists;
                    let text = p.display().to_string();
                    let button = egui::Button::new(if exists { RichText::new(text) } else { RichText::new(text).weak().strikethrough() });
                    if ui.add_enabled(exists, button).on_disabled_hover_text("This file is gone").clicked() {
                        commands.push(Command::Open(p.clone()));
                    }
                    if ui.small_button("Forget").clicked() {
                        commands.push(Command::ForgetRecent(p.clone()));
                    }
                });
            }
        }
    });
}
