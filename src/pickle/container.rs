//! Where the pickles are: the containers PyTorch, NumPy and joblib put them in.
//!
//! Every reader here is detected by content and tolerant the way the real loader is (torch's
//! miniz ignores CRCs, flag bits and local header names; it finds `data.pkl` case-insensitively
//! and inflates deflated members), because a scanner that is stricter than the loader can be
//! made to give up on a file the loader happily runs. Where torch would only read one pickle,
//! ckptscope still scans every member that parses as one.
//!
//! `clippy::indexing_slicing` is allowed here: entry indexes come from searching the entry list
//! itself.

#![allow(clippy::indexing_slicing)]

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use crate::archive::zip::{self, ZipEntry};
use crate::pickle::policy::PersistentKind;
use crate::verdict::{Finding, Risk};

/// What a pickle stream is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The object `torch.load` / `pickle.load` returns.
    Object,
    /// A small header pickle (legacy magic number, protocol, sys_info; tar counts).
    Header,
    /// Legacy storage key list, tar storage/tensor records.
    Records,
    /// A pickle-looking member the loader would not read.
    Extra,
    /// Another pickle in a raw stream after the first one (joblib-style concatenation).
    Concatenated,
    /// A pickle inside a NumPy object array.
    NumpyObject,
}

/// One pickle stream to run.
#[derive(Clone, Debug)]
pub struct Stream<'a> {
    /// Archive member holding it, if any.
    pub member: Option<String>,
    /// Its bytes (borrowed from the map, or inflated).
    pub bytes: Cow<'a, [u8]>,
    /// Where the stream starts inside `bytes`.
    pub start: usize,
    /// Offset of `bytes[0]` in the file (for findings outside archives).
    pub base_offset: u64,
    /// What it is.
    pub role: Role,
    /// Persistent ids that are legitimate in it.
    pub persistent: PersistentKind,
}

/// A PyTorch zip archive, located.
#[derive(Clone, Debug, Default)]
pub struct TorchZip {
    /// Folder all members live under (`archive/`), as written.
    pub root: String,
    /// Central-directory members.
    pub entries: Vec<ZipEntry>,
    /// Index of the `data.pkl` torch would load.
    pub data_pkl: Option<usize>,
    /// True when `byteorder` says `big`.
    pub big_endian: bool,
    /// Findings about the container itself.
    pub findings: Vec<Finding>,
    /// True for a TorchScript archive.
    pub torchscript: bool,
    /// Storage record key (the name after `<root>/data/`) → index in `entries`, built once.
    records: HashMap<String, usize>,
    /// The same, by lower-cased key (miniz, which torch uses, matches names case-insensitively).
    records_folded: HashMap<String, usize>,
}

/// Reads the central directory of a torch zip and finds its records.
pub fn torch_zip(bytes: &[u8]) -> Result<TorchZip, String> {
    let entries = zip::entries(bytes).map_err(|p| p.to_string())?;
    let root = entries
        .first()
        .and_then(|e| e.name.split_once('/').map(|(r, _)| r.to_string()))
        .unwrap_or_default();
    let prefix = if root.is_empty() {
        String::new()
    } else {
        format!("{root}/")
    };
    let mut out = TorchZip {
        root: root.clone(),
        ..TorchZip::default()
    };
    let wanted = format!("{prefix}data.pkl");
    let candidates: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.name.eq_ignore_ascii_case(&wanted))
        .map(|(i, _)| i)
        .collect();
    // miniz matches case-insensitively; prefer the exact spelling when both exist.
    out.data_pkl = candidates
        .iter()
        .copied()
        .find(|&i| entries[i].name == wanted)
        .or_else(|| candidates.first().copied());
    if candidates.len() > 1 {
        out.findings.push(Finding::new(
            Risk::Suspicious,
            None,
            format!(
                "{} members are named `{wanted}` when case is ignored: which one a loader reads depends on its zip library; all are scanned",
                candidates.len()
            ),
        ));
    }
    if let Some(i) = out.data_pkl
        && entries[i].name != wanted
    {
        out.findings.push(Finding::new(
            Risk::Info,
            None,
            format!(
                "the object pickle is stored as `{}`; torch finds it case-insensitively, scanners that look for `data.pkl` do not",
                entries[i].name
            ),
        ));
    }
    let lower: Vec<String> = entries
        .iter()
        .map(|e| e.name.to_ascii_lowercase())
        .collect();
    // The same rule as format detection; what the archive's code does is judged by
    // `pickle::torchscript` once its members are read.
    out.torchscript = lower
        .iter()
        .any(|n| crate::detect::is_torchscript_member(n));
    if let Some(e) = entries
        .iter()
        .find(|e| e.name.eq_ignore_ascii_case(&format!("{prefix}byteorder")))
        && let Ok(b) = member_bytes(bytes, e, 64)
    {
        let text = String::from_utf8_lossy(&b).trim().to_ascii_lowercase();
        out.big_endian = text == "big";
    }
    for e in &entries {
        if e.flags & 1 != 0 {
            out.findings.push(Finding::new(
                Risk::Suspicious,
                None,
                format!("member `{}` is marked encrypted; it cannot be read", e.name),
            ));
        }
    }
    if let Some(mismatch) = local_name_mismatch(bytes, &entries) {
        out.findings.push(Finding::new(
            Risk::Info,
            None,
            format!(
                "member `{mismatch}` has a different name in its local header than in the central directory; torch uses the directory (scanners built on Python's zipfile give up here)"
            ),
        ));
    }
    let data_prefix = format!("{prefix}data/");
    for (i, e) in entries.iter().enumerate() {
        let Some(key) = e
            .name
            .get(..data_prefix.len())
            .filter(|p| p.eq_ignore_ascii_case(&data_prefix))
            .and_then(|_| e.name.get(data_prefix.len()..))
        else {
            continue;
        };
        if e.name.starts_with(&data_prefix) {
            out.records.entry(key.to_string()).or_insert(i);
        }
        out.records_folded
            .entry(key.to_ascii_lowercase())
            .or_insert(i);
    }
    out.entries = entries;
    Ok(out)
}

impl TorchZip {
    /// The entry of storage record `key` (`<root>/data/<key>`), found case-insensitively; O(1).
    pub fn record(&self, key: &str) -> Option<&ZipEntry> {
        let i = match self.records.get(key) {
            Some(i) => *i,
            None => *self.records_folded.get(&key.to_ascii_lowercase())?,
        };
        self.entries.get(i)
    }
}

/// The bytes of a member: borrowed when stored, inflated when deflated, to at most `limit`
/// bytes (more is an error: the member is larger than its directory entry says, or than the
/// caller allows).
pub fn member_bytes<'a>(
    bytes: &'a [u8],
    entry: &ZipEntry,
    limit: u64,
) -> Result<Cow<'a, [u8]>, String> {
    let range = zip::data_range(bytes, entry).map_err(|p| p.to_string())?;
    let raw = bytes
        .get(range.start as usize..range.end as usize)
        .ok_or_else(|| format!("member `{}` is out of range", entry.name))?;
    match entry.method {
        0 => Ok(Cow::Borrowed(raw)),
        8 => {
            let limit = usize::try_from(entry.size.min(limit)).unwrap_or(usize::MAX);
            miniz_oxide::inflate::decompress_to_vec_with_limit(raw, limit.max(1))
                .map(Cow::Owned)
                .map_err(|e| {
                    format!(
                        "member `{}` cannot be inflated to the {limit} bytes its directory entry or the inflate limit allows ({:?})",
                        entry.name, e.status
                    )
                })
        }
        m => Err(format!(
            "member `{}` uses compression method {m}, which torch cannot read either",
            entry.name
        )),
    }
}

/// True for a deflated `.npy` member whose header (read from the first 64 KiB it inflates to,
/// never the whole member) is a plain numeric array: `np.load` reads its data without
/// unpickling anything, so a scan need not inflate it. A header that cannot be read is not
/// vouched for (false), so such a member is inflated and scanned whole as before.
pub fn is_deflated_numeric_npy(bytes: &[u8], entry: &ZipEntry) -> bool {
    if entry.method != 8 {
        return false;
    }
    let Ok(range) = zip::data_range(bytes, entry) else {
        return false;
    };
    let Some(raw) = usize::try_from(range.start)
        .ok()
        .zip(usize::try_from(range.end).ok())
        .and_then(|(s, e)| bytes.get(s..e))
    else {
        return false;
    };
    let Ok(prefix) = zip::inflate_prefix(raw, 64 << 10) else {
        return false;
    };
    npy_header(&prefix).is_ok_and(|h| !h.is_object() && h.descr != "?")
}

/// The absolute byte range of a stored member (for zero-copy storages).
pub fn stored_range(bytes: &[u8], entry: &ZipEntry) -> Result<Range<u64>, String> {
    if !entry.is_stored() {
        return Err(format!(
            "record `{}` is compressed; ckptscope reads storages only when they are stored as-is (as torch.save writes them)",
            entry.name
        ));
    }
    zip::data_range(bytes, entry).map_err(|p| p.to_string())
}

fn local_name_mismatch(bytes: &[u8], entries: &[ZipEntry]) -> Option<String> {
    for e in entries {
        let at = usize::try_from(e.local_header_offset).ok()?;
        let name_len = usize::from(u16::from_le_bytes(
            bytes
                .get(at.checked_add(26)?..at.checked_add(28)?)?
                .try_into()
                .ok()?,
        ));
        let start = at.checked_add(30)?;
        let local = bytes.get(start..start.checked_add(name_len)?)?;
        if local != e.name.as_bytes() {
            return Some(e.name.clone());
        }
    }
    None
}

/// True when `bytes` could be the start of a pickle stream (used to decide which archive
/// members to scan; the machine then decides for sure).
pub fn looks_like_pickle(bytes: &[u8]) -> bool {
    match bytes {
        [0x80, proto, ..] => *proto <= 5,
        [first, ..] => {
            // Protocol 0/1 streams start with an opcode that pushes something.
            const STARTS: &[u8] = b"(}])NIJKMLFGSTUVXBCcdlgjhiPQ\x88\x89\x8a\x8c\x8d\x8e\x8f\x95";
            STARTS.contains(first)
        }
        [] => false,
    }
}

/// A NumPy `.npy` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyHeader {
    /// `descr`: `<f4`, `|O`...
    pub descr: String,
    /// `fortran_order`.
    pub fortran_order: bool,
    /// `shape`.
    pub shape: Vec<u64>,
    /// Offset of the data after the header.
    pub data_start: usize,
}

/// Parses the header of a `.npy` file (format versions 1 to 3).
pub fn npy_header(bytes: &[u8]) -> Result<NpyHeader, String> {
    if !bytes.starts_with(b"\x93NUMPY") {
        return Err("not a .npy array (no \\x93NUMPY magic)".into());
    }
    let major = *bytes.get(6).ok_or("truncated .npy header")?;
    let (len, start): (usize, usize) = match major {
        1 => (
            usize::from(u16::from_le_bytes(
                bytes
                    .get(8..10)
                    .ok_or("truncated .npy header")?
                    .try_into()
                    .map_err(|_| "bad header")?,
            )),
            10,
        ),
        2 | 3 => (
            u32::from_le_bytes(
                bytes
                    .get(8..12)
                    .ok_or("truncated .npy header")?
                    .try_into()
                    .map_err(|_| "bad header")?,
            ) as usize,
            12,
        ),
        v => return Err(format!(".npy format version {v} is unknown")),
    };
    let text = bytes
        .get(start..start.checked_add(len).ok_or("bad header length")?)
        .ok_or("the .npy header runs past the end of the file")?;
    let text = String::from_utf8_lossy(text);
    let field = |key: &str| -> Option<String> {
        let at = text.find(&format!("'{key}'"))? + key.len() + 2;
        let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
        Some(rest.to_string())
    };
    let descr = field("descr")
        .and_then(|r| {
            let q = r.chars().next()?;
            let inner = r.get(1..)?;
            Some(inner[..inner.find(q)?].to_string())
        })
        .unwrap_or_else(|| "?".into());
    let fortran_order = field("fortran_order").is_some_and(|r| r.starts_with("True"));
    let shape = field("shape")
        .and_then(|r| {
            let inner = r.strip_prefix('(')?;
            let inner = &inner[..inner.find(')')?];
            inner
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.trim_end_matches('L').parse::<u64>().ok())
                .collect::<Option<Vec<u64>>>()
        })
        .ok_or("the .npy header has no readable shape")?;
    Ok(NpyHeader {
        descr,
        fortran_order,
        shape,
        data_start: start + len,
    })
}

impl NpyHeader {
    /// True for object arrays, whose data is a pickle.
    pub fn is_object(&self) -> bool {
        self.descr.contains('O')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_headers() {
        let mut f = b"\x93NUMPY\x01\x00".to_vec();
        let h = b"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }          \n";
        f.extend_from_slice(&(h.len() as u16).to_le_bytes());
        f.extend_from_slice(h);
        let header = npy_header(&f).unwrap();
        assert_eq!(header.descr, "<f4");
        assert_eq!(header.shape, [3, 4]);
        assert!(!header.fortran_order && !header.is_object());
        assert_eq!(header.data_start, f.len());
        assert!(npy_header(b"\x93NUMPY\x09\x00").is_err());
        assert!(npy_header(b"\x93NUMPY\x01\x00\xff\xff{").is_err());
    }

    #[test]
    fn pickle_starts() {
        assert!(looks_like_pickle(b"\x80\x02}q\x00."));
        assert!(looks_like_pickle(b"cos\nsystem\n"));
        assert!(!looks_like_pickle(b"\x00\x00\x80\x3f"));
        assert!(!looks_like_pickle(b""));
    }
}
