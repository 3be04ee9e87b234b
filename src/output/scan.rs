//! `ckptscope scan`: one line per file with its verdict, its findings indented below, a summary.

use std::io::{self, Write};

use crate::output::human::term;
use crate::pickle::policy::{Finding, Risk, Verdict};
use crate::scan::{ScanResult, ScanRun};

/// Writes the human report. Text from files (paths, globals, reasons) is escaped for terminals.
pub fn write_human(out: &mut impl Write, run: &ScanRun) -> io::Result<()> {
    let (mut safe, mut suspicious, mut dangerous, mut errors) = (0, 0, 0, 0);
    for r in &run.results {
        match r {
            Ok(r) => {
                match r.verdict {
                    Verdict::Safe => safe += 1,
                    Verdict::Suspicious => suspicious += 1,
                    Verdict::Dangerous => dangerous += 1,
                }
                writeln!(
                    out,
                    "{:<10}  {}  ({})",
                    r.verdict.name().to_uppercase(),
                    term(&r.path.to_string_lossy()),
                    r.format.label()
                )?;
                // For files with no pickle, the format says it all (ONNX models and NumPy
                // arrays say what was checked).
                let quiet = matches!(
                    r.format,
                    crate::Format::Safetensors
                        | crate::Format::SafetensorsSharded
                        | crate::Format::Gguf
                );
                for f in r
                    .findings
                    .iter()
                    .filter(|f| !(quiet && f.risk == Risk::Info))
                {
                    writeln!(out, "  {}", finding_line(f))?;
                }
                if let Some(w) = &r.weights_only {
                    writeln!(out, "  {:<10} {}", "compat", term(&w.line()))?;
                }
            }
            Err(e) => {
                errors += 1;
                writeln!(
                    out,
                    "{:<10}  {}  not scanned: {}",
                    "ERROR",
                    term(&e.path().to_string_lossy()),
                    term(&reason(e))
                )?;
            }
        }
    }
    for s in &run.special {
        writeln!(
            out,
            "{:<10}  {}  ({})",
            "SKIPPED",
            term(&s.path.to_string_lossy()),
            s.reason
        )?;
    }
    let scanned = safe + suspicious + dangerous;
    let mut summary = format!(
        "{scanned} file{} scanned: {safe} safe, {suspicious} suspicious, {dangerous} dangerous",
        if scanned == 1 { "" } else { "s" }
    );
    if errors > 0 {
        summary.push_str(&format!("; {errors} not scanned"));
    }
    let mut skipped = Vec::new();
    if run.skipped > 0 {
        skipped.push(format!("{} other files", run.skipped));
    }
    if !run.special.is_empty() {
        skipped.push(format!("{} not regular files", run.special.len()));
    }
    if !skipped.is_empty() {
        summary.push_str(&format!(" ({} skipped)", skipped.join(", ")));
    }
    writeln!(out, "{summary}")
}

/// Why a file was not scanned, without the path (which is printed beside it).
pub fn reason(e: &crate::Error) -> String {
    use crate::Error;
    match e {
        Error::Io { action, error, .. } => format!("cannot {action}: {error}"),
        Error::Invalid { problem, .. } => problem.to_string(),
        Error::Unsupported { what, .. } => what.clone(),
        other => {
            let full = other.to_string();
            let suffix = format!(" ({})", other.path().display());
            full.strip_suffix(&suffix).unwrap_or(&full).to_string()
        }
    }
}

/// `dangerous  posix.system  module `posix`: ...  [member @offset OPCODE ×count]`.
pub fn finding_line(f: &Finding) -> String {
    let mut line = format!(
        "{:<10} {}",
        match f.risk {
            Risk::Info => "note",
            Risk::Suspicious => "suspicious",
            Risk::Dangerous => "dangerous",
        },
        term(&f.reason)
    );
    if let Some(g) = &f.global
        && !f.reason.contains(g.as_str())
    {
        line = format!("{line} [{}]", term(g));
    }
    let mut place = Vec::new();
    if let Some(m) = &f.member {
        place.push(term(m).into_owned());
    }
    if let Some(o) = f.offset {
        place.push(format!("@{o}"));
    }
    if let Some(op) = f.opcode {
        place.push(op.to_string());
    }
    if f.count > 1 {
        place.push(format!("×{}", f.count));
    }
    if !place.is_empty() {
        line.push_str(&format!("  ({})", place.join(" ")));
    }
    line
}

#[derive(serde::Serialize)]
#[serde(untagged)]
enum Entry<'a> {
    Ok(&'a ScanResult),
    Err {
        path: String,
        verdict: &'static str,
        reason: String,
        error: String,
    },
    Skipped {
        path: String,
        verdict: &'static str,
        reason: &'a str,
    },
}

/// Writes `[{"path", "format", "verdict", "findings": [...]}, ...]`. Files that were not scanned
/// appear as `{"path", "verdict": "error", "reason", "error"}` (`error` also names the path),
/// paths in folders that are not regular files as `{"path", "verdict": "skipped", "reason"}`.
/// Strings are exact (JSON escapes them; nothing is replaced).
pub fn write_json(out: &mut impl Write, run: &ScanRun) -> io::Result<()> {
    let entries: Vec<Entry<'_>> = run
        .results
        .iter()
        .map(|r| match r {
            Ok(r) => Entry::Ok(r),
            Err(e) => Entry::Err {
                path: e.path().display().to_string(),
                verdict: "error",
                reason: reason(e),
                error: e.to_string(),
            },
        })
        .chain(run.special.iter().map(|s| Entry::Skipped {
            path: s.path.display().to_string(),
            verdict: "skipped",
            reason: &s.reason,
        }))
        .collect();
    serde_json::to_writer(&mut *out, &entries)?;
    out.write_all(b"\n")
}
