//! Numbers for people: byte sizes in binary units, counts in SI units, shapes like PyTorch.
//!
//! `clippy::indexing_slicing` is allowed here: the unit index is clamped to the unit table.

#![allow(clippy::indexing_slicing)]

/// `1536` → `"1.5 KiB"`; exact below 1 KiB.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{} {}", three_digits(value), UNITS[unit])
}

/// `7_241_732_096` → `"7.24 B"`; exact below 1000.
pub fn count(n: u64) -> String {
    const UNITS: [&str; 6] = ["K", "M", "B", "T", "P", "E"];
    if n < 1000 {
        return n.to_string();
    }
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{} {}", three_digits(value), UNITS[unit])
}

/// Three significant digits: `1.23`, `12.3`, `123`.
fn three_digits(v: f64) -> String {
    if v >= 99.95 {
        format!("{v:.0}")
    } else if v >= 9.995 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Text that came from a file, made safe to print on a terminal: control characters (C0, DEL,
/// C1, so every ANSI escape sequence), bidirectional overrides and isolates, zero-width and
/// other invisible format characters, and lone backslashes are shown visibly as `\x1b`,
/// `\u{202e}`, `\\`. Plain text is returned as it is, without allocating.
pub fn term(text: &str) -> std::borrow::Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c == '\\'
            || c.is_control()
            || matches!(c,
                '\u{200b}'..='\u{200f}' // zero-width space/joiners, LRM, RLM
                | '\u{2028}'..='\u{202e}' // line/paragraph separators, embeddings, overrides
                | '\u{2060}'..='\u{2069}' // word joiner, invisible operators, isolates
                | '\u{feff}' // zero-width no-break space
                | '\u{fff9}'..='\u{fffb}' // interlinear annotation
            )
    }
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if !unsafe_char(c) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `[4096, 11008]`; `[]` for a scalar.
pub fn shape(dims: &[u64]) -> String {
    let inner: Vec<String> = dims.iter().map(u64::to_string).collect();
    format!("[{}]", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_text_is_escaped_for_terminals() {
        assert!(matches!(
            term("model.layers.0.weight"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(term("w\x1b[2K\x1b[1Ahidden"), "w\\x1b[2K\\x1b[1Ahidden");
        assert_eq!(term("\x1b]0;TITLE\x07"), "\\x1b]0;TITLE\\x07");
        assert_eq!(term("os.system\r\n"), "os.system\\x0d\\x0a");
        assert_eq!(term("a\u{202e}b\u{9b}c"), "a\\u{202e}b\\x9bc");
        assert_eq!(term("C:\\x1b"), "C:\\\\x1b");
        assert_eq!(term("poids.\u{e9}t\u{e9}"), "poids.\u{e9}t\u{e9}");
    }

    #[test]
    fn units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(1 << 30), "1.00 GiB");
        assert_eq!(bytes(15 * (1 << 30) + (1 << 29)), "15.5 GiB");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
        assert_eq!(count(999), "999");
        assert_eq!(count(7_241_732_096), "7.24 B");
        assert_eq!(count(124_439_808), "124 M");
        assert_eq!(shape(&[]), "[]");
        assert_eq!(shape(&[3, 4]), "[3, 4]");
    }
}
