//! What hides around and inside the streams: a second stream after junk following STOP
//! (resynchronised within bounds), pickles nested in values (bytes that are themselves
//! pickles), and the globals a stream names when it cannot be run to the end.
//!
//! Owns: the bounded search for hidden streams. Must not import: `layouts`.
//!
//! `clippy::indexing_slicing` is allowed here: positions are found inside the slice they index (a
//! found newline, a window cut to the bytes left), and length prefixes are written into fixed
//! 8-byte buffers.

#![allow(clippy::indexing_slicing)]

use super::*;
use crate::limits::{MAX_GLOBAL_LINE, MAX_TRY_BYTES, MAX_WALK_NAMES, RESYNC_COST};

impl Runner<'_> {
    /// Looks for pickle streams in `bytes[from..]`, the bytes after the last STOP that are not a
    /// pickle: a second stream hidden behind junk is invisible to a loader that stops at the junk
    /// and to a scanner that does, but not to one that searches for it (or seeks to it).
    ///
    /// Candidates are the offsets where a stream can plausibly start ([`Candidates`]);
    /// each try is charged [`RESYNC_COST`] opcodes on top of those it runs, from the file's
    /// budget, so a tail of any size costs at most `max_ops / RESYNC_COST` tries and one pass
    /// over its bytes, and each try copies at most [`MAX_TRY_BYTES`] of strings. A try counts as a
    /// stream when it imports something not allowlisted and either reaches STOP or the import
    /// is `dangerous`; the others are junk and leave no trace.
    pub(super) fn hidden_streams(&mut self, bytes: &[u8], from: usize, member: Option<&str>) {
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
            // A try may copy at most MAX_TRY_BYTES of strings (random lengths in junk would otherwise
            // copy and charge up to the whole tail each time); junk gives its bytes back.
            let bytes_before = self.budget.bytes;
            let file_max = self.budget.limits.max_bytes;
            self.budget.limits.max_bytes = file_max.min(bytes_before.saturating_add(MAX_TRY_BYTES));
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
                        "a pickle-like run in the junk after the last STOP holds a string of more than {MAX_TRY_BYTES} bytes and was not followed; what it hides is unknown"
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
    pub(super) fn nested(&mut self, program: &Program, ctx: &Context<'_>, depth: usize) {
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
}

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
pub(super) struct NameLine {
    /// First position it describes.
    start: usize,
    /// Its `\n` (or the end of the bytes).
    end: usize,
    /// The last byte in `start..end` that cannot be part of a dotted name.
    last_bad: Option<usize>,
    /// Whether the line after it is a dotted name of at most [`MAX_GLOBAL_LINE`] bytes.
    next_is_name: bool,
}

pub(super) fn name_byte(b: u8) -> bool {
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
            && line.end - from <= MAX_GLOBAL_LINE
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
        let window = &next[..next.len().min(MAX_GLOBAL_LINE + 1)];
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
pub(super) fn latin1_prefix(s: &str) -> Vec<u8> {
    s.chars()
        .take(2)
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(0))
        .collect()
}

/// Walks opcodes linearly from `start` (as `pickletools.genops` does, without a stack), at most
/// `max_steps` of them, and returns each distinct GLOBAL and INST name with its first offset
/// (at most [`MAX_WALK_NAMES`]): what a stream mentions after a point where the machine had to stop.
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
        if steps > max_steps || out.len() >= MAX_WALK_NAMES {
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
