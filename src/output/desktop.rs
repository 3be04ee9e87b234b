//! `ckptscope install-desktop`: the files written and what the desktop's helpers said.

use std::io::{self, Write};
use std::path::Path;

use crate::desktop::Installed;

/// Writes the files installed, the helpers' notes, and which program now opens checkpoints.
pub fn write_installed(out: &mut impl Write, installed: &Installed, exe: &Path) -> io::Result<()> {
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
}
