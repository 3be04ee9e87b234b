//! Small widgets shared by the views: a collapsible JSON tree, histogram plots, heatmap images
//! with a colour scale, and the colours that mean safe/suspicious/dangerous.
//!
//! Owns nothing: drawing helpers, colours, name matching and [`display_name`]. Every view may
//! use it; Must not import: `app`, `command`, `state`,
//! `table`, `inspector`, `metadata`, `pickle`, `code`, `lineage`, `start`, `package`.
//!
//! `clippy::indexing_slicing` is allowed here: histogram bins are indexed within the histogram.

#![allow(clippy::indexing_slicing)]

use egui::{Color32, RichText, Ui};
use egui_plot::{Bar, BarChart, GridInput, GridMark, Legend, Plot};

use crate::analysis::Histogram;
use crate::analysis::decode::format_float;
use crate::analysis::heatmap::Heatmap;
use crate::pickle::policy::{Risk, Verdict};

/// Colour of a verdict.
pub fn verdict_color(v: Verdict, ui: &Ui) -> Color32 {
    let dark = ui.visuals().dark_mode;
    match (v, dark) {
        (Verdict::Safe, true) => Color32::from_rgb(80, 200, 120),
        (Verdict::Safe, false) => Color32::from_rgb(20, 130, 60),
        (Verdict::Suspicious, true) => Color32::from_rgb(240, 180, 60),
        (Verdict::Suspicious, false) => Color32::from_rgb(170, 110, 0),
        (Verdict::Dangerous, true) => Color32::from_rgb(255, 95, 85),
        (Verdict::Dangerous, false) => Color32::from_rgb(190, 30, 30),
    }
}

/// Colour of a finding.
pub fn risk_color(r: Risk, ui: &Ui) -> Color32 {
    match r {
        Risk::Info => ui.visuals().weak_text_color(),
        Risk::Suspicious => verdict_color(Verdict::Suspicious, ui),
        Risk::Dangerous => verdict_color(Verdict::Dangerous, ui),
    }
}

/// The two colours of a comparison.
pub const COLOR_A: Color32 = Color32::from_rgb(80, 150, 255);
/// Second checkpoint.
pub const COLOR_B: Color32 = Color32::from_rgb(255, 150, 60);
/// Differences.
pub const COLOR_DIFF: Color32 = Color32::from_rgb(190, 110, 255);

/// A histogram to draw.
pub struct Series<'a> {
    /// Legend name.
    pub name: String,
    /// Counts.
    pub histogram: &'a Histogram,
    /// Fill colour.
    pub color: Color32,
}

/// A bar chart of one or more histograms on one plot (overlaid, translucent), counts linear or
/// log-scaled (the plot has no log axis: it shows log10(count+1) with ticks at 1, 10, 100...).
pub fn histogram_plot(ui: &mut Ui, id: &str, series: &[Series<'_>], log: bool, height: f32) {
    let mut plot = Plot::new(id)
        .height(height)
        .x_grid_spacer(nice_grid)
        .x_axis_formatter(|mark: GridMark, _range: &std::ops::RangeInclusive<f64>| {
            format_float(mark.value)
        })
        .y_axis_min_width(36.0)
        .allow_scroll(false)
        .allow_drag(false)
        .allow_zoom([true, false])
        .allow_double_click_reset(true)
        .x_axis_label("value")
        .y_axis_label(if log { "count (log)" } else { "count" })
        .include_y(0.0)
        .label_formatter(|pos| {
            let (egui_plot::HoverPosition::NearDataPoint { position, .. }
            | egui_plot::HoverPosition::Elsewhere { position }) = pos;
            Some(format_float(position.x))
        });
    if series.len() > 1 {
        plot = plot.legend(Legend::default());
    }
    if !log {
        plot = plot.y_grid_spacer(nice_grid);
    }
    if log {
        plot = plot
            .y_axis_formatter(|mark: GridMark, _range: &std::ops::RangeInclusive<f64>| {
                let c = (10f64.powf(mark.value) - 1.0).round();
                if c >= 1e5 {
                    format!("{c:.0e}")
                } else {
                    format!("{c}")
                }
            })
            .y_grid_spacer(|input: GridInput| {
                let (lo, hi) = input.bounds;
                std::iter::once(0.0)
                    .chain((0..15).map(|k| (10f64.powi(k) + 1.0).log10()))
                    .filter(|&y| y >= lo && y <= hi)
                    .map(|value| GridMark {
                        value,
                        step_size: 1.0,
                    })
                    .collect()
            });
    }
    plot.show(ui, |plot_ui| {
        for s in series {
            let h = s.histogram;
            let width = if h.width() > 0.0 { h.width() } else { 1.0 };
            let bars: Vec<Bar> = h
                .counts
                .iter()
                .enumerate()
                .map(|(i, &c)| {
                    let height = if log {
                        (c as f64 + 1.0).log10()
                    } else {
                        c as f64
                    };
                    let lo = h.lo + i as f64 * width;
                    Bar::new(h.center(i), height).width(width).name(format!(
                        "[{}, {}): {c}",
                        format_float(lo),
                        format_float(lo + width)
                    ))
                })
                .collect();
            let fill = if series.len() > 1 {
                s.color.gamma_multiply(0.55)
            } else {
                s.color
            };
            plot_ui.bar_chart(BarChart::new(s.name.clone(), bars).color(fill));
        }
    });
}

/// Grid marks at 1, 2 or 5 × 10^k, about six across the visible range.
fn nice_grid(input: GridInput) -> Vec<GridMark> {
    let (lo, hi) = input.bounds;
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return Vec::new();
    }
    let raw = span / 6.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last)
        .take(100)
        .map(|k| GridMark {
            value: k as f64 * step,
            step_size: step,
        })
        .collect()
}

/// A blue–white–red colour for diverging data (`t` in -1..1), or a perceptual ramp for
/// sequential data (`t` in 0..1).
pub fn colormap(t: f32, diverging: bool) -> Color32 {
    fn lerp(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
        [
            a[0] + (b[0] - a[0]) * t,
            a[1] + (b[1] - a[1]) * t,
            a[2] + (b[2] - a[2]) * t,
        ]
    }
    let c = if diverging {
        let t = t.clamp(-1.0, 1.0);
        if t < 0.0 {
            lerp([0.97, 0.97, 0.97], [0.13, 0.4, 0.8], -t)
        } else {
            lerp([0.97, 0.97, 0.97], [0.8, 0.15, 0.15], t)
        }
    } else {
        // A viridis-like ramp through five stops.
        const STOPS: [[f32; 3]; 5] = [
            [0.27, 0.0, 0.33],
            [0.23, 0.32, 0.55],
            [0.13, 0.57, 0.55],
            [0.37, 0.79, 0.38],
            [0.99, 0.91, 0.14],
        ];
        let t = t.clamp(0.0, 1.0) * 4.0;
        let i = (t.floor() as usize).min(3);
        lerp(STOPS[i], STOPS[i + 1], t - i as f32)
    };
    Color32::from_rgb(
        (c[0] * 255.0) as u8,
        (c[1] * 255.0) as u8,
        (c[2] * 255.0) as u8,
    )
}

/// RGBA pixels of a heatmap: NaN pixels are transparent grey. Data that straddles zero is drawn
/// with the diverging map centred on 0.
pub fn heatmap_pixels(h: &Heatmap) -> (Vec<u8>, bool) {
    let diverging = h.lo < 0.0 && h.hi > 0.0;
    let scale = if diverging {
        h.lo.abs().max(h.hi.abs())
    } else {
        (h.hi - h.lo).max(f32::MIN_POSITIVE)
    };
    let mut rgba = Vec::with_capacity(h.values.len() * 4);
    for &v in &h.values {
        let c = if !v.is_finite() {
            Color32::from_rgba_unmultiplied(128, 128, 128, 80)
        } else if diverging {
            colormap(v / scale, true)
        } else {
            colormap((v - h.lo) / scale, false)
        };
        rgba.extend_from_slice(&c.to_array());
    }
    (rgba, diverging)
}

/// The least height of a heatmap of one or a few rows, and the least width of one of a few
/// columns: kept to the matrix's aspect, a `[1, 512]` slice would be a line one pixel high.
pub const HEATMAP_STRIP: f32 = 36.0;

/// The size a heatmap of `h` is drawn at within `max`: the matrix's aspect, except that neither
/// side is thinner than [`HEATMAP_STRIP`] (a row vector becomes a strip whose cells are stretched
/// tall, a column vector one stretched wide).
pub fn heatmap_size(h: &Heatmap, max: egui::Vec2) -> egui::Vec2 {
    let aspect = h.width.max(1) as f32 / h.height.max(1) as f32;
    let mut size = egui::vec2(max.x, max.x / aspect);
    if size.y > max.y {
        size = egui::vec2(max.y * aspect, max.y);
    }
    egui::vec2(
        size.x.max(HEATMAP_STRIP.min(max.x)),
        size.y.max(HEATMAP_STRIP.min(max.y)),
    )
}

/// Shows a heatmap texture (made once per heatmap) scaled to fit `max` (see [`heatmap_size`]),
/// with its value range. `label` names the image for screen readers (and tests).
pub fn heatmap_image(
    ui: &mut Ui,
    tex: &egui::TextureHandle,
    h: &Heatmap,
    diverging: bool,
    max: egui::Vec2,
    label: &str,
) {
    let size = heatmap_size(h, max);
    ui.add(
        egui::Image::new(tex)
            .fit_to_exact_size(size)
            .maintain_aspect_ratio(false)
            .alt_text(label),
    );
    ui.horizontal(|ui| {
        let (lo, hi) = if diverging {
            let m = h.lo.abs().max(h.hi.abs());
            (-m, m)
        } else {
            (h.lo, h.hi)
        };
        ui.small(format_float(f64::from(lo)));
        let (rect, _) = ui.allocate_exact_size(egui::vec2(120.0, 10.0), egui::Sense::hover());
        let steps = 24;
        for i in 0..steps {
            let t = i as f32 / (steps - 1) as f32;
            let c = if diverging {
                colormap(t * 2.0 - 1.0, true)
            } else {
                colormap(t, false)
            };
            let x0 = rect.left() + rect.width() * i as f32 / steps as f32;
            let r = egui::Rect::from_min_max(
                egui::pos2(x0, rect.top()),
                egui::pos2(x0 + rect.width() / steps as f32 + 0.5, rect.bottom()),
            );
            ui.painter().rect_filled(r, 0.0, c);
        }
        ui.small(format_float(f64::from(hi)));
        if h.block != (1, 1) {
            ui.weak(format!(
                "{}×{} elements per pixel{}",
                h.block.0,
                h.block.1,
                if h.sampled {
                    ", sampled"
                } else {
                    ", block means"
                }
            ));
        }
    });
}

/// A collapsible view of a JSON value (configs stored as strings, pickle object trees).
pub fn json_tree(ui: &mut Ui, value: &serde_json::Value, id: egui::Id, depth: usize) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                json_entry(ui, k, v, id.with(k), depth);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate().take(1000) {
                json_entry(ui, &i.to_string(), v, id.with(i), depth);
            }
            if items.len() > 1000 {
                ui.weak(format!("… {} more", items.len() - 1000));
            }
        }
        other => {
            ui.label(scalar_text(other));
        }
    }
}

fn json_entry(ui: &mut Ui, key: &str, v: &serde_json::Value, id: egui::Id, depth: usize) {
    use serde_json::Value;
    match v {
        Value::Object(m) if !m.is_empty() && depth < 32 => {
            egui::CollapsingHeader::new(
                RichText::new(format!("{key}  {{{}}}", m.len())).monospace(),
            )
            .id_salt(id)
            .default_open(depth == 0 && m.len() <= 12)
            .show(ui, |ui| json_tree(ui, v, id, depth + 1));
        }
        Value::Array(a) if a.iter().any(|x| x.is_object() || x.is_array()) && depth < 32 => {
            egui::CollapsingHeader::new(RichText::new(format!("{key}  [{}]", a.len())).monospace())
                .id_salt(id)
                .default_open(false)
                .show(ui, |ui| json_tree(ui, v, id, depth + 1));
        }
        other => {
            ui.horizontal_wrapped(|ui| {
                ui.label(RichText::new(format!("{key}:")).monospace().strong());
                let text = match other {
                    Value::Array(_) => other.to_string(),
                    _ => scalar_text(other),
                };
                ui.add(egui::Label::new(RichText::new(text).monospace()).wrap());
            });
        }
    }
}

fn scalar_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A progress bar with a Cancel button; true when Cancel was clicked.
pub fn progress_row(ui: &mut Ui, label: &str, fraction: f32) -> bool {
    let mut cancel = false;
    ui.horizontal(|ui| {
        ui.add(
            egui::ProgressBar::new(fraction)
                .desired_width(220.0)
                .show_percentage()
                .text(label),
        );
        cancel = ui.button("Cancel").clicked();
    });
    cancel
}

/// The progress row of one job: a bar when its total is known (a spinner before that), what it
/// does and on which file, and its own Cancel button. True when Cancel was clicked.
pub fn job_row(ui: &mut Ui, status: &crate::gui::jobs::JobStatus) -> bool {
    let text = status.text();
    let mut cancel = false;
    ui.horizontal(|ui| {
        match status.fraction() {
            Some(f) => {
                ui.add(
                    egui::ProgressBar::new(f)
                        .desired_width(220.0)
                        .show_percentage(),
                );
            }
            None => {
                ui.spinner();
            }
        }
        ui.label(&text);
        cancel = ui
            .button("Cancel")
            .on_hover_text(format!("Stop {text}"))
            .clicked();
    });
    cancel
}

/// The table filter's glob, shared with `ckptscope stats --tensor`.
pub use crate::analysis::select::glob_match;

/// Does `name` pass the filter? Globs when the filter has `*` or `?`, else a case-insensitive
/// substring; several words must all match.
pub fn filter_match(filter: &str, name: &str) -> bool {
    filter.split_whitespace().all(|word| {
        if word.contains(['*', '?']) {
            glob_match(word, name)
        } else {
            name.to_lowercase().contains(&word.to_lowercase())
        }
    })
}

/// The file name, for titles and labels.
pub fn display_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_words_or_globs() {
        assert!(filter_match(
            "MLP weight",
            "model.layers.3.mlp.up_proj.weight"
        ));
        assert!(!filter_match("attn", "model.layers.3.mlp.up_proj.weight"));
        assert!(filter_match("layers.1?.*", "layers.12.w"));
    }

    #[test]
    fn thin_heatmaps_are_strips_and_others_keep_their_aspect() {
        let heat = |width, height| Heatmap {
            width,
            height,
            values: vec![0.0; width * height],
            lo: 0.0,
            hi: 1.0,
            block: (1, 1),
            sampled: false,
        };
        let max = egui::vec2(512.0, 360.0);
        assert_eq!(
            heatmap_size(&heat(512, 1), max),
            egui::vec2(512.0, HEATMAP_STRIP)
        );
        assert_eq!(
            heatmap_size(&heat(1, 512), max),
            egui::vec2(HEATMAP_STRIP, 360.0)
        );
        assert_eq!(heatmap_size(&heat(64, 64), max), egui::vec2(360.0, 360.0));
        assert_eq!(heatmap_size(&heat(128, 64), max), egui::vec2(512.0, 256.0));
        // Never more than the room given.
        let tiny = egui::vec2(20.0, 10.0);
        assert_eq!(heatmap_size(&heat(512, 1), tiny), egui::vec2(20.0, 10.0));
    }

    #[test]
    fn colormaps_cover_their_range() {
        assert_ne!(colormap(0.0, false), colormap(1.0, false));
        assert_eq!(colormap(0.0, true), colormap(0.0, true));
        assert_ne!(colormap(-1.0, true), colormap(1.0, true));
    }
}
