//! Streamed, verified copies of input ranges into an [`Output`]: each chunk is copied in the
//! kernel (`copy_file_range`: no trip through this process's memory), then read back and
//! checksummed by a thread of its own, a chunk behind the copy, while it is still in the page
//! cache: the read-back overlaps copying the next chunk, and the final sync is what is left.
//!
//! Owns: [`Output::copy_verified`], [`Output::write_verified`], [`copy_file`]. Must not import: the other files of `pipeline` but
//! `error` (through `mod.rs`).
//!
//! The trade-off: the read-back reads the page cache, as a read-back right after writing
//! always does; it proves the bytes the kernel holds for the output are the input's, not that
//! the disk kept them (the sync's answer says that).

use std::fs::File;
use std::io::{Seek as _, SeekFrom};
use std::ops::Range;
use std::path::Path;

use super::{Checksum, Output, WriteError};
use crate::fsutil::read_exact_at;
use crate::progress::Progress;

/// Bytes copied per round (cancel and progress are checked in between, and each round's
/// writeback starts once it is read back): small enough that the read-back finds it in the
/// cache and the disk starts early, large enough that system calls cost nothing.
pub const COPY_CHUNK: u64 = 8 << 20;

/// Why a copy stopped.
#[derive(Debug)]
pub enum CopyError {
    /// Writing the output failed, or the user cancelled ([`WriteError::Cancelled`]).
    Write(WriteError),
    /// The input could not be read at byte `at` (it ended early: it changed on disk?).
    Source {
        /// The input offset of the chunk.
        at: u64,
        /// The system's answer.
        error: std::io::Error,
    },
}

impl From<WriteError> for CopyError {
    fn from(e: WriteError) -> Self {
        CopyError::Write(e)
    }
}

impl Output {
    /// Appends `range` of `input` at the output's cursor and reads it back, returning the
    /// [`Checksum`] of the bytes read back (compare it with the one [`super::hash_source`]
    /// takes of the same range). `before_chunk` is called with each chunk's length before it
    /// is written (a writer's own accounting, a test's injected failure). `progress` gets
    /// every byte twice: written, then read back.
    pub fn copy_verified(
        &self,
        input: &File,
        range: Range<u64>,
        progress: &Progress,
        before_chunk: &mut dyn FnMut(u64) -> Result<(), WriteError>,
    ) -> Result<u64, CopyError> {
        let mut out = self.file();
        let start = out.stream_position().map_err(|e| self.io_err(e))?;
        // The read-back runs on a thread of its own, a chunk behind the copy, so reading each
        // chunk back and checksumming it overlaps copying the next (the order of the chunks,
        // and so the checksum, is the channel's).
        let (out_at, sum) = std::thread::scope(|scope| -> Result<(u64, u64), CopyError> {
            let (chunks, read_back) = std::sync::mpsc::sync_channel::<(u64, usize)>(2);
            let file: &File = out;
            let verifier = scope.spawn(move || -> std::io::Result<u64> {
                let mut sum = Checksum::default();
                let mut buf = Vec::new();
                for (at, len) in read_back {
                    buf.resize(len, 0);
                    read_exact_at(file, &mut buf, at)?;
                    sum.update(&buf);
                    progress.add_done(len as u64);
                }
                Ok(sum.finish())
            });
            let mut buf = Vec::new();
            let mut at = range.start;
            let mut out_at = start;
            let mut in_kernel = cfg!(target_os = "linux");
            while at < range.end {
                if progress.is_cancelled() {
                    return Err(WriteError::Cancelled.into());
                }
                let n = (range.end - at).min(COPY_CHUNK);
                before_chunk(n)?;
                let len =
                    usize::try_from(n).map_err(|_| self.internal("a chunk overflows usize"))?;
                if in_kernel {
                    match copy_in_kernel(input, at, file, out_at, n) {
                        Ok(()) => {}
                        // Not on this file system (or across two): the portable route from here.
                        Err(Failure::Unsupported) => in_kernel = false,
                        Err(Failure::Source(error)) => return Err(CopyError::Source { at, error }),
                        Err(Failure::Output(e)) => return Err(self.io_err(e).into()),
                    }
                }
                if !in_kernel {
                    buf.resize(len, 0);
                    read_exact_at(input, &mut buf, at)
                        .map_err(|error| CopyError::Source { at, error })?;
                    super::write_all_at(file, &buf, out_at).map_err(|e| self.io_err(e))?;
                }
                progress.add_done(n);
                if chunks.send((out_at, len)).is_err() {
                    // The verifier stopped on a read error: its answer says which.
                    break;
                }
                at += n;
                out_at += n;
            }
            drop(chunks);
            let sum = verifier
                .join()
                .map_err(|_| self.internal("the read-back thread panicked"))?
                .map_err(|e| self.io_err(e))?;
            Ok((out_at, sum))
        })?;
        out.seek(SeekFrom::Start(out_at))
            .map_err(|e| self.io_err(e))?;
        Ok(sum)
    }

    /// Appends `chunk` at the cursor and reads it straight back: a [`WriteError::Mismatch`]
    /// (naming `tensor`) when the file does not hold what was written. `buf` is scratch space.
    pub fn write_verified(
        &self,
        chunk: &[u8],
        tensor: Option<&str>,
        buf: &mut Vec<u8>,
    ) -> Result<(), WriteError> {
        let mut out = self.file();
        let at = out.stream_position().map_err(|e| self.io_err(e))?;
        std::io::Write::write_all(&mut out, chunk).map_err(|e| self.io_err(e))?;
        buf.resize(chunk.len(), 0);
        read_exact_at(out, buf, at).map_err(|e| self.io_err(e))?;
        if buf.as_slice() != chunk {
            return Err(WriteError::mismatch(
                &self.path,
                tensor,
                "differs from what was written",
            ));
        }
        Ok(())
    }

    /// Starts writing `len` bytes at `at` to disk without waiting (`POSIX_FADV_DONTNEED`
    /// starts the writeback of dirty pages, then drops the clean ones: those were read back
    /// already). Advice only: a system that ignores it syncs everything at the commit.
    pub fn start_writeback(&self, at: u64, len: u64) {
        #[cfg(target_os = "linux")]
        if let Some(len) = std::num::NonZeroU64::new(len) {
            let _ = rustix::fs::fadvise(self.file(), at, Some(len), rustix::fs::Advice::DontNeed);
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (at, len);
    }
}

enum Failure {
    Unsupported,
    Source(std::io::Error),
    Output(std::io::Error),
}

/// `n` bytes from `input` at `at` to `out` at `out_at`, in the kernel.
#[cfg(target_os = "linux")]
fn copy_in_kernel(input: &File, at: u64, out: &File, out_at: u64, n: u64) -> Result<(), Failure> {
    let (mut src, mut dst) = (at, out_at);
    let end = at + n;
    while src < end {
        let want = usize::try_from(end - src).unwrap_or(usize::MAX);
        match rustix::fs::copy_file_range(input, Some(&mut src), out, Some(&mut dst), want) {
            Ok(0) => {
                return Err(Failure::Source(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the input ended early (it changed on disk?)",
                )));
            }
            Ok(_) => {}
            Err(e)
                if src == at
                    && [
                        rustix::io::Errno::XDEV,
                        rustix::io::Errno::INVAL,
                        rustix::io::Errno::NOSYS,
                        rustix::io::Errno::OPNOTSUPP,
                    ]
                    .contains(&e) =>
            {
                return Err(Failure::Unsupported);
            }
            Err(e) if e == rustix::io::Errno::IO => return Err(Failure::Source(e.into())),
            Err(e) => return Err(Failure::Output(e.into())),
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn copy_in_kernel(_: &File, _: u64, _: &File, _: u64, _: u64) -> Result<(), Failure> {
    Err(Failure::Unsupported)
}

/// Why [`copy_file`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyFileError {
    /// The source cannot be read (or changed while it was copied).
    #[error(transparent)]
    Source(#[from] crate::error::Error),
    /// The copy cannot be written, or did not read back as the source.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Copies the file `from` to `to` through the pipeline: space checked, copied in the kernel,
/// read back and compared with a checksum of the source taken on another thread, synced and
/// linked in (never replacing a file unless `replace` says so). Returns the bytes copied.
pub fn copy_file(
    from: &Path,
    to: &Path,
    replace: crate::fsutil::Replace,
    progress: &Progress,
) -> Result<u64, CopyFileError> {
    use crate::error::Error;
    let input = File::open(from).map_err(|e| Error::io("open", from, e))?;
    let len = input
        .metadata()
        .map_err(|e| Error::io("read", from, e))?
        .len();
    let out = Output::create(to, replace)?;
    out.check_space(len)?;
    let (source, copied) = std::thread::scope(|scope| {
        let summer = std::thread::Builder::new()
            .name("ckptscope-hasher".into())
            .spawn_scoped(scope, || checksum_range(&input, from, 0..len, progress))
            .map_err(|e| out.internal(format!("cannot start the hashing thread: {e}")))?;
        let copied = out.copy_verified(&input, 0..len, progress, &mut |_| Ok(()));
        let source = summer
            .join()
            .map_err(|_| out.internal("the hashing thread panicked"))?;
        Ok::<_, WriteError>((source, copied))
    })?;
    let copied = copied.map_err(|e| match e {
        CopyError::Write(e) => CopyFileError::Write(e),
        CopyError::Source { at, error } => {
            CopyFileError::Source(Error::io("read", from, at_byte(at, error)))
        }
    })?;
    let source = source?;
    if progress.is_cancelled() {
        return Err(WriteError::Cancelled.into());
    }
    if copied != source {
        return Err(WriteError::mismatch(to, None, "differs from the source").into());
    }
    let after = File::open(from)
        .and_then(|f| f.metadata())
        .map_err(|e| Error::io("read", from, e))?;
    if after.len() != len {
        return Err(Error::io(
            "read",
            from,
            std::io::Error::other(format!(
                "it changed while it was copied ({len} bytes, then {})",
                after.len()
            )),
        )
        .into());
    }
    out.commit()?;
    Ok(len)
}

fn at_byte(at: u64, error: std::io::Error) -> std::io::Error {
    std::io::Error::new(error.kind(), format!("at byte {at}: {error}"))
}

/// The [`Checksum`] of `range` of `file`, read with positioned reads.
fn checksum_range(
    file: &File,
    path: &Path,
    range: Range<u64>,
    progress: &Progress,
) -> Result<u64, crate::error::Error> {
    let mut sum = Checksum::default();
    let mut buf = vec![0u8; 1 << 22];
    let mut at = range.start;
    while at < range.end && !progress.is_cancelled() {
        let n = (range.end - at).min(buf.len() as u64) as usize;
        let chunk = buf.get_mut(..n).unwrap_or_default();
        read_exact_at(file, chunk, at)
            .map_err(|e| crate::error::Error::io("read", path, at_byte(at, e)))?;
        sum.update(chunk);
        at += n as u64;
    }
    Ok(sum.finish())
}
