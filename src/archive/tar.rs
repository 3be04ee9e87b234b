//! Tar archives: the member listing only (names and data ranges), bounded by the file.
//!
//! Owns: walking 512-byte headers. Must not import: anything (a leaf: only `std`).

use std::ops::Range;

/// One member of a tar archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TarMember {
    /// Member name.
    pub name: String,
    /// Byte range of its data in the archive.
    pub data: Range<u64>,
}

/// Lists the members of a tar archive, stopping at the end marker or the first bad header.
pub fn members(bytes: &[u8]) -> Vec<TarMember> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(header) = bytes
        .get(at..at.saturating_add(512))
        .and_then(|h| <&[u8; 512]>::try_from(h).ok())
    {
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let (name_field, rest) = header.split_at(100);
        let name_end = name_field.iter().position(|&b| b == 0).unwrap_or(100);
        let name =
            String::from_utf8_lossy(name_field.get(..name_end).unwrap_or_default()).into_owned();
        let size_text = String::from_utf8_lossy(rest.get(24..36).unwrap_or_default());
        let Ok(size) =
            u64::from_str_radix(size_text.trim_matches(|c: char| c == '\0' || c == ' '), 8)
        else {
            break;
        };
        let data_start = at as u64 + 512;
        let declared_end = data_start.checked_add(size);
        // A member that runs past the end is listed (the archive is recognisable) with the
        // bytes that are there, and ends the listing.
        let data_end = declared_end.unwrap_or(u64::MAX).min(bytes.len() as u64);
        let typeflag = header[156];
        // PAX and GNU long-name headers describe the next member; they are not members.
        if !matches!(typeflag, b'x' | b'g' | b'L' | b'K') {
            out.push(TarMember {
                name,
                data: data_start.min(data_end)..data_end,
            });
        }
        if declared_end.is_none_or(|e| e > bytes.len() as u64) {
            break;
        }
        let Some(next) = size
            .checked_add(511)
            .map(|s| s / 512 * 512)
            .and_then(|s| data_start.checked_add(s))
            .and_then(|s| usize::try_from(s).ok())
        else {
            break;
        };
        at = next;
    }
    out
}

/// True when `bytes` carry the POSIX `ustar` magic of a tar header.
pub fn is_tar(bytes: &[u8]) -> bool {
    bytes.get(257..262) == Some(b"ustar")
}

/// Names of the members of a tar archive, stopping at the first bad header.
pub fn member_names(bytes: &[u8]) -> Vec<String> {
    members(bytes).into_iter().map(|m| m.name).collect()
}
