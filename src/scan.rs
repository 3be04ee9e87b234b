//! `ckptscope scan`: judge files and folders by content, reading only their pickles.
//!
//! A scan never extracts tensors and never reads storages: in a 1 GiB zip checkpoint it reads
//! the central directory and `data.pkl` (a few KB) from the memory map, so its cost does not
//! grow with the weights.

use std::path::{Path, PathBuf};

use crate::archive::zip;
use crate::error::Error;
use crate::format::mapped::file_kind;
use crate::format::{Format, MappedFile, detect};
use crate::limits::Limits;
use crate::pickle::policy::{Finding, Policy, Risk, Verdict};
use crate::pickle::{StreamReport, analyze};

/// The scan of one file.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ScanResult {
    /// The file.
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
    let format = detect(bytes);
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
    if format == Format::Unknown {
        return Err(not_scanned(
            format!(
                "not a format ckptscope can judge (first bytes: {}); it was not scanned, so it is not known to be safe",
                hex_preview(bytes)
            ),
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
    // "Safe" for safetensors is a promise about the whole file, so the header is validated: bytes
    // that only start like one are not vouched for.
    if format == Format::Safetensors
        && let Err(problem) = crate::format::read_header(bytes, mapped.len(), limits)
    {
        return Err(not_scanned(
            format!("starts like a safetensors file, but {problem}"),
            false,
        ));
    }
    let result = |verdict, findings, streams, weights_only| ScanResult {
        path: path.to_path_buf(),
        format,
        verdict,
        findings,
        streams,
        weights_only,
    };
    if format == Format::Gguf {
        let findings = crate::format::gguf::scan_findings(bytes, limits).map_err(|problem| {
            not_scanned(format!("starts like a GGUF file, but {problem}"), false)
        })?;
        return Ok(result(Verdict::of(&findings), findings, Vec::new(), None));
    }
    if format == Format::Onnx {
        let read = crate::format::onnx::read(path, bytes).map_err(|problem| {
            not_scanned(format!("starts like an ONNX model, but {problem}"), false)
        })?;
        let findings = onnx_findings(&read, limits.max_findings);
        return Ok(result(Verdict::of(&findings), findings, Vec::new(), None));
    }
    if !format.is_pickle_based() && !matches!(format, Format::Zip) {
        let note = match format {
            Format::Onnx => {
                "no pickle: data-only format (an ONNX model is a protobuf graph and tensors; loading it runs no Python code)"
            }
            _ => {
                "no pickle: safetensors holds only a JSON header and raw bytes; loading it runs no code"
            }
        };
        return Ok(result(
            Verdict::Safe,
            vec![Finding::new(Risk::Info, None, note)],
            Vec::new(),
            None,
        ));
    }
    let mut analysis = analyze(bytes, format, policy, limits, None);
    if matches!(format, Format::Numpy | Format::NumpyZip) {
        numpy_findings(bytes, format, &mut analysis);
    }
    Ok(result(
        analysis.verdict,
        analysis.findings,
        analysis.streams,
        analysis.weights_only,
    ))
}

/// An ONNX model's findings: what it is, then each initializer that is not read, its risk
/// by why (an external data path that leaves the model's folder is dangerous: loading the model
/// reads that file); at most `max` of them, the rest counted in one line per risk.
fn onnx_findings(read: &crate::format::onnx::Read, max: usize) -> Vec<Finding> {
    let mut findings = vec![Finding::new(
        Risk::Info,
        None,
        "no pickle: data-only format (an ONNX model is a protobuf graph and tensors; loading it runs no Python code)",
    )];
    let mut dropped = [0u64; 3];
    for r in read.refused() {
        let risk = r.risk;
        if findings.len() < max.max(2) {
            findings.push(Finding::new(
                risk,
                None,
                format!("initializer `{}`: {}", r.name, r.reason),
            ));
        } else {
            if let Some(slot) = dropped.get_mut(risk as usize) {
                *slot += 1;
            }
        }
    }
    for (risk, n) in [Risk::Info, Risk::Suspicious, Risk::Dangerous]
        .into_iter()
        .zip(dropped)
        .filter(|(_, n)| *n > 0)
    {
        findings.push(Finding::new(
            risk,
            None,
            format!(
                "{n} more initializers like those above (raise --limit findings=N to list them)"
            ),
        ));
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.risk));
    findings
}

/// NumPy files: arrays whose header or size cannot be right are suspicious (the file is not
/// what it says); a file in which no pickle was found (no object array) says it is data only.
fn numpy_findings(bytes: &[u8], format: Format, analysis: &mut crate::pickle::Analysis) {
    use crate::format::numpy;
    let arrays = match (format, &analysis.zip) {
        (Format::NumpyZip, Some(zip)) => numpy::read_npz(bytes, &zip.entries, u64::MAX),
        _ => numpy::read_npy(bytes),
    };
    for p in numpy::problems(&arrays).into_iter().take(1000) {
        analysis.findings.push(Finding::new(
            Risk::Suspicious,
            None,
            format!("{p}: np.load would fail on it"),
        ));
    }
    if analysis.streams.is_empty() {
        analysis.findings.push(Finding::new(
            Risk::Info,
            None,
            "no pickle: data-only format (NumPy arrays of numbers; np.load reads them without unpickling anything)",
        ));
    }
    analysis.findings.sort_by_key(|f| std::cmp::Reverse(f.risk));
    analysis.verdict = analysis.verdict.max(Verdict::of(&analysis.findings));
}

fn hex_preview(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Names that say a file is meant to be a checkpoint or a pickle: inside folders, such a file
/// whose content is not recognised is reported as not scanned instead of skipped.
pub fn checkpoint_name(path: &Path) -> bool {
    const EXTENSIONS: &[&str] = &[
        "pt",
        "pth",
        "bin",
        "ckpt",
        "pkl",
        "pickle",
        "joblib",
        "npy",
        "npz",
        "onnx",
        "safetensors",
        "tar",
        "zip",
    ];
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// A path inside a folder that was not looked at, and why.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Skipped {
    /// The path.
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
            run.special.extend(listing.special);
            for file in listing.files {
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
                Ok(target) if target.is_dir() => {}
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
