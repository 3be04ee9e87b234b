//! The lineage view: the family of the open checkpoint as a DAG, parents above children.
//!
//! Nodes are laid out in layers by their longest distance from a root, arrows go from each child
//! up to its parents, the open file is outlined. Cards are buttons: click to select, double-click
//! to open; a selected node shows its facts and offers "Compare with parent".
//!
//! Owns [`LineageView`]: the slot of the lineage scan (a job), the graph it gave and the node
//! selected. The view opens and compares through [`Command`]s and cancels through
//! [`Command::Cancel`]. Must not import: `app`, `doc`.
//!
//! `clippy::indexing_slicing` is allowed here: graph node and layer indexes come from the graph
//! itself.

#![allow(clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use egui::{Color32, RichText, Ui, pos2, vec2};

use crate::gui::command::Command;
use crate::gui::jobs::{Ended, Job, JobError, JobKind, JobStatus, Slot};
use crate::lineage::{self, Graph, LineageOptions};

/// State of the view.
#[derive(Default)]
pub struct LineageView {
    for_path: Option<PathBuf>,
    job: Slot<Graph>,
    /// The graph, once computed.
    pub graph: Option<Graph>,
    error: Option<String>,
    selected: Option<usize>,
    hash: bool,
    /// Where hashes are remembered.
    pub cache: crate::hash::CacheDir,
}

impl LineageView {
    /// Computes the family of `path` when it is first shown (headers only: fast).
    pub fn update(&mut self, path: &Path, ctx: &egui::Context, sync: bool) {
        if let Some(result) = self.job.take() {
            match result {
                Ok(g) => {
                    self.selected = g.find(path);
                    self.graph = Some(g);
                }
                Err(JobError::Cancelled) => {}
                Err(e) => self.error = Some(e.to_string()),
            }
        }
        if self.for_path.as_deref() == Some(path) || self.job.running() {
            return;
        }
        self.for_path = Some(path.to_path_buf());
        self.error = None;
        let p = path.to_path_buf();
        let hash = self.hash;
        let cache = self.cache.clone();
        let label = crate::gui::widgets::display_name(path);
        self.job.start(Job::spawn(
            ctx,
            JobKind::Lineage,
            label,
            sync,
            move |progress| {
                Ok(lineage::family(
                    &p,
                    &LineageOptions {
                        extra: Vec::new(),
                        hash,
                        cache,
                    },
                    progress,
                )?)
            },
        ));
        if sync {
            self.update(path, ctx, sync);
        }
    }

    /// Stops the scan; the last graph stays shown. Its status, if one ran.
    pub fn cancel(&mut self) -> Option<JobStatus> {
        self.job.cancel()
    }

    /// How the last scan ended.
    pub fn ended(&self) -> Option<&Ended> {
        self.job.ended()
    }

    /// True while scanning.
    pub fn busy(&self) -> bool {
        self.job.running()
    }
}

const CARD: egui::Vec2 = vec2(230.0, 58.0);
const GAP: egui::Vec2 = vec2(28.0, 46.0);

/// Layer of each node: 0 for roots (no parents), else one more than its deepest parent.
pub fn layers(g: &Graph) -> Vec<usize> {
    let n = g.nodes.len();
    let mut layer = vec![0usize; n];
    // Relaxation, bounded by the node count (guards against cycles in hand-edited metadata).
    for _ in 0..n {
        let mut changed = false;
        for e in &g.edges {
            if layer[e.child] < layer[e.parent] + 1 && layer[e.parent] < n {
                layer[e.child] = layer[e.parent] + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    layer
}

/// Draws the view.
pub fn lineage_ui(ui: &mut Ui, path: &Path, st: &mut LineageView, commands: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        ui.label("Parents come from metadata: ckptscope, ModelSpec, kohya, Hugging Face/PEFT configs, uuids.");
        if ui
            .checkbox(&mut st.hash, "verify hashes")
            .on_hover_text("Hash the files of this folder (once, then cached) to resolve parents named by SHA-256")
            .changed()
        {
            st.for_path = None;
        }
        if ui.button("Rescan").clicked() {
            st.for_path = None;
        }
        if let Some(status) = st.job.status()
            && crate::gui::widgets::job_row(ui, &status)
        {
            commands.push(Command::Cancel(JobKind::Lineage));
        }
    });
    if let Some(e) = &st.error {
        ui.colored_label(ui.visuals().error_fg_color, e);
    }
    let Some(g) = &st.graph else { return };
    if g.edges.is_empty() {
        ui.label("No parent is recorded for the checkpoints in this folder. Use File > Set parent… to record one.");
    }
    let layer = layers(g);
    let depth = layer.iter().copied().max().unwrap_or(0) + 1;
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); depth];
    for (i, &l) in layer.iter().enumerate() {
        rows[l].push(i);
    }
    for row in &mut rows {
        row.sort_by(|&a, &b| g.nodes[a].name.cmp(&g.nodes[b].name));
    }
    let widest = rows.iter().map(Vec::len).max().unwrap_or(1);
    let size = vec2(
        widest as f32 * (CARD.x + GAP.x) + GAP.x,
        depth as f32 * (CARD.y + GAP.y) + GAP.y,
    );
    let current = g.find(path);
    let mut clicked = None;
    let mut open = None;
    egui::ScrollArea::both()
        .id_salt("lineage-graph")
        .max_height(ui.available_height() * 0.6)
        .show(ui, |ui| {
            let (rect, _) = ui.allocate_exact_size(size, egui::Sense::hover());
            let mut pos = vec![egui::Rect::NOTHING; g.nodes.len()];
            for (l, row) in rows.iter().enumerate() {
                let offset = (widest - row.len()) as f32 * (CARD.x + GAP.x) / 2.0;
                for (k, &i) in row.iter().enumerate() {
                    let min = rect.min
                        + vec2(
                            GAP.x + offset + k as f32 * (CARD.x + GAP.x),
                            GAP.y / 2.0 + l as f32 * (CARD.y + GAP.y),
                        );
                    pos[i] = egui::Rect::from_min_size(min, CARD);
                }
            }
            let stroke = egui::Stroke::new(1.5, ui.visuals().weak_text_color());
            for e in &g.edges {
                let from = pos[e.child].center_top();
                let to = pos[e.parent].center_bottom();
                ui.painter().arrow(from, to - from, stroke);
                let mid = pos2((from.x + to.x) / 2.0, (from.y + to.y) / 2.0);
                ui.painter().text(
                    mid,
                    egui::Align2::LEFT_CENTER,
                    short_via(&e.via),
                    egui::FontId::proportional(10.0),
                    ui.visuals().weak_text_color(),
                );
            }
            for (i, node) in g.nodes.iter().enumerate() {
                let mut facts = Vec::new();
                if let Some(v) = &node.version {
                    facts.push(format!("v{}", v.trim_start_matches('v')));
                }
                if let Some(s) = node.step {
                    facts.push(format!("step {s}"));
                }
                if let Some(c) = &node.created {
                    facts.push(c.chars().take(10).collect());
                }
                if node.path.is_none() {
                    facts.push("not found".into());
                }
                let title = match &node.path {
                    Some(p) => crate::gui::widgets::display_name(p),
                    None => node.name.clone(),
                };
                let text = format!("{title}\n{}", facts.join(" · "));
                let mut button = egui::Button::new(RichText::new(text).size(12.0))
                    .selected(st.selected == Some(i));
                if node.path.is_none() {
                    button = button.fill(ui.visuals().faint_bg_color);
                }
                if Some(i) == current {
                    button = button.stroke(egui::Stroke::new(2.0, Color32::from_rgb(80, 150, 255)));
                }
                let r = ui.put(pos[i], button);
                if r.clicked() {
                    clicked = Some(i);
                }
                if r.double_clicked() {
                    open = node.path.clone();
                }
            }
        });
    if let Some(i) = clicked {
        st.selected = Some(i);
    }
    if let Some(p) = open {
        commands.push(Command::Open(p));
    }
    if let Some(i) = st.selected {
        node_details(ui, g, i, current, commands);
    }
    if !g.timelines.is_empty() {
        ui.separator();
        for t in &g.timelines {
            let names: Vec<String> = t.iter().map(|&i| g.nodes[i].name.clone()).collect();
            ui.label(RichText::new(format!("Run timeline: {}", names.join(" → "))).monospace());
        }
    }
}

fn short_via(via: &str) -> String {
    via.split(", ").next().unwrap_or(via).to_string()
}

fn node_details(
    ui: &mut Ui,
    g: &Graph,
    i: usize,
    current: Option<usize>,
    commands: &mut Vec<Command>,
) {
    let node = &g.nodes[i];
    ui.separator();
    ui.horizontal_wrapped(|ui| {
        ui.strong(&node.name);
        if let Some(p) = &node.path {
            ui.monospace(p.display().to_string());
            if Some(i) != current && ui.button("Open").clicked() {
                commands.push(Command::Open(p.clone()));
            }
        }
    });
    if let Some(r) = &node.unresolved {
        ui.label(format!(
            "Referred to by {} as {:?} `{}`, not found in this folder.",
            r.via, r.kind, r.value
        ));
    }
    if let Some(id) = &node.id {
        ui.weak(format!("content id {id}"));
    }
    if let Some(a) = &node.record.architecture {
        ui.weak(format!("architecture {a}"));
    }
    for (p, via) in g.parents(i) {
        let parent = &g.nodes[p];
        ui.horizontal_wrapped(|ui| {
            ui.label(format!("parent: {} (found by {via})", parent.name));
            if let (Some(pp), Some(cp)) = (&parent.path, &node.path)
                && ui.button("Compare with parent").clicked()
            {
                commands.push(Command::Compare {
                    a: pp.clone(),
                    b: cp.clone(),
                });
            }
        });
    }
    for c in g.children(i) {
        ui.label(format!("child: {}", g.nodes[c].name));
    }
}
