//! Writing the planned output: the layout, the data (with the source hashed on another
//! thread), the verification pass, the final header, and putting the file in place.
//!
//! Owns: the write pipeline. Must not import: `sharded`.

use std::collections::BTreeMap;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;
use std::time::SystemTime;

use super::plan::{Plan, packed_len, plain_range};
use super::verify::{hash_source, verify, zip_members};
use super::{ConvertError, ConvertOptions, ConvertReport};
use crate::dtype::DType;
use crate::error::Error;
use crate::format::Checkpoint;
use crate::format::gather;
use crate::fsutil::read_exact_at;
use crate::progress::Progress;

/// Header text: `__metadata__` with sorted keys, then tensors in file order, each serialized by
/// the safetensors crate's own `TensorInfo`; spaces pad it to a multiple of 8 bytes.
fn header_json(
    output: &Path,
    metadata: &BTreeMap<String, String>,
    tensors: &[Placed],
) -> Result<Vec<u8>, ConvertError> {
    let json = |e: serde_json::Error| ConvertError::Internal {
        output: output.to_path_buf(),
        what: format!("the header does not serialize: {e}"),
    };
    let mut out = String::from("{\"__metadata__\":");
    out.push_str(&serde_json::to_string(metadata).map_err(json)?);
    for placed in tensors {
        let info = safetensors::tensor::TensorInfo {
            dtype: placed.dtype.to_safetensors(),
            shape: placed.shape.iter().map(|&d| d as usize).collect(),
            data_offsets: (placed.offsets[0] as usize, placed.offsets[1] as usize),
        };
        out.push(',');
        out.push_str(&serde_json::to_string(&placed.name).map_err(json)?);
        out.push(':');
        // The crate's own serialization: {"dtype","shape","data_offsets"} in that order.
        out.push_str(&serde_json::to_string(&info).map_err(json)?);
    }
    out.push('}');
    let mut bytes = out.into_bytes();
    bytes.resize(bytes.len().next_multiple_of(8), b' ');
    Ok(bytes)
}

/// What the header says until the source's hash is known: the final header has the same length.
const PLACEHOLDER_SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A tensor's place in the output's data section.
struct Placed {
    name: String,
    dtype: DType,
    shape: Vec<u64>,
    offsets: [u64; 2],
}

/// Stage 1, layout: every planned tensor packed one after the other, with checked sums.
fn layout(ckpt: &Checkpoint, plan: &Plan<'_>) -> Result<(Vec<Placed>, u64), ConvertError> {
    let mut offset = 0u64;
    let mut placed = Vec::with_capacity(plan.tensors.len());
    for (name, t) in &plan.tensors {
        let end =
            offset
                .checked_add(packed_len(ckpt, t)?)
                .ok_or_else(|| ConvertError::TooLarge {
                    path: ckpt.path.clone(),
                    what: "the total size of the tensors".into(),
                })?;
        placed.push(Placed {
            name: name.clone(),
            dtype: t.dtype,
            shape: t.shape.clone(),
            offsets: [offset, end],
        });
        offset = end;
    }
    Ok((placed, offset))
}

/// The output's metadata: the plan's, and where it came from (the source's hash a placeholder).
fn provenance(ckpt: &Checkpoint, plan: &Plan<'_>, verdict: &str) -> BTreeMap<String, String> {
    let mut metadata = plan.metadata.clone();
    let source_name = ckpt
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    metadata.insert("ckptscope.source".into(), source_name);
    metadata.insert("ckptscope.source_sha256".into(), PLACEHOLDER_SHA.into());
    metadata.insert(
        "ckptscope.converted_at".into(),
        crate::timefmt::rfc3339_utc(SystemTime::now()),
    );
    metadata.insert("ckptscope.version".into(), env!("CARGO_PKG_VERSION").into());
    metadata.insert("ckptscope.scan_verdict".into(), verdict.into());
    metadata.insert(
        "ckptscope.exported".into(),
        plan.exported
            .clone()
            .unwrap_or_else(|| "all tensors".into()),
    );
    metadata
}

/// Writes the planned output to `output`: layout, data (the source hashed meanwhile), read-back
/// verification, final header, then the file put in place.
pub(super) fn write(
    ckpt: &Checkpoint,
    plan: &Plan<'_>,
    output: &Path,
    options: &ConvertOptions,
    progress: &Progress,
) -> Result<ConvertReport, ConvertError> {
    let Some(report) = ckpt.pickle.as_ref() else {
        return Err(ConvertError::Internal {
            output: output.to_path_buf(),
            what: "the input has no pickle report".into(),
        });
    };
    let write_err = |error: std::io::Error| ConvertError::Write {
        path: output.to_path_buf(),
        error,
    };
    let (placed, total) = layout(ckpt, plan)?;
    progress.add_total(total.saturating_mul(2));
    let mut metadata = provenance(ckpt, plan, report.verdict.name());
    let placeholder = header_json(output, &metadata, &placed)?;
    let data_start = 8 + placeholder.len() as u64;
    let need = data_start
        .checked_add(total)
        .ok_or_else(|| ConvertError::TooLarge {
            path: ckpt.path.clone(),
            what: "the output size".into(),
        })?;

    let tmp = crate::fsutil::AtomicFile::new(output).map_err(write_err)?;
    check_space(&tmp, output, need)?;
    let staged = Staged {
        ckpt,
        plan,
        output,
        tmp: &tmp,
        data_start,
        total,
    };
    let sha = staged.write_and_verify(&placeholder, options, progress)?;
    if progress.is_cancelled() {
        return Err(ConvertError::Cancelled);
    }
    metadata.insert("ckptscope.source_sha256".into(), sha.clone());
    staged.finalize_header(&metadata, &placed, placeholder.len())?;
    persist(tmp, output, options.force)?;

    // Lineage links the output back to this input by its hash without reading it again.
    if options.cache != crate::hash::CacheDir::Off {
        let mut cache = crate::hash::HashCache::load(&options.cache);
        cache.put(&ckpt.path, crate::hash::HashKind::File, &sha);
        cache.save();
    }
    Ok(ConvertReport {
        input: ckpt.path.clone(),
        output: output.to_path_buf(),
        verdict: report.verdict,
        exported: plan.exported.clone(),
        left_out: plan.left_out.clone(),
        tensors: plan.tensors.len(),
        bytes: total,
        aliases: plan.aliases.clone(),
        skipped: plan.skipped.clone(),
        source_sha256: sha,
        shards: Vec::new(),
        verified: true,
    })
}

/// Stage 2: the output's file system must hold all of it before anything is written (a symbolic
/// link's target may be on another file system than the link).
fn check_space(
    tmp: &crate::fsutil::AtomicFile,
    output: &Path,
    need: u64,
) -> Result<(), ConvertError> {
    let folder = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let target_folder = tmp
        .target()
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(folder);
    match crate::fsutil::available_space(target_folder) {
        Some(available) if available < need => Err(ConvertError::NoSpace {
            path: output.to_path_buf(),
            need,
            available,
        }),
        _ => Ok(()),
    }
}

/// Stage 6: mode (new: 0666 & !umask; replaced: the old file's), sync, link in, sync the folder.
fn persist(tmp: crate::fsutil::AtomicFile, output: &Path, force: bool) -> Result<(), ConvertError> {
    let replace = if force {
        crate::fsutil::Replace::Always
    } else {
        crate::fsutil::Replace::Never
    };
    tmp.commit(replace).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => ConvertError::Exists(output.to_path_buf()),
        _ => ConvertError::Write {
            path: output.to_path_buf(),
            error: e,
        },
    })?;
    Ok(())
}

/// An output being written: what the middle stages share.
struct Staged<'a> {
    ckpt: &'a Checkpoint,
    plan: &'a Plan<'a>,
    output: &'a Path,
    tmp: &'a crate::fsutil::AtomicFile,
    data_start: u64,
    total: u64,
}

impl Staged<'_> {
    fn write_err(&self, error: std::io::Error) -> ConvertError {
        ConvertError::Write {
            path: self.output.to_path_buf(),
            error,
        }
    }

    fn internal(&self, what: impl Into<String>) -> ConvertError {
        ConvertError::Internal {
            output: self.output.to_path_buf(),
            what: what.into(),
        }
    }

    /// Stages 3 and 4: the header placeholder and the data, while a named thread hashes the
    /// source (positioned reads: its pages do not count against this process's memory) and
    /// takes the CRC-32 of the archive members read; then, while another syncs the data to
    /// disk, every tensor is read back and compared. Returns the source's SHA-256.
    fn write_and_verify(
        &self,
        placeholder: &[u8],
        options: &ConvertOptions,
        progress: &Progress,
    ) -> Result<String, ConvertError> {
        let (ckpt, plan) = (self.ckpt, self.plan);
        let members = zip_members(ckpt, plan)?;
        let crc_ranges: Vec<std::ops::Range<u64>> =
            members.iter().map(|m| m.range.clone()).collect();
        // Packed tensors are plain byte ranges of the input: the hashing pass checksums them on
        // the way, so verification only has to read the output.
        let plain: Vec<Option<std::ops::Range<u64>>> = plan
            .tensors
            .iter()
            .map(|(_, t)| plain_range(ckpt, t))
            .collect();
        std::thread::scope(|scope| -> Result<String, ConvertError> {
            let hasher = std::thread::Builder::new()
                .name("ckptscope-hasher".into())
                .spawn_scoped(scope, || {
                    hash_source(&ckpt.path, &plain, &crc_ranges, progress)
                })
                .map_err(|e| self.internal(format!("cannot start the hashing thread: {e}")))?;
            let mut out = self.tmp.file();
            out.write_all(&(placeholder.len() as u64).to_le_bytes())
                .map_err(|e| self.write_err(e))?;
            out.write_all(placeholder).map_err(|e| self.write_err(e))?;
            let written = self.write_data(out, options, progress)?;
            if written != self.total {
                return Err(
                    self.internal(format!("{written} bytes written, {} expected", self.total))
                );
            }
            let syncer = std::thread::Builder::new()
                .name("ckptscope-syncer".into())
                .spawn_scoped(scope, || self.tmp.file().sync_data())
                .map_err(|e| self.internal(format!("cannot start the sync thread: {e}")))?;
            let tmp_path = self.tmp.reopen_path();
            let sums = verify(ckpt, plan, &plain, &tmp_path, self.data_start, progress);
            let hashed = hasher
                .join()
                .map_err(|_| self.internal("the hashing thread panicked"))?
                .map_err(ConvertError::Open);
            let synced = syncer
                .join()
                .map_err(|_| self.internal("the sync thread panicked"))?;
            let (sha, source_sums, crcs) = hashed?;
            // A damaged member is the most useful thing to report: check it before the copy.
            for (member, crc) in members.iter().zip(&crcs) {
                if !progress.is_cancelled()
                    && let Err(mismatch) = crate::archive::zip::check_crc(&member.entry, *crc)
                {
                    return Err(ConvertError::Damaged {
                        path: ckpt.path.clone(),
                        mismatch,
                        tensors: member.tensors.clone(),
                    });
                }
            }
            let sums = sums?;
            for (((name, _), written), read) in plan.tensors.iter().zip(&sums).zip(&source_sums) {
                if written.is_some() && written != read {
                    return Err(ConvertError::Mismatch {
                        output: self.output.to_path_buf(),
                        tensor: Some(name.clone()),
                        what: "differs from the source".into(),
                    });
                }
            }
            synced.map_err(|e| self.write_err(e))?;
            Ok(sha)
        })
    }

    /// Stage 3: every tensor's packed bytes, in plan order; returns the bytes written.
    fn write_data(
        &self,
        mut out: &std::fs::File,
        options: &ConvertOptions,
        progress: &Progress,
    ) -> Result<u64, ConvertError> {
        let ckpt = self.ckpt;
        let read_err = |e: std::io::Error| ConvertError::Open(Error::io("read", &ckpt.path, e));
        let input = std::fs::File::open(&ckpt.path).map_err(read_err)?;
        let mut written = 0u64;
        let mut buf = Vec::with_capacity(gather::CHUNK);
        for (name, t) in &self.plan.tensors {
            let mut emit = |chunk: &[u8], out: &mut &std::fs::File| -> Result<(), ConvertError> {
                if progress.is_cancelled() {
                    return Err(ConvertError::Cancelled);
                }
                if let Some(limit) = options.fail_after
                    && written + chunk.len() as u64 > limit
                {
                    return Err(self.write_err(std::io::Error::other("injected write failure")));
                }
                out.write_all(chunk).map_err(|e| self.write_err(e))?;
                written += chunk.len() as u64;
                progress.add_done(chunk.len() as u64);
                Ok(())
            };
            match plain_range(ckpt, t) {
                Some(range) if options.fail_after.is_none() => {
                    // In-kernel copy (copy_file_range) of a packed tensor.
                    let mut at = range.start;
                    while at < range.end {
                        if progress.is_cancelled() {
                            return Err(ConvertError::Cancelled);
                        }
                        let n = (range.end - at).min(COPY_CHUNK);
                        let mut src = &input;
                        src.seek(SeekFrom::Start(at)).map_err(read_err)?;
                        let copied = std::io::copy(&mut src.take(n), &mut out)
                            .map_err(|e| self.write_err(e))?;
                        if copied != n {
                            return Err(ConvertError::Gather {
                                path: ckpt.path.clone(),
                                tensor: name.clone(),
                                reason: "the input ended early (it changed on disk?)".into(),
                            });
                        }
                        at += n;
                        written += n;
                        progress.add_done(n);
                    }
                }
                Some(range) => {
                    let mut at = range.start;
                    while at < range.end {
                        let n = (range.end - at).min(gather::CHUNK as u64) as usize;
                        buf.resize(n, 0);
                        read_exact_at(&input, &mut buf, at).map_err(read_err)?;
                        emit(&buf, &mut out)?;
                        at += n as u64;
                    }
                }
                None => {
                    let region = ckpt.tensor_bytes(t)?;
                    gather::for_each_chunk(t, region, gather::CHUNK, &mut |chunk| {
                        emit(chunk, &mut out)
                    })
                    .map_err(|e| ConvertError::Gather {
                        path: ckpt.path.clone(),
                        tensor: name.clone(),
                        reason: e.to_string(),
                    })??;
                }
            }
        }
        Ok(written)
    }

    /// Stage 5: the real header (the source's hash in place of the placeholder, same length),
    /// synced, and read back with every key.
    fn finalize_header(
        &self,
        metadata: &BTreeMap<String, String>,
        placed: &[Placed],
        placeholder_len: usize,
    ) -> Result<(), ConvertError> {
        let header = header_json(self.output, metadata, placed)?;
        if header.len() != placeholder_len {
            return Err(self.internal(format!(
                "the final header is {} bytes, the placeholder {placeholder_len}",
                header.len()
            )));
        }
        let mut file = self.tmp.file();
        file.seek(SeekFrom::Start(8))
            .map_err(|e| self.write_err(e))?;
        file.write_all(&header).map_err(|e| self.write_err(e))?;
        file.sync_all().map_err(|e| self.write_err(e))?;
        let check = crate::format::open(&self.tmp.reopen_path()).map_err(|error| {
            ConvertError::ReadBack {
                error: Box::new(error),
            }
        })?;
        for (k, v) in metadata {
            if check.metadata_value(k) != Some(v.as_str()) {
                return Err(ConvertError::Mismatch {
                    output: self.output.to_path_buf(),
                    tensor: None,
                    what: format!("metadata `{k}` did not read back"),
                });
            }
        }
        Ok(())
    }
}

/// Bytes copied per `copy_file_range` round (cancel and progress are checked in between).
pub(super) const COPY_CHUNK: u64 = 64 << 20;
