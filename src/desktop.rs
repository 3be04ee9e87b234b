//! Double-click integration on Linux desktops: installs, for the current user, a freedesktop
//! `.desktop` entry, the MIME types of checkpoint files and the icon, so that a file manager
//! opens the formats ckptscope reads (the MIME types of the format registry) in ckptscope. (macOS and Windows associations come
//! from the bundle metadata in `Cargo.toml`, used by `cargo packager`.)

use std::path::{Path, PathBuf};

const DESKTOP: &str = include_str!("../assets/ckptscope.desktop");
const MIME: &str = include_str!("../assets/ckptscope-mime.xml");
const ICON_PNG: &[u8] = include_bytes!("../assets/icon.png");
const ICON_SVG: &str = include_str!("../assets/icon.svg");

/// MIME types registered, in the order the `.desktop` entry lists them: those of the format
/// registry ([`crate::format::registry::mime_types`]), which the asset files are checked against.
pub fn mime_types() -> Vec<&'static str> {
    crate::format::registry::mime_types()
        .iter()
        .map(|m| m.name)
        .collect()
}

/// What was installed, and what the helper tools said.
#[derive(Debug, Default)]
pub struct Installed {
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Helper commands run (`update-mime-database`...) and their outcome.
    pub notes: Vec<String>,
}

/// `$XDG_DATA_HOME` or `~/.local/share`.
pub fn data_home() -> Option<PathBuf> {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
}

/// The `.desktop` entry with `Exec` pointing at `exe`.
pub fn desktop_entry(exe: &Path) -> String {
    let quoted = format!(
        "\"{}\"",
        exe.display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    );
    DESKTOP.replace("Exec=ckptscope %F", &format!("Exec={quoted} %F"))
}

/// Installs the entry, MIME types and icons under `data` (normally [`data_home`]) for `exe`,
/// then refreshes the desktop databases when their tools exist and makes ckptscope the
/// default application for its types.
pub fn install(data: &Path, exe: &Path, run_tools: bool) -> std::io::Result<Installed> {
    let mut out = Installed::default();
    let mut write = |path: PathBuf, bytes: &[u8]| -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, bytes)?;
        out.files.push(path);
        Ok(())
    };
    write(
        data.join("applications/ckptscope.desktop"),
        desktop_entry(exe).as_bytes(),
    )?;
    write(data.join("mime/packages/ckptscope.xml"), MIME.as_bytes())?;
    write(
        data.join("icons/hicolor/256x256/apps/ckptscope.png"),
        ICON_PNG,
    )?;
    write(
        data.join("icons/hicolor/scalable/apps/ckptscope.svg"),
        ICON_SVG.as_bytes(),
    )?;
    if run_tools {
        let tools: Vec<(String, Vec<String>)> = vec![
            (
                "update-mime-database".into(),
                vec![data.join("mime").display().to_string()],
            ),
            (
                "update-desktop-database".into(),
                vec![data.join("applications").display().to_string()],
            ),
        ];
        let mut all = tools;
        all.push((
            "xdg-mime".into(),
            std::iter::once("default".to_string())
                .chain(std::iter::once("ckptscope.desktop".to_string()))
                .chain(mime_types().into_iter().map(str::to_string))
                .collect(),
        ));
        for (tool, args) in all {
            let note = match std::process::Command::new(&tool).args(&args).output() {
                Ok(o) if o.status.success() => format!("ran {tool}"),
                Ok(o) => format!(
                    "{tool} failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
                Err(_) => {
                    format!("{tool} not found (the desktop picks up the files at next login)")
                }
            };
            out.notes.push(note);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_entry_mime_and_icons() {
        let dir = tempfile::tempdir().unwrap();
        let exe = Path::new("/opt/ckpt scope/bin/ckptscope");
        let installed = install(dir.path(), exe, false).unwrap();
        assert_eq!(installed.files.len(), 4);
        let entry =
            std::fs::read_to_string(dir.path().join("applications/ckptscope.desktop")).unwrap();
        assert!(
            entry.contains("Exec=\"/opt/ckpt scope/bin/ckptscope\" %F"),
            "{entry}"
        );
        for t in mime_types() {
            assert!(entry.contains(t));
            assert!(MIME.contains(&format!("type=\"{t}\"")));
        }
        assert!(MIME.contains("*.safetensors"));
    }
}
