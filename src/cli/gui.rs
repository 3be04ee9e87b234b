//! No subcommand: the explorer window on the files given (none: the start screen).

use std::path::PathBuf;
use std::process::ExitCode;

#[cfg(feature = "gui")]
pub fn run(files: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    ckptscope::gui::run(files).map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "gui"))]
pub fn run(_files: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "this build has no window (built without the `gui` feature); run `ckptscope --help` for the CLI"
    )
}
