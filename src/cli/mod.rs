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

/// Explore, scan, convert and compare ML checkpoints, without executing them
///
/// Reads safetensors (single or sharded), PyTorch pickles and TorchScript archives, GGUF, ONNX
/// and NumPy `.npy` / `.npz` files. Pickles are walked by an engine that never executes them:
/// every file gets a verdict (safe, suspicious, dangerous, or "not scanned" when it cannot be
/// judged), and tensors are read only from files judged safe unless `--allow-suspicious` or
/// `--allow-dangerous` accepts more.
///
/// Without a subcommand, opens the explorer window on the given files (none: the start screen;
/// one: explore it; two: compare them).
///
/// Examples:
///   ckptscope model.safetensors                  explore a file in the window
///   ckptscope scan ~/Downloads/models            judge every checkpoint in a folder
///   ckptscope convert pytorch_model.bin          write model.safetensors beside it
///   ckptscope info --json model.safetensors      tensors and metadata as JSON
///   ckptscope COMMAND --help                     the reference of one command
///
/// Exit status: 0 on success; 1 when a command reports what it was asked to find (a file not
/// safe, checkpoints that differ, a tensor not measured, a conversion refused or partial; each
/// command's help says which); 2 on an error or bad arguments, with the message on stderr;
/// 141 when the reader of the output goes away (below).
#[derive(Parser)]
#[command(
    name = "ckptscope",
    version,
    verbatim_doc_comment,
    args_conflicts_with_subcommands = true,
    after_help = "When the reader of the output goes away (`ckptscope info FILE | head -1`), \
ckptscope stops quietly with exit status 141, as a program killed by SIGPIPE does; never 0, so \
a pipeline with `pipefail` does not take a cut-off scan for a clean one."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Checkpoints to open in the window: none for the start screen, one to explore, two to
    /// compare.
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
