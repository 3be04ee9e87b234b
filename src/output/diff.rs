//! `ckptscope diff`: a summary, the pairs largest change first, the metadata changes.

use std::io::{self, Write};

use serde::Serialize;

use crate::analysis::Histogram;
use crate::analysis::decode::format_float;
use crate::analysis::diff::{Diff, Measures, Status, TensorDiff};
use crate::analysis::namemap::{Mapping, Which};
use crate::format::Checkpoint;
use crate::output::human::{self, term};
use crate::output::info::one_line;

/// The `--json` document.
#[derive(Serialize)]
pub struct DiffJson<'a> {
    a: String,
    b: String,
    summary: Summary,
    tensors: Vec<TensorJson<'a>>,
    renames: &'a [(String, String)],
    metadata: &'a crate::analysis::diff::MetadataDiff,
    /// The name mapping the pairs were made by (`null`: equal names).
    mapping: Option<&'a Mapping>,
}

#[derive(Serialize)]
struct Summary {
    identical: bool,
    tensors_a: usize,
    tensors_b: usize,
    counts: std::collections::BTreeMap<Status, usize>,
}

#[derive(Serialize)]
struct TensorJson<'a> {
    name: &'a str,
    /// The partner's name in B, when a mapping paired differently named tensors.
    #[serde(skip_serializing_if = "Option::is_none")]
    name_b: Option<&'a str>,
    /// Heads over which llama.cpp's Q/K row permutation was undone on the GGUF side.
    #[serde(skip_serializing_if = "Option::is_none")]
    unpermuted_heads: Option<u64>,
    status: Status,
    dtype_a: Option<&'static str>,
    dtype_b: Option<&'static str>,
    shape_a: Option<&'a [u64]>,
    shape_b: Option<&'a [u64]>,
    max_abs_diff: Option<f64>,
    mean_abs_diff: Option<f64>,
    rel_l2: Option<f64>,
    cosine: Option<f64>,
    differing: Option<u64>,
    count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// Writes the `--json` document.
pub fn write_json(
    out: &mut impl Write,
    a: &Checkpoint,
    b: &Checkpoint,
    d: &Diff,
) -> io::Result<()> {
    let doc = DiffJson {
        a: a.path.display().to_string(),
        b: b.path.display().to_string(),
        summary: Summary {
            identical: d.is_identical(),
            tensors_a: a.tensors.len(),
            tensors_b: b.tensors.len(),
            counts: d.counts(),
        },
        tensors: d
            .tensors
            .iter()
            .map(|t| {
                let m = t.measures.as_ref();
                TensorJson {
                    name: &t.name,
                    name_b: t.name_b.as_deref(),
                    unpermuted_heads: t.unpermute.map(|u| u.heads),
                    status: t.status,
                    dtype_a: t.type_a,
                    dtype_b: t.type_b,
                    shape_a: t.shape_a.as_deref(),
                    shape_b: t.shape_b.as_deref(),
                    max_abs_diff: m
                        .and_then(|m| finite(m.max_abs_diff))
                        .or((t.status == Status::Identical).then_some(0.0)),
                    mean_abs_diff: m
                        .and_then(|m| finite(m.mean_abs_diff))
                        .or((t.status == Status::Identical).then_some(0.0)),
                    rel_l2: m
                        .and_then(|m| finite(m.rel_l2))
                        .or((t.status == Status::Identical).then_some(0.0)),
                    cosine: m
                        .and_then(|m| finite(m.cosine))
                        .or((t.status == Status::Identical).then_some(1.0)),
                    differing: m
                        .map(|m| m.differing)
                        .or((t.status == Status::Identical).then_some(0)),
                    count: m.map(|m| m.count),
                    error: t.error.as_deref(),
                }
            })
            .collect(),
        renames: &d.renames,
        metadata: &d.metadata,
        mapping: d.mapping.as_ref(),
    };
    serde_json::to_writer(&mut *out, &doc)?;
    out.write_all(b"\n")
}

/// One line of counts: `3 values changed, 1 only in A, ...`.
pub fn summary_line(d: &Diff) -> String {
    let counts = d.counts();
    let parts: Vec<String> = Status::ALL
        .iter()
        .filter_map(|s| counts.get(s).map(|n| format!("{n} {}", s.label())))
        .collect();
    let mut line = if parts.is_empty() {
        "no tensors".to_string()
    } else {
        parts.join(", ")
    };
    let m = &d.metadata;
    if !m.is_empty() {
        line.push_str(&format!(
            "; metadata: {} added, {} removed, {} changed",
            m.added.len(),
            m.removed.len(),
            m.changed.len()
        ));
    }
    line
}

/// How the pairs were made, when a mapping made them: `paired by llama.cpp names (B is GGUF,
/// 4 heads, 2 KV heads: Q/K rows un-permuted)`.
pub fn mapping_line(m: &Mapping) -> String {
    let side = match m.gguf {
        Which::A => "A",
        Which::B => "B",
    };
    format!(
        "paired by llama.cpp names ({side} is GGUF; {} heads, {} KV heads: Q/K rows un-permuted, compared in Hugging Face order)",
        m.n_head, m.n_head_kv
    )
}

/// The name of a pair: `name`, or `name → name in B` for a mapped pair.
pub fn pair_name(t: &TensorDiff) -> String {
    match &t.name_b {
        Some(b) => format!("{} → {b}", t.name),
        None => t.name.clone(),
    }
}

fn dtype_cell(t: &TensorDiff) -> String {
    match (t.type_a, t.type_b) {
        (Some(x), Some(y)) if x != y => format!("{x}→{y}"),
        (x, y) => x.or(y).unwrap_or_default().to_string(),
    }
}

fn shape_cell(t: &TensorDiff) -> String {
    match (&t.shape_a, &t.shape_b) {
        (Some(x), Some(y)) if x != y => format!("{}→{}", human::shape(x), human::shape(y)),
        (x, y) => x
            .as_ref()
            .or(y.as_ref())
            .map(|s| human::shape(s))
            .unwrap_or_default(),
    }
}

/// Writes the human report.
pub fn write_human(
    out: &mut impl Write,
    a: &Checkpoint,
    b: &Checkpoint,
    d: &Diff,
) -> io::Result<()> {
    writeln!(
        out,
        "A: {} ({}, {} tensors)",
        term(&a.path.to_string_lossy()),
        a.format.label(),
        a.tensors.len()
    )?;
    writeln!(
        out,
        "B: {} ({}, {} tensors)",
        term(&b.path.to_string_lossy()),
        b.format.label(),
        b.tensors.len()
    )?;
    writeln!(
        out,
        "{}",
        if d.is_identical() {
            "identical".to_string()
        } else {
            summary_line(d)
        }
    )?;
    if let Some(m) = &d.mapping {
        writeln!(out, "{}", mapping_line(m))?;
    }
    for (x, y) in &d.renames {
        writeln!(
            out,
            "renamed? `{}` (only in A) has the same dtype, shape and bytes as `{}` (only in B)",
            term(x),
            term(y)
        )?;
    }
    let rows: Vec<[String; 7]> = d
        .tensors
        .iter()
        .filter(|t| t.status != Status::Identical)
        .map(|t| {
            let m = t.measures.as_ref();
            let f = |v: Option<f64>| v.map(format_float).unwrap_or_default();
            [
                term(&pair_name(t)).into_owned(),
                t.status.label().to_string(),
                dtype_cell(t),
                shape_cell(t),
                f(m.map(|m| m.max_abs_diff)),
                f(m.map(|m| m.rel_l2)),
                f(m.map(|m| m.cosine)),
            ]
        })
        .collect();
    if !rows.is_empty() {
        let headers = [
            "name", "status", "dtype", "shape", "max|a-b|", "rel_l2", "cosine",
        ]
        .map(String::from);
        let mut widths = headers.clone().map(|h| h.chars().count());
        for row in &rows {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        for row in std::iter::once(&headers).chain(&rows) {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(c, &w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
                .collect();
            writeln!(out, "{}", line.join("  ").trim_end())?;
        }
    }
    let identical = d
        .tensors
        .iter()
        .filter(|t| t.status == Status::Identical)
        .count();
    if identical > 0 && !rows.is_empty() {
        writeln!(out, "({identical} identical tensors not listed)")?;
    }
    for t in d
        .tensors
        .iter()
        .filter_map(|t| t.error.as_ref().map(|e| (&t.name, e)))
    {
        writeln!(out, "error: `{}`: {}", term(t.0), term(&t.1.to_string()))?;
    }
    let m = &d.metadata;
    if !m.is_empty() {
        writeln!(out, "metadata:")?;
        for (k, v) in &m.added {
            writeln!(out, "  + {} = {}", term(k), term(&one_line(v, 100)))?;
        }
        for (k, v) in &m.removed {
            writeln!(out, "  - {} = {}", term(k), term(&one_line(v, 100)))?;
        }
        for (k, x, y) in &m.changed {
            writeln!(
                out,
                "  ~ {}: {} → {}",
                term(k),
                term(&one_line(x, 60)),
                term(&one_line(y, 60))
            )?;
        }
    }
    Ok(())
}

/// The `--json` document of one pair (`--tensor NAME`): `{"tensor", "histogram"}`, on one line.
pub fn write_tensor_json(
    out: &mut impl Write,
    t: &TensorDiff,
    hist: Option<&Histogram>,
) -> io::Result<()> {
    serde_json::to_writer(
        &mut *out,
        &serde_json::json!({ "tensor": t, "histogram": hist }),
    )?;
    writeln!(out)
}

/// The detailed report of one pair (`--tensor NAME`): measures and a text histogram of a − b.
pub fn write_tensor(
    out: &mut impl Write,
    t: &TensorDiff,
    hist: Option<&Histogram>,
) -> io::Result<()> {
    writeln!(out, "{}: {}", term(&pair_name(t)), t.status.label())?;
    if let Some(u) = t.unpermute {
        writeln!(
            out,
            "  llama.cpp's Q/K row permutation over {} heads undone on {}",
            u.heads,
            match u.side {
                Which::A => "A",
                Which::B => "B",
            }
        )?;
    }
    writeln!(
        out,
        "  A: {} {}",
        t.type_a.unwrap_or("-"),
        t.shape_a
            .as_ref()
            .map(|s| human::shape(s))
            .unwrap_or("-".into())
    )?;
    writeln!(
        out,
        "  B: {} {}",
        t.type_b.unwrap_or("-"),
        t.shape_b
            .as_ref()
            .map(|s| human::shape(s))
            .unwrap_or("-".into())
    )?;
    if let Some(m) = &t.measures {
        write_measures(out, m)?;
    }
    if let Some(h) = hist {
        writeln!(out, "  histogram of a-b:")?;
        let max = h.counts.iter().copied().max().unwrap_or(0).max(1);
        for (i, &c) in h.counts.iter().enumerate() {
            let bar = "#".repeat(((c as f64 / max as f64) * 40.0).round() as usize);
            writeln!(out, "  {:>12}  {bar} {c}", format_float(h.center(i)))?;
        }
    }
    Ok(())
}

fn write_measures(out: &mut impl Write, m: &Measures) -> io::Result<()> {
    writeln!(
        out,
        "  {} of {} elements differ; max |a-b| {}, mean |a-b| {}, rel L2 {}, cosine {}",
        m.differing,
        m.count,
        format_float(m.max_abs_diff),
        format_float(m.mean_abs_diff),
        format_float(m.rel_l2),
        format_float(m.cosine)
    )?;
    if m.nonfinite_mismatch > 0 {
        writeln!(
            out,
            "  {} positions differ in NaN/Inf",
            m.nonfinite_mismatch
        )?;
    }
    Ok(())
}
