//! The demo family shipped inside the binary (`assets/demo`, made by `make_demo.py`): a pickle,
//! its conversion and a fine-tune, so that a newcomer sees every view (pickle scan, tensors,
//! metadata, lineage, compare) without a file of their own.
//!
//! Owns the embedded bytes and their extraction; the app calls it for [`crate::gui::Command::OpenDemo`].
//! A leaf: it imports nothing from `gui`.

use std::path::PathBuf;

const FILES: [(&str, &[u8]); 3] = [
    (
        "demo-base.pt",
        include_bytes!("../../assets/demo/demo-base.pt"),
    ),
    (
        "demo-v1.safetensors",
        include_bytes!("../../assets/demo/demo-v1.safetensors"),
    ),
    (
        "demo-v2.safetensors",
        include_bytes!("../../assets/demo/demo-v2.safetensors"),
    ),
];

/// Writes the demo files into a folder of the temporary directory (once per version) and
/// returns the one to open first.
pub fn extract() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("ckptscope-demo-{}", env!("CARGO_PKG_VERSION")));
    std::fs::create_dir_all(&dir)?;
    for (name, bytes) in FILES {
        let path = dir.join(name);
        let same = std::fs::read(&path).is_ok_and(|existing| existing == bytes);
        if !same {
            let tmp = tempfile::NamedTempFile::new_in(&dir)?;
            std::fs::write(tmp.path(), bytes)?;
            tmp.persist(&path).map_err(|e| e.error)?;
        }
    }
    Ok(dir.join("demo-v2.safetensors"))
}
