//! Just enough of the zip format to find members of a PyTorch archive inside a memory map.
//!
//! PyTorch writes uncompressed ("stored") members, 64-byte aligned, so a tensor storage is a plain
//! byte range of the file and can be viewed without copying. ckptscope never inflates anything
//! and never trusts the local headers' sizes (torch sets the data-descriptor flag and leaves them
//! zero). Like torch's reader, opening tolerates odd flag bits and does not check CRCs (that
//! would read every byte); [`verify_crc`] checks one member when its bytes are about to be used,
//! as `convert` does for every storage it copies, and [`Crc32`] computes the same checksum
//! incrementally for a reader that streams the file anyway.

use crate::error::Problem;

const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD64_LOCATOR_SIG: u32 = 0x0706_4b50;
const EOCD64_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;
const EOCD_LEN: usize = 22;
const CENTRAL_LEN: usize = 46;
const LOCAL_LEN: usize = 30;
const MAX_COMMENT: usize = 0xFFFF;

/// One member of a zip archive, as the central directory describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZipEntry {
    /// Member name (lossy UTF-8).
    pub name: String,
    /// Compression method: 0 stored, 8 deflate.
    pub method: u16,
    /// General-purpose flag bits.
    pub flags: u16,
    /// CRC-32 recorded for the member in the central directory (checked by [`verify_crc`]).
    pub crc32: u32,
    /// Size of the stored bytes.
    pub compressed_size: u64,
    /// Size once uncompressed.
    pub size: u64,
    /// Offset of the member's local header.
    pub local_header_offset: u64,
}

impl ZipEntry {
    /// True when the member's bytes are stored as-is (no compression).
    pub fn is_stored(&self) -> bool {
        self.method == 0
    }
}

/// A member whose bytes do not match the CRC-32 the archive records for them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "zip member `{name}` is damaged: its bytes have CRC-32 {actual:08x}, the archive records {expected:08x}"
)]
pub struct CrcMismatch {
    /// The member.
    pub name: String,
    /// The CRC-32 in the central directory.
    pub expected: u32,
    /// The CRC-32 of the bytes as they are.
    pub actual: u32,
}

/// The zip CRC-32 (IEEE), fed in pieces; the SIMD kernels of `crc32fast` make it cost a small
/// fraction of reading the bytes.
#[derive(Clone, Debug, Default)]
pub struct Crc32(crc32fast::Hasher);

impl Crc32 {
    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The CRC-32 of everything added.
    pub fn finish(self) -> u32 {
        self.0.finalize()
    }
}

/// The CRC-32 of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// Checks a stored member's bytes against the CRC-32 its central-directory record holds.
/// Compressed members are checked after inflating by whoever inflates them; here they are an
/// error, as are members that lie outside `bytes`.
pub fn verify_crc(bytes: &[u8], entry: &ZipEntry) -> Result<(), Problem> {
    if !entry.is_stored() {
        return Err(bad(format!(
            "member `{}` is compressed; only stored members are checked here",
            entry.name
        )));
    }
    let range = data_range(bytes, entry)?;
    let data = usize::try_from(range.start)
        .ok()
        .zip(usize::try_from(range.end).ok())
        .and_then(|(s, e)| bytes.get(s..e))
        .ok_or_else(|| bad(format!("member `{}` is out of range", entry.name)))?;
    check_crc(entry, crc32(data)).map_err(|e| Problem::Other(e.to_string()))
}

/// Compares a CRC-32 computed elsewhere (see [`Crc32`]) with the one `entry` records.
pub fn check_crc(entry: &ZipEntry, actual: u32) -> Result<(), CrcMismatch> {
    if actual == entry.crc32 {
        Ok(())
    } else {
        Err(CrcMismatch {
            name: entry.name.clone(),
            expected: entry.crc32,
            actual,
        })
    }
}

/// True when `bytes` starts like a zip archive (a local header or an empty archive).
pub fn looks_like_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn bad(message: impl Into<String>) -> Problem {
    Problem::Other(format!("zip archive: {}", message.into()))
}

/// Lists the members named by the central directory.
pub fn entries(bytes: &[u8]) -> Result<Vec<ZipEntry>, Problem> {
    let eocd = find_eocd(bytes).ok_or_else(|| bad("no end-of-central-directory record"))?;
    let mut count = u64::from(u16_at(bytes, eocd + 10).unwrap_or(0));
    let mut cd_size = u64::from(u32_at(bytes, eocd + 12).unwrap_or(0));
    let mut cd_offset = u64::from(u32_at(bytes, eocd + 16).unwrap_or(0));
    if (count == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF)
        && let Some((c, s, o)) = zip64_eocd(bytes, eocd)
    {
        (count, cd_size, cd_offset) = (c, s, o);
    }
    let start =
        usize::try_from(cd_offset).map_err(|_| bad("central directory offset too large"))?;
    let end = cd_offset
        .checked_add(cd_size)
        .and_then(|e| usize::try_from(e).ok())
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad("central directory runs past the end of the file"))?;
    let directory = bytes
        .get(start..end)
        .ok_or_else(|| bad("central directory out of range"))?;
    // Each record is at least 46 bytes, so the directory's size bounds the count whatever the
    // end record claims.
    let capacity = usize::try_from(count)
        .unwrap_or(usize::MAX)
        .min(directory.len() / CENTRAL_LEN);
    let mut out = Vec::with_capacity(capacity);
    let mut at = 0usize;
    while at + CENTRAL_LEN <= directory.len() && (out.len() as u64) < count {
        if u32_at(directory, at) != Some(CENTRAL_SIG) {
            return Err(bad(format!(
                "bad central directory record at offset {}",
                start + at
            )));
        }
        let field = |o: usize| u16_at(directory, at + o).unwrap_or(0);
        let name_len = usize::from(field(28));
        let extra_len = usize::from(field(30));
        let comment_len = usize::from(field(32));
        let name_start = at + CENTRAL_LEN;
        let extra_start = name_start + name_len;
        let next = extra_start + extra_len + comment_len;
        let name = directory
            .get(name_start..extra_start)
            .ok_or_else(|| bad("member name runs past the central directory"))?;
        let extra = directory
            .get(extra_start..extra_start + extra_len)
            .unwrap_or(&[]);
        let mut entry = ZipEntry {
            name: String::from_utf8_lossy(name).into_owned(),
            method: field(10),
            flags: field(8),
            crc32: u32_at(directory, at + 16).unwrap_or(0),
            compressed_size: u64::from(u32_at(directory, at + 20).unwrap_or(0)),
            size: u64::from(u32_at(directory, at + 24).unwrap_or(0)),
            local_header_offset: u64::from(u32_at(directory, at + 42).unwrap_or(0)),
        };
        apply_zip64_extra(&mut entry, extra);
        out.push(entry);
        at = next;
    }
    Ok(out)
}

/// The byte range of a member's data, found through its local header.
pub fn data_range(bytes: &[u8], entry: &ZipEntry) -> Result<std::ops::Range<u64>, Problem> {
    let local = usize::try_from(entry.local_header_offset).map_err(|_| {
        bad(format!(
            "member `{}` starts past the end of the file",
            entry.name
        ))
    })?;
    if u32_at(bytes, local) != Some(LOCAL_SIG) {
        return Err(bad(format!(
            "member `{}` has no local header where the directory points",
            entry.name
        )));
    }
    let name_len = u64::from(u16_at(bytes, local + 26).unwrap_or(0));
    let extra_len = u64::from(u16_at(bytes, local + 28).unwrap_or(0));
    let end = entry
        .local_header_offset
        .checked_add(LOCAL_LEN as u64 + name_len + extra_len)
        .map(|start| (start, start.checked_add(entry.compressed_size)));
    let (start, end) = match end {
        Some((start, Some(end))) => (start, Some(end)),
        _ => (0, None),
    };
    let end = end.filter(|&e| e <= bytes.len() as u64).ok_or_else(|| {
        bad(format!(
            "member `{}` runs past the end of the file",
            entry.name
        ))
    })?;
    Ok(start..end)
}

/// The first `max` bytes a deflate stream inflates to (fewer when it is shorter): enough to read
/// an array header without inflating the member. Costs at most `max` bytes of memory.
pub fn inflate_prefix(raw: &[u8], max: usize) -> Result<Vec<u8>, String> {
    use miniz_oxide::inflate::{TINFLStatus, decompress_to_vec_with_limit};
    match decompress_to_vec_with_limit(raw, max) {
        Ok(all) => Ok(all),
        Err(e) if e.status == TINFLStatus::HasMoreOutput => Ok(e.output),
        Err(e) => Err(format!("the deflate stream is damaged ({:?})", e.status)),
    }
}

/// Inflates a deflate stream that must give exactly `size` bytes: more is refused as soon as the
/// output passes `size` (a bomb costs at most `size + 1` bytes), fewer is an error too.
pub fn inflate_exact(raw: &[u8], size: usize) -> Result<Vec<u8>, String> {
    use miniz_oxide::inflate::{TINFLStatus, decompress_to_vec_with_limit};
    match decompress_to_vec_with_limit(raw, size.saturating_add(1)) {
        Ok(all) if all.len() == size => Ok(all),
        Ok(all) => Err(format!(
            "it inflates to {} bytes, not the {size} its directory entry records",
            all.len()
        )),
        Err(e) if e.status == TINFLStatus::HasMoreOutput => Err(format!(
            "it inflates to more than the {size} bytes its directory entry records (a zip bomb?)"
        )),
        Err(e) => Err(format!("the deflate stream is damaged ({:?})", e.status)),
    }
}

fn find_eocd(bytes: &[u8]) -> Option<usize> {
    if bytes.len() < EOCD_LEN {
        return None;
    }
    let last = bytes.len() - EOCD_LEN;
    let first = last.saturating_sub(MAX_COMMENT);
    (first..=last)
        .rev()
        .find(|&at| u32_at(bytes, at) == Some(EOCD_SIG))
}

fn zip64_eocd(bytes: &[u8], eocd: usize) -> Option<(u64, u64, u64)> {
    let locator = eocd.checked_sub(20)?;
    if u32_at(bytes, locator)? != EOCD64_LOCATOR_SIG {
        return None;
    }
    let record = usize::try_from(u64_at(bytes, locator + 8)?).ok()?;
    if u32_at(bytes, record)? != EOCD64_SIG {
        return None;
    }
    Some((
        u64_at(bytes, record + 32)?,
        u64_at(bytes, record + 40)?,
        u64_at(bytes, record + 48)?,
    ))
}

fn apply_zip64_extra(entry: &mut ZipEntry, mut extra: &[u8]) {
    while extra.len() >= 4 {
        let id = u16_at(extra, 0).unwrap_or(0);
        let len = usize::from(u16_at(extra, 2).unwrap_or(0));
        let Some(body) = extra.get(4..4 + len) else {
            return;
        };
        if id == 0x0001 {
            let mut at = 0;
            for field in [
                &mut entry.size,
                &mut entry.compressed_size,
                &mut entry.local_header_offset,
            ] {
                if *field == 0xFFFF_FFFF
                    && let Some(v) = u64_at(body, at)
                {
                    *field = v;
                    at += 8;
                }
            }
        }
        extra = extra.get(4 + len..).unwrap_or(&[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_members_of_a_torch_archive() {
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/torch_zip_basic.pt"
        ))
        .unwrap();
        let entries = entries(&bytes).unwrap();
        let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names[0], "torch_zip_basic/data.pkl");
        assert!(names.contains(&"torch_zip_basic/data/0"));
        let data0 = entries.iter().find(|e| e.name.ends_with("data/0")).unwrap();
        let range = data_range(&bytes, data0).unwrap();
        assert_eq!(range.end - range.start, 512);
        assert_eq!(range.start % 64, 0, "torch aligns storages to 64 bytes");
    }

    #[test]
    fn crc_of_every_member_of_a_torch_archive_matches_and_a_flipped_byte_does_not() {
        let mut bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/torch_zip_basic.pt"
        ))
        .unwrap();
        let entries = entries(&bytes).unwrap();
        for e in entries.iter().filter(|e| e.is_stored()) {
            verify_crc(&bytes, e).unwrap_or_else(|p| panic!("{}: {p}", e.name));
        }
        let data0 = entries.iter().find(|e| e.name.ends_with("data/0")).unwrap();
        let range = data_range(&bytes, data0).unwrap();
        bytes[range.start as usize + 100] ^= 0x40;
        let err = verify_crc(&bytes, data0).unwrap_err().to_string();
        assert!(err.contains("data/0") && err.contains("damaged"), "{err}");
        // The incremental form agrees with the one-shot form whatever the split.
        let data = &bytes[range.start as usize..range.end as usize];
        let mut c = Crc32::default();
        for piece in data.chunks(37) {
            c.update(piece);
        }
        assert_eq!(c.finish(), crc32(data));
        assert!(check_crc(data0, crc32(data)).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(entries(b"PK\x03\x04 not really").is_err());
        let mut fake = vec![0u8; 40];
        fake[18..22].copy_from_slice(&EOCD_SIG.to_le_bytes());
        fake[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(entries(&fake).is_err());
    }
}
