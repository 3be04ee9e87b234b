//! `ckptscope install-desktop`: file associations for the current user's Linux desktop.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::stdio::write_out;

/// Register ckptscope with the Linux desktop, for the current user
///
/// Writes `ckptscope.desktop` (with this program's absolute path), the MIME types of the
/// checkpoint formats and the icons under `$XDG_DATA_HOME` (default `~/.local/share`), refreshes
/// the MIME and desktop databases and makes ckptscope the default for those types:
/// double-clicking a checkpoint (`.safetensors`, `.pt`, `.pth`, `.ckpt`, `pytorch_model*.bin`,
/// `.pkl`, `.gguf`, `.onnx`, `.npy`, `.npz`) then opens it here. Other `.bin` files keep
/// whatever opens them today.
///
/// Exit status: 0 when installed; 2 on an error (no `HOME`, a file that cannot be written).
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct InstallDesktopArgs {}

pub fn run(_args: &InstallDesktopArgs) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let data = ckptscope::desktop::data_home().context("neither XDG_DATA_HOME nor HOME is set")?;
    let installed = ckptscope::desktop::install(&data, &exe, true)
        .context("cannot install the desktop files")?;
    write_out(|out| ckptscope::output::desktop::write_installed(out, &installed, &exe))?;
    Ok(ExitCode::SUCCESS)
}
