//! `ckptscope export`: a safetensors model written back as a PyTorch checkpoint.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::options::{ForceArg, JsonArg, LimitArgs, OutputArg};
use super::stdio::{with_progress_line, write_report};

/// Export a safetensors model as a PyTorch checkpoint, for older runtimes
///
/// Writes a `torch.save` zip checkpoint (`pytorch_model.bin`) without Python: streamed, read
/// back and verified (it must scan safe, load with `torch.load(weights_only=True)` and hold
/// every tensor equal to the source), and moved into place atomically. A sharded model keeps
/// its shards and gets a `pytorch_model.bin.index.json`, unless `--single-file`. Tied weights
/// are restored as views of one storage (`--tie`). `SOURCE_DATE_EPOCH` fixes the time recorded,
/// so the same input gives the same bytes.
///
/// Examples:
///   ckptscope export model.safetensors                (writes pytorch_model.bin beside it)
///   ckptscope export ./llama/ --single-file --tie lm_head.weight=model.embed_tokens.weight
///
/// JSON (`--json`): {"input", "output", "to", "tensors", "storages", "bytes", "tied": [[alias,
/// kept]], "notes", "source_sha256", "shards"?, "verified"}.
///
/// Exit status: 0 when written and verified; 2 on an error (unreadable input, existing output
/// without `--force`, a failed check, bad arguments).
#[derive(Args)]
#[command(verbatim_doc_comment)]
#[command(mut_arg("output", |a| a.help(
    "Output file (default: `model.safetensors` becomes `pytorch_model.bin`, an index \
     `pytorch_model.bin.index.json` with `pytorch_model-0000N-of-0000M.bin` shards, any other \
     `X.safetensors` `X.bin`)"
)))]
pub struct ExportArgs {
    /// What to write: `pytorch` (a `torch.save` zip checkpoint).
    #[arg(long, value_enum, default_value = "pytorch")]
    to: ExportTarget,
    /// A `.safetensors` file, a `model.safetensors.index.json` of a sharded model, or a folder
    /// holding one.
    input: PathBuf,
    #[command(flatten)]
    output: OutputArg,
    #[command(flatten)]
    force: ForceArg,
    /// Make ALIAS view TARGET's storage (`lm_head.weight=model.embed_tokens.weight`): restored
    /// when the file lacks ALIAS, shared when it holds the same bytes; repeatable. Ties recorded
    /// in the metadata (`dropped name -> kept name`, as Hugging Face writes them) are restored
    /// without asking.
    #[arg(long = "tie", value_name = "ALIAS=TARGET", value_parser = parse_tie)]
    tie: Vec<(String, String)>,
    /// Write a sharded model as one `pytorch_model.bin` (for transformers before 4.18, which
    /// read no index).
    #[arg(long)]
    single_file: bool,
    #[command(flatten)]
    json: JsonArg,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportTarget {
    /// A `torch.save` zip checkpoint.
    Pytorch,
}

fn parse_tie(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.to_string(), b.to_string())),
        _ => Err(format!("expected ALIAS=TARGET, got `{text}`")),
    }
}

pub fn run(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    use ckptscope::export::{ExportOptions, export};
    let ExportTarget::Pytorch = args.to;
    // Reproducible builds' convention: a fixed time makes the same input give the same file.
    let exported_at = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s));
    let options = ExportOptions {
        output: args.output.output.clone(),
        force: args.force.force,
        ties: args.tie.clone(),
        single_file: args.single_file,
        limits: args.limits.limits()?,
        exported_at,
        ..ExportOptions::default()
    };
    let progress = ckptscope::progress::Progress::new();
    let report = with_progress_line(&progress, "exporting", || {
        export(&args.input, &options, &progress)
    })
    .map_err(|e| anyhow::anyhow!(ckptscope::output::export::error_text(&e)))?;
    write_report(
        args.json.json,
        &report,
        ckptscope::output::export::write_human,
    )?;
    Ok(ExitCode::SUCCESS)
}
