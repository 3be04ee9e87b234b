//! The tensor list: a virtualised table (only visible rows are laid out, so 100,000 tensors
//! scroll like ten), sortable by every column, filtered by substring or glob, or shown as a tree
//! of name prefixes (`model.layers.3.mlp…`).
//!
//! Owns [`TableState`]: filter, sort and the rows they select, recomputed only when they
//! change. Must not import: `app`, `command`, `jobs`.
//!
//! `clippy::indexing_slicing` is allowed here: row indexes come from the table's own filtered row
//! list.

#![allow(clippy::indexing_slicing)]

use std::collections::HashMap;

use egui::{RichText, Ui};
use egui_extras::{Column, TableBuilder};

use crate::format::{Checkpoint, Layout, TensorEntry};
use crate::gui::widgets::filter_match;
use crate::output::human;

/// Columns the table sorts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// Order in the file.
    File,
    /// Name.
    Name,
    /// Dtype.
    Dtype,
    /// Shape (by rank, then dims).
    Shape,
    /// Element count.
    Elements,
    /// Packed bytes.
    Bytes,
    /// File offset.
    Offset,
}

/// Filter, sort and the rows they select.
pub struct TableState {
    /// Filter text (substring or glob).
    pub filter: String,
    /// Sort column and direction (true: ascending).
    pub sort: (SortKey, bool),
    applied: (String, SortKey, bool),
    /// Indices of the shown tensors, in shown order.
    pub rows: Vec<usize>,
    tree: Option<Tree>,
    scroll_to: Option<usize>,
    /// Some tensor is a strided view of a storage (PyTorch files): show the storage column.
    strided: bool,
}

impl TableState {
    /// All tensors, in file order.
    pub fn new(ckpt: &Checkpoint) -> TableState {
        TableState {
            filter: String::new(),
            sort: (SortKey::File, true),
            applied: (String::new(), SortKey::File, true),
            rows: (0..ckpt.tensors.len()).collect(),
            tree: None,
            scroll_to: None,
            strided: ckpt.tensors.iter().any(|t| t.storage.is_some()),
        }
    }

    /// Recomputes the rows if the filter or the sort changed.
    fn refresh(&mut self, ckpt: &Checkpoint) {
        let wanted = (self.filter.clone(), self.sort.0, self.sort.1);
        if wanted == self.applied {
            return;
        }
        let t = &ckpt.tensors;
        let mut rows: Vec<usize> = (0..t.len())
            .filter(|&i| filter_match(&self.filter, &t[i].name))
            .collect();
        let key = self.sort.0;
        rows.sort_by(|&a, &b| {
            let (x, y) = (&t[a], &t[b]);
            let o = match key {
                SortKey::File => a.cmp(&b),
                SortKey::Name => x.name.cmp(&y.name),
                SortKey::Dtype => (x.dtype, x.quant).cmp(&(y.dtype, y.quant)),
                SortKey::Shape => x
                    .shape
                    .len()
                    .cmp(&y.shape.len())
                    .then(x.shape.cmp(&y.shape)),
                SortKey::Elements => x.elements().cmp(&y.elements()),
                SortKey::Bytes => x.byte_len().cmp(&y.byte_len()),
                SortKey::Offset => (x.source, x.file_offset).cmp(&(y.source, y.file_offset)),
            };
            o.then(a.cmp(&b))
        });
        if !self.sort.1 {
            rows.reverse();
        }
        self.rows = rows;
        self.tree = None;
        self.applied = wanted;
    }
}

/// Draws the list; returns the tensor the user selected this frame.
pub fn table_ui(
    ui: &mut Ui,
    ckpt: &Checkpoint,
    st: &mut TableState,
    selected: Option<usize>,
    tree_view: bool,
    focus_filter: bool,
) -> Option<usize> {
    let mut picked = None;
    ui.horizontal(|ui| {
        let label = ui.label("Filter");
        let filter = ui
            .add(
                egui::TextEdit::singleline(&mut st.filter)
                    .hint_text("substring or glob: layers.*.mlp.*")
                    .desired_width(ui.available_width() - 110.0),
            )
            .labelled_by(label.id);
        if focus_filter {
            filter.request_focus();
        }
        if filter.has_focus() && ui.input(|i| i.key_pressed(egui::Key::Escape)) {
            st.filter.clear();
        }
        ui.weak(format!("{} of {}", st.rows.len(), ckpt.tensors.len()));
    });
    st.refresh(ckpt);

    // Arrow keys move the selection when no text field has focus.
    let (down, up) = ui.input(|i| {
        (
            i.key_pressed(egui::Key::ArrowDown),
            i.key_pressed(egui::Key::ArrowUp),
        )
    });
    if (down || up) && ui.memory(|m| m.focused().is_none()) && !st.rows.is_empty() && !tree_view {
        let pos = selected.and_then(|s| st.rows.iter().position(|&r| r == s));
        let next = match (pos, down, up) {
            (None, true, _) => Some(0),
            (Some(p), true, _) => Some((p + 1).min(st.rows.len() - 1)),
            (Some(p), false, true) => Some(p.saturating_sub(1)),
            _ => None,
        };
        if let Some(n) = next {
            picked = Some(st.rows[n]);
            st.scroll_to = Some(n);
        }
    }

    if tree_view {
        if st.tree.is_none() {
            st.tree = Some(Tree::build(ckpt, &st.rows));
        }
        if let Some(tree) = &st.tree {
            egui::ScrollArea::vertical()
                .id_salt("tensor-tree")
                .auto_shrink([false, false])
                .show(ui, |ui| {
                    if let Some(i) = tree_ui(ui, ckpt, tree, selected, 0) {
                        picked = Some(i);
                    }
                });
        }
        return picked;
    }

    let sharded = ckpt.sources.len() > 1;
    let strided = st.strided;
    ui.scope(|ui| {
        ui.style_mut().interaction.selectable_labels = false;
        ui.style_mut().wrap_mode = Some(egui::TextWrapMode::Truncate);
        let mut table = TableBuilder::new(ui)
            .id_salt("tensor-table")
            .striped(true)
            .sense(egui::Sense::click())
            .resizable(true)
            .column(Column::initial(220.0).at_least(80.0).clip(true))
            .column(Column::initial(52.0).at_least(36.0))
            .column(Column::initial(90.0).at_least(40.0).clip(true))
            .column(Column::initial(64.0).at_least(40.0))
            .column(Column::initial(64.0).at_least(40.0))
            .column(Column::initial(124.0).at_least(40.0).clip(true));
        if sharded || strided {
            table = table.column(Column::initial(140.0).at_least(40.0).clip(true));
        }
        if let Some(row) = st.scroll_to.take() {
            table = table.scroll_to_row(row, None);
        }
        let mut header_click = None;
        table
            .header(22.0, |mut header| {
                let mut col =
                    |header: &mut egui_extras::TableRow<'_, '_>, key: SortKey, label: &str| {
                        header.col(|ui| {
                            let arrow = if st.sort.0 == key {
                                if st.sort.1 { " ▲" } else { " ▼" }
                            } else {
                                ""
                            };
                            if ui
                                .add(
                                    egui::Button::new(
                                        RichText::new(format!("{label}{arrow}"))
                                            .monospace()
                                            .strong(),
                                    )
                                    .frame(false),
                                )
                                .clicked()
                            {
                                header_click = Some(key);
                            }
                        });
                    };
                col(&mut header, SortKey::Name, "name");
                col(&mut header, SortKey::Dtype, "dtype");
                col(&mut header, SortKey::Shape, "shape");
                col(&mut header, SortKey::Elements, "elements");
                col(&mut header, SortKey::Bytes, "bytes");
                col(
                    &mut header,
                    SortKey::Offset,
                    if strided {
                        "file range"
                    } else {
                        "data offsets"
                    },
                );
                if sharded {
                    header.col(|ui| {
                        ui.strong("shard");
                    });
                } else if strided {
                    header.col(|ui| {
                        ui.strong("storage");
                    });
                }
            })
            .body(|body| {
                body.rows(18.0, st.rows.len(), |mut row| {
                    let i = st.rows[row.index()];
                    let t = &ckpt.tensors[i];
                    row.set_selected(selected == Some(i));
                    row.col(|ui| {
                        ui.add(egui::Label::new(RichText::new(&t.name).monospace()).truncate());
                    });
                    row.col(|ui| {
                        ui.monospace(t.type_name());
                    });
                    row.col(|ui| {
                        ui.monospace(human::shape(&t.shape));
                    });
                    row.col(|ui| {
                        ui.label(human::count(t.elements()));
                    });
                    row.col(|ui| {
                        ui.label(human::bytes(t.byte_len()));
                    });
                    row.col(|ui| {
                        ui.monospace(format!("[{}, {}]", t.data_offsets[0], t.data_offsets[1]));
                    });
                    if sharded {
                        row.col(|ui| {
                            ui.label(shard_name(ckpt, t));
                        });
                    } else if strided {
                        row.col(|ui| {
                            ui.monospace(storage_text(t));
                        });
                    }
                    let response = row.response();
                    if response.clicked() {
                        picked = Some(i);
                    }
                    response.context_menu(|ui| {
                        if ui.button("Copy name").clicked() {
                            ui.ctx().copy_text(t.name.clone());
                            ui.close();
                        }
                        if ui.button("Copy row").clicked() {
                            ui.ctx().copy_text(row_text(ckpt, t));
                            ui.close();
                        }
                        if ui.button("Copy shape").clicked() {
                            ui.ctx().copy_text(human::shape(&t.shape));
                            ui.close();
                        }
                    });
                });
            });
        if let Some(key) = header_click {
            st.sort = if st.sort.0 == key {
                (key, !st.sort.1)
            } else {
                (key, true)
            };
        }
    });
    picked
}

fn shard_name(ckpt: &Checkpoint, t: &TensorEntry) -> String {
    ckpt.sources
        .get(t.source)
        .map(|s| s.label())
        .unwrap_or_default()
}

fn storage_text(t: &TensorEntry) -> String {
    let mut s = t.storage.clone().unwrap_or_default();
    if let Layout::Strided { offset, strides } = &t.layout {
        if *offset != 0 {
            s.push_str(&format!(" +{offset}"));
        }
        s.push_str(&format!(" {}", human::shape(strides)));
    }
    if let Some(device) = t.device.as_deref().filter(|d| *d != "cpu") {
        s.push_str(&format!(" {device}"));
    }
    s
}

/// Tab-separated row for the clipboard.
pub fn row_text(ckpt: &Checkpoint, t: &TensorEntry) -> String {
    let mut cells = vec![
        t.name.clone(),
        t.type_name().to_string(),
        human::shape(&t.shape),
        t.elements().to_string(),
        t.byte_len().to_string(),
        format!("[{}, {}]", t.data_offsets[0], t.data_offsets[1]),
    ];
    if ckpt.sources.len() > 1 {
        cells.push(shard_name(ckpt, t));
    }
    cells.join("\t")
}

/// Tensors grouped by dotted name prefix.
#[derive(Default)]
pub struct Tree {
    children: Vec<(String, Tree)>,
    index: HashMap<String, usize>,
    leaves: Vec<usize>,
    tensors: usize,
    elements: u64,
}

impl Tree {
    fn build(ckpt: &Checkpoint, rows: &[usize]) -> Tree {
        let mut root = Tree::default();
        for &i in rows {
            let t = &ckpt.tensors[i];
            let parts: Vec<&str> = t.name.split('.').collect();
            let mut node = &mut root;
            node.tensors += 1;
            node.elements += t.elements();
            for part in &parts[..parts.len().saturating_sub(1)] {
                let at = match node.index.get(*part) {
                    Some(&at) => at,
                    None => {
                        node.children.push((part.to_string(), Tree::default()));
                        node.index.insert(part.to_string(), node.children.len() - 1);
                        node.children.len() - 1
                    }
                };
                node = &mut node.children[at].1;
                node.tensors += 1;
                node.elements += t.elements();
            }
            node.leaves.push(i);
        }
        root
    }
}

const MAX_LEAVES_SHOWN: usize = 2000;

fn tree_ui(
    ui: &mut Ui,
    ckpt: &Checkpoint,
    tree: &Tree,
    selected: Option<usize>,
    depth: usize,
) -> Option<usize> {
    let mut picked = None;
    for (name, child) in &tree.children {
        let header = format!(
            "{name}  ·  {} tensors, {} parameters",
            child.tensors,
            human::count(child.elements)
        );
        egui::CollapsingHeader::new(RichText::new(header).monospace())
            .id_salt((depth, name, child.tensors, child.leaves.first()))
            .default_open(depth == 0 && tree.children.len() <= 3)
            .show(ui, |ui| {
                if let Some(i) = tree_ui(ui, ckpt, child, selected, depth + 1) {
                    picked = Some(i);
                }
            });
    }
    for &i in tree.leaves.iter().take(MAX_LEAVES_SHOWN) {
        let t = &ckpt.tensors[i];
        let last = t.name.rsplit('.').next().unwrap_or(&t.name);
        let text = format!("{last}  {} {}", t.type_name(), human::shape(&t.shape));
        if ui
            .selectable_label(selected == Some(i), RichText::new(text).monospace())
            .clicked()
        {
            picked = Some(i);
        }
    }
    if tree.leaves.len() > MAX_LEAVES_SHOWN {
        ui.weak(format!(
            "… {} more here: use the table view or the filter",
            tree.leaves.len() - MAX_LEAVES_SHOWN
        ));
    }
    picked
}
