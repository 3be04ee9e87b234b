//! The `ckptscope` binary: with files or nothing, the explorer window; with a subcommand, the CLI.
//! Thin on purpose: parse the arguments, run what they ask (`src/cli/`), turn the outcome into
//! an exit status.

use std::process::ExitCode;

use clap::Parser as _;

mod cli;

/// mimalloc instead of glibc's malloc: reading a large header is mostly small allocations, and
/// it halves `info`'s time on a 20,000-tensor file.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // Named workers (statistics, diff) show up as such in a debugger or `top -H`. It fails only
    // when a pool already exists, which leaves the default one.
    let _ = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("ckptscope-worker-{i}"))
        .build_global();
    match cli::run(cli) {
        Ok(code) => code,
        Err(err) => cli::stdio::fail(&err),
    }
}
