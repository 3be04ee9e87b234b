//! The parts of an ONNX `ModelProto` a weight viewer needs, read from the wire with offsets.
//!
//! Read: the model's `ir_version`, producer, domain, version, doc string, opset imports and
//! `metadata_props`; the main graph's name, its node count, and each initializer's name,
//! `data_type`, `dims`, and *where* its values are (the byte range of `raw_data`, the pieces of
//! its typed field, or its `external_data` entries). Everything else (nodes, value infos,
//! functions, training info) is skipped by its length without being looked into. Nodes are
//! looked into only as far as their attributes' keys, to find sub-graphs: the branches of `If`,
//! the bodies of `Loop` and `Scan` (attributes of type `GRAPH` or `GRAPHS`, whatever the
//! operator) hold initializers of their own, which are listed under a dotted scope,
//! `NODE.ATTRIBUTE.NAME` (`NODE.ATTRIBUTE.I.NAME` for the i-th graph of a `GRAPHS`), `NODE`
//! being the node's name or `OP_TYPE_INDEX` when it has none. A node without sub-graphs costs a
//! few key reads and no allocation. `Constant` nodes are not entered: their tensor is a value of
//! the program, not a weight.
//!
//! Nesting is bounded by this code, never by the file: model, graph, tensor, entry, plus at
//! most [`MAX_ONNX_GRAPH_DEPTH`] levels of sub-graphs, deeper ones being counted and not
//! entered; counts are bounded by [`crate::limits`]; every length was checked by the wire
//! reader.

use std::ops::Range;

use crate::archive::protobuf::{Field, Fields, Value, WireError};
use crate::error::Problem;
use crate::limits::{
    MAX_DIMS, MAX_ONNX_ENTRIES, MAX_ONNX_GRAPH_DEPTH, MAX_ONNX_TENSORS, MAX_VALUE_STRING,
};

/// A model, as far as its weights and description go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Model {
    /// `ir_version`.
    pub ir_version: Option<u64>,
    /// `producer_name`.
    pub producer_name: Option<String>,
    /// `producer_version`.
    pub producer_version: Option<String>,
    /// `domain`.
    pub domain: Option<String>,
    /// `model_version`.
    pub model_version: Option<i64>,
    /// `doc_string`, cut to 4,096 characters.
    pub doc_string: Option<String>,
    /// `opset_import`: (domain, version); the empty domain is `ai.onnx`.
    pub opsets: Vec<(String, i64)>,
    /// `metadata_props`, in file order.
    pub metadata: Vec<(String, String)>,
    /// The main graph's name.
    pub graph_name: Option<String>,
    /// Nodes of the main graph.
    pub nodes: u64,
    /// Its initializers, in file order, then (in the order their nodes come) those of its
    /// sub-graphs, named with their scope.
    pub initializers: Vec<Tensor>,
    /// Names of its sparse initializers and those of its sub-graphs (listed, not read).
    pub sparse: Vec<String>,
    /// Sub-graphs read (attributes of type `GRAPH`, and each graph of a `GRAPHS`).
    pub subgraphs: u64,
    /// Sub-graphs nested deeper than [`MAX_ONNX_GRAPH_DEPTH`], not entered.
    pub too_deep: u64,
    /// Nodes whose bytes could not be read in search of sub-graphs (counted; their weights, if
    /// any, are not listed), and the first one's problem.
    pub unreadable_nodes: (u64, Option<String>),
    /// Local functions the model defines.
    pub functions: u64,
}

/// One `TensorProto`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tensor {
    /// `name`.
    pub name: String,
    /// `data_type` (a `TensorProto.DataType` number).
    pub data_type: i64,
    /// `dims`, as written (negative values are refused later, with the tensor's name).
    pub dims: Vec<i64>,
    /// The whole message, in the file.
    pub message: Range<u64>,
    /// `raw_data`, in the file.
    pub raw: Option<Range<u64>>,
    /// The typed data fields present, by field number.
    pub typed: Vec<Typed>,
    /// `external_data` key/value pairs.
    pub external: Vec<(String, String)>,
    /// `data_location == EXTERNAL`.
    pub location_external: bool,
    /// A `segment` is set (a chunk of a larger tensor).
    pub segment: bool,
}

/// How one typed repeated field (`float_data`, `int64_data`...) of a tensor is written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Typed {
    /// Field number.
    pub field: u32,
    /// Packed pieces (length-delimited occurrences).
    pub packed: u64,
    /// The first packed piece, in the file.
    pub first_packed: Option<Range<u64>>,
    /// Values written one by one (unpacked).
    pub unpacked: u64,
}

fn bad(what: impl Into<String>) -> Problem {
    Problem::Other(format!("ONNX model: {}", what.into()))
}

fn wire(e: WireError) -> Problem {
    bad(e.to_string())
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

fn cut(mut s: String) -> String {
    if let Some((at, _)) = s.char_indices().nth(MAX_VALUE_STRING) {
        s.truncate(at);
        s.push('…');
    }
    s
}

/// The bytes of a length-delimited field, or an error naming what it should have been.
fn delimited<'a>(f: &Field<'a>, what: &str) -> Result<(&'a [u8], Range<u64>), Problem> {
    match &f.value {
        Value::Bytes(data, range) => Ok((data, range.clone())),
        _ => Err(bad(format!(
            "{what} (field {}) at offset {} is not length-delimited",
            f.number, f.at
        ))),
    }
}

fn varint(f: &Field<'_>, what: &str) -> Result<u64, Problem> {
    match f.value {
        Value::Varint(v) => Ok(v),
        _ => Err(bad(format!(
            "{what} (field {}) at offset {} is not a varint",
            f.number, f.at
        ))),
    }
}

fn count_check(n: usize, limit: usize, what: &str) -> Result<(), Problem> {
    if n >= limit {
        return Err(bad(format!(
            "more than {limit} {what}; ckptscope stops there"
        )));
    }
    Ok(())
}

/// Parses the model held by `bytes` (the whole file).
pub fn parse(bytes: &[u8]) -> Result<Model, Problem> {
    let mut m = Model::default();
    let mut graphs = 0;
    for f in Fields::new(bytes, 0) {
        let f = f.map_err(wire)?;
        match f.number {
            1 => m.ir_version = Some(varint(&f, "ir_version")?),
            2 => m.producer_name = Some(text(bytes_of(&f, "producer_name")?)),
            3 => m.producer_version = Some(text(bytes_of(&f, "producer_version")?)),
            4 => m.domain = Some(text(bytes_of(&f, "domain")?)),
            5 => m.model_version = Some(varint(&f, "model_version")? as i64),
            6 => m.doc_string = Some(cut(text(bytes_of(&f, "doc_string")?))),
            7 => {
                graphs += 1;
                if graphs > 1 {
                    return Err(bad("the model has more than one main graph"));
                }
                let (data, range) = delimited(&f, "graph")?;
                graph(data, range.start, &mut m, "", 0)?;
            }
            8 => {
                count_check(m.opsets.len(), MAX_ONNX_ENTRIES, "opset imports")?;
                let (data, range) = delimited(&f, "opset_import")?;
                let mut domain = String::new();
                let mut version = 0i64;
                for g in Fields::new(data, range.start) {
                    let g = g.map_err(wire)?;
                    match g.number {
                        1 => domain = text(bytes_of(&g, "opset domain")?),
                        2 => version = varint(&g, "opset version")? as i64,
                        _ => {}
                    }
                }
                m.opsets.push((domain, version));
            }
            14 => {
                count_check(m.metadata.len(), MAX_ONNX_ENTRIES, "metadata_props entries")?;
                let (data, range) = delimited(&f, "metadata_props")?;
                m.metadata.push(entry(data, range.start)?);
            }
            25 => m.functions += 1,
            _ => {}
        }
    }
    if graphs == 0 {
        return Err(bad("the model has no graph"));
    }
    Ok(m)
}

fn bytes_of<'a>(f: &Field<'a>, what: &str) -> Result<&'a [u8], Problem> {
    delimited(f, what).map(|(d, _)| d)
}

/// A `StringStringEntryProto`.
fn entry(data: &[u8], base: u64) -> Result<(String, String), Problem> {
    let (mut key, mut value) = (String::new(), String::new());
    for g in Fields::new(data, base) {
        let g = g.map_err(wire)?;
        match g.number {
            1 => key = text(bytes_of(&g, "entry key")?),
            2 => value = text(bytes_of(&g, "entry value")?),
            _ => {}
        }
    }
    Ok((key, value))
}

/// `name` under `scope` (the main graph's scope is empty).
fn scoped(scope: &str, name: String) -> String {
    if scope.is_empty() {
        name
    } else {
        format!("{scope}.{name}")
    }
}

/// A `GraphProto` at `depth` (0: the main graph) whose initializers are named under `scope`:
/// its own initializers first, then those of its nodes' sub-graphs, node by node.
fn graph(data: &[u8], base: u64, m: &mut Model, scope: &str, depth: usize) -> Result<(), Problem> {
    for f in Fields::new(data, base) {
        let f = f.map_err(wire)?;
        match f.number {
            1 if depth == 0 => m.nodes += 1,
            2 if depth == 0 => m.graph_name = Some(text(bytes_of(&f, "graph name")?)),
            5 => {
                count_check(m.initializers.len(), MAX_ONNX_TENSORS, "initializers")?;
                let (data, range) = delimited(&f, "initializer")?;
                let mut t = tensor(data, range)?;
                t.name = scoped(scope, std::mem::take(&mut t.name));
                m.initializers.push(t);
            }
            15 => {
                count_check(m.sparse.len(), MAX_ONNX_TENSORS, "sparse initializers")?;
                let (data, range) = delimited(&f, "sparse_initializer")?;
                m.sparse
                    .push(scoped(scope, sparse_name(data, range.start)?));
            }
            _ => {}
        }
    }
    let mut index = 0u64;
    for f in Fields::new(data, base) {
        let f = f.map_err(wire)?;
        if f.number != 1 {
            continue;
        }
        // The weights do not depend on the program: a node that cannot be read costs its own
        // sub-graphs, said in a finding, not the model.
        let read = delimited(&f, "node")
            .and_then(|(data, range)| node(data, range.start, m, scope, depth, index));
        if let Err(e) = read {
            let (count, first) = &mut m.unreadable_nodes;
            *count += 1;
            first.get_or_insert_with(|| e.to_string());
        }
        index += 1;
    }
    Ok(())
}

/// An `AttributeProto`'s sub-graphs: its `g` (field 6) and each of its `graphs` (field 11),
/// as (message, offset, index in `graphs`), in file order.
type SubGraph<'a> = (&'a [u8], u64, Option<usize>);

/// The sub-graphs of one attribute, and its name when it has any.
fn attribute_graphs(data: &[u8], base: u64) -> Result<(String, Vec<SubGraph<'_>>), Problem> {
    let mut name = String::new();
    let mut graphs = Vec::new();
    let mut listed = 0;
    for f in Fields::new(data, base) {
        let f = f.map_err(wire)?;
        match f.number {
            1 => name = text(bytes_of(&f, "attribute name")?),
            6 => {
                let (d, r) = delimited(&f, "attribute graph")?;
                graphs.push((d, r.start, None));
            }
            11 => {
                count_check(listed, MAX_ONNX_ENTRIES, "graphs in one attribute")?;
                let (d, r) = delimited(&f, "attribute graphs")?;
                graphs.push((d, r.start, Some(listed)));
                listed += 1;
            }
            _ => {}
        }
    }
    Ok((name, graphs))
}

/// Does this `AttributeProto` hold a graph? Keys only: nothing is allocated.
fn has_graph(data: &[u8], base: u64) -> Result<bool, Problem> {
    for f in Fields::new(data, base) {
        if matches!(f.map_err(wire)?.number, 6 | 11) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A `NodeProto`, the `index`-th of its graph: the initializers of its sub-graphs, if any.
fn node(
    data: &[u8],
    base: u64,
    m: &mut Model,
    scope: &str,
    depth: usize,
    index: u64,
) -> Result<(), Problem> {
    let mut any = false;
    for f in Fields::new(data, base) {
        let f = f.map_err(wire)?;
        if f.number == 5 {
            let (d, r) = delimited(&f, "attribute")?;
            any |= has_graph(d, r.start)?;
        }
    }
    if !any {
        return Ok(());
    }
    let (mut name, mut op_type) = (String::new(), String::new());
    for f in Fields::new(data, base) {
        let f = f.map_err(wire)?;
        match f.number {
            3 => name = text(bytes_of(&f, "node name")?),
            4 => op_type = text(bytes_of(&f, "op_type")?),
            _ => {}
        }
    }
    if name.is_empty() {
        let op = if op_type.is_empty() { "node" } else { &op_type };
        name = format!("{op}_{index}");
    }
    let node_scope = scoped(scope, name);
    for f in Fields::new(data, base) {
        let f = f.map_err(wire)?;
        if f.number != 5 {
            continue;
        }
        let (d, r) = delimited(&f, "attribute")?;
        let (attribute, graphs) = attribute_graphs(d, r.start)?;
        for (g, at, i) in graphs {
            if depth >= MAX_ONNX_GRAPH_DEPTH {
                m.too_deep += 1;
                continue;
            }
            m.subgraphs += 1;
            let inner = match i {
                Some(i) => format!("{node_scope}.{attribute}.{i}"),
                None => format!("{node_scope}.{attribute}"),
            };
            graph(g, at, m, &inner, depth + 1)?;
        }
    }
    Ok(())
}

/// The name of a `SparseTensorProto` (its `values` tensor's name).
fn sparse_name(data: &[u8], base: u64) -> Result<String, Problem> {
    for f in Fields::new(data, base) {
        let f = f.map_err(wire)?;
        if f.number == 1 {
            let (d, r) = delimited(&f, "sparse values")?;
            return Ok(tensor(d, r)?.name);
        }
    }
    Ok(String::new())
}

/// A `TensorProto` whose message is `data`, at `range` of the file.
pub fn tensor(data: &[u8], range: Range<u64>) -> Result<Tensor, Problem> {
    let mut t = Tensor {
        message: range.clone(),
        ..Tensor::default()
    };
    let too_many_dims = || {
        bad(format!(
            "a tensor at offset {} has more than {MAX_DIMS} dims",
            range.start
        ))
    };
    for f in Fields::new(data, range.start) {
        let f = f.map_err(wire)?;
        match (f.number, &f.value) {
            (1, Value::Varint(v)) => {
                if t.dims.len() >= MAX_DIMS {
                    return Err(too_many_dims());
                }
                t.dims.push(*v as i64);
            }
            (1, Value::Bytes(packed, _)) => {
                for v in crate::archive::protobuf::packed_varints(packed) {
                    if t.dims.len() >= MAX_DIMS {
                        return Err(too_many_dims());
                    }
                    let v = v.ok_or_else(|| bad(format!("bad dims at offset {}", f.at)))?;
                    t.dims.push(v as i64);
                }
            }
            (2, _) => t.data_type = varint(&f, "data_type")? as i64,
            (3, _) => t.segment = true,
            (8, _) => t.name = text(bytes_of(&f, "tensor name")?),
            (9, _) => t.raw = Some(delimited(&f, "raw_data")?.1),
            (13, _) => {
                count_check(t.external.len(), MAX_ONNX_ENTRIES, "external_data entries")?;
                let (d, r) = delimited(&f, "external_data")?;
                t.external.push(entry(d, r.start)?);
            }
            (14, _) => t.location_external = varint(&f, "data_location")? == 1,
            (4 | 5 | 6 | 7 | 10 | 11, value) => {
                let typed = match t.typed.iter_mut().find(|x| x.field == f.number) {
                    Some(x) => x,
                    None => {
                        t.typed.push(Typed {
                            field: f.number,
                            ..Typed::default()
                        });
                        t.typed.last_mut().ok_or_else(|| bad("internal"))?
                    }
                };
                match value {
                    Value::Bytes(_, r) => {
                        typed.packed += 1;
                        if typed.first_packed.is_none() {
                            typed.first_packed = Some(r.clone());
                        }
                    }
                    _ => typed.unpacked += 1,
                }
            }
            _ => {}
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(field: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![field << 3 | 2, body.len() as u8];
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn a_small_model_with_offsets() {
        let mut raw = vec![0x08, 2, 0x08, 3, 0x10, 1]; // dims 2, 3; FLOAT
        raw.extend(ld(8, b"w"));
        raw.extend(ld(9, &[0u8; 24]));
        let mut graph = ld(1, b"node");
        graph.extend(ld(5, &raw));
        let mut model = vec![0x08, 8];
        model.extend(ld(2, b"test"));
        model.extend(ld(7, &graph));
        model.extend(ld(8, &[0x10, 17]));
        model.extend(ld(14, &[ld(1, b"k"), ld(2, b"v")].concat()));
        let m = parse(&model).unwrap();
        assert_eq!(m.ir_version, Some(8));
        assert_eq!(m.producer_name.as_deref(), Some("test"));
        assert_eq!(m.nodes, 1);
        assert_eq!(m.opsets, [(String::new(), 17)]);
        assert_eq!(m.metadata, [("k".into(), "v".into())]);
        let t = &m.initializers[0];
        assert_eq!(
            (t.name.as_str(), t.data_type, t.dims.as_slice()),
            ("w", 1, &[2i64, 3][..])
        );
        let raw = t.raw.clone().unwrap();
        assert_eq!(raw.end - raw.start, 24);
        assert_eq!(&model[raw.start as usize..raw.end as usize], &[0u8; 24]);
    }

    #[test]
    fn malformed_models_are_errors() {
        assert!(
            parse(&[0x08, 8])
                .unwrap_err()
                .to_string()
                .contains("no graph")
        );
        assert!(parse(&[0x08, 8, 0x3a, 9, 1]).is_err());
        let graph = ld(5, &ld(1, &[1u8; 65]));
        let model = [vec![0x08, 8], ld(7, &graph)].concat();
        assert!(
            parse(&model)
                .unwrap_err()
                .to_string()
                .contains("more than 64 dims")
        );
    }
}
