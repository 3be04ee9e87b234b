//! The failures every writer shares: the output exists or is the input, it does not fit, it
//! cannot be written, it does not read back, the user cancelled.
//!
//! Owns: [`WriteError`]. Must not import: the other files of `pipeline`.
//!
//! The messages carry data (paths, sizes, counts) and no advice tied to one front end: the
//! command line adds its flags (`--force`), the window its own words.

use std::path::PathBuf;

use crate::error::Error;

/// Why an output was not written. Whatever the reason, no output file is left behind.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The output exists and replacing it was not asked for.
    #[error("{} already exists", .0.display())]
    Exists(PathBuf),
    /// The output is (one of) the input file(s).
    #[error("the output {} is the input file; choose another output", .0.display())]
    SameAsInput(PathBuf),
    /// Writing failed.
    #[error("cannot write {}: {error}", path.display())]
    Io {
        /// The file being written.
        path: PathBuf,
        /// The system's answer.
        error: std::io::Error,
    },
    /// The output does not fit on its file system.
    #[error(
        "{} needs {need} bytes but its file system has {available} bytes free; nothing was written",
        path.display()
    )]
    NoSpace {
        /// The output.
        path: PathBuf,
        /// Bytes the output takes.
        need: u64,
        /// Bytes free for this user.
        available: u64,
    },
    /// The written file did not read back as the source.
    #[error(
        "verification failed: {}{}: {what}; the output was not kept",
        output.display(),
        tensor.as_ref().map(|t| format!(", tensor `{t}`")).unwrap_or_default()
    )]
    Mismatch {
        /// The file written.
        output: PathBuf,
        /// The tensor that differs, when one does.
        tensor: Option<String>,
        /// How it differs.
        what: String,
    },
    /// The written file could not be read back.
    #[error("verification failed: {error}; the output was not kept")]
    ReadBack {
        /// Why (names the file).
        error: Box<Error>,
    },
    /// An invariant of the writer did not hold: a bug, reported rather than written.
    #[error(
        "internal error while writing {}: {what}; the output was not kept (please report this)",
        output.display()
    )]
    Internal {
        /// The file being written.
        output: PathBuf,
        /// What did not hold.
        what: String,
    },
    /// The user cancelled.
    #[error("cancelled; no output was written")]
    Cancelled,
    /// Sizes add up past what can be counted.
    #[error("{}: {what} overflows 64 bits; the file is corrupt", path.display())]
    TooLarge {
        /// The input.
        path: PathBuf,
        /// Which sum.
        what: String,
    },
}

impl WriteError {
    /// A failed write of `path`.
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> WriteError {
        WriteError::Io {
            path: path.into(),
            error,
        }
    }

    /// A broken invariant while writing `output`.
    pub fn internal(output: impl Into<PathBuf>, what: impl Into<String>) -> WriteError {
        WriteError::Internal {
            output: output.into(),
            what: what.into(),
        }
    }

    /// A read-back that found `what` wrong with `output` (and `tensor`, when one).
    pub fn mismatch(
        output: impl Into<PathBuf>,
        tensor: Option<&str>,
        what: impl Into<String>,
    ) -> WriteError {
        WriteError::Mismatch {
            output: output.into(),
            tensor: tensor.map(str::to_string),
            what: what.into(),
        }
    }

    /// A read-back that could not read.
    pub fn read_back(error: Error) -> WriteError {
        WriteError::ReadBack {
            error: Box::new(error),
        }
    }
}
