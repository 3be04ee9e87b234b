//! `ckptscope export`: what was written, which names share a storage, what was not restored.

use std::io::{self, Write};

use crate::export::ExportReport;
use crate::output::human;

/// Writes the human report.
pub fn write_human(out: &mut impl Write, r: &ExportReport) -> io::Result<()> {
    writeln!(
        out,
        "wrote {}: {} tensors in {} storages, {}, read back: scans safe, loads with torch.load(weights_only=True), every tensor equal to the source",
        human::term(&r.output.display().to_string()),
        r.tensors,
        r.storages,
        human::bytes(r.bytes),
    )?;
    for shard in &r.shards {
        writeln!(out, "  shard {}", human::term(&shard.display().to_string()))?;
    }
    writeln!(
        out,
        "source {}, sha256 {}",
        human::term(&r.input.display().to_string()),
        r.source_sha256
    )?;
    for (alias, kept) in &r.tied {
        writeln!(
            out,
            "tied: `{}` views the storage of `{}`",
            human::term(alias),
            human::term(kept)
        )?;
    }
    for note in &r.notes {
        writeln!(out, "note: {}", human::term(note))?;
    }
    Ok(())
}

/// The error as the command line says it: the library's words, then the flag that changes the
/// outcome, when one does (`--force`).
pub fn error_text(e: &crate::export::ExportError) -> String {
    match e {
        crate::export::ExportError::Write(w) => super::write_error_text(w),
        e => e.to_string(),
    }
}
