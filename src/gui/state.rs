//! What the window remembers between runs: recent files, theme, view choices.
//!
//! Owns [`Persisted`] (saved by eframe under its app key, every field `serde(default)` so an
//! older file still loads) and the rules of the recent list. Views read it and flip its
//! switches. Must not import: `app`, `jobs`, `table`, `inspector`, `metadata`, `pickle`, `code`,
//! `lineage`, `start`, `package` (so that all of them can depend on it).

use std::path::{Path, PathBuf};

/// The colour theme.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ThemeChoice {
    /// Follow the system.
    #[default]
    System,
    /// Dark.
    Dark,
    /// Light.
    Light,
}

/// What survives a restart (window size and panel widths are kept by eframe itself).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Persisted {
    /// Most recent first.
    pub recent: Vec<PathBuf>,
    /// Colour theme.
    pub theme: ThemeChoice,
    /// Tensors as a tree of name prefixes instead of a flat table.
    pub tree_view: bool,
    /// Histogram bins.
    pub bins: usize,
    /// Log-scaled histogram counts.
    pub log_counts: bool,
}

impl Default for Persisted {
    fn default() -> Self {
        Persisted {
            recent: Vec::new(),
            theme: ThemeChoice::System,
            tree_view: false,
            bins: crate::analysis::DEFAULT_BINS,
            log_counts: false,
        }
    }
}

/// How many recent files are kept.
const MAX_RECENT: usize = 12;

impl Persisted {
    /// Puts `path` first in the recent list (once, canonical when it can be).
    pub fn remember(&mut self, path: &Path) {
        let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        self.recent.retain(|p| p != &path);
        self.recent.insert(0, path);
        self.recent.truncate(MAX_RECENT);
    }
}

/// A recent file as the start screen shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecentFile {
    /// The file.
    pub path: PathBuf,
    /// It was there when last looked at (a gone file is shown struck through).
    pub exists: bool,
}

/// Looks on disk whether each recent file is still there. The app calls this when the list
/// changes or the start screen comes back; views only read the answer.
pub fn check_recent(recent: &[PathBuf]) -> Vec<RecentFile> {
    recent
        .iter()
        .map(|p| RecentFile {
            path: p.clone(),
            exists: p.exists(),
        })
        .collect()
}
