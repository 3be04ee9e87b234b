//! `ckptscope stats`: the window's statistics of chosen tensors, on the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::options::{JsonArg, ReadArgs};
use super::stdio::{with_progress_line, write_either};

/// Statistics of tensors: min, max, mean, std, percentiles, NaN/Inf, a histogram
///
/// For every format ckptscope opens: count, min, max, mean, std, rms, zeros, NaN and ±Inf,
/// percentiles and a histogram, computed by the same function as the window's inspector. Every
/// tensor by default, or those `--tensor` names (exact names or globs), in file order. Exact
/// unless `--sample`: every selected element is read, in parallel. Types of up to 16 bits have
/// exact percentiles; wider ones read them from a fine histogram and say within how much. NaN
/// and ±Inf are counted apart and never enter the other figures.
///
/// Examples:
///   ckptscope stats model.safetensors --tensor 'layers.*.mlp.*'
///   ckptscope stats model.gguf --tensor token_embd.weight --slice '[0:8, :]' --json
///   ckptscope stats big.safetensors --sample
///
/// JSON (`--json`): {"path", "format", "slice", "bins", "sample", "tensors": [{"name", "dtype",
/// "shape", "selected_shape", "count", "finite", "nan", "pos_inf", "neg_inf", "zeros", "min",
/// "max", "mean", "std", "rms", "percentiles": [{"p", "value"}], "percentiles_exact",
/// "percentile_resolution", "histogram": {"counts", "lo", "hi"}, "sampled"}], "errors"}; a
/// tensor that could not be measured has {"name", "dtype", "shape", "selected_shape", "error"}.
///
/// Exit status: 0 when every selected tensor was measured; 1 when some could not be (each says
/// why: `statistics not supported for TYPE`, a slice that does not fit); 2 on an error
/// (unreadable file, bad slice, a name or glob that matches nothing, bad arguments).
#[derive(Args)]
#[command(verbatim_doc_comment)]
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
    /// Measure about N evenly spaced elements of each tensor (16384 without N: the window's
    /// first answer) instead of every element; results are marked sampled.
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
    write_either(
        json,
        |o| ckptscope::output::stats::write_json(o, &ckpt, &options, &results),
        |o| ckptscope::output::stats::write_human(o, &ckpt, &options, &results),
    )?;
    Ok(if results.iter().all(|r| r.result.is_ok()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
