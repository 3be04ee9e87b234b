//! The Code tab of a TorchScript archive: the source files `torch.jit.load` would compile and
//! run, shown read-only in monospace, with each line that reaches files, other processes, the
//! network or native code marked in the gutter and explained on hover.
//!
//! A file may be as large as the code limit allows: only the rows in sight are laid out
//! (`ScrollArea::show_rows`), a file's line starts are found once when it is selected, and a
//! very long line is shown cut.
//!
//! Owns [`CodeView`] (the file shown, the scroll target). A pure view of the archive's code,
//! which the open job already read: Must not import: `app`, `command`, `jobs`.

use std::collections::HashMap;
use std::ops::Range;

use egui::{RichText, Ui};

use crate::gui::widgets::risk_color;
use crate::pickle::policy::Risk;
use crate::pickle::torchscript::{Code, Flag};

/// Characters of one line laid out; the rest is summarised.
const MAX_LINE_CHARS: usize = 2000;

/// Which file is shown and where.
#[derive(Default)]
pub struct CodeView {
    /// Index into `Code::files` (`None`: not chosen yet).
    file: Option<usize>,
    /// What is computed once per file shown.
    shown: Option<Shown>,
    /// Per file: flagged lines and the worst risk among them (computed once).
    summary: Option<Vec<(usize, Option<Risk>)>>,
    /// A row to bring into view on the next frame.
    scroll_to: Option<usize>,
    /// The flagged row "Next flagged line" went to last.
    last_jump: Option<usize>,
}

/// The file on screen, prepared.
struct Shown {
    /// Index into `Code::files`.
    file: usize,
    /// Byte range of each line.
    lines: Vec<Range<usize>>,
    /// Indexes into `Code::flagged`, by line number.
    flags: HashMap<u64, Vec<usize>>,
    /// Rows (from 0) of the flagged lines, sorted.
    flagged_rows: Vec<usize>,
}

impl CodeView {
    /// The file to show first: the one with the worst flag, else the first.
    fn initial(code: &Code) -> usize {
        code.flagged
            .iter()
            .max_by_key(|f| f.risk)
            .and_then(|f| code.files.iter().position(|c| c.path == f.file))
            .unwrap_or(0)
    }
}

/// The path of a source file below its archive's `code/` folder.
fn short(path: &str) -> &str {
    path.find("code/")
        .and_then(|i| path.get(i + "code/".len()..))
        .unwrap_or(path)
}

/// Draws the Code tab.
pub fn code_ui(ui: &mut Ui, code: &Code, view: &mut CodeView) {
    ui.horizontal_wrapped(|ui| {
        ui.label(format!(
            "TorchScript program: {} source files, {} lines. torch.jit.load compiles and runs them; here they are only read.",
            code.files.len(),
            code.lines
        ));
        let dangerous = code
            .flagged
            .iter()
            .filter(|f| f.risk == Risk::Dangerous)
            .count();
        if dangerous > 0 {
            ui.colored_label(
                risk_color(Risk::Dangerous, ui),
                RichText::new(if dangerous == 1 {
                    "1 line reaches files, other processes, the network or native code".to_string()
                } else {
                    format!(
                        "{dangerous} lines reach files, other processes, the network or native code"
                    )
                })
                .strong(),
            );
        } else {
            ui.weak("No line reaches files, other processes, the network or native code.");
        }
    });
    if let Some(why) = &code.incomplete {
        ui.colored_label(ui.visuals().warn_fg_color, format!("Not fully read: {why}"));
    }
    if code.files.is_empty() {
        ui.weak("The archive has no source files under code/.");
        return;
    }
    let file = *view.file.get_or_insert_with(|| CodeView::initial(code));
    let file = file.min(code.files.len() - 1);
    ui.separator();

    egui::Panel::left("code_files")
        .resizable(true)
        .default_size(220.0)
        .size_range(120.0..=800.0)
        .show(ui, |ui| {
            let summary = view.summary.get_or_insert_with(|| {
                let mut out = vec![(0usize, None::<Risk>); code.files.len()];
                let index: HashMap<&str, usize> = code
                    .files
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (f.path.as_str(), i))
                    .collect();
                for f in &code.flagged {
                    if let Some(slot) = index.get(f.file.as_str()).and_then(|&i| out.get_mut(i)) {
                        slot.0 += 1;
                        slot.1 = slot.1.max(Some(f.risk));
                    }
                }
                out
            });
            let row_height = ui
                .spacing()
                .interact_size
                .y
                .max(ui.text_style_height(&egui::TextStyle::Monospace));
            let mut clicked = None;
            egui::ScrollArea::vertical()
                .id_salt("code_file_list")
                .auto_shrink([false, false])
                .show_rows(ui, row_height, code.files.len(), |ui, rows| {
                    for i in rows {
                        let (Some(f), Some(&(n, worst))) = (code.files.get(i), summary.get(i))
                        else {
                            continue;
                        };
                        let mut text = RichText::new(short(&f.path)).monospace();
                        if let Some(r) = worst.filter(|r| *r > Risk::Info) {
                            text = text.color(risk_color(r, ui));
                        }
                        let label = ui.add(
                            egui::Button::selectable(i == file, text)
                                .wrap_mode(egui::TextWrapMode::Truncate),
                        );
                        let label = if n > 0 {
                            label.on_hover_text(format!("{}: {n} flagged lines", f.path))
                        } else {
                            label.on_hover_text(format!("{}: {} lines", f.path, f.lines))
                        };
                        if label.clicked() && i != file {
                            clicked = Some(i);
                        }
                    }
                });
            if let Some(i) = clicked {
                view.file = Some(i);
                view.scroll_to = Some(0);
                view.last_jump = None;
            }
        });

    let Some(source) = code.files.get(file) else {
        return;
    };
    if view.shown.as_ref().is_none_or(|s| s.file != file) {
        let mut flags: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, f) in code.flagged.iter().enumerate() {
            if f.file == source.path {
                flags.entry(f.line).or_default().push(i);
            }
        }
        let mut flagged_rows: Vec<usize> = flags
            .keys()
            .map(|l| usize::try_from(l.saturating_sub(1)).unwrap_or(usize::MAX))
            .collect();
        flagged_rows.sort_unstable();
        view.shown = Some(Shown {
            file,
            lines: line_ranges(&source.text),
            flags,
            flagged_rows,
        });
    }
    let Some(shown) = view.shown.as_ref() else {
        return;
    };
    let lines = &shown.lines;

    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(&source.path).monospace().strong());
        ui.weak(format!(
            "{} lines, {} bytes, read-only",
            source.lines, source.bytes
        ));
        if !shown.flagged_rows.is_empty() && ui.button("Next flagged line").clicked() {
            let rows = &shown.flagged_rows;
            let next = rows
                .iter()
                .copied()
                .find(|r| view.last_jump.is_none_or(|last| *r > last))
                .or(rows.first().copied());
            view.scroll_to = next;
            view.last_jump = next;
        }
    });

    let row_height = ui.text_style_height(&egui::TextStyle::Monospace);
    let spacing = ui.spacing().item_spacing.y;
    let digits = lines.len().max(1).to_string().len();
    let mut area = egui::ScrollArea::both()
        .id_salt(("code_text", file))
        .auto_shrink([false, false]);
    // Forced once: afterwards the user scrolls freely.
    if let Some(row) = view.scroll_to.take() {
        // A few rows of context above the target.
        let top = row.saturating_sub(3) as f32 * (row_height + spacing);
        area = area.vertical_scroll_offset(top);
    }
    area.show_rows(ui, row_height, lines.len(), |ui, rows| {
        for row in rows {
            let Some(range) = lines.get(row) else {
                continue;
            };
            let text = source.text.get(range.clone()).unwrap_or("");
            let number = row as u64 + 1;
            let here: Vec<&Flag> = shown
                .flags
                .get(&number)
                .into_iter()
                .flatten()
                .filter_map(|&i| code.flagged.get(i))
                .collect();
            line_ui(ui, number, digits, text, &here);
        }
    });
}

/// One row: the gutter marker, the line number and the text.
fn line_ui(ui: &mut Ui, number: u64, digits: usize, text: &str, flags: &[&Flag]) {
    let worst = flags.iter().map(|f| f.risk).max();
    let background = ui.painter().add(egui::Shape::Noop);
    let row = ui.horizontal(|ui| {
        let marker = match worst {
            Some(r) => ui.label(RichText::new("●").monospace().color(risk_color(r, ui))),
            None => ui.label(RichText::new(" ").monospace()),
        };
        ui.label(
            RichText::new(format!("{number:>digits$}"))
                .monospace()
                .weak(),
        );
        // Only the start of a very long line is laid out (and looked at).
        let shown: std::borrow::Cow<'_, str> = match text.char_indices().nth(MAX_LINE_CHARS) {
            Some((cut, _)) => format!(
                "{} … ({} bytes in this line)",
                text.get(..cut).unwrap_or(""),
                text.len()
            )
            .into(),
            None => text.into(),
        };
        let label = ui.add(
            egui::Label::new(RichText::new(shown.as_ref()).monospace())
                .wrap_mode(egui::TextWrapMode::Extend),
        );
        if !flags.is_empty() {
            let why = flags
                .iter()
                .map(|f| format!("{} — {}", f.call, f.reason))
                .collect::<Vec<_>>()
                .join("\n");
            marker.on_hover_text(&why);
            label.on_hover_text(why);
        }
    });
    if let Some(r) = worst {
        // The whole visible width, so that the mark shows however far the text is scrolled.
        let mut rect = row.response.rect.expand2(egui::vec2(2.0, 1.0));
        rect.max.x = rect.max.x.max(ui.clip_rect().right());
        let color = risk_color(r, ui).gamma_multiply(0.18);
        ui.painter()
            .set(background, egui::Shape::rect_filled(rect, 2.0, color));
    }
}

/// The byte range of each line of `text` (without its line break).
fn line_ranges(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        if b == b'\n' {
            let end = if i > start && text.as_bytes().get(i - 1) == Some(&b'\r') {
                i - 1
            } else {
                i
            };
            out.push(start..end);
            start = i + 1;
        }
    }
    if start < text.len() {
        out.push(start..text.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_short_paths() {
        assert_eq!(line_ranges("a\r\nbc\n\nd"), [0..1, 3..5, 6..6, 7..8]);
        assert_eq!(line_ranges(""), Vec::<Range<usize>>::new());
        assert_eq!(short("m/code/__torch__/x.py"), "__torch__/x.py");
    }
}
