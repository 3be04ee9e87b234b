//! The `ckptscope` binary: with files or nothing, the explorer window; with a subcommand, the CLI.
//! Thin on purpose: parse arguments, call the library, print.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

/// mimalloc instead of glibc's malloc: reading a large header is mostly small allocations, and
/// it halves `info`'s time on a 20,000-tensor file.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// List a checkpoint's tensors, metadata and layout (reads headers only; pickles are read by
    /// the safe engine, never executed).
    Info(InfoArgs),
    /// Judge pickle-based files (and folders, recursively) without executing them: safe,
    /// suspicious or dangerous, with the reasons. Exit 0 when all are safe, 1 when any is not,
    /// 2 when a file cannot be read.
    Scan(ScanArgs),
    /// Convert a PyTorch pickle checkpoint to safetensors without executing it: streamed,
    /// verified byte for byte, and written atomically.
    Convert(ConvertArgs),
    /// Compare two checkpoints tensor by tensor (any formats ckptscope opens). Exit 0 when
    /// identical, 1 when different, 2 on error.
    Diff(DiffArgs),
    /// Show where checkpoints came from: parents found in metadata (ckptscope, ModelSpec,
    /// kohya, Hugging Face, uuids) linked by name, path, hash or uuid, as a tree.
    Lineage(LineageArgs),
    /// Record PARENT as the parent of FILE (a safetensors file): writes `parent` and
    /// `parent_sha256` into its metadata, rewriting only the header, atomically.
    SetParent(SetParentArgs),
    /// Register ckptscope with the Linux desktop (for the current user): double-clicking a
    /// `.safetensors`, `.pt`, `.pth`, `.ckpt` or `.pkl` file then opens it here.
    InstallDesktop,
}

#[derive(Args)]
struct InfoArgs {
    /// A checkpoint file, a `*.safetensors.index.json`, or a folder holding one.
    path: PathBuf,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    trust: TrustArgs,
}

#[derive(Args)]
struct ScanArgs {
    /// Files or folders to scan.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print a JSON array instead of the report.
    #[arg(long)]
    json: bool,
    /// Add a global to the allowlist (`module.name`, or `module.*` for a whole module);
    /// repeatable. `os`, `posix`, `nt`, `sys`, `subprocess`, `pty` and `runpy` stay blocked.
    #[arg(long = "allow", value_name = "GLOBAL")]
    allow: Vec<String>,
}

#[derive(Args)]
struct ConvertArgs {
    /// The pickle checkpoint (`.pt`, `.pth`, `.bin`, `.ckpt`, `.pkl`), or a
    /// `pytorch_model.bin.index.json` of a sharded model.
    input: PathBuf,
    /// Output file (default: the input with a `.safetensors` extension; `pytorch_model.bin`
    /// becomes `model.safetensors`).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Replace the output if it exists.
    #[arg(long)]
    force: bool,
    /// Export every tensor (optimizer state too) under its dotted path, not only the weights.
    #[arg(long)]
    all: bool,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
    /// Write tensors that are stride-0 expansions of a much smaller storage (refused by
    /// default: a few bytes in the file can ask for terabytes of output).
    #[arg(long)]
    materialize_expanded: bool,
    /// Convert the other tensors when some cannot be read (a truncated file, a missing or
    /// damaged record). The output's metadata and the report list the skipped tensors, and the
    /// exit code is 1.
    #[arg(long)]
    skip_unreadable: bool,
    #[command(flatten)]
    trust: TrustArgs,
}

#[derive(Args)]
struct DiffArgs {
    /// The first checkpoint (A).
    a: PathBuf,
    /// The second checkpoint (B).
    b: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Show one tensor in detail, with a histogram of a-b.
    #[arg(long, value_name = "NAME")]
    tensor: Option<String>,
    /// Bins of the a-b histogram (with --tensor).
    #[arg(long, default_value_t = 20)]
    bins: usize,
    #[command(flatten)]
    trust: TrustArgs,
}

#[derive(Args)]
struct LineageArgs {
    /// A checkpoint (its folder is scanned) or a folder.
    path: PathBuf,
    /// More folders (or files) to look for parents in.
    #[arg(long = "also", value_name = "PATH")]
    also: Vec<PathBuf>,
    /// Hash candidate parents (whole file and tensor data) to resolve hash references; hashes
    /// are cached, so this is slow once.
    #[arg(long)]
    hash: bool,
    /// Print `{"nodes", "edges", "timelines"}` as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SetParentArgs {
    /// The safetensors file to annotate.
    file: PathBuf,
    /// Its parent checkpoint.
    parent: PathBuf,
}

/// What a user accepts to look into (nothing is ever executed).
#[derive(Args, Clone, Default)]
struct TrustArgs {
    /// Add a global to the allowlist (`module.name` or `module.*`); repeatable.
    #[arg(long = "allow", value_name = "GLOBAL")]
    allow: Vec<String>,
    /// Also read the tensors of pickle files judged suspicious.
    #[arg(long)]
    allow_suspicious: bool,
    /// Also read the tensors of pickle files judged dangerous (still without executing them).
    #[arg(long)]
    allow_dangerous: bool,
}

impl TrustArgs {
    fn open_options(&self) -> ckptscope::format::OpenOptions {
        use ckptscope::pickle::policy::{Policy, Verdict};
        let trust = if self.allow_dangerous {
            Some(Verdict::Dangerous)
        } else if self.allow_suspicious {
            Some(Verdict::Suspicious)
        } else {
            None
        };
        ckptscope::format::OpenOptions {
            pickle: ckptscope::format::PickleOptions {
                policy: Policy::with_allow(self.allow.iter().cloned()),
                trust,
            },
            ..Default::default()
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Info(args)) => info(&args),
        Some(Command::Scan(args)) => scan(&args),
        Some(Command::Convert(args)) => convert(&args),
        Some(Command::Diff(args)) => diff(&args),
        Some(Command::Lineage(args)) => lineage(&args),
        Some(Command::SetParent(args)) => set_parent(&args),
        Some(Command::InstallDesktop) => install_desktop(),
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
    let ckpt = ckptscope::format::open_with(&args.path, &args.trust.open_options())?;
    write_out(|out| {
        if args.json {
            ckptscope::output::info::write_json(out, &ckpt)
        } else {
            ckptscope::output::info::write_human(out, &ckpt)
        }
    })?;
    // The process ends here: freeing a large header's many small allocations would only
    // delay the exit.
    std::mem::forget(ckpt);
    Ok(ExitCode::SUCCESS)
}

fn scan(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    use ckptscope::pickle::policy::{Policy, Verdict};
    let policy = Policy::with_allow(args.allow.iter().cloned());
    let run =
        ckptscope::pickle::scan::scan_paths(&args.paths, &policy, &ckptscope::Limits::DEFAULT);
    write_out(|out| {
        if args.json {
            ckptscope::output::scan::write_json(out, &run)
        } else {
            ckptscope::output::scan::write_human(out, &run)
        }
    })?;
    let unreadable = run.results.iter().any(Result::is_err);
    let unsafe_found = run
        .results
        .iter()
        .flatten()
        .any(|r| r.verdict != Verdict::Safe);
    if !args.json {
        for e in run.results.iter().filter_map(|r| r.as_ref().err()) {
            eprintln!("error: {e}");
        }
    }
    Ok(ExitCode::from(if unreadable {
        2
    } else if unsafe_found {
        1
    } else {
        0
    }))
}

fn convert(args: &ConvertArgs) -> anyhow::Result<ExitCode> {
    use ckptscope::convert::{ConvertOptions, convert};
    let open = args.trust.open_options();
    let options = ConvertOptions {
        output: args.output.clone(),
        force: args.force,
        all: args.all,
        accept: open.pickle.trust,
        policy: open.pickle.policy,
        limits: open.limits,
        materialize_expanded: args.materialize_expanded,
        skip_unreadable: args.skip_unreadable,
        ..ConvertOptions::default()
    };
    let progress = ckptscope::progress::Progress::new();
    let report = with_progress_line(&progress, "converting", || {
        convert(&args.input, &options, &progress)
    })?;
    write_out(|out| {
        if args.json {
            serde_json::to_writer(&mut *out, &report)?;
            writeln!(out)
        } else {
            ckptscope::output::convert::write_human(out, &report)
        }
    })?;
    // An output missing tensors (--skip-unreadable) is not a success.
    Ok(if report.skipped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn diff(args: &DiffArgs) -> anyhow::Result<ExitCode> {
    use ckptscope::analysis::diff;
    let options = args.trust.open_options();
    let a = ckptscope::format::open_with(&args.a, &options)?;
    let b = ckptscope::format::open_with(&args.b, &options)?;
    let progress = ckptscope::progress::Progress::new();
    if let Some(name) = &args.tensor {
        let (ta, tb) = (a.tensor(name), b.tensor(name));
        if ta.is_none() && tb.is_none() {
            anyhow::bail!("no tensor named `{name}` in either checkpoint");
        }
        let one = diff::compare(&a, ta, &b, tb, &progress);
        let hist = match (ta, tb, &one.measures) {
            (Some(ta), Some(tb), Some(m)) => Some(
                diff::diff_histogram(&a, ta, &b, tb, m, args.bins, &progress)
                    .map_err(anyhow::Error::msg)?,
            ),
            _ => None,
        };
        write_out(|out| {
            if args.json {
                serde_json::to_writer(
                    &mut *out,
                    &serde_json::json!({ "tensor": one, "histogram": hist }),
                )?;
                writeln!(out)
            } else {
                ckptscope::output::diff::write_tensor(out, &one, hist.as_ref())
            }
        })?;
        return Ok(ExitCode::from(u8::from(
            one.status != diff::Status::Identical,
        )));
    }
    let d = with_progress_line(&progress, "comparing", || diff::diff(&a, &b, &progress));
    write_out(|out| {
        if args.json {
            ckptscope::output::diff::write_json(out, &a, &b, &d)
        } else {
            ckptscope::output::diff::write_human(out, &a, &b, &d)
        }
    })?;
    Ok(ExitCode::from(u8::from(!d.is_identical())))
}

fn lineage(args: &LineageArgs) -> anyhow::Result<ExitCode> {
    let options = ckptscope::lineage::LineageOptions {
        extra: args.also.clone(),
        hash: args.hash,
    };
    let progress = ckptscope::progress::Progress::new();
    let graph = with_progress_line(&progress, "hashing", || {
        ckptscope::lineage::family(&args.path, &options, &progress)
    })?;
    write_out(|out| {
        if args.json {
            ckptscope::output::lineage::write_json(out, &graph)
        } else {
            ckptscope::output::lineage::write_human(out, &graph)
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

fn set_parent(args: &SetParentArgs) -> anyhow::Result<ExitCode> {
    let progress = ckptscope::progress::Progress::new();
    let report = ckptscope::lineage::set_parent(&args.file, &args.parent, &progress)?;
    write_out(|out| {
        for (k, v) in &report.keys {
            writeln!(out, "{}: {k} = {v}", report.file.display())?;
        }
        writeln!(
            out,
            "header rewritten; tensor data unchanged (content id {})",
            report.content_id
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

fn install_desktop() -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let data = ckptscope::desktop::data_home().context("neither XDG_DATA_HOME nor HOME is set")?;
    let installed = ckptscope::desktop::install(&data, &exe, true)
        .context("cannot install the desktop files")?;
    write_out(|out| {
        for f in &installed.files {
            writeln!(out, "installed {}", f.display())?;
        }
        for n in &installed.notes {
            writeln!(out, "{n}")?;
        }
        writeln!(
            out,
            "double-clicking a checkpoint now opens it with {}",
            exe.display()
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `work`, showing its progress on stderr when stderr is a terminal.
fn with_progress_line<T>(
    progress: &std::sync::Arc<ckptscope::progress::Progress>,
    what: &str,
    work: impl FnOnce() -> T,
) -> T {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return work();
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (progress, done, what) = (progress.clone(), done.clone(), what.to_string());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                eprint!("\r{what} {:5.1}%", progress.fraction() * 100.0);
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            eprint!("\r{}\r", " ".repeat(what.len() + 8));
        })
    };
    let result = work();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = watcher.join();
    result
}

/// Runs `write` on a buffered stdout and flushes it.
fn write_out(
    write: impl FnOnce(&mut std::io::BufWriter<std::io::StdoutLock<'static>>) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    write(&mut out)
        .and_then(|()| out.flush())
        .context("cannot write the report")
}

#[cfg(feature = "gui")]
fn run_gui(files: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    ckptscope::gui::run(files).map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "gui"))]
fn run_gui(_files: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "this build has no window (built without the `gui` feature); run `ckptscope --help` for the CLI"
    )
}
