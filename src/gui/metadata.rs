//! The metadata panel: `__metadata__` as a table with readable labels for known keys, JSON
//! values pretty-printed and collapsible, lineage fields linked to the lineage view, and the
//! facts of the file (path, sizes, shards) with "Show in folder".
//!
//! [`MetaEntry::all`] reads the metadata once, when the document is made (labels, parsed JSON);
//! [`metadata_ui`] only draws those entries and pushes [`Command`]s. Must not import: `app`.

use egui::{RichText, Ui};

use crate::format::Checkpoint;
use crate::gui::command::Command;
use crate::gui::tab::Tab;
use crate::output::human;

/// A readable label for a known key, if it is one.
pub fn key_label(key: &str) -> Option<String> {
    let fixed = match key {
        "format" => "Format of the source framework",
        "version" => "Version",
        "parent" => "Parent checkpoint",
        "parent_sha256" => "Parent SHA-256",
        "created" => "Created",
        "step" => "Training step",
        "epoch" => "Epoch",
        "global_step" => "Global step (Lightning)",
        "uuid" => "UUID",
        "parent_uuid" => "Parent UUID",
        "base_model" => "Base model (Hugging Face)",
        "ckptscope.source" => "Converted from",
        "ckptscope.source_sha256" => "Source SHA-256",
        "ckptscope.converted_at" => "Converted at",
        "ckptscope.version" => "Converted by ckptscope",
        "ckptscope.scan_verdict" => "Source scan verdict",
        "ckptscope.exported" => "Exported part of the source",
        "ckptscope.left_out" => "Tensors of the source left out",
        "ckptscope.skipped" => "Tensors that could not be read",
        "ss_sd_model_name" => "kohya: base model",
        "ss_sd_model_hash" => "kohya: base model hash (short)",
        "ss_new_sd_model_hash" => "kohya: base model SHA-256",
        "sshs_model_hash" => "kohya: this model's hash",
        "ss_steps" => "kohya: steps",
        "ss_epoch" => "kohya: epoch",
        "ss_learning_rate" => "kohya: learning rate",
        "ss_network_dim" => "kohya: network rank",
        "ss_network_alpha" => "kohya: network alpha",
        "ss_network_module" => "kohya: network module",
        "ss_training_started_at" => "kohya: training started (Unix time)",
        "ss_output_name" => "kohya: output name",
        _ => "",
    };
    if !fixed.is_empty() {
        return Some(fixed.to_string());
    }
    if let Some(rest) = key.strip_prefix("modelspec.") {
        return Some(format!("ModelSpec: {}", rest.replace('_', " ")));
    }
    if let Some(rest) = key.strip_prefix("ss_") {
        return Some(format!("kohya: {}", rest.replace('_', " ")));
    }
    None
}

const LINEAGE_KEYS: [&str; 8] = [
    "parent",
    "parent_sha256",
    "ckptscope.source",
    "ckptscope.source_sha256",
    "modelspec.merged_from",
    "ss_sd_model_name",
    "base_model",
    "parent_uuid",
];

/// One `__metadata__` entry as the panel shows it, prepared once per document.
#[derive(Clone, Debug, PartialEq)]
pub struct MetaEntry {
    /// The key.
    pub key: String,
    /// The value as stored.
    pub value: String,
    /// A readable label for a known key.
    pub label: Option<String>,
    /// The value parsed, when it is a JSON object or array.
    pub json: Option<serde_json::Value>,
    /// The key names a parent or a source: the panel links it to the lineage view.
    pub lineage: bool,
}

impl MetaEntry {
    /// The entries of `ckpt`'s metadata, in its order.
    pub fn all(ckpt: &Checkpoint) -> Vec<MetaEntry> {
        let gguf = ckpt.format == crate::Format::Gguf;
        ckpt.metadata
            .iter()
            .map(|(k, v)| {
                let trimmed = v.trim_start();
                let json = (trimmed.starts_with('{') || trimmed.starts_with('['))
                    .then(|| serde_json::from_str::<serde_json::Value>(v).ok())
                    .flatten();
                MetaEntry {
                    key: k.clone(),
                    value: v.clone(),
                    label: key_label(k)
                        .or_else(|| gguf.then(|| crate::format::gguf::key_label(k)).flatten()),
                    json,
                    lineage: LINEAGE_KEYS.contains(&k.as_str()),
                }
            })
            .collect()
    }
}

/// Draws the panel.
pub fn metadata_ui(
    ui: &mut Ui,
    ckpt: &Checkpoint,
    entries: &[MetaEntry],
    commands: &mut Vec<Command>,
    tab: &mut Tab,
) {
    let gguf = ckpt.format == crate::Format::Gguf;
    egui::ScrollArea::vertical().id_salt("metadata").auto_shrink([false, false]).show(ui, |ui| {
        ui.strong("File");
        egui::Grid::new("file-facts").num_columns(2).spacing([16.0, 3.0]).show(ui, |ui| {
            ui.weak("path");
            ui.horizontal(|ui| {
                ui.add(egui::Label::new(RichText::new(ckpt.path.display().to_string()).monospace()).wrap());
                if ui.small_button("Show in folder").clicked() {
                    commands.push(Command::Reveal(ckpt.path.clone()));
                }
                if ui.small_button("Copy path").clicked() {
                    ui.ctx().copy_text(ckpt.path.display().to_string());
                }
            });
            ui.end_row();
            ui.weak("format");
            ui.label(ckpt.format.label());
            ui.end_row();
            ui.weak("size on disk");
            ui.label(format!("{} ({} bytes)", human::bytes(ckpt.file_size), ckpt.file_size));
            ui.end_row();
            if ckpt.header_size > 0 {
                ui.weak("header");
                ui.label(if gguf {
                    format!("{} bytes of GGUF header", ckpt.header_size)
                } else {
                    format!("{} bytes of JSON", ckpt.header_size)
                });
                ui.end_row();
            }
            if ckpt.sources.len() > 1 {
                ui.weak("shards");
                ui.vertical(|ui| {
                    for s in &ckpt.sources {
                        ui.monospace(format!(
                            "{}  {}  {} tensors",
                            s.label(),
                            human::bytes(s.file_size),
                            s.tensor_count
                        ));
                    }
                });
                ui.end_row();
            }
        });
        ui.separator();
        if entries.is_empty() {
            ui.weak(if ckpt.pickle.is_some() {
                "Pickle files have no __metadata__; their non-tensor values are in the Scan & values tab."
            } else {
                "This file has no __metadata__."
            });
            return;
        }
        ui.strong(if gguf {
            format!("GGUF metadata ({} keys; long arrays summarised)", entries.len())
        } else {
            format!("__metadata__ ({} keys)", entries.len())
        });
        for (i, entry) in entries.iter().enumerate() {
            let (k, v) = (&entry.key, &entry.value);
            ui.add_space(2.0);
            ui.horizontal_wrapped(|ui| {
                match &entry.label {
                    Some(label) => {
                        ui.label(RichText::new(label).strong());
                        ui.weak(RichText::new(k).monospace().small());
                    }
                    None => {
                        ui.label(RichText::new(k).monospace().strong());
                    }
                }
                if entry.lineage && ui.small_button("Show in lineage").clicked() {
                    *tab = Tab::Lineage;
                }
            });
            ui.indent(("meta-value", i), |ui| match &entry.json {
                Some(value) => {
                    egui::CollapsingHeader::new(format!("JSON, {} characters", v.len()))
                        .id_salt(("meta-json", i))
                        .default_open(v.len() < 600)
                        .show(ui, |ui| {
                            crate::gui::widgets::json_tree(ui, value, ui.scope_id().with(("json", i)), 0);
                            if ui.small_button("Copy JSON").clicked() {
                                ui.ctx().copy_text(serde_json::to_string_pretty(value).unwrap_or_default());
                            }
                        });
                }
                None => {
                    ui.add(egui::Label::new(RichText::new(v).monospace()).wrap());
                }
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_have_labels() {
        assert_eq!(
            key_label("modelspec.title").as_deref(),
            Some("ModelSpec: title")
        );
        assert_eq!(
            key_label("ss_network_dim").as_deref(),
            Some("kohya: network rank")
        );
        assert_eq!(
            key_label("ss_custom_thing").as_deref(),
            Some("kohya: custom thing")
        );
        assert_eq!(key_label("parent").as_deref(), Some("Parent checkpoint"));
        assert_eq!(key_label("whatever"), None);
    }
}
