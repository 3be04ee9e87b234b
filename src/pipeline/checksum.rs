//! Checksums of what is copied: [`Checksum`], a fast 64-bit sum that verifies a copy, and the
//! one pass over a source that takes its SHA-256 (the provenance every output records), the
//! checksum of every byte range copied from it and the CRC-32 of every archive member read.
//!
//! The SHA-256 is the floor of every writer (~0.75 s/GiB on one core), so that pass runs on its
//! own thread while the data is copied; the checksums and CRCs share its read.
//!
//! Owns: [`Checksum`], [`hash_source`]. Must not import: the other files of `pipeline`.
//!
//! `clippy::indexing_slicing` is allowed here: checksum lanes are fixed-width arrays fed by
//! `chunks_exact`.

#![allow(clippy::indexing_slicing)]

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::fsutil::read_exact_at;
use crate::progress::Progress;

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

/// Feeds `chunk` (file bytes from `at`) to the sorted `ranges` it overlaps, from `first` on.
pub fn feed_ranges(
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
pub type SourceHashes = (String, Vec<Option<u64>>, Vec<u32>);

/// One pass over the source: its SHA-256, the checksum of each packed tensor's range, and the
/// CRC-32 of each archive member in `crc_ranges` (CRC and SHA share the read; the CRC kernel
/// costs a small fraction of the SHA).
pub fn hash_source(
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
