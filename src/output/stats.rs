//! `ckptscope stats`: one block per tensor (the window's figures, its percentiles and a one-line
//! text histogram), or one JSON document.
//!
//! `clippy::indexing_slicing` is allowed here: the sparkline's level is clamped to its table.

#![allow(clippy::indexing_slicing)]

use std::io::{self, Write};

use serde::Serialize;

use crate::analysis::Analysis;
use crate::analysis::decode::format_float;
use crate::analysis::report::{StatsOptions, TensorStats};
use crate::format::Checkpoint;
use crate::output::human::{self, term};

/// Characters of the text histogram at most (more bins are summed into them).
pub const SPARK_WIDTH: usize = 64;

/// The `--json` document.
#[derive(Serialize)]
struct StatsJson<'a> {
    path: String,
    format: &'static str,
    slice: Option<String>,
    bins: usize,
    sample: Option<u64>,
    tensors: Vec<TensorJson<'a>>,
    errors: usize,
}

#[derive(Serialize)]
struct TensorJson<'a> {
    name: &'a str,
    dtype: &'static str,
    shape: &'a [u64],
    selected_shape: Option<&'a [u64]>,
    #[serde(flatten)]
    figures: Option<Figures<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct Figures<'a> {
    count: u64,
    finite: u64,
    nan: u64,
    pos_inf: u64,
    neg_inf: u64,
    zeros: u64,
    min: Option<f64>,
    max: Option<f64>,
    mean: Option<f64>,
    std: Option<f64>,
    rms: Option<f64>,
    percentiles: Vec<Percentile>,
    percentiles_exact: bool,
    percentile_resolution: f64,
    histogram: &'a crate::analysis::Histogram,
    sampled: Option<u64>,
}

#[derive(Serialize)]
struct Percentile {
    p: f64,
    value: Option<f64>,
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn figures(a: &Analysis) -> Figures<'_> {
    let s = &a.stats;
    Figures {
        count: s.count,
        finite: s.finite,
        nan: s.nan,
        pos_inf: s.pos_inf,
        neg_inf: s.neg_inf,
        zeros: s.zeros,
        min: finite(s.min),
        max: finite(s.max),
        mean: finite(s.mean),
        std: finite(s.std),
        rms: finite(s.rms),
        percentiles: a
            .percentiles
            .iter()
            .map(|&(p, v)| Percentile {
                p,
                value: finite(v),
            })
            .collect(),
        percentiles_exact: a.percentile_resolution == 0.0,
        percentile_resolution: a.percentile_resolution,
        histogram: &a.histogram,
        sampled: a.sampled,
    }
}

fn slice_text(options: &StatsOptions) -> Option<String> {
    (!options.spec.is_all()).then(|| options.spec.to_string())
}

/// Writes the `--json` document: `{"path", "format", "slice", "bins", "sample", "tensors",
/// "errors"}`.
pub fn write_json(
    out: &mut impl Write,
    ckpt: &Checkpoint,
    options: &StatsOptions,
    results: &[TensorStats],
) -> io::Result<()> {
    let doc = StatsJson {
        path: ckpt.path.display().to_string(),
        format: ckpt.format.json_name(),
        slice: slice_text(options),
        bins: options.bins,
        sample: options.sample,
        tensors: results
            .iter()
            .map(|r| TensorJson {
                name: &r.name,
                dtype: r.type_name,
                shape: &r.shape,
                selected_shape: r.selected.as_deref(),
                figures: r.result.as_ref().ok().map(figures),
                error: r.result.as_ref().err().map(String::as_str),
            })
            .collect(),
        errors: results.iter().filter(|r| r.result.is_err()).count(),
    };
    serde_json::to_writer(&mut *out, &doc)?;
    out.write_all(b"\n")
}

/// Writes one block per tensor under a line naming the file.
pub fn write_human(
    out: &mut impl Write,
    ckpt: &Checkpoint,
    options: &StatsOptions,
    results: &[TensorStats],
) -> io::Result<()> {
    let mut head = format!(
        "{} ({}, {} of {} tensors",
        term(&ckpt.path.to_string_lossy()),
        ckpt.format.json_name(),
        results.len(),
        ckpt.tensors.len()
    );
    if let Some(s) = slice_text(options) {
        head.push_str(&format!(", slice {s}"));
    }
    if let Some(n) = options.sample {
        head.push_str(&format!(", sampled: about {n} elements each"));
    }
    head.push(')');
    writeln!(out, "{head}")?;
    for r in results {
        writeln!(out)?;
        write_tensor(out, r)?;
    }
    let errors = results.iter().filter(|r| r.result.is_err()).count();
    if errors > 0 {
        writeln!(out)?;
        writeln!(
            out,
            "{errors} of {} tensors could not be measured",
            results.len()
        )?;
    }
    Ok(())
}

fn write_tensor(out: &mut impl Write, r: &TensorStats) -> io::Result<()> {
    let mut title = format!(
        "{}  {}  {}",
        term(&r.name),
        r.type_name,
        human::shape(&r.shape)
    );
    if let Some(sel) = r.selected.as_ref().filter(|s| **s != r.shape) {
        title.push_str(&format!("  selected {}", human::shape(sel)));
    }
    writeln!(out, "{title}")?;
    let a = match &r.result {
        Ok(a) => a,
        Err(e) => return writeln!(out, "  error: {}", term(e)),
    };
    let s = &a.stats;
    if let Some(n) = a.sampled {
        writeln!(
            out,
            "  sampled: {n} of {} elements, evenly spaced (without --sample: every element)",
            selected_count(r)
        )?;
    }
    let pct = |n: u64| {
        if s.count == 0 {
            0.0
        } else {
            n as f64 * 100.0 / s.count as f64
        }
    };
    let rows = [
        [
            ("count", s.count.to_string()),
            ("finite", s.finite.to_string()),
            ("zeros", format!("{} ({:.1}%)", s.zeros, pct(s.zeros))),
        ],
        [
            ("min", format_float(s.min)),
            ("max", format_float(s.max)),
            ("NaN", s.nan.to_string()),
        ],
        [
            ("mean", format_float(s.mean)),
            ("std", format_float(s.std)),
            ("+Inf", s.pos_inf.to_string()),
        ],
        [
            ("rms", format_float(s.rms)),
            ("", String::new()),
            ("-Inf", s.neg_inf.to_string()),
        ],
    ];
    let width = |col: usize| {
        rows.iter()
            .map(|row| row[col].1.chars().count())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1) = (width(0), width(1));
    for row in &rows {
        let line = format!(
            "  {:<6} {:<w0$}   {:<6} {:<w1$}   {:<6} {}",
            row[0].0, row[0].1, row[1].0, row[1].1, row[2].0, row[2].1
        );
        writeln!(out, "{}", line.trim_end())?;
    }
    if s.finite > 0 {
        let values: Vec<String> = a
            .percentiles
            .iter()
            .map(|&(p, v)| format!("p{p} {}", format_float(v)))
            .collect();
        if a.percentile_resolution == 0.0 {
            writeln!(out, "  percentiles (exact)  {}", values.join("  "))?;
        } else {
            writeln!(
                out,
                "  percentiles (≈, within {})  {}",
                format_float(a.percentile_resolution),
                values.join("  ")
            )?;
        }
        let h = &a.histogram;
        writeln!(
            out,
            "  histogram  {} bins over [{}, {}], peak {}",
            h.counts.len(),
            format_float(h.lo),
            format_float(h.hi),
            h.counts.iter().max().copied().unwrap_or(0)
        )?;
        writeln!(out, "  {}", sparkline(&h.counts, SPARK_WIDTH))?;
    }
    Ok(())
}

fn selected_count(r: &TensorStats) -> u64 {
    r.selected.as_ref().map_or(0, |s| {
        s.iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .unwrap_or(u64::MAX)
    })
}

/// The counts as a line of block characters, `width` at most (neighbouring bins summed), each
/// scaled to the largest: a bin with any value shows at least `▁`, an empty one a space.
pub fn sparkline(counts: &[u64], width: usize) -> String {
    const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let per = counts.len().div_ceil(width.max(1)).max(1);
    let sums: Vec<u64> = counts.chunks(per).map(|c| c.iter().sum()).collect();
    let peak = sums.iter().copied().max().unwrap_or(0);
    sums.iter()
        .map(|&c| {
            if c == 0 || peak == 0 {
                ' '
            } else {
                let level = ((c as f64 / peak as f64) * 7.0).round() as usize;
                LEVELS[level.min(7)]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_to_the_peak_and_merge_bins() {
        assert_eq!(sparkline(&[0, 1, 4, 8], 64), " ▂▅█");
        assert_eq!(sparkline(&[1, 1, 0, 0, 2, 2], 3), "▅ █");
        assert_eq!(sparkline(&[], 64), "");
    }
}
