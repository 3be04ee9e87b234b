//! One open checkpoint: its view state and its layout: summary and pickle banner on top, the
//! tensor list on the left, the inspector, metadata, lineage, scan and (TorchScript) code tabs in
//! the middle.
//!
//! Owns [`Doc`]: the checkpoint, the tensor list's filter and sort, the selection, the tab, the
//! inspector, lineage and code state, and what is computed once per document (summary line,
//! metadata entries). It lays the views out and routes cancels and outcomes of its jobs
//! (statistics, heatmap, lineage) by [`JobKind`]. Must not import: `app`, `menu`,
//! `dialogs`.

use std::sync::Arc;

use crate::format::Checkpoint;
use crate::gui::command::Command;
use crate::gui::inspector::{Inspector, inspector_ui};
use crate::gui::jobs::{Ended, JobKind, JobStatus};
use crate::gui::lineage::{LineageView, lineage_ui};
use crate::gui::metadata::MetaEntry;
use crate::gui::state::Persisted;
pub use crate::gui::tab::Tab;
use crate::gui::table::{TableState, table_ui};
use crate::pickle::policy::{Risk, Verdict};

/// An open checkpoint.
pub struct Doc {
    /// The checkpoint.
    pub ckpt: Arc<Checkpoint>,
    /// Tensor list state.
    pub table: TableState,
    /// Selected tensor (index into `ckpt.tensors`).
    pub selected: Option<usize>,
    /// The inspector of the selected tensor.
    pub inspector: Inspector,
    /// Lineage, computed when its tab is first shown.
    pub lineage: LineageView,
    /// The Code tab's state (TorchScript archives).
    pub code: crate::gui::code::CodeView,
    /// Shown tab.
    pub tab: Tab,
    /// The summary line (computed once: it walks every tensor).
    summary: String,
    /// The metadata entries, labelled and parsed once.
    metadata: Vec<MetaEntry>,
}

impl Doc {
    /// State for a freshly opened checkpoint.
    pub fn new(ckpt: Arc<Checkpoint>) -> Doc {
        let tab = Doc::first_tab(&ckpt);
        Doc {
            table: TableState::new(&ckpt),
            // Something to look at at once: the first tensor.
            selected: (!ckpt.tensors.is_empty()).then_some(0),
            inspector: Inspector::default(),
            lineage: LineageView::default(),
            code: Default::default(),
            tab,
            summary: crate::output::info::summary_line(&ckpt),
            metadata: MetaEntry::all(&ckpt),
            ckpt,
        }
    }

    /// Starts and collects background work the view state asks for.
    pub fn update(&mut self, ctx: &egui::Context, sync: bool) {
        self.inspector.update(&self.ckpt, self.selected, ctx, sync);
        if self.tab == Tab::Lineage {
            self.lineage.update(&self.ckpt.path, ctx, sync);
        }
    }

    /// Cancels this document's job of `kind` (statistics, heatmap, values, lineage): its status, if
    /// one ran.
    pub fn cancel(&mut self, kind: JobKind) -> Option<JobStatus> {
        match kind {
            JobKind::Stats | JobKind::Heatmap | JobKind::Values => self.inspector.cancel(kind),
            JobKind::Lineage => self.lineage.cancel(),
            _ => None,
        }
    }

    /// How this document's last job of `kind` ended.
    pub fn ended(&self, kind: JobKind) -> Option<&Ended> {
        match kind {
            JobKind::Stats | JobKind::Heatmap | JobKind::Values => self.inspector.ended(kind),
            JobKind::Lineage => self.lineage.ended(),
            _ => None,
        }
    }

    /// True while a job runs.
    pub fn busy(&self) -> bool {
        self.inspector.busy() || self.lineage.busy()
    }
}

impl Doc {
    /// The tab shown first for this file.
    pub fn first_tab(ckpt: &Checkpoint) -> Tab {
        match &ckpt.pickle {
            // TorchScript whose code reaches the system: the flagged lines first.
            Some(p)
                if p.torchscript
                    .as_ref()
                    .is_some_and(|c| c.flagged.iter().any(|f| f.risk == Risk::Dangerous)) =>
            {
                Tab::Code
            }
            // A benign TorchScript archive is suspicious only for being a program: its tensors
            // come first, its code is one tab away.
            Some(p) if ckpt.tensors.is_empty() || p.read_verdict() != Verdict::Safe => Tab::Scan,
            _ => Tab::Inspector,
        }
    }
}

/// Draws the explorer of one checkpoint.
pub fn doc_ui(
    ui: &mut egui::Ui,
    doc: &mut Doc,
    state: &mut Persisted,
    commands: &mut Vec<Command>,
    focus_filter: bool,
) {
    egui::Panel::top("summary").show(ui, |ui| {
        ui.add_space(2.0);
        ui.horizontal_wrapped(|ui| {
            ui.label(
                egui::RichText::new(crate::gui::widgets::display_name(&doc.ckpt.path)).strong(),
            );
            ui.label(&doc.summary);
            if matches!(
                doc.ckpt.format,
                crate::Format::Safetensors | crate::Format::SafetensorsSharded
            ) {
                export_buttons(ui, commands);
            }
        });
        for f in &doc.ckpt.issues {
            let color = match f.severity {
                crate::format::Severity::Error => ui.visuals().error_fg_color,
                crate::format::Severity::Warning => ui.visuals().warn_fg_color,
                crate::format::Severity::Info => ui.visuals().weak_text_color(),
            };
            ui.colored_label(color, &f.message);
        }
        if let Some(report) = &doc.ckpt.pickle {
            crate::gui::pickle::banner_ui(ui, report, commands, &mut doc.tab);
        }
        ui.add_space(2.0);
    });

    egui::Panel::left("tensors")
        .resizable(true)
        .default_size(520.0)
        .size_range(260.0..=1400.0)
        .show(ui, |ui| {
            if let Some(i) = table_ui(
                ui,
                &doc.ckpt,
                &mut doc.table,
                doc.selected,
                state.tree_view,
                focus_filter,
            ) {
                doc.selected = Some(i);
                doc.tab = Tab::Inspector;
            }
        });

    egui::CentralPanel::default().show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.selectable_value(&mut doc.tab, Tab::Inspector, "Inspector");
            ui.selectable_value(&mut doc.tab, Tab::Metadata, "Metadata");
            ui.selectable_value(&mut doc.tab, Tab::Lineage, "Lineage");
            if doc.ckpt.pickle.is_some() {
                ui.selectable_value(&mut doc.tab, Tab::Scan, "Scan & values");
            }
            if torchscript(&doc.ckpt).is_some() {
                ui.selectable_value(&mut doc.tab, Tab::Code, "Code");
            }
        });
        ui.separator();
        match doc.tab {
            Tab::Inspector => match doc.selected.and_then(|i| doc.ckpt.tensors.get(i)) {
                Some(t) => inspector_ui(ui, t, &mut doc.inspector, state, commands),
                None => {
                    ui.add_space(20.0);
                    ui.weak(if doc.ckpt.tensors.is_empty() {
                        "This checkpoint lists no tensors."
                    } else {
                        "Select a tensor to see its statistics, histogram, values and heatmap."
                    });
                }
            },
            Tab::Metadata => crate::gui::metadata::metadata_ui(
                ui,
                &doc.ckpt,
                &doc.metadata,
                commands,
                &mut doc.tab,
            ),
            Tab::Lineage => lineage_ui(ui, &doc.ckpt.path, &mut doc.lineage, commands),
            Tab::Scan => match &doc.ckpt.pickle {
                Some(report) => crate::gui::pickle::scan_ui(ui, report, commands),
                None => {
                    doc.tab = Tab::Inspector;
                }
            },
            Tab::Code => match torchscript(&doc.ckpt) {
                Some(code) => crate::gui::code::code_ui(ui, code, &mut doc.code),
                None => doc.tab = Tab::Inspector,
            },
        }
    });
}

/// "Export for PyTorch" (beside the file, never replacing one) and "Export for PyTorch…" (a
/// save dialog), for safetensors files: where the pickle banner offers its conversion.
fn export_buttons(ui: &mut egui::Ui, commands: &mut Vec<Command>) {
    ui.separator();
    if ui
        .button("Export for PyTorch")
        .on_hover_text(crate::gui::command::EXPORT_HERE_HINT)
        .clicked()
    {
        commands.push(Command::ExportHere);
    }
    if ui
        .button("Export for PyTorch…")
        .on_hover_text("Choose where to write the PyTorch checkpoint")
        .clicked()
    {
        commands.push(Command::ExportDialog);
    }
}

/// The program of a TorchScript archive.
fn torchscript(ckpt: &Checkpoint) -> Option<&crate::pickle::torchscript::Code> {
    ckpt.pickle.as_ref()?.torchscript.as_ref()
}
