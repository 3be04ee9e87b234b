//! Writing `.tar.gz` archives: POSIX ustar members (sizes past 8 GiB in the base-256 form GNU
//! tar and Python's `tarfile` read), compressed by a streaming gzip writer.
//!
//! Memory is one copy buffer and the compressor's state, whatever the members' sizes.

use std::io::{self, Read, Write};

use miniz_oxide::deflate::core::{CompressorOxide, TDEFLFlush, TDEFLStatus, compress};
use miniz_oxide::{DataFormat, deflate::CompressionLevel};

const BLOCK: usize = 512;

/// A gzip stream (RFC 1952) around raw deflate, at the fastest level: weights barely compress,
/// and the archive is for moving a package, not for saving bytes.
pub struct GzWriter<W: Write> {
    out: W,
    compressor: Box<CompressorOxide>,
    crc: crc32fast::Hasher,
    len: u64,
    buf: Vec<u8>,
}

impl<W: Write> GzWriter<W> {
    /// Starts the stream (writes the gzip header).
    pub fn new(mut out: W) -> io::Result<Self> {
        // Magic, deflate, no flags, no mtime, fastest, unknown OS.
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255])?;
        Ok(GzWriter {
            out,
            compressor: Box::new(CompressorOxide::with_format_and_level(
                DataFormat::Raw,
                CompressionLevel::BestSpeed,
            )),
            crc: crc32fast::Hasher::new(),
            len: 0,
            buf: vec![0; 256 << 10],
        })
    }

    fn pump(&mut self, mut input: &[u8], flush: TDEFLFlush) -> io::Result<()> {
        loop {
            let (status, read, written) =
                compress(&mut self.compressor, input, &mut self.buf, flush);
            let out = self.buf.get(..written).unwrap_or_default();
            self.out.write_all(out)?;
            input = input.get(read..).unwrap_or_default();
            match status {
                TDEFLStatus::Done => return Ok(()),
                TDEFLStatus::Okay if input.is_empty() && flush == TDEFLFlush::None => {
                    return Ok(());
                }
                TDEFLStatus::Okay => {}
                TDEFLStatus::BadParam | TDEFLStatus::PutBufFailed => {
                    return Err(io::Error::other(format!("deflate failed: {status:?}")));
                }
            }
        }
    }

    /// Ends the stream (flushes the compressor, writes the CRC and length) and returns the
    /// writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.pump(&[], TDEFLFlush::Finish)?;
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        // ISIZE is the length modulo 2^32 by definition.
        self.out
            .write_all(&((self.len & 0xffff_ffff) as u32).to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for GzWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.crc.update(data);
        self.len += data.len() as u64;
        self.pump(data, TDEFLFlush::None)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A tar archive being written to `out`.
pub struct TarWriter<W: Write> {
    out: W,
}

impl<W: Write> TarWriter<W> {
    /// An empty archive.
    pub fn new(out: W) -> Self {
        TarWriter { out }
    }

    /// Adds a folder entry (`name` without the trailing `/`), modified at `mtime` (seconds
    /// since the epoch).
    pub fn add_folder(&mut self, name: &str, mtime: u64) -> io::Result<()> {
        let header = header(&format!("{name}/"), 0, b'5', 0o755, mtime)?;
        self.out.write_all(&header)
    }

    /// Adds a regular file of `size` bytes read from `data`, which must give exactly that many,
    /// modified at `mtime`.
    pub fn add_file(
        &mut self,
        name: &str,
        size: u64,
        mtime: u64,
        data: &mut impl Read,
    ) -> io::Result<()> {
        let header = header(name, size, b'0', 0o644, mtime)?;
        self.out.write_all(&header)?;
        let copied = io::copy(&mut data.take(size), &mut self.out)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name}: {copied} bytes read of {size} (the file changed while archived)"),
            ));
        }
        let pad = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
        self.out
            .write_all([0; BLOCK].get(..pad).unwrap_or_default())
    }

    /// Writes the two zero blocks that end an archive and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0; 2 * BLOCK])?;
        Ok(self.out)
    }
}

/// A ustar header block. Names over 100 bytes are split at a `/` into prefix (up to 155) and
/// name; a longer one is an error rather than a silently cut path.
fn header(path: &str, size: u64, kind: u8, mode: u32, mtime: u64) -> io::Result<[u8; BLOCK]> {
    let mut h = [0u8; BLOCK];
    let (prefix, name) = split_name(path).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{path}: too long for a tar member name (ustar: 255 bytes, split at a /)"),
        )
    })?;
    put(&mut h, 0, 100, name.as_bytes());
    octal(&mut h, 100, 8, u64::from(mode));
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    if size < 1 << 33 {
        octal(&mut h, 124, 12, size);
    } else {
        // Base-256: the high bit of the first byte set, the size big-endian in the rest.
        let bytes = size.to_be_bytes();
        put(&mut h, 124, 12, &[0x80, 0, 0, 0]);
        put(&mut h, 128, 8, &bytes);
    }
    octal(&mut h, 136, 12, mtime.min((1 << 33) - 1));
    put(&mut h, 148, 8, b"        ");
    put(&mut h, 156, 1, &[kind]);
    put(&mut h, 257, 6, b"ustar\0");
    put(&mut h, 263, 2, b"00");
    put(&mut h, 345, 155, prefix.as_bytes());
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    octal(&mut h, 148, 7, u64::from(sum));
    Ok(h)
}

fn split_name(path: &str) -> Option<(&str, &str)> {
    if path.len() <= 100 {
        return Some(("", path));
    }
    // The rightmost `/` that leaves a name of at most 100 bytes and a prefix of at most 155.
    path.char_indices()
        .filter(|&(i, c)| c == '/' && i <= 155 && path.len() - i - 1 <= 100 && i > 0)
        .map(|(i, _)| (&path[..i], &path[i + 1..]))
        .next()
}

fn put(h: &mut [u8; BLOCK], at: usize, len: usize, bytes: &[u8]) {
    let n = bytes.len().min(len);
    if let (Some(dst), Some(src)) = (h.get_mut(at..at + n), bytes.get(..n)) {
        dst.copy_from_slice(src);
    }
}

/// `value` in octal, zero-padded to `len - 1` digits and a NUL.
fn octal(h: &mut [u8; BLOCK], at: usize, len: usize, value: u64) {
    let text = format!("{value:0width$o}\0", width = len - 1);
    put(h, at, len, text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tar_gz_reads_back_through_the_archive_reader() {
        let mut tar = TarWriter::new(GzWriter::new(Vec::new()).unwrap());
        tar.add_folder("pkg", 0).unwrap();
        let data = vec![7u8; 1000];
        tar.add_file(
            "pkg/model.safetensors",
            1000,
            1_700_000_000,
            &mut data.as_slice(),
        )
        .unwrap();
        let long = format!("pkg/{}/config.json", "d".repeat(120));
        tar.add_file(&long, 3, 0, &mut &b"{}\n"[..]).unwrap();
        let gz = tar.finish().unwrap().finish().unwrap();
        // Inflate with the reader's library and check the members.
        let raw = miniz_oxide::inflate::decompress_to_vec(&gz[10..gz.len() - 8]).unwrap();
        let crc = u32::from_le_bytes(gz[gz.len() - 8..gz.len() - 4].try_into().unwrap());
        assert_eq!(crc, crc32fast::hash(&raw));
        assert_eq!(raw.len() % 512, 0);
        assert_eq!(&raw[257..262], b"ustar");
        assert_eq!(&raw[512..533], b"pkg/model.safetensors");
        assert_eq!(&raw[1024..2024], &data[..]);
        // The long name is split into prefix and name.
        let third = 512 * 4;
        assert_eq!(&raw[third..third + 11], b"config.json");
        assert!(raw[third + 345..].starts_with(format!("pkg/{}", "d".repeat(120)).as_bytes()));
        // Checksums are right.
        for at in [0, 512, third] {
            let mut h: [u8; 512] = raw[at..at + 512].try_into().unwrap();
            let stored = std::str::from_utf8(&h[148..154]).unwrap().to_string();
            h[148..156].copy_from_slice(b"        ");
            let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
            assert_eq!(u32::from_str_radix(&stored, 8).unwrap(), sum);
        }
    }

    #[test]
    fn sizes_past_8_gib_use_base_256_and_names_too_long_are_refused() {
        let h = header("big.bin", 10 << 30, b'0', 0o644, 0).unwrap();
        assert_eq!(h[124], 0x80);
        assert_eq!(
            u64::from_be_bytes(h[128..136].try_into().unwrap()),
            10 << 30
        );
        assert!(header(&"x".repeat(300), 0, b'0', 0o644, 0).is_err());
    }
}
