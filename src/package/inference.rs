//! "Make inference package": a new folder (or `.tar.gz`) with only what inference needs:
//! configs, tokenizer files, the model card and custom code, and the weights in safetensors
//! (pickles converted on the way, through the verified converter). Optimizer, scheduler, RNG
//! state, training arguments, trainer logs and `checkpoint-N/` folders are left out.
//!
//! When the package's top level holds no weights (a run that only saved checkpoints), the
//! latest run point's weights and configs are taken, and the plan says so.
//!
//! Writing is all-or-nothing and goes through [`crate::pipeline`]: the target's file system
//! must hold every kept file first; a folder is built under a hidden name beside the target
//! (each file copied, read back against the source and synced) and renamed into place at the
//! end; an archive is written through [`crate::pipeline::Output`]. An existing target is never
//! replaced.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use crate::archive::tar_write::{GzWriter, TarWriter};
use crate::convert::{ConvertError, ConvertOptions, convert, default_output};
use crate::fsutil::Replace;
use crate::pipeline::{CopyFileError, Output, WriteError};
use crate::progress::Progress;

use super::{Package, PackageFile, PointKind, Role};

/// What to do with one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Copied as it is.
    Copy,
    /// A pickle converted to safetensors (a sharded index: its shards too).
    Convert,
}

/// One file of the inference package.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Entry {
    /// The source, relative to the package.
    pub source: PathBuf,
    /// Where it goes, relative to the new package.
    pub dest: PathBuf,
    /// How.
    pub action: Action,
    /// The source's size (for a sharded index, with its shards).
    pub bytes: u64,
}

/// A file left out, and why.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LeftOut {
    /// Relative to the package.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Why it is not needed.
    pub reason: String,
}

/// What the inference package will hold, before anything is written.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Plan {
    /// Files to write.
    pub entries: Vec<Entry>,
    /// Files left out.
    pub left_out: Vec<LeftOut>,
    /// The run point whose weights were taken, when the top level had none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_point: Option<PathBuf>,
    /// Bytes of the whole package.
    pub package_bytes: u64,
    /// Bytes of the files kept (sources; a conversion's output is about its input's size).
    pub kept_bytes: u64,
    /// Bytes left out: what the inference package saves.
    pub saved_bytes: u64,
}

/// Names of files kept whatever their role: model cards, licences.
fn is_document(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("readme") || lower.starts_with("license") || lower.starts_with("notice")
}

/// Folders of logs and experiment trackers.
const LOG_FOLDERS: &[&str] = &["runs", "wandb", "logs", "mlruns", "tensorboard"];

/// Plans the inference package of `package`.
pub fn plan(package: &Package) -> Plan {
    // The run point a file belongs to: its `checkpoint-N/` folder (every such folder is a point
    // of the timeline), or itself when it is a `step=N` file. Looked up, not searched for: a
    // folder may hold a million files and half as many points.
    let file_points: HashSet<&Path> = package
        .timeline
        .iter()
        .filter(|p| p.kind == PointKind::File)
        .map(|p| p.path.as_path())
        .collect();
    let point_of = |f: &PackageFile| {
        super::timeline::point_folder(&f.path).or_else(|| {
            file_points
                .contains(f.path.as_path())
                .then(|| f.path.clone())
        })
    };
    let top_has_weights = package
        .files
        .iter()
        .any(|f| f.role.holds_weights() && point_of(f).is_none());
    let from_point = if top_has_weights {
        None
    } else {
        package.timeline.last().cloned()
    };

    let mut entries = Vec::new();
    let mut left_out = Vec::new();
    let leave = |f: &PackageFile, reason: String, out: &mut Vec<LeftOut>| {
        out.push(LeftOut {
            path: f.path.clone(),
            bytes: f.bytes,
            reason,
        });
    };
    for f in &package.files {
        // Where the file would go, if kept: top-level files keep their path; the chosen
        // point's files move to the top.
        let dest = match &from_point {
            Some(p) if p.kind == PointKind::Folder && f.path.starts_with(&p.path) => f
                .path
                .strip_prefix(&p.path)
                .unwrap_or(&f.path)
                .to_path_buf(),
            Some(p) if p.kind == PointKind::File && f.path == p.path => {
                PathBuf::from("model.safetensors")
            }
            _ if let Some(point) = point_of(f) => {
                leave(
                    f,
                    format!("part of run checkpoint {}", point.display()),
                    &mut left_out,
                );
                continue;
            }
            _ => f.path.clone(),
        };
        if f.role == Role::WeightsShard && converted_with_index(package, f) {
            // Read through its index, whose entry counts the shard's bytes.
            continue;
        }
        if let Some(reason) = leave_out_reason(f) {
            leave(f, reason, &mut left_out);
            continue;
        }
        let pickle = f.format.is_pickle_based()
            || (f.role == Role::WeightsIndex
                && crate::convert::is_sharded_pickle_index(&package.absolute(&f.path)));
        let (action, dest) = if pickle && f.role.holds_weights() {
            let dest = if dest == Path::new("model.safetensors") {
                dest
            } else {
                default_output(&dest)
            };
            (Action::Convert, dest)
        } else {
            (Action::Copy, dest)
        };
        let bytes = f.bytes
            + if f.role == Role::WeightsIndex && action == Action::Convert {
                shard_bytes(package, &f.path)
            } else {
                0
            };
        entries.push(Entry {
            source: f.path.clone(),
            dest,
            action,
            bytes,
        });
    }
    // A converted pickle beside a safetensors file of the same name: the safetensors one wins.
    let copied: HashSet<PathBuf> = entries
        .iter()
        .filter(|e| e.action == Action::Copy)
        .map(|e| e.dest.clone())
        .collect();
    let (dupes, kept): (Vec<Entry>, Vec<Entry>) = entries
        .into_iter()
        .partition(|e| e.action == Action::Convert && copied.contains(&e.dest));
    for d in dupes {
        left_out.push(LeftOut {
            bytes: d.bytes,
            reason: format!("{} is already in safetensors", d.dest.display()),
            path: d.source,
        });
    }
    let mut entries = kept;
    // A model kept as one training checkpoint (Lightning) becomes the package's
    // model.safetensors, and the files kept beside it move to the top with it.
    let weights: Vec<&Entry> = entries
        .iter()
        .filter(|e| {
            package
                .file(&e.source)
                .is_some_and(|f| f.role.holds_weights())
        })
        .collect();
    if let [only] = weights.as_slice()
        && package
            .file(&only.source)
            .is_some_and(|f| f.role == Role::TrainingCheckpoint)
    {
        let model = only.source.clone();
        let mut names: Vec<PathBuf> = Vec::new();
        for e in &mut entries {
            e.dest = if e.source == model {
                PathBuf::from("model.safetensors")
            } else {
                e.dest.file_name().map(PathBuf::from).unwrap_or_default()
            };
            names.push(e.dest.clone());
        }
        names.sort();
        let unique = names.windows(2).all(|w| w.first() != w.get(1));
        if !unique {
            // Two files of the same name in different folders: keep the folders.
            for e in &mut entries {
                if e.source != model {
                    e.dest = e.source.clone();
                }
            }
        }
    }
    let kept_bytes: u64 = entries.iter().map(|e| e.bytes).sum();
    let saved_bytes: u64 = left_out.iter().map(|l| l.bytes).sum();
    Plan {
        entries,
        left_out,
        from_point: from_point.map(|p| p.path),
        package_bytes: package.totals.bytes,
        kept_bytes,
        saved_bytes,
    }
}

fn shard_bytes(package: &Package, index: &Path) -> u64 {
    package
        .files
        .iter()
        .filter(|f| f.model.as_deref() == Some(index))
        .map(|f| f.bytes)
        .sum()
}

/// Why a file (outside run points) is not part of an inference package, if it is not.
/// A shard of a sharded pickle model: converted when its index is.
fn converted_with_index(package: &Package, f: &PackageFile) -> bool {
    f.model
        .as_deref()
        .is_some_and(|index| crate::convert::is_sharded_pickle_index(&package.absolute(index)))
}

fn leave_out_reason(f: &PackageFile) -> Option<String> {
    let name = f
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if f.role.is_training_only() {
        return Some(format!("{}: training only", f.role.label()));
    }
    if f.role == Role::Other {
        let first = f
            .path
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if f.path.components().count() > 1 && LOG_FOLDERS.contains(&first.as_str()) {
            return Some("training logs".into());
        }
        if name.starts_with("events.out.tfevents") || name.ends_with(".log") {
            return Some("training logs".into());
        }
        if f.format.is_pickle_based() && !is_document(&name) {
            return Some("a pickle that holds no weights".into());
        }
    }
    None
}

/// What was written.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Written {
    /// The folder or archive.
    pub path: PathBuf,
    /// The plan that was carried out.
    pub plan: Plan,
    /// Bytes written (files in the folder, or the archive's size).
    pub bytes: u64,
}

/// Why an inference package was not written. Nothing is left behind.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// The target exists.
    #[error("{} already exists; choose another name", .0.display())]
    Exists(PathBuf),
    /// The package has no weights to ship.
    #[error("{} holds no model weights outside its training state", .0.display())]
    NoWeights(PathBuf),
    /// Converting a pickle failed.
    #[error("converting {}: {error}", path.display())]
    Convert {
        /// The pickle, relative to the package.
        path: PathBuf,
        /// Why (boxed: a conversion error is large, and this is the rare path).
        error: Box<ConvertError>,
    },
    /// A file of the package cannot be read (or changed while it was copied).
    #[error(transparent)]
    Read(crate::error::Error),
    /// The package does not fit, a copy did not read back as its source, or writing failed.
    #[error(transparent)]
    Write(WriteError),
    /// Reading or writing failed.
    #[error("{what} {}: {error}", path.display())]
    Io {
        /// What was done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// The user cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl From<WriteError> for InferenceError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Cancelled => InferenceError::Cancelled,
            WriteError::Exists(p) => InferenceError::Exists(p),
            e => InferenceError::Write(e),
        }
    }
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> InferenceError + 'a {
    move |error| InferenceError::Io {
        what,
        path: path.to_path_buf(),
        error,
    }
}

/// Whether `target` names an archive (`.tar.gz` or `.tgz`) rather than a folder.
pub fn is_archive(target: &Path) -> bool {
    let name = target.to_string_lossy().to_ascii_lowercase();
    name.ends_with(".tar.gz") || name.ends_with(".tgz")
}

/// The default target: `<folder>-inference` beside the package.
pub fn default_target(package: &Package) -> PathBuf {
    let name = package
        .root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    package
        .root
        .parent()
        .unwrap_or(Path::new("."))
        .join(format!("{name}-inference"))
}

/// Writes the inference package `plan` describes to `target` (a folder, or an archive when it
/// ends in `.tar.gz`/`.tgz`). Pickles are converted with `convert` as the template (its output
/// and force are set here); `progress` counts source bytes.
pub fn write(
    package: &Package,
    plan: &Plan,
    target: &Path,
    convert_options: &ConvertOptions,
    progress: &Progress,
) -> Result<Written, InferenceError> {
    if target.exists() || target.symlink_metadata().is_ok() {
        return Err(InferenceError::Exists(target.to_path_buf()));
    }
    if !plan.entries.iter().any(|e| {
        package
            .file(&e.source)
            .is_some_and(|f| f.role.holds_weights())
    }) {
        return Err(InferenceError::NoWeights(package.root.clone()));
    }
    let need: u64 = plan.entries.iter().map(|e| e.bytes).sum();
    progress.add_total(need);
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Conversions write about their input's size, copies theirs: all of it must fit first.
    crate::pipeline::check_space_in(&parent, target, need)?;
    // Conversions (and, for a folder, everything) are built in a hidden folder beside the
    // target: same file system, so the final rename is atomic.
    let staging = tempfile::Builder::new()
        .prefix(".ckptscope-inference-")
        .tempdir_in(&parent)
        .map_err(io_err("create a folder in", &parent))?;
    for e in plan.entries.iter().filter(|e| e.action == Action::Convert) {
        if progress.is_cancelled() {
            return Err(InferenceError::Cancelled);
        }
        let dest = staging.path().join(&e.dest);
        if let Some(folder) = dest.parent() {
            std::fs::create_dir_all(folder).map_err(io_err("create", folder))?;
        }
        let options = ConvertOptions {
            output: Some(dest),
            force: false,
            ..convert_options.clone()
        };
        let one = Progress::new();
        convert(&package.absolute(&e.source), &options, &one).map_err(|error| match error {
            error if error.is_cancelled() => InferenceError::Cancelled,
            error => InferenceError::Convert {
                path: e.source.clone(),
                error: Box::new(error),
            },
        })?;
        progress.add_done(e.bytes);
    }
    let bytes = if is_archive(target) {
        write_archive(package, plan, staging.path(), target, progress)?
    } else {
        // The conversions are in the staging folder already; the copies join them.
        let mut bytes = converted_bytes(staging.path());
        for e in plan.entries.iter().filter(|e| e.action == Action::Copy) {
            if progress.is_cancelled() {
                return Err(InferenceError::Cancelled);
            }
            let dest = staging.path().join(&e.dest);
            if let Some(folder) = dest.parent() {
                std::fs::create_dir_all(folder).map_err(io_err("create", folder))?;
            }
            let src = package.absolute(&e.source);
            let one = Progress::new();
            bytes +=
                crate::pipeline::copy_file(&src, &dest, Replace::Never, &one).map_err(|error| {
                    match error {
                        CopyFileError::Write(e) => InferenceError::from(e),
                        CopyFileError::Source(e) => InferenceError::Read(e),
                    }
                })?;
            progress.add_done(e.bytes);
        }
        let built = staging.keep();
        if let Err(error) = crate::fsutil::rename_noreplace(&built, target) {
            let _ = std::fs::remove_dir_all(&built);
            // Something appeared at the target while the package was built: it stays.
            if error.kind() == io::ErrorKind::AlreadyExists {
                return Err(InferenceError::Exists(target.to_path_buf()));
            }
            return Err(InferenceError::Io {
                what: "rename into place",
                path: target.to_path_buf(),
                error,
            });
        }
        let _ = crate::fsutil::sync_folder(&parent);
        bytes
    };
    Ok(Written {
        path: target.to_path_buf(),
        plan: plan.clone(),
        bytes,
    })
}

/// Bytes of the converted files in the staging folder (shards included).
fn converted_bytes(staging: &Path) -> u64 {
    crate::scan::list_folder(staging, false)
        .files
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

fn seconds(t: Option<std::time::SystemTime>) -> u64 {
    t.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

fn write_archive(
    package: &Package,
    plan: &Plan,
    staging: &Path,
    target: &Path,
    progress: &Progress,
) -> Result<u64, InferenceError> {
    let top = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let top = top
        .strip_suffix(".tar.gz")
        .or_else(|| top.strip_suffix(".tgz"))
        .unwrap_or(&top)
        .to_string();
    let atomic = Output::create(target, Replace::Never)?;
    // Weights barely compress: the archive takes about what its members do.
    let members: u64 = plan.entries.iter().map(|e| e.bytes).sum();
    atomic.check_space(members.saturating_add(plan.entries.len() as u64 * 1024))?;
    let file = atomic.file().try_clone().map_err(io_err("write", target))?;
    let gz =
        GzWriter::new(BufWriter::with_capacity(1 << 20, file)).map_err(io_err("write", target))?;
    let mut tar = TarWriter::new(gz);
    let add = |tar: &mut TarWriter<_>, name: String, path: &Path| -> Result<(), InferenceError> {
        let mut f = File::open(path).map_err(io_err("read", path))?;
        let meta = f.metadata().map_err(io_err("read", path))?;
        tar.add_file(&name, meta.len(), seconds(meta.modified().ok()), &mut f)
            .map_err(io_err("write", target))
    };
    tar.add_folder(&top, seconds(Some(std::time::SystemTime::now())))
        .map_err(io_err("write", target))?;
    for e in &plan.entries {
        if progress.is_cancelled() {
            return Err(InferenceError::Cancelled);
        }
        let name = |p: &Path| format!("{top}/{}", p.to_string_lossy().replace('\\', "/"));
        match e.action {
            Action::Copy => add(&mut tar, name(&e.dest), &package.absolute(&e.source))?,
            Action::Convert => {
                // The converted file, and for a sharded model every shard written beside it.
                let written = staging.join(&e.dest);
                let folder = e.dest.parent().unwrap_or(Path::new(""));
                let mut files = vec![written.clone()];
                if e.dest.to_string_lossy().ends_with(".index.json")
                    && let Ok(shards) =
                        crate::format::sharded::shard_names(&written, &crate::Limits::default())
                {
                    files.extend(shards.iter().map(|s| staging.join(folder).join(s)));
                }
                for path in files {
                    let rel = path.strip_prefix(staging).unwrap_or(&path).to_path_buf();
                    add(&mut tar, name(&rel), &path)?;
                }
            }
        }
        if e.action == Action::Copy {
            progress.add_done(e.bytes);
        }
    }
    let gz = tar.finish().map_err(io_err("write", target))?;
    let mut out = gz.finish().map_err(io_err("write", target))?;
    io::Write::flush(&mut out).map_err(io_err("write", target))?;
    drop(out);
    let len = atomic
        .file()
        .metadata()
        .map_err(io_err("write", target))?
        .len();
    atomic.commit()?;
    Ok(len)
}
