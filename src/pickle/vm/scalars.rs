//! Scalars: None, booleans, integers of every width and spelling, floats, strings and bytes
//! of protocols 0 to 5, and out-of-band buffers.
//!
//! `clippy::indexing_slicing` is allowed here: operands are copied into fixed 8-byte buffers after
//! their length is checked.

#![allow(clippy::indexing_slicing)]

use super::*;
use crate::limits::MAX_DECIMAL_LONG_BYTES;

impl Machine<'_, '_> {
    pub(super) fn int_from_le(&mut self, bytes: &[u8]) -> Step<Val> {
        if bytes.is_empty() {
            return Ok(Val::Int(0));
        }
        if bytes.len() <= 8 {
            let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
            let mut buf = if negative { [0xffu8; 8] } else { [0u8; 8] };
            buf[..bytes.len()].copy_from_slice(bytes);
            return Ok(Val::Int(i64::from_le_bytes(buf)));
        }
        // Beyond 64 bits: kept as text, for display only; in decimal as Python prints it up
        // to a few hundred digits (the conversion is quadratic), as hex beyond.
        let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
        let text = if bytes.len() <= MAX_DECIMAL_LONG_BYTES {
            decimal_from_le(bytes)
        } else {
            let mut text = String::from("0x");
            for b in bytes.iter().rev() {
                text.push_str(&format!("{b:02x}"));
            }
            if negative {
                text.push_str(" (negative, two's complement)");
            }
            text
        };
        self.charge(text.len() as u64)?;
        self.node(Node::BigInt(text))
    }

    pub(super) fn int_from_text(&mut self, op: Op, text: &str) -> Step<Val> {
        let t = text.trim();
        let t = t.strip_suffix('L').unwrap_or(t);
        if let Ok(i) = t.parse::<i64>() {
            return Ok(Val::Int(i));
        }
        let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.bad_operand(op, format!("`{t}` is not an integer")));
        }
        self.charge(t.len() as u64)?;
        self.node(Node::BigInt(t.to_string()))
    }

    /// Runs an opcode that pushes a scalar.
    pub(super) fn scalar_op(&mut self, op: Op) -> Step<Option<Val>> {
        match op {
            Op::None => self.push(Val::None)?,
            Op::NewTrue => self.push(Val::Bool(true))?,
            Op::NewFalse => self.push(Val::Bool(false))?,
            Op::BinInt => {
                let v = i32::from_le_bytes(self.take_array(op)?);
                self.push(Val::Int(i64::from(v)))?;
            }
            Op::BinInt1 => {
                let v = self.u8(op)?;
                self.push(Val::Int(i64::from(v)))?;
            }
            Op::BinInt2 => {
                let v = self.u16(op)?;
                self.push(Val::Int(i64::from(v)))?;
            }
            Op::Int => {
                let text = self.line_text(op)?;
                let v = match text.trim() {
                    "00" => Val::Bool(false),
                    "01" => Val::Bool(true),
                    t => self.int_from_text(op, t)?,
                };
                self.push(v)?;
            }
            Op::Long => {
                let text = self.line_text(op)?;
                let v = self.int_from_text(op, &text)?;
                self.push(v)?;
            }
            Op::Long1 => {
                let n = self.u8(op)?;
                let bytes = self.take(op, u64::from(n))?.to_vec();
                let v = self.int_from_le(&bytes)?;
                self.push(v)?;
            }
            Op::Long4 => {
                let n = i32::from_le_bytes(self.take_array(op)?);
                let n =
                    u64::try_from(n).map_err(|_| self.bad_operand(op, "negative byte count"))?;
                let bytes = self.payload(op, n, false)?;
                let v = self.int_from_le(&bytes)?;
                self.push(v)?;
            }
            Op::Float => {
                let text = self.line_text(op)?;
                let v = parse_python_float(&text)
                    .ok_or_else(|| self.bad_operand(op, format!("`{text}` is not a float")))?;
                self.push(Val::Float(v))?;
            }
            Op::BinFloat => {
                let v = f64::from_be_bytes(self.take_array(op)?);
                self.push(Val::Float(v))?;
            }

            // Strings and bytes.
            Op::String => {
                let line = self.line(op)?.to_vec();
                let bytes = unquote_python2_string(&line).ok_or_else(|| {
                    self.bad_operand(op, "the STRING opcode argument must be quoted")
                })?;
                self.charge(bytes.len() as u64)?;
                self.push_node(Node::Str(String::from_utf8_lossy(&bytes).into_owned()))?;
            }
            Op::BinString => {
                let n = i32::from_le_bytes(self.take_array(op)?);
                let n =
                    u64::try_from(n).map_err(|_| self.bad_operand(op, "negative byte count"))?;
                let bytes = self.payload(op, n, false)?;
                self.push_node(Node::Str(String::from_utf8_lossy(&bytes).into_owned()))?;
            }
            Op::ShortBinString => {
                let n = self.u8(op)?;
                let bytes = self.payload(op, u64::from(n), false)?;
                self.push_node(Node::Str(String::from_utf8_lossy(&bytes).into_owned()))?;
            }
            Op::Unicode => {
                let line = self.line(op)?.to_vec();
                let text = decode_raw_unicode_escape(&line)
                    .ok_or_else(|| self.bad_operand(op, "bad \\u escape"))?;
                self.charge(text.len() as u64)?;
                self.push_node(Node::Str(text))?;
            }
            Op::ShortBinUnicode | Op::BinUnicode | Op::BinUnicode8 => {
                let n = match op {
                    Op::ShortBinUnicode => u64::from(self.u8(op)?),
                    Op::BinUnicode => u64::from(self.u32(op)?),
                    _ => self.u64(op)?,
                };
                let bytes = self.payload(op, n, false)?;
                // CPython decodes with "surrogatepass"; lone surrogates only matter for display.
                let text = String::from_utf8(bytes)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                self.push_node(Node::Str(text))?;
            }
            Op::ShortBinBytes | Op::BinBytes | Op::BinBytes8 | Op::ByteArray8 => {
                let n = match op {
                    Op::ShortBinBytes => u64::from(self.u8(op)?),
                    Op::BinBytes => u64::from(self.u32(op)?),
                    _ => self.u64(op)?,
                };
                let bytes = self.payload(op, n, true)?;
                let node = if op == Op::ByteArray8 {
                    Node::ByteArray(bytes)
                } else {
                    Node::Bytes(bytes)
                };
                self.push_node(node)?;
            }

            // Containers.
            Op::NextBuffer => {
                self.push_node(Node::Buffer)?;
                let offset = self.offset();
                self.emit(Event::Buffer { offset });
            }
            Op::ReadonlyBuffer => {
                self.top(op)?;
            }
            _ => return Err(self.misrouted(op)),
        }
        Ok(None)
    }
}

/// Decimal text of a little-endian two's-complement integer.
pub(super) fn decimal_from_le(bytes: &[u8]) -> String {
    let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
    // Magnitude, little-endian: negate a negative number (invert, add one).
    let mut magnitude: Vec<u8> = bytes.to_vec();
    if negative {
        let mut carry = true;
        for b in &mut magnitude {
            *b = !*b;
            if carry {
                let (v, overflow) = b.overflowing_add(1);
                *b = v;
                carry = overflow;
            }
        }
    }
    // Big-endian base-2^32 limbs, divided by 10^9 until zero.
    let mut limbs: Vec<u32> = magnitude
        .chunks(4)
        .rev()
        .map(|c| {
            let mut buf = [0u8; 4];
            buf[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(buf)
        })
        .collect();
    let mut groups = Vec::new();
    while limbs.iter().any(|&l| l != 0) {
        let mut rem = 0u64;
        for limb in &mut limbs {
            let cur = (rem << 32) | u64::from(*limb);
            *limb = (cur / 1_000_000_000) as u32;
            rem = cur % 1_000_000_000;
        }
        groups.push(rem as u32);
    }
    let mut text = String::from(if negative { "-" } else { "" });
    match groups.split_last() {
        None => text.push('0'),
        Some((most, rest)) => {
            text.push_str(&most.to_string());
            for g in rest.iter().rev() {
                text.push_str(&format!("{g:09}"));
            }
        }
    }
    text
}

/// Parses Python's `repr(float)` forms: `1.5`, `1e-05`, `inf`, `-inf`, `nan`.
pub(super) fn parse_python_float(text: &str) -> Option<f64> {
    let t = text.trim();
    match t {
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        "nan" | "-nan" | "+nan" => Some(f64::NAN),
        _ if t.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) => t.parse().ok(),
        _ => None,
    }
}

/// The bytes of a protocol-0 STRING argument: a Python 2 `repr` in single or double quotes,
/// with backslash escapes.
pub(super) fn unquote_python2_string(line: &[u8]) -> Option<Vec<u8>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let (&first, rest) = line.split_first()?;
    if !(first == b'\'' || first == b'"') || rest.last() != Some(&first) || line.len() < 2 {
        return None;
    }
    let body = rest.get(..rest.len() - 1)?;
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(&e) = body.get(i) else {
            out.push(b'\\');
            break;
        };
        i += 1;
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match body.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'x' => {
                let hex = body.get(i..i + 2)?;
                let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                out.push(v);
                i += 2;
            }
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'\\' | b'\'' | b'"' => out.push(e),
            b'\n' => {}
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// Python's `raw-unicode-escape` decoding: `\uXXXX` and `\UXXXXXXXX` escapes, every other byte
/// is a Latin-1 character.
pub(super) fn decode_raw_unicode_escape(line: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while let Some(&b) = line.get(i) {
        if b == b'\\' && matches!(line.get(i + 1), Some(b'u' | b'U')) {
            let digits = if line.get(i + 1) == Some(&b'u') { 4 } else { 8 };
            let hex = line.get(i + 2..i + 2 + digits)?;
            let code = u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
            i += 2 + digits;
        } else {
            out.push(char::from(b));
            i += 1;
        }
    }
    Some(out)
}
