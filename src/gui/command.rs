//! What a view can ask of the window.
//!
//! Owns [`Command`]: views push them, the app drains them once per frame and does the work that
//! touches files, opens dialogs or starts jobs. It must not import the app or any view (views
//! depend on it, not on the app); it names only core types and [`JobKind`].

use std::path::PathBuf;

use crate::gui::jobs::JobKind;
use crate::pickle::policy::Verdict;

/// Something a view asks the app to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Show the open dialog.
    OpenDialog,
    /// Open a file (or folder).
    Open(PathBuf),
    /// Open the demo checkpoint shipped in the binary.
    OpenDemo,
    /// Pick a second file to compare with the open one.
    CompareDialog,
    /// Compare two files.
    Compare(PathBuf, PathBuf),
    /// Back to the start screen.
    Close,
    /// Forget a recent file.
    ForgetRecent(PathBuf),
    /// Show a file in the system's file manager.
    Reveal(PathBuf),
    /// Re-run the pickle scan of the open file.
    Rescan,
    /// List the tensors of a suspicious or dangerous pickle (nothing is executed).
    ShowWithheldTensors,
    /// Ask where to write the safetensors export of the open pickle.
    ConvertDialog,
    /// Convert the open pickle to `out`, accepting files up to `accept`.
    Convert(PathBuf, Verdict),
    /// Record a parent for the open safetensors file (asks which file).
    SetParentDialog,
    /// Record `parent` as the parent of the open safetensors file.
    SetParent(PathBuf),
    /// Stop a running job (and only that one).
    Cancel(JobKind),
    /// Leave the compare view, back to the file explored before.
    LeaveCompare,
}
