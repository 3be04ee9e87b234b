//! The safe pickle engine: read and judge pickle-based checkpoints without executing them.
//!
//! - [`vm`] runs a pickle stream symbolically ([`value`] holds what it builds);
//! - [`policy`] turns what it imported and called into findings and a verdict;
//! - [`container`] and [`tar`] find the pickles and storage records inside PyTorch, NumPy and
//!   raw files;
//! - [`torch`] reads tensors and the non-tensor tree out of the value tree.
//!
//! [`analyze`] ties them together for one file: every pickle stream in it is run and judged;
//! the stream a loader would return is kept for tensor extraction.
//!
//! - `layouts` walks each file layout, `hidden` searches for what hides around and inside
//!   the streams.
//!
//! Owns: the pickle engine. Must not import: `format`, `analysis` and everything above
//! (`format::pytorch` is the one adapter from this engine to the checkpoint model).

pub mod compat;
pub mod container;
mod hidden;
mod layouts;
pub mod opcode;
pub mod policy;
pub mod tar;
pub mod torch;
pub mod torchscript;
pub mod value;
pub mod vm;

use std::borrow::Cow;
use std::collections::HashSet;

use crate::detect::Format;
use crate::limits::Limits;
use crate::limits::MAX_WALK_STEPS;
use crate::pickle::container::{Role, Stream, TorchZip};
use crate::pickle::opcode::Op;
use crate::pickle::policy::{Class, Context, Findings, Judge, PersistentKind, Policy};
use crate::pickle::vm::{Budget, Framing, PickleError, Program, Straddle};
use crate::progress::Progress;
use crate::verdict::{Finding, Risk, Verdict};
use hidden::globals_by_walk;

pub use policy::{Risk as FindingRisk, Verdict as ScanVerdict};

/// One pickle stream that was run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StreamReport {
    /// Archive member, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// Offset of the stream (in the member, or in the file).
    pub offset: u64,
    /// Bytes up to its STOP (or to where it broke).
    pub length: u64,
    /// Protocol it declares.
    pub protocol: u8,
    /// Opcodes executed.
    pub opcodes: u64,
    /// What the stream is for.
    pub role: &'static str,
    /// Why it stopped early, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything learnt about a pickle-based file.
#[derive(Debug)]
pub struct Analysis {
    /// The container format.
    pub format: Format,
    /// Worst finding.
    pub verdict: Verdict,
    /// Findings, worst first, repeats merged.
    pub findings: Vec<Finding>,
    /// Every stream that was run.
    pub streams: Vec<StreamReport>,
    /// The run of the object pickle (`data.pkl`, the legacy object pickle, the raw pickle).
    pub object: Option<Program>,
    /// For zip archives, the located archive.
    pub zip: Option<TorchZip>,
    /// For legacy files: offset where the raw storages start, and whether the writer was
    /// little-endian.
    pub legacy: Option<LegacyLayout>,
    /// For legacy files: the run of the storage-keys pickle.
    pub legacy_keys: Option<Program>,
    /// For the tar format: storages and tensors read from its records.
    pub tar: Option<tar::TarLayout>,
    /// For `.npy` files: the array header.
    pub npy: Option<container::NpyHeader>,
    /// For TorchScript archives: the program in `code/`.
    pub torchscript: Option<torchscript::Code>,
    /// Why the analysis stopped before the end of the file, if a limit stopped it (the verdict
    /// is then at least suspicious).
    pub stopped: Option<String>,
    /// True when the user cancelled it.
    pub cancelled: bool,
    /// Whether `torch.load(weights_only=True)` loads the file, a question apart from the
    /// verdict ([`compat`]).
    pub weights_only: Option<compat::WeightsOnly>,
}

/// Where a legacy file's raw storages begin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LegacyLayout {
    /// Offset just past the storage-keys pickle.
    pub storages_start: u64,
    /// `sys_info['little_endian']`.
    pub little_endian: bool,
}

/// Runs and judges every pickle in `bytes`, a file whose format was detected as `format`, within
/// one budget for the whole file (`limits`); `progress`, if given, is told the bytes gone through
/// and polled for cancellation.
pub fn analyze(
    bytes: &[u8],
    format: Format,
    policy: &Policy,
    limits: &Limits,
    progress: Option<&Progress>,
) -> Analysis {
    let mut a = Analysis {
        format,
        verdict: Verdict::Safe,
        findings: Vec::new(),
        streams: Vec::new(),
        object: None,
        zip: None,
        legacy: None,
        legacy_keys: None,
        tar: None,
        npy: None,
        torchscript: None,
        stopped: None,
        cancelled: false,
        weights_only: None,
    };
    // TorchScript's own unpickler knows `__torch__` classes and `torch.jit._pickle` helpers.
    let torchscript_policy;
    let policy = if format == Format::Torchscript {
        torchscript_policy = policy.for_torchscript();
        &torchscript_policy
    } else {
        policy
    };
    if let Some(p) = progress {
        p.add_total(bytes.len() as u64);
    }
    let mut runner = Runner {
        policy,
        limits,
        budget: Budget::new(limits.pickle, progress),
        findings: Findings::new(limits.max_findings),
        streams: 0,
        inflated: 0,
        format,
        compat: compat::Checker::new(),
        analysis: &mut a,
    };
    match format {
        Format::PytorchZip | Format::Torchscript | Format::NumpyZip | Format::Zip => {
            runner.zip(bytes, format)
        }
        Format::PytorchLegacy => runner.legacy(bytes),
        Format::PytorchTar => runner.tar(bytes),
        Format::Numpy => runner.npy(bytes, None, 0),
        _ => runner.raw(bytes),
    }
    let findings = std::mem::replace(&mut runner.findings, Findings::new(1));
    let checker = std::mem::take(&mut runner.compat);
    a.weights_only = Some(checker.finish(format));
    a.findings = findings.finish();
    a.verdict = Verdict::of(&a.findings);
    a
}

struct Runner<'r> {
    policy: &'r Policy,
    limits: &'r Limits,
    /// What every stream of the file draws from.
    budget: Budget<'r>,
    findings: Findings,
    /// Streams run so far (nested ones included).
    streams: usize,
    /// Bytes inflated from compressed members so far.
    inflated: u64,
    format: Format,
    /// The weights-only model, fed the streams `torch.load` reads.
    compat: compat::Checker,
    analysis: &'r mut Analysis,
}

impl Runner<'_> {
    /// Ends the analysis early: nothing more is run, and the verdict is at least suspicious.
    fn stop(&mut self, why: String) {
        if self.analysis.stopped.is_some() {
            return;
        }
        self.findings.push_always(Finding::new(
            Risk::Suspicious,
            None,
            format!("{why}; the rest of the file was not scanned, so it cannot be called safe"),
        ));
        self.analysis.stopped = Some(why);
    }

    /// Counts one more stream; false (and the analysis stopped) past the limit.
    fn admit_stream(&mut self) -> bool {
        if self.analysis.stopped.is_some() {
            return false;
        }
        self.streams += 1;
        if self.streams > self.limits.max_streams {
            self.stop(format!(
                "analysis stopped: more than {} pickle streams in one file, the limit (raise it with --limit streams=N)",
                self.limits.max_streams
            ));
            return false;
        }
        true
    }

    /// Notes why a stream stopped, when a limit or the user stopped it.
    fn after_run(&mut self, program: &Program) {
        match &program.error {
            Some(e @ PickleError::Limit { .. }) => {
                let text = e.to_string();
                self.stop(text);
            }
            Some(PickleError::Cancelled { .. }) => {
                self.analysis.cancelled = true;
                self.analysis.stopped = Some("cancelled".into());
            }
            _ => {}
        }
    }

    /// Runs one stream, records its report and findings, and returns its program.
    fn run(&mut self, stream: &Stream<'_>) -> Program {
        if !self.admit_stream() {
            return Program::not_run(stream.start);
        }
        let ctx = Context {
            member: stream.member.as_deref(),
            base_offset: stream.base_offset,
            persistent: stream.persistent,
        };
        let framing = framing_of(stream);
        let torch_reads = match self.format {
            Format::PytorchZip => framing == Framing::FileNoPeek,
            Format::PytorchLegacy => {
                stream.member.is_none()
                    && matches!(stream.role, Role::Header | Role::Object | Role::Records)
            }
            _ => false,
        };
        if torch_reads {
            self.compat
                .stream(&stream.bytes, stream.start, &self.limits.pickle);
        }
        let program = {
            let mut judge = Judge::new(self.policy, ctx, &mut self.findings, None);
            vm::run_framed(
                &stream.bytes,
                stream.start,
                framing,
                &mut self.budget,
                &mut judge,
            )
        };
        self.after_run(&program);
        self.nested(&program, &ctx, 0);
        if let Some(straddle) = program.straddle {
            self.other_reading(stream, &ctx, framing, straddle);
        }
        if let Some(err) = &program.error
            && !matches!(
                err,
                PickleError::Limit { .. } | PickleError::Cancelled { .. }
            )
        {
            // Everything seen before the break is already judged. A loader would stop here too,
            // but read on without executing to report any import written after the break.
            // A loader fails here, so the file cannot be loaded as it is; but what a stream means
            // past a break is a guess, and a scanner that gives up there is what attackers aim
            // for: never safe.
            self.findings.push(
                Finding::new(
                    Risk::Suspicious,
                    None,
                    format!(
                        "malformed pickle: {err}; a loader would fail here, and what follows could not be judged"
                    ),
                )
                .at(ctx.member, ctx.base_offset + err.offset(), None),
            );
            let after = usize::try_from(err.offset())
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            let steps = self
                .limits
                .pickle
                .max_ops
                .saturating_sub(self.budget.ops)
                .min(MAX_WALK_STEPS);
            let (globals, walked) = globals_by_walk(&stream.bytes, after, steps);
            self.budget.ops = self.budget.ops.saturating_add(walked);
            for (offset, op, module, name) in globals {
                let class = self.policy.classify(&module, &name);
                let (risk, reason) = match class {
                    Class::Allowed | Class::UserAllowed => continue,
                    Class::Dangerous(r) => (Risk::Dangerous, r),
                    Class::Unknown(r) => (Risk::Suspicious, r),
                };
                self.findings.push(
                    Finding::new(
                        risk,
                        Some(format!("{module}.{name}")),
                        format!("{reason} (written after the point where loading fails)"),
                    )
                    .at(ctx.member, ctx.base_offset + offset, Some(op.name())),
                );
            }
        }
        self.analysis.streams.push(StreamReport {
            member: stream.member.clone(),
            offset: stream.base_offset + stream.start as u64,
            length: program.end.saturating_sub(stream.start as u64),
            protocol: program.protocol,
            opcodes: program.ops,
            role: match stream.role {
                Role::Object => "object",
                Role::Header => "header",
                Role::Records => "records",
                Role::Extra => "extra member",
                Role::Concatenated => "concatenated",
                Role::NumpyObject => "numpy object array",
            },
            error: program.error.as_ref().map(ToString::to_string),
        });
        program
    }

    /// A stream whose operand runs past its FRAME is a different pickle to different readers:
    /// the divergence is a finding, and the other reading is judged too (its findings that the
    /// first reading did not make are added, saying which reader sees them).
    fn other_reading(
        &mut self,
        stream: &Stream<'_>,
        ctx: &Context<'_>,
        framing: Framing,
        straddle: Straddle,
    ) {
        self.findings.push(
            Finding::new(
                Risk::Suspicious,
                None,
                format!(
                    "frame-boundary divergence: {} at offset {} reads past the end of its FRAME (offset {}), which CPython's picklers never write; pickle.py refuses the stream (\"pickle exhausted before end of frame\"), pickle.loads reads on through the boundary, and the C unpickler over a file (torch.load's reader of a zip's data.pkl) drops the rest of the frame and reads from after it, so loaders and scanners see different pickles in the same bytes; both readings are judged",
                    straddle.op,
                    ctx.base_offset + straddle.offset,
                    ctx.base_offset + straddle.frame_end
                ),
            )
            .at(ctx.member, ctx.base_offset + straddle.offset, None),
        );
        if !self.admit_stream() {
            return;
        }
        let other = framing.other();
        let mut seen = Findings::new(self.limits.max_findings);
        let program = {
            let mut judge = Judge::new(self.policy, *ctx, &mut seen, None);
            vm::run_framed(
                &stream.bytes,
                stream.start,
                other,
                &mut self.budget,
                &mut judge,
            )
        };
        self.after_run(&program);
        for mut f in seen.finish() {
            if f.risk == Risk::Info || self.findings.has(&f) {
                continue;
            }
            f.reason = format!("as {} reads it: {}", other.reader(), f.reason);
            self.findings.push(f);
        }
        self.nested(&program, ctx, 0);
    }

    fn finding(&mut self, f: Finding) {
        self.findings.push(f);
    }

    /// The bytes of a zip member, inflated within what is left of the file's inflate budget;
    /// `None` when that budget is used up (the analysis is then stopped).
    fn member<'b>(
        &mut self,
        bytes: &'b [u8],
        entry: &crate::archive::zip::ZipEntry,
    ) -> Option<Result<Cow<'b, [u8]>, String>> {
        if self.analysis.stopped.is_some() {
            return None;
        }
        let left = self.limits.max_inflated_bytes.saturating_sub(self.inflated);
        if !entry.is_stored() {
            if entry.size > left {
                self.stop(format!(
                    "analysis stopped: member `{}` inflates to {} bytes, more than the {} bytes left of the file's inflate limit of {} (raise it with --limit inflated=N)",
                    entry.name, entry.size, left, self.limits.max_inflated_bytes
                ));
                return None;
            }
            self.inflated += entry.size;
        }
        let read = container::member_bytes(bytes, entry, entry.size.min(left));
        if let Ok(data) = &read
            && let Err(mismatch) =
                crate::archive::zip::check_crc(entry, crate::archive::zip::crc32(data))
        {
            // torch's reader ignores CRCs, Python's zipfile (and the scanners built on it)
            // refuses the member: a damaged member is where tools disagree about a file.
            self.findings.push(Finding::new(
                Risk::Suspicious,
                None,
                format!(
                    "{mismatch}: the file is damaged or was altered after it was written (torch.load ignores CRCs, Python's zipfile refuses the member)"
                ),
            ));
        }
        Some(read)
    }
}

/// How the loader of `stream` reads frames: `torch.load` reads a zip's `data.pkl` from an
/// `io.BytesIO`; everything else is read here as `pickle.loads` reads bytes (the other reading
/// is judged too whenever the two differ).
fn framing_of(stream: &Stream<'_>) -> Framing {
    let data_pkl = stream
        .member
        .as_deref()
        .is_some_and(|m| m == "data.pkl" || m.ends_with("/data.pkl"));
    if stream.role == Role::Object && data_pkl {
        Framing::FileNoPeek
    } else {
        Framing::ReadThrough
    }
}

/// The leaves of a non-tensor value tree (a pickle report's `objects`) as dotted `path = value` pairs, at
/// most `limit` of them: strings as they are, other scalars and arrays of scalars as JSON; tensor
/// placeholders are left out (they are in the tensor list).
pub fn value_leaves(objects: &serde_json::Value, limit: usize) -> Vec<(String, String)> {
    fn walk(v: &serde_json::Value, path: &str, limit: usize, out: &mut Vec<(String, String)>) {
        if out.len() >= limit {
            return;
        }
        let child = |k: &str| {
            if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            }
        };
        match v {
            serde_json::Value::Object(map) => {
                for (k, val) in map {
                    walk(val, &child(k), limit, out);
                }
            }
            serde_json::Value::Array(items)
                if items.iter().any(|i| i.is_object() || i.is_array()) =>
            {
                for (i, val) in items.iter().enumerate() {
                    walk(val, &child(&i.to_string()), limit, out);
                }
            }
            serde_json::Value::String(s) if s.starts_with("<tensor ") => {}
            serde_json::Value::Null if path.is_empty() => {}
            serde_json::Value::String(s) => out.push((path.to_string(), s.clone())),
            other => out.push((path.to_string(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    walk(objects, "", limit, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_finds_globals_after_garbage() {
        let bytes = b"\xff\xffcos\nsystem\n\x80\x02X\x01\x00\x00\x00a.";
        let (found, _) = globals_by_walk(bytes, 0, 1000);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].2.as_str(), found[0].3.as_str()), ("os", "system"));
    }
}
