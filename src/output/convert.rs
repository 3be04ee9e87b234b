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

/// The error as the command line says it: the library's words, then the flag that changes the
/// outcome, when one does (`--force`, `--allow-dangerous`, `--all`...).
pub fn error_text(e: &crate::convert::ConvertError) -> String {
    use crate::convert::ConvertError as E;
    let hint = match e {
        E::Write(w) => return super::write_error_text(w),
        E::Refused { verdict, .. } => format!(": pass --allow-{verdict} to convert it anyway"),
        E::NameClash(_) => " or use --all".into(),
        E::Expanded { .. } => "; pass --materialize-expanded to write it anyway, or raise the factor with --limit expansion=N".into(),
        E::Unreadable { .. } => ". Pass --skip-unreadable to convert the others".into(),
        E::Quantized { .. } => {
            "; pass --dequantize f32, f16 or bf16 to write their decoded values".into()
        }
        _ => String::new(),
    };
    format!("{e}{hint}")
}
