//! The one write pipeline every writer of model files shares: `convert` (to safetensors),
//! `export` (to PyTorch), the inference package, and header rewrites.
//!
//! A writer describes *what* it writes (a header, byte ranges of its input, records of an
//! archive); the pipeline owns *how*, the same way for all of them:
//!
//! 1. [`check_output`]: the output is not one of the inputs, and exists only if it may be
//!    replaced.
//! 2. [`Output::create`]: an unnamed temporary file beside the output
//!    ([`crate::fsutil::AtomicFile`]), so a killed writer leaves the old file or nothing.
//! 3. [`Output::check_space`]: the whole output must fit on the output's file system (the
//!    symbolic link's target's, falling back to the output's parent folder) before a byte is
//!    written.
//! 4. [`Output::copy_verified`] (or [`Output::write_all`] for small records): streamed copies
//!    of input ranges (in-kernel, `copy_file_range`) whose bytes are read back and checksummed
//!    as each chunk lands, while [`hash_source`] takes the input's SHA-256 and the checksum of
//!    every range copied on another thread; their writeback to disk starts chunk by chunk, so
//!    the final sync has little left to do.
//! 5. [`Output::commit`]: fsync, atomic placement (never replacing a file that appeared
//!    meanwhile unless asked), fsync of the folder.
//! 6. [`Shards`]: the shard loop's totals, the list of files written (what the window's Undo
//!    removes) and the shard index, written last.
//!
//! A header rewrite (`meta --set`) is the smallest caller: [`Output::create`], the new header
//! with [`Output::write_all`], the old file's data section with [`Output::copy_verified`]
//! (compared with the checksum [`hash_source`] takes of the same range), [`Output::commit`].
//!
//! Owns: [`Output`], [`WriteError`], [`Checksum`], [`Shards`]. Must not import: `convert`,
//! `export`, `package` (it is below them).

mod checksum;
mod copy;
mod error;
mod shards;

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::fsutil::{AtomicFile, Replace};

pub use checksum::{Checksum, SourceHashes, feed_ranges, hash_source};
pub use copy::{COPY_CHUNK, CopyError, CopyFileError, copy_file};
pub use error::WriteError;
pub use shards::{Shards, write_index};

/// Refuses an output that is one of `inputs`, or that exists when it may not be replaced.
pub fn check_output<'a>(
    inputs: impl IntoIterator<Item = &'a Path>,
    output: &Path,
    replace: Replace,
) -> Result<(), WriteError> {
    if let Ok(out) = output.canonicalize() {
        for input in inputs {
            if input.canonicalize().ok().as_ref() == Some(&out) {
                return Err(WriteError::SameAsInput(output.to_path_buf()));
            }
        }
    }
    if replace == Replace::Never && output.exists() {
        return Err(WriteError::Exists(output.to_path_buf()));
    }
    Ok(())
}

/// [`Replace::Always`] when `force`, else [`Replace::Never`].
pub fn replace_if(force: bool) -> Replace {
    if force {
        Replace::Always
    } else {
        Replace::Never
    }
}

/// An output being written: a temporary file that becomes `path` on [`Output::commit`], or
/// vanishes when dropped.
#[derive(Debug)]
pub struct Output {
    path: PathBuf,
    tmp: AtomicFile,
    replace: Replace,
}

impl Output {
    /// Starts writing `path` (its folder must exist).
    pub fn create(path: &Path, replace: Replace) -> Result<Output, WriteError> {
        let tmp = AtomicFile::new(path).map_err(|e| WriteError::io(path, e))?;
        Ok(Output {
            path: path.to_path_buf(),
            tmp,
            replace,
        })
    }

    /// The output as it was named (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file being written.
    pub fn file(&self) -> &File {
        self.tmp.file()
    }

    /// A path that opens the file being written, to read it back before it is committed.
    pub fn reopen_path(&self) -> PathBuf {
        self.tmp.reopen_path()
    }

    /// A write error of this output.
    pub fn io_err(&self, error: std::io::Error) -> WriteError {
        WriteError::io(&self.path, error)
    }

    /// A broken invariant while writing this output.
    pub fn internal(&self, what: impl Into<String>) -> WriteError {
        WriteError::internal(&self.path, what)
    }

    /// The output's file system must hold `need` more bytes. The file system asked is the one
    /// holding the file replaced (a symbolic link's target may be on another file system than
    /// the link), else the output's parent folder, else the current folder.
    pub fn check_space(&self, need: u64) -> Result<(), WriteError> {
        let nonempty = |p: &Path| !p.as_os_str().is_empty();
        let folder = self
            .tmp
            .target()
            .parent()
            .filter(|p| nonempty(p))
            .or_else(|| self.path.parent().filter(|p| nonempty(p)))
            .unwrap_or(Path::new("."));
        check_space_in(folder, &self.path, need)
    }

    /// Writes `bytes` at the file's cursor.
    pub fn write_all(&self, bytes: &[u8]) -> Result<(), WriteError> {
        let mut f = self.tmp.file();
        f.write_all(bytes).map_err(|e| self.io_err(e))
    }

    /// Writes `bytes` at `at`, leaving the cursor alone (a header rewritten in place).
    pub fn write_at(&self, bytes: &[u8], at: u64) -> Result<(), WriteError> {
        write_all_at(self.tmp.file(), bytes, at).map_err(|e| self.io_err(e))
    }

    /// Syncs the data written so far.
    pub fn sync(&self) -> Result<(), WriteError> {
        self.tmp.file().sync_all().map_err(|e| self.io_err(e))
    }

    /// Gives the file its mode, syncs it, links it in as the output and syncs the folder.
    /// Returns the file replaced or created (symbolic links resolved).
    pub fn commit(self) -> Result<PathBuf, WriteError> {
        let path = self.path;
        self.tmp.commit(self.replace).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => WriteError::Exists(path.clone()),
            _ => WriteError::io(&path, e),
        })
    }
}

/// The file system holding `folder` must have `need` bytes free for `output`.
pub fn check_space_in(folder: &Path, output: &Path, need: u64) -> Result<(), WriteError> {
    match crate::fsutil::available_space(folder) {
        Some(available) if available < need => Err(WriteError::NoSpace {
            path: output.to_path_buf(),
            need,
            available,
        }),
        _ => Ok(()),
    }
}

fn write_all_at(file: &File, bytes: &[u8], at: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, bytes, at)
    }
    #[cfg(not(unix))]
    {
        use std::io::Seek as _;
        let mut f = file;
        let back = f.stream_position()?;
        f.seek(std::io::SeekFrom::Start(at))?;
        f.write_all(bytes)?;
        f.seek(std::io::SeekFrom::Start(back)).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Progress;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// The smallest caller: a safetensors header rewrite that copies the data untouched.
    fn rewrite_header(path: &Path, header: &[u8], progress: &Progress) -> Result<(), WriteError> {
        let bytes = std::fs::read(path).unwrap();
        let old_len = u64::from_le_bytes(bytes[..8].try_into().unwrap());
        let data = 8 + old_len..bytes.len() as u64;
        let input = File::open(path).unwrap();
        let out = Output::create(path, Replace::Always)?;
        out.check_space(8 + header.len() as u64 + (data.end - data.start))?;
        out.write_all(&(header.len() as u64).to_le_bytes())?;
        out.write_all(header)?;
        let copied = out
            .copy_verified(&input, data.clone(), progress, &mut |_| Ok(()))
            .map_err(|e| match e {
                CopyError::Write(e) => e,
                CopyError::Source { error, .. } => WriteError::io(path, error),
            })?;
        let (_, sums, _) = hash_source(path, &[Some(data)], &[], progress).unwrap();
        if sums.first().copied().flatten() != Some(copied) {
            return Err(WriteError::mismatch(path, None, "data differs"));
        }
        out.commit().map(|_| ())
    }

    #[test]
    fn a_header_rewrite_copies_the_data_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let header = br#"{"w":{"dtype":"U8","shape":[20000000],"data_offsets":[0,20000000]}}"#;
        let data: Vec<u8> = (0..20_000_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header);
        file.extend_from_slice(&data);
        std::fs::write(&path, &file).unwrap();
        let new = br#"{"__metadata__":{"k":"v"},"w":{"dtype":"U8","shape":[20000000],"data_offsets":[0,20000000]}}  "#;
        let progress = Progress::new();
        rewrite_header(&path, new, &progress).unwrap();
        let back = std::fs::read(&path).unwrap();
        assert_eq!(&back[8..8 + new.len()], new);
        assert_eq!(&back[8 + new.len()..], &data[..]);
        // Written, then read back: every byte twice.
        assert_eq!(progress.done(), 2 * data.len() as u64);
        assert_eq!(names(dir.path()), ["m.safetensors"]);
        // Cancelled part-way: the file is as it was, and nothing else is left.
        let progress = Progress::new();
        progress.cancel();
        let err = rewrite_header(&path, header, &progress).unwrap_err();
        assert!(matches!(err, WriteError::Cancelled), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), back);
        assert_eq!(names(dir.path()), ["m.safetensors"]);
    }

    #[test]
    fn outputs_are_checked_against_inputs_and_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, b"x").unwrap();
        let same = dir.path().join(".").join("a");
        assert!(matches!(
            check_output([a.as_path()], &same, Replace::Always),
            Err(WriteError::SameAsInput(_))
        ));
        let b = dir.path().join("b");
        std::fs::write(&b, b"y").unwrap();
        let err = check_output([a.as_path()], &b, Replace::Never).unwrap_err();
        assert!(matches!(err, WriteError::Exists(_)));
        // The library's words name the file, not a flag of one front end.
        assert_eq!(err.to_string(), format!("{} already exists", b.display()));
        check_output([a.as_path()], &b, Replace::Always).unwrap();
        check_output([a.as_path()], &dir.path().join("c"), Replace::Never).unwrap();
    }

    #[test]
    fn space_is_checked_where_the_file_goes() {
        let dir = tempfile::tempdir().unwrap();
        let out = Output::create(&dir.path().join("big"), Replace::Never).unwrap();
        let err = out.check_space(u64::MAX).unwrap_err();
        assert!(
            matches!(err, WriteError::NoSpace { need: u64::MAX, .. }),
            "{err}"
        );
        out.check_space(1).unwrap();
        // A bare file name: its folder is the current one.
        assert!(check_space_in(Path::new("."), Path::new("x"), u64::MAX).is_err());
    }

    #[test]
    fn the_shard_index_is_written_last_with_the_total() {
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path().join("m.index.json");
        let mut shards = Shards::new(&index);
        shards.add(dir.path().join("a"), 10).unwrap();
        shards.add(dir.path().join("b"), 5).unwrap();
        let mut overflow = shards.clone();
        assert!(matches!(
            overflow.add(dir.path().join("c"), u64::MAX),
            Err(WriteError::TooLarge { .. })
        ));
        let map: std::collections::BTreeMap<&str, &str> = [("w", "a")].into();
        let files = shards
            .finish(&index, Default::default(), &map, Replace::Never)
            .unwrap();
        assert_eq!(files, [dir.path().join("a"), dir.path().join("b")]);
        let text = std::fs::read_to_string(&index).unwrap();
        assert!(text.ends_with("}\n"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["metadata"]["total_size"], 15);
        assert_eq!(v["weight_map"]["w"], "a");
        let again = Shards::new(&index).finish(&index, Default::default(), &map, Replace::Never);
        assert!(matches!(again, Err(WriteError::Exists(_))));
    }

    #[test]
    fn a_copied_file_reads_back_as_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        let data: Vec<u8> = (0..(COPY_CHUNK as u32 + 12345))
            .map(|i| (i % 253) as u8)
            .collect();
        std::fs::write(&from, &data).unwrap();
        let to = dir.path().join("to");
        let n = copy_file(&from, &to, Replace::Never, &Progress::new()).unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(std::fs::read(&to).unwrap(), data);
        let err = copy_file(&from, &to, Replace::Never, &Progress::new()).unwrap_err();
        assert!(
            matches!(err, CopyFileError::Write(WriteError::Exists(_))),
            "{err}"
        );
    }
}
