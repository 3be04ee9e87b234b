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

pub mod compat;
pub mod container;
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
use crate::pickle::container::{Role, Stream, TorchZip};
use crate::pickle::opcode::Op;
use crate::pickle::policy::{
    Class, Context, Finding, Findings, Judge, PersistentKind, Policy, Risk, Verdict,
};
use crate::pickle::vm::{Budget, Framing, PickleError, Program, Straddle};
use crate::progress::Progress;

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
                .min(WALK_STEPS);
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
                    .at(ctx.member, ctx.base_offset + offset, Some(op)),
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

    /// Looks for pickle streams in `bytes[from..]`, the bytes after the last STOP that are not a
    /// pickle: a second stream hidden behind junk is invisible to a loader that stops at the junk
    /// and to a scanner that does, but not to one that searches for it (or seeks to it).
    ///
    /// Candidates are the offsets where a stream can plausibly start ([`Candidates`]);
    /// each try is charged [`RESYNC_COST`] opcodes on top of those it runs, from the file's
    /// budget, so a tail of any size costs at most `max_ops / RESYNC_COST` tries and one pass
    /// over its bytes, and each try copies at most [`TRY_BYTES`] of strings. A try counts as a
    /// stream when it imports something not allowlisted and either reaches STOP or the import
    /// is `dangerous`; the others are junk and leave no trace.
    fn hidden_streams(&mut self, bytes: &[u8], from: usize, member: Option<&str>) {
        let mut at = from;
        let mut candidates = Candidates::new(bytes);
        while at < bytes.len() {
            if self.analysis.stopped.is_some() {
                return;
            }
            let Some(found) = candidates.next_from(at) else {
                return;
            };
            self.budget.ops = self.budget.ops.saturating_add(RESYNC_COST);
            if self.budget.ops > self.limits.pickle.max_ops {
                self.stop(format!(
                    "analysis stopped at offset {found}: more than {} opcodes spent searching the {} bytes after the last pickle for hidden streams, the limit (raise it with --limit ops=N)",
                    self.limits.pickle.max_ops,
                    bytes.len() - from
                ));
                return;
            }
            let ctx = Context {
                member,
                base_offset: 0,
                persistent: PersistentKind::None,
            };
            let mut seen = Findings::new(self.limits.max_findings);
            // A try may copy at most TRY_BYTES of strings (random lengths in junk would otherwise
            // copy and charge up to the whole tail each time); junk gives its bytes back.
            let bytes_before = self.budget.bytes;
            let file_max = self.budget.limits.max_bytes;
            self.budget.limits.max_bytes = file_max.min(bytes_before.saturating_add(TRY_BYTES));
            let program = {
                let mut judge = Judge::new(self.policy, ctx, &mut seen, None);
                vm::run(bytes, found, &mut self.budget, &mut judge)
            };
            self.budget.limits.max_bytes = file_max;
            let findings = seen.finish();
            let dangerous = findings.iter().any(|f| f.risk == Risk::Dangerous);
            let over_try = matches!(
                program.error,
                Some(PickleError::Limit { name: "bytes", .. })
            ) && self.budget.bytes <= file_max;
            if over_try && !dangerous {
                self.budget.bytes = bytes_before;
                self.findings.push(Finding::new(
                    Risk::Suspicious,
                    None,
                    format!(
                        "a pickle-like run in the junk after the last STOP holds a string of more than {TRY_BYTES} bytes and was not followed; what it hides is unknown"
                    ),
                ));
                at = found + 1;
                continue;
            }
            self.after_run(&program);
            // Random bytes often make a short valid pickle, and one that calls what it built; only
            // a stream that imports something it cannot vouch for is worth reporting.
            let imports = findings.iter().any(|f| {
                f.risk > Risk::Info && matches!(f.opcode, Some("GLOBAL" | "STACK_GLOBAL" | "INST"))
            });
            let complete = program.error.is_none();
            if !imports || !(complete || dangerous) {
                self.budget.bytes = bytes_before;
                at = found + 1;
                continue;
            }
            if !self.admit_stream() {
                return;
            }
            self.findings.push(
                Finding::new(
                    Risk::Suspicious,
                    None,
                    format!(
                        "a pickle stream is hidden at offset {found}, after {} bytes of junk that follow the last STOP: torch.load and a single pickle.load never read it, but a loader that seeks there or calls pickle.load again does, and a scanner that stops at the junk never sees it",
                        found - from
                    ),
                )
                .at(member, found as u64, None),
            );
            for mut f in findings {
                if f.risk != Risk::Info {
                    f.reason = format!("in the stream hidden at offset {found}: {}", f.reason);
                    self.findings.push(f);
                }
            }
            self.nested(&program, &ctx, 0);
            self.analysis.streams.push(StreamReport {
                member: member.map(str::to_string),
                offset: found as u64,
                length: program.end.saturating_sub(found as u64),
                protocol: program.protocol,
                opcodes: program.ops,
                role: "hidden after junk",
                error: program.error.as_ref().map(ToString::to_string),
            });
            at = usize::try_from(program.end)
                .unwrap_or(bytes.len())
                .max(found + 1);
        }
    }

    /// Scans pickles hidden in bytes or str values (the argument of `pickle.loads`,
    /// `torch.storage._load_from_bytes`...): what they would import is reported too.
    fn nested(&mut self, program: &Program, ctx: &Context<'_>, depth: usize) {
        for id in 0..program.arena.len() as value::NodeId {
            if self.analysis.stopped.is_some() {
                return;
            }
            let bytes: Cow<'_, [u8]> = match program.arena.get(id) {
                Some(value::Node::Bytes(b)) => Cow::Borrowed(b),
                // `_codecs.encode(text, 'latin1')` turns a str into these bytes.
                Some(value::Node::Str(s))
                    if s.len() >= 8
                        && container::looks_like_pickle(&latin1_prefix(s))
                        && s.chars().all(|c| (c as u32) < 256) =>
                {
                    self.budget.bytes = self.budget.bytes.saturating_add(s.len() as u64);
                    Cow::Owned(s.chars().map(|c| c as u8).collect())
                }
                _ => continue,
            };
            if bytes.len() < 8 || !container::looks_like_pickle(&bytes) {
                continue;
            }
            if depth >= self.limits.max_nesting {
                self.findings.push(Finding::new(
                    Risk::Suspicious,
                    None,
                    format!(
                        "a {}-byte value that looks like a pickle is nested more than {} levels deep and was not scanned (raise it with --limit nesting=N)",
                        bytes.len(),
                        self.limits.max_nesting
                    ),
                ));
                continue;
            }
            if self.analysis.stopped.is_some() {
                return;
            }
            // A value with no PROTO header is only a guess (text such as "Pads tensor." in a
            // TorchScript debug pickle reads as PERSID): what it does counts when it reads to
            // its STOP or imports something, not when it is text that breaks at once.
            let header = bytes.first() == Some(&0x80);
            let mut found = Findings::new(self.limits.max_findings);
            let inner = {
                let mut judge = Judge::new(
                    self.policy,
                    Context {
                        base_offset: 0,
                        ..*ctx
                    },
                    &mut found,
                    Some(bytes.len()),
                );
                vm::run(&bytes, 0, &mut self.budget, &mut judge)
            };
            let found = found.finish();
            if header || inner.error.is_none() || found.iter().any(|f| f.global.is_some()) {
                self.findings.extend(found);
            }
            self.after_run(&inner);
            // Names and text that only start like a pickle fail at once; they cost opcodes from
            // the budget but do not count as streams.
            let real = inner.events > 0 || inner.ops >= 8 || inner.error.is_none();
            if real && !self.admit_stream() {
                return;
            }
            // Even a nested pickle with no imports may carry another one in its values.
            self.nested(&inner, ctx, depth + 1);
        }
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

    /// Raw pickle streams, one after another until the bytes end.
    fn raw(&mut self, bytes: &[u8]) {
        let mut at = 0usize;
        for index in 0.. {
            let stream = Stream {
                member: None,
                bytes: Cow::Borrowed(bytes),
                start: at,
                base_offset: 0,
                role: if index == 0 {
                    Role::Object
                } else {
                    Role::Concatenated
                },
                persistent: PersistentKind::None,
            };
            let program = self.run(&stream);
            let failed = program.error.is_some();
            let end = usize::try_from(program.end).unwrap_or(bytes.len());
            if index == 0 {
                self.analysis.object = Some(program);
            }
            if failed {
                if index > 0 {
                    // Junk that merely starts like a pickle may hide a real one further on.
                    self.hidden_streams(bytes, at + 1, None);
                }
                return;
            }
            at = end;
            let rest = bytes.get(at..).unwrap_or(&[]);
            if rest.iter().all(u8::is_ascii_whitespace) {
                return;
            }
            if !container::looks_like_pickle(rest) {
                self.finding(
                    Finding::new(
                        Risk::Info,
                        None,
                        format!(
                            "{} bytes follow the last pickle and are not a pickle (searched for hidden streams)",
                            rest.len()
                        ),
                    )
                    .at(None, at as u64, None),
                );
                self.hidden_streams(bytes, at, None);
                return;
            }
            if index == 0 {
                self.finding(
                    Finding::new(
                        Risk::Info,
                        None,
                        "more pickles follow the first one: `pickle.load` reads one, joblib-style loaders read them all; all are scanned",
                    )
                    .at(None, at as u64, None),
                );
            }
        }
    }

    fn zip(&mut self, bytes: &[u8], format: Format) {
        let archive = match container::torch_zip(bytes) {
            Ok(z) => z,
            Err(e) => {
                self.finding(Finding::new(
                    Risk::Suspicious,
                    None,
                    format!("the zip archive cannot be read ({e}); nothing in it was scanned"),
                ));
                return;
            }
        };
        self.findings.extend(archive.findings.iter().cloned());
        let data_pkl = archive.data_pkl;
        let mut referenced: Vec<String> = Vec::new();
        if let Some(i) = data_pkl {
            let entry = &archive.entries[i];
            // `None`: the inflate budget is spent and the analysis already says so.
            match self.member(bytes, entry) {
                Some(Ok(b)) => {
                    let stream = Stream {
                        member: Some(entry.name.clone()),
                        bytes: b,
                        start: 0,
                        base_offset: 0,
                        role: Role::Object,
                        persistent: PersistentKind::Storage,
                    };
                    let program = self.run(&stream);
                    referenced = torch::storage_keys(&program.arena);
                    let end = usize::try_from(program.end).unwrap_or(usize::MAX);
                    if program.error.is_none() && end < stream.bytes.len() {
                        self.hidden_streams(&stream.bytes, end, Some(&entry.name));
                    }
                    self.analysis.object = Some(program);
                }
                Some(Err(e)) => self.finding(Finding::new(Risk::Suspicious, None, e)),
                None => {}
            }
        } else if matches!(format, Format::PytorchZip | Format::Torchscript) {
            self.finding(Finding::new(
                Risk::Suspicious,
                None,
                "no data.pkl in the archive: torch.load would fail, and there is no pickle to judge",
            ));
        }
        // Every other member that parses as a pickle is scanned too, whatever its name.
        let referenced: HashSet<u64> = referenced
            .iter()
            .filter_map(|k| archive.record(k))
            .map(|r| r.local_header_offset)
            .collect();
        for (i, entry) in archive.entries.iter().enumerate() {
            if self.analysis.stopped.is_some() {
                break;
            }
            if Some(i) == data_pkl
                || entry.name.ends_with('/')
                || referenced.contains(&entry.local_header_offset)
                || (archive.torchscript && torchscript::is_source(&entry.name))
            {
                continue;
            }
            // One read (and inflate) of the member serves both checks.
            let b = match self.member(bytes, entry) {
                None => break,
                Some(Ok(b)) => b,
                Some(Err(e)) => {
                    self.finding(Finding::new(
                        Risk::Suspicious,
                        None,
                        format!("{e}; the member was not scanned"),
                    ));
                    continue;
                }
            };
            if (format == Format::NumpyZip || entry.name.to_ascii_lowercase().ends_with(".npy"))
                && b.starts_with(b"\x93NUMPY")
            {
                self.npy(&b, Some(entry.name.clone()), 0);
                continue;
            }
            if !container::looks_like_pickle(&b) {
                continue;
            }
            let stream = Stream {
                member: Some(entry.name.clone()),
                bytes: b,
                start: 0,
                base_offset: 0,
                role: Role::Extra,
                persistent: PersistentKind::Storage,
            };
            let program = self.run(&stream);
            // Random bytes that happen to start like a pickle fail at once; only report members
            // that really are pickles.
            if program.error.is_some()
                && program.events == 0
                && program.ops < 8
                && self.analysis.stopped.is_none()
            {
                self.analysis.streams.pop();
                self.findings.forget_member(&entry.name);
                continue;
            }
            let lower = entry.name.to_ascii_lowercase();
            let expected = lower.ends_with("constants.pkl")
                || (archive.torchscript && torchscript::is_read_pickle(&lower));
            if !expected {
                self.finding(Finding::new(
                    Risk::Info,
                    None,
                    format!(
                        "member `{}` is a pickle that torch.load does not read; other tools might",
                        entry.name
                    ),
                ));
            }
        }
        if archive.torchscript {
            self.torchscript_code(bytes, &archive);
        }
        self.analysis.zip = Some(archive);
    }

    fn legacy(&mut self, bytes: &[u8]) {
        let mut at = 0usize;
        let mut little_endian = true;
        let roles = [
            Role::Header,
            Role::Header,
            Role::Header,
            Role::Object,
            Role::Records,
        ];
        for (i, role) in roles.into_iter().enumerate() {
            let stream = Stream {
                member: None,
                bytes: Cow::Borrowed(bytes),
                start: at,
                base_offset: 0,
                role,
                persistent: if role == Role::Object {
                    PersistentKind::Storage
                } else {
                    PersistentKind::None
                },
            };
            let program = self.run(&stream);
            if program.error.is_some() {
                if role == Role::Object {
                    self.analysis.object = Some(program);
                }
                return;
            }
            at = usize::try_from(program.end).unwrap_or(bytes.len());
            if i == 2
                && let Some(root) = program.root
            {
                little_endian = torch::sys_info_little_endian(&program.arena, root).unwrap_or(true);
            }
            if role == Role::Object {
                self.analysis.object = Some(program);
            } else if role == Role::Records {
                self.analysis.legacy_keys = Some(program);
            }
        }
        self.analysis.legacy = Some(LegacyLayout {
            storages_start: at as u64,
            little_endian,
        });
    }

    fn tar(&mut self, bytes: &[u8]) {
        let mut layout = tar::TarLayout::default();
        let members = crate::archive::tar::members(bytes);
        for name in ["sys_info", "pickle", "storages", "tensors"] {
            if !members.iter().any(|m| m.name == name) {
                self.finding(Finding::new(
                    Risk::Info,
                    None,
                    format!("the tar archive has no `{name}` member"),
                ));
            }
        }
        for m in &members {
            let Some(data) = bytes.get(m.data.start as usize..m.data.end as usize) else {
                continue;
            };
            let emit =
                |runner: &mut Runner<'_>, start: usize, role: Role, persistent: PersistentKind| {
                    let stream = Stream {
                        member: Some(m.name.clone()),
                        bytes: Cow::Borrowed(data),
                        start,
                        base_offset: 0,
                        role,
                        persistent,
                    };
                    runner.run(&stream)
                };
            match m.name.as_str() {
                "pickle" => {
                    let program = emit(self, 0, Role::Object, PersistentKind::Key);
                    self.analysis.object = Some(program);
                }
                "storages" => {
                    tar::read_storages(data, m.data.start, &mut layout, &mut |start| {
                        emit(self, start, Role::Records, PersistentKind::None)
                    });
                }
                "tensors" => {
                    tar::read_tensors(data, &mut layout, &mut |start| {
                        emit(self, start, Role::Records, PersistentKind::None)
                    });
                }
                "sys_info" => {
                    emit(self, 0, Role::Header, PersistentKind::None);
                }
                _ => {
                    if container::looks_like_pickle(data) {
                        emit(self, 0, Role::Extra, PersistentKind::None);
                    }
                }
            }
        }
        self.findings.extend(
            layout
                .problems
                .iter()
                .map(|p| Finding::new(Risk::Info, None, p.clone())),
        );
        self.analysis.tar = Some(layout);
    }

    fn npy(&mut self, bytes: &[u8], member: Option<String>, base: u64) {
        match container::npy_header(bytes) {
            Ok(header) => {
                if header.is_object() {
                    self.finding(Finding::new(
                        Risk::Info,
                        None,
                        format!(
                            "object array{}: its data is a pickle, loaded only with allow_pickle=True",
                            member.as_deref().map(|m| format!(" `{m}`")).unwrap_or_default()
                        ),
                    ));
                    let stream = Stream {
                        member: member.clone(),
                        bytes: Cow::Owned(bytes.to_vec()),
                        start: header.data_start,
                        base_offset: base,
                        role: Role::NumpyObject,
                        persistent: PersistentKind::None,
                    };
                    let program = self.run(&stream);
                    if member.is_none() {
                        self.analysis.object = Some(program);
                    }
                }
                if member.is_none() {
                    self.analysis.npy = Some(header);
                }
            }
            Err(e) => self.finding(Finding::new(Risk::Info, None, e)),
        }
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

/// Opcodes charged for each try at starting a stream in the junk after the last STOP.
pub const RESYNC_COST: u64 = 64;

/// Most bytes of strings one such try may copy.
pub const TRY_BYTES: u64 = 16 << 20;

/// Longest module or name line a protocol 0 GLOBAL candidate may have.
const MAX_NAME_LINE: usize = 256;

/// Finds, left to right, the offsets where a pickle stream plausibly starts: PROTO with a
/// protocol up to 5, or a protocol 0/1 GLOBAL or INST (optionally after a MARK) whose module and
/// name are dotted identifiers on lines of their own. One pass: each line is scanned a bounded
/// number of times, whatever the bytes, so searching a tail costs time linear in its length.
pub struct Candidates<'a> {
    bytes: &'a [u8],
    line: Option<NameLine>,
}

/// What is known of the line a position is in.
#[derive(Clone, Copy)]
struct NameLine {
    /// First position it describes.
    start: usize,
    /// Its `\n` (or the end of the bytes).
    end: usize,
    /// The last byte in `start..end` that cannot be part of a dotted name.
    last_bad: Option<usize>,
    /// Whether the line after it is a dotted name of at most [`MAX_NAME_LINE`] bytes.
    next_is_name: bool,
}

fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
}

impl<'a> Candidates<'a> {
    /// A search over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Candidates { bytes, line: None }
    }

    /// The first candidate at or after `from` (calls must not go backwards).
    pub fn next_from(&mut self, from: usize) -> Option<usize> {
        (from..self.bytes.len()).find(|&i| self.is_candidate(i))
    }

    fn is_candidate(&mut self, i: usize) -> bool {
        match self.bytes.get(i) {
            Some(0x80) => self.bytes.get(i + 1).is_some_and(|p| *p <= 5),
            Some(b'(') => self.global_at(i + 1),
            Some(_) => self.global_at(i),
            None => false,
        }
    }

    fn global_at(&mut self, j: usize) -> bool {
        if !matches!(self.bytes.get(j), Some(b'c' | b'i')) {
            return false;
        }
        let from = j + 1;
        let line = self.line_at(from);
        from < line.end
            && line.end < self.bytes.len()
            && line.end - from <= MAX_NAME_LINE
            && line.last_bad.is_none_or(|b| b < from)
            && !self.bytes[from].is_ascii_digit()
            && line.next_is_name
    }

    fn line_at(&mut self, pos: usize) -> NameLine {
        if let Some(line) = self.line
            && line.start <= pos
            && pos <= line.end
        {
            return line;
        }
        let rest = self.bytes.get(pos..).unwrap_or(&[]);
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.bytes.len(), |n| pos + n);
        let last_bad = self.bytes[pos..end]
            .iter()
            .rposition(|&b| !name_byte(b))
            .map(|n| pos + n);
        let next = self.bytes.get(end + 1..).unwrap_or(&[]);
        let window = &next[..next.len().min(MAX_NAME_LINE + 1)];
        let next_is_name = window
            .iter()
            .position(|&b| b == b'\n')
            .is_some_and(|n| n > 0 && window[..n].iter().all(|&b| name_byte(b)));
        let line = NameLine {
            start: pos,
            end,
            last_bad,
            next_is_name,
        };
        self.line = Some(line);
        line
    }
}

/// The first two characters of `s` as latin-1 bytes (enough for [`container::looks_like_pickle`]).
fn latin1_prefix(s: &str) -> Vec<u8> {
    s.chars()
        .take(2)
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(0))
        .collect()
}

/// Most opcodes walked after the point where a stream broke (also bounded by what is left of the
/// file's opcode budget).
const WALK_STEPS: u64 = 10_000_000;

/// Most distinct names the walk after a break reports.
const WALK_NAMES: usize = 10_000;

/// Walks opcodes linearly from `start` (as `pickletools.genops` does, without a stack), at most
/// `max_steps` of them, and returns each distinct GLOBAL and INST name with its first offset
/// (at most [`WALK_NAMES`]): what a stream mentions after a point where the machine had to stop.
/// Also returns the steps taken.
pub fn globals_by_walk(
    bytes: &[u8],
    start: usize,
    max_steps: u64,
) -> (Vec<(u64, Op, String, String)>, u64) {
    let mut out = Vec::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut at = start;
    let line = |at: &mut usize| -> Option<String> {
        let rest = bytes.get(*at..)?;
        let nl = rest.iter().position(|&b| b == b'\n')?;
        let text = String::from_utf8_lossy(&rest[..nl]).into_owned();
        *at += nl + 1;
        Some(text)
    };
    let mut steps = 0u64;
    while let Some(&b) = bytes.get(at) {
        steps += 1;
        if steps > max_steps || out.len() >= WALK_NAMES {
            break;
        }
        let Some(op) = Op::from_byte(b) else {
            // Resynchronise: skip the byte.
            at += 1;
            continue;
        };
        let offset = at as u64;
        at += 1;
        let fixed = |n: usize, at: &mut usize| -> Option<()> {
            *at = at.saturating_add(n);
            Some(())
        };
        let counted = |width: usize, at: &mut usize| -> Option<()> {
            let len_bytes = bytes.get(*at..*at + width)?;
            let mut buf = [0u8; 8];
            buf[..width].copy_from_slice(len_bytes);
            let len = usize::try_from(u64::from_le_bytes(buf)).ok()?;
            *at = at.checked_add(width)?.checked_add(len)?;
            Some(())
        };
        let ok = match op {
            Op::Global | Op::Inst => match (line(&mut at), line(&mut at)) {
                (Some(m), Some(n)) => {
                    if seen.insert((m.clone(), n.clone())) {
                        out.push((offset, op, m, n));
                    }
                    Some(())
                }
                _ => None,
            },
            Op::Int
            | Op::Long
            | Op::Float
            | Op::String
            | Op::Unicode
            | Op::Persid
            | Op::Get
            | Op::Put => line(&mut at).map(|_| ()),
            Op::BinInt | Op::LongBinGet | Op::LongBinPut | Op::Ext4 => fixed(4, &mut at),
            Op::BinInt1 | Op::BinGet | Op::BinPut | Op::Proto | Op::Ext1 => fixed(1, &mut at),
            Op::BinInt2 | Op::Ext2 => fixed(2, &mut at),
            Op::BinFloat | Op::Frame => fixed(8, &mut at),
            Op::ShortBinString | Op::ShortBinBytes | Op::ShortBinUnicode | Op::Long1 => {
                counted(1, &mut at)
            }
            Op::BinString | Op::BinUnicode | Op::BinBytes | Op::Long4 => counted(4, &mut at),
            Op::BinUnicode8 | Op::BinBytes8 | Op::ByteArray8 => counted(8, &mut at),
            _ => Some(()),
        };
        if ok.is_none() {
            break;
        }
    }
    (out, steps)
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
