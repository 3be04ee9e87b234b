//! A pickle machine that runs every opcode of protocols 0 to 5 and executes nothing.
//!
//! It follows CPython's `_pickle.c` step by step (the same stack fences at MARKs, the same memo
//! rules for PUT/GET/MEMOIZE, the same errors for what CPython rejects), so the value it builds
//! and the globals it sees are the ones `pickle.load` would see. Where CPython would import a
//! module or call something, the machine makes a symbolic node instead and records an
//! [`Event`] and hands it to a [`Sink`] at once (the policy judges it there, so nothing grows
//! with the number of events). Every quantity a file controls is charged to a [`Budget`] shared
//! by all the streams of one file before anything is allocated, and every opcode costs O(1)
//! amortised: dict keys are found through an index kept as items are set.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

use crate::pickle::opcode::Op;
use crate::pickle::value::{Arena, CallKind, Node, NodeId, Object, Val};

pub use crate::limits::PickleLimits;

/// What one GLOBAL, STACK_GLOBAL or INST costs in opcodes of the budget.
pub const GLOBAL_COST: u64 = 64;

/// What the streams of one file have used of their [`PickleLimits`], and who watches.
#[derive(Debug)]
pub struct Budget<'p> {
    /// The limits.
    pub limits: PickleLimits,
    /// Opcodes executed so far.
    pub ops: u64,
    /// Nodes built so far.
    pub nodes: u64,
    /// Values stored in containers so far.
    pub items: u64,
    /// Bytes materialized so far.
    pub bytes: u64,
    /// Polled every 65,536 opcodes: cancellation, and input bytes gone through.
    pub progress: Option<&'p crate::progress::Progress>,
}

impl<'p> Budget<'p> {
    /// A fresh budget.
    pub fn new(limits: PickleLimits, progress: Option<&'p crate::progress::Progress>) -> Self {
        Budget {
            limits,
            ops: 0,
            nodes: 0,
            items: 0,
            bytes: 0,
            progress,
        }
    }
}

/// Receives each [`Event`] as the machine meets it, with the arena as it is at that moment.
pub trait Sink {
    /// One event.
    fn event(&mut self, arena: &Arena, event: Event);
}

/// Collects the events (tests and tools that want the raw list).
impl Sink for Vec<Event> {
    fn event(&mut self, _arena: &Arena, event: Event) {
        self.push(event);
    }
}

impl Default for PickleLimits {
    fn default() -> Self {
        PickleLimits::DEFAULT
    }
}

/// Something the pickle asks a real unpickler to do that could run code.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A module attribute is imported.
    Global {
        /// The [`Node::Global`].
        node: NodeId,
        /// Opcode offset.
        offset: u64,
        /// GLOBAL, STACK_GLOBAL or INST.
        op: Op,
    },
    /// Something is called.
    Call {
        /// The [`Node::Object`] holding callable and arguments.
        node: NodeId,
        /// Opcode offset.
        offset: u64,
        /// REDUCE, NEWOBJ, NEWOBJ_EX, INST or OBJ.
        op: Op,
    },
    /// BUILD: `target.__setstate__(state)` or attribute assignment.
    Build {
        /// What is built.
        target: Val,
        /// The state.
        state: Val,
        /// Opcode offset.
        offset: u64,
    },
    /// `persistent_load(pid)`.
    Persistent {
        /// The id.
        pid: Val,
        /// Opcode offset.
        offset: u64,
        /// PERSID or BINPERSID.
        op: Op,
    },
    /// APPEND(S), SETITEM(S) or ADDITEMS on something that is not a plain list, dict or set:
    /// a call of that object's method.
    MethodCall {
        /// The object.
        target: Val,
        /// Opcode offset.
        offset: u64,
        /// The opcode.
        op: Op,
    },
    /// EXT1/2/4: a global taken from `copyreg`'s extension registry.
    Extension {
        /// Registry code.
        code: u32,
        /// Opcode offset.
        offset: u64,
    },
    /// STACK_GLOBAL whose module or name is not a string literal but the result of a call: the
    /// import is decided at load time.
    ComputedGlobal {
        /// The module operand.
        module: Val,
        /// The name operand.
        name: Val,
        /// Opcode offset.
        offset: u64,
    },
    /// NEXT_BUFFER: an out-of-band buffer the loader must supply.
    Buffer {
        /// Opcode offset.
        offset: u64,
    },
}

/// Why a pickle stream stopped before its STOP.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PickleError {
    /// The stream ended inside an opcode or before STOP.
    #[error("the pickle ends in the middle of {op} at offset {offset} (truncated)")]
    Truncated {
        /// Opcode being read.
        op: &'static str,
        /// Its offset.
        offset: u64,
    },
    /// A byte that is no opcode.
    #[error("byte 0x{byte:02x} at offset {offset} is not a pickle opcode")]
    UnknownOpcode {
        /// The byte.
        byte: u8,
        /// Its offset.
        offset: u64,
    },
    /// An opcode needs more values than the stack holds above the last MARK.
    #[error("{op} at offset {offset} needs a value but the stack is empty (above the last MARK)")]
    StackUnderflow {
        /// The opcode.
        op: &'static str,
        /// Its offset.
        offset: u64,
    },
    /// An opcode needs a MARK that was never pushed.
    #[error("{op} at offset {offset} needs a MARK but there is none")]
    NoMark {
        /// The opcode.
        op: &'static str,
        /// Its offset.
        offset: u64,
    },
    /// GET of a memo slot nothing was PUT into.
    #[error("{op} at offset {offset} reads memo slot {index}, which is empty")]
    MemoMissing {
        /// The opcode.
        op: &'static str,
        /// Its offset.
        offset: u64,
        /// The slot.
        index: u64,
    },
    /// An operand that is malformed (bad number text, bad string quoting, negative length...).
    #[error("{op} at offset {offset}: {message}")]
    BadOperand {
        /// The opcode.
        op: &'static str,
        /// Its offset.
        offset: u64,
        /// What is wrong.
        message: String,
    },
    /// A value of the wrong type where CPython would raise.
    #[error("{op} at offset {offset}: {message}")]
    BadValue {
        /// The opcode.
        op: &'static str,
        /// Its offset.
        offset: u64,
        /// What is wrong.
        message: String,
    },
    /// A protocol newer than 5.
    #[error("PROTO at offset {offset} asks for protocol {proto}; the newest is 5")]
    BadProtocol {
        /// The requested protocol.
        proto: u8,
        /// Its offset.
        offset: u64,
    },
    /// One of the [`PickleLimits`] was reached.
    #[error(
        "analysis stopped at offset {offset}: more than {limit} {what}, the limit ckptscope sets against hostile files (raise it with --limit {name}=N)"
    )]
    Limit {
        /// Which quantity, as people read it.
        what: &'static str,
        /// Its name for `--limit` ([`crate::Limits::set`]).
        name: &'static str,
        /// Its limit.
        limit: u64,
        /// Where.
        offset: u64,
    },
    /// The user cancelled.
    #[error("cancelled at offset {offset}")]
    Cancelled {
        /// Where.
        offset: u64,
    },
}

impl PickleError {
    /// Offset in the stream where the machine stopped.
    pub fn offset(&self) -> u64 {
        match self {
            PickleError::Truncated { offset, .. }
            | PickleError::UnknownOpcode { offset, .. }
            | PickleError::StackUnderflow { offset, .. }
            | PickleError::NoMark { offset, .. }
            | PickleError::MemoMissing { offset, .. }
            | PickleError::BadOperand { offset, .. }
            | PickleError::BadValue { offset, .. }
            | PickleError::BadProtocol { offset, .. }
            | PickleError::Limit { offset, .. }
            | PickleError::Cancelled { offset } => *offset,
        }
    }
}

/// How the modelled unpickler reads its input. It only matters where an operand runs past the
/// end of a FRAME, which CPython's picklers never write (they close the frame before a large
/// payload) and readers disagree on (see [`Straddle`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Framing {
    /// `pickle.loads(bytes)`, the C unpickler over memory: FRAME only checks that its bytes are
    /// there, and reads run on through its end.
    #[default]
    ReadThrough,
    /// The C unpickler over a file object without `peek`, which is how `torch.load` reads a zip's
    /// `data.pkl` (an `io.BytesIO`): a FRAME's bytes are read into a buffer, and a read that does
    /// not fit in what is left of it drops that rest and reads from the file after it
    /// (`_Unpickler_ReadImpl`); only the payloads of the bytes opcodes (`_Unpickler_ReadInto`)
    /// run on through.
    FileNoPeek,
}

impl Framing {
    /// The other reading.
    pub fn other(self) -> Framing {
        match self {
            Framing::ReadThrough => Framing::FileNoPeek,
            Framing::FileNoPeek => Framing::ReadThrough,
        }
    }

    /// Who reads this way.
    pub fn reader(self) -> &'static str {
        match self {
            Framing::ReadThrough => "pickle.loads (reading through the frame boundary)",
            Framing::FileNoPeek => {
                "torch.load's reader of a zip's data.pkl (the C unpickler over io.BytesIO, dropping the rest of the frame)"
            }
        }
    }
}

/// An operand that runs past the end of the bytes its FRAME declared: `pickle.py` refuses the
/// stream ("pickle exhausted before end of frame"), `pickle.loads` reads on, the C unpickler over
/// a file drops the rest of the frame. The same bytes are different pickles to different
/// readers, a way to show a scanner one program and a loader another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Straddle {
    /// Offset of the opcode whose operand crosses the boundary.
    pub offset: u64,
    /// The opcode.
    pub op: &'static str,
    /// Where the frame ends.
    pub frame_end: u64,
}

/// What running one pickle stream produced: always the events seen, and either the result or
/// the error that stopped it.
#[derive(Clone, Debug)]
pub struct Program {
    /// Every node built.
    pub arena: Arena,
    /// The object STOP returned, if the stream got that far.
    pub root: Option<Val>,
    /// How many events (imports, calls, builds...) were handed to the sink.
    pub events: u64,
    /// Why the stream stopped early.
    pub error: Option<PickleError>,
    /// Offset just past the STOP (or where it stopped).
    pub end: u64,
    /// Protocol declared by PROTO (0 when absent).
    pub protocol: u8,
    /// Opcodes executed.
    pub ops: u64,
    /// The first operand that ran past the end of its FRAME, if one did.
    pub straddle: Option<Straddle>,
}

impl Program {
    /// The program of a stream that was not run because the file's analysis had already
    /// stopped.
    pub fn not_run(start: usize) -> Program {
        Program {
            arena: Arena::default(),
            root: None,
            events: 0,
            error: Some(PickleError::Limit {
                what: "work for one file (the analysis had already stopped)",
                name: "ops",
                limit: 0,
                offset: start as u64,
            }),
            end: start as u64,
            protocol: 0,
            ops: 0,
            straddle: None,
        }
    }
}

/// Runs the pickle that starts at `start` in `input` up to its STOP, charging `budget` and
/// handing every event to `sink`, reading it as `pickle.loads` does.
pub fn run(input: &[u8], start: usize, budget: &mut Budget<'_>, sink: &mut dyn Sink) -> Program {
    run_framed(input, start, Framing::ReadThrough, budget, sink)
}

/// [`run`], reading frames as `framing` says.
pub fn run_framed(
    input: &[u8],
    start: usize,
    framing: Framing,
    budget: &mut Budget<'_>,
    sink: &mut dyn Sink,
) -> Program {
    let limits = budget.limits;
    let mut m = Machine {
        input,
        pos: start,
        framing,
        buffered_to: start,
        frame_end: None,
        straddle: None,
        limits,
        budget,
        sink,
        arena: Arena::default(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        dict_index: HashMap::default(),
        keys: ahash::RandomState::new(),
        events: 0,
        ops: 0,
        protocol: 0,
        op_start: start,
        reported: start,
    };
    let outcome = m.execute();
    if let Some(p) = m.budget.progress {
        p.add_done(m.pos.saturating_sub(m.reported) as u64);
    }
    let (root, error) = match outcome {
        Ok(root) => (Some(root), None),
        Err(e) => (None, Some(e)),
    };
    Program {
        arena: m.arena,
        root,
        events: m.events,
        error,
        end: m.pos as u64,
        protocol: m.protocol,
        ops: m.ops,
        straddle: m.straddle,
    }
}

struct Machine<'a, 'b> {
    input: &'a [u8],
    pos: usize,
    framing: Framing,
    /// [`Framing::FileNoPeek`]: how far the file has been read into the buffer (past `pos`
    /// only after a FRAME).
    buffered_to: usize,
    /// [`Framing::ReadThrough`]: the end of the last FRAME while `pos` is inside it.
    frame_end: Option<usize>,
    straddle: Option<Straddle>,
    limits: PickleLimits,
    budget: &'a mut Budget<'b>,
    sink: &'a mut dyn Sink,
    arena: Arena,
    stack: Vec<Val>,
    marks: Vec<usize>,
    memo: HashMap<u64, Val>,
    /// (dict node, key hash) → entry index, kept as entries are added.
    dict_index: HashMap<(NodeId, u64), usize, ahash::RandomState>,
    keys: ahash::RandomState,
    events: u64,
    ops: u64,
    protocol: u8,
    op_start: usize,
    /// Input position last reported to the progress watcher.
    reported: usize,
}

type Step<T> = Result<T, PickleError>;

impl Machine<'_, '_> {
    fn emit(&mut self, event: Event) {
        self.events += 1;
        self.sink.event(&self.arena, event);
    }

    /// Every 65,536 opcodes: has the user cancelled? (and how far the input is read).
    fn poll(&mut self) -> Step<()> {
        if let Some(p) = self.budget.progress {
            p.add_done(self.pos.saturating_sub(self.reported) as u64);
            self.reported = self.pos;
            if p.is_cancelled() {
                return Err(PickleError::Cancelled {
                    offset: self.pos as u64,
                });
            }
        }
        Ok(())
    }

    fn execute(&mut self) -> Step<Val> {
        loop {
            self.op_start = self.pos;
            let Some(&byte) = self.input.get(self.pos) else {
                return Err(PickleError::Truncated {
                    op: "the stream (no STOP)",
                    offset: self.pos as u64,
                });
            };
            let op = Op::from_byte(byte).ok_or(PickleError::UnknownOpcode {
                byte,
                offset: self.pos as u64,
            })?;
            self.pos += 1;
            self.ops += 1;
            self.budget.ops += 1;
            if self.budget.ops > self.limits.max_ops {
                return Err(self.limit("opcodes", "ops", self.limits.max_ops));
            }
            if self.ops & 0xffff == 0 {
                self.poll()?;
            }
            if let Some(root) = self.step(op)? {
                return Ok(root);
            }
        }
    }

    fn offset(&self) -> u64 {
        self.op_start as u64
    }

    fn limit(&self, what: &'static str, name: &'static str, limit: u64) -> PickleError {
        PickleError::Limit {
            what,
            name,
            limit,
            offset: self.offset(),
        }
    }

    fn bad_operand(&self, op: Op, message: impl Into<String>) -> PickleError {
        PickleError::BadOperand {
            op: op.name(),
            offset: self.offset(),
            message: message.into(),
        }
    }

    fn bad_value(&self, op: Op, message: impl Into<String>) -> PickleError {
        PickleError::BadValue {
            op: op.name(),
            offset: self.offset(),
            message: message.into(),
        }
    }

    // ---- reading operands ---------------------------------------------------------------------

    fn truncated(&self, op: Op) -> PickleError {
        PickleError::Truncated {
            op: op.name(),
            offset: self.offset(),
        }
    }

    /// The end of the frame `pos` is in, if any.
    fn boundary(&self) -> Option<usize> {
        match self.framing {
            Framing::ReadThrough => self.frame_end.filter(|&end| self.pos < end),
            Framing::FileNoPeek => (self.pos < self.buffered_to).then_some(self.buffered_to),
        }
    }

    /// Notes the first read of `n` bytes that crosses the end of a frame.
    fn check_straddle(&mut self, op: Op, n: usize) {
        if self.straddle.is_some() {
            return;
        }
        if let Some(end) = self.boundary()
            && self.pos.saturating_add(n) > end
        {
            self.straddle = Some(Straddle {
                offset: self.offset(),
                op: op.name(),
                frame_end: end as u64,
            });
        }
    }

    /// Where the next `n` bytes come from, as `[start, end)` of the input: the C unpickler over a
    /// file reads what does not fit in its buffer from the file after the buffer, except for
    /// `through` reads (`readinto`), which first drain the buffer.
    fn span(&self, n: usize, through: bool) -> Option<(usize, usize)> {
        let here = self.pos.checked_add(n)?;
        let (start, end) = match self.boundary() {
            Some(buffered)
                if self.framing == Framing::FileNoPeek && here > buffered && !through =>
            {
                (buffered, buffered.checked_add(n)?)
            }
            _ => (self.pos, here),
        };
        (end <= self.input.len()).then_some((start, end))
    }

    /// Reads `n` bytes the way the modelled unpickler does.
    fn read(&mut self, op: Op, n: u64, through: bool) -> Step<&[u8]> {
        let n = usize::try_from(n).map_err(|_| self.truncated(op))?;
        self.check_straddle(op, n);
        let (start, end) = self.span(n, through).ok_or_else(|| self.truncated(op))?;
        self.advance_to(end);
        Ok(&self.input[start..end])
    }

    fn advance_to(&mut self, end: usize) {
        self.pos = end;
        self.buffered_to = self.buffered_to.max(end);
        if self.frame_end.is_some_and(|e| end >= e) {
            self.frame_end = None;
        }
    }

    fn take(&mut self, op: Op, n: u64) -> Step<&[u8]> {
        self.read(op, n, false)
    }

    fn take_array<const N: usize>(&mut self, op: Op) -> Step<[u8; N]> {
        let bytes = self.take(op, N as u64)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u8(&mut self, op: Op) -> Step<u8> {
        Ok(self.take_array::<1>(op)?[0])
    }

    fn u16(&mut self, op: Op) -> Step<u16> {
        Ok(u16::from_le_bytes(self.take_array(op)?))
    }

    fn u32(&mut self, op: Op) -> Step<u32> {
        Ok(u32::from_le_bytes(self.take_array(op)?))
    }

    fn u64(&mut self, op: Op) -> Step<u64> {
        Ok(u64::from_le_bytes(self.take_array(op)?))
    }

    /// A text operand up to (not including) the next `\n`. Over a file, the C unpickler looks
    /// for it in its buffer and, failing that, reads a whole new line from the file after the
    /// buffer.
    fn line(&mut self, op: Op) -> Step<&[u8]> {
        let newline = |from: usize| {
            self.input
                .get(from..)
                .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
                .map(|nl| from + nl)
        };
        let mut start = self.pos;
        let mut nl = newline(start).ok_or_else(|| self.truncated(op))?;
        if let Some(end) = self.boundary()
            && nl >= end
        {
            if self.straddle.is_none() {
                self.straddle = Some(Straddle {
                    offset: self.offset(),
                    op: op.name(),
                    frame_end: end as u64,
                });
            }
            if self.framing == Framing::FileNoPeek {
                start = end;
                nl = newline(start).ok_or_else(|| self.truncated(op))?;
            }
        }
        self.advance_to(nl + 1);
        Ok(&self.input[start..nl])
    }

    fn line_text(&mut self, op: Op) -> Step<String> {
        let line = self.line(op)?;
        match std::str::from_utf8(line) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => Err(self.bad_operand(op, "text operand is not UTF-8")),
        }
    }

    /// Counts materialized bytes against the limit before they are copied.
    fn charge(&mut self, n: u64) -> Step<()> {
        self.budget.bytes = self.budget.bytes.saturating_add(n);
        if self.budget.bytes > self.limits.max_bytes {
            return Err(self.limit("bytes of strings", "bytes", self.limits.max_bytes));
        }
        Ok(())
    }

    /// Counts values about to be stored in a container.
    fn store(&mut self, n: usize) -> Step<()> {
        self.budget.items = self.budget.items.saturating_add(n as u64);
        if self.budget.items > self.limits.max_items {
            return Err(self.limit(
                "values stored in containers",
                "items",
                self.limits.max_items,
            ));
        }
        Ok(())
    }

    /// Reads a length-prefixed payload, checking the length against the input first. `through`:
    /// the C unpickler reads it with `readinto` (the bytes opcodes), draining a frame's buffer
    /// before reading on.
    fn payload(&mut self, op: Op, len: u64, through: bool) -> Step<Vec<u8>> {
        let n = usize::try_from(len).map_err(|_| self.truncated(op))?;
        self.check_straddle(op, n);
        if self.span(n, through).is_none() {
            return Err(self.truncated(op));
        }
        self.charge(len)?;
        Ok(self.read(op, len, through)?.to_vec())
    }

    // ---- the stack ----------------------------------------------------------------------------

    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn push(&mut self, v: Val) -> Step<()> {
        if self.stack.len() >= self.limits.max_stack {
            return Err(self.limit(
                "values on the stack of one stream",
                "stack",
                self.limits.max_stack as u64,
            ));
        }
        self.stack.push(v);
        Ok(())
    }

    fn node(&mut self, node: Node) -> Step<Val> {
        self.budget.nodes += 1;
        if self.budget.nodes > self.limits.max_nodes as u64 {
            return Err(self.limit("objects", "nodes", self.limits.max_nodes as u64));
        }
        Ok(self.arena.push(node))
    }

    fn push_node(&mut self, node: Node) -> Step<Val> {
        let v = self.node(node)?;
        self.push(v)?;
        Ok(v)
    }

    fn underflow(&self, op: Op) -> PickleError {
        PickleError::StackUnderflow {
            op: op.name(),
            offset: self.offset(),
        }
    }

    fn pop(&mut self, op: Op) -> Step<Val> {
        if self.stack.len() <= self.fence() {
            return Err(self.underflow(op));
        }
        self.stack.pop().ok_or_else(|| self.underflow(op))
    }

    fn top(&self, op: Op) -> Step<Val> {
        if self.stack.len() <= self.fence() {
            return Err(self.underflow(op));
        }
        self.stack.last().copied().ok_or_else(|| self.underflow(op))
    }

    fn set_top(&mut self, v: Val) {
        if let Some(t) = self.stack.last_mut() {
            *t = v;
        }
    }

    fn pop_mark(&mut self, op: Op) -> Step<Vec<Val>> {
        let Some(mark) = self.marks.pop() else {
            return Err(PickleError::NoMark {
                op: op.name(),
                offset: self.offset(),
            });
        };
        let items = self.stack.split_off(mark.min(self.stack.len()));
        self.store(items.len())?;
        Ok(items)
    }

    fn memo_put(&mut self, index: u64, v: Val) -> Step<()> {
        if !self.memo.contains_key(&index) && self.memo.len() >= self.limits.max_memo {
            return Err(self.limit(
                "memo entries in one stream",
                "memo",
                self.limits.max_memo as u64,
            ));
        }
        self.memo.insert(index, v);
        Ok(())
    }

    fn memo_get(&mut self, op: Op, index: u64) -> Step<()> {
        let v = *self.memo.get(&index).ok_or(PickleError::MemoMissing {
            op: op.name(),
            offset: self.offset(),
            index,
        })?;
        self.push(v)
    }

    // ---- values -------------------------------------------------------------------------------

    fn int_from_le(&mut self, bytes: &[u8]) -> Step<Val> {
        if bytes.is_empty() {
            return Ok(Val::Int(0));
        }
        if bytes.len() <= 8 {
            let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
            let mut buf = if negative { [0xffu8; 8] } else { [0u8; 8] };
            buf[..bytes.len()].copy_from_slice(bytes);
            return Ok(Val::Int(i64::from_le_bytes(buf)));
        }
        // Beyond 64 bits: kept as text, for display only; in decimal as Python prints it up
        // to a few hundred digits (the conversion is quadratic), as hex beyond.
        let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
        let text = if bytes.len() <= MAX_DECIMAL_LONG_BYTES {
            decimal_from_le(bytes)
        } else {
            let mut text = String::from("0x");
            for b in bytes.iter().rev() {
                text.push_str(&format!("{b:02x}"));
            }
            if negative {
                text.push_str(" (negative, two's complement)");
            }
            text
        };
        self.charge(text.len() as u64)?;
        self.node(Node::BigInt(text))
    }

    fn int_from_text(&mut self, op: Op, text: &str) -> Step<Val> {
        let t = text.trim();
        let t = t.strip_suffix('L').unwrap_or(t);
        if let Ok(i) = t.parse::<i64>() {
            return Ok(Val::Int(i));
        }
        let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.bad_operand(op, format!("`{t}` is not an integer")));
        }
        self.charge(t.len() as u64)?;
        self.node(Node::BigInt(t.to_string()))
    }

    /// Records a GLOBAL-like import and returns the node.
    fn global(&mut self, op: Op, module: String, name: String) -> Step<Val> {
        self.charge((module.len() + name.len()) as u64)?;
        // Judging an import costs far more than an opcode: each counts as GLOBAL_COST opcodes
        // against the budget (real pickles import a handful of names and memoize them).
        self.budget.ops = self.budget.ops.saturating_add(GLOBAL_COST - 1);
        if self.budget.ops > self.limits.max_ops {
            return Err(self.limit("opcodes", "ops", self.limits.max_ops));
        }
        let v = self.node(Node::Global { module, name })?;
        if let Val::Ref(node) = v {
            let offset = self.offset();
            self.emit(Event::Global { node, offset, op });
        }
        Ok(v)
    }

    fn call(
        &mut self,
        op: Op,
        kind: CallKind,
        callable: Val,
        args: Val,
        kwargs: Option<Val>,
    ) -> Step<Val> {
        let v = self.node(Node::Object(Box::new(Object {
            callable,
            kind,
            args,
            kwargs,
            state: Vec::new(),
            items: Vec::new(),
            entries: Vec::new(),
            offset: self.offset(),
        })))?;
        if let Val::Ref(node) = v {
            let offset = self.offset();
            self.emit(Event::Call { node, offset, op });
        }
        Ok(v)
    }

    fn append_items(&mut self, op: Op, target: Val, items: Vec<Val>) -> Step<()> {
        let offset = self.offset();
        if op == Op::Append {
            // APPENDS and ADDITEMS were charged by `pop_mark`.
            self.store(1)?;
        }
        match target {
            Val::Ref(id) => match self.arena.get_mut(id) {
                Some(Node::List(list)) if op != Op::AddItems => {
                    list.extend(items);
                    Ok(())
                }
                Some(Node::Set(set)) if op == Op::AddItems => {
                    set.extend(items);
                    Ok(())
                }
                Some(Node::Object(obj)) => {
                    obj.items.extend(items);
                    self.emit(Event::MethodCall { target, offset, op });
                    Ok(())
                }
                _ => {
                    // CPython calls `target.append`/`extend`/`add`, which fails for every other
                    // built-in type; a real unpickler raises here.
                    let what = self.arena.repr(target, 60);
                    Err(self.bad_value(op, format!("cannot add items to {what}")))
                }
            },
            _ => Err(self.bad_value(op, "cannot add items to a number or None")),
        }
    }

    fn set_items(&mut self, op: Op, target: Val, pairs: Vec<(Val, Val)>) -> Step<()> {
        let offset = self.offset();
        let Val::Ref(id) = target else {
            return Err(self.bad_value(op, "cannot set items on a number or None"));
        };
        if op == Op::SetItem {
            // SETITEMS and DICT were charged by `pop_mark`.
            self.store(2)?;
        }
        match self.arena.get_mut(id) {
            Some(Node::Dict(entries)) => {
                // A later SETITEM of an equal key replaces the earlier one, as in a Python dict;
                // keys are found through `dict_index` in O(1).
                let mut entries = std::mem::take(entries);
                for (k, v) in pairs {
                    match self.find_key(id, &entries, k) {
                        Found::At(i) => {
                            if let Some(slot) = entries.get_mut(i) {
                                slot.1 = v;
                            }
                        }
                        Found::New(hash) => {
                            if let Some(hash) = hash {
                                self.dict_index.insert((id, hash), entries.len());
                            }
                            entries.push((k, v));
                        }
                    }
                }
                if let Some(Node::Dict(slot)) = self.arena.get_mut(id) {
                    *slot = entries;
                }
                Ok(())
            }
            Some(Node::Object(obj)) => {
                obj.entries.extend(pairs);
                self.emit(Event::MethodCall { target, offset, op });
                Ok(())
            }
            _ => {
                let what = self.arena.repr(target, 60);
                Err(self.bad_value(op, format!("cannot set items on {what}")))
            }
        }
    }

    /// Where key `k` already is in dict `id` (whose entries are `entries`).
    fn find_key(&self, id: NodeId, entries: &[(Val, Val)], k: Val) -> Found {
        let Some(hash) = self.key_hash(k) else {
            // Float keys and the like are never merged (Python would merge `1.0` with `1`).
            return Found::New(None);
        };
        match self.dict_index.get(&(id, hash)) {
            None => Found::New(Some(hash)),
            Some(&i) if entries.get(i).is_some_and(|e| self.key_eq(e.0, k)) => Found::At(i),
            // A 64-bit hash collision: rare enough for a linear look.
            Some(_) => entries
                .iter()
                .position(|e| self.key_eq(e.0, k))
                .map_or(Found::New(Some(hash)), Found::At),
        }
    }

    fn key_hash(&self, k: Val) -> Option<u64> {
        let mut h = self.keys.build_hasher();
        match k {
            Val::None => 0u8.hash(&mut h),
            Val::Bool(b) => (1u8, i64::from(b)).hash(&mut h),
            Val::Int(i) => (1u8, i).hash(&mut h),
            Val::Float(_) => return None,
            Val::Ref(id) => match self.arena.get(id) {
                Some(Node::Str(s)) => (2u8, s.as_bytes()).hash(&mut h),
                Some(Node::Bytes(b)) => (3u8, b.as_slice()).hash(&mut h),
                _ => (4u8, id).hash(&mut h),
            },
        }
        Some(h.finish())
    }

    /// Key equality for the key types [`Machine::key_hash`] hashes.
    fn key_eq(&self, a: Val, b: Val) -> bool {
        let int = |v: Val| match v {
            Val::Bool(x) => Some(i64::from(x)),
            Val::Int(x) => Some(x),
            _ => None,
        };
        match (a, b) {
            (Val::None, Val::None) => true,
            (Val::Ref(x), Val::Ref(y)) => match (self.arena.get(x), self.arena.get(y)) {
                (Some(Node::Str(p)), Some(Node::Str(q))) => p == q,
                (Some(Node::Bytes(p)), Some(Node::Bytes(q))) => p == q,
                (Some(Node::Str(_) | Node::Bytes(_)), _)
                | (_, Some(Node::Str(_) | Node::Bytes(_))) => false,
                _ => x == y,
            },
            _ => int(a).is_some() && int(a) == int(b),
        }
    }

    /// True for values that are data, not the symbolic result of a call or an import.
    fn is_literal(&self, v: Val) -> bool {
        !matches!(
            self.arena.node(v),
            Some(
                Node::Object(_)
                    | Node::Persistent { .. }
                    | Node::Global { .. }
                    | Node::Extension { .. }
                    | Node::Buffer
            )
        )
    }

    // ---- the opcodes --------------------------------------------------------------------------

    /// Runs one opcode; `Some(root)` at STOP.
    fn step(&mut self, op: Op) -> Step<Option<Val>> {
        match op {
            Op::Stop => {
                let root = self.pop(op)?;
                return Ok(Some(root));
            }
            Op::Proto => {
                let proto = self.u8(op)?;
                if proto > 5 {
                    return Err(PickleError::BadProtocol {
                        proto,
                        offset: self.offset(),
                    });
                }
                self.protocol = proto;
            }
            Op::Frame => {
                // The C unpickler reads the frame's bytes (into its buffer, over a file) and steps
                // back to their start; over memory that only checks they are there.
                let len = self.u64(op)?;
                let n = usize::try_from(len).map_err(|_| self.truncated(op))?;
                if self.boundary().is_some() && self.straddle.is_none() {
                    // pickle.py refuses a frame that starts before the last one ends.
                    self.straddle = Some(Straddle {
                        offset: self.offset(),
                        op: op.name(),
                        frame_end: self.boundary().unwrap_or(self.pos) as u64,
                    });
                }
                let (start, end) = self.span(n, false).ok_or_else(|| self.truncated(op))?;
                self.pos = start;
                self.buffered_to = self.buffered_to.max(end);
                if self.framing == Framing::ReadThrough {
                    self.frame_end = (end > start).then_some(end);
                }
            }
            Op::Mark => {
                if self.marks.len() >= self.limits.max_marks {
                    return Err(self.limit(
                        "nested MARKs in one stream",
                        "marks",
                        self.limits.max_marks as u64,
                    ));
                }
                self.marks.push(self.stack.len());
            }
            Op::Pop => {
                if self.stack.len() > self.fence() {
                    self.stack.pop();
                } else {
                    // CPython pops the MARK itself when nothing is above it.
                    self.pop_mark(op)?;
                }
            }
            Op::PopMark => {
                self.pop_mark(op)?;
            }
            Op::Dup => {
                let v = self.top(op)?;
                self.push(v)?;
            }

            // Numbers and constants.
            Op::None => self.push(Val::None)?,
            Op::NewTrue => self.push(Val::Bool(true))?,
            Op::NewFalse => self.push(Val::Bool(false))?,
            Op::BinInt => {
                let v = i32::from_le_bytes(self.take_array(op)?);
                self.push(Val::Int(i64::from(v)))?;
            }
            Op::BinInt1 => {
                let v = self.u8(op)?;
                self.push(Val::Int(i64::from(v)))?;
            }
            Op::BinInt2 => {
                let v = self.u16(op)?;
                self.push(Val::Int(i64::from(v)))?;
            }
            Op::Int => {
                let text = self.line_text(op)?;
                let v = match text.trim() {
                    "00" => Val::Bool(false),
                    "01" => Val::Bool(true),
                    t => self.int_from_text(op, t)?,
                };
                self.push(v)?;
            }
            Op::Long => {
                let text = self.line_text(op)?;
                let v = self.int_from_text(op, &text)?;
                self.push(v)?;
            }
            Op::Long1 => {
                let n = self.u8(op)?;
                let bytes = self.take(op, u64::from(n))?.to_vec();
                let v = self.int_from_le(&bytes)?;
                self.push(v)?;
            }
            Op::Long4 => {
                let n = i32::from_le_bytes(self.take_array(op)?);
                let n =
                    u64::try_from(n).map_err(|_| self.bad_operand(op, "negative byte count"))?;
                let bytes = self.payload(op, n, false)?;
                let v = self.int_from_le(&bytes)?;
                self.push(v)?;
            }
            Op::Float => {
                let text = self.line_text(op)?;
                let v = parse_python_float(&text)
                    .ok_or_else(|| self.bad_operand(op, format!("`{text}` is not a float")))?;
                self.push(Val::Float(v))?;
            }
            Op::BinFloat => {
                let v = f64::from_be_bytes(self.take_array(op)?);
                self.push(Val::Float(v))?;
            }

            // Strings and bytes.
            Op::String => {
                let line = self.line(op)?.to_vec();
                let bytes = unquote_python2_string(&line).ok_or_else(|| {
                    self.bad_operand(op, "the STRING opcode argument must be quoted")
                })?;
                self.charge(bytes.len() as u64)?;
                self.push_node(Node::Str(String::from_utf8_lossy(&bytes).into_owned()))?;
            }
            Op::BinString => {
                let n = i32::from_le_bytes(self.take_array(op)?);
                let n =
                    u64::try_from(n).map_err(|_| self.bad_operand(op, "negative byte count"))?;
                let bytes = self.payload(op, n, false)?;
                self.push_node(Node::Str(String::from_utf8_lossy(&bytes).into_owned()))?;
            }
            Op::ShortBinString => {
                let n = self.u8(op)?;
                let bytes = self.payload(op, u64::from(n), false)?;
                self.push_node(Node::Str(String::from_utf8_lossy(&bytes).into_owned()))?;
            }
            Op::Unicode => {
                let line = self.line(op)?.to_vec();
                let text = decode_raw_unicode_escape(&line)
                    .ok_or_else(|| self.bad_operand(op, "bad \\u escape"))?;
                self.charge(text.len() as u64)?;
                self.push_node(Node::Str(text))?;
            }
            Op::ShortBinUnicode | Op::BinUnicode | Op::BinUnicode8 => {
                let n = match op {
                    Op::ShortBinUnicode => u64::from(self.u8(op)?),
                    Op::BinUnicode => u64::from(self.u32(op)?),
                    _ => self.u64(op)?,
                };
                let bytes = self.payload(op, n, false)?;
                // CPython decodes with "surrogatepass"; lone surrogates only matter for display.
                let text = String::from_utf8(bytes)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                self.push_node(Node::Str(text))?;
            }
            Op::ShortBinBytes | Op::BinBytes | Op::BinBytes8 | Op::ByteArray8 => {
                let n = match op {
                    Op::ShortBinBytes => u64::from(self.u8(op)?),
                    Op::BinBytes => u64::from(self.u32(op)?),
                    _ => self.u64(op)?,
                };
                let bytes = self.payload(op, n, true)?;
                let node = if op == Op::ByteArray8 {
                    Node::ByteArray(bytes)
                } else {
                    Node::Bytes(bytes)
                };
                self.push_node(node)?;
            }

            // Containers.
            Op::EmptyTuple => {
                self.push_node(Node::Tuple(Vec::new()))?;
            }
            Op::EmptyList => {
                self.push_node(Node::List(Vec::new()))?;
            }
            Op::EmptyDict => {
                self.push_node(Node::Dict(Vec::new()))?;
            }
            Op::EmptySet => {
                self.push_node(Node::Set(Vec::new()))?;
            }
            Op::Tuple => {
                let items = self.pop_mark(op)?;
                self.push_node(Node::Tuple(items))?;
            }
            Op::Tuple1 | Op::Tuple2 | Op::Tuple3 => {
                let n = match op {
                    Op::Tuple1 => 1,
                    Op::Tuple2 => 2,
                    _ => 3,
                };
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop(op)?);
                }
                items.reverse();
                self.store(n)?;
                self.push_node(Node::Tuple(items))?;
            }
            Op::List => {
                let items = self.pop_mark(op)?;
                self.push_node(Node::List(items))?;
            }
            Op::Dict => {
                let items = self.pop_mark(op)?;
                if items.len() % 2 != 0 {
                    return Err(self.bad_value(op, "odd number of items for DICT"));
                }
                let pairs = items.chunks_exact(2).map(|p| (p[0], p[1])).collect();
                let v = self.node(Node::Dict(Vec::new()))?;
                self.set_items(op, v, pairs)?;
                self.push(v)?;
            }
            Op::FrozenSet => {
                let items = self.pop_mark(op)?;
                self.push_node(Node::FrozenSet(items))?;
            }
            Op::Append => {
                let v = self.pop(op)?;
                let target = self.top(op)?;
                self.append_items(op, target, vec![v])?;
            }
            Op::Appends | Op::AddItems => {
                let items = self.pop_mark(op)?;
                let target = self.top(op)?;
                self.append_items(op, target, items)?;
            }
            Op::SetItem => {
                let v = self.pop(op)?;
                let k = self.pop(op)?;
                let target = self.top(op)?;
                self.set_items(op, target, vec![(k, v)])?;
            }
            Op::SetItems => {
                let items = self.pop_mark(op)?;
                if items.len() % 2 != 0 {
                    return Err(self.bad_value(op, "odd number of items for SETITEMS"));
                }
                let target = self.top(op)?;
                let pairs = items.chunks_exact(2).map(|p| (p[0], p[1])).collect();
                self.set_items(op, target, pairs)?;
            }

            // The memo.
            Op::Put => {
                let text = self.line_text(op)?;
                let index: i64 = text
                    .trim()
                    .parse()
                    .map_err(|_| self.bad_operand(op, format!("`{text}` is not a memo index")))?;
                let index = u64::try_from(index)
                    .map_err(|_| self.bad_operand(op, "negative PUT argument"))?;
                let v = self.top(op)?;
                self.memo_put(index, v)?;
            }
            Op::BinPut => {
                let index = u64::from(self.u8(op)?);
                let v = self.top(op)?;
                self.memo_put(index, v)?;
            }
            Op::LongBinPut => {
                let index = u64::from(self.u32(op)?);
                let v = self.top(op)?;
                self.memo_put(index, v)?;
            }
            Op::Memoize => {
                let v = self.top(op)?;
                let index = self.memo.len() as u64;
                self.memo_put(index, v)?;
            }
            Op::Get => {
                let text = self.line_text(op)?;
                let index: u64 = text
                    .trim()
                    .parse()
                    .map_err(|_| self.bad_operand(op, format!("`{text}` is not a memo index")))?;
                self.memo_get(op, index)?;
            }
            Op::BinGet => {
                let index = u64::from(self.u8(op)?);
                self.memo_get(op, index)?;
            }
            Op::LongBinGet => {
                let index = u64::from(self.u32(op)?);
                self.memo_get(op, index)?;
            }

            // Imports, calls and object state: the ones that matter.
            Op::Global => {
                let module = self.line_text(op)?;
                let name = self.line_text(op)?;
                let v = self.global(op, module, name)?;
                self.push(v)?;
            }
            Op::StackGlobal => {
                let name = self.pop(op)?;
                let module = self.pop(op)?;
                match (self.arena.str(module), self.arena.str(name)) {
                    (Some(m), Some(n)) => {
                        let (m, n) = (m.to_string(), n.to_string());
                        let v = self.global(op, m, n)?;
                        self.push(v)?;
                    }
                    _ if self.is_literal(module) && self.is_literal(name) => {
                        // Numbers, None, bytes...: CPython raises "STACK_GLOBAL requires str".
                        let what = format!(
                            "{}, {}",
                            self.arena.repr(module, 60),
                            self.arena.repr(name, 60)
                        );
                        return Err(self.bad_value(
                            op,
                            format!("STACK_GLOBAL requires two str operands, got {what}"),
                        ));
                    }
                    _ => {
                        // Operands made by calls (`str('os')`): a real unpickler gets strings at
                        // load time and imports whatever they spell. The import is unknowable
                        // here, which is itself the finding.
                        let m = format!("<computed: {}>", self.arena.repr(module, 80));
                        let n = format!("<computed: {}>", self.arena.repr(name, 80));
                        let v = self.global(op, m, n)?;
                        let offset = self.offset();
                        self.emit(Event::ComputedGlobal {
                            module,
                            name,
                            offset,
                        });
                        self.push(v)?;
                    }
                }
            }
            Op::Inst => {
                let module = self.line_text(op)?;
                let name = self.line_text(op)?;
                let args = self.pop_mark(op)?;
                let class = self.global(op, module, name)?;
                let args = self.node(Node::Tuple(args))?;
                let v = self.call(op, CallKind::Inst, class, args, None)?;
                self.push(v)?;
            }
            Op::Obj => {
                let mut items = self.pop_mark(op)?;
                if items.is_empty() {
                    return Err(self.underflow(op));
                }
                let class = items.remove(0);
                let args = self.node(Node::Tuple(items))?;
                let v = self.call(op, CallKind::Obj, class, args, None)?;
                self.push(v)?;
            }
            Op::Reduce => {
                let args = self.pop(op)?;
                let callable = self.top(op)?;
                let v = self.call(op, CallKind::Reduce, callable, args, None)?;
                self.set_top(v);
            }
            Op::NewObj => {
                let args = self.pop(op)?;
                let class = self.pop(op)?;
                let v = self.call(op, CallKind::NewObj, class, args, None)?;
                self.push(v)?;
            }
            Op::NewObjEx => {
                let kwargs = self.pop(op)?;
                let args = self.pop(op)?;
                let class = self.pop(op)?;
                let v = self.call(op, CallKind::NewObjEx, class, args, Some(kwargs))?;
                self.push(v)?;
            }
            Op::Build => {
                let state = self.pop(op)?;
                let target = self.top(op)?;
                if let Val::Ref(id) = target
                    && matches!(self.arena.get(id), Some(Node::Object(_)))
                {
                    self.store(1)?;
                    if let Some(Node::Object(obj)) = self.arena.get_mut(id) {
                        obj.state.push(state);
                    }
                }
                let offset = self.offset();
                self.emit(Event::Build {
                    target,
                    state,
                    offset,
                });
            }
            Op::Persid => {
                let text = self.line(op)?.to_vec();
                self.charge(text.len() as u64)?;
                let pid = self.node(Node::Str(String::from_utf8_lossy(&text).into_owned()))?;
                self.persistent(op, pid)?;
            }
            Op::BinPersid => {
                let pid = self.pop(op)?;
                self.persistent(op, pid)?;
            }
            Op::Ext1 | Op::Ext2 | Op::Ext4 => {
                let code = match op {
                    Op::Ext1 => u32::from(self.u8(op)?),
                    Op::Ext2 => u32::from(self.u16(op)?),
                    _ => self.u32(op)?,
                };
                if code == 0 {
                    return Err(self.bad_operand(op, "extension code 0 is invalid"));
                }
                self.push_node(Node::Extension { code })?;
                let offset = self.offset();
                self.emit(Event::Extension { code, offset });
            }
            Op::NextBuffer => {
                self.push_node(Node::Buffer)?;
                let offset = self.offset();
                self.emit(Event::Buffer { offset });
            }
            Op::ReadonlyBuffer => {
                self.top(op)?;
            }
        }
        Ok(None)
    }

    fn persistent(&mut self, op: Op, pid: Val) -> Step<()> {
        let offset = self.offset();
        self.emit(Event::Persistent { pid, offset, op });
        self.push_node(Node::Persistent { pid })?;
        Ok(())
    }
}

/// Where a dict key is.
enum Found {
    /// At this entry.
    At(usize),
    /// Not there; its hash, if it has one.
    New(Option<u64>),
}

/// Parses Python's `repr(float)` forms: `1.5`, `1e-05`, `inf`, `-inf`, `nan`.
/// Longest LONG1/LONG4 operand shown in decimal (1024 bits, 309 digits).
const MAX_DECIMAL_LONG_BYTES: usize = 128;

/// Decimal text of a little-endian two's-complement integer.
fn decimal_from_le(bytes: &[u8]) -> String {
    let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
    // Magnitude, little-endian: negate a negative number (invert, add one).
    let mut magnitude: Vec<u8> = bytes.to_vec();
    if negative {
        let mut carry = true;
        for b in &mut magnitude {
            *b = !*b;
            if carry {
                let (v, overflow) = b.overflowing_add(1);
                *b = v;
                carry = overflow;
            }
        }
    }
    // Big-endian base-2^32 limbs, divided by 10^9 until zero.
    let mut limbs: Vec<u32> = magnitude
        .chunks(4)
        .rev()
        .map(|c| {
            let mut buf = [0u8; 4];
            buf[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(buf)
        })
        .collect();
    let mut groups = Vec::new();
    while limbs.iter().any(|&l| l != 0) {
        let mut rem = 0u64;
        for limb in &mut limbs {
            let cur = (rem << 32) | u64::from(*limb);
            *limb = (cur / 1_000_000_000) as u32;
            rem = cur % 1_000_000_000;
        }
        groups.push(rem as u32);
    }
    let mut text = String::from(if negative { "-" } else { "" });
    match groups.split_last() {
        None => text.push('0'),
        Some((most, rest)) => {
            text.push_str(&most.to_string());
            for g in rest.iter().rev() {
                text.push_str(&format!("{g:09}"));
            }
        }
    }
    text
}

fn parse_python_float(text: &str) -> Option<f64> {
    let t = text.trim();
    match t {
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        "nan" | "-nan" | "+nan" => Some(f64::NAN),
        _ if t.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) => t.parse().ok(),
        _ => None,
    }
}

/// The bytes of a protocol-0 STRING argument: a Python 2 `repr` in single or double quotes,
/// with backslash escapes.
fn unquote_python2_string(line: &[u8]) -> Option<Vec<u8>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let (&first, rest) = line.split_first()?;
    if !(first == b'\'' || first == b'"') || rest.last() != Some(&first) || line.len() < 2 {
        return None;
    }
    let body = &rest[..rest.len() - 1];
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(&e) = body.get(i) else {
            out.push(b'\\');
            break;
        };
        i += 1;
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match body.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'x' => {
                let hex = body.get(i..i + 2)?;
                let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                out.push(v);
                i += 2;
            }
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'\\' | b'\'' | b'"' => out.push(e),
            b'\n' => {}
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// Python's `raw-unicode-escape` decoding: `\uXXXX` and `\UXXXXXXXX` escapes, every other byte
/// is a Latin-1 character.
fn decode_raw_unicode_escape(line: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while let Some(&b) = line.get(i) {
        if b == b'\\' && matches!(line.get(i + 1), Some(b'u' | b'U')) {
            let digits = if line.get(i + 1) == Some(&b'u') { 4 } else { 8 };
            let hex = line.get(i + 2..i + 2 + digits)?;
            let code = u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
            i += 2 + digits;
        } else {
            out.push(char::from(b));
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(bytes: &[u8], limits: PickleLimits) -> (Program, Vec<Event>) {
        let mut events = Vec::new();
        let p = run(bytes, 0, &mut Budget::new(limits, None), &mut events);
        (p, events)
    }

    fn run_all(bytes: &[u8]) -> Program {
        run_with(bytes, PickleLimits::DEFAULT).0
    }

    fn framed(framing: Framing, bytes: &[u8]) -> (Program, Vec<Event>) {
        let mut events = Vec::new();
        let p = run_framed(
            bytes,
            0,
            framing,
            &mut Budget::new(PickleLimits::DEFAULT, None),
            &mut events,
        );
        (p, events)
    }

    /// `FRAME` holding `body`.
    fn frame(body: &[u8]) -> Vec<u8> {
        let mut out = vec![0x95];
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(body);
        out
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    // Each expectation below is what CPython 3.11 does with the same bytes: `pickle.loads(b)`
    // for ReadThrough, `pickle.Unpickler(io.BytesIO(b)).load()` for FileNoPeek.

    #[test]
    fn binunicode_past_its_frame_reads_through_in_memory_and_from_after_the_frame_over_a_file() {
        let b = cat(&[b"\x80\x04", &frame(b"X\x0a\x00\x00\x00abc"), b"defghij."]);
        let (p, _) = framed(Framing::ReadThrough, &b);
        assert_eq!(p.arena.str(p.root.unwrap()), Some("abcdefghij"));
        let s = p.straddle.unwrap();
        assert_eq!((s.offset, s.op, s.frame_end), (11, "BINUNICODE", 19));
        // Over a file the 10 bytes come from after the frame: "defghij." and then nothing.
        let (p, _) = framed(Framing::FileNoPeek, &b);
        assert!(
            matches!(p.error, Some(PickleError::Truncated { .. })),
            "{:?}",
            p.error
        );
        assert!(p.straddle.is_some());

        let b = cat(&[b"\x80\x04", &frame(b"X\x04\x00\x00\x00ab"), b"WXYZ."]);
        let (p, _) = framed(Framing::FileNoPeek, &b);
        assert_eq!(p.arena.str(p.root.unwrap()), Some("WXYZ"));
        let (p, _) = framed(Framing::ReadThrough, &b);
        assert!(matches!(
            p.error,
            Some(PickleError::UnknownOpcode { byte: b'Y', .. })
        ));
    }

    #[test]
    fn bytes_payloads_past_their_frame_read_through_in_both_readers() {
        let b = cat(&[b"\x80\x04", &frame(b"B\x0a\x00\x00\x00abc"), b"defghij."]);
        for framing in [Framing::ReadThrough, Framing::FileNoPeek] {
            let (p, _) = framed(framing, &b);
            assert!(
                matches!(p.arena.node(p.root.unwrap()), Some(Node::Bytes(v)) if v == b"abcdefghij")
            );
            // pickle.py still refuses it: a divergence all the same.
            assert!(p.straddle.is_some());
        }
    }

    #[test]
    fn lines_and_fixed_operands_past_their_frame_come_from_after_it_over_a_file() {
        let b = cat(&[b"\x80\x02", &frame(b"cxx"), b"builtins\nlen\n."]);
        let (_, events) = framed(Framing::ReadThrough, &b);
        let (p, events_file) = framed(Framing::FileNoPeek, &b);
        assert!(p.error.is_none(), "{:?}", p.error);
        let global = |p: &Program, e: &[Event]| match e.first() {
            Some(Event::Global { node, .. }) => match p.arena.get(*node) {
                Some(Node::Global { module, name }) => format!("{module}.{name}"),
                _ => String::new(),
            },
            _ => String::new(),
        };
        assert_eq!(global(&p, &events_file), "builtins.len");
        let (p2, _) = framed(Framing::ReadThrough, &b);
        assert_eq!(global(&p2, &events), "xxbuiltins.len");

        let b = cat(&[b"\x80\x02", &frame(b"J\x01\x02"), b"\x03\x04\x05\x06."]);
        let (p, _) = framed(Framing::FileNoPeek, &b);
        assert_eq!(p.root, Some(Val::Int(100_992_003)));
    }

    #[test]
    fn a_frame_inside_a_frame_keeps_the_outer_buffer_over_a_file() {
        let b = cat(&[
            b"\x80\x04",
            &frame(&cat(&[&frame(b"N"), b"X\x02\x00\x00\x00a"])),
            b"b.",
        ]);
        let (p, _) = framed(Framing::ReadThrough, &b);
        assert_eq!(p.arena.str(p.root.unwrap()), Some("ab"));
        assert_eq!(p.straddle.unwrap().op, "FRAME");
        let (p, _) = framed(Framing::FileNoPeek, &b);
        assert!(p.error.is_some());
    }

    #[test]
    fn frames_as_picklers_write_them_are_read_alike_and_no_straddle() {
        let b = cat(&[b"\x80\x04", &frame(b"]\x94(\x8c\x01a\x94K\x01e.")]);
        for framing in [Framing::ReadThrough, Framing::FileNoPeek] {
            let (p, _) = framed(framing, &b);
            assert!(p.error.is_none(), "{framing:?}: {:?}", p.error);
            assert_eq!(p.straddle, None);
            assert_eq!(p.arena.seq(p.root.unwrap()).map(<[Val]>::len), Some(2));
        }
    }

    #[test]
    fn protocol_0_text_values() {
        let p = run_all(b"(lp0\nI1\naI00\naL123456789012345678901234567890L\naF1.5\naS'a\\nb'\naVcaf\\u00e9\na.");
        assert!(p.error.is_none(), "{:?}", p.error);
        let items = p.arena.seq(p.root.unwrap()).unwrap().to_vec();
        assert_eq!(items[0], Val::Int(1));
        assert_eq!(items[1], Val::Bool(false));
        assert!(
            matches!(p.arena.node(items[2]), Some(Node::BigInt(s)) if s == "123456789012345678901234567890")
        );
        assert_eq!(items[3], Val::Float(1.5));
        assert_eq!(p.arena.str(items[4]), Some("a\nb"));
        assert_eq!(p.arena.str(items[5]), Some("café"));
    }

    #[test]
    fn memoize_indexes_by_memo_size_like_cpython() {
        // PUT slot 5, then MEMOIZE: CPython stores at len(memo) == 1, not at 6.
        let p = run_all(b"\x80\x04\x8c\x01a\x94\x8c\x01b\x94\x8c\x01cq\x05\x8c\x01d\x94h\x03.");
        assert!(p.error.is_none(), "{:?}", p.error);
        assert_eq!(p.arena.str(p.root.unwrap()), Some("d"));
    }

    #[test]
    fn long1_is_twos_complement() {
        let p = run_all(b"\x80\x02\x8a\x02\xff\x7f.");
        assert_eq!(p.root, Some(Val::Int(0x7fff)));
        let p = run_all(b"\x80\x02\x8a\x01\xff.");
        assert_eq!(p.root, Some(Val::Int(-1)));
        let p = run_all(b"\x80\x02\x8a\x00.");
        assert_eq!(p.root, Some(Val::Int(0)));
    }

    #[test]
    fn stack_fence_at_mark_is_respected() {
        // REDUCE right after MARK reaches below the fence: CPython raises.
        let (p, events) = run_with(b"cos\nsystem\n(R.", PickleLimits::DEFAULT);
        assert!(
            matches!(p.error, Some(PickleError::StackUnderflow { .. })),
            "{:?}",
            p.error
        );
        // The global was still seen.
        assert!(matches!(events[0], Event::Global { .. }));
    }

    #[test]
    fn pop_on_empty_frame_pops_the_mark() {
        let p = run_all(b"N(0.");
        assert_eq!(p.root, Some(Val::None));
        assert!(p.error.is_none());
    }

    #[test]
    fn truncation_and_bad_lengths_are_errors_before_allocation() {
        let p = run_all(b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f");
        assert!(matches!(
            p.error,
            Some(PickleError::Truncated {
                op: "BINBYTES8",
                ..
            })
        ));
        let p = run_all(b"\x80\x02X\x10\x00\x00\x00abc");
        assert!(matches!(
            p.error,
            Some(PickleError::Truncated {
                op: "BINUNICODE",
                ..
            })
        ));
        let p = run_all(b"\x80\x02");
        assert!(matches!(p.error, Some(PickleError::Truncated { .. })));
    }

    #[test]
    fn setitem_replaces_equal_keys() {
        let p = run_all(b"}(X\x01\x00\x00\x00aK\x01X\x01\x00\x00\x00aK\x02u.");
        match p.arena.node(p.root.unwrap()) {
            Some(Node::Dict(entries)) => {
                assert_eq!(entries.len(), 1);
                assert_eq!(entries[0].1, Val::Int(2));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn limits_stop_bombs() {
        let limits = PickleLimits {
            max_ops: 1000,
            ..PickleLimits::DEFAULT
        };
        let bomb = vec![b'N'; 5000];
        let (p, _) = run_with(&bomb, limits);
        assert!(matches!(
            p.error,
            Some(PickleError::Limit { name: "ops", .. })
        ));
        let marks = vec![b'('; 20_000];
        let p = run_all(&marks);
        assert!(matches!(
            p.error,
            Some(PickleError::Limit { name: "marks", .. })
        ));
        // Values stored in containers count: `]` then `N a` many times.
        let mut appends = b"]".to_vec();
        appends.extend(b"Na".repeat(3000));
        let (p, _) = run_with(
            &appends,
            PickleLimits {
                max_items: 1000,
                ..PickleLimits::DEFAULT
            },
        );
        assert!(matches!(
            p.error,
            Some(PickleError::Limit { name: "items", .. })
        ));
    }

    #[test]
    fn one_budget_spans_streams() {
        let mut budget = Budget::new(
            PickleLimits {
                max_ops: 10,
                ..PickleLimits::DEFAULT
            },
            None,
        );
        let mut events = Vec::new();
        let first = run(b"NNNN000.", 0, &mut budget, &mut events);
        assert!(first.error.is_none());
        let second = run(b"NNNN000.", 0, &mut budget, &mut events);
        assert!(matches!(
            second.error,
            Some(PickleError::Limit { name: "ops", .. })
        ));
    }

    #[test]
    fn dict_keys_are_indexed_not_rescanned() {
        // 80,000 single SETITEMs on one dict: each key once, a repeat replaces.
        let mut b = b"}".to_vec();
        for i in 0..80_000u32 {
            b.push(b'J');
            b.extend(i.to_le_bytes());
            b.extend(b"Ns");
        }
        b.extend(b"J\x05\x00\x00\x00K\x07s.");
        let p = run_all(&b);
        assert!(p.error.is_none(), "{:?}", p.error);
        match p.arena.node(p.root.unwrap()) {
            Some(Node::Dict(entries)) => {
                assert_eq!(entries.len(), 80_000);
                assert_eq!(entries[5], (Val::Int(5), Val::Int(7)));
            }
            other => panic!("{other:?}"),
        }
        // True and 1 are one key, b"a" and "a" are two.
        let p = run_all(b"}(K\x01K\x01\x88K\x02C\x01aK\x03X\x01\x00\x00\x00aK\x04u.");
        match p.arena.node(p.root.unwrap()) {
            Some(Node::Dict(entries)) => {
                assert_eq!(entries.len(), 3);
                assert_eq!(entries[0].1, Val::Int(2));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn python2_string_escapes() {
        assert_eq!(
            unquote_python2_string(b"'a\\x41\\101\\''").unwrap(),
            b"aAA'"
        );
        assert_eq!(unquote_python2_string(b"\"x\""), Some(b"x".to_vec()));
        assert_eq!(unquote_python2_string(b"'x"), None);
        assert_eq!(unquote_python2_string(b"'"), None);
    }
}
