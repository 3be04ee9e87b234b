//! Pickle files in the window: a red/amber/green banner with the verdict and what it means,
//! the findings explained, the actions (scan again, convert, show withheld tensors), and the
//! non-tensor values of the file.
//!
//! A pure view of the scan report the open job made: it pushes [`Command`]s (rescan, convert,
//! show withheld tensors) and switches the document's [`Tab`]. Must not import: `app`,
//! `doc`.

use egui::{RichText, Ui};

use crate::format::PickleReport;
use crate::gui::command::Command;
use crate::gui::tab::Tab;
use crate::gui::widgets::{risk_color, verdict_color};
use crate::pickle::policy::{Risk, Verdict};

fn verdict_text(report: &PickleReport) -> &'static str {
    if report.torchscript.is_some() {
        return match report.verdict {
            Verdict::Dangerous => {
                "DANGEROUS TorchScript program: torch.jit.load compiles and runs its code, and that code (or a pickle) reaches files, other processes, the network or native code (see below and the Code tab). \
                 ckptscope read it without running anything. Do not load it."
            }
            _ if report.read_verdict() == Verdict::Safe => {
                "TorchScript program (suspicious): torch.jit.load compiles and runs the code in code/ (the Code tab shows it). \
                 Its pickles hold only data and no line reaches files, processes, the network or native code; converting keeps the weights and drops the code."
            }
            _ => {
                "SUSPICIOUS TorchScript program: torch.jit.load compiles and runs its code, and its pickles hold things outside the allowlist. \
                 ckptscope read it without running anything."
            }
        };
    }
    match report.verdict {
        Verdict::Safe => {
            "SAFE pickle: it imports only allowlisted data types (torch, collections, NumPy arrays...): loading it runs no code. \
             Still a pickle: converting it to safetensors removes the question for good."
        }
        Verdict::Suspicious => {
            "SUSPICIOUS pickle: loading it with torch.load or pickle imports or calls things outside the allowlist. \
             ckptscope read it without running anything."
        }
        Verdict::Dangerous => {
            "DANGEROUS pickle: loading it with torch.load or pickle RUNS CODE (see below). \
             ckptscope read it without running anything. Do not load it in Python."
        }
    }
}

/// The banner under the summary.
pub fn banner_ui(ui: &mut Ui, report: &PickleReport, commands: &mut Vec<Command>, tab: &mut Tab) {
    let color = verdict_color(report.verdict, ui);
    egui::Frame::new()
        .fill(color.gamma_multiply(0.12))
        .stroke(egui::Stroke::new(1.5, color))
        .inner_margin(8)
        .corner_radius(4)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal_wrapped(|ui| {
                ui.label(RichText::new(verdict_text(report)).color(color).strong());
            });
            if let Some(w) = &report.weights_only {
                // The second question, apart from the verdict: will torch's default loader take it?
                ui.horizontal_wrapped(|ui| {
                    ui.label(RichText::new("torch.load:").strong());
                    ui.label(w.line());
                });
            }
            let serious: Vec<_> = report.findings.iter().filter(|f| f.risk > Risk::Info).collect();
            for f in serious.iter().take(3) {
                ui.horizontal_wrapped(|ui| {
                    if let Some(g) = &f.global {
                        ui.label(RichText::new(g).monospace().color(risk_color(f.risk, ui)));
                    }
                    ui.label(&f.reason);
                });
            }
            if serious.len() > 3 {
                ui.weak(format!("… and {} more findings", serious.len() - 3));
            }
            ui.horizontal(|ui| {
                if ui.button("Scan again").clicked() {
                    commands.push(Command::Rescan);
                }
                if ui.button("Convert to safetensors").on_hover_text("Writes the .safetensors file next to this one (model.safetensors for pytorch_model.bin); never replaces a file").clicked() {
                    commands.push(Command::ConvertHere);
                }
                if ui.button("Convert to…").clicked() {
                    commands.push(Command::ConvertDialog);
                }
                if report.withheld && ui.button("Show tensors anyway").on_hover_text("Reads the tensor layout from the pickle without executing it").clicked() {
                    commands.push(Command::ShowWithheldTensors);
                }
                if ui.button("All findings and values").clicked() {
                    *tab = Tab::Scan;
                }
                if report.torchscript.is_some() && ui.button("Show the code").on_hover_text("The TorchScript source files, read-only, flagged lines marked").clicked() {
                    *tab = Tab::Code;
                }
            });
            if report.withheld {
                ui.weak("Tensors are not listed for files that are not safe; nothing is executed either way.");
            }
        });
}

/// The scan tab: every finding, the pickle streams, unsupported tensors, non-tensor values.
pub fn scan_ui(ui: &mut Ui, report: &PickleReport, commands: &mut Vec<Command>) {
    egui::ScrollArea::vertical()
        .id_salt("scan")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label(
                    RichText::new(format!("Verdict: {}", report.verdict.name().to_uppercase()))
                        .strong()
                        .color(verdict_color(report.verdict, ui)),
                );
                if ui.button("Scan again").clicked() {
                    commands.push(Command::Rescan);
                }
            });
            ui.strong(format!("Findings ({})", report.findings.len()));
            if report.findings.is_empty() {
                ui.label("None: only allowlisted globals, calls and persistent ids.");
            }
            for f in &report.findings {
                let c = risk_color(f.risk, ui);
                ui.horizontal_wrapped(|ui| {
                    ui.colored_label(
                        c,
                        RichText::new(format!("{:?}", f.risk).to_lowercase()).strong(),
                    );
                    if let Some(g) = &f.global {
                        ui.label(RichText::new(g).monospace().color(c));
                    }
                    let mut place = Vec::new();
                    if let Some(m) = &f.member {
                        place.push(m.clone());
                    }
                    if let Some(o) = f.offset {
                        place.push(format!("offset {o}"));
                    }
                    if let Some(op) = f.opcode {
                        place.push(op.to_string());
                    }
                    if f.count > 1 {
                        place.push(format!("{} times", f.count));
                    }
                    ui.weak(place.join(" · "));
                });
                ui.indent(("finding", f.offset, &f.reason), |ui| {
                    ui.add(egui::Label::new(&f.reason).wrap());
                });
            }
            ui.separator();
            ui.strong(format!("Pickle streams ({})", report.streams.len()));
            for s in &report.streams {
                ui.horizontal_wrapped(|ui| {
                    ui.monospace(s.member.as_deref().unwrap_or("(file)"));
                    ui.weak(format!(
                        "{} · offset {} · {} bytes · protocol {} · {} opcodes",
                        s.role, s.offset, s.length, s.protocol, s.opcodes
                    ));
                    if let Some(e) = &s.error {
                        ui.colored_label(ui.visuals().warn_fg_color, e);
                    }
                });
            }
            if !report.unsupported.is_empty() {
                ui.separator();
                ui.strong(format!("Tensors not read ({})", report.unsupported.len()));
                for u in &report.unsupported {
                    ui.horizontal_wrapped(|ui| {
                        ui.monospace(&u.name);
                        ui.label(&u.reason);
                    });
                }
            }
            for n in &report.notes {
                ui.weak(n);
            }
            ui.separator();
            ui.strong("Values (everything that is not a tensor)");
            if report.objects.is_null() {
                ui.weak("none");
            } else {
                crate::gui::widgets::json_tree(
                    ui,
                    &report.objects,
                    ui.scope_id().with("objects"),
                    0,
                );
            }
        });
}
