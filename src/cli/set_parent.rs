//! `ckptscope set-parent`: a parent recorded in a safetensors file's metadata.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::stdio::write_out;

/// Record PARENT as the parent of FILE (a safetensors file), for `lineage`
///
/// Writes `parent` (PARENT's file name when both sit in one folder, else its absolute path) and
/// `parent_sha256` (its whole-file SHA-256) into FILE's metadata, rewriting only the header: the
/// tensor data is copied unchanged into a temporary file that replaces FILE atomically once its
/// content id is checked unchanged.
///
/// Example:
///   ckptscope set-parent finetuned.safetensors base.safetensors
///
/// Exit status: 0 when recorded; 2 on an error (FILE not safetensors, unreadable files, bad
/// arguments).
#[derive(Args)]
#[command(verbatim_doc_comment)]
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
