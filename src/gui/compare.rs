//! The compare view: two checkpoints side by side.
//!
//! The paired table lists every tensor with its status (colour-coded), sorted by relative L2
//! change; status filters narrow it. Selecting a pair shows both histograms overlaid, the
//! histogram of a − b, both statistics side by side and, for 2-D tensors, heatmaps of A, B and
//! A − B, computed on workers (a sample first, then exact). A tab shows the metadata diff.
//!
//! When one file is a Llama GGUF file holding the other's tensors under llama.cpp's names, the
//! pairs are made by those names (Q/K rows un-permuted, see [`crate::analysis::namemap`]) and a
//! "Names" choice switches back to the names as stored.
//!
//! Owns [`CompareView`]: the comparison (made by the compare job, [`CompareView::diff`]), the
//! status boxes and filter with the rows they let through (recomputed only when they change),
//! and the slots of the selected pair's jobs. The view cancels through [`Command::Cancel`].
//! Must not import: `app`, `doc`.
//!
//! `clippy::indexing_slicing` is allowed here: rows are indexed within the cached row list.

#![allow(clippy::indexing_slicing)]

use std::collections::BTreeSet;
use std::sync::Arc;

use egui::{Color32, RichText, Ui};
use egui_extras::{Column, TableBuilder};

use crate::analysis::decode::format_float;
use crate::analysis::diff::{self, Diff, Pair, Status, TensorDiff};
use crate::analysis::heatmap::{self, Heatmap};
use crate::analysis::namemap::{Mapping, Which, unpermuted_view};
use crate::analysis::slice::View;
use crate::analysis::{self as stats, Analysis, Histogram};
use crate::format::Checkpoint;
use crate::gui::command::Command;
use crate::gui::jobs::{Compared, Ended, Job, JobKind, JobStatus, Slot};
use crate::gui::state::Persisted;
use crate::gui::widgets::display_name;
use crate::gui::widgets::{
    COLOR_A, COLOR_B, COLOR_DIFF, Series, heatmap_image, heatmap_pixels, histogram_plot,
};
use crate::output::human;
use crate::progress::Progress;

const SAMPLE: u64 = 16_384;
const HEAT: usize = 160;

/// The details of one pair.
#[derive(Default)]
struct PairResult {
    a: Option<Analysis>,
    b: Option<Analysis>,
    diff: Option<Histogram>,
    heat: Vec<(String, Heatmap)>,
    error: Option<String>,
}

/// The compare view's state.
pub struct CompareView {
    /// First checkpoint.
    pub a: Arc<Checkpoint>,
    /// Second checkpoint.
    pub b: Arc<Checkpoint>,
    /// The comparison.
    pub diff: Diff,
    /// The name mapping this pair of files allows, offered as a choice.
    pub offered: Option<Mapping>,
    shown: BTreeSet<Status>,
    filter: String,
    /// The pairs the status boxes and the filter let through, and the choice they were made for.
    rows: Vec<usize>,
    rows_for: Option<(BTreeSet<Status>, String)>,
    /// Selected pair (index into `diff.tensors`).
    pub selected: Option<usize>,
    metadata_tab: bool,
    computed_for: Option<(usize, usize)>,
    sample: Slot<PairResult>,
    exact: Slot<PairResult>,
    /// The latest details of the selected pair.
    result: Option<PairResult>,
    textures: Vec<(String, egui::TextureHandle, Heatmap, bool)>,
}

impl CompareView {
    /// Compares `a` with `b`, on the caller's worker: the compare job runs this. `mapped`:
    /// pair by llama.cpp's names when the files allow it ([`Mapping::offered`]).
    pub fn diff(
        a: Arc<Checkpoint>,
        b: Arc<Checkpoint>,
        mapped: bool,
        progress: &Progress,
    ) -> Compared {
        let mapping = mapped.then(|| Mapping::offered(&a, &b)).flatten();
        let diff = diff::diff_mapped(&a, &b, mapping.as_ref(), progress);
        Compared { a, b, diff }
    }

    /// The view of a finished comparison.
    pub fn new(Compared { a, b, diff }: Compared) -> CompareView {
        // Open on the largest change compared by value.
        let selected = diff.tensors.iter().position(|t| t.measures.is_some());
        let offered = Mapping::offered(&a, &b);
        let mut view = CompareView {
            a,
            b,
            diff,
            offered,
            shown: Status::ALL
                .into_iter()
                .filter(|s| *s != Status::Identical)
                .collect(),
            filter: String::new(),
            rows: Vec::new(),
            rows_for: None,
            selected,
            metadata_tab: false,
            computed_for: None,
            sample: Slot::default(),
            exact: Slot::default(),
            result: None,
            textures: Vec::new(),
        };
        view.refresh_rows();
        view
    }

    /// Starts and collects the jobs of the selected pair.
    pub fn update(&mut self, ctx: &egui::Context, sync: bool) {
        if let Some(Ok(r)) = self.sample.take()
            && self.result.is_none()
        {
            self.set_result(r);
        }
        if let Some(Ok(r)) = self.exact.take() {
            self.set_result(r);
        }
        let Some(sel) = self.selected else { return };
        let bins = 64;
        if self.computed_for == Some((sel, bins)) {
            return;
        }
        self.computed_for = Some((sel, bins));
        self.sample.drop_job();
        self.exact.drop_job();
        self.result = None;
        self.textures.clear();
        let Some(pair) = self.diff.tensors.get(sel).cloned() else {
            return;
        };
        let (a, b) = (self.a.clone(), self.b.clone());
        let name = pair.name.clone();
        self.sample
            .start(Job::spawn(ctx, JobKind::Stats, &name, sync, {
                let (a, b, pair) = (a.clone(), b.clone(), pair.clone());
                move |p| Ok(pair_details(&a, &b, &pair, bins, true, p))
            }));
        let large = [pair.shape_a.as_ref(), pair.shape_b.as_ref()]
            .into_iter()
            .flatten()
            .any(|s| s.iter().product::<u64>() > SAMPLE);
        if large {
            self.exact
                .start(Job::spawn(ctx, JobKind::Stats, &name, sync, move |p| {
                    Ok(pair_details(&a, &b, &pair, bins, false, p))
                }));
        }
        if sync {
            self.update(ctx, sync);
        }
    }

    fn set_result(&mut self, r: PairResult) {
        self.textures.clear();
        self.result = Some(r);
    }

    /// True while a pair is being computed.
    pub fn busy(&self) -> bool {
        self.sample.running() || self.exact.running()
    }

    /// Stops the exact figures of the selected pair; the sampled ones stay shown. Its status,
    /// if one ran.
    pub fn cancel(&mut self, kind: JobKind) -> Option<JobStatus> {
        match kind {
            JobKind::Stats => self.exact.cancel(),
            _ => None,
        }
    }

    /// How the last exact job of the selected pair ended.
    pub fn ended(&self, kind: JobKind) -> Option<&Ended> {
        match kind {
            JobKind::Stats => self.exact.ended(),
            _ => None,
        }
    }

    /// Recomputes the shown pairs when the status boxes or the filter changed.
    fn refresh_rows(&mut self) {
        if self
            .rows_for
            .as_ref()
            .is_some_and(|(shown, filter)| *shown == self.shown && *filter == self.filter)
        {
            return;
        }
        self.rows = (0..self.diff.tensors.len())
            .filter(|&i| {
                let t = &self.diff.tensors[i];
                self.shown.contains(&t.status)
                    && (crate::gui::widgets::filter_match(&self.filter, &t.name)
                        || t.name_b
                            .as_ref()
                            .is_some_and(|n| crate::gui::widgets::filter_match(&self.filter, n)))
            })
            .collect();
        self.rows_for = Some((self.shown.clone(), self.filter.clone()));
    }
}

type Side<'a> = (crate::analysis::Elements<'a>, View, &'a crate::TensorEntry);

/// One side of a pair, walked in the order the comparison lined it up in (`heads`: undoing
/// llama.cpp's Q/K permutation).
fn side<'a>(
    c: &'a Checkpoint,
    t: Option<&'a crate::TensorEntry>,
    heads: Option<u64>,
) -> Result<Option<Side<'a>>, String> {
    let Some(t) = t else {
        return Ok(None);
    };
    let src = crate::analysis::source(c, t).map_err(|e| e.to_string())?;
    let view = match heads {
        Some(h) => unpermuted_view(t, h)?,
        None => View::of(t),
    };
    Ok(Some((src, view, t)))
}

/// Statistics, histograms and heatmaps of one pair; `sampled`: from a strided sample.
fn pair_details(
    a: &Checkpoint,
    b: &Checkpoint,
    pair: &TensorDiff,
    bins: usize,
    sampled: bool,
    progress: &Progress,
) -> PairResult {
    let mut r = PairResult::default();
    let p = Pair::of(a, b, pair);
    let heads = |s: Which| p.unpermute.filter(|u| u.side == s).map(|u| u.heads);
    let (sa, sb) = match (side(a, p.a, heads(Which::A)), side(b, p.b, heads(Which::B))) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => {
            r.error = Some(e);
            return r;
        }
    };
    let analyze = |s: &Side<'_>| {
        if sampled {
            stats::analyze_sample(&s.0, &s.1, bins, SAMPLE)
        } else {
            stats::analyze(&s.0, &s.1, bins, progress)
        }
    };
    if let Some(s) = &sa {
        r.a = analyze(s).ok();
    }
    if let Some(s) = &sb {
        r.b = analyze(s).ok();
    }
    if let (Some(x), Some(y)) = (&sa, &sb)
        && x.2.shape == y.2.shape
    {
        if let Some(m) = &pair.measures
            && !sampled
        {
            r.diff = diff::pair_histogram(a, b, &p, m, bins, progress).ok();
        } else if let Some(m) = &pair.measures {
            // A quick difference histogram on the first elements.
            r.diff = diff::pair_histogram(a, b, &p, m, bins, progress)
                .ok()
                .filter(|_| x.2.elements() <= SAMPLE * 4);
        }
        // The tensor's own rank: an un-permuted view splits the rows but walks the same matrix.
        if x.2.shape.len() == 2 {
            let make = |s: &Side<'_>| {
                if sampled {
                    heatmap::heatmap_preview(&s.0, &s.1, HEAT, HEAT)
                } else {
                    heatmap::heatmap(&s.0, &s.1, HEAT, HEAT, progress)
                }
            };
            if let Ok(h) = make(x) {
                r.heat.push(("A".into(), h));
            }
            if let Ok(h) = make(y) {
                r.heat.push(("B".into(), h));
            }
            if let Ok(h) = heatmap::diff_heatmap((&x.0, &x.1), (&y.0, &y.1), HEAT, HEAT, progress) {
                r.heat.push(("A − B".into(), h));
            }
        }
    }
    r
}

/// Colour of a status.
pub fn status_color(s: Status, ui: &Ui) -> Color32 {
    let dark = ui.visuals().dark_mode;
    match s {
        Status::Identical => ui.visuals().weak_text_color(),
        Status::ValuesChanged => {
            if dark {
                Color32::from_rgb(240, 190, 80)
            } else {
                Color32::from_rgb(160, 100, 0)
            }
        }
        Status::DtypeChanged | Status::ShapeChanged => {
            if dark {
                Color32::from_rgb(230, 120, 230)
            } else {
                Color32::from_rgb(140, 40, 140)
            }
        }
        Status::OnlyInA => {
            if dark {
                Color32::from_rgb(255, 110, 100)
            } else {
                Color32::from_rgb(180, 30, 30)
            }
        }
        Status::OnlyInB => {
            if dark {
                Color32::from_rgb(100, 210, 130)
            } else {
                Color32::from_rgb(20, 120, 50)
            }
        }
    }
}

/// Draws the compare view.
pub fn compare_ui(
    ui: &mut Ui,
    v: &mut CompareView,
    state: &mut Persisted,
    commands: &mut Vec<Command>,
) {
    egui::Panel::top("compare-summary").show(ui, |ui| {
        ui.horizontal_wrapped(|ui| {
            ui.label(
                RichText::new(format!("A: {}", display_name(&v.a.path)))
                    .color(COLOR_A)
                    .strong(),
            );
            ui.label(
                RichText::new(format!("B: {}", display_name(&v.b.path)))
                    .color(COLOR_B)
                    .strong(),
            );
            ui.label(if v.diff.is_identical() {
                "identical".to_string()
            } else {
                crate::output::diff::summary_line(&v.diff)
            });
            if ui.button("Close comparison").clicked() {
                commands.push(Command::LeaveCompare);
            }
        });
        if v.offered.is_some() {
            names_ui(ui, v, commands);
        }
        for (x, y) in &v.diff.renames {
            ui.weak(format!(
                "renamed? `{x}` in A looks like `{y}` in B (same dtype, shape and bytes)"
            ));
        }
    });
    egui::Panel::left("pairs")
        .resizable(true)
        .default_size(560.0)
        .size_range(300.0..=1400.0)
        .show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                let counts = v.diff.counts();
                for s in Status::ALL {
                    let n = counts.get(&s).copied().unwrap_or(0);
                    let mut on = v.shown.contains(&s);
                    if ui
                        .checkbox(
                            &mut on,
                            RichText::new(format!("{} ({n})", s.label()))
                                .color(status_color(s, ui)),
                        )
                        .changed()
                    {
                        if on {
                            v.shown.insert(s);
                        } else {
                            v.shown.remove(&s);
                        }
                    }
                }
            });
            ui.add(
                egui::TextEdit::singleline(&mut v.filter)
                    .hint_text("Filter names (substring or glob)")
                    .desired_width(f32::INFINITY),
            );
            v.refresh_rows();
            let rows = &v.rows;
            let mut picked = None;
            ui.scope(|ui| {
                ui.style_mut().interaction.selectable_labels = false;
                ui.style_mut().wrap_mode = Some(egui::TextWrapMode::Truncate);
                TableBuilder::new(ui)
                    .id_salt("pairs-table")
                    .striped(true)
                    .sense(egui::Sense::click())
                    .resizable(true)
                    .column(Column::initial(230.0).at_least(80.0).clip(true))
                    .column(Column::initial(100.0).at_least(50.0))
                    .column(Column::initial(80.0).at_least(40.0))
                    .column(Column::initial(80.0).at_least(40.0))
                    .column(Column::initial(70.0).at_least(40.0))
                    .header(20.0, |mut h| {
                        for label in ["name", "status", "rel L2", "max |a−b|", "cosine"] {
                            h.col(|ui| {
                                ui.strong(label);
                            });
                        }
                    })
                    .body(|body| {
                        body.rows(18.0, rows.len(), |mut row| {
                            let i = rows[row.index()];
                            let t = &v.diff.tensors[i];
                            row.set_selected(v.selected == Some(i));
                            let m = t.measures.as_ref();
                            row.col(|ui| {
                                ui.add(
                                    egui::Label::new(
                                        RichText::new(crate::output::diff::pair_name(t))
                                            .monospace(),
                                    )
                                    .truncate(),
                                );
                            });
                            row.col(|ui| {
                                ui.colored_label(status_color(t.status, ui), t.status.label());
                            });
                            row.col(|ui| {
                                ui.monospace(m.map(|m| format_float(m.rel_l2)).unwrap_or_default());
                            });
                            row.col(|ui| {
                                ui.monospace(
                                    m.map(|m| format_float(m.max_abs_diff)).unwrap_or_default(),
                                );
                            });
                            row.col(|ui| {
                                ui.monospace(m.map(|m| format_float(m.cosine)).unwrap_or_default());
                            });
                            if row.response().clicked() {
                                picked = Some(i);
                            }
                        });
                    });
            });
            if let Some(i) = picked {
                v.selected = Some(i);
                v.metadata_tab = false;
            }
        });
    egui::CentralPanel::default().show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.selectable_value(&mut v.metadata_tab, false, "Tensor");
            let m = &v.diff.metadata;
            ui.selectable_value(
                &mut v.metadata_tab,
                true,
                format!(
                    "Metadata diff ({})",
                    m.added.len() + m.removed.len() + m.changed.len()
                ),
            );
        });
        ui.separator();
        if v.metadata_tab {
            metadata_diff_ui(ui, &v.diff);
        } else {
            pair_ui(ui, v, state, commands);
        }
    });
}

/// The "Names" choice: pairs by llama.cpp's names or by the names as stored.
fn names_ui(ui: &mut Ui, v: &CompareView, commands: &mut Vec<Command>) {
    const STORED: &str = "as stored";
    const LLAMA: &str = "llama.cpp names";
    ui.horizontal_wrapped(|ui| {
        let mapped = v.diff.mapping.is_some();
        let mut choice = mapped;
        let label = ui.label("Names");
        egui::ComboBox::from_id_salt("compare-names")
            .selected_text(if mapped { LLAMA } else { STORED })
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut choice, true, LLAMA);
                ui.selectable_value(&mut choice, false, STORED);
            })
            .response
            .labelled_by(label.id);
        if choice != mapped {
            commands.push(Command::Repair { mapped: choice });
        }
        if let Some(m) = &v.diff.mapping {
            ui.weak(crate::output::diff::mapping_line(m));
        } else if let Some(m) = &v.offered {
            let side = match m.gguf {
                Which::A => "A",
                Which::B => "B",
            };
            ui.weak(format!(
                "{side} is a Llama GGUF file: choose llama.cpp names to pair its tensors with the Hugging Face ones"
            ));
        }
    });
}

fn metadata_diff_ui(ui: &mut Ui, d: &Diff) {
    let m = &d.metadata;
    if m.is_empty() {
        ui.label("The metadata is the same.");
        return;
    }
    egui::ScrollArea::vertical()
        .id_salt("meta-diff")
        .show(ui, |ui| {
            egui::Grid::new("meta-diff-grid")
                .num_columns(3)
                .striped(true)
                .show(ui, |ui| {
                    for (k, val) in &m.added {
                        ui.colored_label(status_color(Status::OnlyInB, ui), "added");
                        ui.monospace(k);
                        ui.add(egui::Label::new(val).wrap());
                        ui.end_row();
                    }
                    for (k, val) in &m.removed {
                        ui.colored_label(status_color(Status::OnlyInA, ui), "removed");
                        ui.monospace(k);
                        ui.add(egui::Label::new(val).wrap());
                        ui.end_row();
                    }
                    for (k, x, y) in &m.changed {
                        ui.colored_label(status_color(Status::ValuesChanged, ui), "changed");
                        ui.monospace(k);
                        ui.add(
                            egui::Label::new(RichText::new(format!("{x}  →  {y}")).monospace())
                                .wrap(),
                        );
                        ui.end_row();
                    }
                });
        });
}

fn pair_ui(ui: &mut Ui, v: &mut CompareView, state: &mut Persisted, commands: &mut Vec<Command>) {
    let Some(sel) = v.selected else {
        ui.weak("Select a tensor to compare its values.");
        return;
    };
    let Some(t) = v.diff.tensors.get(sel).cloned() else {
        return;
    };
    // Heatmap textures, made once per result.
    if let Some(r) = &v.result
        && v.textures.is_empty()
    {
        for (label, h) in &r.heat {
            let (rgba, diverging) = heatmap_pixels(h);
            let tex = ui.ctx().load_texture(
                format!("compare-heat-{label}"),
                egui::ColorImage::from_rgba_unmultiplied([h.width, h.height], &rgba),
                egui::TextureOptions::NEAREST,
            );
            v.textures.push((label.clone(), tex, h.clone(), diverging));
        }
    }
    egui::ScrollArea::vertical()
        .id_salt("pair")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                ui.label(RichText::new(&t.name).monospace().strong().size(15.0));
                ui.colored_label(status_color(t.status, ui), t.status.label());
            });
            let side = |d: Option<&str>, s: &Option<Vec<u64>>| match (d, s) {
                (Some(d), Some(s)) => format!("{d} {}", human::shape(s)),
                _ => "—".into(),
            };
            ui.horizontal(|ui| {
                ui.colored_label(COLOR_A, format!("A: {}", side(t.type_a, &t.shape_a)));
                ui.colored_label(COLOR_B, format!("B: {}", side(t.type_b, &t.shape_b)));
            });
            if let Some(n) = &t.name_b {
                ui.horizontal_wrapped(|ui| {
                    ui.colored_label(COLOR_B, "B:");
                    ui.monospace(n);
                    if let Some(u) = t.unpermute {
                        ui.weak(format!(
                            "llama.cpp's Q/K row permutation over {} heads undone: compared in Hugging Face row order",
                            u.heads
                        ));
                    }
                });
            }
            if let Some(m) = &t.measures {
                egui::Grid::new("measures")
                    .num_columns(4)
                    .spacing([16.0, 2.0])
                    .show(ui, |ui| {
                        ui.weak("differing");
                        ui.monospace(format!("{} of {}", m.differing, m.count));
                        ui.weak("max |a−b|");
                        ui.monospace(format_float(m.max_abs_diff));
                        ui.end_row();
                        ui.weak("mean |a−b|");
                        ui.monospace(format_float(m.mean_abs_diff));
                        ui.weak("relative L2");
                        ui.monospace(format_float(m.rel_l2));
                        ui.end_row();
                        ui.weak("cosine");
                        ui.monospace(format_float(m.cosine));
                        if m.nonfinite_mismatch > 0 {
                            ui.weak("NaN/Inf mismatches");
                            ui.monospace(m.nonfinite_mismatch.to_string());
                        }
                        ui.end_row();
                    });
            }
            if let Some(e) = &t.error {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
            if let Some(job) = v.exact.job()
                && crate::gui::widgets::progress_row(
                    ui,
                    "exact statistics",
                    job.progress.fraction(),
                )
            {
                commands.push(Command::Cancel(JobKind::Stats));
            }
            let Some(r) = &v.result else {
                ui.spinner();
                return;
            };
            if let Some(e) = &r.error {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
            let sampled =
                r.a.as_ref()
                    .and_then(|a| a.sampled)
                    .or(r.b.as_ref().and_then(|b| b.sampled));
            if let Some(n) = sampled {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!("sampled ({n} elements each); exact figures follow"),
                );
            }
            ui.checkbox(&mut state.log_counts, "log counts");
            let mut series = Vec::new();
            if let Some(a) = &r.a {
                series.push(Series {
                    name: format!("A: {}", display_name(&v.a.path)),
                    histogram: &a.histogram,
                    color: COLOR_A,
                });
            }
            if let Some(b) = &r.b {
                series.push(Series {
                    name: format!("B: {}", display_name(&v.b.path)),
                    histogram: &b.histogram,
                    color: COLOR_B,
                });
            }
            if !series.is_empty() {
                ui.strong("Histograms of A and B");
                ui.horizontal(|ui| {
                    for s in &series {
                        ui.colored_label(s.color, &s.name);
                    }
                });
                histogram_plot(ui, "pair-histograms", &series, state.log_counts, 200.0);
            }
            if let Some(h) = &r.diff {
                ui.strong("Histogram of A − B");
                histogram_plot(
                    ui,
                    "pair-diff",
                    &[Series {
                        name: "A − B".into(),
                        histogram: h,
                        color: COLOR_DIFF,
                    }],
                    state.log_counts,
                    150.0,
                );
            }
            ui.columns(2, |cols| {
                for (col, (label, a)) in cols.iter_mut().zip([("A", &r.a), ("B", &r.b)]) {
                    col.strong(format!("Statistics of {label}"));
                    if let Some(a) = a {
                        let s = &a.stats;
                        egui::Grid::new(("pair-stats", label))
                            .num_columns(2)
                            .show(col, |ui| {
                                for (k, val) in [
                                    ("min", format_float(s.min)),
                                    ("max", format_float(s.max)),
                                    ("mean", format_float(s.mean)),
                                    ("std", format_float(s.std)),
                                    ("zeros", s.zeros.to_string()),
                                    (
                                        "NaN / Inf",
                                        format!("{} / {}", s.nan, s.pos_inf + s.neg_inf),
                                    ),
                                ] {
                                    ui.weak(k);
                                    ui.monospace(val);
                                    ui.end_row();
                                }
                            });
                    } else {
                        col.weak("—");
                    }
                }
            });
            if !v.textures.is_empty() {
                ui.separator();
                ui.strong("Heatmaps");
                ui.columns(v.textures.len(), |cols| {
                    for (col, (label, tex, h, div)) in cols.iter_mut().zip(&v.textures) {
                        col.label(label.as_str());
                        let w = col.available_width().min(300.0);
                        heatmap_image(
                            col,
                            tex,
                            h,
                            *div,
                            egui::vec2(w, 300.0),
                            &format!("heatmap {label}"),
                        );
                    }
                });
            }
        });
}
