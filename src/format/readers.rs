//! The readers of the formats ckptscope reads today, each over its module: safetensors (one
//! file or a sharded index), the pickle family (PyTorch zip, legacy and tar, TorchScript, plain
//! pickles), NumPy, GGUF and ONNX. The registry's table names which reads what.

use super::reader::{Input, Judgement, Reader};
use super::{Checkpoint, Format, MappedFile, OpenOptions};
use crate::error::Error;
use crate::pickle::analyze;
use crate::pickle::policy::{Finding, Risk};
use crate::progress::Progress;

/// What safetensors' judgement says: the format holds no code.
const SAFETENSORS_NOTE: &str =
    "no pickle: safetensors holds only a JSON header and raw bytes; loading it runs no code";

/// What an ONNX model's judgement says first.
const ONNX_NOTE: &str = "no pickle: data-only format (an ONNX model is a protobuf graph and tensors; loading it runs no Python code)";

/// A single safetensors file. "Safe" is a promise about the whole file, so the header is
/// validated: bytes that only start like one are not vouched for.
pub struct Safetensors;

impl Reader for Safetensors {
    fn open(
        &self,
        mapped: MappedFile,
        _: Format,
        options: &OpenOptions,
        _: Option<&Progress>,
    ) -> Result<Checkpoint, Error> {
        super::open_safetensors(mapped, &options.limits)
    }

    fn judge(&self, input: &Input<'_>) -> Result<Judgement, String> {
        super::read_header(input.bytes, input.file_len, input.limits)
            .map_err(|problem| format!("starts like a safetensors file, but {problem}"))?;
        Ok(Judgement::of(vec![Finding::new(
            Risk::Info,
            None,
            SAFETENSORS_NOTE,
        )]))
    }
}

/// A sharded safetensors model's index (`model.safetensors.index.json`); each shard is a file
/// of its own for `scan`.
pub struct ShardedIndex;

impl Reader for ShardedIndex {
    fn open(
        &self,
        mapped: MappedFile,
        _: Format,
        options: &OpenOptions,
        _: Option<&Progress>,
    ) -> Result<Checkpoint, Error> {
        let path = mapped.path().to_path_buf();
        drop(mapped);
        super::sharded::open_index(&path, &options.limits)
    }

    /// The index is data, but it says which files a loader reads: a shard named outside the
    /// index's folder is dangerous (loading reads that file), and a shard that is not there
    /// leaves the model unjudged (not scanned).
    fn judge(&self, input: &Input<'_>) -> Result<Judgement, String> {
        use super::sharded::{listed_shards, shard_escapes};
        let shards = listed_shards(input.path, input.limits).map_err(|e| e.to_string())?;
        let folder = input.path.parent().unwrap_or(std::path::Path::new(""));
        let mut findings = vec![Finding::new(Risk::Info, None, SAFETENSORS_NOTE)];
        for name in &shards {
            if shard_escapes(name) {
                findings.push(Finding::new(
                    Risk::Dangerous,
                    None,
                    format!(
                        "the index names shard `{name}`, outside the model's folder: loading the model reads that file"
                    ),
                ));
            } else if !folder.join(name).is_file() {
                return Err(format!(
                    "the index names shard `{name}`, which is not there: the model cannot be judged whole"
                ));
            }
        }
        findings.sort_by_key(|f| std::cmp::Reverse(f.risk));
        Ok(Judgement::of(findings))
    }
}

/// The pickle family: PyTorch zip, legacy and tar checkpoints, TorchScript archives and plain
/// pickles; every pickle in them is run (never executed) and judged.
pub struct Pickled;

impl Reader for Pickled {
    fn open(
        &self,
        mapped: MappedFile,
        format: Format,
        options: &OpenOptions,
        progress: Option<&Progress>,
    ) -> Result<Checkpoint, Error> {
        super::pytorch::open(mapped, format, &options.limits, &options.pickle, progress)
    }

    fn judge(&self, input: &Input<'_>) -> Result<Judgement, String> {
        let a = analyze(input.bytes, input.format, input.policy, input.limits, None);
        Ok(judgement(a))
    }
}

/// NumPy `.npy` arrays and `.npz` archives: object arrays are pickles and judged as such; a
/// header or size that cannot be right is suspicious.
pub struct Numpy;

impl Reader for Numpy {
    fn open(
        &self,
        mapped: MappedFile,
        format: Format,
        options: &OpenOptions,
        progress: Option<&Progress>,
    ) -> Result<Checkpoint, Error> {
        super::numpy::open(mapped, format, &options.limits, &options.pickle, progress)
    }

    fn judge(&self, input: &Input<'_>) -> Result<Judgement, String> {
        // A `.npy` whose header cannot be read (an unknown version, a cut or garbled header)
        // is not understood: nothing can be said of its data, or whether it holds a pickle.
        if input.format == Format::Numpy
            && let Err(problem) = crate::pickle::container::npy_header(input.bytes)
        {
            return Err(format!("starts like a NumPy .npy array, but {problem}"));
        }
        let mut a = analyze(input.bytes, input.format, input.policy, input.limits, None);
        numpy_findings(input.bytes, input.format, &mut a);
        Ok(judgement(a))
    }
}

/// What `scan` reports of a pickle analysis.
fn judgement(a: crate::pickle::Analysis) -> Judgement {
    Judgement {
        verdict: a.verdict,
        findings: a.findings,
        streams: a.streams,
        weights_only: a.weights_only,
    }
}

/// GGUF: the header is validated whole; chat templates that reach Python internals are
/// suspicious.
pub struct Gguf;

impl Reader for Gguf {
    fn open(
        &self,
        mapped: MappedFile,
        _: Format,
        options: &OpenOptions,
        _: Option<&Progress>,
    ) -> Result<Checkpoint, Error> {
        super::gguf::open(mapped, &options.limits)
    }

    fn judge(&self, input: &Input<'_>) -> Result<Judgement, String> {
        super::gguf::scan_findings(input.bytes, input.limits)
            .map(Judgement::of)
            .map_err(|problem| format!("starts like a GGUF file, but {problem}"))
    }
}

/// ONNX: the protobuf is parsed and every initializer located; external data that leaves the
/// model's folder is dangerous.
pub struct Onnx;

impl Reader for Onnx {
    fn open(
        &self,
        mapped: MappedFile,
        _: Format,
        options: &OpenOptions,
        _: Option<&Progress>,
    ) -> Result<Checkpoint, Error> {
        super::onnx::open(mapped, &options.limits)
    }

    fn judge(&self, input: &Input<'_>) -> Result<Judgement, String> {
        let read = super::onnx::read(input.path, input.bytes)
            .map_err(|problem| format!("starts like an ONNX model, but {problem}"))?;
        Ok(Judgement::of(onnx_findings(
            &read,
            input.limits.max_findings,
        )))
    }
}

/// An ONNX model's findings: what it is, then each initializer that is not read, its risk
/// by why (an external data path that leaves the model's folder is dangerous: loading the model
/// reads that file); at most `max` of them, the rest counted in one line per risk.
fn onnx_findings(read: &super::onnx::Read, max: usize) -> Vec<Finding> {
    let mut findings = vec![Finding::new(Risk::Info, None, ONNX_NOTE)];
    let mut dropped = [0u64; 3];
    for r in read.refused() {
        let risk = r.risk;
        if findings.len() < max.max(2) {
            findings.push(Finding::new(
                risk,
                None,
                format!("initializer `{}`: {}", r.name, r.reason),
            ));
        } else {
            if let Some(slot) = dropped.get_mut(risk as usize) {
                *slot += 1;
            }
        }
    }
    for (risk, n) in [Risk::Info, Risk::Suspicious, Risk::Dangerous]
        .into_iter()
        .zip(dropped)
        .filter(|(_, n)| *n > 0)
    {
        findings.push(Finding::new(
            risk,
            None,
            format!(
                "{n} more initializers like those above (raise --limit findings=N to list them)"
            ),
        ));
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.risk));
    findings
}

/// NumPy files: arrays whose header or size cannot be right are suspicious (the file is not
/// what it says); a file in which no pickle was found (no object array) says it is data only.
fn numpy_findings(bytes: &[u8], format: Format, analysis: &mut crate::pickle::Analysis) {
    use super::numpy;
    let arrays = match (format, &analysis.zip) {
        (Format::NumpyZip, Some(zip)) => numpy::read_npz(bytes, &zip.entries, u64::MAX),
        _ => numpy::read_npy(bytes),
    };
    analysis.findings.extend(numpy::doubts(&arrays));
    if analysis.streams.is_empty() {
        analysis.findings.push(Finding::new(
            Risk::Info,
            None,
            "no pickle: data-only format (NumPy arrays of numbers; np.load reads them without unpickling anything)",
        ));
    }
    analysis.findings.sort_by_key(|f| std::cmp::Reverse(f.risk));
    analysis.verdict = analysis
        .verdict
        .max(crate::pickle::policy::Verdict::of(&analysis.findings));
}
