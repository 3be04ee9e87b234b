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

use crate::limits::GLOBAL_COST;
use crate::pickle::opcode::Op;
use crate::pickle::value::{Arena, CallKind, Node, NodeId, Object, Val};

mod calls;
mod containers;
mod control;
mod memo;
mod operands;
mod scalars;
mod stack;

pub use crate::limits::PickleLimits;

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

    /// Runs one opcode; `Some(root)` at STOP. The opcodes are grouped by family, one file each.
    fn step(&mut self, op: Op) -> Step<Option<Val>> {
        match op {
            Op::Stop | Op::Proto | Op::Frame | Op::Mark | Op::Pop | Op::PopMark | Op::Dup => {
                self.control_op(op)
            }
            Op::None
            | Op::NewTrue
            | Op::NewFalse
            | Op::BinInt
            | Op::BinInt1
            | Op::BinInt2
            | Op::Int
            | Op::Long
            | Op::Long1
            | Op::Long4
            | Op::Float
            | Op::BinFloat
            | Op::String
            | Op::BinString
            | Op::ShortBinString
            | Op::Unicode
            | Op::ShortBinUnicode
            | Op::BinUnicode
            | Op::BinUnicode8
            | Op::ShortBinBytes
            | Op::BinBytes
            | Op::BinBytes8
            | Op::ByteArray8
            | Op::NextBuffer
            | Op::ReadonlyBuffer => self.scalar_op(op),
            Op::EmptyTuple
            | Op::EmptyList
            | Op::EmptyDict
            | Op::EmptySet
            | Op::Tuple
            | Op::Tuple1
            | Op::Tuple2
            | Op::Tuple3
            | Op::List
            | Op::Dict
            | Op::FrozenSet
            | Op::Append
            | Op::Appends
            | Op::AddItems
            | Op::SetItem
            | Op::SetItems => self.container_op(op),
            Op::Put
            | Op::BinPut
            | Op::LongBinPut
            | Op::Memoize
            | Op::Get
            | Op::BinGet
            | Op::LongBinGet => self.memo_op(op),
            Op::Global
            | Op::StackGlobal
            | Op::Inst
            | Op::Obj
            | Op::Reduce
            | Op::NewObj
            | Op::NewObjEx
            | Op::Build
            | Op::Persid
            | Op::BinPersid
            | Op::Ext1
            | Op::Ext2
            | Op::Ext4 => self.call_op(op),
        }
    }

    /// The error for an opcode handed to a family that does not run it (a bug in [`Self::step`]).
    fn misrouted(&self, op: Op) -> PickleError {
        self.bad_operand(op, "internal error: opcode routed to the wrong family")
    }
}

#[cfg(test)]
mod tests;
