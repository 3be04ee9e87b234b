//! Writing a zip archive the way PyTorch's `PyTorchStreamWriter` (miniz) writes one, streamed.
//!
//! Every member is stored (never deflated), its data aligned to a multiple of `alignment`
//! bytes by an `FB` extra field of `Z` padding in the local header (torch's own trick, so
//! `torch.load(mmap=True)` can map storages in place); local headers carry no sizes or CRC (flag
//! bit 3: a data descriptor follows the data, except after an empty member, as miniz does), so a
//! member is written in one pass with its CRC-32 computed on the way and memory stays at one
//! chunk whatever its size. Sizes or offsets of
//! 4 GiB and more get ZIP64 extra fields and 64-bit data descriptors exactly where miniz puts
//! them, and, as torch does, the archive always ends with a ZIP64 end record and locator before
//! the classic end record. Times, versions and attributes are zero, as in torch's files.
//!
//! The trade-off: the size of a member must be known when it starts (its padding depends on
//! whether it needs a ZIP64 field), which holds for tensor storages.
//!
//! Owns: the zip writer. Must not import: anything but `zip` (its tests read back
//! what it writes).

use std::io::{self, Write};

const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const DESCRIPTOR_SIG: u32 = 0x0807_4b50;
const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD64_SIG: u32 = 0x0606_4b50;
const EOCD64_LOCATOR_SIG: u32 = 0x0706_4b50;
const LOCAL_LEN: u64 = 30;
/// Flag bits torch's writer sets: 3 (sizes and CRC in a data descriptor) and 11 (UTF-8 names).
/// An empty member has no data descriptor (miniz sets bit 3 only for data), hence only bit 11.
const fn flags(size: u64) -> u16 {
    if size == 0 { 0x0800 } else { 0x0808 }
}
/// From this size or offset on, a field does not fit 32 bits (miniz's `>= MZ_UINT32_MAX`).
const ZIP64_FROM: u64 = 0xFFFF_FFFF;

/// A member written, as the central directory will describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// Member name.
    pub name: String,
    /// CRC-32 of its bytes.
    pub crc32: u32,
    /// Its size.
    pub size: u64,
    /// Offset of its local header.
    pub header_offset: u64,
    /// Offset of its first data byte (a multiple of the alignment).
    pub data_offset: u64,
}

/// A zip archive being written to `out`.
pub struct ZipWriter<W: Write> {
    out: W,
    at: u64,
    alignment: u64,
    members: Vec<Written>,
    open: Option<Open>,
}

struct Open {
    written: Written,
    crc: crc32fast::Hasher,
    done: u64,
}

impl<W: Write> ZipWriter<W> {
    /// A new archive whose member data start at multiples of `alignment` (torch: 64).
    pub fn new(out: W, alignment: u64) -> Self {
        ZipWriter {
            out,
            at: 0,
            alignment: alignment.max(1),
            members: Vec::new(),
            open: None,
        }
    }

    /// Bytes written so far.
    pub fn position(&self) -> u64 {
        self.at
    }

    /// The members finished so far.
    pub fn members(&self) -> &[Written] {
        &self.members
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.at += bytes.len() as u64;
        Ok(())
    }

    /// A whole member from memory.
    pub fn add(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        self.begin(name, data.len() as u64)?;
        self.write(data)?;
        self.end().map(|_| ())
    }

    /// Starts a member of `size` bytes: its local header and padding. Its data follow through
    /// [`ZipWriter::write`], then [`ZipWriter::end`].
    pub fn begin(&mut self, name: &str, size: u64) -> io::Result<()> {
        if self.open.is_some() {
            return Err(io::Error::other("a zip member is still open"));
        }
        let name_len = u16::try_from(name.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "member name too long"))?;
        let header_offset = self.at;
        let zip64 = local_zip64_extra(size, header_offset);
        // torch's getPadding: the data start after the header, the name, the ZIP64 field and
        // the 4 bytes of the `FB` field's own header.
        let start = header_offset + LOCAL_LEN + u64::from(name_len) + zip64.len() as u64 + 4;
        let padding = start.next_multiple_of(self.alignment) - start;
        let padding = u16::try_from(padding)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "alignment too large"))?;
        let extra_len = zip64.len() + 4 + usize::from(padding);
        let extra_len = u16::try_from(extra_len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "extra field too long"))?;
        let mut h = Vec::with_capacity(LOCAL_LEN as usize + name.len() + usize::from(extra_len));
        h.extend_from_slice(&LOCAL_SIG.to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes()); // version needed (miniz: 0 when stored)
        h.extend_from_slice(&flags(size).to_le_bytes());
        h.extend_from_slice(&[0u8; 2 + 2 + 2 + 4 + 4 + 4]); // method, time, date, crc, sizes
        h.extend_from_slice(&name_len.to_le_bytes());
        h.extend_from_slice(&extra_len.to_le_bytes());
        h.extend_from_slice(name.as_bytes());
        h.extend_from_slice(&zip64);
        h.extend_from_slice(b"FB");
        h.extend_from_slice(&padding.to_le_bytes());
        h.resize(h.len() + usize::from(padding), b'Z');
        self.put(&h)?;
        self.open = Some(Open {
            written: Written {
                name: name.to_string(),
                crc32: 0,
                size,
                header_offset,
                data_offset: self.at,
            },
            crc: crc32fast::Hasher::new(),
            done: 0,
        });
        Ok(())
    }

    /// Data of the open member (its CRC-32 is computed on the way).
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let Some(open) = self.open.as_mut() else {
            return Err(io::Error::other("no zip member is open"));
        };
        let done = open.done + data.len() as u64;
        if done > open.written.size {
            return Err(io::Error::other(format!(
                "zip member `{}` is longer than the {} bytes it was declared with",
                open.written.name, open.written.size
            )));
        }
        open.crc.update(data);
        open.done = done;
        self.put(data)
    }

    /// Ends the open member: checks its length and writes its data descriptor.
    pub fn end(&mut self) -> io::Result<&Written> {
        let Some(open) = self.open.take() else {
            return Err(io::Error::other("no zip member is open"));
        };
        let mut written = open.written;
        if open.done != written.size {
            return Err(io::Error::other(format!(
                "zip member `{}` got {} bytes of the {} declared",
                written.name, open.done, written.size
            )));
        }
        written.crc32 = open.crc.finalize();
        if written.size == 0 {
            // Its local header's zero CRC and sizes are already right.
            self.members.push(written);
            return self
                .members
                .last()
                .ok_or_else(|| io::Error::other("no zip member was recorded"));
        }
        let mut d = Vec::with_capacity(24);
        d.extend_from_slice(&DESCRIPTOR_SIG.to_le_bytes());
        d.extend_from_slice(&written.crc32.to_le_bytes());
        if zip64_extra(written.size, written.header_offset).is_empty() {
            // Both below 4 GiB here.
            d.extend_from_slice(&(written.size as u32).to_le_bytes());
            d.extend_from_slice(&(written.size as u32).to_le_bytes());
        } else {
            d.extend_from_slice(&written.size.to_le_bytes());
            d.extend_from_slice(&written.size.to_le_bytes());
        }
        self.put(&d)?;
        self.members.push(written);
        self.members
            .last()
            .ok_or_else(|| io::Error::other("no zip member was recorded"))
    }

    /// Writes the central directory and the end records; returns the writer and the archive's
    /// size.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        if self.open.is_some() {
            return Err(io::Error::other("a zip member is still open"));
        }
        let cd_offset = self.at;
        let mut cd = Vec::new();
        for m in &self.members {
            let zip64 = zip64_extra(m.size, m.header_offset);
            cd.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
            cd.extend_from_slice(&0u16.to_le_bytes()); // version made by
            cd.extend_from_slice(&0u16.to_le_bytes()); // version needed
            cd.extend_from_slice(&flags(m.size).to_le_bytes());
            cd.extend_from_slice(&[0u8; 6]); // method, time, date
            cd.extend_from_slice(&m.crc32.to_le_bytes());
            let size32 = m.size.min(ZIP64_FROM) as u32;
            cd.extend_from_slice(&size32.to_le_bytes());
            cd.extend_from_slice(&size32.to_le_bytes());
            cd.extend_from_slice(&(m.name.len() as u16).to_le_bytes());
            cd.extend_from_slice(&(zip64.len() as u16).to_le_bytes());
            cd.extend_from_slice(&[0u8; 2 + 2 + 2 + 4]); // comment, disk, attributes
            cd.extend_from_slice(&(m.header_offset.min(ZIP64_FROM) as u32).to_le_bytes());
            cd.extend_from_slice(m.name.as_bytes());
            cd.extend_from_slice(&zip64);
        }
        self.put(&cd)?;
        let cd_size = cd.len() as u64;
        let count = self.members.len() as u64;
        let eocd64_offset = self.at;
        let mut e = Vec::with_capacity(56 + 20 + 22);
        e.extend_from_slice(&EOCD64_SIG.to_le_bytes());
        e.extend_from_slice(&44u64.to_le_bytes());
        e.extend_from_slice(&0x031Eu16.to_le_bytes());
        e.extend_from_slice(&0x002Du16.to_le_bytes());
        e.extend_from_slice(&[0u8; 8]); // this disk, the directory's disk
        e.extend_from_slice(&count.to_le_bytes());
        e.extend_from_slice(&count.to_le_bytes());
        e.extend_from_slice(&cd_size.to_le_bytes());
        e.extend_from_slice(&cd_offset.to_le_bytes());
        e.extend_from_slice(&EOCD64_LOCATOR_SIG.to_le_bytes());
        e.extend_from_slice(&0u32.to_le_bytes());
        e.extend_from_slice(&eocd64_offset.to_le_bytes());
        e.extend_from_slice(&1u32.to_le_bytes());
        e.extend_from_slice(&EOCD_SIG.to_le_bytes());
        e.extend_from_slice(&[0u8; 4]);
        let count16 = count.min(0xFFFF) as u16;
        e.extend_from_slice(&count16.to_le_bytes());
        e.extend_from_slice(&count16.to_le_bytes());
        e.extend_from_slice(&(cd_size.min(ZIP64_FROM) as u32).to_le_bytes());
        e.extend_from_slice(&(cd_offset.min(ZIP64_FROM) as u32).to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        self.put(&e)?;
        self.out.flush()?;
        Ok((self.out, self.at))
    }
}

/// miniz's ZIP64 extended-information field: the sizes when the size needs 64 bits, the
/// header offset when it does; empty when neither does. In a local header the compressed size
/// is 0, as miniz writes it there before the data (torch's files have it so; readers take the
/// sizes from the central directory or the data descriptor).
fn zip64_extra(size: u64, header_offset: u64) -> Vec<u8> {
    zip64_field(size, size, header_offset)
}

fn local_zip64_extra(size: u64, header_offset: u64) -> Vec<u8> {
    zip64_field(size, 0, header_offset)
}

fn zip64_field(size: u64, compressed: u64, header_offset: u64) -> Vec<u8> {
    let (big_size, big_offset) = (size >= ZIP64_FROM, header_offset >= ZIP64_FROM);
    debug_assert!(compressed == size || compressed == 0);
    if !big_size && !big_offset {
        return Vec::new();
    }
    let mut body = Vec::with_capacity(24);
    if big_size {
        body.extend_from_slice(&size.to_le_bytes());
        body.extend_from_slice(&compressed.to_le_bytes());
    }
    if big_offset {
        body.extend_from_slice(&header_offset.to_le_bytes());
    }
    let mut field = Vec::with_capacity(4 + body.len());
    field.extend_from_slice(&1u16.to_le_bytes());
    field.extend_from_slice(&(body.len() as u16).to_le_bytes());
    field.extend_from_slice(&body);
    field
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::zip;

    #[test]
    fn members_read_back_aligned_with_their_crc() {
        let mut w = ZipWriter::new(Vec::new(), 64);
        w.add("a/data.pkl", b"\x80\x02K\x01.").unwrap();
        w.begin("a/data/0", 10).unwrap();
        w.write(b"0123").unwrap();
        w.write(b"456789").unwrap();
        w.end().unwrap();
        w.add("a/data/1", b"").unwrap();
        let (bytes, len) = w.finish().unwrap();
        assert_eq!(len, bytes.len() as u64);
        let entries = zip::entries(&bytes).unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a/data.pkl", "a/data/0", "a/data/1"]);
        for e in &entries {
            let r = zip::data_range(&bytes, e).unwrap();
            assert_eq!(r.start % 64, 0, "{}", e.name);
            assert!(e.is_stored());
            zip::verify_crc(&bytes, e).unwrap();
        }
        let r = zip::data_range(&bytes, &entries[1]).unwrap();
        assert_eq!(&bytes[r.start as usize..r.end as usize], b"0123456789");
    }

    #[test]
    fn a_member_of_the_wrong_length_is_an_error() {
        let mut w = ZipWriter::new(Vec::new(), 64);
        w.begin("x", 3).unwrap();
        assert!(w.write(b"toolong").is_err());
        w.write(b"ab").unwrap();
        assert!(w.end().is_err());
    }

    #[test]
    fn zip64_fields_appear_from_4_gib() {
        assert!(zip64_extra(ZIP64_FROM - 1, ZIP64_FROM - 1).is_empty());
        assert_eq!(zip64_extra(ZIP64_FROM, 0).len(), 4 + 16);
        assert_eq!(zip64_extra(1, ZIP64_FROM).len(), 4 + 8);
        assert_eq!(zip64_extra(ZIP64_FROM, ZIP64_FROM).len(), 4 + 24);
    }

    #[test]
    fn a_local_zip64_field_has_a_zero_compressed_size_as_miniz_writes_it() {
        let local = local_zip64_extra(ZIP64_FROM + 1, 0);
        assert_eq!(local[4..12], (ZIP64_FROM + 1).to_le_bytes());
        assert_eq!(local[12..20], [0; 8]);
        let central = zip64_extra(ZIP64_FROM + 1, 0);
        assert_eq!(central[12..20], (ZIP64_FROM + 1).to_le_bytes());
    }
}
