//! ONNX external data: where a tensor's bytes live when they are not in the model file.
//!
//! `location` is a path relative to the model's folder. It is the one place an ONNX file names
//! another file, so it is the one place a model can make its loader read something the user did
//! not hand over (`../../etc/passwd`, `/home/me/.ssh/id_rsa`; CVE-2022-25882 in `onnx`).
//! ckptscope refuses, without opening anything: absolute paths (Unix, Windows drive and UNC
//! forms), `..` components that climb above the folder (with `/` and `\` both taken as
//! separators, so a path that escapes on Windows is refused everywhere), and paths that stay
//! inside by name but resolve outside through a symbolic link. What is left is opened only as
//! a regular file (never a FIFO or device), and `offset + length` must lie inside it.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::{Tensor, regular_size};
use crate::verdict::Risk;

/// Why a location is refused.
pub fn check_location(location: &str) -> Result<(), String> {
    if location.is_empty() {
        return Err("its external data has no location".into());
    }
    if location.contains('\0') {
        return Err("its external data location holds a NUL byte".into());
    }
    let bytes = location.as_bytes();
    let drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if location.starts_with('/')
        || location.starts_with('\\')
        || drive
        || Path::new(location).is_absolute()
    {
        return Err(format!(
            "its external data location `{location}` is an absolute path; ONNX locations are relative to the model's folder, so it was not opened"
        ));
    }
    let mut depth = 0i64;
    for part in location.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!(
                        "its external data location `{location}` escapes the model's folder; it was not opened"
                    ));
                }
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

fn number(t: &Tensor, key: &str) -> Result<Option<u64>, (Risk, String)> {
    let Some((_, v)) = t.external.iter().rev().find(|(k, _)| k == key) else {
        return Ok(None);
    };
    v.trim().parse::<u64>().map(Some).map_err(|_| {
        (
            Risk::Suspicious,
            format!("its external data {key} `{v}` is not a whole number"),
        )
    })
}

/// The file, its size and the byte range of `t`'s `len` bytes of external data.
pub(super) fn locate(
    t: &Tensor,
    folder: &Path,
    len: u64,
    sizes: &mut HashMap<PathBuf, Result<u64, String>>,
) -> Result<(PathBuf, u64, Range<u64>), (Risk, String)> {
    let malformed = |why: String| (Risk::Suspicious, why);
    let location = t
        .external
        .iter()
        .rev()
        .find(|(k, _)| k == "location")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    check_location(location).map_err(|why| {
        let risk = if location.is_empty() || location.contains('\0') {
            Risk::Suspicious
        } else {
            Risk::Dangerous
        };
        (risk, why)
    })?;
    let offset = number(t, "offset")?.unwrap_or(0);
    let length = number(t, "length")?;
    if let Some(length) = length
        && length != len
    {
        return Err(malformed(format!(
            "its external data length is {length} bytes but its dims need {len}"
        )));
    }
    let file = folder.join(location);
    let size = sizes
        .entry(file.clone())
        .or_insert_with(|| resolve(folder, &file).and_then(|()| regular_size(&file)))
        .clone()
        .map_err(|why| {
            if why.contains("outside the model's folder") {
                (Risk::Dangerous, why)
            } else {
                malformed(format!(
                    "its external data file `{location}` cannot be read: {why}"
                ))
            }
        })?;
    let end = offset
        .checked_add(len)
        .filter(|&e| e <= size)
        .ok_or_else(|| {
            malformed(format!(
                "its external data {offset}..{offset}+{len} runs past the end of `{location}` ({size} bytes)"
            ))
        })?;
    Ok((file, size, offset..end))
}

/// Refuses a file that lies outside `folder` once symbolic links are followed.
fn resolve(folder: &Path, file: &Path) -> Result<(), String> {
    let real_folder = folder
        .canonicalize()
        .map_err(|e| format!("the model's folder cannot be resolved ({e})"))?;
    let real = file.canonicalize().map_err(|e| e.to_string())?;
    if real.starts_with(&real_folder) {
        Ok(())
    } else {
        Err(format!(
            "`{}` resolves to `{}`, outside the model's folder, through a symbolic link; it was not opened",
            file.display(),
            real.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_that_leave_the_folder_are_refused() {
        for ok in [
            "w.bin",
            "data/w.bin",
            "a/../w.bin",
            "./w.bin",
            "a/b/../../w.bin",
        ] {
            assert!(check_location(ok).is_ok(), "{ok}");
        }
        for bad in [
            "../w.bin",
            "../../etc/passwd",
            "a/../../w.bin",
            "..\\..\\w.bin",
            "/etc/passwd",
            "\\\\server\\share\\w.bin",
            "C:\\Windows\\w.bin",
            "c:w.bin",
        ] {
            let e = check_location(bad).unwrap_err();
            assert!(
                e.contains("absolute") || e.contains("escapes"),
                "{bad}: {e}"
            );
        }
        assert!(check_location("").is_err());
    }
}
