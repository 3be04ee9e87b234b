//! `ckptscope info`: a summary line and an aligned table, or one JSON object.

use std::io::{self, Write};

use serde::Serialize;
use serde::ser::SerializeMap;

use crate::format::{ByteOrder, Checkpoint, Layout, PickleReport, ReadIssue, TensorEntry};
use crate::output::human::{self, term};

/// The `--json` document of `info`.
#[derive(Serialize)]
pub struct InfoJson<'a> {
    path: String,
    format: &'static str,
    file_size: u64,
    header_size: u64,
    metadata: OrderedMap<'a>,
    tensors: Tensors<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shards: Option<Vec<ShardJson>>,
    #[serde(skip_serializing_if = "<[ReadIssue]>::is_empty")]
    findings: &'a [ReadIssue],
    /// Pickle-based files: verdict, findings, non-tensor values, unreadable tensors.
    #[serde(skip_serializing_if = "Option::is_none")]
    scan: Option<&'a PickleReport>,
}

/// A string map serialized in the order it was read.
struct OrderedMap<'a>(&'a [(String, String)]);

impl Serialize for OrderedMap<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The tensor array, serialized one entry at a time (no per-tensor document is kept).
struct Tensors<'a>(&'a Checkpoint);

impl Serialize for Tensors<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let sharded = is_sharded(self.0);
        let mut seq = s.serialize_seq(Some(self.0.tensors.len()))?;
        for t in &self.0.tensors {
            seq.serialize_element(&TensorJson::of(self.0, t, sharded))?;
        }
        seq.end()
    }
}

fn is_sharded(ckpt: &Checkpoint) -> bool {
    ckpt.sources.len() > 1 || ckpt.format == crate::format::Format::SafetensorsSharded
}

#[derive(Serialize)]
struct TensorJson<'a> {
    name: &'a str,
    dtype: &'static str,
    shape: &'a [u64],
    data_offsets: [u64; 2],
    file_offset: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<String>,
    /// PyTorch storage key the tensor views.
    #[serde(skip_serializing_if = "Option::is_none")]
    storage: Option<&'a str>,
    /// Offset into the storage, in elements (strided views only).
    #[serde(skip_serializing_if = "Option::is_none")]
    storage_offset: Option<u64>,
    /// Strides in elements (strided views only).
    #[serde(skip_serializing_if = "Option::is_none")]
    stride: Option<&'a [u64]>,
    /// `"big"` for big-endian storages.
    #[serde(skip_serializing_if = "Option::is_none")]
    byte_order: Option<&'static str>,
    /// The device a PyTorch tensor was saved from (`cpu`, `cuda:0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<&'a str>,
}

#[derive(Serialize)]
struct ShardJson {
    path: String,
    file_size: u64,
    header_size: u64,
    tensors: usize,
}

impl<'a> TensorJson<'a> {
    fn of(ckpt: &Checkpoint, t: &'a TensorEntry, sharded: bool) -> Self {
        TensorJson {
            name: &t.name,
            dtype: t.type_name(),
            shape: &t.shape,
            data_offsets: t.data_offsets,
            file_offset: t.file_offset,
            shard: sharded
                .then(|| ckpt.sources.get(t.source).map(|s| s.label()))
                .flatten(),
            storage: t.storage.as_deref(),
            storage_offset: match &t.layout {
                Layout::Strided { offset, .. } => Some(*offset),
                Layout::Contiguous => None,
            },
            stride: match &t.layout {
                Layout::Strided { strides, .. } => Some(strides.as_slice()),
                Layout::Contiguous => None,
            },
            byte_order: (t.byte_order == ByteOrder::Big).then_some("big"),
            device: t.device.as_deref(),
        }
    }
}

impl<'a> InfoJson<'a> {
    /// Builds the document for `ckpt`.
    pub fn new(ckpt: &'a Checkpoint) -> Self {
        let sharded = is_sharded(ckpt);
        InfoJson {
            path: ckpt.path.display().to_string(),
            format: ckpt.format.json_name(),
            file_size: ckpt.file_size,
            header_size: ckpt.header_size,
            metadata: OrderedMap(&ckpt.metadata),
            tensors: Tensors(ckpt),
            shards: sharded.then(|| {
                ckpt.sources
                    .iter()
                    .map(|s| ShardJson {
                        path: s.path.display().to_string(),
                        file_size: s.file_size,
                        header_size: s.header_size,
                        tensors: s.tensor_count,
                    })
                    .collect()
            }),
            findings: &ckpt.issues,
            scan: ckpt.pickle.as_deref(),
        }
    }
}

/// Writes the `--json` document, followed by a newline.
///
/// The same bytes as serializing [`InfoJson`] with serde_json (a test checks it), but the tensor
/// array, which is nearly all of a large document, is written directly: a 20,000-tensor header
/// prints several times faster.
pub fn write_json(out: &mut impl Write, ckpt: &Checkpoint) -> io::Result<()> {
    let doc = InfoJson::new(ckpt);
    let sharded = is_sharded(ckpt);
    let mut buf: Vec<u8> = Vec::with_capacity((256 + ckpt.tensors.len() * 128).min(1 << 20) + 4096);
    buf.extend_from_slice(b"{\"path\":");
    serde_json::to_writer(&mut buf, &doc.path)?;
    buf.extend_from_slice(b",\"format\":");
    serde_json::to_writer(&mut buf, doc.format)?;
    buf.extend_from_slice(b",\"file_size\":");
    push_u64(&mut buf, doc.file_size);
    buf.extend_from_slice(b",\"header_size\":");
    push_u64(&mut buf, doc.header_size);
    buf.extend_from_slice(b",\"metadata\":");
    serde_json::to_writer(&mut buf, &doc.metadata)?;
    buf.extend_from_slice(b",\"tensors\":[");
    for (i, t) in ckpt.tensors.iter().enumerate() {
        let t = TensorJson::of(ckpt, t, sharded);
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(b"{\"name\":");
        push_str(&mut buf, t.name)?;
        buf.extend_from_slice(b",\"dtype\":\"");
        buf.extend_from_slice(t.dtype.as_bytes());
        buf.extend_from_slice(b"\",\"shape\":");
        push_u64s(&mut buf, t.shape);
        buf.extend_from_slice(b",\"data_offsets\":");
        push_u64s(&mut buf, &t.data_offsets);
        buf.extend_from_slice(b",\"file_offset\":");
        push_u64(&mut buf, t.file_offset);
        if let Some(shard) = &t.shard {
            buf.extend_from_slice(b",\"shard\":");
            push_str(&mut buf, shard)?;
        }
        if let Some(storage) = t.storage {
            buf.extend_from_slice(b",\"storage\":");
            push_str(&mut buf, storage)?;
        }
        if let Some(offset) = t.storage_offset {
            buf.extend_from_slice(b",\"storage_offset\":");
            push_u64(&mut buf, offset);
        }
        if let Some(stride) = t.stride {
            buf.extend_from_slice(b",\"stride\":");
            push_u64s(&mut buf, stride);
        }
        if let Some(order) = t.byte_order {
            buf.extend_from_slice(b",\"byte_order\":");
            push_str(&mut buf, order)?;
        }
        if let Some(device) = t.device {
            buf.extend_from_slice(b",\"device\":");
            push_str(&mut buf, device)?;
        }
        buf.push(b'}');
        if buf.len() > 1 << 20 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    buf.push(b']');
    if let Some(shards) = &doc.shards {
        buf.extend_from_slice(b",\"shards\":");
        serde_json::to_writer(&mut buf, shards)?;
    }
    if !doc.findings.is_empty() {
        buf.extend_from_slice(b",\"findings\":");
        serde_json::to_writer(&mut buf, doc.findings)?;
    }
    if let Some(scan) = doc.scan {
        buf.extend_from_slice(b",\"scan\":");
        serde_json::to_writer(&mut buf, scan)?;
    }
    buf.extend_from_slice(b"}\n");
    out.write_all(&buf)
}

fn push_u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

fn push_u64s(buf: &mut Vec<u8>, values: &[u64]) {
    buf.push(b'[');
    for (i, &v) in values.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        push_u64(buf, v);
    }
    buf.push(b']');
}

/// A JSON string: written as-is when it needs no escaping (the usual tensor name), through
/// serde_json otherwise.
fn push_str(buf: &mut Vec<u8>, s: &str) -> io::Result<()> {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(&mut *buf, s).map_err(io::Error::other)
    }
}

/// One line: format, tensors, parameters, bytes and the dtype breakdown.
pub fn summary_line(ckpt: &Checkpoint) -> String {
    let dtypes: Vec<String> = ckpt
        .dtype_totals()
        .iter()
        .map(|d| format!("{} ×{} ({})", d.name(), d.tensors, human::bytes(d.bytes)))
        .collect();
    let mut line = format!(
        "{} · {} tensors · {} parameters · {} of tensors in {} on disk",
        ckpt.format.label(),
        ckpt.tensors.len(),
        human::count(ckpt.parameters()),
        human::bytes(ckpt.tensor_bytes_total()),
        human::bytes(ckpt.file_size),
    );
    if !dtypes.is_empty() {
        line.push_str(" · ");
        line.push_str(&dtypes.join(", "));
    }
    line
}

/// Writes the human report: path, summary, metadata, findings, scan, the non-tensor values of
/// pickle files (scalars such as `epoch` first, big maps summarised), then the tensor table.
/// Every string read from the file is escaped for terminals ([`human::term`]).
pub fn write_human(out: &mut impl Write, ckpt: &Checkpoint) -> io::Result<()> {
    writeln!(out, "{}", term(&ckpt.path.to_string_lossy()))?;
    writeln!(out, "{}", summary_line(ckpt))?;
    if !ckpt.metadata.is_empty() {
        writeln!(out, "metadata:")?;
        let keys: Vec<String> = ckpt.metadata.iter().map(|(k, _)| term(k).into()).collect();
        let width = keys.iter().map(|k| k.chars().count()).max().unwrap_or(0);
        for (k, (_, v)) in keys.iter().zip(&ckpt.metadata) {
            writeln!(out, "  {k:<width$}  {}", term(&one_line(v, 120)))?;
        }
    }
    for f in &ckpt.issues {
        writeln!(out, "{}: {}", severity_word(f), term(&f.message))?;
    }
    if let Some(report) = &ckpt.pickle {
        write_scan(out, report)?;
        let values = value_lines(&report.objects);
        if !values.is_empty() {
            writeln!(out, "values:")?;
            let shown = values.len().min(MAX_VALUES);
            for line in values.iter().take(shown) {
                writeln!(out, "  {line}")?;
            }
            if values.len() > shown {
                writeln!(out, "  … {} more (see --json)", values.len() - shown)?;
            }
        }
    }
    if ckpt.tensors.is_empty() {
        writeln!(out, "(no tensors)")?;
    } else {
        write_table(out, ckpt)?;
    }
    Ok(())
}

/// Lines of `values:` shown before the rest is counted.
const MAX_VALUES: usize = 200;
/// A map or list with more entries than this is one summary line (its size and first keys).
const BIG: usize = 16;
/// Keys named in a summary line.
const FIRST_KEYS: usize = 6;

/// The non-tensor values as `path = value` lines, escaped for terminals. In each map the
/// scalars come first (`epoch`, `step`, metrics), then the nested values; a map or list with
/// more than [`BIG`] entries is summarised (`optimizer.state = {1,024 entries: 0, 1, 2, …}`)
/// instead of burying everything after it. Tensor placeholders are left out: they are in the
/// table. Keys appear in the order the report holds them (sorted).
pub fn value_lines(objects: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    fn is_leaf(v: &Value) -> bool {
        match v {
            Value::Object(_) => false,
            Value::Array(items) => !items.iter().any(|i| i.is_object() || i.is_array()),
            _ => true,
        }
    }
    fn leaf(path: &str, v: &Value, out: &mut Vec<String>) {
        let text = match v {
            Value::String(s) if s.starts_with("<tensor ") => return,
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push(format!("{} = {}", term(path), term(&one_line(&text, 120))));
    }
    fn walk(v: &Value, path: &str, out: &mut Vec<String>) {
        if out.len() > MAX_VALUES {
            return;
        }
        let child = |k: &str| {
            if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            }
        };
        let children: Vec<(String, &Value)> = match v {
            Value::Object(map) => map.iter().map(|(k, v)| (child(k), v)).collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (child(&i.to_string()), v))
                .collect(),
            Value::Null if path.is_empty() => return,
            other => return leaf(path, other, out),
        };
        if !path.is_empty() && children.len() > BIG {
            let first: Vec<String> = match v {
                Value::Object(map) => map
                    .keys()
                    .take(FIRST_KEYS)
                    .map(|k| term(k).into())
                    .collect(),
                _ => Vec::new(),
            };
            let summary = if first.is_empty() {
                format!("[{} items]", children.len())
            } else {
                format!("{{{} entries: {}, …}}", children.len(), first.join(", "))
            };
            out.push(format!("{} = {summary}", term(path)));
            return;
        }
        for (p, c) in children.iter().filter(|(_, c)| is_leaf(c)) {
            leaf(p, c, out);
        }
        for (p, c) in children.iter().filter(|(_, c)| !is_leaf(c)) {
            walk(c, p, out);
        }
    }
    let mut out = Vec::new();
    if is_leaf(objects) {
        if !objects.is_null() {
            leaf("value", objects, &mut out);
        }
    } else {
        walk(objects, "", &mut out);
    }
    out
}

fn write_scan(out: &mut impl Write, report: &PickleReport) -> io::Result<()> {
    writeln!(
        out,
        "scan: {}{}",
        report.verdict.name().to_uppercase(),
        match report.verdict {
            crate::pickle::policy::Verdict::Safe =>
                " (only allowlisted globals: loading it runs no code)",
            crate::pickle::policy::Verdict::Suspicious
                if report.read_verdict() == crate::pickle::policy::Verdict::Safe =>
                " (a TorchScript program: torch.jit.load compiles and runs its code; its pickles hold only data)",
            crate::pickle::policy::Verdict::Suspicious =>
                " (imports or calls things outside the allowlist)",
            crate::pickle::policy::Verdict::Dangerous =>
                " (runs code when loaded with torch.load or pickle)",
        }
    )?;
    for f in &report.findings {
        writeln!(out, "  {}", crate::output::scan::finding_line(f))?;
    }
    if let Some(code) = &report.torchscript {
        writeln!(
            out,
            "code: {} TorchScript source files, {} lines, {} flagged (`--json`: scan.torchscript)",
            code.files.len(),
            code.lines,
            code.flagged.len()
        )?;
    }
    if let Some(w) = &report.weights_only {
        writeln!(out, "compat: {}", term(&w.line()))?;
    }
    if report.withheld {
        writeln!(
            out,
            "tensors not listed because the file is {}: pass --allow-{} to list them (nothing is executed either way)",
            report.verdict, report.verdict
        )?;
    }
    for u in &report.unsupported {
        writeln!(out, "not read: {}: {}", term(&u.name), term(&u.reason))?;
    }
    for n in &report.notes {
        writeln!(out, "note: {}", term(n))?;
    }
    Ok(())
}

fn write_table(out: &mut impl Write, ckpt: &Checkpoint) -> io::Result<()> {
    let sharded = ckpt.sources.len() > 1;
    let strided = ckpt.tensors.iter().any(|t| t.storage.is_some());
    let rows: Vec<[String; 5]> = ckpt
        .tensors
        .iter()
        .map(|t| {
            [
                term(&t.name).into_owned(),
                t.type_name().to_string(),
                human::shape(&t.shape),
                format!("[{}, {}]", t.data_offsets[0], t.data_offsets[1]),
                if sharded {
                    ckpt.sources
                        .get(t.source)
                        .map(|s| term(&s.label()).into_owned())
                        .unwrap_or_default()
                } else if strided {
                    storage_cell(t)
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    let headers = [
        "name",
        "dtype",
        "shape",
        if strided {
            "file_range"
        } else {
            "data_offsets"
        },
        if sharded {
            "shard"
        } else if strided {
            "storage"
        } else {
            ""
        },
    ];
    let mut widths = headers.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    write_row(out, &headers.map(String::from), &widths)?;
    for row in &rows {
        write_row(out, row, &widths)?;
    }
    Ok(())
}

/// `0 +16 stride [8, 1] big-endian cuda:0` (the device only when it is not the CPU).
fn storage_cell(t: &TensorEntry) -> String {
    let mut cell = term(t.storage.as_deref().unwrap_or_default()).into_owned();
    if let Layout::Strided { offset, strides } = &t.layout {
        if *offset != 0 {
            cell.push_str(&format!(" +{offset}"));
        }
        cell.push_str(&format!(" stride {}", human::shape(strides)));
    }
    if t.byte_order == ByteOrder::Big {
        cell.push_str(" big-endian");
    }
    if let Some(device) = t.device.as_deref().filter(|d| *d != "cpu") {
        cell.push(' ');
        cell.push_str(&term(device));
    }
    cell
}

fn write_row(out: &mut impl Write, cells: &[String; 5], widths: &[usize; 5]) -> io::Result<()> {
    let mut line = String::new();
    for (i, (cell, &w)) in cells.iter().zip(widths).enumerate() {
        if w == 0 {
            continue;
        }
        if i > 0 {
            line.push_str("  ");
        }
        line.push_str(cell);
        line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
    }
    writeln!(out, "{}", line.trim_end())
}

fn severity_word(f: &ReadIssue) -> &'static str {
    match f.severity {
        crate::format::Severity::Info => "note",
        crate::format::Severity::Warning => "warning",
        crate::format::Severity::Error => "error",
    }
}

/// The first line of `s`, cut to `max` characters, with an ellipsis when anything was dropped.
pub fn one_line(s: &str, max: usize) -> String {
    let first = s.lines().next().unwrap_or("");
    let mut out: String = first.chars().take(max).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}
