//! `ckptscope inference`: the inference part of a model folder, written to a new folder or
//! archive.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::options::{JsonArg, OutputArg, ReadArgs};
use super::stdio::{with_progress_line, write_report};

/// Write the inference part of a model folder to a new folder or `.tar.gz`
///
/// Keeps the configs, tokenizer, model card and weights, the weights in safetensors (pickles
/// converted and verified on the way, under the same rules as `convert`: judged first, accepted
/// when safe or allowed with `--allow-*`); leaves out optimizer, scheduler, RNG state, training
/// arguments, logs and `checkpoint-N/` folders. The package is built beside the target and
/// renamed into place; an existing target is never replaced.
///
/// Examples:
///   ckptscope inference ./my-finetune/ --dry-run
///   ckptscope inference ./my-finetune/ -o release.tar.gz
///
/// JSON (`--json`): {"path", "bytes", "plan": {"entries": [{"source", "dest", "action",
/// "bytes"}], "left_out": [{"path", "bytes", "reason"}], "from_point"?, "package_bytes",
/// "kept_bytes", "saved_bytes"}}; with `--dry-run`, the plan alone.
///
/// Exit status: 0 when written (or planned, with `--dry-run`); 2 on an error (the target
/// exists, a pickle refused or failed, bad arguments).
#[derive(Args)]
#[command(verbatim_doc_comment)]
#[command(mut_arg("output", |a| a.help(
    "The new folder, or an archive when it ends in `.tar.gz` or `.tgz` (default: \
     `FOLDER-inference` beside it)"
)))]
pub struct InferenceArgs {
    /// The model folder.
    folder: PathBuf,
    #[command(flatten)]
    output: OutputArg,
    /// Print what would be written and left out, and the bytes saved; write nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    json: JsonArg,
    #[command(flatten)]
    read: ReadArgs,
}

pub fn run(args: &InferenceArgs) -> anyhow::Result<ExitCode> {
    use ckptscope::package::inference;
    let json = args.json.json;
    let package = args.read.open_package(&args.folder)?;
    let plan = inference::plan(&package);
    if args.dry_run {
        write_report(json, &plan, ckptscope::output::package::write_plan)?;
        return Ok(ExitCode::SUCCESS);
    }
    let target = args
        .output
        .output
        .clone()
        .unwrap_or_else(|| inference::default_target(&package));
    let convert = args.read.convert_options()?;
    let progress = ckptscope::progress::Progress::new();
    let written = with_progress_line(&progress, "writing", || {
        inference::write(&package, &plan, &target, &convert, &progress)
    })?;
    write_report(json, &written, ckptscope::output::package::write_written)?;
    Ok(ExitCode::SUCCESS)
}
