//! The desktop's view of the registry: the shared-mime-info package, the `.desktop` entry's
//! `MimeType=` line and the packager's file associations, generated from the MIME types of the
//! formats read (a test checks the committed files against them).

use super::{FORMATS, Mime};

/// The MIME types the desktop opens with ckptscope, once each, in table order.
pub fn mime_types() -> Vec<&'static Mime> {
    let mut out: Vec<&'static Mime> = Vec::new();
    for m in FORMATS.iter().filter_map(|e| e.mime) {
        if !out.iter().any(|o| o.name == m.name) {
            out.push(m);
        }
    }
    out
}

/// `assets/ckptscope-mime.xml`, the shared-mime-info package.
pub fn mime_xml() -> String {
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- Generated from src/format/registry.rs: CKPTSCOPE_BLESS=1 cargo test --lib registry -->\n<mime-info xmlns=\"http://www.freedesktop.org/standards/shared-mime-info\">\n",
    );
    for m in mime_types() {
        x.push_str(&format!("  <mime-type type=\"{}\">\n", m.name));
        x.push_str(&format!("    <comment>{}</comment>\n", m.comment));
        if let Some(p) = m.parent {
            x.push_str(&format!("    <sub-class-of type=\"{p}\"/>\n"));
        }
        x.push_str("    <icon name=\"ckptscope\"/>\n");
        if let Some(magic) = m.magic {
            x.push_str(&format!(
                "    <magic priority=\"60\">\n      <match type=\"string\" offset=\"0\" value=\"{magic}\"/>\n    </magic>\n"
            ));
        }
        for (glob, weight) in m.globs {
            match weight {
                0 => x.push_str(&format!("    <glob pattern=\"{glob}\"/>\n")),
                w => x.push_str(&format!("    <glob pattern=\"{glob}\" weight=\"{w}\"/>\n")),
            }
        }
        x.push_str("  </mime-type>\n");
    }
    x.push_str("</mime-info>\n");
    x
}

/// The `MimeType=` line of `assets/ckptscope.desktop`.
pub fn desktop_mime_line() -> String {
    let types: String = mime_types()
        .iter()
        .map(|m| format!("{};", m.name))
        .collect();
    format!("MimeType={types}")
}

/// The `file-associations` array of `[package.metadata.packager]` in `Cargo.toml`: one per
/// MIME type with plain `*.ext` globs.
pub fn packager_associations() -> String {
    let mut out = String::from("file-associations = [\n");
    for m in mime_types() {
        let exts: Vec<String> = m
            .globs
            .iter()
            .filter_map(|(g, _)| g.strip_prefix("*."))
            .filter(|ext| !ext.contains('.'))
            .map(|ext| format!("\"{ext}\""))
            .collect();
        if exts.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "  {{ extensions = [{}], mime-type = \"{}\", name = \"{}\", description = \"{}\", role = \"Viewer\" }},\n",
            exts.join(", "),
            m.name,
            m.title,
            m.comment
        ));
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// `assets/ckptscope-mime.xml`, the `MimeType=` line of `assets/ckptscope.desktop` and the
    /// packager's `file-associations` in `Cargo.toml` are what the registry says; with
    /// `CKPTSCOPE_BLESS=1` they are rewritten from it.
    #[test]
    fn assets_and_packager_agree_with_the_registry() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let bless = std::env::var_os("CKPTSCOPE_BLESS").is_some_and(|v| v == "1");
        let mut stale = Vec::new();
        let mut check = |rel: &str, update: &dyn Fn(&str) -> String| {
            let path = root.join(rel);
            let text = std::fs::read_to_string(&path).unwrap();
            let want = update(&text);
            if want != text {
                if bless {
                    std::fs::write(&path, want).unwrap();
                } else {
                    stale.push(rel.to_string());
                }
            }
        };
        check("assets/ckptscope-mime.xml", &|_| mime_xml());
        check("assets/ckptscope.desktop", &|text| {
            text.lines()
                .map(|l| {
                    if l.starts_with("MimeType=") {
                        desktop_mime_line()
                    } else {
                        l.to_string()
                    }
                })
                .map(|l| l + "\n")
                .collect()
        });
        check("Cargo.toml", &|text| {
            let start = text
                .find("file-associations = [\n")
                .expect("Cargo.toml lists file-associations");
            let end = start + text[start..].find("\n]").expect("the list ends") + 2;
            format!(
                "{}{}{}",
                &text[..start],
                packager_associations(),
                &text[end..]
            )
        });
        assert!(
            stale.is_empty(),
            "out of date with src/format/registry.rs: {} (run CKPTSCOPE_BLESS=1 cargo test --lib registry)",
            stale.join(", ")
        );
        let desktop = std::fs::read_to_string(root.join("assets/ckptscope.desktop")).unwrap();
        assert!(desktop.contains("MimeType=application/x-safetensors;"));
    }
}
