//! `ckptscope install-desktop`: file associations for the current user's Linux desktop.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::stdio::write_out;

/// Register ckptscope with the Linux desktop (for the current user): double-clicking a
/// `.safetensors`, `.pt`, `.pth`, `.ckpt` or `.pkl` file then opens it here.
#[derive(Args)]
pub struct InstallDesktopArgs {}

pub fn run(_args: &InstallDesktopArgs) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let data = ckptscope::desktop::data_home().context("neither XDG_DATA_HOME nor HOME is set")?;
    let installed = ckptscope::desktop::install(&data, &exe, true)
        .context("cannot install the desktop files")?;
    write_out(|out| ckptscope::output::desktop::write_installed(out, &installed, &exe))?;
    Ok(ExitCode::SUCCESS)
}
