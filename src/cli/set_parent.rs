//! `ckptscope set-parent`: a parent recorded in a safetensors file's metadata.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::stdio::write_out;

/// Record PARENT as the parent of FILE (a safetensors file): writes `parent` and
/// `parent_sha256` into its metadata, rewriting only the header, atomically.
#[derive(Args)]
pub struct SetParentArgs {
    /// The safetensors file to annotate.
    file: PathBuf,
    /// Its parent checkpoint.
    parent: PathBuf,
}

pub fn run(args: &SetParentArgs) -> anyhow::Result<ExitCode> {
    let progress = ckptscope::progress::Progress::new();
    let report = ckptscope::lineage::set_parent(
        &args.file,
        &args.parent,
        &ckptscope::hash::CacheDir::User,
        &progress,
    )?;
    write_out(|out| ckptscope::output::lineage::write_set_parent(out, &report))?;
    Ok(ExitCode::SUCCESS)
}
