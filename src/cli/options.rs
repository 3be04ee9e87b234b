//! The options several subcommands share, each declared once as a `#[derive(Args)]` struct and
//! flattened into the subcommands that take it, so a flag reads, parses and behaves the same
//! everywhere. A subcommand that means something of its own by a flag says so in its help with
//! `mut_arg` (`--json` prints an object for `info`, an array for `scan`).
//!
//! The structs are described with `//` comments, not doc comments: clap takes a flattened
//! struct's doc comment as the `about` of the subcommand it is flattened into.

use std::path::{Path, PathBuf};

use clap::Args;

use super::stdio::with_progress_line;

// `--json`: a machine-readable document on stdout instead of the human report.
#[derive(Args, Clone, Copy, Default)]
pub struct JsonArg {
    /// Print a JSON report.
    #[arg(long)]
    pub json: bool,
}

// `-o, --output`: where a subcommand writes (each one says what its default is).
#[derive(Args, Clone, Default)]
pub struct OutputArg {
    /// Output file.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

// `--force`: replace what is already at the output.
#[derive(Args, Clone, Copy, Default)]
pub struct ForceArg {
    /// Replace the output if it exists.
    #[arg(long)]
    pub force: bool,
}

// `--allow GLOBAL`: additions to the pickle allowlist.
#[derive(Args, Clone, Default)]
pub struct AllowArgs {
    /// Add a global to the allowlist (`module.name`, or `module.*` for a whole module);
    /// repeatable. `os`, `posix`, `nt`, `sys`, `subprocess`, `pty` and `runpy` stay blocked.
    #[arg(long = "allow", value_name = "GLOBAL")]
    pub allow: Vec<String>,
}

impl AllowArgs {
    /// The default policy with these additions.
    pub fn policy(&self) -> ckptscope::pickle::policy::Policy {
        ckptscope::pickle::policy::Policy::with_allow(self.allow.iter().cloned())
    }
}

// What a user accepts to look into (nothing is ever executed).
#[derive(Args, Clone, Default)]
pub struct TrustArgs {
    #[command(flatten)]
    pub allow: AllowArgs,
    /// Also read the tensors of pickle files judged suspicious.
    #[arg(long)]
    pub allow_suspicious: bool,
    /// Also read the tensors of pickle files judged dangerous (still without executing them).
    #[arg(long)]
    pub allow_dangerous: bool,
}

impl TrustArgs {
    /// The highest verdict accepted (`None`: safe only).
    pub fn accept(&self) -> Option<ckptscope::pickle::policy::Verdict> {
        use ckptscope::pickle::policy::Verdict;
        if self.allow_dangerous {
            Some(Verdict::Dangerous)
        } else if self.allow_suspicious {
            Some(Verdict::Suspicious)
        } else {
            None
        }
    }
}

// Bounds on what a file may make ckptscope do, raised or lowered from the command line.
#[derive(Args, Clone, Default)]
pub struct LimitArgs {
    /// Change a limit, `NAME=VALUE` (K, M, G, T suffixes: powers of 1024); repeatable.
    #[arg(
        long = "limit",
        value_name = "NAME=VALUE",
        value_parser = check_limit,
        long_help = limit_help()
    )]
    pub limit: Vec<String>,
}

impl LimitArgs {
    /// The default limits with the `--limit` changes applied in order.
    pub fn limits(&self) -> anyhow::Result<ckptscope::Limits> {
        let mut limits = ckptscope::Limits::DEFAULT;
        for assignment in &self.limit {
            limits
                .apply(assignment)
                .map_err(|e| anyhow::anyhow!("--limit {assignment}: {e}"))?;
        }
        Ok(limits)
    }
}

/// Rejects a bad `--limit` while the arguments are parsed, with clap's usage message.
fn check_limit(assignment: &str) -> Result<String, String> {
    ckptscope::Limits::DEFAULT.clone().apply(assignment)?;
    Ok(assignment.to_string())
}

fn limit_help() -> String {
    let mut help = String::from(
        "Change a limit, `NAME=VALUE` (K, M, G, T suffixes: powers of 1024); repeatable. Pickle \
         budgets count the whole file. A file that reaches a limit is judged at least suspicious \
         and the message names the limit. Names:",
    );
    let width = ckptscope::Limits::NAMES
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(0);
    for (name, what) in ckptscope::Limits::NAMES {
        help.push_str(&format!("\n  {name:<width$}  {what}"));
    }
    help
}

// How a subcommand that reads checkpoints reads them: the verdicts it accepts, the allowlist
// and the limits (`--allow*`, `--limit`).
#[derive(Args, Clone, Default)]
pub struct ReadArgs {
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
}

impl ReadArgs {
    /// How to open one checkpoint.
    pub fn open_options(&self) -> anyhow::Result<ckptscope::format::OpenOptions> {
        Ok(ckptscope::format::OpenOptions {
            pickle: ckptscope::format::PickleOptions {
                policy: self.trust.allow.policy(),
                trust: self.trust.accept(),
            },
            limits: self.limits.limits()?,
            ..Default::default()
        })
    }

    /// How to open a model folder.
    pub fn package_options(&self) -> anyhow::Result<ckptscope::package::PackageOptions> {
        Ok(ckptscope::package::PackageOptions {
            policy: self.trust.allow.policy(),
            limits: self.limits.limits()?,
        })
    }

    /// What every conversion of the command line shares: the verdict accepted and the
    /// allowlist, the limits, and the user's hash cache.
    pub fn convert_options(&self) -> anyhow::Result<ckptscope::convert::ConvertOptions> {
        Ok(ckptscope::convert::ConvertOptions {
            accept: self.trust.accept(),
            policy: self.trust.allow.policy(),
            limits: self.limits.limits()?,
            cache: ckptscope::hash::CacheDir::User,
            ..Default::default()
        })
    }

    /// Opens `folder` as a model package, with a progress line on a terminal.
    pub fn open_package(&self, folder: &Path) -> anyhow::Result<ckptscope::package::Package> {
        let options = self.package_options()?;
        let progress = ckptscope::progress::Progress::new();
        Ok(with_progress_line(&progress, "reading the folder", || {
            ckptscope::package::open_package(folder, &options, &progress)
        })?)
    }
}
