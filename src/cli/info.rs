//! `ckptscope info`: a checkpoint's tensors, metadata and layout, or a model folder's package.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::options::{JsonArg, ReadArgs};
use super::stdio::write_either;

/// List a checkpoint's tensors, metadata and layout, or a model folder's files
///
/// Reads headers only (a safetensors file is memory-mapped, its data never read). Pickles are
/// read by the safe engine, never executed; their tensors are listed when the file is judged
/// safe, or suspicious or dangerous when `--allow-suspicious` / `--allow-dangerous` accept it
/// (the verdict and its reasons are shown either way). Any format ckptscope opens: safetensors
/// (single or sharded), PyTorch pickles, TorchScript, GGUF, ONNX, NumPy `.npy` / `.npz`.
///
/// For a folder, the model package: every file with its role, format, size, verdict and
/// weights-only answer, the totals, the config and the run timeline.
///
/// Examples:
///   ckptscope info model.safetensors
///   ckptscope info --json model.safetensors.index.json | jq '.tensors | length'
///   ckptscope info ./my-finetune/
///
/// JSON (`--json`): {"path", "format", "file_size", "header_size", "metadata", "tensors":
/// [{"name", "dtype", "shape", "data_offsets", "file_offset", "shard"?, ...}], "shards"?,
/// "findings"?, "scan"?}; pickles add "scan": {"verdict", "findings", "streams", "objects",
/// "weights_only"}. A folder: {"kind": "package", "verdict", "root", "files": [{"path", "role",
/// "format", "bytes", "check", ...}], "skipped", "totals", "config"?, "timeline"}.
///
/// Exit status: 0 when listed; 2 on an error (unreadable or unknown file, bad arguments), and for
/// a folder when any of its files could not be scanned (a format ckptscope does not read).
#[derive(Args)]
#[command(verbatim_doc_comment)]
#[command(mut_arg("json", |a| a.help("Print one JSON object instead of the table")))]
pub struct InfoArgs {
    /// A checkpoint file, a `*.safetensors.index.json`, or a folder holding one.
    path: PathBuf,
    #[command(flatten)]
    json: JsonArg,
    #[command(flatten)]
    read: ReadArgs,
}

pub fn run(args: &InfoArgs) -> anyhow::Result<ExitCode> {
    let json = args.json.json;
    if args.path.is_dir() {
        let package = args.read.open_package(&args.path)?;
        write_either(
            json,
            |o| ckptscope::output::package::write_json(o, &package),
            |o| ckptscope::output::package::write_human(o, &package),
        )?;
        return Ok(ExitCode::from(package.totals.exit_code()));
    }
    let ckpt = ckptscope::format::open_with(&args.path, &args.read.open_options()?)?;
    write_either(
        json,
        |o| ckptscope::output::info::write_json(o, &ckpt),
        |o| ckptscope::output::info::write_human(o, &ckpt),
    )?;
    // The process ends here: freeing a large header's many small allocations would only
    // delay the exit.
    std::mem::forget(ckpt);
    Ok(ExitCode::SUCCESS)
}
