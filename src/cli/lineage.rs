//! `ckptscope lineage`: where checkpoints came from, as a tree.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::options::JsonArg;
use super::stdio::{with_progress_line, write_either};

/// Show where checkpoints came from, as a tree of parents and children
///
/// Reads the parents recorded in metadata (ckptscope's own keys, ModelSpec, kohya, Hugging
/// Face, uuids) and links them to the checkpoints of PATH's folder (and `--also` folders) by
/// name, path, hash or uuid. A training run's steps are shown as a timeline. `--hash` hashes
/// the candidates to resolve references by hash (cached, so slow only once).
///
/// Examples:
///   ckptscope lineage finetuned.safetensors
///   ckptscope lineage ./runs/ --also ./base-models/ --hash
///
/// JSON (`--json`): {"nodes", "edges", "timelines"}.
///
/// Exit status: 0 when shown; 2 on an error (unreadable path, bad arguments).
#[derive(Args)]
#[command(verbatim_doc_comment)]
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
    write_either(
        json,
        |o| ckptscope::output::lineage::write_json(o, &graph),
        |o| ckptscope::output::lineage::write_human(o, &graph),
    )?;
    Ok(ExitCode::SUCCESS)
}
