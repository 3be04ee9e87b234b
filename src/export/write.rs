//! Writing the planned archive: the records in torch's order, the storages streamed from the
//! input while another thread hashes it, the provenance record, the read-back, and putting the
//! file in place.
//!
//! Owns: the write pipeline and the read-back. Must not import: `sharded`.
//!
//! `clippy::indexing_slicing` is allowed here: buffers are cut to lengths bounded by their own
//! size, and a SHA-256 digest has 32 bytes.

#![allow(clippy::indexing_slicing)]

use std::io::{BufWriter, Write as _};
use std::path::Path;
use std::time::SystemTime;

use super::plan::Plan;
use super::{ExportError, ExportOptions, ExportReport, Target};
use crate::archive::zip_write::ZipWriter;
use crate::error::Error;
use crate::format::{Checkpoint, Format};
use crate::fsutil::read_exact_at;
use crate::pickle::policy::Verdict;
use crate::pipeline::{Checksum, Output, WriteError};
use crate::progress::Progress;

/// Bytes read and written per step (cancel and progress are checked in between).
const CHUNK: usize = 4 << 20;
/// torch's storage alignment (`_get_storage_alignment()`).
const ALIGNMENT: u64 = 64;

/// The provenance record: `<archive>/.data/ckptscope.json`, a name torch never reads.
pub(super) const PROVENANCE: &str = ".data/ckptscope.json";

/// The archive's folder name: the output's stem, as `torch.save(obj, path)` names it.
fn archive_name(output: &Path) -> String {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if stem.is_empty() || stem.contains('/') {
        "archive".to_string()
    } else {
        stem
    }
}

/// What the hashing thread finds: per source, its SHA-256 and a checksum of every storage
/// range the plan takes from it.
struct Hashed {
    sha: Vec<String>,
    sums: Vec<u64>,
}

/// Size and modification time: an input that changes while it is copied shows it here.
fn stamp(path: &Path) -> Option<(u64, Option<SystemTime>)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()))
}

/// Writes the planned archive to `output`, reads it back, and puts it in place.
pub(super) fn write(
    ckpt: &Checkpoint,
    plan: &Plan,
    output: &Path,
    options: &ExportOptions,
    progress: &Progress,
) -> Result<ExportReport, ExportError> {
    let write_err = |error: std::io::Error| ExportError::from(WriteError::io(output, error));
    let total = plan
        .storages
        .iter()
        .try_fold(0u64, |a, s| a.checked_add(s.byte_len()))
        .ok_or_else(|| WriteError::TooLarge {
            path: ckpt.path.clone(),
            what: "the total size of the tensors".into(),
        })?;
    progress.add_total(total.saturating_mul(2));
    let stamps: Vec<_> = ckpt.sources.iter().map(|s| stamp(&s.path)).collect();
    let pickle = super::pickle::state_dict(plan);
    let tmp = Output::create(output, crate::pipeline::replace_if(options.force))?;
    // Headers, descriptors and the directory: about 200 bytes a record and 64 of padding.
    let overhead = (plan.storages.len() as u64 + 8).saturating_mul(400);
    tmp.check_space(total.saturating_add(pickle.len() as u64 + overhead))?;

    let name = archive_name(output);
    let ranges: Vec<Vec<Option<std::ops::Range<u64>>>> = (0..ckpt.sources.len())
        .map(|src| {
            plan.storages
                .iter()
                .map(|s| (s.source == src).then(|| s.range.clone()))
                .collect()
        })
        .collect();
    let (hashed, copied) = std::thread::scope(|scope| {
        let hasher = std::thread::Builder::new()
            .name("ckptscope-hasher".into())
            .spawn_scoped(scope, || hash_sources(ckpt, &ranges, progress))
            .map_err(|e| internal(output, format!("cannot start the hashing thread: {e}")))?;
        let copied = write_archive(ckpt, plan, &tmp, &name, &pickle, options, progress);
        let hashed = hasher
            .join()
            .map_err(|_| internal(output, "the hashing thread panicked"))?;
        Ok::<_, ExportError>((hashed, copied))
    })?;
    let (mut zip, copied_sums) = copied?;
    let hashed = hashed?;
    if progress.is_cancelled() {
        return Err(WriteError::Cancelled.into());
    }
    for (i, s) in plan.storages.iter().enumerate() {
        if copied_sums.get(i) != hashed.sums.get(i) {
            return Err(changed(
                ckpt,
                s.source,
                format!("storage `{}` read twice differed", s.key),
            ));
        }
    }
    for (i, (source, before)) in ckpt.sources.iter().zip(&stamps).enumerate() {
        if stamp(&source.path) != *before {
            return Err(changed(
                ckpt,
                i,
                "its size or modification time changed".into(),
            ));
        }
    }

    let source_sha = match ckpt.format {
        Format::SafetensorsSharded => crate::hash::file_sha256(&ckpt.path)?,
        _ => hashed.sha.first().cloned().unwrap_or_default(),
    };
    let exported_at =
        crate::timefmt::rfc3339_utc(options.exported_at.unwrap_or_else(SystemTime::now));
    let provenance = provenance(ckpt, plan, &source_sha, &hashed.sha, &exported_at);
    let provenance_bytes = serde_json::to_vec_pretty(&provenance)
        .map_err(|e| internal(output, format!("the provenance does not serialize: {e}")))?;
    let record = |zip: &mut ZipWriter<BufWriter<&std::fs::File>>, n: &str, data: &[u8]| {
        zip.add(&format!("{name}/{n}"), data).map_err(write_err)
    };
    record(&mut zip, PROVENANCE, &provenance_bytes)?;
    record(&mut zip, "version", b"3\n")?;
    record(
        &mut zip,
        ".data/serialization_id",
        serialization_id(&source_sha).as_bytes(),
    )?;
    let (mut out, _) = zip.finish().map_err(write_err)?;
    out.flush().map_err(write_err)?;
    drop(out);

    read_back(
        ckpt,
        plan,
        &tmp,
        output,
        &name,
        &copied_sums,
        &provenance_bytes,
        progress,
    )?;
    // The last moment a cancel can still leave no file.
    if progress.is_cancelled() {
        return Err(WriteError::Cancelled.into());
    }
    tmp.commit()?;
    Ok(ExportReport {
        input: ckpt.path.clone(),
        output: output.to_path_buf(),
        to: Target::Pytorch,
        tensors: plan.tensors.len(),
        storages: plan.storages.len(),
        bytes: total,
        tied: plan.tied.clone(),
        notes: plan.notes.clone(),
        source_sha256: source_sha,
        shards: Vec::new(),
        verified: true,
    })
}

fn internal(output: &Path, what: impl Into<String>) -> ExportError {
    WriteError::internal(output, what).into()
}

fn changed(ckpt: &Checkpoint, source: usize, what: String) -> ExportError {
    ExportError::Changed {
        path: ckpt
            .sources
            .get(source)
            .map(|s| s.path.clone())
            .unwrap_or_else(|| ckpt.path.clone()),
        what,
    }
}

/// The records before the provenance: `data.pkl`, `.format_version`, `.storage_alignment`,
/// `byteorder`, then every storage streamed from its source. Returns the open archive and a
/// checksum of each storage as it was copied.
fn write_archive<'f>(
    ckpt: &Checkpoint,
    plan: &Plan,
    tmp: &'f Output,
    name: &str,
    pickle: &[u8],
    options: &ExportOptions,
    progress: &Progress,
) -> Result<(ZipWriter<BufWriter<&'f std::fs::File>>, Vec<u64>), ExportError> {
    let output = tmp.path();
    let write_err = |error: std::io::Error| ExportError::from(WriteError::io(output, error));
    let mut zip = ZipWriter::new(BufWriter::with_capacity(1 << 20, tmp.file()), ALIGNMENT);
    zip.add(&format!("{name}/data.pkl"), pickle)
        .map_err(write_err)?;
    zip.add(&format!("{name}/.format_version"), b"1")
        .map_err(write_err)?;
    zip.add(&format!("{name}/.storage_alignment"), b"64")
        .map_err(write_err)?;
    zip.add(&format!("{name}/byteorder"), b"little")
        .map_err(write_err)?;
    let files: Vec<std::fs::File> = ckpt
        .sources
        .iter()
        .map(|s| std::fs::File::open(&s.path).map_err(|e| Error::io("open", &s.path, e)))
        .collect::<Result<_, _>>()?;
    let mut buf = vec![0u8; CHUNK];
    let mut written = 0u64;
    let mut sums = Vec::with_capacity(plan.storages.len());
    for s in &plan.storages {
        let file = files
            .get(s.source)
            .ok_or_else(|| internal(output, "a storage names a missing shard"))?;
        zip.begin(&format!("{name}/data/{}", s.key), s.byte_len())
            .map_err(write_err)?;
        let mut sum = Checksum::default();
        let mut at = s.range.start;
        while at < s.range.end {
            if progress.is_cancelled() {
                return Err(WriteError::Cancelled.into());
            }
            let n = (s.range.end - at).min(CHUNK as u64) as usize;
            let chunk = &mut buf[..n];
            read_exact_at(file, chunk, at).map_err(|e| {
                changed(
                    ckpt,
                    s.source,
                    format!("reading storage `{}` at byte {at}: {e}", s.key),
                )
            })?;
            if let Some(limit) = options.fail_after
                && written + n as u64 > limit
            {
                return Err(write_err(std::io::Error::other("injected write failure")));
            }
            sum.update(chunk);
            zip.write(chunk).map_err(write_err)?;
            at += n as u64;
            written += n as u64;
            progress.add_done(n as u64);
            if let Some(hook) = &options.after_chunk {
                (hook.0)(written);
            }
        }
        zip.end().map_err(write_err)?;
        sums.push(sum.finish());
    }
    Ok((zip, sums))
}

/// Every source's SHA-256 and the checksum of each storage range, in one read of each.
fn hash_sources(
    ckpt: &Checkpoint,
    ranges: &[Vec<Option<std::ops::Range<u64>>>],
    progress: &Progress,
) -> Result<Hashed, ExportError> {
    let mut sha = Vec::new();
    let mut sums: Vec<Option<u64>> = vec![None; ranges.first().map_or(0, Vec::len)];
    for (source, ranges) in ckpt.sources.iter().zip(ranges) {
        let (hex, found, _) = crate::pipeline::hash_source(&source.path, ranges, &[], progress)?;
        sha.push(hex);
        for (slot, found) in sums.iter_mut().zip(found) {
            if found.is_some() {
                *slot = found;
            }
        }
    }
    Ok(Hashed {
        sha,
        sums: sums.into_iter().map(|s| s.unwrap_or(0)).collect(),
    })
}

/// The provenance record: where the file came from, by whom, when, and the source's metadata.
fn provenance(
    ckpt: &Checkpoint,
    plan: &Plan,
    source_sha: &str,
    shard_shas: &[String],
    exported_at: &str,
) -> serde_json::Value {
    let file_name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut record = serde_json::json!({
        "tool": "ckptscope",
        "version": env!("CARGO_PKG_VERSION"),
        "source": file_name(&ckpt.path),
        "source_format": ckpt.format.label(),
        "source_sha256": source_sha,
        "exported_at": exported_at,
        "source_metadata": ckpt
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone())))
            .collect::<serde_json::Map<_, _>>(),
        "tied": plan
            .tied
            .iter()
            .map(|(a, k)| (a.clone(), serde_json::Value::from(k.clone())))
            .collect::<serde_json::Map<_, _>>(),
    });
    if ckpt.format == Format::SafetensorsSharded
        && let Some(map) = record.as_object_mut()
    {
        let shards: serde_json::Map<String, serde_json::Value> = ckpt
            .sources
            .iter()
            .zip(shard_shas)
            .map(|(s, sha)| (file_name(&s.path), serde_json::Value::from(sha.clone())))
            .collect();
        map.insert("shards_sha256".into(), shards.into());
    }
    record
}

/// torch writes 40 decimal digits (two 64-bit numbers); these come from the source's hash, so
/// the same input gives the same file.
fn serialization_id(source_sha: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("ckptscope serialization id {source_sha}"));
    let a = u64::from_le_bytes(digest[..8].try_into().unwrap_or([0; 8]));
    let b = u64::from_le_bytes(digest[8..16].try_into().unwrap_or([0; 8]));
    format!("{a:020}{b:020}")
}

/// Reopens the written file with ckptscope's reader: it scans safe, loads with
/// `weights_only=True` by the compat model, every member's CRC-32 matches, every tensor has its
/// planned name, dtype, shape and storage, every storage the bytes copied, and the provenance
/// reads back.
#[allow(clippy::too_many_arguments)]
fn read_back(
    ckpt: &Checkpoint,
    plan: &Plan,
    tmp: &Output,
    output: &Path,
    name: &str,
    sums: &[u64],
    provenance: &[u8],
    progress: &Progress,
) -> Result<(), ExportError> {
    let _ = ckpt;
    let path = tmp.reopen_path();
    let mismatch = |tensor: Option<&str>, what: String| {
        ExportError::from(WriteError::mismatch(output, tensor, what))
    };
    let read_back = |error: Error| ExportError::from(WriteError::read_back(error));
    let out = crate::format::open(&path).map_err(read_back)?;
    let Some(report) = out.pickle.as_ref() else {
        return Err(mismatch(
            None,
            format!("reads back as {}", out.format.label()),
        ));
    };
    if out.format != Format::PytorchZip || report.verdict != Verdict::Safe {
        let what = report
            .findings
            .iter()
            .take(3)
            .map(|f| f.reason.clone())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(ExportError::NotSafe {
            output: output.to_path_buf(),
            verdict: report.verdict,
            what,
        });
    }
    match &report.weights_only {
        Some(w) if w.loads => {}
        other => {
            return Err(ExportError::NotSafe {
                output: output.to_path_buf(),
                verdict: report.verdict,
                what: other
                    .as_ref()
                    .map(|w| w.line())
                    .unwrap_or_else(|| "no weights-only answer".into()),
            });
        }
    }
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
    let bytes = out
        .sources
        .first()
        .ok_or_else(|| mismatch(None, "no source".into()))?
        .mapped()
        .map_err(read_back)?
        .bytes();
    let entries = crate::archive::zip::entries(bytes)
        .map_err(|p| mismatch(None, format!("its zip directory does not read: {p}")))?;
    let member = |n: &str| entries.iter().find(|e| e.name == format!("{name}/{n}"));
    let range_of = |e: &crate::archive::zip::ZipEntry| {
        crate::archive::zip::data_range(bytes, e)
            .map_err(|p| mismatch(None, format!("member `{}`: {p}", e.name)))
    };
    let file = std::fs::File::open(&path).map_err(|e| read_back(Error::io("open", output, e)))?;
    let mut buf = vec![0u8; CHUNK];
    for (i, s) in plan.storages.iter().enumerate() {
        let e = member(&format!("data/{}", s.key))
            .ok_or_else(|| mismatch(None, format!("storage `{}` is missing", s.key)))?;
        let r = range_of(e)?;
        if r.start % ALIGNMENT != 0 || r.end - r.start != s.byte_len() {
            return Err(mismatch(None, format!("storage `{}` is misplaced", s.key)));
        }
        // Positioned reads, not the map: the pages read do not stay in this process's memory.
        let mut crc = crate::archive::zip::Crc32::default();
        let mut sum = Checksum::default();
        let mut at = r.start;
        while at < r.end {
            if progress.is_cancelled() {
                return Err(WriteError::Cancelled.into());
            }
            let n = (r.end - at).min(CHUNK as u64) as usize;
            let piece = &mut buf[..n];
            read_exact_at(&file, piece, at).map_err(|e| read_back(Error::io("read", output, e)))?;
            crc.update(piece);
            sum.update(piece);
            progress.add_done(n as u64);
            at += n as u64;
        }
        crate::archive::zip::check_crc(e, crc.finish())
            .map_err(|m| mismatch(None, m.to_string()))?;
        if Some(&sum.finish()) != sums.get(i) {
            return Err(mismatch(
                None,
                format!("storage `{}` differs from the source", s.key),
            ));
        }
    }
    for t in &plan.tensors {
        let storage = plan
            .storages
            .get(t.storage)
            .ok_or_else(|| internal(output, "a tensor names a missing storage"))?;
        let o = out
            .tensor(&t.name)
            .ok_or_else(|| mismatch(Some(&t.name), "is missing".into()))?;
        let r = range_of(
            member(&format!("data/{}", storage.key))
                .ok_or_else(|| mismatch(Some(&t.name), "its storage is missing".into()))?,
        )?;
        let (offset, strides) = crate::format::gather::effective_strides(o);
        if o.dtype != storage.dtype
            || o.shape != t.shape
            || o.storage.as_deref() != Some(storage.key.as_str())
            || offset != 0
            || !crate::format::gather::is_row_major(&o.shape, &strides)
            || o.file_range() != r
            || o.byte_len() != storage.byte_len()
        {
            return Err(mismatch(
                Some(&t.name),
                format!(
                    "reads back as {} {:?} on storage {:?}",
                    o.dtype, o.shape, o.storage
                ),
            ));
        }
    }
    let e = member(PROVENANCE).ok_or_else(|| mismatch(None, "the provenance is missing".into()))?;
    let r = range_of(e)?;
    let read = usize::try_from(r.start)
        .ok()
        .zip(usize::try_from(r.end).ok())
        .and_then(|(a, b)| bytes.get(a..b));
    if read != Some(provenance) {
        return Err(mismatch(None, "the provenance does not read back".into()));
    }
    Ok(())
}
