//! The command line of the `ckptscope` binary: the clap definitions and what each subcommand
//! does, one file per subcommand (its arguments, its help and its run), over the options they
//! share (`options.rs`) and the one way to stdout and stderr (`stdio.rs`).
//!
//! A module of the binary, not of the library: it is the top layer (it launches the window),
//! it alone uses `anyhow`, and the library stays free of argument parsing. What a report says is
//! the library's printers' (`ckptscope::output`); a subcommand only opens, calls and prints.
//! Adding a subcommand: a file here with its `Args` struct (documented: the doc comment is its
//! `--help`) and `run`, one variant in [`Command`], one line in [`run`], and `docs/CLI.md`
//! regenerated.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod convert;
mod diff;
mod export;
mod gui;
mod inference;
mod info;
mod install_desktop;
mod lineage;
mod options;
mod scan;
mod set_parent;
mod stats;
pub mod stdio;

/// Explore, scan, convert and compare ML checkpoints (safetensors and PyTorch pickles).
///
/// Without a subcommand, opens the explorer window on the given files (none: the start screen;
/// one: explore it; two: compare them).
#[derive(Parser)]
#[command(
    name = "ckptscope",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "When the reader of the output goes away (`ckptscope info FILE | head -1`), \
ckptscope stops quietly with exit status 141, as a program killed by SIGPIPE does; never 0, so \
a pipeline with `pipefail` does not take a cut-off scan for a clean one."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Checkpoints to open in the window.
    files: Vec<PathBuf>,
}

// Each subcommand's help is the doc comment of its `Args` struct, in its own file.
#[derive(Subcommand)]
enum Command {
    Info(info::InfoArgs),
    Scan(scan::ScanArgs),
    Convert(convert::ConvertArgs),
    Inference(inference::InferenceArgs),
    Export(export::ExportArgs),
    Diff(diff::DiffArgs),
    Stats(stats::StatsArgs),
    Lineage(lineage::LineageArgs),
    SetParent(set_parent::SetParentArgs),
    InstallDesktop(install_desktop::InstallDesktopArgs),
}

/// Runs what the command line asked for: a subcommand, or the window.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Info(args)) => info::run(&args),
        Some(Command::Scan(args)) => scan::run(&args),
        Some(Command::Convert(args)) => convert::run(&args),
        Some(Command::Inference(args)) => inference::run(&args),
        Some(Command::Export(args)) => export::run(&args),
        Some(Command::Diff(args)) => diff::run(&args),
        Some(Command::Stats(args)) => stats::run(&args),
        Some(Command::Lineage(args)) => lineage::run(&args),
        Some(Command::SetParent(args)) => set_parent::run(&args),
        Some(Command::InstallDesktop(args)) => install_desktop::run(&args),
        None => gui::run(cli.files),
    }
}
