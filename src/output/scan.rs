//! `ckptscope scan`: one line per file with its verdict, its findings indented below, a summary.

use std::io::{self, Write};

use crate::pickle::policy::{Finding, Risk, Verdict};
use crate::pickle::scan::{ScanResult, ScanRun};

/// Writes the human report.
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
                    r.path.display(),
                    r.format.label()
                )?;
                // For files with no pickle, the format says it all.
                let quiet = !r.format.is_pickle_based() && r.format != crate::Format::Zip;
                for f in r
                    .findings
                    .iter()
                    .filter(|f| !(quiet && f.risk == Risk::Info))
                {
                    writeln!(out, "  {}", finding_line(f))?;
                }
            }
            Err(e) => {
                errors += 1;
                writeln!(out, "{:<10}  {e}", "ERROR")?;
            }
        }
    }
    let total = run.results.len();
    let mut summary = format!(
        "{total} file{}: {safe} safe, {suspicious} suspicious, {dangerous} dangerous",
        if total == 1 { "" } else { "s" }
    );
    if errors > 0 {
        summary.push_str(&format!(", {errors} unreadable"));
    }
    if run.skipped > 0 {
        summary.push_str(&format!(" ({} other files skipped)", run.skipped));
    }
    writeln!(out, "{summary}")
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
        f.reason
    );
    if let Some(g) = &f.global
        && !f.reason.contains(g.as_str())
    {
        line = format!("{line} [{g}]");
    }
    let mut place = Vec::new();
    if let Some(m) = &f.member {
        place.push(m.clone());
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
    Err { path: String, error: String },
}

/// Writes `[{"path", "format", "verdict", "findings": [...]}, ...]`; unreadable files appear as
/// `{"path", "error"}`.
pub fn write_json(out: &mut impl Write, run: &ScanRun) -> io::Result<()> {
    let entries: Vec<Entry<'_>> = run
        .results
        .iter()
        .map(|r| match r {
            Ok(r) => Entry::Ok(r),
            Err(e) => Entry::Err {
                path: e.path().display().to_string(),
                error: e.to_string(),
            },
        })
        .collect();
    serde_json::to_writer(&mut *out, &entries)?;
    out.write_all(b"\n")
}
