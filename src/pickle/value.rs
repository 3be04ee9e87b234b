//! The values a pickle builds, held in an arena instead of behind reference counts.
//!
//! A pickle can share one value in many places (memo GET), mutate it after it was shared
//! (APPEND, SETITEM, BUILD) and even make it contain itself. An arena of nodes addressed by index
//! gives exactly those semantics with no cycles to leak, no deep copies (a value referenced a
//! billion times is still one node), and a result that is `Send` so it can leave a worker thread.
//! Small immutable values (None, bools, machine ints, floats) are stored inline in [`Val`].

use std::fmt::Write as _;

/// Index of a node in an [`Arena`].
pub type NodeId = u32;

/// A value on the pickle stack: small ones inline, everything else a node of the arena.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Val {
    /// Python `None`.
    None,
    /// Python `bool`.
    Bool(bool),
    /// A Python `int` that fits in 64 bits.
    Int(i64),
    /// Python `float`.
    Float(f64),
    /// Anything else.
    Ref(NodeId),
}

/// How an object came to be: which opcode called what.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// REDUCE: `callable(*args)`.
    Reduce,
    /// NEWOBJ: `cls.__new__(cls, *args)`.
    NewObj,
    /// NEWOBJ_EX: `cls.__new__(cls, *args, **kwargs)`.
    NewObjEx,
    /// INST: `module.name(*args)` (protocol 0).
    Inst,
    /// OBJ: `cls(*args)` (protocol 1).
    Obj,
}

/// The result of a call the pickle asks for. Nothing is called: the node records the callable,
/// the arguments and everything later applied to the result.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    /// What is called (normally a [`Node::Global`]).
    pub callable: Val,
    /// Which opcode made the call.
    pub kind: CallKind,
    /// The argument tuple (or whatever value the pickle supplied as one).
    pub args: Val,
    /// Keyword arguments (NEWOBJ_EX only).
    pub kwargs: Option<Val>,
    /// States applied by BUILD, in order.
    pub state: Vec<Val>,
    /// Values appended (APPEND/APPENDS/ADDITEMS): calls of the object's `append`/`extend`/`add`.
    pub items: Vec<Val>,
    /// Key/value pairs set (SETITEM/SETITEMS): calls of the object's `__setitem__`.
    pub entries: Vec<(Val, Val)>,
    /// Offset of the opcode that made the call.
    pub offset: u64,
}

/// A value that is not small enough to live in a [`Val`].
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// An `int` beyond 64 bits, as text (`"123…"` or `"0x…"`).
    BigInt(String),
    /// `str`.
    Str(String),
    /// `bytes` (also Python 2 `str` read with a bytes encoding).
    Bytes(Vec<u8>),
    /// `bytearray`.
    ByteArray(Vec<u8>),
    /// `list`.
    List(Vec<Val>),
    /// `tuple`.
    Tuple(Vec<Val>),
    /// `dict`, in insertion order.
    Dict(Vec<(Val, Val)>),
    /// `set`.
    Set(Vec<Val>),
    /// `frozenset`.
    FrozenSet(Vec<Val>),
    /// A module attribute the pickle imports (`GLOBAL`, `STACK_GLOBAL`, `INST`).
    Global {
        /// Module as written in the pickle.
        module: String,
        /// Attribute name, possibly dotted.
        name: String,
    },
    /// A call's result.
    Object(Box<Object>),
    /// What `persistent_load(pid)` returns (PyTorch: a storage).
    Persistent {
        /// The persistent id.
        pid: Val,
    },
    /// An out-of-band buffer (NEXT_BUFFER).
    Buffer,
    /// A global looked up in `copyreg`'s extension registry (EXT1/2/4).
    Extension {
        /// The registry code.
        code: u32,
    },
}

/// Where the nodes live.
#[derive(Clone, Debug, Default)]
pub struct Arena {
    nodes: Vec<Node>,
}

impl Arena {
    /// Adds a node.
    pub(crate) fn push(&mut self, node: Node) -> Val {
        // The node limit (checked by the machine) keeps this far below u32::MAX.
        let id = self.nodes.len() as NodeId;
        self.nodes.push(node);
        Val::Ref(id)
    }

    /// The node behind `id`.
    pub fn get(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id as usize)
    }

    pub(crate) fn get_mut(&mut self, id: NodeId) -> Option<&mut Node> {
        self.nodes.get_mut(id as usize)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when no node was made.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node a value refers to, if it is not an inline value.
    pub fn node(&self, v: Val) -> Option<&Node> {
        match v {
            Val::Ref(id) => self.get(id),
            _ => None,
        }
    }

    /// The text of a `str` value.
    pub fn str(&self, v: Val) -> Option<&str> {
        match self.node(v) {
            Some(Node::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// Text of a `str` or (ASCII-ish) `bytes` value: torch's legacy pickles use either for keys.
    pub fn text(&self, v: Val) -> Option<String> {
        match self.node(v) {
            Some(Node::Str(s)) => Some(s.clone()),
            Some(Node::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    /// An integer value (inline ints and bools).
    pub fn int(&self, v: Val) -> Option<i64> {
        match v {
            Val::Int(i) => Some(i),
            Val::Bool(b) => Some(i64::from(b)),
            _ => None,
        }
    }

    /// The elements of a tuple or list value.
    pub fn seq(&self, v: Val) -> Option<&[Val]> {
        match self.node(v) {
            Some(Node::Tuple(items) | Node::List(items)) => Some(items),
            _ => None,
        }
    }

    /// `module.name` of a global value.
    pub fn global(&self, v: Val) -> Option<(&str, &str)> {
        match self.node(v) {
            Some(Node::Global { module, name }) => Some((module, name)),
            _ => None,
        }
    }

    /// The object a value refers to, if it is the result of a call.
    pub fn object(&self, v: Val) -> Option<&Object> {
        match self.node(v) {
            Some(Node::Object(o)) => Some(o),
            _ => None,
        }
    }

    /// A short Python-like rendering of `v` for messages: at most `max` characters, nested
    /// values elided past a few levels.
    pub fn repr(&self, v: Val, max: usize) -> String {
        let mut out = String::new();
        self.repr_into(v, 0, max, &mut out);
        if out.chars().count() > max {
            out = out.chars().take(max.saturating_sub(1)).collect();
            out.push('…');
        }
        out
    }

    fn repr_into(&self, v: Val, depth: usize, max: usize, out: &mut String) {
        if out.len() > max {
            return;
        }
        let _ = match v {
            Val::None => write!(out, "None"),
            Val::Bool(true) => write!(out, "True"),
            Val::Bool(false) => write!(out, "False"),
            Val::Int(i) => write!(out, "{i}"),
            Val::Float(f) => write!(out, "{f:?}"),
            Val::Ref(id) => {
                let Some(node) = self.get(id) else {
                    return;
                };
                if depth > 4 {
                    out.push('…');
                    return;
                }
                let seq = |out: &mut String, open: &str, items: &[Val], close: &str| {
                    out.push_str(open);
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            out.push_str(", ");
                        }
                        if out.len() > max {
                            break;
                        }
                        self.repr_into(*item, depth + 1, max, out);
                    }
                    out.push_str(close);
                };
                match node {
                    Node::BigInt(s) => write!(out, "{s}"),
                    Node::Str(s) => write!(out, "{s:?}"),
                    Node::Bytes(b) => write!(out, "b{:?}", String::from_utf8_lossy(b)),
                    Node::ByteArray(b) => {
                        write!(out, "bytearray({} bytes)", b.len())
                    }
                    Node::List(items) => {
                        seq(out, "[", items, "]");
                        Ok(())
                    }
                    Node::Tuple(items) => {
                        seq(out, "(", items, if items.len() == 1 { ",)" } else { ")" });
                        Ok(())
                    }
                    Node::Set(items) | Node::FrozenSet(items) => {
                        seq(out, "{", items, "}");
                        Ok(())
                    }
                    Node::Dict(entries) => {
                        out.push('{');
                        for (i, (k, val)) in entries.iter().enumerate() {
                            if i > 0 {
                                out.push_str(", ");
                            }
                            if out.len() > max {
                                break;
                            }
                            self.repr_into(*k, depth + 1, max, out);
                            out.push_str(": ");
                            self.repr_into(*val, depth + 1, max, out);
                        }
                        out.push('}');
                        Ok(())
                    }
                    Node::Global { module, name } => write!(out, "{module}.{name}"),
                    Node::Object(o) => {
                        self.repr_into(o.callable, depth + 1, max, out);
                        match self.node(o.args) {
                            Some(Node::Tuple(items)) => seq(out, "(", items, ")"),
                            _ => {
                                out.push('(');
                                self.repr_into(o.args, depth + 1, max, out);
                                out.push(')');
                            }
                        }
                        Ok(())
                    }
                    Node::Persistent { pid } => {
                        out.push_str("persistent_load(");
                        self.repr_into(*pid, depth + 1, max, out);
                        out.push(')');
                        Ok(())
                    }
                    Node::Buffer => write!(out, "<out-of-band buffer>"),
                    Node::Extension { code } => write!(out, "<extension {code}>"),
                }
            }
        };
    }
}
