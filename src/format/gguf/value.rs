//! GGUF metadata values: the value types, reading one with bounded, checked reads, skipping
//! arrays in O(1) where their items have a fixed width, and previews for display.
//!
//! Owns: [`Value`], [`ValueType`]. Must not import: `labels`.

use super::*;

/// A metadata value type, as GGUF numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    /// 0
    U8,
    /// 1
    I8,
    /// 2
    U16,
    /// 3
    I16,
    /// 4
    U32,
    /// 5
    I32,
    /// 6
    F32,
    /// 7
    Bool,
    /// 8
    String,
    /// 9
    Array,
    /// 10
    U64,
    /// 11
    I64,
    /// 12
    F64,
}

impl ValueType {
    fn from_id(id: u32) -> Option<ValueType> {
        use ValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// Bytes of one value, for the fixed-width types.
    fn width(self) -> Option<u64> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }

    /// Smallest encoding of one value.
    fn min_bytes(self) -> u64 {
        match self {
            ValueType::String => 8,
            ValueType::Array => 12,
            t => t.width().unwrap_or(1),
        }
    }

    /// GGUF's name (`UINT32`), for messages and array summaries.
    pub fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "UINT8",
            I8 => "INT8",
            U16 => "UINT16",
            I16 => "INT16",
            U32 => "UINT32",
            I32 => "INT32",
            F32 => "FLOAT32",
            Bool => "BOOL",
            String => "STRING",
            Array => "ARRAY",
            U64 => "UINT64",
            I64 => "INT64",
            F64 => "FLOAT64",
        }
    }
}

/// A metadata value; arrays keep their length and first [`ARRAY_PREVIEW`] items.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Any unsigned integer type.
    Uint(ValueType, u64),
    /// Any signed integer type.
    Int(ValueType, i64),
    /// FLOAT32 or FLOAT64 (FLOAT32 widened exactly).
    Float(ValueType, f64),
    /// BOOL.
    Bool(bool),
    /// STRING (invalid UTF-8 replaced).
    Str(String),
    /// ARRAY.
    Array {
        /// Type of the items.
        item: ValueType,
        /// How many items it holds.
        len: u64,
        /// The first items (strings cut to a preview length).
        first: Vec<Value>,
    },
}

impl Value {
    /// The value as an unsigned integer, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Uint(_, v) => Some(v),
            Value::Int(_, v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The text shown for it: scalars as written, strings as they are, arrays as JSON when
    /// whole and small, else `array of N TYPE: [first, ...]`.
    pub fn render(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Array { item, len, first } => {
                let items: Vec<String> = first.iter().map(Value::render_item).collect();
                let whole = *len as usize == first.len();
                if whole {
                    format!("[{}]", items.join(", "))
                } else {
                    format!(
                        "array of {len} {}: [{}, ...]",
                        item_plural(*item),
                        items.join(", ")
                    )
                }
            }
            other => other.render_item(),
        }
    }

    fn render_item(&self) -> String {
        match self {
            Value::Uint(_, v) => v.to_string(),
            Value::Int(_, v) => v.to_string(),
            Value::Float(ValueType::F32, v) => format!("{}", *v as f32),
            Value::Float(_, v) => format!("{v}"),
            Value::Bool(b) => b.to_string(),
            Value::Str(s) => serde_json::to_string(s).unwrap_or_default(),
            Value::Array { .. } => {
                let text = self.render();
                if text.starts_with('[') {
                    text
                } else {
                    serde_json::to_string(&text).unwrap_or_default()
                }
            }
        }
    }
}

pub(super) fn item_plural(t: ValueType) -> String {
    match t {
        ValueType::String => "strings".into(),
        ValueType::Array => "arrays".into(),
        ValueType::Bool => "booleans".into(),
        t => format!("{} values", t.name()),
    }
}

/// Reads one value of type `id`; arrays are walked (bounded by the file) and summarised.
pub(super) fn read_value(
    r: &mut Reader<'_>,
    id: u32,
    key: &str,
    depth: usize,
    limits: &Limits,
) -> Result<Value, GgufProblem> {
    let Some(t) = ValueType::from_id(id) else {
        return Err(GgufProblem::UnknownValueType {
            what: value_name(key, depth),
            id,
        });
    };
    let short = |s: Short| s.inside(value_name(key, depth));
    Ok(match t {
        ValueType::U8 => Value::Uint(t, u64::from(r.array::<1>().map_err(short)?[0])),
        ValueType::I8 => Value::Int(t, i64::from(r.array::<1>().map_err(short)?[0] as i8)),
        ValueType::Bool => Value::Bool(r.array::<1>().map_err(short)?[0] != 0),
        ValueType::U16 => Value::Uint(t, u64::from(u16::from_le_bytes(r.array().map_err(short)?))),
        ValueType::I16 => Value::Int(t, i64::from(i16::from_le_bytes(r.array().map_err(short)?))),
        ValueType::U32 => Value::Uint(t, u64::from(r.u32().map_err(short)?)),
        ValueType::I32 => Value::Int(t, i64::from(i32::from_le_bytes(r.array().map_err(short)?))),
        ValueType::F32 => Value::Float(t, f64::from(f32::from_le_bytes(r.array().map_err(short)?))),
        ValueType::U64 => Value::Uint(t, r.u64().map_err(short)?),
        ValueType::I64 => Value::Int(t, i64::from_le_bytes(r.array().map_err(short)?)),
        ValueType::F64 => Value::Float(t, f64::from_le_bytes(r.array().map_err(short)?)),
        ValueType::String => {
            let raw = r.string(&|| value_name(key, depth), limits.max_gguf_string)?;
            Value::Str(String::from_utf8_lossy(raw).into_owned())
        }
        ValueType::Array => {
            if depth >= MAX_GGUF_DEPTH {
                return Err(GgufProblem::TooDeep { key: key.into() });
            }
            let item_id = r.u32().map_err(short)?;
            let len = r.u64().map_err(short)?;
            let Some(item) = ValueType::from_id(item_id) else {
                return Err(GgufProblem::UnknownValueType {
                    what: value_name(key, depth + 1),
                    id: item_id,
                });
            };
            if len > limits.max_gguf_array {
                return Err(GgufProblem::OverLimit {
                    what: format!("the length of the array {}", value_name(key, depth)),
                    count: len,
                    limit: limits.max_gguf_array,
                    name: "gguf-array",
                });
            }
            check_count(
                &format!("items in the array {}", value_name(key, depth)),
                "",
                len,
                item.min_bytes(),
                r.remaining(),
                u64::MAX,
                "gguf-array",
            )?;
            let mut first = Vec::with_capacity((len as usize).min(ARRAY_PREVIEW));
            for _ in 0..(len as usize).min(ARRAY_PREVIEW) {
                first.push(preview(read_value(r, item_id, key, depth + 1, limits)?));
            }
            let rest = len - first.len() as u64;
            match item.width() {
                // Checked above: `rest` items of this width fit in what remains.
                Some(w) => {
                    r.take(rest * w).map_err(short)?;
                }
                None => {
                    for _ in 0..rest {
                        skip_value(r, item, key, depth + 1, limits)?;
                    }
                }
            }
            Value::Array { item, len, first }
        }
    })
}

/// Walks past a value without keeping it (strings are bounds-checked, not copied).
pub(super) fn skip_value(
    r: &mut Reader<'_>,
    t: ValueType,
    key: &str,
    depth: usize,
    limits: &Limits,
) -> Result<(), GgufProblem> {
    match t {
        ValueType::String => {
            r.string(&|| value_name(key, depth), limits.max_gguf_string)?;
            Ok(())
        }
        ValueType::Array => read_value(r, 9, key, depth, limits).map(|_| ()),
        t => {
            r.take(t.width().unwrap_or(1))
                .map_err(|s| s.inside(value_name(key, depth)))?;
            Ok(())
        }
    }
}

/// Array items keep a preview only: strings cut, nested arrays already summarised.
pub(super) fn preview(v: Value) -> Value {
    match v {
        Value::Str(s) if s.chars().count() > PREVIEW_CHARS => {
            let cut: String = s.chars().take(PREVIEW_CHARS).collect();
            Value::Str(format!("{cut}…"))
        }
        v => v,
    }
}

pub(super) fn value_name(key: &str, depth: usize) -> String {
    if depth == 0 {
        format!("the value of `{key}`")
    } else {
        format!("an item of `{key}` (array depth {depth})")
    }
}
