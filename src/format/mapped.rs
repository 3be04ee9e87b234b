//! A read-only memory map of one file, and the checks that keep it honest.
//!
//! Mapping costs nothing up front: the operating system reads a page only when it is touched, so
//! a 100 GB checkpoint opens as fast as a 1 KB one and only the bytes actually decoded are read.
//! The price is that the map reflects the file as it is *now*: if another program truncates the
//! file, touching a page past the new end raises SIGBUS. ckptscope therefore records the size at
//! open, refuses a file whose size changed while it was being mapped, and re-checks the size
//! (one `fstat`) before every access to tensor bytes.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::Error;

/// A file opened read-only and mapped into memory.
#[derive(Debug)]
pub struct MappedFile {
    path: PathBuf,
    file: File,
    len: u64,
    /// `None` for an empty file (there is nothing to map).
    map: Option<Mmap>,
}

impl MappedFile {
    /// Opens and maps `path`.
    pub fn open(path: &Path) -> Result<MappedFile, Error> {
        Self::open_with(path, |_| {})
    }

    /// Opens and maps `path`, running `between` after the size is read and before the file is
    /// mapped. Tests use it to change the file at the worst moment.
    pub(crate) fn open_with(path: &Path, between: impl FnOnce(&Path)) -> Result<MappedFile, Error> {
        let (file, meta) = open_regular(path)?;
        let len = meta.len();
        between(path);
        let map = if len == 0 {
            None
        } else {
            Some(map_file(&file, path)?)
        };
        let mapped = MappedFile {
            path: path.to_path_buf(),
            file,
            len,
            map,
        };
        let map_len = mapped.map.as_ref().map_or(0, |m| m.len() as u64);
        if map_len != len {
            return Err(Error::Changed {
                path: path.to_path_buf(),
                expected: len,
                actual: map_len,
            });
        }
        mapped.check_unchanged()?;
        Ok(mapped)
    }

    /// The whole file. Callers that touch bytes long after opening call
    /// [`MappedFile::check_unchanged`] first.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// File length when it was opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fails if the file no longer has the size it had when it was opened (a truncated file
    /// would crash the process with SIGBUS when its missing pages are touched).
    pub fn check_unchanged(&self) -> Result<(), Error> {
        let actual = self
            .file
            .metadata()
            .map_err(|e| Error::io("read", &self.path, e))?
            .len();
        if actual == self.len {
            Ok(())
        } else {
            Err(Error::Changed {
                path: self.path.clone(),
                expected: self.len,
                actual,
            })
        }
    }
}

/// Opens a user-given path for reading, refusing anything but a regular file (a folder, a FIFO,
/// a socket, a device such as `/dev/zero`) with a message that says what it is.
///
/// The type is checked before opening, because opening a FIFO for reading blocks until a writer
/// appears. The open itself is non-blocking, so a FIFO swapped in after the check cannot block
/// either, and the opened file is checked again.
pub fn open_regular(path: &Path) -> Result<(File, std::fs::Metadata), Error> {
    let refuse = |kind: &str| {
        Error::io(
            "open",
            path,
            std::io::Error::other(format!(
                "it is {kind}, not a regular file; ckptscope reads only regular files"
            )),
        )
    };
    let before = std::fs::metadata(path).map_err(|e| Error::io("open", path, e))?;
    if !before.is_file() {
        return Err(refuse(file_kind(&before.file_type())));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| Error::io("open", path, e))?;
    let meta = file.metadata().map_err(|e| Error::io("read", path, e))?;
    if !meta.is_file() {
        return Err(refuse(file_kind(&meta.file_type())));
    }
    Ok((file, meta))
}

/// `a folder`, `a FIFO (named pipe)`, `a device`... for messages.
pub fn file_kind(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
    }
    if kind.is_dir() {
        "a folder"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

#[allow(unsafe_code)]
fn map_file(file: &File, path: &Path) -> Result<Mmap, Error> {
    // SAFETY: the map is read-only and ckptscope never writes through it. If another process
    // modifies the file, bytes read later may change under us: every value read from the map is
    // bounds-checked and treated as untrusted, so the result is wrong numbers, never memory
    // unsafety in our code. If the file is truncated, touching pages past the new end raises
    // SIGBUS; `check_unchanged` runs before every access to narrow that window to the time of
    // one decode.
    unsafe { Mmap::map(file) }.map_err(|e| Error::io("map", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn rejects_a_file_that_changes_size_between_open_and_map() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("growing.safetensors");
        std::fs::write(&path, b"0123456789").unwrap();
        let err = MappedFile::open_with(&path, |p| {
            let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
            f.write_all(b"more bytes").unwrap();
        })
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("changed on disk") && msg.contains("10 bytes") && msg.contains("20 bytes"),
            "{msg}"
        );
    }

    #[test]
    fn notices_truncation_after_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shrinking.bin");
        std::fs::write(&path, vec![7u8; 4096]).unwrap();
        let mapped = MappedFile::open(&path).unwrap();
        assert!(mapped.check_unchanged().is_ok());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(100)
            .unwrap();
        assert!(matches!(
            mapped.check_unchanged(),
            Err(Error::Changed {
                expected: 4096,
                actual: 100,
                ..
            })
        ));
    }

    #[test]
    fn empty_file_maps_to_no_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty");
        std::fs::write(&path, b"").unwrap();
        let mapped = MappedFile::open(&path).unwrap();
        assert!(mapped.bytes().is_empty());
    }
}
