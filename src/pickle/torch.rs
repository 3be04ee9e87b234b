//! Reading PyTorch objects out of a pickle's value tree, without torch.
//!
//! `torch.save` pickles a tensor as a call to one of `torch._utils._rebuild_tensor*` with a
//! storage (a persistent id naming a record of the archive), an element offset, a size and a
//! stride. This module recognises those calls in the symbolic tree the machine built, and walks
//! dicts, lists and object states to give every tensor its dotted name. Everything that is not a
//! tensor becomes a JSON-like tree for display and for the converter's metadata. The walk visits
//! every container once: a value referenced many times is described once and then referred to,
//! so a "billion laughs" pickle costs its size, not its expansion.

use std::collections::HashMap;

use serde_json::{Map, Value as Json};

use crate::dtype::DType;
use crate::pickle::policy::normalize;
use crate::pickle::value::{Arena, Node, NodeId, Val};

/// A torch element type, supported by safetensors or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TorchDType {
    /// One of the safetensors dtypes.
    Supported(DType),
    /// A torch dtype safetensors cannot hold (quantized, complex128...), with its element size.
    Unsupported {
        /// The torch name (`qint8`).
        name: String,
        /// Bytes per element.
        size: u64,
    },
}

impl TorchDType {
    /// Bytes per element.
    pub fn size(&self) -> u64 {
        match self {
            TorchDType::Supported(d) => d.byte_size().unwrap_or(1),
            TorchDType::Unsupported { size, .. } => *size,
        }
    }

    /// The name to show.
    pub fn label(&self) -> String {
        match self {
            TorchDType::Supported(d) => d.name().to_string(),
            TorchDType::Unsupported { name, .. } => format!("torch.{name}"),
        }
    }
}

/// The dtype of a `torch.<name>` dtype object.
pub fn dtype_from_torch_name(name: &str) -> Option<TorchDType> {
    use DType as D;
    let supported = match name {
        "float32" | "float" => D::F32,
        "float64" | "double" => D::F64,
        "float16" | "half" => D::F16,
        "bfloat16" => D::BF16,
        "uint8" => D::U8,
        "int8" => D::I8,
        "int16" | "short" => D::I16,
        "int32" | "int" => D::I32,
        "int64" | "long" => D::I64,
        "bool" => D::BOOL,
        "complex64" | "cfloat" => D::C64,
        "uint16" => D::U16,
        "uint32" => D::U32,
        "uint64" => D::U64,
        "float8_e4m3fn" => D::F8_E4M3,
        "float8_e5m2" => D::F8_E5M2,
        "float8_e4m3fnuz" => D::F8_E4M3FNUZ,
        "float8_e5m2fnuz" => D::F8_E5M2FNUZ,
        "float8_e8m0fnu" => D::F8_E8M0,
        _ => {
            let size = match name {
                "complex128" | "cdouble" => 16,
                "complex32" | "chalf" | "qint32" => 4,
                "bits16" => 2,
                "qint8" | "quint8" | "quint4x2" | "quint2x4" | "float4_e2m1fn_x2" | "bits8"
                | "bits1x8" | "bits2x4" | "bits4x2" => 1,
                _ => return None,
            };
            return Some(TorchDType::Unsupported {
                name: name.to_string(),
                size,
            });
        }
    };
    Some(TorchDType::Supported(supported))
}

/// The dtype of a legacy typed storage class (`FloatStorage`).
pub fn dtype_from_storage_class(name: &str) -> Option<TorchDType> {
    let torch_name = match name {
        "FloatStorage" => "float32",
        "DoubleStorage" => "float64",
        "HalfStorage" => "float16",
        "BFloat16Storage" => "bfloat16",
        "ByteStorage" => "uint8",
        "CharStorage" => "int8",
        "ShortStorage" => "int16",
        "IntStorage" => "int32",
        "LongStorage" => "int64",
        "BoolStorage" => "bool",
        "ComplexFloatStorage" => "complex64",
        "ComplexDoubleStorage" => "complex128",
        "QInt8Storage" => "qint8",
        "QUInt8Storage" => "quint8",
        "QInt32Storage" => "qint32",
        "QUInt4x2Storage" => "quint4x2",
        "QUInt2x4Storage" => "quint2x4",
        // Untyped storages count bytes; the tensor's dtype comes from _rebuild_tensor_v3.
        "UntypedStorage" | "_UntypedStorage" | "ByteStorageUntyped" => "uint8",
        _ => return None,
    };
    dtype_from_torch_name(torch_name)
}

/// A storage a tensor views, as its persistent id describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageRef {
    /// Record key in the archive (`"0"`), or the legacy object key.
    pub key: String,
    /// Element type of the storage class (`uint8` for untyped storages).
    pub dtype: TorchDType,
    /// True for `UntypedStorage` (sizes in bytes).
    pub untyped: bool,
    /// Device tag (`cpu`, `cuda:0`).
    pub location: String,
    /// Elements of the storage as the pickle declares them.
    pub numel: Option<u64>,
    /// Legacy views of a larger storage: (root key, offset in elements, size in elements).
    pub view: Option<(String, u64, u64)>,
}

/// A tensor found in the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PickledTensor {
    /// Dotted path from the root (`state_dict.model.0.weight`).
    pub name: String,
    /// Element type.
    pub dtype: TorchDType,
    /// Dimensions.
    pub shape: Vec<u64>,
    /// Strides in elements.
    pub stride: Vec<u64>,
    /// Offset in elements into the storage.
    pub offset: u64,
    /// The storage.
    pub storage: StorageRef,
    /// Whether it was saved as an `nn.Parameter`.
    pub parameter: bool,
    /// The arena node of the rebuild call (same node = same Python tensor object).
    pub node: NodeId,
    /// The key of the top-level entry this tensor sits under, when the root is a mapping and
    /// that entry is itself a mapping (`state_dict` of a Lightning checkpoint, `model` of
    /// `{"model": ..., "optimizer": ...}`); `None` for a flat state dict.
    pub root: Option<String>,
}

/// A tensor ckptscope recognises but cannot read (quantized, sparse, meta...).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UnsupportedTensor {
    /// Dotted path.
    pub name: String,
    /// Why it is not read.
    pub reason: String,
    /// As [`PickledTensor::root`].
    #[serde(skip)]
    pub root: Option<String>,
}

/// What the walk found.
#[derive(Clone, Debug, Default)]
pub struct Extracted {
    /// Readable tensors, in the order they appear.
    pub tensors: Vec<PickledTensor>,
    /// Tensors that cannot be read, with why.
    pub unsupported: Vec<UnsupportedTensor>,
    /// The non-tensor values, with tensors replaced by short descriptions.
    pub objects: Json,
    /// Anything the walk had to cut short (depth, size).
    pub notes: Vec<String>,
}

use crate::limits::{
    MAX_VALUE_DEPTH as MAX_DEPTH, MAX_VALUE_NODES as MAX_JSON_NODES, MAX_VALUE_STRING as MAX_STRING,
};

/// Walks the tree under `root`, naming tensors by dotted path.
pub fn extract(arena: &Arena, root: Val) -> Extracted {
    extract_with(arena, root, None)
}

/// [`extract`] for files whose object pickle names tensors by persistent key (the tar format):
/// `by_key` gives each key's tensor.
pub fn extract_with(
    arena: &Arena,
    root: Val,
    by_key: Option<&HashMap<String, PickledTensor>>,
) -> Extracted {
    let mut walker = Walker {
        arena,
        out: Extracted::default(),
        seen: HashMap::new(),
        json_nodes: 0,
        by_key,
        root: None,
        item_work: 0,
        unread_source: None,
    };
    walker.out.objects = walker.walk(root, "", 0);
    walker.out
}

struct Walker<'a> {
    arena: &'a Arena,
    out: Extracted,
    /// Containers already described, with the path where they were.
    seen: HashMap<NodeId, String>,
    json_nodes: usize,
    by_key: Option<&'a HashMap<String, PickledTensor>>,
    /// The top-level mapping entry being walked (see [`PickledTensor::root`]).
    root: Option<String>,
    /// Dict items gathered from constructor arguments and SETITEMs so far.
    item_work: usize,
    /// The constructor argument of the dict-like object being read, when it is not pairs.
    unread_source: Option<Val>,
}

/// Most dict items gathered for the view in all (see [`Walker::mapping_items`]).
const MAX_ITEM_WORK: usize = 4 * MAX_JSON_NODES;

/// Deepest chain of dict-like objects built from one another (`OrderedDict(OrderedDict(...))`).
const MAX_MAPPING_NESTING: usize = 16;

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl Walker<'_> {
    fn walk(&mut self, v: Val, path: &str, depth: usize) -> Json {
        self.json_nodes += 1;
        if self.json_nodes == MAX_JSON_NODES {
            self.out.notes.push(format!(
                "more than {MAX_JSON_NODES} values: the rest of the object tree is not shown"
            ));
        }
        if self.json_nodes > MAX_JSON_NODES {
            return Json::String("…".into());
        }
        if depth > MAX_DEPTH {
            if !self
                .out
                .notes
                .iter()
                .any(|n| n.starts_with("nested deeper"))
            {
                self.out.notes.push(format!(
                    "nested deeper than {MAX_DEPTH} levels at `{path}`: deeper values are not read"
                ));
            }
            return Json::String("<nested too deep>".into());
        }
        let id = match v {
            Val::None => return Json::Null,
            Val::Bool(b) => return Json::Bool(b),
            Val::Int(i) => return Json::from(i),
            Val::Float(f) => return float_json(f),
            Val::Ref(id) => id,
        };
        let Some(node) = self.arena.get(id) else {
            return Json::Null;
        };

        // Tensors may legitimately appear under several names (tied weights saved as one
        // object): every name is recorded. Containers are described once.
        if let Node::Object(_) = node
            && let Some(t) = self.tensor(v, path)
        {
            return t;
        }
        let is_container = matches!(
            node,
            Node::List(_)
                | Node::Tuple(_)
                | Node::Dict(_)
                | Node::Set(_)
                | Node::FrozenSet(_)
                | Node::Object(_)
        );
        if is_container {
            if let Some(first) = self.seen.get(&id) {
                return Json::String(format!("<same object as `{first}`>"));
            }
            self.seen.insert(id, path.to_string());
        }
        match node {
            Node::BigInt(s) => Json::String(s.clone()),
            Node::Str(s) => Json::String(truncate(s)),
            Node::Bytes(b) | Node::ByteArray(b) => bytes_json(b),
            Node::List(items) | Node::Tuple(items) | Node::Set(items) | Node::FrozenSet(items) => {
                let items = items.clone();
                Json::Array(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| self.walk(*item, &join(path, &i.to_string()), depth + 1))
                        .collect(),
                )
            }
            Node::Dict(entries) => {
                let entries = entries.clone();
                self.dict(&entries, path, depth)
            }
            Node::Global { module, name } => {
                let (m, n) = normalize(module, name);
                Json::String(format!("<{m}.{n}>"))
            }
            Node::Object(obj) => {
                let obj = (**obj).clone();
                self.object(&obj, path, depth)
            }
            Node::Persistent { pid } => {
                let key = self
                    .arena
                    .text(*pid)
                    .or_else(|| self.arena.int(*pid).map(|i| i.to_string()));
                match key.and_then(|k| self.by_key.and_then(|m| m.get(&k))) {
                    Some(t) => {
                        let mut t = t.clone();
                        t.name = path.to_string();
                        t.node = id;
                        t.root = self.root.clone();
                        let text = format!("<tensor {} {:?}>", t.dtype.label(), t.shape);
                        self.out.tensors.push(t);
                        Json::String(text)
                    }
                    None => Json::String(format!("<persistent {}>", self.arena.repr(*pid, 80))),
                }
            }
            Node::Buffer => Json::String("<out-of-band buffer>".into()),
            Node::Extension { code } => Json::String(format!("<extension {code}>")),
        }
    }

    fn dict(&mut self, entries: &[(Val, Val)], path: &str, depth: usize) -> Json {
        let top = depth == 0 && path.is_empty();
        let mut map = Map::new();
        for (k, val) in entries {
            let key = self.key_text(*k);
            if top {
                self.root = self.is_mapping(*val).then(|| key.clone());
            }
            let child = self.walk(*val, &join(path, &key), depth + 1);
            map.insert(key, child);
        }
        if top {
            self.root = None;
        }
        Json::Object(map)
    }

    /// The bytes of a `bytes`/`bytearray` value, or of `_codecs.encode(text, 'latin1')` (how
    /// protocols 0-2 write bytes), or of `text` with a latin-1 encoding argument.
    fn bytes_of(&self, v: Val) -> Option<Vec<u8>> {
        match self.arena.node(v)? {
            Node::Bytes(b) | Node::ByteArray(b) => Some(b.clone()),
            Node::Str(text) => Some(latin1(text)),
            Node::Object(obj) => codecs_bytes(self.arena, obj),
            _ => None,
        }
    }

    /// Whether `v` is a dict or a dict-like object (`OrderedDict`, `defaultdict`...).
    fn is_mapping(&self, v: Val) -> bool {
        match self.arena.node(v) {
            Some(Node::Dict(_)) => true,
            Some(Node::Object(obj)) => self.mapping_class(obj),
            _ => false,
        }
    }

    fn mapping_class(&self, obj: &crate::pickle::value::Object) -> bool {
        self.arena
            .global(obj.callable)
            .map(|(m, n)| normalize(m, n))
            .is_some_and(|(m, n)| is_mapping_class(&m, &n))
    }

    /// The items of a dict-like object, as Python would hold them after unpickling: those of
    /// its constructor argument (a mapping or an iterable of pairs), then those set by
    /// SETITEM(S), a repeated key keeping its first position and taking the last value.
    fn mapping_items(
        &mut self,
        obj: &crate::pickle::value::Object,
        path: &str,
        nesting: usize,
    ) -> Vec<(Val, Val)> {
        // Each item gathered costs one unit of the view's budget, so objects built from one
        // shared mapping many times cannot multiply the work.
        if self.item_work > MAX_ITEM_WORK || nesting > MAX_MAPPING_NESTING {
            self.out.notes.push(format!(
                "`{}`: too many dict items to gather (a mapping built from mappings more than {MAX_MAPPING_NESTING} deep, or more than {MAX_ITEM_WORK} items in all); its items are not shown",
                if path.is_empty() { "(root)" } else { path },
            ));
            return Vec::new();
        }
        let args = self.arena.seq(obj.args).unwrap_or(&[]).to_vec();
        let callable = self
            .arena
            .global(obj.callable)
            .map(|(m, n)| normalize(m, n))
            .unwrap_or_default();
        // defaultdict(default_factory, [mapping]): the items are the second argument.
        let source = if callable.1 == "defaultdict" {
            args.get(1).copied()
        } else {
            args.first().copied()
        };
        let mut items: Vec<(Val, Val)> = Vec::new();
        if let Some(source) = source {
            match self.initial_items(source, nesting) {
                Some(initial) => items = initial,
                None => {
                    self.out.notes.push(format!(
                        "`{}`: {}.{} is built from {}, which ckptscope does not read as key/value pairs; it is shown as `__args__`",
                        if path.is_empty() { "(root)" } else { path },
                        callable.0,
                        callable.1,
                        self.arena.repr(source, 60)
                    ));
                    if nesting == 0 {
                        self.unread_source = Some(source);
                    }
                }
            }
        }
        items.extend(obj.entries.iter().copied());
        self.item_work += items.len();
        dedupe_items(self.arena, items)
    }

    /// Key/value pairs of a constructor argument: a mapping, or a sequence of 2-item lists or
    /// tuples. `None` for anything else.
    fn initial_items(&mut self, source: Val, nesting: usize) -> Option<Vec<(Val, Val)>> {
        if source == Val::None {
            return Some(Vec::new());
        }
        match self.arena.node(source)? {
            Node::Dict(entries) => Some(entries.clone()),
            Node::Object(obj) if self.mapping_class(obj) => {
                let obj = (**obj).clone();
                Some(self.mapping_items(&obj, "", nesting + 1))
            }
            Node::List(items) | Node::Tuple(items) => items
                .iter()
                .map(|pair| match self.arena.seq(*pair) {
                    Some([k, v]) => Some((*k, *v)),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }

    fn key_text(&self, k: Val) -> String {
        match k {
            Val::None => "None".into(),
            Val::Bool(b) => if b { "True" } else { "False" }.into(),
            Val::Int(i) => i.to_string(),
            Val::Float(f) => f.to_string(),
            Val::Ref(_) => self.arena.text(k).unwrap_or_else(|| self.arena.repr(k, 60)),
        }
    }

    fn object(&mut self, obj: &crate::pickle::value::Object, path: &str, depth: usize) -> Json {
        let callable = self
            .arena
            .global(obj.callable)
            .map(|(m, n)| normalize(m, n));
        let name = callable
            .as_ref()
            .map(|(m, n)| format!("{m}.{n}"))
            .unwrap_or_else(|| self.arena.repr(obj.callable, 60));
        match callable.as_ref().map(|(m, n)| (m.as_str(), n.as_str())) {
            // Dict-like classes: their items are the value. A BUILD state sets the object's
            // attributes (OrderedDict's `_metadata`), not items: it is not part of the value.
            Some((m, n)) if is_mapping_class(m, n) => {
                let items = self.mapping_items(obj, path, 0);
                // An argument that is not pairs is still walked, so no tensor in it is lost.
                let unread = self.unread_source.take();
                let mut json = self.dict(&items, path, depth);
                if let (Some(source), Json::Object(map)) = (unread, &mut json) {
                    let child = self.walk(source, &join(path, "__args__"), depth + 1);
                    map.insert("__args__".into(), child);
                }
                json
            }
            Some(("torch", "Size"))
            | Some(("builtins", "list" | "tuple" | "set" | "frozenset"))
            // TorchScript's typed containers: each helper returns its first argument.
            | Some((
                "torch.jit._pickle",
                "build_intlist" | "build_tensorlist" | "build_doublelist" | "build_boollist"
                | "restore_type_tag",
            )) => {
                match self.arena.seq(obj.args).and_then(|a| a.first()).copied() {
                    Some(inner) => self.walk(inner, path, depth + 1),
                    None => Json::Array(Vec::new()),
                }
            }
            Some(("torch", "device")) => {
                let args = self.arena.seq(obj.args).unwrap_or(&[]);
                let kind = args.first().and_then(|a| self.arena.text(*a));
                let index = args.get(1).and_then(|a| self.arena.int(*a));
                Json::String(match (kind, index) {
                    (Some(kind), Some(i)) => format!("<device {kind}:{i}>"),
                    (Some(kind), None) => format!("<device {kind}>"),
                    _ => format!("<device {}>", self.arena.repr(obj.args, 40)),
                })
            }
            Some(("builtins", "complex")) => {
                let args = self.arena.seq(obj.args).unwrap_or(&[]);
                let part = |i: usize| match args.get(i) {
                    Some(Val::Float(f)) => Some(*f),
                    Some(Val::Int(n)) => Some(*n as f64),
                    Some(Val::Bool(b)) => Some(f64::from(u8::from(*b))),
                    None => Some(0.0),
                    _ => None,
                };
                match (part(0), part(1)) {
                    (Some(re), Some(im)) => {
                        Json::String(format!("<complex {}>", complex_repr(re, im)))
                    }
                    _ => Json::String(format!("<complex{}>", self.arena.repr(obj.args, 60))),
                }
            }
            Some(("builtins", kind @ ("slice" | "range"))) => {
                let args = self.arena.seq(obj.args).unwrap_or(&[]);
                let mut parts: Vec<String> = args.iter().map(|a| self.arena.repr(*a, 40)).collect();
                // range's repr leaves out a step of 1.
                if kind == "range" && parts.len() == 3 && parts[2] == "1" {
                    parts.pop();
                }
                Json::String(format!("<{kind}({})>", parts.join(", ")))
            }
            Some(("builtins", "bytearray")) => {
                let args = self.arena.seq(obj.args).unwrap_or(&[]);
                match args.first() {
                    None => bytes_json(&[]),
                    Some(data) => match self.bytes_of(*data) {
                        Some(b) => bytes_json(&b),
                        None => {
                            Json::String(format!("<bytearray{}>", self.arena.repr(obj.args, 60)))
                        }
                    },
                }
            }
            Some(("torch", dtype)) if dtype_from_torch_name(dtype).is_some() => {
                Json::String(format!("<torch.{dtype}>"))
            }
            Some(("_codecs", "encode")) => match codecs_bytes(self.arena, obj) {
                Some(b) => bytes_json(&b),
                None => Json::String(format!("<_codecs.encode{}>", self.arena.repr(obj.args, 60))),
            },
            _ => {
                // Any other object: its class, arguments and state, for display only.
                let mut map = Map::new();
                map.insert("__class__".into(), Json::String(name));
                let args = self.walk(obj.args, &join(path, "__args__"), depth + 1);
                if args != Json::Array(Vec::new()) {
                    map.insert("__args__".into(), args);
                }
                for state in &obj.state {
                    match self.walk(*state, path, depth + 1) {
                        Json::Object(fields) => map.extend(fields),
                        other => {
                            map.insert("__state__".into(), other);
                        }
                    }
                }
                if !obj.items.is_empty() {
                    let items: Vec<Json> = obj
                        .items
                        .iter()
                        .enumerate()
                        .map(|(i, it)| self.walk(*it, &join(path, &i.to_string()), depth + 1))
                        .collect();
                    map.insert("__items__".into(), Json::Array(items));
                }
                if !obj.entries.is_empty() {
                    let entries = self.dict(&obj.entries, path, depth);
                    map.insert("__entries__".into(), entries);
                }
                Json::Object(map)
            }
        }
    }

    /// If `v` is a tensor, records it under `path` and returns its description.
    fn tensor(&mut self, v: Val, path: &str) -> Option<Json> {
        let Val::Ref(node) = v else {
            return None;
        };
        let name = path.to_string();
        match read_tensor(self.arena, v, &name, node, 0)? {
            Ok(mut t) => {
                t.root = self.root.clone();
                let text = format!(
                    "<tensor {} {:?}{}>",
                    t.dtype.label(),
                    t.shape,
                    if t.parameter { " parameter" } else { "" }
                );
                if let TorchDType::Unsupported { name: dt, .. } = &t.dtype {
                    self.out.unsupported.push(UnsupportedTensor {
                        name: name.clone(),
                        reason: format!("dtype torch.{dt} has no safetensors equivalent"),
                        root: self.root.clone(),
                    });
                } else {
                    self.out.tensors.push(t);
                }
                Some(Json::String(text))
            }
            Err(reason) => {
                let text = format!("<tensor not read: {reason}>");
                self.out.unsupported.push(UnsupportedTensor {
                    name,
                    reason,
                    root: self.root.clone(),
                });
                Some(Json::String(text))
            }
        }
    }
}

/// The bytes `_codecs.encode(text, 'latin1')` returns (how protocols 0-2 pickle `bytes`).
fn codecs_bytes(arena: &Arena, obj: &crate::pickle::value::Object) -> Option<Vec<u8>> {
    let (m, n) = arena.global(obj.callable).map(|(m, n)| normalize(m, n))?;
    if (m.as_str(), n.as_str()) != ("_codecs", "encode") {
        return None;
    }
    let args = arena.seq(obj.args)?;
    let text = arena.text(*args.first()?)?;
    let encoding = args
        .get(1)
        .and_then(|e| arena.text(*e))
        .unwrap_or_else(|| "utf-8".into())
        .to_ascii_lowercase()
        .replace(['-', '_'], "");
    match encoding.as_str() {
        "latin1" | "iso88591" | "l1" => Some(latin1(&text)),
        "utf8" => Some(text.into_bytes()),
        _ => None,
    }
}

/// Classes whose pickled value is their items.
fn is_mapping_class(module: &str, name: &str) -> bool {
    matches!(
        (module, name),
        ("collections", "OrderedDict" | "Counter" | "defaultdict") | ("builtins", "dict")
    )
}

/// Python's equality of dict keys, for the keys a pickle can hold: `1`, `1.0` and `True` are
/// one key; strings and bytes compare by content; other values by identity.
#[derive(PartialEq, Eq, Hash)]
enum KeyId {
    Number(i64),
    Float(u64),
    Text(String),
    Bytes(Vec<u8>),
    Node(NodeId),
    None,
}

fn key_id(arena: &Arena, k: Val) -> KeyId {
    match k {
        Val::None => KeyId::None,
        Val::Bool(b) => KeyId::Number(i64::from(b)),
        Val::Int(i) => KeyId::Number(i),
        Val::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => KeyId::Number(f as i64),
        Val::Float(f) => KeyId::Float(f.to_bits()),
        Val::Ref(id) => match arena.get(id) {
            Some(Node::Str(s)) => KeyId::Text(s.clone()),
            Some(Node::Bytes(b)) => KeyId::Bytes(b.clone()),
            Some(Node::BigInt(s)) => KeyId::Text(format!("int:{s}")),
            _ => KeyId::Node(id),
        },
    }
}

/// Dict insertion semantics: a repeated key keeps its first position and takes the last value.
fn dedupe_items(arena: &Arena, items: Vec<(Val, Val)>) -> Vec<(Val, Val)> {
    let mut index: HashMap<KeyId, usize> = HashMap::with_capacity(items.len());
    let mut out: Vec<(Val, Val)> = Vec::with_capacity(items.len());
    for (k, v) in items {
        match index.entry(key_id(arena, k)) {
            std::collections::hash_map::Entry::Occupied(at) => out[*at.get()].1 = v,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(out.len());
                out.push((k, v));
            }
        }
    }
    out
}

/// Latin-1 bytes of text (characters past U+00FF, which latin-1 cannot hold, become `?`).
fn latin1(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

/// A float as Python's `repr` writes it inside a complex: shortest round-trip digits, no
/// trailing `.0`, an exponent with its sign.
fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    let text = format!("{f:?}");
    let text = text.strip_suffix(".0").unwrap_or(&text).to_string();
    match text.split_once('e') {
        Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
        _ => text,
    }
}

/// `repr(complex(re, im))`.
fn complex_repr(re: f64, im: f64) -> String {
    let imag = python_float_repr(im);
    if re == 0.0 && re.is_sign_positive() {
        return format!("{imag}j");
    }
    let sign = if imag.starts_with('-') { "" } else { "+" };
    format!("({}{sign}{imag}j)", python_float_repr(re))
}

fn truncate(s: &str) -> String {
    if s.len() <= MAX_STRING {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX_STRING).collect();
    out.push_str(&format!("… ({} characters)", s.chars().count()));
    out
}

fn bytes_json(b: &[u8]) -> Json {
    if b.len() <= 64 && b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        Json::String(format!("b\"{}\"", String::from_utf8_lossy(b)))
    } else {
        Json::String(format!("<{} bytes>", b.len()))
    }
}

fn float_json(f: f64) -> Json {
    serde_json::Number::from_f64(f)
        .map(Json::Number)
        .unwrap_or_else(|| Json::String(format!("{f}")))
}

/// Reads a tensor from a rebuild call: `None` if `v` is not a tensor at all, `Some(Err)` if it
/// is one ckptscope cannot read.
fn read_tensor(
    arena: &Arena,
    v: Val,
    name: &str,
    node: NodeId,
    depth: usize,
) -> Option<Result<PickledTensor, String>> {
    if depth > 4 {
        return None;
    }
    let obj = arena.object(v)?;
    let (module, func) = arena.global(obj.callable).map(|(m, n)| normalize(m, n))?;
    let args = arena.seq(obj.args).unwrap_or(&[]);
    let arg = |i: usize| args.get(i).copied();
    let result = match (module.as_str(), func.as_str()) {
        ("torch._utils", "_rebuild_tensor") => rebuild(arena, args, None, name, node),
        ("torch._utils", "_rebuild_tensor_v2") => rebuild(arena, args, None, name, node),
        ("torch._utils", "_rebuild_tensor_v3") => {
            let dtype = arg(6)
                .and_then(|d| arena.global(d))
                .and_then(|(m, n)| (normalize(m, n).0 == "torch").then(|| dtype_from_torch_name(n)))
                .flatten();
            match dtype {
                Some(dtype) => rebuild(arena, args, Some(dtype), name, node),
                None => Err("_rebuild_tensor_v3 without a known dtype".to_string()),
            }
        }
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state")
        | ("torch.nn.parameter", "Parameter") => {
            let data = arg(0)?;
            let Val::Ref(inner) = data else {
                return Some(Err("parameter without tensor data".into()));
            };
            let mut t = read_tensor(arena, data, name, inner, depth + 1)?;
            if let Ok(t) = &mut t {
                t.parameter = true;
                t.node = node;
            }
            t
        }
        ("torch._tensor", "_rebuild_from_type_v2") => {
            // _rebuild_from_type_v2(func, new_type, args, state): the tensor is func(*args).
            let func = arg(0)?;
            let inner_args = arg(2)?;
            let (m, n) = arena.global(func).map(|(m, n)| normalize(m, n))?;
            if m != "torch._utils" {
                return Some(Err(format!("tensor subclass rebuilt by {m}.{n}")));
            }
            let inner = arena.seq(inner_args).unwrap_or(&[]);
            match n.as_str() {
                "_rebuild_tensor" | "_rebuild_tensor_v2" => rebuild(arena, inner, None, name, node),
                "_rebuild_tensor_v3" => {
                    let dtype = inner
                        .get(6)
                        .and_then(|d| arena.global(*d))
                        .and_then(|(_, n)| dtype_from_torch_name(n));
                    match dtype {
                        Some(dtype) => rebuild(arena, inner, Some(dtype), name, node),
                        None => Err("_rebuild_tensor_v3 without a known dtype".to_string()),
                    }
                }
                other => Err(unsupported_rebuild(other)),
            }
        }
        ("torch._utils", other) if other.starts_with("_rebuild_") => {
            Err(unsupported_rebuild(other))
        }
        _ => return None,
    };
    Some(result)
}

fn unsupported_rebuild(func: &str) -> String {
    match func {
        "_rebuild_qtensor" => "quantized tensor (not supported)".into(),
        "_rebuild_sparse_tensor" | "_rebuild_sparse_csr_tensor" => {
            "sparse tensor (not supported)".into()
        }
        "_rebuild_meta_tensor_no_storage" => "meta tensor: it has a shape but no data".into(),
        "_rebuild_nested_tensor" => "nested tensor (not supported)".into(),
        "_rebuild_wrapper_subclass" => {
            "tensor subclass without a plain storage (not supported)".into()
        }
        "_rebuild_device_tensor_from_numpy" | "_rebuild_device_tensor_from_cpu_tensor" => {
            "device tensor rebuilt from NumPy (not supported)".into()
        }
        other => format!("rebuilt by torch._utils.{other} (not supported)"),
    }
}

fn ints(arena: &Arena, v: Val) -> Option<Vec<u64>> {
    // torch.Size(tuple) or a plain tuple.
    let seq = match arena.object(v) {
        Some(obj) => arena
            .seq(obj.args)?
            .first()
            .and_then(|inner| arena.seq(*inner))?,
        None => arena.seq(v)?,
    };
    seq.iter()
        .map(|x| arena.int(*x).and_then(|i| u64::try_from(i).ok()))
        .collect()
}

fn rebuild(
    arena: &Arena,
    args: &[Val],
    dtype: Option<TorchDType>,
    name: &str,
    node: NodeId,
) -> Result<PickledTensor, String> {
    let storage = args.first().copied().ok_or("no storage argument")?;
    let storage = storage_ref(arena, storage)?;
    let offset = args
        .get(1)
        .and_then(|v| arena.int(*v))
        .and_then(|i| u64::try_from(i).ok())
        .ok_or("storage offset is not a non-negative integer")?;
    let shape = args
        .get(2)
        .and_then(|v| ints(arena, *v))
        .ok_or("size is not a tuple of non-negative integers")?;
    let stride = args
        .get(3)
        .and_then(|v| ints(arena, *v))
        .ok_or("stride is not a tuple of non-negative integers")?;
    if stride.len() != shape.len() {
        return Err(format!(
            "size has {} dimensions but stride has {}",
            shape.len(),
            stride.len()
        ));
    }
    let dtype = dtype.unwrap_or_else(|| storage.dtype.clone());
    Ok(PickledTensor {
        name: name.to_string(),
        dtype,
        shape,
        stride,
        offset,
        storage,
        parameter: false,
        node,
        root: None,
    })
}

/// Reads `('storage', storage_type, key, location, numel[, view_metadata])`.
fn storage_ref(arena: &Arena, v: Val) -> Result<StorageRef, String> {
    let pid = match arena.node(v) {
        Some(Node::Persistent { pid }) => *pid,
        _ => {
            return Err(format!(
                "storage is {}, not a persistent storage id",
                arena.repr(v, 60)
            ));
        }
    };
    let items = arena.seq(pid).ok_or("persistent id is not a tuple")?;
    if items.first().and_then(|f| arena.text(*f)).as_deref() != Some("storage") {
        return Err("persistent id is not a storage".into());
    }
    let class = items
        .get(1)
        .and_then(|c| arena.global(*c))
        .ok_or("storage type is not a class")?;
    let (_, class_name) = normalize(class.0, class.1);
    let dtype = dtype_from_storage_class(&class_name)
        .ok_or_else(|| format!("unknown storage class {class_name}"))?;
    let untyped = class_name.contains("Untyped");
    let key = items
        .get(2)
        .and_then(|k| {
            arena
                .text(*k)
                .or_else(|| arena.int(*k).map(|i| i.to_string()))
        })
        .ok_or("storage key is not a string")?;
    let location = items
        .get(3)
        .and_then(|l| arena.text(*l))
        .unwrap_or_default();
    let numel = items
        .get(4)
        .and_then(|n| arena.int(*n))
        .and_then(|n| u64::try_from(n).ok());
    let view = items.get(5).and_then(|vm| {
        let vm = arena.seq(*vm)?;
        let key = arena.text(*vm.first()?)?;
        let offset = u64::try_from(arena.int(*vm.get(1)?)?).ok()?;
        let size = u64::try_from(arena.int(*vm.get(2)?)?).ok()?;
        Some((key, offset, size))
    });
    Ok(StorageRef {
        key,
        dtype,
        untyped,
        location,
        numel,
        view,
    })
}

/// Every storage a pickle's persistent ids name, by key (first description wins).
pub fn storages(arena: &Arena) -> HashMap<String, StorageRef> {
    let mut out = HashMap::new();
    for id in 0..arena.len() as NodeId {
        if let Some(Node::Persistent { .. }) = arena.get(id)
            && let Ok(s) = storage_ref(arena, Val::Ref(id))
        {
            out.entry(s.key.clone()).or_insert(s);
        }
    }
    out
}

/// Keys of the storages a pickle references, sorted.
pub fn storage_keys(arena: &Arena) -> Vec<String> {
    let mut keys: Vec<String> = storages(arena).into_keys().collect();
    keys.sort();
    keys
}

/// `sys_info['little_endian']` of a legacy file's third pickle.
pub fn sys_info_little_endian(arena: &Arena, root: Val) -> Option<bool> {
    match arena.node(root)? {
        Node::Dict(entries) => entries.iter().find_map(|(k, v)| {
            (arena.text(*k).as_deref() == Some("little_endian")).then_some(match v {
                Val::Bool(b) => Some(*b),
                _ => None,
            })?
        }),
        _ => None,
    }
}

/// The strings of a legacy storage-keys pickle (a list of str).
pub fn key_list(arena: &Arena, root: Val) -> Option<Vec<String>> {
    arena
        .seq(root)?
        .iter()
        .map(|k| {
            arena
                .text(*k)
                .or_else(|| arena.int(*k).map(|i| i.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_names_cover_safetensors_types() {
        assert_eq!(
            dtype_from_storage_class("BFloat16Storage"),
            Some(TorchDType::Supported(DType::BF16))
        );
        assert_eq!(
            dtype_from_torch_name("float8_e4m3fnuz"),
            Some(TorchDType::Supported(DType::F8_E4M3FNUZ))
        );
        assert!(matches!(
            dtype_from_torch_name("complex128"),
            Some(TorchDType::Unsupported { size: 16, .. })
        ));
        assert_eq!(dtype_from_torch_name("nonsense"), None);
    }
}
