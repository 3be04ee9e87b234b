//! Writing files the way a careful tool writes them: every file ckptscope writes (a converted
//! model, a rewritten header, an index, the hash cache) goes through [`AtomicFile`].
//!
//! - The new content is written to a temporary file in the destination's folder and only then
//!   put in place, so readers see the old file or the new one, never a mix. On Linux the
//!   temporary file is unnamed (`O_TMPFILE`): a process killed with SIGKILL leaves nothing
//!   behind. Elsewhere, and on file systems without `O_TMPFILE`, it is a hidden named file that
//!   is removed on every error path (only a kill can leave it).
//! - A new file gets `0666 & !umask`, like `cp` or `touch`; a replaced file keeps its mode (and
//!   its owner, where the system allows).
//! - A symbolic link is followed and its target replaced: the link stays a link (the Hugging
//!   Face cache keeps `snapshots/<rev>/model.safetensors -> ../../blobs/<sha>`).
//! - The file and then its folder are synced before [`AtomicFile::commit`] returns.
//!
//! The trade-off: replacing a file is rename-based, so a hard link to the old file keeps the old
//! content (as with `sed -i` or an editor's safe save).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Whether [`AtomicFile::commit`] may replace an existing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replace {
    /// Replace whatever is there.
    Always,
    /// Fail with [`io::ErrorKind::AlreadyExists`] when the destination exists (checked
    /// atomically, at the moment the file is put in place).
    Never,
}

/// A file being written, put in place by [`AtomicFile::commit`]. Dropping it without committing
/// removes every trace of it.
#[derive(Debug)]
pub struct AtomicFile {
    file: File,
    /// The path replaced: the destination with symbolic links resolved.
    target: PathBuf,
    /// The folder of `target`.
    folder: PathBuf,
    temp: Temp,
    /// Mode and owner of the file being replaced.
    original: Option<Original>,
    committed: bool,
}

#[derive(Debug)]
enum Temp {
    /// `O_TMPFILE`: no name until it is linked in.
    #[cfg(target_os = "linux")]
    Unnamed,
    /// A hidden file in the destination's folder.
    Named(PathBuf),
}

#[derive(Clone, Copy, Debug)]
struct Original {
    mode: u32,
    #[cfg(unix)]
    uid: u32,
    #[cfg(unix)]
    gid: u32,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The path a write to `path` should replace: `path` itself, or the file its symbolic links
/// lead to. A link whose target is missing is an error (writing would silently create a file
/// somewhere the user did not name).
pub fn resolve_target(path: &Path) -> io::Result<PathBuf> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("it is a symbolic link whose target cannot be reached ({e})"),
            )
        }),
        Ok(_) => Ok(path.to_path_buf()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(path.to_path_buf()),
        Err(e) => Err(e),
    }
}

fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

impl AtomicFile {
    /// Starts writing a file that will replace (or create) `path`.
    pub fn new(path: &Path) -> io::Result<AtomicFile> {
        Self::with_temp(path, true)
    }

    fn with_temp(path: &Path, allow_unnamed: bool) -> io::Result<AtomicFile> {
        let target = resolve_target(path)?;
        let folder = folder_of(&target);
        let original = match std::fs::metadata(&target) {
            Ok(meta) if meta.is_dir() => {
                return Err(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    "it is a directory",
                ));
            }
            Ok(meta) => Some(original_of(&meta)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let (file, temp) = create_temp(&folder, allow_unnamed)?;
        Ok(AtomicFile {
            file,
            target,
            folder,
            temp,
            original,
            committed: false,
        })
    }

    /// The file being written (opened for reading and writing).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The file being written, mutably (for `Write` adapters that want `&mut File`).
    pub fn file_mut(&mut self) -> &mut File {
        &mut self.file
    }

    /// The file that will be replaced or created (symbolic links resolved).
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// A path that opens the file being written, to read it back before committing: the hidden
    /// name, or `/proc/self/fd/N` for an unnamed file.
    pub fn reopen_path(&self) -> PathBuf {
        match &self.temp {
            #[cfg(target_os = "linux")]
            Temp::Unnamed => {
                use std::os::fd::AsRawFd;
                PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
            }
            Temp::Named(p) => p.clone(),
        }
    }

    /// True when the file being written has no name (nothing to clean up even after a kill).
    pub fn is_unnamed(&self) -> bool {
        !matches!(self.temp, Temp::Named(_))
    }

    /// Gives the file its final mode, syncs it, puts it in place and syncs the folder.
    pub fn commit(mut self, replace: Replace) -> io::Result<PathBuf> {
        if let Some(original) = self.original {
            apply_original(&self.file, original)?;
        }
        self.file.sync_all()?;
        match &self.temp {
            #[cfg(target_os = "linux")]
            Temp::Unnamed => {
                let proc_path = self.reopen_path();
                match replace {
                    Replace::Never => link_unnamed(&proc_path, &self.target)?,
                    Replace::Always => match link_unnamed(&proc_path, &self.target) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                            // linkat cannot replace: link under a hidden name, then rename over.
                            let hidden = link_hidden(&proc_path, &self.folder)?;
                            if let Err(e) = std::fs::rename(&hidden, &self.target) {
                                let _ = std::fs::remove_file(&hidden);
                                return Err(e);
                            }
                        }
                        Err(e) => return Err(e),
                    },
                }
            }
            Temp::Named(temp) => match replace {
                Replace::Always => std::fs::rename(temp, &self.target)?,
                Replace::Never => {
                    // A hard link fails if the destination exists; then the name goes. File
                    // systems without hard links get a check then a rename (a small race).
                    match std::fs::hard_link(temp, &self.target) {
                        Ok(()) => std::fs::remove_file(temp)?,
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(e),
                        Err(_) if std::fs::symlink_metadata(&self.target).is_ok() => {
                            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
                        }
                        Err(_) => std::fs::rename(temp, &self.target)?,
                    }
                }
            },
        }
        self.committed = true;
        sync_folder(&self.folder)?;
        Ok(self.target.clone())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Temp::Named(p) = &self.temp
            && !self.committed
        {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Writes a whole file through [`AtomicFile`]: `write` fills it, then it is committed.
pub fn atomic_write(
    path: &Path,
    replace: Replace,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<PathBuf> {
    let mut file = AtomicFile::new(path)?;
    write(file.file_mut())?;
    file.commit(replace)
}

/// Bytes an unprivileged process may still write on the file system holding `path`, when the
/// system says (`statvfs`).
pub fn available_space(path: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        let s = rustix::fs::statvfs(path).ok()?;
        s.f_bavail.checked_mul(s.f_frsize)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Renames `from` to `to` unless `to` exists (then [`io::ErrorKind::AlreadyExists`], and
/// nothing moved). On Linux the kernel decides (`RENAME_NOREPLACE`), so a file or an empty
/// folder created at `to` at the same instant is never replaced; where the flag is not
/// supported (other systems, a file system that refuses it) `to` is looked at first, which
/// leaves that instant open.
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(e) if e == rustix::io::Errno::EXIST => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} already exists", to.display()),
                ));
            }
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {}
            Err(e) => return Err(e.into()),
        }
    }
    if to.symlink_metadata().is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} already exists", to.display()),
        ));
    }
    std::fs::rename(from, to)
}

/// Syncs a folder so a rename or link in it survives a crash. File systems that cannot sync a
/// folder (they answer "invalid" or "unsupported") are taken at their word.
pub fn sync_folder(folder: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let dir = File::open(folder)?;
        match dir.sync_all() {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported
                ) =>
            {
                Ok(())
            }
            other => other,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = folder;
        Ok(())
    }
}

fn original_of(meta: &std::fs::Metadata) -> Original {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Original {
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        }
    }
    #[cfg(not(unix))]
    {
        Original {
            mode: if meta.permissions().readonly() {
                0o444
            } else {
                0o666
            },
        }
    }
}

fn apply_original(file: &File, original: Original) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Owner first: changing it can clear set-id bits, which the mode then restores. Only
        // root may give a file away; for anyone else the file stays theirs, as with `cp`.
        let _ = std::os::unix::fs::fchown(file, Some(original.uid), Some(original.gid));
        file.set_permissions(std::fs::Permissions::from_mode(original.mode))
    }
    #[cfg(not(unix))]
    {
        let mut p = file.metadata()?.permissions();
        p.set_readonly(original.mode & 0o222 == 0);
        file.set_permissions(p)
    }
}

fn hidden_name(folder: &Path) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    folder.join(format!(
        ".ckptscope-{}-{n}-{nanos:08x}.tmp",
        std::process::id()
    ))
}

fn create_temp(folder: &Path, allow_unnamed: bool) -> io::Result<(File, Temp)> {
    #[cfg(not(target_os = "linux"))]
    let _ = allow_unnamed;
    #[cfg(target_os = "linux")]
    if allow_unnamed && let Some(file) = create_unnamed(folder) {
        return Ok((file, Temp::Unnamed));
    }
    let mut last = None;
    for _ in 0..100 {
        let path = hidden_name(folder);
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o666);
        match options.open(&path) {
            Ok(file) => return Ok((file, Temp::Named(path))),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

/// An `O_TMPFILE` file in `folder` (mode `0666 & !umask`, applied by the kernel), if the file
/// system supports it and `/proc/self/fd` is there to link it in later.
#[cfg(target_os = "linux")]
fn create_unnamed(folder: &Path) -> Option<File> {
    use rustix::fs::{Mode, OFlags};
    use std::os::fd::AsRawFd;
    let fd = rustix::fs::open(
        folder,
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o666),
    )
    .ok()?;
    let file = File::from(fd);
    std::fs::metadata(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
    Some(file)
}

#[cfg(target_os = "linux")]
fn link_unnamed(proc_path: &Path, to: &Path) -> io::Result<()> {
    rustix::fs::linkat(
        rustix::fs::CWD,
        proc_path,
        rustix::fs::CWD,
        to,
        rustix::fs::AtFlags::SYMLINK_FOLLOW,
    )
    .map_err(io::Error::from)
}

#[cfg(target_os = "linux")]
fn link_hidden(proc_path: &Path, folder: &Path) -> io::Result<PathBuf> {
    let mut last = None;
    for _ in 0..100 {
        let hidden = hidden_name(folder);
        match link_unnamed(proc_path, &hidden) {
            Ok(()) => return Ok(hidden),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

/// Fills `buf` from `file` at offset `at` (a positioned read: the file's cursor is not used
/// on Unix).
pub fn read_exact_at(file: &std::fs::File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
    }
    #[cfg(not(unix))]
    {
        let mut f = file;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(at))?;
        std::io::Read::read_exact(&mut f, buf)
    }
}

/// Serializes a path as a JSON string even when it is not UTF-8 (a file name in another
/// encoding, bytes from a hostile archive): invalid bytes become U+FFFD, as `Path::display`
/// shows them, instead of failing the whole report.
pub fn serialize_path<S: serde::Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

/// [`serialize_path`] for an optional path.
pub fn serialize_opt_path<S: serde::Serializer>(
    path: &Option<PathBuf>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match path {
        Some(p) => s.serialize_some(&*p.to_string_lossy()),
        None => s.serialize_none(),
    }
}

/// [`serialize_path`] for a list of paths.
pub fn serialize_paths<S: serde::Serializer>(paths: &[PathBuf], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(paths.iter().map(|p| p.to_string_lossy()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_noreplace_never_replaces_a_file_or_an_empty_folder() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("built");
        std::fs::create_dir(&from).unwrap();
        std::fs::write(from.join("a"), b"x").unwrap();
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"keep").unwrap();
        for to in [&empty, &file] {
            let e = rename_noreplace(&from, to).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{}", to.display());
        }
        assert!(from.join("a").is_file(), "nothing moved");
        assert_eq!(std::fs::read(&file).unwrap(), b"keep");
        let to = dir.path().join("target");
        rename_noreplace(&from, &to).unwrap();
        assert!(to.join("a").is_file());
    }
    use std::io::{Read as _, Write as _};

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_replaces_and_refuses_to_clobber() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        atomic_write(&path, Replace::Never, |f| f.write_all(b"one")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        let err = atomic_write(&path, Replace::Never, |f| f.write_all(b"two")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        atomic_write(&path, Replace::Always, |f| f.write_all(b"three")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"three");
        assert_eq!(names(dir.path()), ["a.txt"]);
    }

    #[test]
    fn an_abandoned_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.bin");
        let mut f = AtomicFile::new(&path).unwrap();
        f.file_mut().write_all(b"partial").unwrap();
        // The content can be read back before it is committed.
        let mut back = Vec::new();
        File::open(f.reopen_path())
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, b"partial");
        drop(f);
        assert!(names(dir.path()).is_empty());
        let err = atomic_write(&path, Replace::Always, |_| Err(io::Error::other("boom")));
        assert!(err.is_err());
        assert!(names(dir.path()).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn the_named_fallback_writes_refuses_to_clobber_and_cleans_up() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n");
        let mut f = AtomicFile::with_temp(&path, false).unwrap();
        assert!(!f.is_unnamed());
        f.file_mut().write_all(b"one").unwrap();
        f.commit(Replace::Never).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o602)).unwrap();
        let mut f = AtomicFile::with_temp(&path, false).unwrap();
        f.file_mut().write_all(b"two").unwrap();
        let err = f.commit(Replace::Never).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        let mut f = AtomicFile::with_temp(&path, false).unwrap();
        f.file_mut().write_all(b"three").unwrap();
        drop(f);
        assert_eq!(names(dir.path()), ["n"]);
        let mut f = AtomicFile::with_temp(&path, false).unwrap();
        f.file_mut().write_all(b"four").unwrap();
        f.commit(Replace::Always).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"four");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o602
        );
        assert_eq!(names(dir.path()), ["n"]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_temporary_file_is_unnamed_where_the_system_allows() {
        let dir = tempfile::tempdir().unwrap();
        let f = AtomicFile::new(&dir.path().join("c")).unwrap();
        // ext4, xfs, btrfs and tmpfs all support O_TMPFILE.
        assert!(f.is_unnamed());
        assert!(names(dir.path()).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn rewrites_keep_the_mode_and_write_through_symlinks() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let blob = dir.path().join("blob");
        std::fs::write(&blob, b"old").unwrap();
        std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("blob", &link).unwrap();
        let written = atomic_write(&link, Replace::Always, |f| f.write_all(b"new")).unwrap();
        assert_eq!(written, blob.canonicalize().unwrap());
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&link).unwrap(), b"new");
        let mode = std::fs::metadata(&blob).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        // A link to nothing is refused rather than followed into a new file.
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink("missing", &dangling).unwrap();
        assert!(atomic_write(&dangling, Replace::Always, |_| Ok(())).is_err());
        assert!(!dir.path().join("missing").exists());
    }

    #[test]
    fn free_space_is_known() {
        #[cfg(unix)]
        assert!(available_space(Path::new(".")).is_some_and(|n| n > 0));
    }
}
