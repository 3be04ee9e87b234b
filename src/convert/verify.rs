//! Checking a written output against its source: checksums of packed tensors, byte
//! comparison of gathered ones, and the CRC-32 of every archive member read.
//!
//! Owns: [`Checksum`], the source hashing pass. Must not import: `write`, `sharded`.
//!
//! `clippy::indexing_slicing` is allowed here: checksum lanes are fixed-width arrays fed by
//! `chunks_exact`.

#![allow(clippy::indexing_slicing)]

use std::path::Path;

use sha2::{Digest, Sha256};

use super::ConvertError;
use super::plan::Plan;
use crate::error::Error;
use crate::format::Checkpoint;
use crate::format::gather;
use crate::fsutil::read_exact_at;
use crate::progress::Progress;

/// Reads every written tensor back: packed ones are checksummed (compared with the checksums
/// the hashing pass took of the source), strided ones compared with the source directly.
/// Memory: one chunk.
pub(super) fn verify(
    ckpt: &Checkpoint,
    plan: &Plan<'_>,
    plain: &[Option<std::ops::Range<u64>>],
    written: &Path,
    data_start: u64,
    progress: &Progress,
) -> Result<Vec<Option<u64>>, ConvertError> {
    let read_back = |error: Error| ConvertError::ReadBack {
        error: Box::new(error),
    };
    let mismatch = |tensor: Option<&str>, what: String| ConvertError::Mismatch {
        output: written.to_path_buf(),
        tensor: tensor.map(str::to_string),
        what,
    };
    let out = crate::format::open(written).map_err(read_back)?;
    if out.tensors.len() != plan.tensors.len() {
        return Err(mismatch(
            None,
            format!(
                "{} tensors read back, {} written",
                out.tensors.len(),
                plan.tensors.len()
            ),
        ));
    }
    let out_file =
        std::fs::File::open(written).map_err(|e| read_back(Error::io("open", written, e)))?;
    let mut buf = Vec::with_capacity(gather::CHUNK);
    let mut sums = Vec::with_capacity(plan.tensors.len());
    for ((name, t), plain) in plan.tensors.iter().zip(plain) {
        let o = out
            .tensor(name)
            .ok_or_else(|| mismatch(Some(name), "is missing".into()))?;
        if o.dtype != t.dtype
            || o.shape != t.shape
            || o.file_offset < data_start
            || o.byte_len() != t.byte_len()
        {
            return Err(mismatch(
                Some(name),
                format!("reads back as {} {:?}", o.dtype, o.shape),
            ));
        }
        let mut at = o.file_offset;
        let mut left = o.byte_len();
        let mut read = |n: usize, buf: &mut Vec<u8>| -> Result<(), ConvertError> {
            if progress.is_cancelled() {
                return Err(ConvertError::Cancelled);
            }
            buf.resize(n, 0);
            read_exact_at(&out_file, buf, at)
                .map_err(|e| read_back(Error::io("read", written, e)))?;
            at += n as u64;
            progress.add_done(n as u64);
            Ok(())
        };
        if plain.is_some() {
            let mut sum = Checksum::default();
            while left > 0 {
                let n = left.min(gather::CHUNK as u64);
                read(n as usize, &mut buf)?;
                sum.update(&buf);
                left -= n;
            }
            sums.push(Some(sum.finish()));
        } else {
            let region = ckpt.tensor_bytes(t)?;
            gather::for_each_chunk(t, region, gather::CHUNK, &mut |chunk| {
                read(chunk.len(), &mut buf)?;
                if buf != chunk {
                    return Err(mismatch(Some(name), "differs from the source".into()));
                }
                Ok(())
            })
            .map_err(|e| ConvertError::Gather {
                path: ckpt.path.clone(),
                tensor: name.clone(),
                reason: e.to_string(),
            })??;
            sums.push(None);
        }
    }
    Ok(sums)
}

/// A fast 64-bit checksum (four independent multiply-rotate lanes over 8-byte words) for
/// verifying copies: it catches I/O and logic errors, it is not a cryptographic hash.
#[derive(Clone, Debug, Default)]
pub struct Checksum {
    lanes: [u64; 4],
    pending: Vec<u8>,
    len: u64,
}

impl Checksum {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;

    /// Adds bytes; the result does not depend on how the input is split.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if !self.pending.is_empty() {
            let take = (32 - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() < 32 {
                return;
            }
            let block: [u8; 32] = self.pending[..32].try_into().unwrap_or([0; 32]);
            self.block(&block);
            self.pending.clear();
        }
        let mut blocks = data.chunks_exact(32);
        for b in &mut blocks {
            self.block(b);
        }
        self.pending.extend_from_slice(blocks.remainder());
    }

    #[inline(always)]
    fn block(&mut self, b: &[u8]) {
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            let w = u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
            *lane = (*lane ^ w).wrapping_mul(Self::K).rotate_left(29);
        }
    }

    /// The checksum of everything added.
    pub fn finish(mut self) -> u64 {
        let tail = std::mem::take(&mut self.pending);
        let mut padded = [0u8; 32];
        padded[..tail.len()].copy_from_slice(&tail);
        self.block(&padded);
        let mut h = self.len.wrapping_mul(Self::K);
        for lane in self.lanes {
            h = (h ^ lane).wrapping_mul(Self::K).rotate_left(31);
        }
        h
    }
}

/// A stored zip member that planned tensors are copied from, with its recorded CRC-32.
pub(super) struct Member {
    pub(super) entry: crate::archive::zip::ZipEntry,
    pub(super) range: std::ops::Range<u64>,
    /// Output names of the tensors read from it.
    pub(super) tensors: Vec<String>,
}

/// The archive members the plan reads (none for files that are not zip archives), found by the
/// byte range each tensor's storage occupies.
pub(super) fn zip_members(ckpt: &Checkpoint, plan: &Plan<'_>) -> Result<Vec<Member>, ConvertError> {
    use crate::archive::zip;
    let Some(source) = ckpt.sources.first() else {
        return Ok(Vec::new());
    };
    let bytes = source.mapped()?.bytes();
    if !zip::looks_like_zip(bytes) {
        return Ok(Vec::new());
    }
    let entries = zip::entries(bytes).map_err(|p| Error::invalid(&ckpt.path, p))?;
    let mut members: Vec<Member> = entries
        .into_iter()
        .filter(|e| e.is_stored())
        .filter_map(|entry| {
            let range = zip::data_range(bytes, &entry).ok()?;
            Some(Member {
                entry,
                range,
                tensors: Vec::new(),
            })
        })
        .collect();
    members.sort_by_key(|m| (m.range.start, m.range.end));
    for (name, t) in &plan.tensors {
        if t.source != 0 {
            continue;
        }
        let range = t.file_range();
        // The member whose data holds the tensor's bytes: the last one starting at or before it.
        let i = members.partition_point(|m| m.range.start <= range.start);
        if let Some(m) = i.checked_sub(1).and_then(|i| members.get_mut(i))
            && m.range.end >= range.end
        {
            m.tensors.push(name.clone());
        }
    }
    members.retain(|m| !m.tensors.is_empty());
    Ok(members)
}

/// Feeds `chunk` (file bytes from `at`) to the sorted `ranges` it overlaps, from `first` on.
pub(crate) fn feed_ranges(
    ranges: &[std::ops::Range<u64>],
    order: &[usize],
    first: &mut usize,
    at: u64,
    chunk: &[u8],
    mut feed: impl FnMut(usize, &[u8]),
) {
    let end = at.saturating_add(chunk.len() as u64);
    while let Some(r) = order.get(*first).and_then(|&i| ranges.get(i))
        && r.end <= at
    {
        *first += 1;
    }
    for &i in order.get(*first..).unwrap_or(&[]) {
        let Some(r) = ranges.get(i) else { continue };
        if r.start >= end {
            break;
        }
        let (s, e) = (r.start.max(at), r.end.min(end));
        if s < e
            && let (Ok(s), Ok(e)) = (usize::try_from(s - at), usize::try_from(e - at))
            && let Some(piece) = chunk.get(s..e)
        {
            feed(i, piece);
        }
    }
}

/// What the hashing pass computes: the source's SHA-256 (hex), a checksum per packed tensor
/// range, a CRC-32 per archive member.
type SourceHashes = (String, Vec<Option<u64>>, Vec<u32>);

/// One pass over the source: its SHA-256, the checksum of each packed tensor's range, and the
/// CRC-32 of each archive member in `crc_ranges` (CRC and SHA share the read; the CRC kernel
/// costs a small fraction of the SHA).
pub(crate) fn hash_source(
    path: &Path,
    ranges: &[Option<std::ops::Range<u64>>],
    crc_ranges: &[std::ops::Range<u64>],
    progress: &Progress,
) -> Result<SourceHashes, Error> {
    let f = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let len = f.metadata().map_err(|e| Error::io("read", path, e))?.len();
    let mut sha = Sha256::new();
    let mut sums: Vec<Option<Checksum>> = ranges
        .iter()
        .map(|r| r.as_ref().map(|_| Checksum::default()))
        .collect();
    // Ranges by start, to feed each chunk only to the tensors it overlaps.
    let flat: Vec<std::ops::Range<u64>> =
        ranges.iter().map(|r| r.clone().unwrap_or(0..0)).collect();
    let mut order: Vec<usize> = (0..ranges.len()).filter(|&i| ranges[i].is_some()).collect();
    order.sort_by_key(|&i| flat[i].start);
    let mut crcs: Vec<crate::archive::zip::Crc32> = vec![Default::default(); crc_ranges.len()];
    let mut crc_order: Vec<usize> = (0..crc_ranges.len()).collect();
    crc_order.sort_by_key(|&i| crc_ranges[i].start);
    let mut crc_first = 0usize;
    let mut buf = vec![0u8; 1 << 22];
    let mut at = 0u64;
    let mut first = 0usize;
    while at < len {
        if progress.is_cancelled() {
            break;
        }
        let n = (len - at).min(buf.len() as u64) as usize;
        read_exact_at(&f, &mut buf[..n], at).map_err(|e| Error::io("read", path, e))?;
        let chunk = &buf[..n];
        sha.update(chunk);
        feed_ranges(&flat, &order, &mut first, at, chunk, |i, piece| {
            if let Some(Some(sum)) = sums.get_mut(i) {
                sum.update(piece);
            }
        });
        feed_ranges(
            crc_ranges,
            &crc_order,
            &mut crc_first,
            at,
            chunk,
            |i, piece| {
                if let Some(crc) = crcs.get_mut(i) {
                    crc.update(piece);
                }
            },
        );
        at += n as u64;
    }
    Ok((
        crate::hash::hex(&sha.finalize()),
        sums.into_iter().map(|s| s.map(Checksum::finish)).collect(),
        crcs.into_iter()
            .map(crate::archive::zip::Crc32::finish)
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_does_not_depend_on_how_data_is_split() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut whole = Checksum::default();
        whole.update(&data);
        let expected = whole.finish();
        for split in [1, 7, 31, 32, 33, 500] {
            let mut c = Checksum::default();
            for piece in data.chunks(split) {
                c.update(piece);
            }
            assert_eq!(c.finish(), expected, "split {split}");
        }
        let mut other = data.clone();
        other[999] ^= 1;
        let mut c = Checksum::default();
        c.update(&other);
        assert_ne!(c.finish(), expected);
        let mut shorter = Checksum::default();
        shorter.update(&data[..999]);
        assert_ne!(shorter.finish(), expected);
    }
}
