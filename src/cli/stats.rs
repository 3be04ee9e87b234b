//! `ckptscope stats`: the window's statistics of chosen tensors, on the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::options::{JsonArg, ReadArgs};
use super::stdio::{with_progress_line, write_out};

/// Statistics of tensors (every format ckptscope opens): count, min, max, mean, std, rms,
/// zeros, NaN/Inf, percentiles and a histogram, computed as the window computes them.
///
/// Every tensor by default, or those `--tensor` names (exact names or globs). Exact unless
/// `--sample`. Exit 0 when every selected tensor was measured, 1 when some could not be
/// (each says why: `statistics not supported for TYPE`, a slice that does not fit), 2 on an
/// error (unreadable file, bad slice, a name or glob that matches nothing).
#[derive(Args)]
#[command(mut_arg("json", |a| a.help("Print one JSON document")))]
pub struct StatsArgs {
    /// A checkpoint file, a `*.safetensors.index.json`, or a folder holding one.
    path: PathBuf,
    /// A tensor name, or a glob (`layers.*.mlp.*`, `?.weight`; case-insensitive, as the
    /// window's filter); repeatable. Default: every tensor.
    #[arg(long = "tensor", value_name = "NAME|GLOB")]
    tensor: Vec<String>,
    /// The part of each tensor to measure, in the window's syntax: an index, a range
    /// `start:end[:step]` or `:` per dimension (`[3, :, 0:128]`).
    #[arg(long, value_name = "SLICE", value_parser = parse_slice)]
    slice: Option<ckptscope::analysis::SliceSpec>,
    /// Histogram bins.
    #[arg(long, default_value_t = ckptscope::analysis::DEFAULT_BINS, value_parser = parse_bins)]
    bins: usize,
    /// Measure about N evenly spaced elements of each tensor (the window's first answer)
    /// instead of every element; results are marked sampled.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "16384", value_parser = clap::value_parser!(u64).range(1..))]
    sample: Option<u64>,
    #[command(flatten)]
    json: JsonArg,
    #[command(flatten)]
    read: ReadArgs,
}

/// Bins of a histogram: at least 1, and few enough that the counts fit in memory.
fn parse_bins(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n @ 1..=1_000_000) => Ok(n),
        _ => Err(format!(
            "expected a number of bins from 1 to 1000000, got `{text}`"
        )),
    }
}

fn parse_slice(text: &str) -> Result<ckptscope::analysis::SliceSpec, String> {
    ckptscope::analysis::SliceSpec::parse(text).map_err(|e| e.to_string())
}

pub fn run(args: &StatsArgs) -> anyhow::Result<ExitCode> {
    use ckptscope::analysis::report::{StatsOptions, stats};
    let ckpt = ckptscope::format::open_with(&args.path, &args.read.open_options()?)?;
    let picks = ckptscope::analysis::select::select(&ckpt, &args.tensor)
        .with_context(|| format!("in {}", ckpt.path.display()))?;
    let options = StatsOptions {
        spec: args.slice.clone().unwrap_or_default(),
        bins: args.bins,
        sample: args.sample,
    };
    let progress = ckptscope::progress::Progress::new();
    let results = with_progress_line(&progress, "measuring", || {
        stats(&ckpt, &picks, &options, &progress)
    });
    let json = args.json.json;
    write_out(|out| {
        if json {
            ckptscope::output::stats::write_json(out, &ckpt, &options, &results)
        } else {
            ckptscope::output::stats::write_human(out, &ckpt, &options, &results)
        }
    })?;
    Ok(if results.iter().all(|r| r.result.is_ok()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
