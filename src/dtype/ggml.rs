//! The tensor types of ggml (llama.cpp), as GGUF files number them.
//!
//! Why a type of its own, and not more [`DType`] variants: `DType` is the element type model of
//! safetensors (22 types, each a fixed number of bits per value) and is matched exhaustively by
//! the decoders, the converter and the diff, which is exactly what should keep happening for
//! them. Most ggml types are not element types at all but *block* codes: 32 or 256 values share
//! scales, and a value has no byte offset of its own (Q4_K is 4.5 bits a value). Making them
//! `DType`s would give every match in the code base a dozen arms that can only say "not here",
//! and would let a quantized tensor reach a path that reads `dtype.bits()` per element.
//!
//! So a GGUF tensor is described in the shared model this way:
//!
//! - the ggml types that *are* element types (F32, F16, BF16, F64, I8, I16, I32, I64) become
//!   that [`DType`], with `TensorEntry::quant` `None`: such a tensor is the
//!   same thing as a safetensors tensor, and every view, `diff` and the converter's byte
//!   copies work on it unchanged;
//! - a block-quantized tensor gets `quant: Some(GgmlType)` and `dtype: F32`, the type its
//!   values decode to. Code that knows about blocks (sizes, the statistics' decoders in
//!   `analysis::quant`, the table's type column) asks `quant`; the converter refuses
//!   such files before reading a byte.

use crate::dtype::DType;

/// A ggml tensor type, by its GGUF type id. Names are ggml's (`GGML_TYPE_Q4_K` is `Q4_K`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    /// IEEE single precision.
    F32,
    /// IEEE half precision.
    F16,
    /// 32 values: an f16 scale and 4-bit codes, value = d·(q − 8).
    Q4_0,
    /// 32 values: f16 scale and minimum, 4-bit codes, value = d·q + m.
    Q4_1,
    /// 32 values: f16 scale, 5-bit codes (high bits packed apart), value = d·(q − 16).
    Q5_0,
    /// 32 values: f16 scale and minimum, 5-bit codes, value = d·q + m.
    Q5_1,
    /// 32 values: an f16 scale and signed 8-bit codes.
    Q8_0,
    /// 32 values: f16 scale and sum, signed 8-bit codes (an intermediate type of ggml's).
    Q8_1,
    /// 256 values in 16 groups: 4-bit group scales and minimums, 2-bit codes.
    Q2_K,
    /// 256 values in 16 groups: 6-bit group scales, 3-bit codes.
    Q3_K,
    /// 256 values in 8 groups: 6-bit group scales and minimums, 4-bit codes.
    Q4_K,
    /// 256 values in 8 groups: 6-bit group scales and minimums, 5-bit codes.
    Q5_K,
    /// 256 values in 16 groups: 8-bit group scales, 6-bit codes.
    Q6_K,
    /// 256 values: an f32 scale and signed 8-bit codes (plus group sums).
    Q8_K,
    /// Lattice codebook type (2.06 bits a value).
    IQ2_XXS,
    /// Lattice codebook type (2.31 bits a value).
    IQ2_XS,
    /// Lattice codebook type (3.06 bits a value).
    IQ3_XXS,
    /// Lattice codebook type (1.56 bits a value).
    IQ1_S,
    /// 32 values: f16 scale and 4-bit indices into a non-linear table.
    IQ4_NL,
    /// Lattice codebook type (3.44 bits a value).
    IQ3_S,
    /// Lattice codebook type (2.5 bits a value).
    IQ2_S,
    /// 256 values: non-linear 4-bit table with 6-bit group scales.
    IQ4_XS,
    /// Signed 8-bit integer.
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
    /// IEEE double precision.
    F64,
    /// Lattice codebook type (1.75 bits a value).
    IQ1_M,
    /// bfloat16.
    BF16,
    /// Ternary type (1.69 bits a value).
    TQ1_0,
    /// Ternary type (2.06 bits a value).
    TQ2_0,
    /// OCP MX FP4: 32 E2M1 values sharing an E8M0 scale.
    MXFP4,
    /// NVIDIA FP4: 64 E2M1 values in groups of 16 with FP8 scales.
    NVFP4,
    /// 128 values: one bit each and an f16 scale.
    Q1_0,
}

impl GgmlType {
    /// Every type, by increasing id.
    pub const ALL: [GgmlType; 34] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q8_1,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::Q8_K,
        GgmlType::IQ2_XXS,
        GgmlType::IQ2_XS,
        GgmlType::IQ3_XXS,
        GgmlType::IQ1_S,
        GgmlType::IQ4_NL,
        GgmlType::IQ3_S,
        GgmlType::IQ2_S,
        GgmlType::IQ4_XS,
        GgmlType::I8,
        GgmlType::I16,
        GgmlType::I32,
        GgmlType::I64,
        GgmlType::F64,
        GgmlType::IQ1_M,
        GgmlType::BF16,
        GgmlType::TQ1_0,
        GgmlType::TQ2_0,
        GgmlType::MXFP4,
        GgmlType::NVFP4,
        GgmlType::Q1_0,
    ];

    /// The GGUF type id, as `enum ggml_type` numbers it (ids 4, 5 and 31 to 33, 36 to 38 belong
    /// to removed types).
    pub const fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q5_0 => 6,
            GgmlType::Q5_1 => 7,
            GgmlType::Q8_0 => 8,
            GgmlType::Q8_1 => 9,
            GgmlType::Q2_K => 10,
            GgmlType::Q3_K => 11,
            GgmlType::Q4_K => 12,
            GgmlType::Q5_K => 13,
            GgmlType::Q6_K => 14,
            GgmlType::Q8_K => 15,
            GgmlType::IQ2_XXS => 16,
            GgmlType::IQ2_XS => 17,
            GgmlType::IQ3_XXS => 18,
            GgmlType::IQ1_S => 19,
            GgmlType::IQ4_NL => 20,
            GgmlType::IQ3_S => 21,
            GgmlType::IQ2_S => 22,
            GgmlType::IQ4_XS => 23,
            GgmlType::I8 => 24,
            GgmlType::I16 => 25,
            GgmlType::I32 => 26,
            GgmlType::I64 => 27,
            GgmlType::F64 => 28,
            GgmlType::IQ1_M => 29,
            GgmlType::BF16 => 30,
            GgmlType::TQ1_0 => 34,
            GgmlType::TQ2_0 => 35,
            GgmlType::MXFP4 => 39,
            GgmlType::NVFP4 => 40,
            GgmlType::Q1_0 => 41,
        }
    }

    /// The type with GGUF id `id`.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        GgmlType::ALL.into_iter().find(|t| t.id() == id)
    }

    /// ggml's name (`Q4_K`).
    pub const fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "F32",
            GgmlType::F16 => "F16",
            GgmlType::Q4_0 => "Q4_0",
            GgmlType::Q4_1 => "Q4_1",
            GgmlType::Q5_0 => "Q5_0",
            GgmlType::Q5_1 => "Q5_1",
            GgmlType::Q8_0 => "Q8_0",
            GgmlType::Q8_1 => "Q8_1",
            GgmlType::Q2_K => "Q2_K",
            GgmlType::Q3_K => "Q3_K",
            GgmlType::Q4_K => "Q4_K",
            GgmlType::Q5_K => "Q5_K",
            GgmlType::Q6_K => "Q6_K",
            GgmlType::Q8_K => "Q8_K",
            GgmlType::IQ2_XXS => "IQ2_XXS",
            GgmlType::IQ2_XS => "IQ2_XS",
            GgmlType::IQ3_XXS => "IQ3_XXS",
            GgmlType::IQ1_S => "IQ1_S",
            GgmlType::IQ4_NL => "IQ4_NL",
            GgmlType::IQ3_S => "IQ3_S",
            GgmlType::IQ2_S => "IQ2_S",
            GgmlType::IQ4_XS => "IQ4_XS",
            GgmlType::I8 => "I8",
            GgmlType::I16 => "I16",
            GgmlType::I32 => "I32",
            GgmlType::I64 => "I64",
            GgmlType::F64 => "F64",
            GgmlType::IQ1_M => "IQ1_M",
            GgmlType::BF16 => "BF16",
            GgmlType::TQ1_0 => "TQ1_0",
            GgmlType::TQ2_0 => "TQ2_0",
            GgmlType::MXFP4 => "MXFP4",
            GgmlType::NVFP4 => "NVFP4",
            GgmlType::Q1_0 => "Q1_0",
        }
    }

    /// `(values per block, bytes per block)`, as ggml's type traits give them (`Q8_1` is 36
    /// bytes, the size of `block_q8_1`).
    pub const fn block(self) -> (u64, u64) {
        match self {
            GgmlType::F32 | GgmlType::I32 => (1, 4),
            GgmlType::F16 | GgmlType::BF16 | GgmlType::I16 => (1, 2),
            GgmlType::I8 => (1, 1),
            GgmlType::F64 | GgmlType::I64 => (1, 8),
            GgmlType::Q4_0 | GgmlType::IQ4_NL => (32, 18),
            GgmlType::Q4_1 => (32, 20),
            GgmlType::Q5_0 => (32, 22),
            GgmlType::Q5_1 => (32, 24),
            GgmlType::Q8_0 => (32, 34),
            GgmlType::Q8_1 => (32, 36),
            GgmlType::MXFP4 => (32, 17),
            GgmlType::NVFP4 => (64, 36),
            GgmlType::Q1_0 => (128, 18),
            GgmlType::Q2_K => (256, 84),
            GgmlType::Q3_K | GgmlType::IQ3_S => (256, 110),
            GgmlType::Q4_K => (256, 144),
            GgmlType::Q5_K => (256, 176),
            GgmlType::Q6_K => (256, 210),
            GgmlType::Q8_K => (256, 292),
            GgmlType::IQ2_XXS | GgmlType::TQ2_0 => (256, 66),
            GgmlType::IQ2_XS => (256, 74),
            GgmlType::IQ3_XXS => (256, 98),
            GgmlType::IQ1_S => (256, 50),
            GgmlType::IQ2_S => (256, 82),
            GgmlType::IQ4_XS => (256, 136),
            GgmlType::IQ1_M => (256, 56),
            GgmlType::TQ1_0 => (256, 54),
        }
    }

    /// Values per block (1 for the element types).
    pub const fn block_len(self) -> u64 {
        self.block().0
    }

    /// The element type this ggml type is, when it is one (F32, F16, BF16, F64, I8...I64).
    pub const fn element(self) -> Option<DType> {
        Some(match self {
            GgmlType::F32 => DType::F32,
            GgmlType::F16 => DType::F16,
            GgmlType::BF16 => DType::BF16,
            GgmlType::F64 => DType::F64,
            GgmlType::I8 => DType::I8,
            GgmlType::I16 => DType::I16,
            GgmlType::I32 => DType::I32,
            GgmlType::I64 => DType::I64,
            _ => return None,
        })
    }

    /// Bytes taken by `elements` values, or `None` when they are not a whole number of blocks
    /// or the size overflows.
    pub fn bytes_for(self, elements: u64) -> Option<u64> {
        let (len, bytes) = self.block();
        elements
            .is_multiple_of(len)
            .then(|| (elements / len).checked_mul(bytes))
            .flatten()
    }

    /// Bits per value, for display (`4.5` for Q4_K).
    pub fn bits_per_value(self) -> f64 {
        let (len, bytes) = self.block();
        (bytes * 8) as f64 / len as f64
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_unique() {
        for t in GgmlType::ALL {
            assert_eq!(GgmlType::from_id(t.id()), Some(t));
        }
        let mut ids: Vec<u32> = GgmlType::ALL.iter().map(|t| t.id()).collect();
        ids.dedup();
        assert_eq!(ids.len(), GgmlType::ALL.len());
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        for removed in [4, 5, 31, 32, 33, 36, 37, 38, 42, u32::MAX] {
            assert_eq!(GgmlType::from_id(removed), None);
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(GgmlType::Q4_K.bytes_for(512), Some(288));
        assert_eq!(GgmlType::Q4_K.bytes_for(100), None);
        assert_eq!(GgmlType::Q4_K.bits_per_value(), 4.5);
        assert_eq!(GgmlType::F16.bytes_for(3), Some(6));
        assert_eq!(GgmlType::F64.bytes_for(u64::MAX), None);
        for t in GgmlType::ALL {
            if let Some(d) = t.element() {
                assert_eq!(t.block(), (1, d.byte_size().unwrap()), "{t}");
                assert_eq!(t.name(), d.name());
            }
        }
    }
}
