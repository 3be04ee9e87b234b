//! The tensor inspector: a slice, its statistics and histogram, its first values, and for 2-D
//! slices a heatmap.
//!
//! Only the selected slice is decoded, straight from the memory map. A strided sample answers
//! first (marked as sampled); the exact statistics follow from a worker with a progress bar and
//! a Cancel button. Changing the slice or the bin count cancels what is running.
//!
//! Owns [`Inspector`]: the slice asked for, the slots of its statistics, heatmap and values
//! jobs, and their results. Every read of the tensor's bytes runs on a worker, the values grid
//! too (started in [`Inspector::update`] only when the tensor, slice or position changes): for
//! a deflated `.npz` member the first read inflates it, and a slow disk would stall the frame.
//! The drawing functions never read the file: they show what arrived, a spinner while it is
//! read, and cancel through [`Command::Cancel`]. Must not import: `app`, `doc`.
//!
//! `clippy::indexing_slicing` is allowed here: grid cells are indexed within the values read for
//! the visible grid.

#![allow(clippy::indexing_slicing)]

use std::sync::Arc;

use egui::{RichText, Ui};

use crate::analysis::decode::format_float;
use crate::analysis::heatmap::{self, Heatmap};
use crate::analysis::slice::{Sel, SliceSpec, View};
use crate::analysis::{self as stats, Analysis};
use crate::format::{ByteOrder, Checkpoint, Layout, TensorEntry};
use crate::gui::command::Command;
use crate::gui::jobs::{Job, JobError, JobKind, Slot};
use crate::gui::state::Persisted;
use crate::gui::widgets::{Series, heatmap_image, heatmap_pixels, histogram_plot};
use crate::output::human;

/// Elements decoded for the first, sampled answer.
const SAMPLE: u64 = stats::DEFAULT_SAMPLE;
/// Heatmap resolution.
const HEAT_PIXELS: usize = 256;
/// Values grid size.
const GRID_ROWS: u64 = 12;
const GRID_COLS: u64 = 8;

/// What the statistics are computed for.
#[derive(Clone, Debug, PartialEq)]
struct Request {
    tensor: usize,
    spec: SliceSpec,
    bins: usize,
}

/// Where the values grid was read: the tensor, the slice and the first row and column.
#[derive(Clone, Debug, PartialEq)]
struct GridKey {
    tensor: usize,
    spec: SliceSpec,
    row: u64,
    col: u64,
}

/// The values grid, read from the file once per position (not every frame), on a worker.
struct ValuesGrid {
    key: GridKey,
    cells: Result<Vec<Vec<String>>, String>,
}

/// The inspector's state.
#[derive(Default)]
pub struct Inspector {
    tensor: Option<usize>,
    slice_text: String,
    spec: SliceSpec,
    slice_error: Option<String>,
    want: Option<Request>,
    have: Option<Request>,
    sample: Slot<Analysis>,
    exact: Slot<Analysis>,
    /// Latest result and whether it is exact.
    pub result: Option<Analysis>,
    error: Option<String>,
    heat_preview: Slot<Heatmap>,
    heat_exact: Slot<Heatmap>,
    heat: Option<(Heatmap, Option<egui::TextureHandle>, bool)>,
    heat_error: Option<String>,
    grid_row: u64,
    grid_col: u64,
    /// The grid shown (it stays while the next position is read).
    values: Option<ValuesGrid>,
    /// Reading the grid at `values_for`.
    values_job: Slot<ValuesGrid>,
    /// Where the grid was last asked to be read (read, being read, or cancelled there).
    values_for: Option<GridKey>,
}

impl Inspector {
    /// Reconciles what is shown with what is asked: starts (and cancels) jobs, collects results.
    pub fn update(
        &mut self,
        ckpt: &Arc<Checkpoint>,
        selected: Option<usize>,
        ctx: &egui::Context,
        sync: bool,
    ) {
        if selected != self.tensor {
            self.tensor = selected;
            self.slice_text.clear();
            self.spec = SliceSpec::default();
            self.slice_error = None;
            self.grid_row = 0;
            self.grid_col = 0;
        }
        self.refresh_values(ckpt, ctx, sync);
        if let Some(result) = self.sample.take() {
            match result {
                Ok(a) => {
                    // An exact answer that arrived first wins.
                    if self.result.is_none() {
                        self.result = Some(a);
                    }
                }
                Err(JobError::Cancelled) => {}
                Err(e) => self.error = Some(e.to_string()),
            }
        }
        if let Some(result) = self.exact.take() {
            match result {
                Ok(a) => self.result = Some(a),
                Err(JobError::Cancelled) => {}
                Err(e) => self.error = Some(e.to_string()),
            }
        }
        if let Some(result) = self.heat_preview.take() {
            match result {
                Ok(h) if self.heat.as_ref().is_none_or(|(h, ..)| h.sampled) => self.set_heat(h),
                Ok(_) | Err(JobError::Cancelled) => {}
                Err(e) => self.heat_error = Some(e.to_string()),
            }
        }
        if let Some(result) = self.heat_exact.take() {
            match result {
                Ok(h) => self.set_heat(h),
                Err(JobError::Cancelled) => {}
                Err(e) => self.heat_error = Some(e.to_string()),
            }
        }
        if self.want == self.have {
            return;
        }
        let Some(want) = self.want.clone() else {
            return;
        };
        self.have = Some(want.clone());
        self.sample.drop_job();
        self.exact.drop_job();
        self.heat_preview.drop_job();
        self.heat_exact.drop_job();
        self.result = None;
        self.error = None;
        self.heat = None;
        self.heat_error = None;
        let Some(t) = ckpt.tensors.get(want.tensor) else {
            return;
        };
        let view = match View::select(t, &want.spec) {
            Ok(v) => v,
            Err(e) => {
                self.error = Some(e.to_string());
                return;
            }
        };
        let n = view.elements();
        let bins = want.bins;
        let (c1, v1, i) = (ckpt.clone(), view.clone(), want.tensor);
        let name = t.name.clone();
        self.sample
            .start(Job::spawn(ctx, JobKind::Stats, &name, sync, move |_| {
                let src = crate::analysis::source(&c1, &c1.tensors[i])?;
                Ok(stats::analyze_sample(&src, &v1, bins, SAMPLE)?)
            }));
        if n > SAMPLE {
            let (c2, v2) = (ckpt.clone(), view.clone());
            self.exact
                .start(Job::spawn(ctx, JobKind::Stats, &name, sync, move |p| {
                    let src = crate::analysis::source(&c2, &c2.tensors[i])?;
                    Ok(stats::analyze(&src, &v2, bins, p)?)
                }));
        }
        if view.shape.len() == 2 && n > 0 {
            let (c3, v3) = (ckpt.clone(), view.clone());
            self.heat_preview
                .start(Job::spawn(ctx, JobKind::Heatmap, &name, sync, move |_| {
                    let src = crate::analysis::source(&c3, &c3.tensors[i])?;
                    Ok(heatmap::heatmap_preview(
                        &src,
                        &v3,
                        HEAT_PIXELS,
                        HEAT_PIXELS,
                    )?)
                }));
            let (rows, cols) = heatmap::matrix_shape(&view);
            if rows as usize > HEAT_PIXELS || cols as usize > HEAT_PIXELS {
                let (c4, v4) = (ckpt.clone(), view);
                self.heat_exact
                    .start(Job::spawn(ctx, JobKind::Heatmap, &name, sync, move |p| {
                        let src = crate::analysis::source(&c4, &c4.tensors[i])?;
                        Ok(heatmap::heatmap(&src, &v4, HEAT_PIXELS, HEAT_PIXELS, p)?)
                    }));
            }
        }
        // Jobs that finished inline (tests, tiny tensors) are collected now.
        if sync {
            self.update(ckpt, selected, ctx, sync);
        }
    }

    /// Stops the exact statistics, the exact heatmap or the reading of the values; the sampled
    /// answer (the grid shown before) stays shown. The status of the stopped job, if one ran.
    pub fn cancel(&mut self, kind: JobKind) -> Option<crate::gui::jobs::JobStatus> {
        match kind {
            JobKind::Stats => self.exact.cancel(),
            JobKind::Heatmap => self.heat_exact.cancel(),
            JobKind::Values => self.values_job.cancel(),
            _ => None,
        }
    }

    /// How the last exact job of `kind` (statistics or heatmap), or the last reading of the
    /// values, ended.
    pub fn ended(&self, kind: JobKind) -> Option<&crate::gui::jobs::Ended> {
        match kind {
            JobKind::Stats => self.exact.ended(),
            JobKind::Heatmap => self.heat_exact.ended(),
            JobKind::Values => self.values_job.ended(),
            _ => None,
        }
    }

    fn grid_key(&self) -> Option<GridKey> {
        Some(GridKey {
            tensor: self.tensor?,
            spec: self.spec.clone(),
            row: self.grid_row,
            col: self.grid_col,
        })
    }

    /// Collects the values grid read, and starts reading it again (on a worker) when the
    /// tensor, the slice or the position changed.
    fn refresh_values(&mut self, ckpt: &Arc<Checkpoint>, ctx: &egui::Context, sync: bool) {
        self.collect_values();
        let Some(key) = self.grid_key() else {
            self.values = None;
            self.values_for = None;
            self.values_job.drop_job();
            return;
        };
        if self.values_for.as_ref() == Some(&key) {
            return;
        }
        self.values_for = Some(key.clone());
        let Some(t) = ckpt.tensors.get(key.tensor) else {
            self.values = None;
            self.values_job.drop_job();
            return;
        };
        let name = t.name.clone();
        let ckpt = ckpt.clone();
        // Starting here supersedes (cancels and detaches) the read of the previous position.
        self.values_job
            .start(Job::spawn(ctx, JobKind::Values, name, sync, move |_| {
                Ok(read_values(&ckpt, key))
            }));
        if sync {
            self.collect_values();
        }
    }

    /// Shows the values grid once it was read (an error in its place if it failed).
    fn collect_values(&mut self) {
        let Some(result) = self.values_job.take() else {
            return;
        };
        match result {
            Ok(grid) => self.values = Some(grid),
            Err(JobError::Cancelled) => {}
            Err(e) => {
                if let Some(key) = self.values_for.clone() {
                    self.values = Some(ValuesGrid {
                        key,
                        cells: Err(e.to_string()),
                    });
                }
            }
        }
    }

    fn set_heat(&mut self, h: Heatmap) {
        self.heat = Some((h, None, false));
    }

    /// True while statistics, a heatmap or the values are being computed.
    pub fn busy(&self) -> bool {
        self.sample.running()
            || self.exact.running()
            || self.heat_preview.running()
            || self.heat_exact.running()
            || self.values_job.running()
    }
}

/// The values grid at `key`, read on the values job's worker (the tensor's bytes may be mapped
/// or inflated for the first time here).
fn read_values(ckpt: &Checkpoint, key: GridKey) -> ValuesGrid {
    let cells = match ckpt.tensors.get(key.tensor) {
        None => Ok(Vec::new()),
        Some(t) => match View::select(t, &key.spec) {
            // The slice is refused elsewhere; the grid then shows nothing.
            Err(_) => Ok(Vec::new()),
            Ok(view) => crate::analysis::source(ckpt, t)
                .map(|src| {
                    heatmap::values_grid(&src, &view, key.row, GRID_ROWS, key.col, GRID_COLS)
                })
                .map_err(|e| e.to_string()),
        },
    };
    ValuesGrid { key, cells }
}

/// Draws the inspector of tensor `t`.
pub fn inspector_ui(
    ui: &mut Ui,
    t: &TensorEntry,
    st: &mut Inspector,
    state: &mut Persisted,
    commands: &mut Vec<Command>,
) {
    let Some(index) = st.tensor else { return };
    egui::ScrollArea::vertical()
        .id_salt("inspector")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            header_ui(ui, t);
            ui.separator();
            slice_ui(ui, t, st);
            let want = Request {
                tensor: index,
                spec: st.spec.clone(),
                bins: state.bins,
            };
            if st.want.as_ref() != Some(&want) {
                st.want = Some(want);
                ui.ctx().request_repaint();
            }
            if let Some(e) = &st.error {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
            ui.separator();
            stats_ui(ui, st, state, commands);
            // Histogram and heatmap side by side when there is room, one above the other
            // otherwise.
            if st.heat.is_some() && ui.available_width() >= 600.0 {
                ui.columns(2, |cols| {
                    histogram_ui(&mut cols[0], st, state);
                    heat_ui(&mut cols[1], st, commands);
                });
            } else {
                histogram_ui(ui, st, state);
                heat_ui(ui, st, commands);
            }
            ui.separator();
            values_ui(ui, t, st, commands);
        });
}

fn header_ui(ui: &mut Ui, t: &TensorEntry) {
    ui.label(RichText::new(&t.name).monospace().strong().size(15.0));
    egui::Grid::new("tensor-facts")
        .num_columns(4)
        .spacing([16.0, 2.0])
        .show(ui, |ui| {
            ui.weak("dtype");
            ui.monospace(t.type_name());
            ui.weak("shape");
            ui.monospace(human::shape(&t.shape));
            ui.end_row();
            ui.weak("elements");
            ui.label(format!("{} ({})", t.elements(), human::count(t.elements())));
            ui.weak("bytes");
            ui.label(format!("{} ({})", t.byte_len(), human::bytes(t.byte_len())));
            ui.end_row();
            ui.weak("data offsets");
            ui.monospace(format!("[{}, {}]", t.data_offsets[0], t.data_offsets[1]));
            ui.weak("file offset");
            ui.monospace(t.file_offset.to_string());
            ui.end_row();
            if let (Some(storage), Layout::Strided { offset, strides }) = (&t.storage, &t.layout) {
                ui.weak("storage");
                ui.monospace(format!("{storage} (+{offset} elements)"));
                ui.weak("stride");
                ui.monospace(human::shape(strides));
                ui.end_row();
            }
            if t.byte_order == ByteOrder::Big {
                ui.weak("byte order");
                ui.label("big-endian (swapped when decoded)");
                ui.end_row();
            }
        });
}

/// Per-dimension controls mirroring the text.
fn slice_ui(ui: &mut Ui, t: &TensorEntry, st: &mut Inspector) {
    ui.horizontal(|ui| {
        let label = ui.label("Slice");
        let edit = ui
            .add(
                egui::TextEdit::singleline(&mut st.slice_text)
                    .hint_text("[3, :, 0:128]  (empty: the whole tensor)")
                    .font(egui::TextStyle::Monospace)
                    .desired_width(260.0),
            )
            .labelled_by(label.id);
        let submit = edit.lost_focus() || (edit.changed() && st.slice_text.trim().is_empty());
        if submit {
            match SliceSpec::parse(&st.slice_text).and_then(|s| View::select(t, &s).map(|_| s)) {
                Ok(s) => {
                    st.spec = s;
                    st.slice_error = None;
                }
                Err(e) => st.slice_error = Some(e.to_string()),
            }
        }
        if ui.button("Whole tensor").clicked() {
            st.spec = SliceSpec::default();
            st.slice_text.clear();
            st.slice_error = None;
        }
    });
    if let Some(e) = &st.slice_error {
        ui.colored_label(ui.visuals().error_fg_color, e);
    }
    if t.shape.is_empty() {
        return;
    }
    let mut sels: Vec<Sel> = (0..t.shape.len())
        .map(|d| st.spec.0.get(d).cloned().unwrap_or(Sel::All))
        .collect();
    let mut changed = false;
    egui::Grid::new("slice-dims")
        .num_columns(3)
        .spacing([8.0, 2.0])
        .show(ui, |ui| {
            for (d, (&size, sel)) in t.shape.iter().zip(sels.iter_mut()).enumerate() {
                let label = ui.weak(format!("dim {d} (size {size})"));
                let mode = match sel {
                    Sel::All => 0,
                    Sel::Index(_) => 1,
                    Sel::Range { .. } => 2,
                };
                let mut new_mode = mode;
                egui::ComboBox::from_id_salt(("dim-mode", d))
                    .width(70.0)
                    .selected_text(["all", "index", "range"][mode])
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut new_mode, 0, "all");
                        ui.selectable_value(&mut new_mode, 1, "index");
                        ui.selectable_value(&mut new_mode, 2, "range");
                    })
                    .response
                    .labelled_by(label.id);
                if new_mode != mode {
                    *sel = match new_mode {
                        1 => Sel::Index(0),
                        2 => Sel::Range {
                            start: Some(0),
                            end: Some(size.min(128) as i64),
                            step: 1,
                        },
                        _ => Sel::All,
                    };
                    changed = true;
                }
                let max = size.saturating_sub(1) as i64;
                ui.horizontal(|ui| match sel {
                    Sel::Index(i) => {
                        let mut v = if *i < 0 { *i + size as i64 } else { *i };
                        if ui
                            .add(egui::Slider::new(&mut v, 0..=max.max(0)))
                            .labelled_by(label.id)
                            .changed()
                        {
                            *i = v;
                            changed = true;
                        }
                    }
                    Sel::Range { start, end, .. } => {
                        let mut a = start.unwrap_or(0);
                        let mut b = end.unwrap_or(size as i64);
                        let ra = ui
                            .add(
                                egui::DragValue::new(&mut a)
                                    .range(0..=size as i64)
                                    .prefix("from "),
                            )
                            .labelled_by(label.id);
                        let rb = ui
                            .add(
                                egui::DragValue::new(&mut b)
                                    .range(0..=size as i64)
                                    .prefix("to "),
                            )
                            .labelled_by(label.id);
                        if ra.changed() || rb.changed() {
                            *start = Some(a);
                            *end = Some(b.max(a));
                            changed = true;
                        }
                    }
                    Sel::All => {
                        ui.weak(":");
                    }
                });
                ui.end_row();
            }
        });
    if changed {
        while sels.last() == Some(&Sel::All) {
            sels.pop();
        }
        st.spec = SliceSpec(sels);
        st.slice_text = if st.spec.is_all() {
            String::new()
        } else {
            st.spec.to_string()
        };
        st.slice_error = None;
    }
}

fn stats_ui(ui: &mut Ui, st: &Inspector, state: &mut Persisted, commands: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        ui.strong("Statistics");
        if let Some(job) = st.exact.job() {
            if crate::gui::widgets::progress_row(ui, "exact statistics", job.progress.fraction()) {
                commands.push(Command::Cancel(JobKind::Stats));
            }
        } else if st.sample.running() {
            ui.spinner();
        }
    });
    let Some(a) = &st.result else {
        return;
    };
    if let Some(n) = a.sampled {
        ui.colored_label(
            ui.visuals().warn_fg_color,
            format!("sampled: {n} of the elements, evenly spaced; exact figures follow"),
        );
    }
    let s = &a.stats;
    egui::Grid::new("stats")
        .num_columns(4)
        .striped(true)
        .spacing([18.0, 2.0])
        .show(ui, |ui| {
            let cell = |ui: &mut Ui, k: &str, v: String| {
                ui.weak(k);
                ui.monospace(v);
            };
            cell(ui, "count", s.count.to_string());
            cell(ui, "finite", s.finite.to_string());
            ui.end_row();
            cell(ui, "min", format_float(s.min));
            cell(ui, "max", format_float(s.max));
            ui.end_row();
            cell(ui, "mean", format_float(s.mean));
            cell(ui, "std", format_float(s.std));
            ui.end_row();
            cell(ui, "rms", format_float(s.rms));
            cell(
                ui,
                "zeros",
                format!("{} ({:.1}%)", s.zeros, pct(s.zeros, s.count)),
            );
            ui.end_row();
            cell(ui, "NaN", s.nan.to_string());
            cell(ui, "+Inf / -Inf", format!("{} / {}", s.pos_inf, s.neg_inf));
            ui.end_row();
        });
    if s.finite > 0 {
        let exact = a.percentile_resolution == 0.0;
        ui.horizontal_wrapped(|ui| {
            ui.weak(if exact {
                "percentiles"
            } else {
                "percentiles ≈"
            });
            for (p, v) in &a.percentiles {
                ui.monospace(format!("p{p}: {}", format_float(*v)));
            }
        })
        .response
        .on_hover_text(if exact {
            "exact: every value of this type was counted by bit pattern".to_owned()
        } else {
            format!(
                "read from a 4096-bin histogram: within {} of the exact value",
                format_float(a.percentile_resolution)
            )
        });
    }
    ui.horizontal(|ui| {
        ui.strong("Histogram");
        ui.add(
            egui::Slider::new(&mut state.bins, 8..=1024)
                .logarithmic(true)
                .text("bins"),
        );
        ui.checkbox(&mut state.log_counts, "log counts");
    });
    if s.finite == 0 {
        ui.weak("no finite values to plot");
    }
}

/// The histogram of the current result.
fn histogram_ui(ui: &mut Ui, st: &Inspector, state: &Persisted) {
    let Some(a) = &st.result else { return };
    if a.stats.finite == 0 {
        return;
    }
    let series = [Series {
        name: "values".into(),
        histogram: &a.histogram,
        color: crate::gui::widgets::COLOR_A,
    }];
    histogram_plot(ui, "inspector-histogram", &series, state.log_counts, 220.0);
}

fn pct(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 * 100.0 / b as f64
    }
}

fn values_ui(ui: &mut Ui, t: &TensorEntry, st: &mut Inspector, commands: &mut Vec<Command>) {
    let Ok(view) = View::select(t, &st.spec) else {
        return;
    };
    let (rows, cols) = heatmap::matrix_shape(&view);
    if view.elements() == 0 {
        ui.weak("the selection is empty");
        return;
    }
    ui.horizontal(|ui| {
        ui.strong("Values");
        if rows > GRID_ROWS {
            ui.add(
                egui::DragValue::new(&mut st.grid_row)
                    .range(0..=rows.saturating_sub(GRID_ROWS))
                    .prefix("row "),
            );
        }
        if cols > GRID_COLS {
            ui.add(
                egui::DragValue::new(&mut st.grid_col)
                    .range(0..=cols.saturating_sub(GRID_COLS))
                    .prefix("col "),
            );
        }
        if view.shape.len() > 2 {
            ui.weak("(leading dimensions flattened into rows)");
        }
    });
    let Some(want) = st.grid_key() else { return };
    if st.values_for.as_ref() != Some(&want) {
        // Asked for in this frame: the next frame's logic starts reading it.
        ui.ctx().request_repaint();
    }
    if st.values_job.running() {
        // The worker repaints when the values are there.
        ui.horizontal(|ui| {
            ui.spinner();
            ui.weak("reading values…");
            if ui
                .small_button("Cancel")
                .on_hover_text("Stop reading the values")
                .clicked()
            {
                commands.push(Command::Cancel(JobKind::Values));
            }
        });
    } else if st.values_for.as_ref() == Some(&want)
        && st.values.as_ref().is_none_or(|v| v.key != want)
        && st.values_job.ended() == Some(&Err(JobError::Cancelled))
    {
        ui.weak("Reading the values was cancelled: move to another position to read them.");
    }
    // The grid read for this tensor and slice; while a new position is being read, the
    // previous one stays shown.
    let Some(values) = st
        .values
        .as_ref()
        .filter(|v| v.key.tensor == want.tensor && v.key.spec == want.spec)
    else {
        return;
    };
    let grid = match &values.cells {
        Ok(grid) => grid,
        Err(e) => {
            ui.colored_label(ui.visuals().error_fg_color, e);
            return;
        }
    };
    let (row0, col0) = (values.key.row, values.key.col);
    egui::ScrollArea::horizontal()
        .id_salt("values-grid")
        .show(ui, |ui| {
            egui::Grid::new("values")
                .striped(true)
                .spacing([12.0, 1.0])
                .show(ui, |ui| {
                    ui.label("");
                    for c in 0..grid.first().map_or(0, Vec::len) {
                        ui.weak((col0 + c as u64).to_string());
                    }
                    ui.end_row();
                    for (r, row) in grid.iter().enumerate() {
                        ui.weak((row0 + r as u64).to_string());
                        for v in row {
                            ui.monospace(v);
                        }
                        ui.end_row();
                    }
                });
        });
}

fn heat_ui(ui: &mut Ui, st: &mut Inspector, commands: &mut Vec<Command>) {
    if let Some(e) = &st.heat_error {
        ui.colored_label(ui.visuals().error_fg_color, e);
    }
    let Some((h, tex, diverging)) = &mut st.heat else {
        if st.heat_preview.running() {
            ui.spinner();
        }
        return;
    };
    ui.horizontal(|ui| {
        ui.strong("Heatmap");
        if let Some(job) = st.heat_exact.job()
            && crate::gui::widgets::progress_row(ui, "block means", job.progress.fraction())
        {
            commands.push(Command::Cancel(JobKind::Heatmap));
        }
    });
    if tex.is_none() {
        let (rgba, div) = heatmap_pixels(h);
        *diverging = div;
        *tex = Some(ui.ctx().load_texture(
            "inspector-heatmap",
            egui::ColorImage::from_rgba_unmultiplied([h.width, h.height], &rgba),
            egui::TextureOptions::NEAREST,
        ));
    }
    if let Some(tex) = tex {
        let width = ui.available_width().min(512.0);
        heatmap_image(
            ui,
            tex,
            h,
            *diverging,
            egui::vec2(width, width.min(360.0)),
            "heatmap",
        );
    }
}
