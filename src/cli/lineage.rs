//! `ckptscope lineage`: where checkpoints came from, as a tree.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::options::JsonArg;
use super::stdio::{with_progress_line, write_out};

/// Show where checkpoints came from: parents found in metadata (ckptscope, ModelSpec,
/// kohya, Hugging Face, uuids) linked by name, path, hash or uuid, as a tree.
#[derive(Args)]
#[command(mut_arg("json", |a| a.help("Print `{\"nodes\", \"edges\", \"timelines\"}` as JSON")))]
pub struct LineageArgs {
    /// A checkpoint (its folder is scanned) or a folder.
    path: PathBuf,
    /// More folders (or files) to look for parents in.
    #[arg(long = "also", value_name = "PATH")]
    also: Vec<PathBuf>,
    /// Hash candidate parents (whole file and tensor data) to resolve hash references; hashes
    /// are cached, so this is slow once.
    #[arg(long)]
    hash: bool,
    #[command(flatten)]
    json: JsonArg,
}

pub fn run(args: &LineageArgs) -> anyhow::Result<ExitCode> {
    let options = ckptscope::lineage::LineageOptions {
        extra: args.also.clone(),
        hash: args.hash,
        cache: ckptscope::hash::CacheDir::User,
    };
    let progress = ckptscope::progress::Progress::new();
    let graph = with_progress_line(&progress, "hashing", || {
        ckptscope::lineage::family(&args.path, &options, &progress)
    })?;
    let json = args.json.json;
    write_out(|out| {
        if json {
            ckptscope::output::lineage::write_json(out, &graph)
        } else {
            ckptscope::output::lineage::write_human(out, &graph)
        }
    })?;
    Ok(ExitCode::SUCCESS)
}
