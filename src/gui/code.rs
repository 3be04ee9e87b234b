//! The Code tab of a TorchScript archive: the source files `torch.jit.load` would compile and
//! run, shown read-only in monospace, with each line that reaches files, other processes, the
//! network or native code marked in the gutter and explained on hover.
//!
//! A file may be as large as the code limit allows: only the rows in sight are laid out
//! (`ScrollArea::show_rows`), a file's line starts are found once when it is selected, and a
//! very long line is shown cut.

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
    /// Byte ranges of the lines of the file they were computed for.
    lines: Option<(usize, Vec<Range<usize>>)>,
    /// A row to bring into view on the next frame.
    scroll_to: Option<usize>,
    /// The flagged row "Next flagged line" went to last.
    last_jump: Option<usize>,
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
            egui::ScrollArea::vertical()
                .id_salt("code_file_list")
                .auto_shrink([false, false])
                .show(ui, |ui| {
                    for (i, f) in code.files.iter().enumerate() {
                        let worst = code.flags_of(&f.path).map(|g| g.risk).max();
                        let n = code.flags_of(&f.path).count();
                        let mut text = RichText::new(short(&f.path)).monospace();
                        if let Some(r) = worst.filter(|r| *r > Risk::Info) {
                            text = text.color(risk_color(r, ui));
                        }
                        let label = ui.selectable_label(i == file, text);
                        let label = if n > 0 {
                            label.on_hover_text(format!("{n} flagged lines"))
                        } else {
                            label.on_hover_text(format!("{} lines", f.lines))
                        };
                        if label.clicked() && i != file {
                            view.file = Some(i);
                            view.scroll_to = Some(0);
                            view.last_jump = None;
                        }
                    }
                });
        });

    let Some(source) = code.files.get(file) else {
        return;
    };
    if view.lines.as_ref().is_none_or(|(f, _)| *f != file) {
        view.lines = Some((file, line_ranges(&source.text)));
    }
    let Some((_, lines)) = &view.lines else {
        return;
    };
    let flags: Vec<&Flag> = code.flags_of(&source.path).collect();

    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(&source.path).monospace().strong());
        ui.weak(format!(
            "{} lines, {} bytes, read-only",
            source.lines, source.bytes
        ));
        if !flags.is_empty() && ui.button("Next flagged line").clicked() {
            let mut rows: Vec<usize> = flags
                .iter()
                .map(|f| usize::try_from(f.line.saturating_sub(1)).unwrap_or(usize::MAX))
                .collect();
            rows.sort_unstable();
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
            let here: Vec<&&Flag> = flags.iter().filter(|f| f.line == number).collect();
            line_ui(ui, number, digits, text, &here);
        }
    });
}

/// One row: the gutter marker, the line number and the text.
fn line_ui(ui: &mut Ui, number: u64, digits: usize, text: &str, flags: &[&&Flag]) {
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
        let shown: std::borrow::Cow<'_, str> = if text.chars().count() > MAX_LINE_CHARS {
            let cut: String = text.chars().take(MAX_LINE_CHARS).collect();
            format!("{cut} … ({} characters)", text.chars().count()).into()
        } else {
            text.into()
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
