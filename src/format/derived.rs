//! Tensor bytes that are not a plain range of a file, produced from one on first use.
//!
//! Two formats store some tensors in a form that cannot be viewed in place: a `.npz` member
//! written with `np.savez_compressed` is deflated, and an ONNX initializer held in a typed field
//! (`int64_data`, `int32_data`, unpacked `float_data`) is a list of protobuf varints or tagged
//! values. Such a tensor gets a [`crate::format::Source`] of its own whose bytes are *derived*:
//! nothing is done at open (listing stays as cheap as for any other file); the first time its
//! bytes are asked for (statistics, compare, convert), they are produced once and kept.
//!
//! Bounded twice: each producer stops at the exact size the tensor needs (a deflate bomb costs
//! at most that size plus one byte), and all derived sources of one checkpoint draw from one
//! budget, `--limit inflated` (1 GiB by default), so a file of many small bombs or many large
//! compressed arrays cannot make a session hold more than that.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::archive::protobuf::{Fields, Value, packed_varints};
use crate::archive::zip;

/// How the bytes are made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipe {
    /// The deflated data of a zip member, at `range` of the file, inflating to exactly `size`
    /// bytes whose CRC-32 is `crc32`.
    Inflate {
        /// Member name, for messages.
        member: String,
        /// The compressed bytes.
        range: Range<u64>,
        /// Size once inflated.
        size: u64,
        /// CRC-32 of the inflated bytes.
        crc32: u32,
    },
    /// The values of repeated field `field` of the protobuf message at `range`, each written as
    /// `width` little-endian bytes (the low bytes of the value); exactly `count` values.
    Protobuf {
        /// The message (an ONNX `TensorProto`).
        range: Range<u64>,
        /// The repeated field holding the values.
        field: u32,
        /// Bytes written per value (1, 2, 4 or 8).
        width: usize,
        /// Values expected.
        count: u64,
        /// Values are 4-bit pairs (two elements per value, one byte each) or single 6-bit
        /// values packed four to three bytes: see [`Packing`].
        packing: Packing,
    },
}

/// How the values of a typed ONNX field become bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packing {
    /// One value per element, `width` bytes each.
    Whole,
    /// FLOAT6: one 6-bit value per element, packed LSB-first four to three bytes.
    Six,
}

/// The budget all derived sources of one checkpoint share.
#[derive(Debug)]
pub struct Budget {
    left: AtomicU64,
    limit: u64,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Arc<Budget> {
        Arc::new(Budget {
            left: AtomicU64::new(limit),
            limit,
        })
    }

    fn take(&self, n: u64) -> Result<(), String> {
        self.left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(n))
            .map(|_| ())
            .map_err(|left| {
                format!(
                    "producing its {n} bytes would pass the {}-byte limit on bytes inflated or decoded for one file ({left} left; raise it with --limit inflated=N)",
                    self.limit
                )
            })
    }

    fn give_back(&self, n: u64) {
        self.left.fetch_add(n, Ordering::SeqCst);
    }
}

/// Bytes made from a range of the file on first use.
#[derive(Debug)]
pub struct Derived {
    /// How.
    pub recipe: Recipe,
    budget: Arc<Budget>,
    bytes: OnceLock<Result<Vec<u8>, String>>,
}

impl Derived {
    /// Bytes to be made by `recipe`, drawing on `budget`.
    pub fn new(recipe: Recipe, budget: Arc<Budget>) -> Self {
        Derived {
            recipe,
            budget,
            bytes: OnceLock::new(),
        }
    }

    /// Size of the bytes once made.
    pub fn size(&self) -> u64 {
        match &self.recipe {
            Recipe::Inflate { size, .. } => *size,
            Recipe::Protobuf {
                width,
                count,
                packing,
                ..
            } => match packing {
                Packing::Whole => count.saturating_mul(*width as u64),
                Packing::Six => count.saturating_mul(6).div_ceil(8),
            },
        }
    }

    /// What the bytes are, for labels: `deflated member w.npy`, `varints of field 7`.
    pub fn describe(&self) -> String {
        match &self.recipe {
            Recipe::Inflate { member, .. } => format!("deflated member {member}"),
            Recipe::Protobuf { field, .. } => format!("typed field {field}, decoded"),
        }
    }

    /// True once the bytes have been made (or have failed to be).
    pub fn is_made(&self) -> bool {
        self.bytes.get().is_some()
    }

    /// The bytes, made from `file` (the whole mapped file) the first time.
    pub fn bytes(&self, file: &[u8]) -> Result<&[u8], String> {
        self.bytes
            .get_or_init(|| self.make(file))
            .as_deref()
            .map_err(Clone::clone)
    }

    fn make(&self, file: &[u8]) -> Result<Vec<u8>, String> {
        let size = self.size();
        self.budget.take(size)?;
        let made = self.produce(file, size);
        if made.is_err() {
            self.budget.give_back(size);
        }
        made
    }

    fn produce(&self, file: &[u8], size: u64) -> Result<Vec<u8>, String> {
        let slice = |r: &Range<u64>| {
            usize::try_from(r.start)
                .ok()
                .zip(usize::try_from(r.end).ok())
                .and_then(|(s, e)| file.get(s..e))
                .ok_or_else(|| format!("bytes {}..{} lie outside the file", r.start, r.end))
        };
        let size = usize::try_from(size).map_err(|_| "too large for this machine".to_string())?;
        match &self.recipe {
            Recipe::Inflate {
                member,
                range,
                crc32,
                ..
            } => {
                let out = zip::inflate_exact(slice(range)?, size)
                    .map_err(|e| format!("member `{member}`: {e}"))?;
                let actual = zip::crc32(&out);
                if actual != *crc32 {
                    return Err(format!(
                        "member `{member}` is damaged: its inflated bytes have CRC-32 {actual:08x}, the archive records {crc32:08x}"
                    ));
                }
                Ok(out)
            }
            Recipe::Protobuf {
                range,
                field,
                width,
                count,
                packing,
            } => decode_field(
                slice(range)?,
                range.start,
                *field,
                *width,
                *count,
                *packing,
                size,
            ),
        }
    }
}

/// Collects the values of repeated scalar field `field` (packed or not, in any number of
/// pieces) of the message `message`.
fn decode_field(
    message: &[u8],
    base: u64,
    field: u32,
    width: usize,
    count: u64,
    packing: Packing,
    size: usize,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(size);
    let mut values = 0u64;
    let mut six = SixPacker::default();
    let mut push = |v: u64, out: &mut Vec<u8>| -> Result<(), String> {
        values += 1;
        if values > count {
            return Err(format!(
                "field {field} holds more than the {count} values its dims need"
            ));
        }
        match packing {
            Packing::Whole => out.extend_from_slice(&v.to_le_bytes()[..width]),
            Packing::Six => six.push(v as u8 & 0x3f, out),
        }
        Ok(())
    };
    for f in Fields::new(message, base) {
        let f = f.map_err(|e| e.to_string())?;
        if f.number != field {
            continue;
        }
        match f.value {
            Value::Varint(v) => push(v, &mut out)?,
            Value::Fixed32(v) if width == 4 => push(u64::from(v), &mut out)?,
            Value::Fixed64(v) if width == 8 => push(v, &mut out)?,
            Value::Bytes(data, _) => match (field, width) {
                // Packed fixed-width fields: float_data (fixed32), double_data (fixed64).
                (4, 4) => {
                    for c in data.chunks(4) {
                        let b: [u8; 4] = c.try_into().map_err(|_| "a packed float is cut short")?;
                        push(u64::from(u32::from_le_bytes(b)), &mut out)?;
                    }
                }
                (10, 8) => {
                    for c in data.chunks(8) {
                        let b: [u8; 8] =
                            c.try_into().map_err(|_| "a packed double is cut short")?;
                        push(u64::from_le_bytes(b), &mut out)?;
                    }
                }
                _ => {
                    for v in packed_varints(data) {
                        push(v.ok_or("a packed varint is cut short")?, &mut out)?;
                    }
                }
            },
            _ => return Err(format!("field {field} has an unexpected wire type")),
        }
    }
    if values != count {
        return Err(format!(
            "field {field} holds {values} values but the dims need {count}"
        ));
    }
    six.finish(&mut out);
    Ok(out)
}

/// Packs 6-bit values four to three bytes, LSB first (as ONNX `raw_data` and ml_dtypes do).
#[derive(Default)]
struct SixPacker {
    acc: u32,
    n: u32,
}

impl SixPacker {
    fn push(&mut self, v: u8, out: &mut Vec<u8>) {
        self.acc |= u32::from(v) << (6 * self.n);
        self.n += 1;
        if self.n == 4 {
            out.extend_from_slice(&self.acc.to_le_bytes()[..3]);
            self.acc = 0;
            self.n = 0;
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.n > 0 {
            let bytes = (6 * self.n).div_ceil(8) as usize;
            out.extend_from_slice(&self.acc.to_le_bytes()[..bytes]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_packed_and_unpacked_become_little_endian_values() {
        // field 7 packed [1, 300], then unpacked -1 (ten-byte varint).
        let mut m = vec![0x3a, 3, 1, 0xac, 0x02, 0x38];
        m.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        let budget = Budget::new(1 << 20);
        let recipe = |count| Recipe::Protobuf {
            range: 0..m.len() as u64,
            field: 7,
            width: 8,
            count,
            packing: Packing::Whole,
        };
        let d = Derived::new(recipe(3), budget.clone());
        let b = d.bytes(&m).unwrap();
        let v: Vec<i64> = b
            .chunks(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(v, [1, 300, -1]);
        let wrong = Derived::new(recipe(2), budget.clone());
        assert!(wrong.bytes(&m).unwrap_err().contains("more than the 2"));
        let short = Derived::new(recipe(4), budget);
        assert!(short.bytes(&m).unwrap_err().contains("holds 3 values"));
    }

    #[test]
    fn the_budget_is_shared_and_refunded_on_failure() {
        let budget = Budget::new(16);
        let m = [0x3a, 2, 1, 2];
        let recipe = Recipe::Protobuf {
            range: 0..4,
            field: 7,
            width: 8,
            count: 2,
            packing: Packing::Whole,
        };
        let a = Derived::new(recipe.clone(), budget.clone());
        a.bytes(&m).unwrap();
        let b = Derived::new(recipe, budget);
        assert!(b.bytes(&m).unwrap_err().contains("--limit inflated"));
    }

    #[test]
    fn six_bit_values_pack_lsb_first() {
        let mut out = Vec::new();
        let mut p = SixPacker::default();
        for v in [1u8, 2, 3, 4, 5] {
            p.push(v, &mut out);
        }
        p.finish(&mut out);
        let group = 1u32 | 2 << 6 | 3 << 12 | 4 << 18;
        assert_eq!(&out[..3], &group.to_le_bytes()[..3]);
        assert_eq!(out[3..], [5]);
    }
}
