//! The `ckptscope` binary: with files or nothing, the explorer window; with a subcommand, the CLI.
//! Thin on purpose: parse arguments, call the library, print.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

/// Explore, scan, convert and compare ML checkpoints (safetensors and PyTorch pickles).
///
/// Without a subcommand, opens the explorer window on the given files (none: the start screen;
/// one: explore it; two: compare them).
#[derive(Parser)]
#[command(name = "ckptscope", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Checkpoints to open in the window.
    files: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// List a checkpoint's tensors, metadata and layout (reads headers only).
    Info(InfoArgs),
}

#[derive(Args)]
struct InfoArgs {
    /// A checkpoint file, a `*.safetensors.index.json`, or a folder holding one.
    path: PathBuf,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Info(args)) => info(&args),
        None => run_gui(cli.files),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn info(args: &InfoArgs) -> anyhow::Result<ExitCode> {
    let ckpt = ckptscope::open(&args.path)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if args.json {
        ckptscope::output::info::write_json(&mut out, &ckpt)
    } else {
        ckptscope::output::info::write_human(&mut out, &ckpt)
    }
    .and_then(|()| out.flush())
    .context("cannot write the report")?;
    Ok(ExitCode::SUCCESS)
}

fn run_gui(_files: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "the explorer window is not part of this build; run `ckptscope --help` for the CLI"
    )
}
