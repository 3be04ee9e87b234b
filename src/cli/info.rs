//! `ckptscope info`: a checkpoint's tensors, metadata and layout, or a model folder's package.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::options::{JsonArg, ReadArgs};
use super::stdio::write_out;

/// List a checkpoint's tensors, metadata and layout (reads headers only; pickles are read by
/// the safe engine, never executed). For a folder, the model package: every file with its
/// role, format, size, verdict and weights-only answer, totals, config and run timeline.
#[derive(Args)]
#[command(mut_arg("json", |a| a.help("Print one JSON object instead of the table")))]
pub struct InfoArgs {
    /// A checkpoint file, a `*.safetensors.index.json`, or a folder holding one.
    path: PathBuf,
    #[command(flatten)]
    json: JsonArg,
    #[command(flatten)]
    read: ReadArgs,
}

pub fn run(args: &InfoArgs) -> anyhow::Result<ExitCode> {
    let json = args.json.json;
    if args.path.is_dir() {
        let package = args.read.open_package(&args.path)?;
        write_out(|out| {
            if json {
                ckptscope::output::package::write_json(out, &package)
            } else {
                ckptscope::output::package::write_human(out, &package)
            }
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    let ckpt = ckptscope::format::open_with(&args.path, &args.read.open_options()?)?;
    write_out(|out| {
        if json {
            ckptscope::output::info::write_json(out, &ckpt)
        } else {
            ckptscope::output::info::write_human(out, &ckpt)
        }
    })?;
    // The process ends here: freeing a large header's many small allocations would only
    // delay the exit.
    std::mem::forget(ckpt);
    Ok(ExitCode::SUCCESS)
}
