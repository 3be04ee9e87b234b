//! The menu bar (File, View, Help) and the keyboard shortcuts that mirror it.
//!
//! Owns nothing but drawing: it reads [`MenuFacts`] and the persisted view switches, and pushes
//! [`Command`]s. Must not import: `app`, `jobs`,
//! `dialogs`, `messages`, `table`, `inspector`, `metadata`, `pickle`, `code`, `lineage`, `start`,
//! `package`.

use std::path::PathBuf;

use crate::gui::command::{Command, EXPORT_HERE_HINT};
use crate::gui::state::{Persisted, ThemeChoice};

/// What the menus need to know about the window.
#[derive(Clone, Debug, Default)]
pub struct MenuFacts {
    /// The open file, if any.
    pub current: Option<PathBuf>,
    /// The open file is a pickle (it can be converted).
    pub is_pickle: bool,
    /// The open file is a safetensors file (a parent can be recorded).
    pub is_safetensors: bool,
    /// The open file is a safetensors file or a sharded safetensors model (it can be exported
    /// for PyTorch).
    pub can_export: bool,
    /// The compare view is shown.
    pub comparing: bool,
}

/// What the shortcuts asked that is not a command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shortcuts {
    /// Ctrl+F: put the cursor in the tensor filter.
    pub focus_filter: bool,
}

/// Reads Ctrl+O, Ctrl+F and Ctrl+W.
pub fn shortcuts(ui: &egui::Ui, facts: &MenuFacts, commands: &mut Vec<Command>) -> Shortcuts {
    use egui::{Key, KeyboardShortcut, Modifiers};
    const OPEN: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::O);
    const FIND: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::F);
    const CLOSE: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::W);
    let mut asked = Shortcuts::default();
    if ui.input_mut(|i| i.consume_shortcut(&OPEN)) {
        commands.push(Command::OpenDialog);
    }
    if ui.input_mut(|i| i.consume_shortcut(&FIND)) {
        asked.focus_filter = true;
    }
    if ui.input_mut(|i| i.consume_shortcut(&CLOSE)) {
        commands.push(if facts.comparing {
            Command::LeaveCompare
        } else {
            Command::Close
        });
    }
    asked
}

/// Draws the menu bar.
pub fn menu_ui(
    ui: &mut egui::Ui,
    state: &mut Persisted,
    facts: &MenuFacts,
    commands: &mut Vec<Command>,
) {
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button("File", |ui| file_menu(ui, state, facts, commands));
        ui.menu_button("View", |ui| {
            ui.checkbox(&mut state.tree_view, "Tensors as a tree of name prefixes");
            ui.checkbox(&mut state.log_counts, "Log-scaled histogram counts");
            ui.separator();
            let mut theme = state.theme;
            ui.radio_value(&mut theme, ThemeChoice::System, "System theme");
            ui.radio_value(&mut theme, ThemeChoice::Dark, "Dark theme");
            ui.radio_value(&mut theme, ThemeChoice::Light, "Light theme");
            if theme != state.theme {
                commands.push(Command::SetTheme(theme));
            }
        });
        ui.menu_button("Help", |ui| {
            ui.label(format!("ckptscope {}", env!("CARGO_PKG_VERSION")));
            ui.label("Ctrl+O open · Ctrl+F filter tensors · Ctrl+W close");
            ui.label("Drop a file to open it; drop a second one to compare.");
            ui.label("Nothing in a pickle file is ever executed.");
        });
    });
}

fn file_menu(ui: &mut egui::Ui, state: &Persisted, facts: &MenuFacts, commands: &mut Vec<Command>) {
    if ui
        .add(egui::Button::new("Open…").shortcut_text("Ctrl+O"))
        .clicked()
    {
        commands.push(Command::OpenDialog);
        ui.close();
    }
    if ui
        .button("Open folder…")
        .on_hover_text("A model folder or training run, seen as one package")
        .clicked()
    {
        commands.push(Command::OpenFolderDialog);
        ui.close();
    }
    if ui.button("Open demo checkpoint").clicked() {
        commands.push(Command::OpenDemo);
        ui.close();
    }
    ui.menu_button("Open recent", |ui| {
        if state.recent.is_empty() {
            ui.weak("no recent files");
        }
        for p in &state.recent {
            if ui.button(p.display().to_string()).clicked() {
                commands.push(Command::Open(p.clone()));
                ui.close();
            }
        }
    });
    ui.separator();
    if ui
        .add_enabled(facts.current.is_some(), egui::Button::new("Compare with…"))
        .clicked()
    {
        commands.push(Command::CompareDialog);
        ui.close();
    }
    if let Some(current) = &facts.current {
        ui.menu_button("Compare with recent", |ui| {
            for p in &state.recent {
                if p != current && ui.button(p.display().to_string()).clicked() {
                    commands.push(Command::Compare {
                        a: current.clone(),
                        b: p.clone(),
                    });
                    ui.close();
                }
            }
        });
    }
    if ui
        .add_enabled(
            facts.is_pickle,
            egui::Button::new("Convert to safetensors…"),
        )
        .clicked()
    {
        commands.push(Command::ConvertDialog);
        ui.close();
    }
    if ui
        .add_enabled(facts.can_export, egui::Button::new("Export for PyTorch"))
        .on_hover_text(EXPORT_HERE_HINT)
        .clicked()
    {
        commands.push(Command::ExportHere);
        ui.close();
    }
    if ui
        .add_enabled(facts.can_export, egui::Button::new("Export for PyTorch…"))
        .clicked()
    {
        commands.push(Command::ExportDialog);
        ui.close();
    }
    if ui
        .add_enabled(facts.is_safetensors, egui::Button::new("Set parent…"))
        .clicked()
    {
        commands.push(Command::SetParentDialog);
        ui.close();
    }
    ui.separator();
    if ui
        .add(egui::Button::new("Close").shortcut_text("Ctrl+W"))
        .clicked()
    {
        commands.push(Command::Close);
        ui.close();
    }
    if ui.button("Quit").clicked() {
        ui.send_viewport_cmd(egui::ViewportCommand::Close);
    }
}
