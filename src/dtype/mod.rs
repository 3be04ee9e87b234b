//! Element types of tensors, spelled the way safetensors spells them.
//!
//! ckptscope keeps its own enum rather than using `safetensors::Dtype` directly: that one is
//! `#[non_exhaustive]`, so every `match` on it would need a wildcard arm, and a new dtype in a
//! future safetensors release would silently fall into it. Here a new variant is a compile error
//! everywhere it matters (decoders, converter, diff).

use std::fmt;

pub mod ggml;

pub use ggml::GgmlType;

/// The element type of a tensor. Variant names and [`DType::name`] match safetensors 0.8.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[allow(non_camel_case_types)]
pub enum DType {
    /// Boolean, one byte, 0 or 1.
    BOOL,
    /// MX FP4 (E2M1), two values per byte.
    F4,
    /// MX FP6 with 2 exponent and 3 mantissa bits, four values per three bytes.
    F6_E2M3,
    /// MX FP6 with 3 exponent and 2 mantissa bits, four values per three bytes.
    F6_E3M2,
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 8-bit integer.
    I8,
    /// FP8 E5M2 (IEEE-like: infinities and NaNs).
    F8_E5M2,
    /// FP8 E4M3 "FN" (no infinities, NaN = S.1111.111), the OCP/NVIDIA variant.
    F8_E4M3,
    /// MX E8M0 scale: a power of two, 0xFF is NaN.
    F8_E8M0,
    /// FP8 E4M3 FNUZ (bias 8, single NaN at 0x80, no negative zero), the AMD/Graphcore variant.
    F8_E4M3FNUZ,
    /// FP8 E5M2 FNUZ (bias 16, single NaN at 0x80, no negative zero).
    F8_E5M2FNUZ,
    /// Signed 16-bit integer.
    I16,
    /// Unsigned 16-bit integer.
    U16,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
    /// Signed 32-bit integer.
    I32,
    /// Unsigned 32-bit integer.
    U32,
    /// IEEE single precision.
    F32,
    /// Complex number made of two F32 (real, imaginary).
    C64,
    /// IEEE double precision.
    F64,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 64-bit integer.
    U64,
}

impl DType {
    /// Every dtype, in safetensors' order (increasing alignment).
    pub const ALL: [DType; 22] = [
        DType::BOOL,
        DType::F4,
        DType::F6_E2M3,
        DType::F6_E3M2,
        DType::U8,
        DType::I8,
        DType::F8_E5M2,
        DType::F8_E4M3,
        DType::F8_E8M0,
        DType::F8_E4M3FNUZ,
        DType::F8_E5M2FNUZ,
        DType::I16,
        DType::U16,
        DType::F16,
        DType::BF16,
        DType::I32,
        DType::U32,
        DType::F32,
        DType::C64,
        DType::F64,
        DType::I64,
        DType::U64,
    ];

    /// The safetensors spelling (`"F32"`, `"F8_E4M3"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            DType::BOOL => "BOOL",
            DType::F4 => "F4",
            DType::F6_E2M3 => "F6_E2M3",
            DType::F6_E3M2 => "F6_E3M2",
            DType::U8 => "U8",
            DType::I8 => "I8",
            DType::F8_E5M2 => "F8_E5M2",
            DType::F8_E4M3 => "F8_E4M3",
            DType::F8_E8M0 => "F8_E8M0",
            DType::F8_E4M3FNUZ => "F8_E4M3FNUZ",
            DType::F8_E5M2FNUZ => "F8_E5M2FNUZ",
            DType::I16 => "I16",
            DType::U16 => "U16",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::I32 => "I32",
            DType::U32 => "U32",
            DType::F32 => "F32",
            DType::C64 => "C64",
            DType::F64 => "F64",
            DType::I64 => "I64",
            DType::U64 => "U64",
        }
    }

    /// Parses the safetensors spelling, case-insensitively.
    pub fn parse(s: &str) -> Option<DType> {
        DType::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(s))
    }

    /// Parses the exact safetensors spelling (case-sensitive, as the crate reads headers).
    /// A `match` on the text (compiled to length and byte tests), not a search of
    /// [`DType::ALL`]: it runs once per tensor of every header read.
    pub fn from_safetensors_name(s: &str) -> Option<DType> {
        Some(match s {
            "BOOL" => DType::BOOL,
            "F4" => DType::F4,
            "F6_E2M3" => DType::F6_E2M3,
            "F6_E3M2" => DType::F6_E3M2,
            "U8" => DType::U8,
            "I8" => DType::I8,
            "F8_E5M2" => DType::F8_E5M2,
            "F8_E4M3" => DType::F8_E4M3,
            "F8_E8M0" => DType::F8_E8M0,
            "F8_E4M3FNUZ" => DType::F8_E4M3FNUZ,
            "F8_E5M2FNUZ" => DType::F8_E5M2FNUZ,
            "I16" => DType::I16,
            "U16" => DType::U16,
            "F16" => DType::F16,
            "BF16" => DType::BF16,
            "I32" => DType::I32,
            "U32" => DType::U32,
            "F32" => DType::F32,
            "C64" => DType::C64,
            "F64" => DType::F64,
            "I64" => DType::I64,
            "U64" => DType::U64,
            _ => return None,
        })
    }

    /// Bits per element (4 for F4, 6 for the F6 types).
    pub const fn bits(self) -> u64 {
        match self {
            DType::F4 => 4,
            DType::F6_E2M3 | DType::F6_E3M2 => 6,
            DType::BOOL
            | DType::U8
            | DType::I8
            | DType::F8_E5M2
            | DType::F8_E4M3
            | DType::F8_E8M0
            | DType::F8_E4M3FNUZ
            | DType::F8_E5M2FNUZ => 8,
            DType::I16 | DType::U16 | DType::F16 | DType::BF16 => 16,
            DType::I32 | DType::U32 | DType::F32 => 32,
            DType::C64 | DType::F64 | DType::I64 | DType::U64 => 64,
        }
    }

    /// Whole bytes per element, or `None` for the sub-byte types (F4, F6).
    pub const fn byte_size(self) -> Option<u64> {
        let bits = self.bits();
        if bits.is_multiple_of(8) {
            Some(bits / 8)
        } else {
            None
        }
    }

    /// Bytes taken by `elements` values, or `None` on overflow or when sub-byte values would not
    /// end on a byte boundary.
    pub fn bytes_for(self, elements: u64) -> Option<u64> {
        let bits = elements.checked_mul(self.bits())?;
        bits.is_multiple_of(8).then_some(bits / 8)
    }

    /// Floating-point types (including the 4-, 6- and 8-bit ones and complex).
    pub const fn is_float(self) -> bool {
        !matches!(
            self,
            DType::BOOL
                | DType::U8
                | DType::I8
                | DType::I16
                | DType::U16
                | DType::I32
                | DType::U32
                | DType::I64
                | DType::U64
        )
    }

    /// The crate's dtype, for writing headers through the safetensors crate.
    pub const fn to_safetensors(self) -> safetensors::Dtype {
        use safetensors::Dtype as S;
        match self {
            DType::BOOL => S::BOOL,
            DType::F4 => S::F4,
            DType::F6_E2M3 => S::F6_E2M3,
            DType::F6_E3M2 => S::F6_E3M2,
            DType::U8 => S::U8,
            DType::I8 => S::I8,
            DType::F8_E5M2 => S::F8_E5M2,
            DType::F8_E4M3 => S::F8_E4M3,
            DType::F8_E8M0 => S::F8_E8M0,
            DType::F8_E4M3FNUZ => S::F8_E4M3FNUZ,
            DType::F8_E5M2FNUZ => S::F8_E5M2FNUZ,
            DType::I16 => S::I16,
            DType::U16 => S::U16,
            DType::F16 => S::F16,
            DType::BF16 => S::BF16,
            DType::I32 => S::I32,
            DType::U32 => S::U32,
            DType::F32 => S::F32,
            DType::C64 => S::C64,
            DType::F64 => S::F64,
            DType::I64 => S::I64,
            DType::U64 => S::U64,
        }
    }

    /// Converts the crate's dtype; `None` for a dtype added to safetensors after 0.8.
    pub fn from_safetensors(dtype: safetensors::Dtype) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.to_safetensors() == dtype)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_the_safetensors_crate() {
        for d in DType::ALL {
            assert_eq!(DType::parse(d.name()), Some(d));
            assert_eq!(d.to_safetensors().to_string(), d.name());
            assert_eq!(DType::from_safetensors(d.to_safetensors()), Some(d));
            assert_eq!(d.bits(), d.to_safetensors().bitsize() as u64);
        }
        assert_eq!(DType::parse("f8_e4m3fnuz"), Some(DType::F8_E4M3FNUZ));
        assert_eq!(DType::parse("F128"), None);
    }

    #[test]
    fn order_matches_safetensors_alignment_order() {
        let mut sorted = DType::ALL;
        sorted.sort_by_key(|d| d.to_safetensors());
        assert_eq!(sorted, DType::ALL);
    }

    #[test]
    fn sub_byte_sizes() {
        assert_eq!(DType::F4.bytes_for(4), Some(2));
        assert_eq!(DType::F4.bytes_for(3), None);
        assert_eq!(DType::F6_E2M3.bytes_for(4), Some(3));
        assert_eq!(DType::F6_E3M2.bytes_for(2), None);
        assert_eq!(DType::F32.bytes_for(u64::MAX), None);
        assert_eq!(DType::F4.byte_size(), None);
        assert_eq!(DType::BF16.byte_size(), Some(2));
    }
}
