//! `ckptscope convert`: what was written, what was dropped as an alias, what was skipped.

use std::io::{self, Write};

use crate::convert::ConvertReport;
use crate::output::human;

/// Writes the human report.
pub fn write_human(out: &mut impl Write, r: &ConvertReport) -> io::Result<()> {
    let verified = if r.skipped.is_empty() {
        "verified against the source".to_string()
    } else {
        format!(
            "verified against the source; INCOMPLETE: {} tensors skipped (listed in `ckptscope.skipped`)",
            r.skipped.len()
        )
    };
    writeln!(
        out,
        "wrote {}: {} tensors, {}{}, {verified}",
        r.output.display(),
        r.tensors,
        human::bytes(r.bytes),
        r.exported
            .as_ref()
            .map(|k| format!(" (the `{}` weights)", human::term(k)))
            .unwrap_or_default()
    )?;
    for shard in &r.shards {
        writeln!(out, "  shard {}", human::term(&shard.display().to_string()))?;
    }
    writeln!(
        out,
        "source {} ({}), sha256 {}",
        r.input.display(),
        r.verdict,
        r.source_sha256
    )?;
    for (dropped, kept) in &r.aliases {
        writeln!(
            out,
            "alias: `{}` is the same tensor as `{}`; stored once, recorded in __metadata__",
            human::term(dropped),
            human::term(kept)
        )?;
    }
    if !r.left_out.is_empty() {
        let shown: Vec<String> = r
            .left_out
            .iter()
            .take(8)
            .map(|n| format!("`{}`", human::term(n)))
            .collect();
        writeln!(
            out,
            "left out: {} tensors outside `{}` (pass --all to keep them; listed in `ckptscope.left_out`): {}{}",
            r.left_out.len(),
            human::term(r.exported.as_deref().unwrap_or("")),
            shown.join(", "),
            if r.left_out.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        )?;
    }
    for s in &r.skipped {
        writeln!(
            out,
            "skipped: `{}`: {}",
            human::term(&s.name),
            human::term(&s.reason)
        )?;
    }
    Ok(())
}
