//! `ckptscope scan`: the verdict of every file, failing closed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::options::{AllowArgs, JsonArg, LimitArgs};
use super::stdio::{warn, write_either};

/// Judge checkpoints and folders without executing them: safe, suspicious or dangerous
///
/// Every file gets a verdict with its reasons. Pickles (PyTorch `.pt`/`.pth`/`.bin`/`.ckpt`,
/// `.pkl`) are walked opcode by opcode by an engine that never runs them: every global they
/// import is judged against an allowlist (`--allow` adds to it), and TorchScript programs are
/// read for the calls their code makes. `--limit` bounds what one file may make the engine do.
///
/// Fails closed: a file that cannot be judged (empty, unknown format, truncated archive,
/// unreadable, not a regular file) is reported as "not scanned", never safe. In folders, files
/// that are neither checkpoints by content nor by name (`.json`, `.md`...) are skipped and
/// counted, and FIFOs, sockets and devices are listed as skipped without being opened.
///
/// Examples:
///   ckptscope scan pytorch_model.bin
///   ckptscope scan ~/Downloads/models
///   ckptscope scan --allow mymodule.Config --json model.ckpt
///
/// JSON (`--json`): [{"path", "format", "verdict", "findings": [{"severity", "global"?,
/// "reason", "member"?, "offset"?, "opcode"?, "count"?}], "weights_only"?}]; a file that could
/// not be scanned is {"path", "verdict": "error", "reason", "error"}, a special file skipped in
/// a folder {"path", "verdict": "skipped", "reason"}.
///
/// Exit status, first match wins: 2 when any file could not be scanned (even if another is
/// dangerous: every verdict is still printed) or on bad arguments, 1 when any scanned file is
/// suspicious or dangerous, 0 when every file was scanned and is safe.
#[derive(Args)]
#[command(verbatim_doc_comment)]
#[command(mut_arg("json", |a| a.help("Print a JSON array instead of the report")))]
pub struct ScanArgs {
    /// Files or folders to scan.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    json: JsonArg,
    #[command(flatten)]
    allow: AllowArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

pub fn run(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let policy = args.allow.policy();
    let limits = args.limits.limits()?;
    let run = ckptscope::scan::scan_paths(&args.paths, &policy, &limits);
    let json = args.json.json;
    write_either(
        json,
        |o| ckptscope::output::scan::write_json(o, &run),
        |o| ckptscope::output::scan::write_human(o, &run),
    )?;
    if !json {
        for e in run.results.iter().filter_map(|r| r.as_ref().err()) {
            warn(&format!("error: {e}"));
        }
    }
    Ok(ExitCode::from(run.exit_code()))
}
