//! `ckptscope scan`: judge files and folders by content, reading only their pickles.
//!
//! A scan never extracts tensors and never reads storages: in a 1 GiB zip checkpoint it reads
//! the central directory and `data.pkl` (a few KB) from the memory map, so its cost does not
//! grow with the weights.

use std::path::{Path, PathBuf};

use crate::error::Error;
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
}

fn format_name<S: serde::Serializer>(f: &Format, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(f.json_name())
}

/// Scans one file.
pub fn scan_file(path: &Path, policy: &Policy, limits: &Limits) -> Result<ScanResult, Error> {
    let mapped = MappedFile::open(path)?;
    let format = detect(mapped.bytes());
    let result = |verdict, findings, streams| ScanResult {
        path: path.to_path_buf(),
        format,
        verdict,
        findings,
        streams,
    };
    if !format.is_pickle_based() && !matches!(format, Format::Zip) {
        let note = match format {
            Format::Safetensors | Format::SafetensorsSharded => {
                "no pickle: safetensors holds only a JSON header and raw bytes; loading it runs no code"
            }
            Format::Gguf => "no pickle: GGUF holds only typed data; loading it runs no code",
            _ => {
                "not a pickle or a checkpoint format ckptscope knows; nothing in it would be unpickled"
            }
        };
        return Ok(result(
            Verdict::Safe,
            vec![Finding::new(Risk::Info, None, note)],
            Vec::new(),
        ));
    }
    let analysis = analyze(mapped.bytes(), format, policy, limits, None);
    Ok(result(
        analysis.verdict,
        analysis.findings,
        analysis.streams,
    ))
}

/// What a scan of several paths found: results, and the files that could not be read.
#[derive(Debug, Default)]
pub struct ScanRun {
    /// One result per scanned file, in the order given (folders in sorted order).
    pub results: Vec<Result<ScanResult, Error>>,
    /// Files in folders skipped because they are not checkpoints.
    pub skipped: usize,
}

/// Scans files and folders (recursively; inside folders only files whose content is a
/// checkpoint or a pickle are reported).
pub fn scan_paths(paths: &[PathBuf], policy: &Policy, limits: &Limits) -> ScanRun {
    let mut run = ScanRun::default();
    for path in paths {
        if path.is_dir() {
            let mut files = Vec::new();
            walk(path, &mut files, &mut run.results, 0);
            files.sort();
            for file in files {
                match scan_file(&file, policy, limits) {
                    Ok(r) if r.format == Format::Unknown => run.skipped += 1,
                    other => run.results.push(other),
                }
            }
        } else {
            run.results.push(scan_file(path, policy, limits));
        }
    }
    run
}

fn walk(
    dir: &Path,
    files: &mut Vec<PathBuf>,
    errors: &mut Vec<Result<ScanResult, Error>>,
    depth: usize,
) {
    if depth > 64 {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(Err(Error::io("list", dir, e)));
            return;
        }
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        // Symlinked folders are not followed (no loops); symlinked files are scanned.
        if kind.is_dir() {
            walk(&path, files, errors, depth + 1);
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            files.push(path);
        }
    }
}
