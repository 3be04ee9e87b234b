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
#[command(
    name = "ckptscope",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "When the reader of the output goes away (`ckptscope info FILE | head -1`), \
ckptscope stops quietly with exit status 141, as a program killed by SIGPIPE does; never 0, so \
a pipeline with `pipefail` does not take a cut-off scan for a clean one."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Checkpoints to open in the window.
    files: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// List a checkpoint's tensors, metadata and layout (reads headers only; pickles are read by
    /// the safe engine, never executed). For a folder, the model package: every file with its
    /// role, format, size, verdict and weights-only answer, totals, config and run timeline.
    Info(InfoArgs),
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
    Scan(ScanArgs),
    /// Convert a PyTorch pickle checkpoint to safetensors without executing it: streamed,
    /// verified byte for byte, and written atomically.
    ///
    /// Given a folder, converts every weight-bearing pickle in it (sharded models through their
    /// index) next to itself, skipping training-only files and existing outputs (`--force`
    /// replaces them); one failure does not stop the rest. Exit status: 0 when every pickle was
    /// converted or skipped on purpose, 1 when one was refused for its verdict or converted
    /// without some tensors, 2 when one failed.
    Convert(ConvertArgs),
    /// Write the inference part of a model folder to a new folder or `.tar.gz`: configs,
    /// tokenizer, model card and weights in safetensors (pickles converted and verified on the
    /// way); optimizer, scheduler, RNG state, training arguments, logs and `checkpoint-N/`
    /// folders are left out. Never replaces an existing target.
    Inference(InferenceArgs),
    /// Export a safetensors model as a PyTorch checkpoint (`pytorch_model.bin`) for runtimes
    /// that predate safetensors: written without Python, streamed, read back and verified (it
    /// must scan safe and load with `torch.load(weights_only=True)`), and written atomically.
    Export(ExportArgs),
    /// Compare two checkpoints tensor by tensor (any formats ckptscope opens). Exit 0 when
    /// identical, 1 when different, 2 on error.
    Diff(DiffArgs),
    /// Statistics of tensors (every format ckptscope opens): count, min, max, mean, std, rms,
    /// zeros, NaN/Inf, percentiles and a histogram, computed as the window computes them.
    ///
    /// Every tensor by default, or those `--tensor` names (exact names or globs). Exact unless
    /// `--sample`. Exit 0 when every selected tensor was measured, 1 when some could not be
    /// (each says why: `statistics not supported for TYPE`, a slice that does not fit), 2 on an
    /// error (unreadable file, bad slice, a name or glob that matches nothing).
    Stats(StatsArgs),
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
    #[command(flatten)]
    limits: LimitArgs,
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
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Args)]
struct ConvertArgs {
    /// The pickle checkpoint (`.pt`, `.pth`, `.bin`, `.ckpt`, `.pkl`), a
    /// `pytorch_model.bin.index.json` of a sharded model, or a folder (every weight-bearing
    /// pickle in it).
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
    /// Write a GGUF file's block-quantized tensors as their decoded values in this dtype
    /// (refused by default: the output would not hold the file's own bytes). The choice and
    /// each tensor's ggml type are recorded in the output's metadata.
    #[arg(long, value_name = "DTYPE", value_parser = ["f32", "f16", "bf16"])]
    dequantize: Option<String>,
    #[command(flatten)]
    trust: TrustArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Args)]
struct InferenceArgs {
    /// The model folder.
    folder: PathBuf,
    /// The new folder, or an archive when it ends in `.tar.gz` or `.tgz` (default:
    /// `FOLDER-inference` beside it).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Print what would be written and left out, and the bytes saved; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    trust: TrustArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Args)]
struct ExportArgs {
    /// What to write: `pytorch` (a `torch.save` zip checkpoint).
    #[arg(long, value_enum, default_value = "pytorch")]
    to: ExportTarget,
    /// A `.safetensors` file, a `model.safetensors.index.json` of a sharded model, or a folder
    /// holding one.
    input: PathBuf,
    /// Output file (default: `model.safetensors` becomes `pytorch_model.bin`, an index
    /// `pytorch_model.bin.index.json` with `pytorch_model-0000N-of-0000M.bin` shards, any other
    /// `X.safetensors` `X.bin`).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Replace the output if it exists.
    #[arg(long)]
    force: bool,
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
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
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
    /// How tensors are paired: `llama` by the names llama.cpp gives a Hugging Face Llama model
    /// in GGUF (undoing its Q/K row permutation), `none` by equal names, `auto` llama when one
    /// side is a Llama GGUF file holding the other's tensors.
    #[arg(long, value_enum, default_value = "auto")]
    map: MapArg,
    #[command(flatten)]
    trust: TrustArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum MapArg {
    Auto,
    Llama,
    None,
}

#[derive(Args)]
struct StatsArgs {
    /// A checkpoint file, a `*.safetensors.index.json`, or a folder holding one.
    path: PathBuf,
    /// A tensor name, or a glob (`layers.*.mlp.*`, `?.weight`; case-insensitive, as the
    /// window's filter); repeatable. Default: every tensor.
    #[arg(long = "tensor", value_name = "NAME|GLOB")]
    tensor: Vec<String>,
    /// The part of each tensor to measure, in the window's syntax: an index, a range
    /// `start:end[:step]` or `:` per dimension (`[3, :, 0:128]`).
    #[arg(long, value_name = "SLICE", value_parser = parse_slice)]
    slice: Option<ckptscope::analysis::SliceSpec>,
    /// Histogram bins.
    #[arg(long, default_value_t = ckptscope::analysis::DEFAULT_BINS, value_parser = parse_bins)]
    bins: usize,
    /// Measure about N evenly spaced elements of each tensor (the window's first answer)
    /// instead of every element; results are marked sampled.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "16384", value_parser = clap::value_parser!(u64).range(1..))]
    sample: Option<u64>,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    trust: TrustArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

/// Bins of a histogram: at least 1, and few enough that the counts fit in memory.
fn parse_bins(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n @ 1..=1_000_000) => Ok(n),
        _ => Err(format!(
            "expected a number of bins from 1 to 1000000, got `{text}`"
        )),
    }
}

fn parse_slice(text: &str) -> Result<ckptscope::analysis::SliceSpec, String> {
    ckptscope::analysis::SliceSpec::parse(text).map_err(|e| e.to_string())
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

/// Bounds on what a file may make ckptscope do, raised or lowered from the command line.
#[derive(Args, Clone, Default)]
struct LimitArgs {
    /// Change a limit, `NAME=VALUE` (K, M, G, T suffixes: powers of 1024); repeatable.
    #[arg(
        long = "limit",
        value_name = "NAME=VALUE",
        value_parser = check_limit,
        long_help = limit_help()
    )]
    limit: Vec<String>,
}

impl LimitArgs {
    fn limits(&self) -> anyhow::Result<ckptscope::Limits> {
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
    // Named workers (statistics, diff) show up as such in a debugger or `top -H`. It fails only
    // when a pool already exists, which leaves the default one.
    let _ = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("ckptscope-worker-{i}"))
        .build_global();
    let result = match cli.command {
        Some(Command::Info(args)) => info(&args),
        Some(Command::Scan(args)) => scan(&args),
        Some(Command::Convert(args)) => convert(&args),
        Some(Command::Inference(args)) => inference(&args),
        Some(Command::Export(args)) => export(&args),
        Some(Command::Diff(args)) => diff(&args),
        Some(Command::Stats(args)) => stats(&args),
        Some(Command::Lineage(args)) => lineage(&args),
        Some(Command::SetParent(args)) => set_parent(&args),
        Some(Command::InstallDesktop) => install_desktop(),
        None => run_gui(cli.files),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            if let Some(io) = err.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::BrokenPipe
            {
                return ExitCode::from(BROKEN_PIPE_STATUS);
            }
            warn(&format!("error: {err:#}"));
            ExitCode::from(2)
        }
    }
}

fn package_options(
    trust: &TrustArgs,
    limits: &LimitArgs,
) -> anyhow::Result<ckptscope::package::PackageOptions> {
    Ok(ckptscope::package::PackageOptions {
        policy: trust.open_options().pickle.policy,
        limits: limits.limits()?,
    })
}

/// What every conversion of the command line shares: the verdict accepted and the allowlist
/// (`--allow-*`), the limits, and the user's hash cache.
fn convert_options(
    trust: &TrustArgs,
    limits: &LimitArgs,
) -> anyhow::Result<ckptscope::convert::ConvertOptions> {
    let open = trust.open_options();
    Ok(ckptscope::convert::ConvertOptions {
        accept: open.pickle.trust,
        policy: open.pickle.policy,
        limits: limits.limits()?,
        cache: ckptscope::hash::CacheDir::User,
        ..Default::default()
    })
}

fn open_package(
    folder: &std::path::Path,
    options: &ckptscope::package::PackageOptions,
) -> anyhow::Result<ckptscope::package::Package> {
    let progress = ckptscope::progress::Progress::new();
    Ok(with_progress_line(&progress, "reading the folder", || {
        ckptscope::package::open_package(folder, options, &progress)
    })?)
}

fn info(args: &InfoArgs) -> anyhow::Result<ExitCode> {
    if args.path.is_dir() {
        let package = open_package(&args.path, &package_options(&args.trust, &args.limits)?)?;
        write_out(|out| {
            if args.json {
                ckptscope::output::package::write_json(out, &package)
            } else {
                ckptscope::output::package::write_human(out, &package)
            }
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut options = args.trust.open_options();
    options.limits = args.limits.limits()?;
    let ckpt = ckptscope::format::open_with(&args.path, &options)?;
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
    use ckptscope::pickle::policy::Policy;
    let policy = Policy::with_allow(args.allow.iter().cloned());
    let limits = args.limits.limits()?;
    let run = ckptscope::scan::scan_paths(&args.paths, &policy, &limits);
    write_out(|out| {
        if args.json {
            ckptscope::output::scan::write_json(out, &run)
        } else {
            ckptscope::output::scan::write_human(out, &run)
        }
    })?;
    if !args.json {
        for e in run.results.iter().filter_map(|r| r.as_ref().err()) {
            warn(&format!("error: {e}"));
        }
    }
    Ok(ExitCode::from(run.exit_code()))
}

fn convert(args: &ConvertArgs) -> anyhow::Result<ExitCode> {
    use ckptscope::convert::{ConvertOptions, convert};
    let options = ConvertOptions {
        output: args.output.clone(),
        force: args.force,
        all: args.all,
        materialize_expanded: args.materialize_expanded,
        skip_unreadable: args.skip_unreadable,
        dequantize: args.dequantize.as_deref().and_then(ckptscope::DType::parse),
        ..convert_options(&args.trust, &args.limits)?
    };
    if args.input.is_dir() {
        return convert_folder(args, &options);
    }
    let progress = ckptscope::progress::Progress::new();
    let report = with_progress_line(&progress, "converting", || {
        convert(&args.input, &options, &progress)
    })
    .map_err(|e| anyhow::anyhow!(ckptscope::output::convert::error_text(&e)))?;
    write_report(args.json, &report, ckptscope::output::convert::write_human)?;
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
    if args.output.is_some() {
        anyhow::bail!(
            "--output names one file; a folder's pickles are each converted next to themselves"
        );
    }
    let package = open_package(&args.input, &package_options(&args.trust, &args.limits)?)?;
    let progress = RunProgress::new();
    let summary = with_progress_line(&progress.overall, "converting", || {
        convert_all(&package, options, &progress, |_| {})
    });
    write_report(
        args.json,
        &summary,
        ckptscope::output::package::write_summary,
    )?;
    Ok(ExitCode::from(summary.exit_code()))
}

fn inference(args: &InferenceArgs) -> anyhow::Result<ExitCode> {
    use ckptscope::package::inference;
    let package = open_package(&args.folder, &package_options(&args.trust, &args.limits)?)?;
    let plan = inference::plan(&package);
    if args.dry_run {
        write_report(args.json, &plan, ckptscope::output::package::write_plan)?;
        return Ok(ExitCode::SUCCESS);
    }
    let target = args
        .output
        .clone()
        .unwrap_or_else(|| inference::default_target(&package));
    let convert = convert_options(&args.trust, &args.limits)?;
    let progress = ckptscope::progress::Progress::new();
    let written = with_progress_line(&progress, "writing", || {
        inference::write(&package, &plan, &target, &convert, &progress)
    })?;
    write_report(
        args.json,
        &written,
        ckptscope::output::package::write_written,
    )?;
    Ok(ExitCode::SUCCESS)
}

fn export(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    use ckptscope::export::{ExportOptions, export};
    let ExportTarget::Pytorch = args.to;
    // Reproducible builds' convention: a fixed time makes the same input give the same file.
    let exported_at = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s));
    let options = ExportOptions {
        output: args.output.clone(),
        force: args.force,
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
    write_report(args.json, &report, ckptscope::output::export::write_human)?;
    Ok(ExitCode::SUCCESS)
}

fn diff(args: &DiffArgs) -> anyhow::Result<ExitCode> {
    use ckptscope::analysis::diff;
    let mut options = args.trust.open_options();
    options.limits = args.limits.limits()?;
    let a = ckptscope::format::open_with(&args.a, &options)?;
    let b = ckptscope::format::open_with(&args.b, &options)?;
    let mapping = match args.map {
        MapArg::Auto => ckptscope::analysis::namemap::Mapping::offered(&a, &b),
        MapArg::Llama => Some(ckptscope::analysis::namemap::Mapping::llama(&a, &b)?),
        MapArg::None => None,
    };
    let progress = ckptscope::progress::Progress::new();
    if let Some(name) = &args.tensor {
        let pairs = diff::pairs(&a, &b, mapping.as_ref());
        let Some(pair) = pairs
            .iter()
            .find(|p| [p.a, p.b].into_iter().flatten().any(|t| t.name == *name))
        else {
            anyhow::bail!("no tensor named `{name}` in either checkpoint");
        };
        let one = diff::compare_pair(&a, &b, pair, &progress);
        let hist = match &one.measures {
            Some(m) => Some(
                diff::pair_histogram(&a, &b, pair, m, args.bins, &progress)
                    .map_err(anyhow::Error::msg)?,
            ),
            None => None,
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
    let d = with_progress_line(&progress, "comparing", || {
        diff::diff_mapped(&a, &b, mapping.as_ref(), &progress)
    });
    write_out(|out| {
        if args.json {
            ckptscope::output::diff::write_json(out, &a, &b, &d)
        } else {
            ckptscope::output::diff::write_human(out, &a, &b, &d)
        }
    })?;
    Ok(ExitCode::from(u8::from(!d.is_identical())))
}

fn stats(args: &StatsArgs) -> anyhow::Result<ExitCode> {
    use ckptscope::analysis::report::{StatsOptions, stats};
    let mut open = args.trust.open_options();
    open.limits = args.limits.limits()?;
    let ckpt = ckptscope::format::open_with(&args.path, &open)?;
    let picks = ckptscope::analysis::select::select(&ckpt, &args.tensor)
        .with_context(|| format!("in {}", ckpt.path.display()))?;
    let options = StatsOptions {
        spec: args.slice.clone().unwrap_or_default(),
        bins: args.bins,
        sample: args.sample,
    };
    let progress = ckptscope::progress::Progress::new();
    let results = with_progress_line(&progress, "measuring", || {
        stats(&ckpt, &picks, &options, &progress)
    });
    write_out(|out| {
        if args.json {
            ckptscope::output::stats::write_json(out, &ckpt, &options, &results)
        } else {
            ckptscope::output::stats::write_human(out, &ckpt, &options, &results)
        }
    })?;
    Ok(if results.iter().all(|r| r.result.is_ok()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn lineage(args: &LineageArgs) -> anyhow::Result<ExitCode> {
    let options = ckptscope::lineage::LineageOptions {
        extra: args.also.clone(),
        hash: args.hash,
        cache: ckptscope::hash::CacheDir::User,
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
    let report = ckptscope::lineage::set_parent(
        &args.file,
        &args.parent,
        &ckptscope::hash::CacheDir::User,
        &progress,
    )?;
    write_out(|out| {
        for (k, v) in &report.keys {
            writeln!(
                out,
                "{}: {} = {}",
                report.file.display(),
                ckptscope::output::human::term(k),
                ckptscope::output::human::term(v)
            )?;
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
        std::thread::Builder::new()
            .name("ckptscope-progress".into())
            .spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
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
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    // A watcher that could not start only costs the progress line.
    if let Ok(watcher) = watcher {
        let _ = watcher.join();
    }
    result
}

/// Writes `report` to stdout as one JSON line with `--json`, else as `human` writes it.
fn write_report<R: serde::Serialize>(
    json: bool,
    report: &R,
    human: impl FnOnce(&mut std::io::BufWriter<std::io::StdoutLock<'static>>, &R) -> std::io::Result<()>,
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

/// The exit status when stdout's reader went away: what a shell shows for a program killed by
/// SIGPIPE (128 + 13). Not 0, so a cut-off `scan` never passes for a clean one.
const BROKEN_PIPE_STATUS: u8 = 141;

/// Runs `write` on a buffered, locked stdout and flushes it: the one place where output is
/// written. A closed pipe ends the process quietly with [`BROKEN_PIPE_STATUS`].
fn write_out(
    write: impl FnOnce(&mut std::io::BufWriter<std::io::StdoutLock<'static>>) -> std::io::Result<()>,
) -> anyhow::Result<()> {
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

/// A message on stderr, with text from files escaped for the terminal; a closed or broken
/// stderr is ignored (there is nowhere left to say anything).
fn warn(message: &str) {
    let _ = writeln!(
        std::io::stderr().lock(),
        "{}",
        ckptscope::output::human::term(message)
    );
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
