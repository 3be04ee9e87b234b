//! `ckptscope scan`: judge files and folders by content, reading only their pickles.
//!
//! A scan never extracts tensors and never reads storages: in a 1 GiB zip checkpoint it reads
//! the central directory and `data.pkl` (a few KB) from the memory map, so its cost does not
//! grow with the weights.

use std::path::{Path, PathBuf};

use crate::archive::zip;
use crate::error::Error;
use crate::format::mapped::file_kind;
use crate::format::{Format, Input, MappedFile, registry};
use crate::limits::Limits;
use crate::pickle::StreamReport;
use crate::pickle::policy::{Finding, Policy, Verdict};

/// The scan of one file.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ScanResult {
    /// The file.
    #[serde(serialize_with = "crate::fsutil::serialize_path")]
    pub path: PathBuf,
    /// What it is.
    #[serde(serialize_with = "format_name")]
    pub format: Format,
    /// `safe`, `suspicious` or `dangerous`.
    pub verdict: Verdict,
    /// Why, worst first.
    pub findings: Vec<Finding>,
    /// The pickle streams that were run.
    #[serde(skip)]
    pub streams: Vec<StreamReport>,
    /// Whether `torch.load(weights_only=True)` loads it (pickle-based files only): a question
    /// apart from the verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights_only: Option<crate::pickle::compat::WeightsOnly>,
}

fn format_name<S: serde::Serializer>(f: &Format, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(f.json_name())
}

/// Scans one file.
///
/// Fails closed: a file that cannot be judged (empty, of an unknown format, a zip whose central
/// directory cannot be read, not a regular file) is an error, never `safe`. Formats that hold no
/// pickle by construction (safetensors, GGUF) are `safe`.
pub fn scan_file(path: &Path, policy: &Policy, limits: &Limits) -> Result<ScanResult, Error> {
    scan_one(path, policy, limits).map_err(|n| n.error)
}

/// Why a file was not scanned, and whether only its content was unrecognised (inside folders,
/// such files are skipped unless their name says they are a checkpoint).
struct NotScanned {
    error: Error,
    unknown_content: bool,
}

impl From<Error> for NotScanned {
    fn from(error: Error) -> Self {
        NotScanned {
            error,
            unknown_content: false,
        }
    }
}

fn scan_one(path: &Path, policy: &Policy, limits: &Limits) -> Result<ScanResult, NotScanned> {
    let mapped = MappedFile::open(path)?;
    let bytes = mapped.bytes();
    let not_scanned = |what: String, unknown_content| NotScanned {
        error: Error::Unsupported {
            path: path.to_path_buf(),
            what,
        },
        unknown_content,
    };
    if bytes.is_empty() {
        return Err(not_scanned(
            "the file is empty; there is nothing to judge".into(),
            true,
        ));
    }
    let format = registry::identify(path, bytes);
    if format == Format::Unknown {
        return Err(not_scanned(
            registry::unrecognised(path, &registry::first_bytes(bytes)),
            true,
        ));
    }
    if zip::looks_like_zip(bytes)
        && let Err(problem) = zip::entries(bytes)
    {
        return Err(not_scanned(
            format!(
                "a zip archive whose central directory cannot be read (truncated or damaged?): {problem}"
            ),
            false,
        ));
    }
    let Some(reader) = registry::lookup(format).reader else {
        // A compressed stream that claims nothing by name is not a model's file: in folders it
        // is skipped like any other data.
        return Err(not_scanned(
            registry::not_read(format),
            format == Format::Compressed,
        ));
    };
    let judged = reader
        .judge(&Input {
            path,
            bytes,
            file_len: mapped.len(),
            format,
            policy,
            limits,
        })
        .map_err(|why| not_scanned(why, false))?;
    Ok(ScanResult {
        path: path.to_path_buf(),
        format,
        verdict: judged.verdict,
        findings: judged.findings,
        streams: judged.streams,
        weights_only: judged.weights_only,
    })
}

/// Whether a file's name says it is (or, compressed, holds) a format ckptscope knows: inside
/// folders, such a file whose content is not recognised is reported as not scanned instead of
/// skipped (see [`registry::name_claims`]).
pub fn checkpoint_name(path: &Path) -> bool {
    registry::name_claims(path)
}

/// Why a path that is not a regular file but is named like a model (a FIFO `model.pt`, a
/// dangling `model.safetensors` link) was not scanned; `None` for one whose name claims
/// nothing. `scan DIR` and the package view both count such a path as not scanned.
pub fn unopened_model(special: &Skipped) -> Option<String> {
    checkpoint_name(&special.path).then(|| {
        format!(
            "named like a model, but {}; it was not opened, so it is not known to be safe",
            special.reason
        )
    })
}

/// A path inside a folder that was not looked at, and why.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Skipped {
    /// The path.
    #[serde(serialize_with = "crate::fsutil::serialize_path")]
    pub path: PathBuf,
    /// Why it was skipped (`a FIFO (named pipe), not a regular file`).
    pub reason: String,
}

/// What a scan of several paths found: results, and the files that could not be read.
#[derive(Debug, Default)]
pub struct ScanRun {
    /// One result per file, in the order given (folders in sorted order); an error is a file
    /// that was not scanned.
    pub results: Vec<Result<ScanResult, Error>>,
    /// Files in folders skipped because their content and their name are not a checkpoint's.
    pub skipped: usize,
    /// Paths in folders that are not regular files (FIFOs, sockets, devices), not opened.
    pub special: Vec<Skipped>,
}

impl ScanRun {
    /// Files that were scanned.
    pub fn scanned(&self) -> usize {
        self.results.iter().filter(|r| r.is_ok()).count()
    }

    /// Files that could not be scanned.
    pub fn not_scanned(&self) -> usize {
        self.results.iter().filter(|r| r.is_err()).count()
    }

    /// The exit status of `ckptscope scan`: 2 when any file could not be scanned (nothing can
    /// be promised about it), else 1 when any scanned file is not safe, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.not_scanned() > 0 {
            2
        } else if self
            .results
            .iter()
            .flatten()
            .any(|r| r.verdict != Verdict::Safe)
        {
            1
        } else {
            0
        }
    }
}

/// Scans files and folders (recursively). Inside folders, files whose content is not a
/// checkpoint or a pickle are skipped (counted) unless their name says they are one; paths that
/// are not regular files are noted and never opened.
pub fn scan_paths(paths: &[PathBuf], policy: &Policy, limits: &Limits) -> ScanRun {
    let mut run = ScanRun::default();
    for path in paths {
        if path.is_dir() {
            let listing = list_folder(path, false);
            run.results.extend(listing.errors.into_iter().map(Err));
            // A path named like a model that is not a regular file (a FIFO `model.pt`, a
            // dangling `model.safetensors` link) claims a model that cannot be judged.
            for special in listing.special {
                match unopened_model(&special) {
                    Some(what) => run.results.push(Err(Error::Unsupported {
                        what,
                        path: special.path,
                    })),
                    None => run.special.push(special),
                }
            }
            let models = saved_models(&listing.files);
            run.results.extend(models.iter().map(|dir| {
                Err(Error::Unsupported {
                    path: dir.clone(),
                    what: registry::saved_model_not_read(),
                })
            }));
            for file in listing.files {
                if models.iter().any(|m| is_saved_model_part(m, &file)) {
                    continue;
                }
                match scan_one(&file, policy, limits) {
                    Err(n) if n.unknown_content && !checkpoint_name(&file) => run.skipped += 1,
                    other => run.results.push(other.map_err(|n| n.error)),
                }
            }
        } else {
            run.results.push(scan_file(path, policy, limits));
        }
    }
    run.special.sort_by(|a, b| a.path.cmp(&b.path));
    run
}

/// Whether `file` is one of the parts TensorFlow writes for the SavedModel in `root`: the graph
/// (`saved_model.pb`/`.pbtxt`), `fingerprint.pb`, `keras_metadata.pb` and the variables
/// checkpoint under `variables/`. Anything else in the folder (a `pytorch_model.bin` beside it,
/// a pickle among the assets) is judged on its own, so a model folder cannot hide a payload
/// behind the SavedModel's "not scanned".
pub fn is_saved_model_part(root: &Path, file: &Path) -> bool {
    let Ok(rel) = file.strip_prefix(root) else {
        return false;
    };
    let lower = rel
        .to_string_lossy()
        .to_ascii_lowercase()
        .replace('\\', "/");
    matches!(
        lower.as_str(),
        "saved_model.pb" | "saved_model.pbtxt" | "fingerprint.pb" | "keras_metadata.pb"
    ) || lower
        .strip_prefix("variables/variables")
        .is_some_and(|rest| rest == ".index" || rest.starts_with(".data-"))
}

/// The TensorFlow SavedModel folders among listed files: those holding `saved_model.pb` or
/// `saved_model.pbtxt`. Each is one model made of its parts ([`is_saved_model_part`]).
pub fn saved_models(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = files
        .iter()
        .filter(|f| registry::claimed_by_name(f).is_some_and(|e| e.format == Format::TfSavedModel))
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect();
    dirs.sort();
    dirs.dedup();
    // A SavedModel inside another one belongs to the outer one.
    let outer = dirs.clone();
    dirs.retain(|d| !outer.iter().any(|o| o != d && d.starts_with(o)));
    dirs
}

/// The regular files under a folder, found by [`list_folder`], and what was not listed.
#[derive(Debug, Default)]
pub struct Listing {
    /// Regular files (and links to regular files), sorted.
    pub files: Vec<PathBuf>,
    /// Folders or entries that could not be read.
    pub errors: Vec<Error>,
    /// Paths that are not regular files (FIFOs, sockets, devices, broken links), never opened,
    /// and folders left out on purpose.
    pub special: Vec<Skipped>,
}

/// Deepest folder nesting listed.
const MAX_DEPTH: usize = 64;

/// Lists the regular files under `dir`, recursively, without opening any. Symlinked folders are
/// not followed (no loops); symlinked files are listed. With `skip_hidden`, folders whose name
/// starts with `.` (`.git`, `.cache`) are noted in [`Listing::special`] and not entered. At most
/// [`crate::limits::MAX_FOLDER_FILES`] files are listed: past that an error says the listing is
/// incomplete.
pub fn list_folder(dir: &Path, skip_hidden: bool) -> Listing {
    let mut listing = Listing::default();
    walk(dir, &mut listing, skip_hidden, 0);
    listing.files.sort();
    listing.special.sort_by(|a, b| a.path.cmp(&b.path));
    listing
}

fn walk(dir: &Path, out: &mut Listing, skip_hidden: bool, depth: usize) {
    if depth > MAX_DEPTH {
        out.errors.push(Error::io(
            "list",
            dir,
            std::io::Error::other(format!(
                "folders nested more than {MAX_DEPTH} deep are not listed"
            )),
        ));
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            out.errors.push(Error::io("list", dir, e));
            return;
        }
    };
    for entry in entries {
        if out.files.len() >= crate::limits::MAX_FOLDER_FILES {
            out.errors.push(Error::io(
                "list",
                dir,
                std::io::Error::other(format!(
                    "more than {} files; the rest are not listed",
                    crate::limits::MAX_FOLDER_FILES
                )),
            ));
            return;
        }
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                out.errors.push(Error::io("list", dir, e));
                continue;
            }
        };
        let path = entry.path();
        let kind = match entry.file_type() {
            Ok(kind) => kind,
            Err(e) => {
                out.errors.push(Error::io("read", &path, e));
                continue;
            }
        };
        if kind.is_dir() {
            if skip_hidden && entry.file_name().to_string_lossy().starts_with('.') {
                out.special.push(Skipped {
                    path,
                    reason: "a hidden folder, not listed".into(),
                });
            } else {
                walk(&path, out, skip_hidden, depth + 1);
            }
        } else if kind.is_file() {
            out.files.push(path);
        } else if kind.is_symlink() {
            match std::fs::metadata(&path) {
                Ok(target) if target.is_file() => out.files.push(path),
                // Not followed (no loops, nothing outside the folder), but never passed over
                // in silence: what it holds is not judged.
                Ok(target) if target.is_dir() => out.special.push(Skipped {
                    path,
                    reason:
                        "a link to a folder, not followed (scan its target to judge what it holds)"
                            .into(),
                }),
                Ok(target) => out.special.push(Skipped {
                    path,
                    reason: format!(
                        "a link to {}, not a regular file",
                        file_kind(&target.file_type())
                    ),
                }),
                Err(e) => out.special.push(Skipped {
                    path,
                    reason: format!("a link that cannot be followed ({e})"),
                }),
            }
        } else {
            out.special.push(Skipped {
                path,
                reason: format!("{}, not a regular file", file_kind(&kind)),
            });
        }
    }
}
