//! Walking the value tree a stream built: mappings with Python's semantics (construction from
//! pairs, SETITEMS/BUILD after construction, key equality, first position and last value),
//! and every other value rendered the way Python would print it, within bounds.
//!
//! Owns: [`Walker`]. Must not import: `rebuild` (it calls the entry points
//! `torch` takes from it).
//!
//! `clippy::indexing_slicing` is allowed here: an index kept in a map points into the vector it was
//! recorded for.

#![allow(clippy::indexing_slicing)]

use super::*;
use crate::limits::{MAX_DICT_ITEM_WORK, MAX_MAPPING_NESTING};

/// Everything reachable from `root`: tensors (matched to `by_key` when the storages were read
/// apart), and the non-tensor values as JSON.
pub(super) fn walk_tree(
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

pub(super) fn join(path: &str, key: &str) -> String {
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
        if self.item_work > MAX_DICT_ITEM_WORK || nesting > MAX_MAPPING_NESTING {
            self.out.notes.push(format!(
                "`{}`: too many dict items to gather (a mapping built from mappings more than {MAX_MAPPING_NESTING} deep, or more than {MAX_DICT_ITEM_WORK} items in all); its items are not shown",
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
                if kind == "range" && parts.len() == 3 && parts.get(2).is_some_and(|s| s == "1") {
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
pub(super) fn codecs_bytes(arena: &Arena, obj: &crate::pickle::value::Object) -> Option<Vec<u8>> {
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
pub(super) fn is_mapping_class(module: &str, name: &str) -> bool {
    matches!(
        (module, name),
        ("collections", "OrderedDict" | "Counter" | "defaultdict") | ("builtins", "dict")
    )
}

/// Python's equality of dict keys, for the keys a pickle can hold: `1`, `1.0` and `True` are
/// one key; strings and bytes compare by content; other values by identity.
#[derive(PartialEq, Eq, Hash)]
pub(super) enum KeyId {
    Number(i64),
    Float(u64),
    Text(String),
    Bytes(Vec<u8>),
    Node(NodeId),
    None,
}

pub(super) fn key_id(arena: &Arena, k: Val) -> KeyId {
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
pub(super) fn dedupe_items(arena: &Arena, items: Vec<(Val, Val)>) -> Vec<(Val, Val)> {
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
pub(super) fn latin1(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

/// A float as Python's `repr` writes it inside a complex: shortest round-trip digits, no
/// trailing `.0`, an exponent with its sign.
pub(super) fn python_float_repr(f: f64) -> String {
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
pub(super) fn complex_repr(re: f64, im: f64) -> String {
    let imag = python_float_repr(im);
    if re == 0.0 && re.is_sign_positive() {
        return format!("{imag}j");
    }
    let sign = if imag.starts_with('-') { "" } else { "+" };
    format!("({}{sign}{imag}j)", python_float_repr(re))
}

pub(super) fn truncate(s: &str) -> String {
    if s.len() <= MAX_STRING {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX_STRING).collect();
    out.push_str(&format!("… ({} characters)", s.chars().count()));
    out
}

pub(super) fn bytes_json(b: &[u8]) -> Json {
    if b.len() <= 64 && b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        Json::String(format!("b\"{}\"", String::from_utf8_lossy(b)))
    } else {
        Json::String(format!("<{} bytes>", b.len()))
    }
}

pub(super) fn float_json(f: f64) -> Json {
    serde_json::Number::from_f64(f)
        .map(Json::Number)
        .unwrap_or_else(|| Json::String(format!("{f}")))
}
