//! Would `torch.load(f, weights_only=True)` load this file, and what would it have to be told?
//!
//! A question apart from the security verdict: a NumPy array in a checkpoint runs no code (the
//! verdict is `safe`), yet torch's weights-only unpickler refuses it until
//! `torch.serialization.add_safe_globals([...])` allows its globals; a pickle written with
//! protocol 4 runs no code either, and that unpickler refuses its FRAME opcode whatever is
//! allowed. The answer is found by running the pickles torch would read through a model of
//! `torch/_weights_only_unpickler.py` (torch 2.15): the same opcodes accepted, the same allowlist
//! (`_get_allowed_globals`, copied below), the same checks on BUILD, APPEND(S), SETITEM(S),
//! NEWOBJ, REDUCE and persistent ids, and the same renames of Python 2 names. Globals it would
//! refuse are assumed allowed and collected, in the order torch meets them, so the answer lists
//! everything `add_safe_globals` needs, not only the first name of the first error; types that
//! BUILD meets on objects returned by allowed calls (a NumPy dtype's class) are collected too.
//!
//! The model is linear in the stream and bounded by the same pickle limits as the machine; it
//! keeps a kind per value (list, dict, tensor, an instance of some class...), never the values.

use std::collections::HashMap;
use std::rc::Rc;

use crate::detect::Format;
use crate::pickle::vm::PickleLimits;

/// The compatibility answer for one file.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WeightsOnly {
    /// `torch.load(f, weights_only=True)` succeeds as the file is.
    pub loads: bool,
    /// Globals `torch.serialization.add_safe_globals` must allow first, in the order torch meets
    /// them (empty when it loads, or when allowing would not help).
    pub needs: Vec<String>,
    /// Why it fails even with those allowed, if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocker: Option<String>,
}

impl WeightsOnly {
    /// One line for people: `loads with torch.load(weights_only=True)`, or what it needs.
    pub fn line(&self) -> String {
        if self.loads {
            return "loads with torch.load(weights_only=True)".into();
        }
        let mut out = String::from("does not load with torch.load(weights_only=True)");
        if !self.needs.is_empty() {
            out.push_str(&format!(
                "; needs torch.serialization.add_safe_globals([...]) for: {}",
                self.needs.join(", ")
            ));
        }
        if let Some(b) = &self.blocker {
            if self.needs.is_empty() {
                out.push_str(&format!(": {b}"));
            } else {
                out.push_str(&format!("; and even then: {b}"));
            }
        }
        out
    }
}

/// `torch._weights_only_unpickler._get_allowed_globals()` of torch 2.15, sorted (printed from
/// the installed torch; `tests/gen/compat.py` checks the files that depend on it).
const ALLOWED: &[&str] = &[
    "_codecs.encode",
    "builtins.bytearray",
    "builtins.complex",
    "builtins.set",
    "collections.Counter",
    "collections.OrderedDict",
    "torch.BFloat16Storage",
    "torch.BFloat16Tensor",
    "torch.BoolStorage",
    "torch.BoolTensor",
    "torch.ByteStorage",
    "torch.ByteTensor",
    "torch.CharStorage",
    "torch.CharTensor",
    "torch.ComplexDoubleStorage",
    "torch.ComplexFloatStorage",
    "torch.DoubleStorage",
    "torch.DoubleTensor",
    "torch.FloatStorage",
    "torch.FloatTensor",
    "torch.HalfStorage",
    "torch.HalfTensor",
    "torch.IntStorage",
    "torch.IntTensor",
    "torch.LongStorage",
    "torch.LongTensor",
    "torch.QInt32Storage",
    "torch.QInt8Storage",
    "torch.QUInt2x4Storage",
    "torch.QUInt4x2Storage",
    "torch.QUInt8Storage",
    "torch.ShortStorage",
    "torch.ShortTensor",
    "torch.Size",
    "torch.Tensor",
    "torch._tensor._rebuild_from_type_v2",
    "torch._utils._rebuild_device_tensor_from_cpu_tensor",
    "torch._utils._rebuild_device_tensor_from_numpy",
    "torch._utils._rebuild_meta_tensor_no_storage",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch._utils._rebuild_qtensor",
    "torch._utils._rebuild_sparse_tensor",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_wrapper_subclass",
    "torch.bcomplex32",
    "torch.bfloat16",
    "torch.bits16",
    "torch.bits1x8",
    "torch.bits2x4",
    "torch.bits4x2",
    "torch.bits8",
    "torch.bool",
    "torch.complex128",
    "torch.complex32",
    "torch.complex64",
    "torch.cuda.BFloat16Storage",
    "torch.cuda.BFloat16Tensor",
    "torch.cuda.BoolStorage",
    "torch.cuda.BoolTensor",
    "torch.cuda.ByteStorage",
    "torch.cuda.ByteTensor",
    "torch.cuda.CharStorage",
    "torch.cuda.CharTensor",
    "torch.cuda.ComplexDoubleStorage",
    "torch.cuda.ComplexFloatStorage",
    "torch.cuda.DoubleStorage",
    "torch.cuda.DoubleTensor",
    "torch.cuda.FloatStorage",
    "torch.cuda.FloatTensor",
    "torch.cuda.HalfStorage",
    "torch.cuda.HalfTensor",
    "torch.cuda.IntStorage",
    "torch.cuda.IntTensor",
    "torch.cuda.LongStorage",
    "torch.cuda.LongTensor",
    "torch.cuda.ShortStorage",
    "torch.cuda.ShortTensor",
    "torch.cuda.sparse.BFloat16Tensor",
    "torch.cuda.sparse.ByteTensor",
    "torch.cuda.sparse.CharTensor",
    "torch.cuda.sparse.DoubleTensor",
    "torch.cuda.sparse.FloatTensor",
    "torch.cuda.sparse.HalfTensor",
    "torch.cuda.sparse.IntTensor",
    "torch.cuda.sparse.LongTensor",
    "torch.cuda.sparse.ShortTensor",
    "torch.device",
    "torch.float16",
    "torch.float32",
    "torch.float4_e2m1fn_x2",
    "torch.float64",
    "torch.float8_e4m3fn",
    "torch.float8_e4m3fnuz",
    "torch.float8_e5m2",
    "torch.float8_e5m2fnuz",
    "torch.float8_e8m0fnu",
    "torch.int1",
    "torch.int16",
    "torch.int2",
    "torch.int3",
    "torch.int32",
    "torch.int4",
    "torch.int5",
    "torch.int6",
    "torch.int64",
    "torch.int7",
    "torch.int8",
    "torch.nn.parameter.Parameter",
    "torch.per_channel_affine",
    "torch.per_channel_affine_float_qparams",
    "torch.per_channel_symmetric",
    "torch.per_tensor_affine",
    "torch.per_tensor_symmetric",
    "torch.qint32",
    "torch.qint8",
    "torch.quint2x4",
    "torch.quint4x2",
    "torch.quint8",
    "torch.serialization._get_layout",
    "torch.sparse.BFloat16Tensor",
    "torch.sparse.ByteTensor",
    "torch.sparse.CharTensor",
    "torch.sparse.DoubleTensor",
    "torch.sparse.FloatTensor",
    "torch.sparse.HalfTensor",
    "torch.sparse.IntTensor",
    "torch.sparse.LongTensor",
    "torch.sparse.ShortTensor",
    "torch.storage.TypedStorage",
    "torch.storage.UntypedStorage",
    "torch.uint1",
    "torch.uint16",
    "torch.uint2",
    "torch.uint3",
    "torch.uint32",
    "torch.uint4",
    "torch.uint5",
    "torch.uint6",
    "torch.uint64",
    "torch.uint7",
    "torch.uint8",
];

/// Modules whose globals torch refuses whatever the user allows (`_blocklisted_modules`).
const BLOCKED: &[&str] = &["sys", "os", "posix", "nt"];

fn allowed(full: &str) -> bool {
    ALLOWED.binary_search(&full).is_ok()
}

/// `torch._utils.IMPORT_MAPPING` and `NAME_MAPPING`: Python 2 names renamed before the lookup.
fn rename(module: &str, name: &str) -> (String, String) {
    let pair = match (module, name) {
        ("__builtin__", "xrange") => Some(("builtins", "range")),
        ("__builtin__", "reduce") => Some(("functools", "reduce")),
        ("__builtin__", "intern") => Some(("sys", "intern")),
        ("__builtin__", "unichr") => Some(("builtins", "chr")),
        ("__builtin__", "unicode" | "basestring") => Some(("builtins", "str")),
        ("__builtin__", "long") => Some(("builtins", "int")),
        ("itertools", "izip") => Some(("builtins", "zip")),
        ("itertools", "imap") => Some(("builtins", "map")),
        ("itertools", "ifilter") => Some(("builtins", "filter")),
        ("itertools", "ifilterfalse") => Some(("itertools", "filterfalse")),
        ("itertools", "izip_longest") => Some(("itertools", "zip_longest")),
        ("UserDict", "IterableUserDict" | "UserDict") => Some(("collections", "UserDict")),
        ("UserList", "UserList") => Some(("collections", "UserList")),
        ("UserString", "UserString") => Some(("collections", "UserString")),
        ("exceptions", "StandardError") => Some(("builtins", "Exception")),
        _ => None,
    };
    if let Some((m, n)) = pair {
        return (m.into(), n.into());
    }
    let module = match module {
        "__builtin__" => "builtins",
        "copy_reg" => "copyreg",
        "Queue" => "queue",
        "repr" => "reprlib",
        "_abcoll" => "collections.abc",
        "UserDict" | "UserList" | "UserString" => "collections",
        "whichdb" => "dbm",
        "StringIO" | "cStringIO" => "io",
        other => other,
    };
    (module.into(), name.into())
}

/// What the model knows of a value: its Python type, never its contents (but the first items
/// of a tuple and short strings, which decide persistent ids and rebuild results).
#[derive(Clone, Debug)]
enum V {
    /// An imported global, by name.
    Global(Rc<str>),
    Tensor,
    Parameter,
    OrderedDict,
    Counter,
    Dict,
    List,
    Tuple(Rc<TupleHead>),
    Str(Option<Rc<str>>),
    Int,
    /// An instance of the class with this name; `None`: of a class the model cannot name.
    Instance(Option<Rc<str>>),
    /// Anything else (None, bool, float, bytes, set, storage...) that no check looks at.
    Other(&'static str),
}

#[derive(Debug)]
struct TupleHead {
    items: Vec<V>,
}

impl V {
    /// `type(v)` as add_safe_globals would name it, for BUILD.
    fn type_name(&self) -> Option<String> {
        Some(match self {
            V::Dict => "builtins.dict".into(),
            V::List => "builtins.list".into(),
            V::Tuple(_) => "builtins.tuple".into(),
            V::Str(_) => "builtins.str".into(),
            V::Int => "builtins.int".into(),
            V::Instance(Some(t)) => t.to_string(),
            V::Other(t) => (*t).into(),
            _ => return None,
        })
    }

    fn short_str(&self) -> Option<&str> {
        match self {
            V::Str(Some(s)) => Some(s),
            _ => None,
        }
    }
}

/// The longest string whose text the model keeps.
const KEPT_STR: usize = 64;

/// The class an allowed-by-the-user call returns, where it is known.
fn result_of(func: &str, args: &V) -> V {
    let head = match args {
        V::Tuple(t) => t.items.as_slice(),
        _ => &[],
    };
    let arg0 = head.first();
    let global_arg = |v: Option<&V>| match v {
        Some(V::Global(g)) => Some(g.clone()),
        _ => None,
    };
    match func {
        "collections.OrderedDict" => V::OrderedDict,
        "collections.Counter" => V::Counter,
        "torch.nn.parameter.Parameter"
        | "torch._utils._rebuild_parameter"
        | "torch._utils._rebuild_parameter_with_state" => V::Parameter,
        "torch.Size" => V::Other("torch.Size"),
        "torch.device" => V::Other("torch.device"),
        "_codecs.encode" => V::Other("builtins.bytes"),
        "builtins.set" => V::Other("builtins.set"),
        "builtins.bytearray" => V::Other("builtins.bytearray"),
        "builtins.complex" => V::Other("builtins.complex"),
        "torch._tensor._rebuild_from_type_v2" => match head.get(1) {
            Some(V::Global(t)) if &**t == "torch.Tensor" => V::Tensor,
            Some(V::Global(t)) if &**t == "torch.nn.parameter.Parameter" => V::Parameter,
            Some(V::Global(t)) => V::Instance(Some(t.clone())),
            _ => V::Instance(None),
        },
        f if f.starts_with("torch._utils._rebuild_") => V::Tensor,
        "numpy.core.multiarray._reconstruct" | "numpy._core.multiarray._reconstruct" => {
            V::Instance(global_arg(arg0))
        }
        "numpy.dtype" => V::Instance(
            arg0.and_then(V::short_str)
                .and_then(numpy_dtype_class)
                .map(Rc::from),
        ),
        "numpy.random._pickle.__randomstate_ctor" => {
            V::Instance(Some(Rc::from("numpy.random.mtrand.RandomState")))
        }
        "numpy.random._pickle.__generator_ctor" => {
            V::Instance(Some(Rc::from("numpy.random._generator.Generator")))
        }
        "numpy.random._pickle.__bit_generator_ctor" => match arg0 {
            Some(V::Global(class)) => V::Instance(Some(class.clone())),
            Some(V::Str(Some(name))) => V::Instance(bit_generator_class(name).map(Rc::from)),
            None => V::Instance(Some(Rc::from("numpy.random._mt19937.MT19937"))),
            _ => V::Instance(None),
        },
        f => {
            let (module, last) = f.rsplit_once('.').unwrap_or(("", f));
            if let Some(class) = last.strip_prefix("__pyx_unpickle_") {
                // Cython's reconstructor of `class`, in the same module.
                V::Instance(Some(Rc::from(format!("{module}.{class}"))))
            } else if last.starts_with(|c: char| c.is_ascii_uppercase()) {
                V::Instance(Some(Rc::from(f)))
            } else {
                V::Instance(None)
            }
        }
    }
}

/// `type(numpy.dtype(code))` in NumPy 2 (`numpy.dtypes.*DType`).
fn numpy_dtype_class(code: &str) -> Option<String> {
    let (kind, size) = code.split_at(code.find(|c: char| c.is_ascii_digit())?);
    let size = size.split('[').next().unwrap_or(size);
    let name = match (kind.trim_start_matches(['<', '>', '|', '=']), size) {
        ("b", "1") => "Bool",
        ("i", "1") => "Int8",
        ("i", "2") => "Int16",
        ("i", "4") => "Int32",
        ("i", "8") => "Int64",
        ("u", "1") => "UInt8",
        ("u", "2") => "UInt16",
        ("u", "4") => "UInt32",
        ("u", "8") => "UInt64",
        ("f", "2") => "Float16",
        ("f", "4") => "Float32",
        ("f", "8") => "Float64",
        ("f", "16") => "LongDouble",
        ("c", "8") => "Complex64",
        ("c", "16") => "Complex128",
        ("c", "32") => "CLongDouble",
        ("O", _) => "Object",
        ("U", _) => "Str",
        ("S", _) => "Bytes",
        ("V", _) => "Void",
        ("M", _) => "DateTime64",
        ("m", _) => "TimeDelta64",
        _ => return None,
    };
    Some(format!("numpy.dtypes.{name}DType"))
}

fn bit_generator_class(name: &str) -> Option<String> {
    let module = match name {
        "MT19937" => "_mt19937",
        "PCG64" | "PCG64DXSM" => "_pcg64",
        "Philox" => "_philox",
        "SFC64" => "_sfc64",
        _ => return None,
    };
    Some(format!("numpy.random.{module}.{name}"))
}

/// Why the model stopped: a fact about the file (`Refused`) or about the model's limits.
enum Stop {
    Refused(String),
}

type Step<T> = Result<T, Stop>;

fn refuse<T>(why: impl Into<String>) -> Step<T> {
    Err(Stop::Refused(why.into()))
}

/// Runs the model over the pickles torch would read, one after another, for one file.
#[derive(Debug, Default)]
pub struct Checker {
    needs: Vec<String>,
    blocker: Option<String>,
    streams: usize,
}

impl Checker {
    /// A checker for a new file.
    pub fn new() -> Checker {
        Checker::default()
    }

    /// Runs the weights-only model over the next pickle torch reads, at `bytes[start..]` (after
    /// a refusal, the rest are not run: torch stops there too).
    pub fn stream(&mut self, bytes: &[u8], start: usize, limits: &PickleLimits) {
        if self.blocker.is_some() {
            return;
        }
        self.streams += 1;
        let mut m = Model {
            input: bytes,
            pos: start,
            stack: Vec::new(),
            metastack: Vec::new(),
            memo: HashMap::new(),
            needs: &mut self.needs,
            limits,
            ops: 0,
        };
        if let Err(Stop::Refused(why)) = m.load() {
            self.blocker = Some(why);
        }
    }

    /// The answer for a file of `format` whose pickles were all given to [`Checker::stream`].
    pub fn finish(self, format: Format) -> WeightsOnly {
        let container = match format {
            Format::PytorchZip | Format::PytorchLegacy => None,
            Format::Torchscript => Some(
                "torch.load refuses TorchScript archives with weights_only=True (\"Cannot use ``weights_only=True`` with TorchScript archives\"); torch.jit.load runs their code",
            ),
            Format::PytorchTar => Some(
                "torch.load refuses the legacy .tar format with weights_only=True (\"Cannot use ``weights_only=True`` with files saved in the legacy .tar format\")",
            ),
            Format::Pickle => Some(
                "not a torch.save file: torch.load reads a raw pickle as the legacy format and stops at its first value (\"Invalid magic number; corrupt file?\")",
            ),
            Format::Numpy | Format::NumpyZip => Some(
                "a NumPy file, not a torch.save file: torch.load cannot read it (numpy.load can)",
            ),
            _ => Some("not a torch.save file: torch.load cannot read it"),
        };
        if let Some(why) = container {
            return WeightsOnly {
                loads: false,
                needs: Vec::new(),
                blocker: Some(why.into()),
            };
        }
        if self.streams == 0 && self.blocker.is_none() {
            return WeightsOnly {
                loads: false,
                needs: Vec::new(),
                blocker: Some("no pickle torch.load would read was found".into()),
            };
        }
        WeightsOnly {
            loads: self.needs.is_empty() && self.blocker.is_none(),
            needs: self.needs,
            blocker: self.blocker,
        }
    }
}

struct Model<'a> {
    input: &'a [u8],
    pos: usize,
    stack: Vec<V>,
    metastack: Vec<Vec<V>>,
    memo: HashMap<u32, V>,
    needs: &'a mut Vec<String>,
    limits: &'a PickleLimits,
    ops: u64,
}

impl Model<'_> {
    fn read(&mut self, n: usize) -> Step<&[u8]> {
        let end = self.pos.checked_add(n);
        match end.and_then(|e| self.input.get(self.pos..e)) {
            Some(b) => {
                self.pos += n;
                Ok(b)
            }
            None => refuse("the pickle is truncated"),
        }
    }

    fn arr<const N: usize>(&mut self) -> Step<[u8; N]> {
        let b = self.read(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    fn readline(&mut self) -> Step<String> {
        let rest = self.input.get(self.pos..).unwrap_or(&[]);
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            return refuse("the pickle is truncated");
        };
        let line = rest.get(..nl).unwrap_or_default();
        self.pos += nl + 1;
        match std::str::from_utf8(line) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => refuse("a GLOBAL name is not UTF-8 (UnicodeDecodeError)"),
        }
    }

    fn need(&mut self, name: &str) {
        if !self.needs.iter().any(|n| n == name) {
            self.needs.push(name.to_string());
        }
    }

    fn is_allowed_global(&self, name: &str) -> bool {
        allowed(name) || self.needs.iter().any(|n| n == name)
    }

    fn push(&mut self, v: V) -> Step<()> {
        if self.stack.len() >= self.limits.max_stack {
            return refuse("not determined: the stack limit was reached");
        }
        self.stack.push(v);
        Ok(())
    }

    fn pop(&mut self) -> Step<V> {
        match self.stack.pop() {
            Some(v) => Ok(v),
            None => refuse("the pickle pops an empty stack (IndexError)"),
        }
    }

    fn top(&self) -> Step<&V> {
        match self.stack.last() {
            Some(v) => Ok(v),
            None => refuse("the pickle reads an empty stack (IndexError)"),
        }
    }

    fn pop_mark(&mut self) -> Step<Vec<V>> {
        let Some(below) = self.metastack.pop() else {
            return refuse("the pickle closes a MARK it never opened (IndexError)");
        };
        Ok(std::mem::replace(&mut self.stack, below))
    }

    fn tuple(items: &[V]) -> V {
        V::Tuple(Rc::new(TupleHead {
            items: items.iter().take(2).cloned().collect(),
        }))
    }

    fn set_item_target(&self, op: &str) -> Step<()> {
        match self.top()? {
            V::Dict | V::OrderedDict | V::Counter => Ok(()),
            other => refuse(format!(
                "{op} on {}, not a dict, OrderedDict or Counter (\"Can only {op} for dict, collections.OrderedDict, collections.Counter\")",
                other.type_name().unwrap_or_else(|| "another type".into())
            )),
        }
    }

    fn load(&mut self) -> Step<()> {
        loop {
            self.ops += 1;
            if self.ops > self.limits.max_ops {
                return refuse("not determined: the opcode limit was reached");
            }
            let Some(&key) = self.input.get(self.pos) else {
                return refuse("the pickle ends before STOP (EOFError)");
            };
            self.pos += 1;
            match key {
                b'c' => {
                    let module = self.readline()?;
                    let name = self.readline()?;
                    let (module, name) = rename(&module, &name);
                    let full = format!("{module}.{name}");
                    if BLOCKED.contains(&module.as_str()) {
                        return refuse(format!(
                            "GLOBAL {full}: module `{module}` is blocked, whatever is allowed"
                        ));
                    }
                    if !self.is_allowed_global(&full) {
                        if full.starts_with("torch.distributed.") && full.contains("DTensor")
                            || full.starts_with("torch.distributed.tensor")
                            || full == "torch.distributed.device_mesh.DeviceMesh"
                        {
                            return refuse(
                                "DTensors: torch.distributed.tensor must be imported before loading",
                            );
                        }
                        self.need(&full);
                    }
                    self.push(V::Global(Rc::from(full)))?;
                }
                0x81 => {
                    // NEWOBJ
                    let _args = self.pop()?;
                    let cls = self.pop()?;
                    let v = match &cls {
                        V::Global(c) if &**c == "torch.nn.parameter.Parameter" => V::Parameter,
                        V::Global(c) => V::Instance(Some(c.clone())),
                        _ => {
                            return refuse(
                                "NEWOBJ of a computed class (\"Can only create new object for nn.Parameter or classes allowlisted\")",
                            );
                        }
                    };
                    self.push(v)?;
                }
                b'R' => {
                    let args = self.pop()?;
                    let V::Global(func) = self.top()?.clone() else {
                        return refuse(
                            "REDUCE calls a computed value (\"Trying to call reduce for unrecognized function\")",
                        );
                    };
                    let result = result_of(&func, &args);
                    if let Some(t) = self.stack.last_mut() {
                        *t = result;
                    }
                }
                b'b' => {
                    let _state = self.pop()?;
                    match self.top()?.clone() {
                        V::Tensor | V::Parameter | V::OrderedDict => {}
                        V::Instance(Some(t)) => {
                            if !self.is_allowed_global(&t) {
                                self.need(&t);
                            }
                        }
                        V::Instance(None) => {
                            return refuse(
                                "BUILD on an object whose class only loading can tell (the result of a call ckptscope does not model)",
                            );
                        }
                        other => {
                            let t = other.type_name().unwrap_or_else(|| "object".into());
                            if !self.is_allowed_global(&t) {
                                self.need(&t);
                            }
                        }
                    }
                }
                b'a' => {
                    let _item = self.pop()?;
                    if !matches!(self.top()?, V::List) {
                        return refuse("APPEND to something that is not a list");
                    }
                }
                b'e' => {
                    let _items = self.pop_mark()?;
                    if !matches!(self.top()?, V::List) {
                        return refuse("APPENDS to something that is not a list");
                    }
                }
                b's' => {
                    let _v = self.pop()?;
                    let _k = self.pop()?;
                    self.set_item_target("SETITEM")?;
                }
                b'u' => {
                    let _items = self.pop_mark()?;
                    self.set_item_target("SETITEMS")?;
                }
                b'(' => {
                    if self.metastack.len() >= self.limits.max_marks {
                        return refuse("not determined: the MARK limit was reached");
                    }
                    let below = std::mem::take(&mut self.stack);
                    self.metastack.push(below);
                }
                b't' => {
                    let items = self.pop_mark()?;
                    let v = Self::tuple(&items);
                    self.push(v)?;
                }
                0x85..=0x87 => {
                    let n = usize::from(key - 0x84);
                    if self.stack.len() < n {
                        return refuse("TUPLE on too short a stack (IndexError)");
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    let v = Self::tuple(&items);
                    self.push(v)?;
                }
                b'N' => self.push(V::Other("builtins.NoneType"))?,
                0x88 | 0x89 => self.push(V::Other("builtins.bool"))?,
                b')' => self.push(Self::tuple(&[]))?,
                b']' => self.push(V::List)?,
                b'}' => self.push(V::Dict)?,
                0x8f => self.push(V::Other("builtins.set"))?,
                b'J' => {
                    self.read(4)?;
                    self.push(V::Int)?;
                }
                b'K' => {
                    self.read(1)?;
                    self.push(V::Int)?;
                }
                b'M' => {
                    self.read(2)?;
                    self.push(V::Int)?;
                }
                b'G' => {
                    self.read(8)?;
                    self.push(V::Other("builtins.float"))?;
                }
                b'X' => {
                    let n = u32::from_le_bytes(self.arr()?) as usize;
                    let s = self.read(n)?;
                    let kept = (n <= KEPT_STR).then(|| Rc::from(String::from_utf8_lossy(s)));
                    self.push(V::Str(kept))?;
                }
                b'U' => {
                    let [n] = self.arr()?;
                    let s = self.read(usize::from(n))?;
                    // torch.load decodes SHORT_BINSTRING as UTF-8, strictly.
                    let Ok(text) = std::str::from_utf8(s) else {
                        return refuse("a SHORT_BINSTRING is not UTF-8 (UnicodeDecodeError)");
                    };
                    let kept = Rc::from(text);
                    self.push(V::Str(Some(kept)))?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    match &pid {
                        V::Int => {}
                        V::Tuple(t) => {
                            if let Some(first) = t.items.first()
                                && first.short_str() != Some("storage")
                            {
                                return refuse(
                                    "a persistent id that is not a storage (\"Only persistent_load of storage is allowed\")",
                                );
                            }
                        }
                        _ => {
                            return refuse(
                                "a persistent id that is neither a tuple nor an int (\"persistent_load id must be tuple or int\")",
                            );
                        }
                    }
                    self.push(V::Other("torch.storage.TypedStorage"))?;
                }
                b'h' | b'j' => {
                    let idx = if key == b'h' {
                        u32::from(self.arr::<1>()?[0])
                    } else {
                        u32::from_le_bytes(self.arr()?)
                    };
                    let Some(v) = self.memo.get(&idx).cloned() else {
                        return refuse(format!(
                            "GET of memo slot {idx}, which is empty (KeyError)"
                        ));
                    };
                    self.push(v)?;
                }
                b'q' | b'r' => {
                    let idx = if key == b'q' {
                        u32::from(self.arr::<1>()?[0])
                    } else {
                        u32::from_le_bytes(self.arr()?)
                    };
                    let v = self.top()?.clone();
                    if self.memo.len() >= self.limits.max_memo && !self.memo.contains_key(&idx) {
                        return refuse("not determined: the memo limit was reached");
                    }
                    self.memo.insert(idx, v);
                }
                0x8a => {
                    let [n] = self.arr()?;
                    self.read(usize::from(n))?;
                    self.push(V::Int)?;
                }
                0x80 => {
                    self.read(1)?;
                }
                b'.' => {
                    self.pop()?;
                    return Ok(());
                }
                other => {
                    return refuse(format!(
                        "opcode {} at offset {} is not one torch's weights-only unpickler reads (\"Unsupported operand {other}\"), whatever is allowed",
                        crate::pickle::opcode::Op::from_byte(other)
                            .map_or("(unknown)", crate::pickle::opcode::Op::name),
                        self.pos - 1
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowlist_is_sorted_for_binary_search() {
        assert!(ALLOWED.windows(2).all(|w| w[0] < w[1]));
        assert!(allowed("torch._utils._rebuild_tensor_v2"));
        assert!(!allowed("numpy.ndarray"));
    }

    #[test]
    fn numpy_dtype_classes() {
        assert_eq!(
            numpy_dtype_class("u4").as_deref(),
            Some("numpy.dtypes.UInt32DType")
        );
        assert_eq!(
            numpy_dtype_class("O8").as_deref(),
            Some("numpy.dtypes.ObjectDType")
        );
        assert_eq!(
            numpy_dtype_class("f8").as_deref(),
            Some("numpy.dtypes.Float64DType")
        );
        assert_eq!(numpy_dtype_class("x"), None);
    }
}
