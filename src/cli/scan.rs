//! `ckptscope scan`: the verdict of every file, failing closed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::options::{AllowArgs, JsonArg, LimitArgs};
use super::stdio::{warn, write_out};

/// Judge pickle-based files (and folders, recursively) without executing them: safe,
/// suspicious or dangerous, with the reasons.
///
/// Fails closed: a file that cannot be judged (empty, unknown format, truncated archive,
/// unreadable, not a regular file) is reported as "not scanned", never safe. In folders,
/// files that are neither checkpoints by content nor by name (`.json`, `.md`...) are skipped
/// and counted, and FIFOs, sockets and devices are listed as skipped without being opened.
///
/// Exit status, first match wins: 2 when any file could not be scanned (even if another is
/// dangerous: every verdict is still printed), 1 when any scanned file is suspicious or
/// dangerous, 0 when every file was scanned and is safe.
#[derive(Args)]
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
    write_out(|out| {
        if json {
            ckptscope::output::scan::write_json(out, &run)
        } else {
            ckptscope::output::scan::write_human(out, &run)
        }
    })?;
    if !json {
        for e in run.results.iter().filter_map(|r| r.as_ref().err()) {
            warn(&format!("error: {e}"));
        }
    }
    Ok(ExitCode::from(run.exit_code()))
}
