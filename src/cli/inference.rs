//! `ckptscope inference`: the inference part of a model folder, written to a new folder or
//! archive.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::options::{JsonArg, OutputArg, ReadArgs};
use super::stdio::{with_progress_line, write_report};

/// Write the inference part of a model folder to a new folder or `.tar.gz`: configs,
/// tokenizer, model card and weights in safetensors (pickles converted and verified on the
/// way); optimizer, scheduler, RNG state, training arguments, logs and `checkpoint-N/`
/// folders are left out. Never replaces an existing target.
#[derive(Args)]
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
