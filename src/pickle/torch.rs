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
}

/// A tensor ckptscope recognises but cannot read (quantized, sparse, meta...).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UnsupportedTensor {
    /// Dotted path.
    pub name: String,
    /// Why it is not read.
    pub reason: String,
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
}

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
        let mut map = Map::new();
        for (k, val) in entries {
            let key = self.key_text(*k);
            let child = self.walk(*val, &join(path, &key), depth + 1);
            map.insert(key, child);
        }
        Json::Object(map)
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
            // Dict-like classes: their items are the value.
            Some(("collections", "OrderedDict" | "Counter" | "defaultdict"))
            | Some(("builtins", "dict")) => {
                let mut map = match self.dict(&obj.entries, path, depth) {
                    Json::Object(m) => m,
                    _ => Map::new(),
                };
                // OrderedDict's BUILD state carries `_metadata` (module versions), not data.
                for state in &obj.state {
                    if let Some(Node::Dict(entries)) = self.arena.node(*state) {
                        for (k, v) in entries.clone() {
                            let key = self.key_text(k);
                            if key == "_metadata" {
                                continue;
                            }
                            let child = self.walk(v, &join(path, &key), depth + 1);
                            map.insert(key, child);
                        }
                    }
                }
                Json::Object(map)
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
                let args = self
                    .arena
                    .seq(obj.args)
                    .map(<[Val]>::to_vec)
                    .unwrap_or_default();
                Json::String(format!(
                    "<device {}>",
                    args.iter()
                        .map(|a| self.arena.repr(*a, 40))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
            Some(("torch", dtype)) if dtype_from_torch_name(dtype).is_some() => {
                Json::String(format!("<torch.{dtype}>"))
            }
            Some(("_codecs", "encode")) => {
                // numpy and torch pickle bytes as _codecs.encode(latin1 text, 'latin1').
                let text = self
                    .arena
                    .seq(obj.args)
                    .and_then(|a| a.first())
                    .and_then(|v| self.arena.text(*v))
                    .unwrap_or_default();
                Json::String(format!("<{} bytes>", text.chars().count()))
            }
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
            Ok(t) => {
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
                    });
                } else {
                    self.out.tensors.push(t);
                }
                Some(Json::String(text))
            }
            Err(reason) => {
                let text = format!("<tensor not read: {reason}>");
                self.out
                    .unsupported
                    .push(UnsupportedTensor { name, reason });
                Some(Json::String(text))
            }
        }
    }
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
