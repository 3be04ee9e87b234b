//! `ckptscope info DIR`, `convert DIR` and `inference DIR`: a model folder as a package.

use std::io::{self, Write};

use crate::output::human::{bytes, count, term};
use crate::package::convert_all::{Outcome, Summary};
use crate::package::inference::{Action, Plan, Written};
use crate::package::{Check, Package, PointKind};

/// `{"kind": "package", ...}`: the [`Package`] as serialized (paths relative to `root`).
pub fn write_json(out: &mut impl Write, package: &Package) -> io::Result<()> {
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        kind: &'static str,
        verdict: Option<crate::pickle::policy::Verdict>,
        #[serde(flatten)]
        package: &'a Package,
    }
    serde_json::to_writer(
        &mut *out,
        &Doc {
            kind: "package",
            verdict: package.totals.verdict(),
            package,
        },
    )?;
    out.write_all(b"\n")
}

/// One line for a file's scan: the verdict, or why there is none.
pub fn check_label(check: &Check) -> String {
    match check {
        Check::Scanned { verdict, .. } => verdict.name().into(),
        Check::NotScanned { .. } => "NOT SCANNED".into(),
        Check::NotCheckpoint => "-".into(),
    }
}

/// A short weights-only answer for a table cell.
pub fn weights_only_label(check: &Check) -> String {
    match check.weights_only() {
        Some(w) if w.loads => "loads".into(),
        Some(w) if !w.needs.is_empty() => match w.needs.as_slice() {
            [one] => format!("needs {one}"),
            [first, rest @ ..] => format!("needs {first} +{} more", rest.len()),
            [] => String::new(),
        },
        Some(_) => "refused".into(),
        None => String::new(),
    }
}

/// A file's format for people; an index says what its shards are.
pub fn format_label(package: &Package, f: &crate::package::PackageFile) -> &'static str {
    if f.role == crate::package::Role::WeightsIndex {
        if crate::convert::is_sharded_pickle_index(&package.absolute(&f.path)) {
            "index of pickle shards"
        } else {
            "index of safetensors shards"
        }
    } else if f.format == crate::Format::Unknown {
        "-"
    } else {
        f.format.label()
    }
}

/// A config value as written, on one line.
pub fn config_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) if items.iter().all(|i| i.is_string()) => items
            .iter()
            .filter_map(|i| i.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        serde_json::Value::Object(map) => match map.get("quant_method").and_then(|m| m.as_str()) {
            Some(m) => m.to_string(),
            None => crate::output::info::one_line(&v.to_string(), 80),
        },
        other => crate::output::info::one_line(&other.to_string(), 80),
    }
}

/// The overall verdict line.
pub fn verdict_line(package: &Package) -> String {
    let t = &package.totals;
    let mut parts = Vec::new();
    for (n, what) in [
        (t.dangerous, "dangerous"),
        (t.suspicious, "suspicious"),
        (t.safe, "safe"),
        (t.not_scanned, "not scanned"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    let head = match t.verdict() {
        Some(v) => v.name().to_uppercase(),
        None if t.not_scanned > 0 => "INCOMPLETE".into(),
        None => "NOTHING TO SCAN".into(),
    };
    if parts.is_empty() {
        head
    } else {
        format!("{head} ({})", parts.join(", "))
    }
}

/// The human view: header, config, files, totals, timeline.
pub fn write_human(out: &mut impl Write, package: &Package) -> io::Result<()> {
    let t = &package.totals;
    writeln!(
        out,
        "{}  model package: {} files, {}",
        term(&package.root.to_string_lossy()),
        t.files,
        bytes(t.bytes)
    )?;
    writeln!(out, "verdict   {}", verdict_line(package))?;
    if let Some(c) = &package.config {
        let mut line = c
            .entries
            .iter()
            .map(|(k, v)| format!("{k} {}", config_value(v)))
            .collect::<Vec<_>>()
            .join(" · ");
        if let Some(p) = &c.problem {
            line = format!("cannot read: {p}");
        }
        writeln!(
            out,
            "config    {}  ({})",
            term(&line),
            term(&c.path.to_string_lossy())
        )?;
    }
    writeln!(out)?;
    let width = package
        .files
        .iter()
        .map(|f| f.path.to_string_lossy().chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 60);
    let fwidth = package
        .files
        .iter()
        .map(|f| format_label(package, f).len())
        .max()
        .unwrap_or(6)
        .max(6);
    writeln!(
        out,
        "{:<width$}  {:<21}  {:<fwidth$}  {:>10}  {:<11}  weights_only",
        "FILE", "ROLE", "FORMAT", "SIZE", "VERDICT"
    )?;
    for f in &package.files {
        let format = format_label(package, f);
        writeln!(
            out,
            "{:<width$}  {:<21}  {:<fwidth$}  {:>10}  {:<11}  {}",
            term(&f.path.to_string_lossy()),
            f.role.label(),
            format,
            bytes(f.bytes),
            check_label(&f.check),
            term(&weights_only_label(&f.check))
        )?;
        if let Check::NotScanned { reason } = &f.check {
            writeln!(out, "  not scanned: {}", term(reason))?;
        }
        if let Some(p) = &f.problem {
            writeln!(out, "  tensors not listed: {}", term(p))?;
        }
    }
    for s in &package.skipped {
        writeln!(
            out,
            "{:<width$}  skipped: {}",
            term(&s.path.to_string_lossy()),
            term(&s.reason)
        )?;
    }
    writeln!(out)?;
    writeln!(out, "by role")?;
    for r in &t.by_role {
        writeln!(
            out,
            "  {:<21} {:>4} {:<5}  {:>10}",
            r.role.label(),
            r.files,
            if r.files == 1 { "file" } else { "files" },
            bytes(r.bytes)
        )?;
    }
    writeln!(
        out,
        "  pickles: {} files, {} · formats without code: {} files, {}",
        t.pickle_files,
        bytes(t.pickle_bytes),
        t.safe_format_files,
        bytes(t.safe_format_bytes)
    )?;
    if !package.timeline.is_empty() {
        writeln!(out)?;
        writeln!(out, "run timeline ({} checkpoints)", package.timeline.len())?;
        for p in &package.timeline {
            let mut extra = Vec::new();
            if let Some(e) = p.epoch {
                extra.push(format!("epoch {e}"));
            }
            if let Some(l) = p.loss {
                extra.push(format!("loss {l:.4}"));
            }
            let slash = if p.kind == PointKind::Folder { "/" } else { "" };
            let weights = if p.kind == PointKind::Folder {
                let names = p
                    .weights
                    .iter()
                    .filter_map(|w| w.file_name())
                    .map(|w| w.to_string_lossy().into_owned())
                    .collect::<Vec<_>>();
                if names.is_empty() {
                    "  (no weights)".to_string()
                } else {
                    format!("  [{}]", names.join(", "))
                }
            } else {
                String::new()
            };
            writeln!(
                out,
                "  step {:>8}  {:<24}  {}{}{}",
                count(p.step),
                extra.join(" · "),
                term(&p.path.to_string_lossy()),
                slash,
                term(&weights)
            )?;
        }
    }
    Ok(())
}

/// `ckptscope convert DIR`: one line per pickle, then the counts.
pub fn write_summary(out: &mut impl Write, summary: &Summary) -> io::Result<()> {
    for item in &summary.items {
        let verdict = item.verdict.map_or("-", |v| v.name());
        let input = term(&item.input.to_string_lossy()).into_owned();
        match &item.outcome {
            Outcome::Converted { report } => writeln!(
                out,
                "converted  {input} -> {}  ({verdict}; {} tensors, {}{})",
                term(
                    &item
                        .output
                        .as_deref()
                        .unwrap_or(&report.output)
                        .to_string_lossy()
                ),
                report.tensors,
                bytes(report.bytes),
                if report.skipped.is_empty() {
                    String::new()
                } else {
                    format!("; {} tensors skipped", report.skipped.len())
                }
            )?,
            Outcome::Skipped { reason } => {
                writeln!(out, "skipped    {input}  ({verdict}): {}", term(reason))?;
            }
            Outcome::Refused { reason } => {
                writeln!(out, "REFUSED    {input}  ({verdict}): {}", term(reason))?;
            }
            Outcome::Failed { reason } => {
                writeln!(out, "FAILED     {input}  ({verdict}): {}", term(reason))?;
            }
            Outcome::Cancelled => writeln!(out, "cancelled  {input}")?,
        }
    }
    writeln!(
        out,
        "{} converted, {} skipped, {} refused, {} failed{}",
        summary.converted(),
        summary.skipped(),
        summary.refused(),
        summary.failed(),
        if summary.cancelled() > 0 {
            format!(", {} not reached (cancelled)", summary.cancelled())
        } else {
            String::new()
        }
    )
}

/// `ckptscope inference DIR --dry-run`: what would be written and left out.
pub fn write_plan(out: &mut impl Write, plan: &Plan) -> io::Result<()> {
    if let Some(p) = &plan.from_point {
        writeln!(
            out,
            "no weights at the top level: taking the latest checkpoint, {}",
            term(&p.to_string_lossy())
        )?;
    }
    for e in &plan.entries {
        let how = match e.action {
            Action::Copy => "copy   ",
            Action::Convert => "convert",
        };
        writeln!(
            out,
            "{how}  {} -> {}  ({})",
            term(&e.source.to_string_lossy()),
            term(&e.dest.to_string_lossy()),
            bytes(e.bytes)
        )?;
    }
    for l in &plan.left_out {
        writeln!(
            out,
            "leave    {}  ({}): {}",
            term(&l.path.to_string_lossy()),
            bytes(l.bytes),
            term(&l.reason)
        )?;
    }
    writeln!(
        out,
        "keeps {} of {}; saves {} ({} files left out)",
        bytes(plan.kept_bytes),
        bytes(plan.package_bytes),
        bytes(plan.saved_bytes),
        plan.left_out.len()
    )
}

/// After writing: the plan, then where it went.
pub fn write_written(out: &mut impl Write, written: &Written) -> io::Result<()> {
    write_plan(out, &written.plan)?;
    writeln!(
        out,
        "wrote {} ({})",
        term(&written.path.to_string_lossy()),
        bytes(written.bytes)
    )
}
