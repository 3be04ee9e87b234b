//! A bounded reader of the protobuf wire format, over a byte slice (a memory map).
//!
//! ONNX models are protobuf messages. A generated message type (prost) would copy every byte
//! field out of the file and forget where it was; a viewer needs the opposite: the *offset* of
//! each initializer's `raw_data`, so that its bytes stay in the map and are never copied. This
//! reader yields one field at a time with absolute offsets, never recurses on its own (the
//! caller decides which sub-messages to enter, so nesting is as deep as the caller's code), and
//! checks every varint and every length against the bytes it was given. Groups (wire types 3 and
//! 4, deprecated since proto2 and unused by ONNX) are refused rather than skipped.

use std::ops::Range;

/// Why bytes are not a well-formed protobuf message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A varint runs past the end of its message, or is longer than 10 bytes.
    #[error("protobuf: bad or truncated varint at offset {0}")]
    Varint(u64),
    /// A length-delimited field or a fixed-width value runs past the end of its message.
    #[error("protobuf: field {field} at offset {at} needs {need} bytes but only {have} remain")]
    PastEnd {
        /// Field number.
        field: u32,
        /// Offset of the field's key.
        at: u64,
        /// Bytes the field declares.
        need: u64,
        /// Bytes left in its message.
        have: u64,
    },
    /// A wire type that is not 0, 1, 2 or 5.
    #[error("protobuf: field {field} at offset {at} has wire type {wire}, which is unsupported")]
    WireType {
        /// Field number.
        field: u32,
        /// Offset of the field's key.
        at: u64,
        /// The wire type.
        wire: u8,
    },
    /// A key with field number 0 (never valid).
    #[error("protobuf: field number 0 at offset {0}")]
    FieldZero(u64),
}

/// The value of one field, as the wire encodes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1 (little-endian).
    Fixed64(u64),
    /// Wire type 5 (little-endian).
    Fixed32(u32),
    /// Wire type 2: a string, bytes, a sub-message or a packed repeated field.
    Bytes(&'a [u8], Range<u64>),
}

/// One field of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    /// Field number.
    pub number: u32,
    /// Absolute offset of its key.
    pub at: u64,
    /// Its value.
    pub value: Value<'a>,
}

impl Field<'_> {
    /// The wire type, as a number (0, 1, 2 or 5).
    pub fn wire(&self) -> u8 {
        match self.value {
            Value::Varint(_) => 0,
            Value::Fixed64(_) => 1,
            Value::Bytes(..) => 2,
            Value::Fixed32(_) => 5,
        }
    }
}

/// The fields of one message, in order. `base` is the absolute offset of `bytes[0]`, so that
/// every offset reported is an offset in the file.
#[derive(Clone, Debug)]
pub struct Fields<'a> {
    bytes: &'a [u8],
    pos: usize,
    base: u64,
    failed: bool,
}

impl<'a> Fields<'a> {
    /// The fields of the message held by `bytes`, which start at file offset `base`.
    pub fn new(bytes: &'a [u8], base: u64) -> Self {
        Fields {
            bytes,
            pos: 0,
            base,
            failed: false,
        }
    }

    fn offset(&self, pos: usize) -> u64 {
        self.base.saturating_add(pos as u64)
    }

    fn field(&mut self) -> Result<Field<'a>, WireError> {
        let at = self.offset(self.pos);
        let (key, used) =
            varint(self.bytes.get(self.pos..).unwrap_or(&[])).ok_or(WireError::Varint(at))?;
        self.pos += used;
        let number = u32::try_from(key >> 3).map_err(|_| WireError::Varint(at))?;
        if number == 0 {
            return Err(WireError::FieldZero(at));
        }
        let rest = self.bytes.get(self.pos..).unwrap_or(&[]);
        let past = |need: u64| WireError::PastEnd {
            field: number,
            at,
            need,
            have: rest.len() as u64,
        };
        let value = match key & 7 {
            0 => {
                let (v, used) = varint(rest).ok_or(WireError::Varint(self.offset(self.pos)))?;
                self.pos += used;
                Value::Varint(v)
            }
            1 => {
                let b: [u8; 8] = rest
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| past(8))?;
                self.pos += 8;
                Value::Fixed64(u64::from_le_bytes(b))
            }
            5 => {
                let b: [u8; 4] = rest
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| past(4))?;
                self.pos += 4;
                Value::Fixed32(u32::from_le_bytes(b))
            }
            2 => {
                let (len, used) = varint(rest).ok_or(WireError::Varint(self.offset(self.pos)))?;
                let body = rest.get(used..).unwrap_or(&[]);
                let data = usize::try_from(len)
                    .ok()
                    .and_then(|n| body.get(..n))
                    .ok_or(WireError::PastEnd {
                        field: number,
                        at,
                        need: len,
                        have: body.len() as u64,
                    })?;
                let start = self.offset(self.pos + used);
                self.pos += used + data.len();
                Value::Bytes(data, start..start.saturating_add(data.len() as u64))
            }
            wire => {
                return Err(WireError::WireType {
                    field: number,
                    at,
                    wire: wire as u8,
                });
            }
        };
        Ok(Field { number, at, value })
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.bytes.len() {
            return None;
        }
        let field = self.field();
        self.failed = field.is_err();
        Some(field)
    }
}

/// Decodes a varint at the start of `bytes`: its value and its length (at most 10 bytes).
pub fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().take(10).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            // The tenth byte may only carry the top bit of a 64-bit value.
            if i == 9 && b > 1 {
                return None;
            }
            return Some((value, i + 1));
        }
    }
    None
}

/// The values of a packed repeated varint field, one after another.
pub fn packed_varints(mut bytes: &[u8]) -> impl Iterator<Item = Option<u64>> + '_ {
    std::iter::from_fn(move || {
        if bytes.is_empty() {
            return None;
        }
        match varint(bytes) {
            Some((v, used)) => {
                bytes = bytes.get(used..).unwrap_or(&[]);
                Some(Some(v))
            }
            None => {
                bytes = &[];
                Some(None)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_offsets() {
        // 1: varint 300; 2: "hi"; 5: fixed32 1.0; 3: fixed64 7
        let mut m = vec![0x08, 0xac, 0x02, 0x12, 2, b'h', b'i', 0x2d];
        m.extend_from_slice(&1.0f32.to_le_bytes());
        m.push(0x19);
        m.extend_from_slice(&7u64.to_le_bytes());
        let fields: Vec<Field> = Fields::new(&m, 100).collect::<Result<_, _>>().unwrap();
        assert_eq!(fields[0].value, Value::Varint(300));
        assert_eq!(fields[1].value, Value::Bytes(b"hi", 105..107));
        assert_eq!(fields[1].at, 103);
        assert_eq!(fields[2].value, Value::Fixed32(1.0f32.to_bits()));
        assert_eq!(fields[3].value, Value::Fixed64(7));
    }

    #[test]
    fn malformed_messages_are_errors() {
        let first = |b: &[u8]| Fields::new(b, 0).find_map(Result::err);
        assert_eq!(first(&[0x08]), Some(WireError::Varint(1)));
        assert!(matches!(
            first(&[0x12, 0x05, 1]),
            Some(WireError::PastEnd { need: 5, .. })
        ));
        assert!(matches!(
            first(&[
                0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ]),
            Some(WireError::PastEnd { .. })
        ));
        assert!(matches!(
            first(&[0x0b]),
            Some(WireError::WireType { wire: 3, .. })
        ));
        assert_eq!(first(&[0x00]), Some(WireError::FieldZero(0)));
        assert_eq!(first(&[0x80; 12]), Some(WireError::Varint(0)));
        assert_eq!(
            varint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).map(|v| v.0),
            Some(u64::MAX)
        );
        assert_eq!(
            varint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            None
        );
        let v: Vec<_> = packed_varints(&[1, 0x96, 0x01, 0x80]).collect();
        assert_eq!(v, [Some(1), Some(150), None]);
    }
}
