//! `ckptscope convert`: one pickle checkpoint, or every weight-bearing pickle of a folder, to
//! safetensors.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::options::{ForceArg, JsonArg, OutputArg, ReadArgs};
use super::stdio::{with_progress_line, write_report};

/// Convert a checkpoint (PyTorch pickle, ONNX, NumPy, GGUF) to safetensors, without executing it
///
/// Any format ckptscope reads converts, its tensor bytes exact: PyTorch pickles, ONNX models
/// (external data too), NumPy `.npy`/`.npz`, and GGUF (plain tensors as stored; block-quantized
/// ones only with `--dequantize`, the choice and each tensor's ggml type recorded in the
/// output's metadata). A pickle is judged first (as `scan` does) and converted only when safe, or when
/// `--allow-suspicious` / `--allow-dangerous` accept its verdict; nothing is executed either
/// way. The tensors are streamed into a temporary file, read back and verified byte for byte,
/// and the file is moved into place atomically; an existing output is kept unless `--force`.
/// By default only the weights are written (the model's state dict); `--all` writes every
/// tensor, optimizer state too, under its dotted path.
///
/// Given a folder, converts every weight-bearing pickle in it (sharded models through their
/// index) next to itself, skipping training-only files and existing outputs (`--force`
/// replaces them); one failure does not stop the rest.
///
/// Examples:
///   ckptscope convert pytorch_model.bin               (writes model.safetensors beside it)
///   ckptscope convert model.ckpt -o weights.safetensors --force
///   ckptscope convert ./my-finetune/
///   ckptscope convert model.onnx
///   ckptscope convert llama.Q4_K.gguf --dequantize bf16
///
/// JSON (`--json`): {"input", "output", "verdict", "exported", "tensors", "bytes", "aliases",
/// "skipped", "source_sha256", "verified"}; for a folder {"items": [{"input", "output"?, "role",
/// "verdict"?, "outcome", "report"?, "reason"?}]}.
///
/// Exit status for a file: 0 when converted; 1 when converted without some tensors
/// (`--skip-unreadable`); 2 on an error (a verdict not accepted, unreadable input, existing
/// output, bad arguments). For a folder: 0 when every pickle was converted or skipped on
/// purpose; 1 when one was refused for its verdict or converted without some tensors; 2 when
/// one failed, or on an error.
#[derive(Args)]
#[command(verbatim_doc_comment)]
#[command(mut_arg("output", |a| a.help(
    "Output file (default: the input with a `.safetensors` extension; `pytorch_model.bin` \
     becomes `model.safetensors`)"
)))]
pub struct ConvertArgs {
    /// The pickle checkpoint (`.pt`, `.pth`, `.bin`, `.ckpt`, `.pkl`), a
    /// `pytorch_model.bin.index.json` of a sharded model, or a folder (every weight-bearing
    /// pickle in it).
    input: PathBuf,
    #[command(flatten)]
    output: OutputArg,
    #[command(flatten)]
    force: ForceArg,
    /// Export every tensor (optimizer state too) under its dotted path, not only the weights.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    json: JsonArg,
    /// Write tensors that are stride-0 expansions of a much smaller storage (refused by
    /// default: a few bytes in the file can ask for terabytes of output).
    #[arg(long)]
    materialize_expanded: bool,
    /// Convert the other tensors when some cannot be read (a truncated file, a missing or
    /// damaged record). The output's metadata and the report list the skipped tensors, and the
    /// exit code is 1.
    #[arg(long)]
    skip_unreadable: bool,
    /// Write a GGUF file's block-quantized tensors as their decoded values in this dtype
    /// (refused by default: the output would not hold the file's own bytes). The choice and
    /// each tensor's ggml type are recorded in the output's metadata.
    #[arg(long, value_name = "DTYPE", value_parser = ["f32", "f16", "bf16"])]
    dequantize: Option<String>,
    #[command(flatten)]
    read: ReadArgs,
}

pub fn run(args: &ConvertArgs) -> anyhow::Result<ExitCode> {
    use ckptscope::convert::{ConvertOptions, convert};
    let options = ConvertOptions {
        output: args.output.output.clone(),
        force: args.force.force,
        all: args.all,
        materialize_expanded: args.materialize_expanded,
        skip_unreadable: args.skip_unreadable,
        dequantize: args.dequantize.as_deref().and_then(ckptscope::DType::parse),
        ..args.read.convert_options()?
    };
    if args.input.is_dir() {
        return convert_folder(args, &options);
    }
    let progress = ckptscope::progress::Progress::new();
    let report = with_progress_line(&progress, "converting", || {
        convert(&args.input, &options, &progress)
    })
    .map_err(|e| anyhow::anyhow!(ckptscope::output::convert::error_text(&e)))?;
    write_report(
        args.json.json,
        &report,
        ckptscope::output::convert::write_human,
    )?;
    // An output missing tensors (--skip-unreadable) is not a success.
    Ok(if report.skipped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn convert_folder(
    args: &ConvertArgs,
    options: &ckptscope::convert::ConvertOptions,
) -> anyhow::Result<ExitCode> {
    use ckptscope::package::convert_all::{RunProgress, convert_all};
    if args.output.output.is_some() {
        anyhow::bail!(
            "--output names one file; a folder's pickles are each converted next to themselves"
        );
    }
    let package = args.read.open_package(&args.input)?;
    let progress = RunProgress::new();
    let summary = with_progress_line(&progress.overall, "converting", || {
        convert_all(&package, options, &progress, |_| {})
    });
    write_report(
        args.json.json,
        &summary,
        ckptscope::output::package::write_summary,
    )?;
    Ok(ExitCode::from(summary.exit_code()))
}
