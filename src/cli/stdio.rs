//! The one place where the command line touches stdout and stderr: the report is written
//! through a buffered, locked stdout that turns a closed pipe into a quiet exit, messages go to
//! stderr escaped for the terminal, and long work shows a progress line when stderr is one.
//! What the reports say is the library's printers' business (`ckptscope::output`).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The exit status when stdout's reader went away: what a shell shows for a program killed by
/// SIGPIPE (128 + 13). Not 0, so a cut-off `scan` never passes for a clean one.
pub const BROKEN_PIPE_STATUS: u8 = 141;

/// Where a report is written.
pub type Out = std::io::BufWriter<std::io::StdoutLock<'static>>;

/// Runs `write` on a buffered, locked stdout and flushes it: the one place where output is
/// written. A closed pipe ends the process quietly with [`BROKEN_PIPE_STATUS`].
pub fn write_out(write: impl FnOnce(&mut Out) -> std::io::Result<()>) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            // Dropping the writer would try to flush into the closed pipe again.
            std::mem::forget(out);
            std::process::exit(i32::from(BROKEN_PIPE_STATUS))
        }
        Err(e) => Err(anyhow::Error::new(e).context("cannot write the report")),
    }
}

/// Writes the `--json` document when `json`, else the human report: the printers of one
/// report, chosen by the flag.
pub fn write_either(
    json: bool,
    as_json: impl FnOnce(&mut Out) -> std::io::Result<()>,
    as_human: impl FnOnce(&mut Out) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    write_out(|out| if json { as_json(out) } else { as_human(out) })
}

/// Writes `report` to stdout as one JSON line with `--json`, else as `human` writes it.
pub fn write_report<R: serde::Serialize>(
    json: bool,
    report: &R,
    human: impl FnOnce(&mut Out, &R) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    write_out(|out| {
        if json {
            serde_json::to_writer(&mut *out, report)?;
            writeln!(out)
        } else {
            human(out, report)
        }
    })
}

/// A message on stderr, with text from files escaped for the terminal; a closed or broken
/// stderr is ignored (there is nowhere left to say anything).
pub fn warn(message: &str) {
    let _ = writeln!(
        std::io::stderr().lock(),
        "{}",
        ckptscope::output::human::term(message)
    );
}

/// Runs `work`, showing its progress on stderr when stderr is a terminal.
pub fn with_progress_line<T>(
    progress: &Arc<ckptscope::progress::Progress>,
    what: &str,
    work: impl FnOnce() -> T,
) -> T {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return work();
    }
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (progress, done, what) = (progress.clone(), done.clone(), what.to_string());
        std::thread::Builder::new()
            .name("ckptscope-progress".into())
            .spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let _ = write!(
                        std::io::stderr(),
                        "\r{what} {:5.1}%",
                        progress.fraction() * 100.0
                    );
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                let _ = write!(std::io::stderr(), "\r{}\r", " ".repeat(what.len() + 8));
            })
    };
    let result = work();
    done.store(true, Ordering::Relaxed);
    // A watcher that could not start only costs the progress line.
    if let Ok(watcher) = watcher {
        let _ = watcher.join();
    }
    result
}

/// The exit status of a subcommand that failed: 141 when the failure is stdout's reader gone,
/// else 2 with the error (and its causes) on stderr.
pub fn fail(err: &anyhow::Error) -> std::process::ExitCode {
    if let Some(io) = err.downcast_ref::<std::io::Error>()
        && io.kind() == std::io::ErrorKind::BrokenPipe
    {
        return std::process::ExitCode::from(BROKEN_PIPE_STATUS);
    }
    warn(&format!("error: {err:#}"));
    std::process::ExitCode::from(2)
}
