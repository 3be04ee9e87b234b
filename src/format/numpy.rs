//! NumPy arrays: `.npy` files and `.npz` archives of them, read as tensors.
//!
//! A `.npy` file is a magic string, a version, a header (a Python dict literal: `descr`,
//! `fortran_order`, `shape`) and the raw elements. The header is parsed here by a small, strict
//! reader of that literal (strings, booleans, integers, tuples and lists, nested at most 16
//! deep, at most 1 MiB long), so that the numbers that place the data are exactly those
//! `np.load` would use. Big-endian arrays keep their byte order (decoding swaps), Fortran-order
//! arrays are strided views (the first index varies fastest), so statistics and slices read
//! the elements `np.load` would return.
//!
//! In a `.npz`, a stored member is viewed in place like any other array. A deflated member
//! (`np.savez_compressed`) is **inflated lazily**: at open only its header is inflated (at most
//! 64 KiB, or the header's declared length when it is longer), and its data becomes a
//! [`derived`](crate::format::derived) source inflated the first time its values are asked for,
//! to exactly the size its directory entry records (a deflate bomb stops one byte past it),
//! CRC-checked, and drawn from the file's `--limit inflated` budget. Inflating every member at
//! open would make listing a 10 GB compressed archive cost 10 GB of memory and the time to
//! inflate it; lazily, the table costs the headers and memory goes only to the arrays looked at.
//!
//! Object arrays (`|O`) hold a pickle: they are not tensors here, and the pickle engine judges
//! them (see `pickle::layouts`). Other dtypes ckptscope cannot show (strings, datetimes,
//! structured records, complex128, long double) are listed with the reason.

use std::sync::Arc;

use crate::archive::zip::{self, ZipEntry};
use crate::dtype::DType;
use crate::error::Error;
use crate::format::derived::{Budget, Derived, Recipe};
use crate::format::mapped::MappedFile;
use crate::format::pytorch::{self, PickleOptions};
use crate::format::{ByteOrder, Checkpoint, Format, Layout, TensorEntry};
use crate::limits::{Limits, MAX_DIMS, MAX_NPY_HEADER};
use crate::pickle::torch::UnsupportedTensor;

/// Opens a mapped `.npy` file or `.npz` archive (`format` says which). The pickle engine runs
/// first, as for any file that may hold a pickle: it judges object arrays, and what their
/// pickle holds is the report's. The arrays are data whatever the verdict (`np.load` reads them
/// without unpickling), so they are listed even when the report withholds the pickle's
/// tensors.
pub fn open(
    mapped: MappedFile,
    format: Format,
    limits: &Limits,
    options: &PickleOptions,
    progress: Option<&crate::progress::Progress>,
) -> Result<Checkpoint, Error> {
    let analysis = pytorch::analyze(&mapped, format, &options.policy, limits, progress)?;
    let bytes = mapped.bytes();
    let (mut report, mut tensors) = pytorch::pickled(bytes, &analysis, limits, options);
    let arrays = match (format, &analysis.zip) {
        (Format::NumpyZip, Some(zip)) => {
            Some(read_npz(bytes, &zip.entries, limits.max_inflated_bytes))
        }
        (Format::NumpyZip, None) => None,
        _ => Some(read_npy(bytes)),
    };
    let mut derived = Vec::new();
    // What the scan says of the arrays, said here too, so `info` and the window give the same
    // answer as `scan`: a header that cannot be read is not understood, and an array whose
    // header or size cannot be right is suspicious; neither is ever safe.
    let mut doubts = arrays.as_ref().map(doubts).unwrap_or_default();
    if format == Format::Numpy
        && let Err(problem) = crate::pickle::container::npy_header(bytes)
    {
        doubts.insert(
            0,
            crate::verdict::Finding::new(
                crate::verdict::Risk::Suspicious,
                None,
                format!(
                    "the .npy header cannot be read ({problem}); it was not understood: np.load would fail on it"
                ),
            ),
        );
    }
    if !doubts.is_empty() {
        report.verdict = report.verdict.max(crate::verdict::Verdict::Suspicious);
        report.findings.extend(doubts);
    }
    report.findings.sort_by_key(|f| std::cmp::Reverse(f.risk));
    if let Some(arrays) = arrays {
        tensors.extend(arrays.tensors);
        derived = arrays.derived;
        // A `.npy` object array is the pickle's to describe; an `.npz` member is named here.
        report.unsupported.extend(
            arrays
                .unsupported
                .into_iter()
                .filter(|(name, _)| format == Format::NumpyZip || !arrays.objects.contains(name))
                .map(|(name, reason)| UnsupportedTensor {
                    name,
                    reason,
                    root: None,
                }),
        );
    }
    Ok(pytorch::checkpoint(
        mapped, format, tensors, derived, report,
    ))
}

/// A parsed `.npy` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Format version (1, 2 or 3).
    pub version: u8,
    /// `descr` as written: `<f4`, or the text of a structured dtype's list.
    pub descr: String,
    /// True when `descr` is a list (a structured dtype).
    pub structured: bool,
    /// `fortran_order`.
    pub fortran_order: bool,
    /// `shape`.
    pub shape: Vec<u64>,
    /// Offset of the first element.
    pub data_start: u64,
}

impl Header {
    /// True for an object array (its data is a pickle), or a structured dtype with an object
    /// field.
    pub fn is_object(&self) -> bool {
        self.descr.contains('O')
    }
}

/// What the magic and version say the header's length is: `(header start, header length)`.
fn prelude(bytes: &[u8]) -> Result<(u8, usize, usize), String> {
    if !bytes.starts_with(b"\x93NUMPY") {
        return Err("not a .npy array (no \\x93NUMPY magic)".into());
    }
    let major = *bytes.get(6).ok_or("the .npy header is cut short")?;
    let (start, len) = match major {
        1 => (
            10,
            usize::from(u16::from_le_bytes(
                bytes
                    .get(8..10)
                    .and_then(|b| b.try_into().ok())
                    .ok_or("the .npy header is cut short")?,
            )),
        ),
        2 | 3 => (
            12,
            usize::try_from(u32::from_le_bytes(
                bytes
                    .get(8..12)
                    .and_then(|b| b.try_into().ok())
                    .ok_or("the .npy header is cut short")?,
            ))
            .map_err(|_| "the .npy header length does not fit in memory")?,
        ),
        v => {
            return Err(format!(
                ".npy format version {v} is unknown (1, 2 and 3 exist)"
            ));
        }
    };
    if len > MAX_NPY_HEADER {
        return Err(format!(
            "the .npy header declares {len} bytes, more than the {MAX_NPY_HEADER} ckptscope reads"
        ));
    }
    Ok((major, start, len))
}

/// Bytes of the file needed to parse its header (magic, version, length and the header).
pub fn header_len(bytes: &[u8]) -> Result<usize, String> {
    let (_, start, len) = prelude(bytes)?;
    Ok(start + len)
}

/// Parses the header at the start of `bytes`.
pub fn header(bytes: &[u8]) -> Result<Header, String> {
    let (version, start, len) = prelude(bytes)?;
    let raw = bytes
        .get(start..start + len)
        .ok_or("the .npy header runs past the end of the file")?;
    let text = std::str::from_utf8(raw).map_err(|_| {
        if version < 3 {
            "the .npy header is not ASCII text".to_string()
        } else {
            "the .npy header is not UTF-8 text".to_string()
        }
    })?;
    let value = literal::parse(text)?;
    let literal::Value::Dict(entries) = value else {
        return Err("the .npy header is not a dict".into());
    };
    let get = |key: &str| entries.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let (descr, structured) = match get("descr") {
        Some(literal::Value::Str(s)) => (s.clone(), false),
        Some(v @ literal::Value::Seq(_)) => (v.to_string(), true),
        Some(_) => return Err("the .npy header's descr is neither a string nor a list".into()),
        None => return Err("the .npy header has no descr".into()),
    };
    let fortran_order = match get("fortran_order") {
        Some(literal::Value::Bool(b)) => *b,
        _ => return Err("the .npy header has no fortran_order True or False".into()),
    };
    let shape = match get("shape") {
        Some(literal::Value::Seq(items)) => items
            .iter()
            .map(|v| match v {
                literal::Value::Int(n) => Ok(*n),
                _ => Err("the .npy header's shape holds something other than sizes".to_string()),
            })
            .collect::<Result<Vec<u64>, String>>()?,
        _ => return Err("the .npy header has no shape tuple".into()),
    };
    if shape.len() > MAX_DIMS {
        return Err(format!(
            "the .npy shape has {} dimensions, more than {MAX_DIMS}",
            shape.len()
        ));
    }
    Ok(Header {
        version,
        descr,
        structured,
        fortran_order,
        shape,
        data_start: (start + len) as u64,
    })
}

/// The ckptscope dtype and byte order of a simple `descr`, or why there is none.
pub fn dtype(descr: &str) -> Result<(DType, ByteOrder), String> {
    let (order, code) = match descr.as_bytes().first() {
        Some(b'<' | b'=' | b'|') => (ByteOrder::Little, descr.get(1..).unwrap_or("")),
        Some(b'>') => (ByteOrder::Big, descr.get(1..).unwrap_or("")),
        _ => (ByteOrder::Little, descr),
    };
    let dtype = match code {
        "b1" | "?" => DType::BOOL,
        "i1" | "b" => DType::I8,
        "u1" | "B" => DType::U8,
        "i2" => DType::I16,
        "u2" => DType::U16,
        "i4" => DType::I32,
        "u4" => DType::U32,
        "i8" => DType::I64,
        "u8" => DType::U64,
        "f2" | "e" => DType::F16,
        "f4" | "f" => DType::F32,
        "f8" | "d" => DType::F64,
        "c8" | "F" => DType::C64,
        _ => {
            let kind = code.chars().next().unwrap_or('?');
            return Err(match kind {
                'O' => {
                    "object array: its data is a pickle (judged by the scan), not numbers".into()
                }
                'U' => format!("NumPy dtype `{descr}` holds Unicode strings, not numbers"),
                'S' | 'a' => format!("NumPy dtype `{descr}` holds byte strings, not numbers"),
                'V' => format!(
                    "NumPy dtype `{descr}` is raw bytes (void); types from other libraries such as ml_dtypes' bfloat16 are saved this way and cannot be told apart"
                ),
                'M' | 'm' => format!("NumPy dtype `{descr}` holds dates or time spans"),
                'c' => {
                    format!("NumPy dtype `{descr}` (complex128 or wider) has no ckptscope dtype")
                }
                'f' | 'g' => format!("NumPy dtype `{descr}` (long double) has no ckptscope dtype"),
                _ => format!("NumPy dtype `{descr}` is not one ckptscope reads"),
            });
        }
    };
    // One-byte types have no byte order.
    let order = if dtype.byte_size() == Some(1) {
        ByteOrder::Little
    } else {
        order
    };
    Ok((dtype, order))
}

/// The layout of an array of `shape`: row-major, or column-major for Fortran order.
fn layout(h: &Header) -> Layout {
    if !h.fortran_order || h.shape.iter().filter(|&&d| d > 1).count() < 2 {
        return Layout::Contiguous;
    }
    let mut strides = Vec::with_capacity(h.shape.len());
    let mut step = 1u64;
    for &d in &h.shape {
        strides.push(step);
        step = step.saturating_mul(d.max(1));
    }
    Layout::Strided { offset: 0, strides }
}

/// The data bytes `h` says follow its header, or why that cannot be.
pub fn data_len(h: &Header) -> Result<(DType, ByteOrder, u64), String> {
    if h.structured {
        return Err(format!(
            "structured NumPy dtype {} (records of named fields) is not read",
            h.descr
        ));
    }
    let (dtype, order) = dtype(&h.descr)?;
    let elements = h
        .shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("its shape {:?} overflows 64 bits", h.shape))?;
    let len = dtype
        .bytes_for(elements)
        .ok_or_else(|| format!("its shape {:?} overflows 64 bits of bytes", h.shape))?;
    Ok((dtype, order, len))
}

/// The tensor for an array whose header is `h`, whose bytes (header included) start at file
/// offset `base` and are `available` long; offsets are absolute unless the array's source is
/// derived, where they are relative to its inflated bytes (`base` = 0).
fn entry(
    name: &str,
    h: &Header,
    source: usize,
    base: u64,
    available: u64,
) -> Result<TensorEntry, String> {
    let (dtype, byte_order, len) = data_len(h)?;
    let end = h
        .data_start
        .checked_add(len)
        .filter(|&e| e <= available)
        .ok_or_else(|| {
            format!(
                "its header declares {len} bytes of data ({} {:?}) but only {} follow the header",
                h.descr,
                h.shape,
                available.saturating_sub(h.data_start)
            )
        })?;
    let start = base + h.data_start;
    let mut t = TensorEntry::contiguous(
        name.to_string(),
        dtype,
        h.shape.clone(),
        source,
        [start, base + end],
        0,
    );
    t.layout = layout(h);
    t.byte_order = byte_order;
    Ok(t)
}

/// What the arrays of a `.npy` or `.npz` file are.
#[derive(Debug, Default)]
pub struct Arrays {
    /// The arrays that are read. Source 0 is the file; `derived[i]` is source `1 + i`.
    pub tensors: Vec<TensorEntry>,
    /// Deflated members, in the order of their sources.
    pub derived: Vec<Derived>,
    /// Arrays listed but not read: (name, reason).
    pub unsupported: Vec<(String, String)>,
    /// Members that are object arrays (their pickles are for the scan).
    pub objects: Vec<String>,
}

/// Reads the single array of a `.npy` file (`bytes` is the whole file), named `array`.
pub fn read_npy(bytes: &[u8]) -> Arrays {
    let mut out = Arrays::default();
    match header(bytes) {
        Ok(h) if h.is_object() => out.objects.push("array".into()),
        Ok(h) => match entry("array", &h, 0, 0, bytes.len() as u64) {
            Ok(t) => out.tensors.push(t),
            Err(e) => out.unsupported.push(("array".into(), e)),
        },
        Err(e) => out.unsupported.push(("array".into(), e)),
    }
    out
}

/// Reads the arrays of a `.npz` archive (`bytes` is the whole file), named as `np.load` names
/// them (the member name without `.npy`). `inflate_limit` bounds every deflated member and, as
/// a budget, all of them together.
pub fn read_npz(bytes: &[u8], entries: &[ZipEntry], inflate_limit: u64) -> Arrays {
    let mut out = Arrays::default();
    let budget = Budget::new(inflate_limit);
    for e in entries {
        if e.name.ends_with('/') {
            continue;
        }
        let name = e.name.strip_suffix(".npy").unwrap_or(&e.name).to_string();
        if let Err(reason) = member(bytes, e, &name, inflate_limit, &budget, &mut out) {
            out.unsupported.push((name, reason));
        }
    }
    out
}

fn member(
    bytes: &[u8],
    e: &ZipEntry,
    name: &str,
    inflate_limit: u64,
    budget: &Arc<Budget>,
    out: &mut Arrays,
) -> Result<(), String> {
    let range = zip::data_range(bytes, e).map_err(|p| p.to_string())?;
    let raw = usize::try_from(range.start)
        .ok()
        .zip(usize::try_from(range.end).ok())
        .and_then(|(s, e)| bytes.get(s..e))
        .ok_or("the member lies outside the file")?;
    match e.method {
        0 => {
            let h = header(raw)?;
            if h.is_object() {
                out.objects.push(name.to_string());
                return Err(
                    "object array: its data is a pickle (judged by the scan), not numbers".into(),
                );
            }
            out.tensors
                .push(entry(name, &h, 0, range.start, raw.len() as u64)?);
            Ok(())
        }
        8 => {
            let mut prefix = zip::inflate_prefix(raw, 64 << 10)?;
            let need = header_len(&prefix)?;
            if need > prefix.len() {
                prefix = zip::inflate_prefix(raw, need)?;
            }
            let h = header(&prefix)?;
            if h.is_object() {
                out.objects.push(name.to_string());
                return Err(
                    "object array: its data is a pickle (judged by the scan), not numbers".into(),
                );
            }
            if e.size > inflate_limit {
                return Err(format!(
                    "it is deflated and inflates to {} bytes, more than the {inflate_limit}-byte inflate limit (raise it with --limit inflated=N)",
                    e.size
                ));
            }
            let source = 1 + out.derived.len();
            let mut t = entry(name, &h, source, 0, e.size)?;
            t.file_offset = range.start;
            out.derived.push(Derived::new(
                Recipe::Inflate {
                    member: e.name.clone(),
                    range,
                    size: e.size,
                    crc32: e.crc32,
                },
                budget.clone(),
            ));
            out.tensors.push(t);
            Ok(())
        }
        m => Err(format!(
            "it uses zip compression method {m}; np.load reads only stored and deflated members"
        )),
    }
}

/// Problems a scan reports for a `.npy`/`.npz` file: arrays whose header cannot be read or
/// whose declared size the file does not hold (bounded: one line per array).
/// The arrays' problems as the scan reports them: each one suspicious, since `np.load` would
/// fail on it (at most 1,000). `scan`, `info` and the window all say these.
pub fn doubts(arrays: &Arrays) -> Vec<crate::verdict::Finding> {
    problems(arrays)
        .into_iter()
        .take(1000)
        .map(|p| {
            crate::verdict::Finding::new(
                crate::verdict::Risk::Suspicious,
                None,
                format!("{p}: np.load would fail on it"),
            )
        })
        .collect()
}

pub fn problems(arrays: &Arrays) -> Vec<String> {
    arrays
        .unsupported
        .iter()
        .filter(|(_, why)| {
            why.contains("header") || why.contains("overflows") || why.contains("inflat")
        })
        .map(|(name, why)| format!("array `{name}`: {why}"))
        .collect()
}

/// The Python literal of a `.npy` header: a dict of strings to strings, booleans, integers,
/// and tuples or lists of them.
mod literal {
    use std::fmt;

    /// A literal value.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Value {
        Str(String),
        Bool(bool),
        Int(u64),
        None,
        Seq(Vec<Value>),
        Dict(Vec<(String, Value)>),
    }

    impl fmt::Display for Value {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Value::Str(s) => write!(f, "'{s}'"),
                Value::Bool(b) => f.write_str(if *b { "True" } else { "False" }),
                Value::Int(n) => write!(f, "{n}"),
                Value::None => f.write_str("None"),
                Value::Seq(items) => {
                    f.write_str("[")?;
                    for (i, v) in items.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "{v}")?;
                    }
                    f.write_str("]")
                }
                Value::Dict(entries) => {
                    f.write_str("{")?;
                    for (i, (k, v)) in entries.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "'{k}': {v}")?;
                    }
                    f.write_str("}")
                }
            }
        }
    }

    const MAX_DEPTH: usize = 16;

    struct Parser<'a> {
        s: &'a [u8],
        at: usize,
    }

    /// Parses the whole of `text` as one literal.
    pub fn parse(text: &str) -> Result<Value, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            at: 0,
        };
        let v = p.value(0)?;
        p.space();
        if p.at != p.s.len() {
            return Err(format!(
                "the .npy header has unexpected text at byte {}",
                p.at
            ));
        }
        Ok(v)
    }

    impl Parser<'_> {
        fn space(&mut self) {
            while self.s.get(self.at).is_some_and(|b| b.is_ascii_whitespace()) {
                self.at += 1;
            }
        }

        fn err<T>(&self, what: &str) -> Result<T, String> {
            Err(format!(
                "the .npy header is not a literal NumPy writes: {what} at byte {}",
                self.at
            ))
        }

        fn value(&mut self, depth: usize) -> Result<Value, String> {
            if depth > MAX_DEPTH {
                return self.err("nested too deep");
            }
            self.space();
            match self.s.get(self.at) {
                Some(b'{') => self.dict(depth),
                Some(b'(') => self.seq(b')', depth),
                Some(b'[') => self.seq(b']', depth),
                Some(b'\'' | b'"') => self.string().map(Value::Str),
                Some(b) if b.is_ascii_digit() => self.int(),
                Some(_) => {
                    let rest = &self.s[self.at..];
                    for (word, v) in [
                        (&b"True"[..], Value::Bool(true)),
                        (b"False", Value::Bool(false)),
                        (b"None", Value::None),
                    ] {
                        if rest.starts_with(word) {
                            self.at += word.len();
                            return Ok(v);
                        }
                    }
                    self.err("an unexpected value")
                }
                None => self.err("the end of the header"),
            }
        }

        fn int(&mut self) -> Result<Value, String> {
            let start = self.at;
            while self.s.get(self.at).is_some_and(u8::is_ascii_digit) {
                self.at += 1;
            }
            let digits = std::str::from_utf8(&self.s[start..self.at]).unwrap_or("");
            let n = digits
                .parse::<u64>()
                .or_else(|_| self.err("a size too large for 64 bits"))?;
            if self.s.get(self.at) == Some(&b'L') {
                self.at += 1;
            }
            Ok(Value::Int(n))
        }

        fn string(&mut self) -> Result<String, String> {
            let quote = self.s[self.at];
            self.at += 1;
            let start = self.at;
            while let Some(&b) = self.s.get(self.at) {
                if b == quote {
                    let s = String::from_utf8_lossy(&self.s[start..self.at]).into_owned();
                    self.at += 1;
                    return Ok(s);
                }
                if b == b'\\' {
                    return self.err("an escape in a string");
                }
                self.at += 1;
            }
            self.err("an unterminated string")
        }

        fn seq(&mut self, close: u8, depth: usize) -> Result<Value, String> {
            self.at += 1;
            let mut items = Vec::new();
            loop {
                self.space();
                if self.s.get(self.at) == Some(&close) {
                    self.at += 1;
                    return Ok(Value::Seq(items));
                }
                items.push(self.value(depth + 1)?);
                self.space();
                match self.s.get(self.at) {
                    Some(b',') => self.at += 1,
                    Some(&b) if b == close => {}
                    _ => return self.err("a missing comma"),
                }
            }
        }

        fn dict(&mut self, depth: usize) -> Result<Value, String> {
            self.at += 1;
            let mut entries: Vec<(String, Value)> = Vec::new();
            loop {
                self.space();
                if self.s.get(self.at) == Some(&b'}') {
                    self.at += 1;
                    return Ok(Value::Dict(entries));
                }
                if !matches!(self.s.get(self.at), Some(b'\'' | b'"')) {
                    return self.err("a key that is not a string");
                }
                let key = self.string()?;
                self.space();
                if self.s.get(self.at) != Some(&b':') {
                    return self.err("a missing colon");
                }
                self.at += 1;
                let value = self.value(depth + 1)?;
                if entries.iter().any(|(k, _)| *k == key) {
                    return self.err("a repeated key");
                }
                entries.push((key, value));
                self.space();
                match self.s.get(self.at) {
                    Some(b',') => self.at += 1,
                    Some(b'}') => {}
                    _ => return self.err("a missing comma"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(version: u8, dict: &str, data: &[u8]) -> Vec<u8> {
        let mut out = b"\x93NUMPY".to_vec();
        out.push(version);
        out.push(0);
        if version == 1 {
            out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn headers_of_every_version() {
        for v in [1, 2, 3] {
            let f = npy(
                v,
                "{'descr': '>f4', 'fortran_order': True, 'shape': (2, 3), }\n",
                &[0; 24],
            );
            let h = header(&f).unwrap();
            assert_eq!(
                (h.version, h.descr.as_str(), h.fortran_order),
                (v, ">f4", true)
            );
            assert_eq!(h.shape, [2, 3]);
            let a = read_npy(&f);
            let t = &a.tensors[0];
            assert_eq!(t.byte_order, ByteOrder::Big);
            assert_eq!(
                t.layout,
                Layout::Strided {
                    offset: 0,
                    strides: vec![1, 2]
                }
            );
        }
    }

    #[test]
    fn odd_and_hostile_headers() {
        let scalar = npy(
            1,
            "{'descr':'<i8','fortran_order':False,'shape':()}",
            &[7, 0, 0, 0, 0, 0, 0, 0],
        );
        assert_eq!(read_npy(&scalar).tensors[0].shape, Vec::<u64>::new());
        let structured = npy(
            1,
            "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (2,), }",
            &[0; 16],
        );
        let a = read_npy(&structured);
        assert!(
            a.unsupported[0].1.contains("structured"),
            "{:?}",
            a.unsupported
        );
        let strings = npy(
            1,
            "{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }",
            &[0; 24],
        );
        assert!(read_npy(&strings).unsupported[0].1.contains("Unicode"));
        let huge = npy(
            1,
            "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
            &[],
        );
        assert!(read_npy(&huge).unsupported[0].1.contains("overflows"));
        let short = npy(
            1,
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1000,), }",
            &[0; 8],
        );
        assert!(read_npy(&short).unsupported[0].1.contains("only 8 follow"));
        let deep = format!(
            "{{'descr': {}'<f4'{}, 'fortran_order': False, 'shape': (1,)}}",
            "[".repeat(40),
            "]".repeat(40)
        );
        assert!(
            read_npy(&npy(1, &deep, &[0; 4])).unsupported[0]
                .1
                .contains("nested too deep")
        );
        let mut cut = npy(2, "{}", &[]);
        cut[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(header(&cut).unwrap_err().contains("more than"));
        assert!(
            header(b"\x93NUMPY\x07\x00")
                .unwrap_err()
                .contains("version 7")
        );
        assert!(header(b"\x93NUM").is_err());
        let bad = npy(
            1,
            "{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': (1,)}",
            &[0; 8],
        );
        assert!(header(&bad).unwrap_err().contains("repeated key"));
    }

    #[test]
    fn dtypes() {
        assert_eq!(dtype("<f2"), Ok((DType::F16, ByteOrder::Little)));
        assert_eq!(dtype(">i8"), Ok((DType::I64, ByteOrder::Big)));
        assert_eq!(dtype("|b1"), Ok((DType::BOOL, ByteOrder::Little)));
        assert_eq!(dtype(">u1"), Ok((DType::U8, ByteOrder::Little)));
        assert_eq!(dtype("<c8"), Ok((DType::C64, ByteOrder::Little)));
        assert!(dtype("<c16").unwrap_err().contains("complex128"));
        assert!(dtype("<M8[ns]").unwrap_err().contains("dates"));
        assert!(dtype("|V2").unwrap_err().contains("void"));
        assert!(dtype("|O").unwrap_err().contains("pickle"));
    }
}
