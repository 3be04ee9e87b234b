//! Writing the planned output through [`crate::pipeline`]: the layout, the data (packed ranges
//! copied and read back as they land while the source is hashed on another thread), the
//! verification pass, the final header, and putting the file in place.
//!
//! Owns: the safetensors layout and header. Must not import: `sharded`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use super::plan::{Plan, packed_len, plain_range};
use super::verify::{verify, zip_members};
use super::{ConvertError, ConvertOptions, ConvertReport};
use crate::dtype::DType;
use crate::error::Error;
use crate::format::Checkpoint;
use crate::format::gather;
use crate::pipeline::{CopyError, Output, WriteError, hash_source};
use crate::progress::Progress;

/// Header text: `__metadata__` with sorted keys, then tensors in file order, each serialized by
/// the safetensors crate's own `TensorInfo`; spaces pad it to a multiple of 8 bytes.
fn header_json(
    output: &Path,
    metadata: &BTreeMap<String, String>,
    tensors: &[Placed],
) -> Result<Vec<u8>, WriteError> {
    let json = |e: serde_json::Error| {
        WriteError::internal(output, format!("the header does not serialize: {e}"))
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
        let dtype = plan.dtype_of(name, t);
        let len = match t.quant {
            Some(_) => t.elements().checked_mul(dtype.byte_size().unwrap_or(4)),
            None => Some(packed_len(ckpt, t)?),
        }
        .ok_or_else(|| WriteError::TooLarge {
            path: ckpt.path.clone(),
            what: format!("the size of tensor `{name}`"),
        })?;
        let end = offset
            .checked_add(len)
            .ok_or_else(|| WriteError::TooLarge {
                path: ckpt.path.clone(),
                what: "the total size of the tensors".into(),
            })?;
        placed.push(Placed {
            name: name.clone(),
            dtype,
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
    let (placed, total) = layout(ckpt, plan)?;
    progress.add_total(total.saturating_mul(2));
    let mut metadata = provenance(ckpt, plan, plan.verdict.name());
    let placeholder = header_json(output, &metadata, &placed)?;
    let data_start = 8 + placeholder.len() as u64;
    let need = data_start
        .checked_add(total)
        .ok_or_else(|| WriteError::TooLarge {
            path: ckpt.path.clone(),
            what: "the output size".into(),
        })?;

    let out = Output::create(output, crate::pipeline::replace_if(options.force))?;
    out.check_space(need)?;
    let staged = Staged {
        ckpt,
        plan,
        out: &out,
        data_start,
        total,
    };
    let sha = staged.write_and_verify(&placeholder, options, progress)?;
    if progress.is_cancelled() {
        return Err(WriteError::Cancelled.into());
    }
    metadata.insert("ckptscope.source_sha256".into(), sha.clone());
    staged.finalize_header(&metadata, &placed, placeholder.len())?;
    out.commit()?;

    // Lineage links the output back to this input by its hash without reading it again.
    if options.cache != crate::hash::CacheDir::Off {
        let mut cache = crate::hash::HashCache::load(&options.cache);
        cache.put(&ckpt.path, crate::hash::HashKind::File, &sha);
        cache.save();
    }
    Ok(ConvertReport {
        input: ckpt.path.clone(),
        output: output.to_path_buf(),
        verdict: plan.verdict,
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

/// An output being written: what the middle stages share.
struct Staged<'a> {
    ckpt: &'a Checkpoint,
    plan: &'a Plan<'a>,
    out: &'a Output,
    data_start: u64,
    total: u64,
}

impl Staged<'_> {
    /// The header placeholder and the data, while a named thread hashes the source (positioned
    /// reads: its pages do not count against this process's memory) and takes the CRC-32 of
    /// the archive members read; packed tensors are read back as they are copied, and the
    /// gathered ones compared with the source while another thread syncs the data. Returns
    /// the source's SHA-256.
    fn write_and_verify(
        &self,
        placeholder: &[u8],
        options: &ConvertOptions,
        progress: &Progress,
    ) -> Result<String, ConvertError> {
        let (ckpt, plan, out) = (self.ckpt, self.plan, self.out);
        let members = zip_members(ckpt, plan)?;
        let crc_ranges: Vec<std::ops::Range<u64>> =
            members.iter().map(|m| m.range.clone()).collect();
        // Packed tensors are plain byte ranges of the input: the hashing pass checksums them on
        // the way, and the copy checksums what it reads back.
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
                .map_err(|e| out.internal(format!("cannot start the hashing thread: {e}")))?;
            out.write_all(&(placeholder.len() as u64).to_le_bytes())?;
            out.write_all(placeholder)?;
            let (written, read_back) = self.write_data(options, progress)?;
            if written != self.total {
                return Err(out
                    .internal(format!("{written} bytes written, {} expected", self.total))
                    .into());
            }
            let syncer = std::thread::Builder::new()
                .name("ckptscope-syncer".into())
                .spawn_scoped(scope, || out.file().sync_data())
                .map_err(|e| out.internal(format!("cannot start the sync thread: {e}")))?;
            let checked = verify(plan, out.path(), &out.reopen_path(), self.data_start);
            let hashed = hasher
                .join()
                .map_err(|_| out.internal("the hashing thread panicked"))?
                .map_err(ConvertError::Open);
            let synced = syncer
                .join()
                .map_err(|_| out.internal("the sync thread panicked"))?;
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
            checked?;
            for (((name, _), written), read) in
                plan.tensors.iter().zip(&read_back).zip(&source_sums)
            {
                if written.is_some() && written != read {
                    return Err(WriteError::mismatch(
                        out.path(),
                        Some(name),
                        "differs from the source",
                    )
                    .into());
                }
            }
            synced.map_err(|e| out.io_err(e))?;
            Ok(sha)
        })
    }

    /// Every tensor's packed bytes, in plan order; returns the bytes written and, for each
    /// tensor copied as a plain range, the checksum of its bytes read back.
    fn write_data(
        &self,
        options: &ConvertOptions,
        progress: &Progress,
    ) -> Result<(u64, Vec<Option<u64>>), ConvertError> {
        let (ckpt, out) = (self.ckpt, self.out);
        let read_err = |e: std::io::Error| ConvertError::Open(Error::io("read", &ckpt.path, e));
        let input = std::fs::File::open(&ckpt.path).map_err(read_err)?;
        let mut written = 0u64;
        let mut sums = Vec::with_capacity(self.plan.tensors.len());
        let mut back = Vec::new();
        for (name, t) in &self.plan.tensors {
            let mut count = |n: u64| -> Result<(), WriteError> {
                if let Some(limit) = options.fail_after
                    && written + n > limit
                {
                    return Err(out.io_err(std::io::Error::other("injected write failure")));
                }
                written += n;
                Ok(())
            };
            match plain_range(ckpt, t) {
                Some(range) => {
                    let sum = out
                        .copy_verified(&input, range, progress, &mut count)
                        .map_err(|e| match e {
                            CopyError::Write(e) => ConvertError::Write(e),
                            CopyError::Source { at, error } => ConvertError::Gather {
                                path: ckpt.path.clone(),
                                tensor: name.clone(),
                                reason: format!("reading byte {at}: {error}"),
                            },
                        })?;
                    sums.push(Some(sum));
                }
                None => {
                    let region = ckpt.tensor_bytes(t)?;
                    let mut emit = |chunk: &[u8]| -> Result<(), ConvertError> {
                        if progress.is_cancelled() {
                            return Err(ConvertError::from(WriteError::Cancelled));
                        }
                        count(chunk.len() as u64)?;
                        out.write_verified(chunk, Some(name), &mut back)?;
                        progress.add_done(2 * chunk.len() as u64);
                        Ok(())
                    };
                    match (t.quant, self.plan.cast.get(name)) {
                        (Some(q), Some(&dtype)) => dequantize(q, dtype, t, region, &mut emit)
                            .map_err(|e| match e {
                                Decode::Emit(e) => e,
                                Decode::Short => ConvertError::Gather {
                                    path: ckpt.path.clone(),
                                    tensor: name.clone(),
                                    reason: format!(
                                        "its {} blocks do not decode (the file is cut short?)",
                                        q.name()
                                    ),
                                },
                            })?,
                        _ => gather::for_each_chunk(t, region, gather::CHUNK, &mut emit).map_err(
                            |e| ConvertError::Gather {
                                path: ckpt.path.clone(),
                                tensor: name.clone(),
                                reason: e.to_string(),
                            },
                        )??,
                    }
                    sums.push(None);
                }
            }
        }
        Ok((written, sums))
    }

    /// The real header (the source's hash in place of the placeholder, same length), synced,
    /// and read back with every key.
    fn finalize_header(
        &self,
        metadata: &BTreeMap<String, String>,
        placed: &[Placed],
        placeholder_len: usize,
    ) -> Result<(), ConvertError> {
        let out = self.out;
        let header = header_json(out.path(), metadata, placed)?;
        if header.len() != placeholder_len {
            return Err(out
                .internal(format!(
                    "the final header is {} bytes, the placeholder {placeholder_len}",
                    header.len()
                ))
                .into());
        }
        out.write_at(&header, 8)?;
        out.sync()?;
        let check = crate::format::open(&out.reopen_path()).map_err(WriteError::read_back)?;
        for (k, v) in metadata {
            if check.metadata_value(k) != Some(v.as_str()) {
                return Err(WriteError::mismatch(
                    out.path(),
                    None,
                    format!("metadata `{k}` did not read back"),
                )
                .into());
            }
        }
        Ok(())
    }
}

/// Why a dequantization stopped.
enum Decode {
    /// Writing the values failed.
    Emit(ConvertError),
    /// The blocks do not decode (they lie outside the tensor's bytes).
    Short,
}

/// Values decoded per round: a whole number of blocks of every ggml type (32 or 256 values).
const DECODE_RUN: u64 = 1 << 16;

/// The values of a block-quantized tensor, decoded as ggml decodes them (to `f32`) and written
/// in `dtype` (F16 and BF16 rounded to nearest, ties to even), row-major, little-endian.
fn dequantize(
    q: crate::format::GgmlType,
    dtype: DType,
    t: &crate::format::TensorEntry,
    region: &[u8],
    emit: &mut dyn FnMut(&[u8]) -> Result<(), ConvertError>,
) -> Result<(), Decode> {
    let n = t.elements();
    let mut values = Vec::new();
    let mut bytes = Vec::new();
    let mut first = 0u64;
    while first < n {
        let run = (n - first).min(DECODE_RUN) as usize;
        values.clear();
        if !crate::analysis::quant::run_f32(q, region, first, run, &mut values) {
            return Err(Decode::Short);
        }
        bytes.clear();
        match dtype {
            DType::F16 => bytes.extend(
                values
                    .iter()
                    .flat_map(|v| half::f16::from_f32(*v).to_le_bytes()),
            ),
            DType::BF16 => bytes.extend(
                values
                    .iter()
                    .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes()),
            ),
            _ => bytes.extend(values.iter().flat_map(|v| v.to_le_bytes())),
        }
        emit(&bytes).map_err(Decode::Emit)?;
        first += run as u64;
    }
    Ok(())
}
