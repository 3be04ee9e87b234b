//! What a view can ask of the window.
//!
//! Owns [`Command`]: views and menus push them, the app drains them once per frame and does the
//! work that touches files, opens dialogs or starts jobs. A command carries its data (which
//! file, which parent, where to write), so every flow can be driven without a native dialog,
//! as the kittest tests do; the `*Dialog` commands only ask the user for that data and push the
//! command that carries it. It names only core types, [`JobKind`] and [`ThemeChoice`].
//! Must not import: `app`, `table`, `inspector`, `metadata`, `pickle`, `code`, `lineage`,
//! `start`, `package` (views depend on it, not on the app).

use std::path::PathBuf;

use crate::gui::jobs::JobKind;
use crate::gui::state::ThemeChoice;
use crate::pickle::policy::Verdict;

/// Something a view asks the app to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Show the open dialog; the file chosen is opened as by [`Command::Open`].
    OpenDialog,
    /// Open a file (or folder).
    Open(PathBuf),
    /// Show the folder dialog; the folder chosen is opened as a package.
    OpenFolderDialog,
    /// Leave the file opened from a package, back to the package's view.
    BackToFolder,
    /// Convert every weight-bearing pickle of the open package next to itself.
    ConvertAll,
    /// Write the open package's inference package to this folder (or `.tar.gz`).
    MakeInference(PathBuf),
    /// Compare each checkpoint of the open package's run with the next.
    CompareRun,
    /// Open the demo checkpoint shipped in the binary.
    OpenDemo,
    /// Pick a second file to compare with the open one.
    CompareDialog,
    /// Compare two files.
    Compare {
        /// Shown as A.
        a: PathBuf,
        /// Shown as B.
        b: PathBuf,
    },
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
    /// Convert the open pickle next to itself (`model.safetensors` for `pytorch_model.bin`,
    /// `NAME.safetensors` otherwise), without a dialog; an existing file is never replaced.
    ConvertHere,
    /// Remove the file a conversion or an export just wrote (the notice's Undo; an export's
    /// shards go with its index).
    UndoConvert(PathBuf),
    /// Ask where to write the PyTorch export of the open safetensors file (or sharded model).
    ExportDialog,
    /// Export the open safetensors file next to itself under the name the command line gives
    /// by default (`pytorch_model.bin` for `model.safetensors`), without a dialog; an existing
    /// file is never replaced.
    ExportHere,
    /// Export the safetensors file (or index) `source` as the PyTorch checkpoint `dest`.
    Export {
        /// The safetensors file or `*.safetensors.index.json`.
        source: PathBuf,
        /// The checkpoint written (the index, for a sharded model).
        dest: PathBuf,
        /// Replace files already there: only when the system's save dialog asked the user.
        replace: bool,
    },
    /// Ask for a path in the window: the system dialog could not be shown.
    AskPath(PathPrompt),
    /// A path typed in the window's path field, for what it was asked.
    PathEntered(PathPurpose, PathBuf),
    /// Close the window's path field.
    DismissPath,
    /// Convert the pickle `source` to the safetensors file `dest` (replacing it).
    Convert {
        /// The pickle.
        source: PathBuf,
        /// The safetensors file written.
        dest: PathBuf,
        /// The highest verdict accepted. `None`: as the command line, ask first when the scan
        /// judged the open file anything but safe to read.
        accept: Option<Verdict>,
    },
    /// Ask which file is the parent of the open safetensors file.
    SetParentDialog,
    /// Record `parent` as the parent of the safetensors file `file`.
    SetParent {
        /// The file whose header is rewritten.
        file: PathBuf,
        /// Its parent.
        parent: PathBuf,
    },
    /// Stop a running job (and only that one).
    Cancel(JobKind),
    /// Leave the compare view, back to the file explored before.
    LeaveCompare,
    /// Compare the two files of the compare view again, pairing tensors by llama.cpp's names
    /// (`true`, when the view offers it) or by their names as stored (`false`).
    Repair {
        /// Pair by llama.cpp's names.
        mapped: bool,
    },
    /// Switch the colour theme.
    SetTheme(ThemeChoice),
    /// Hide the error.
    DismissError,
    /// Hide the notice.
    DismissNotice,
    /// Hide the question asked (its answer, if any, was pushed as its own command).
    DismissConfirm,
}

/// What [`Command::ExportHere`] does, on the hover of its buttons (the File menu's and the
/// summary's).
pub const EXPORT_HERE_HINT: &str = "Writes pytorch_model.bin (for model.safetensors; NAME.bin otherwise; a sharded model's shards and index) next to this file, read back and verified; never replaces a file";

/// What a path typed in the window is for, when the system file dialog is not available.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathPurpose {
    /// A checkpoint to open.
    Open,
    /// A second checkpoint to compare with the open one.
    Compare,
    /// Where to write the open pickle's safetensors export.
    ConvertTo,
    /// Where to write the open safetensors file's PyTorch export.
    ExportTo,
    /// The parent of the open safetensors file.
    SetParent,
}

/// A path field shown in the window in place of a system dialog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathPrompt {
    /// What the path is for.
    pub purpose: PathPurpose,
    /// The text typed so far (starts as a suggestion).
    pub text: String,
}
