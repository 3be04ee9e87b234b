//! Decoding stored elements of every safetensors dtype to numbers.
//!
//! F16 and BF16 go through `half`. The 8-bit floats (OCP FP8 E4M3/E5M2, their FNUZ variants
//! from AMD/Graphcore, and the MX E8M0 scale) and the MX sub-byte floats (FP4 E2M1, FP6 E2M3 and
//! E3M2) are small enough to tabulate: every bit pattern is decoded once into a 256-entry (or
//! 16/64-entry) table by a readable reference function, and decoding is then a lookup. The
//! reference functions follow the OCP Microscaling (MX) v1.0 spec and the FNUZ paper
//! ("8-bit Numerical Formats for Deep Neural Networks", Noune et al.) and are tested against
//! their published bit patterns.
//!
//! Packing of sub-byte types, as PyTorch and ml_dtypes store them: FP4 holds two values per byte,
//! the first in the low nibble; FP6 holds four values per three bytes, value `i` in bits
//! `6i..6i+6` of the little-endian 24-bit group.
//!
//! `clippy::indexing_slicing` is allowed here: every run is checked against the byte slice once
//! (`decode_run` returns `false` when it does not fit) before the inner loops index it, and the
//! FP8/FP4/FP6 tables have a slot for every code; checking each element again would cost the hot
//! loop its speed.

#![allow(clippy::indexing_slicing)]

use std::sync::OnceLock;

use crate::dtype::DType;
use crate::format::ByteOrder;

/// Decodes a minifloat with `e` exponent bits and `m` mantissa bits, the sign bit above them.
/// `ieee`: the all-ones exponent means Inf/NaN (E5M2). `fn_nan`: only S.1111.111 is NaN, there
/// is no infinity (E4M3 "FN"). `fnuz`: 0x80 is the only NaN, there is no negative zero and no
/// infinity, and the bias is one larger.
fn minifloat(bits: u32, e: u32, m: u32, bias: i32, kind: Special) -> f32 {
    let sign = (bits >> (e + m)) & 1;
    let exp = (bits >> m) & ((1 << e) - 1);
    let man = bits & ((1 << m) - 1);
    let max_exp = (1 << e) - 1;
    match kind {
        Special::Fnuz if bits == 1 << (e + m) => return f32::NAN,
        Special::Ieee if exp == max_exp => {
            return if man == 0 {
                if sign == 1 {
                    f32::NEG_INFINITY
                } else {
                    f32::INFINITY
                }
            } else {
                f32::NAN
            };
        }
        Special::FnNan if exp == max_exp && man == (1 << m) - 1 => return f32::NAN,
        _ => {}
    }
    let magnitude = if exp == 0 {
        // Subnormal: 0.m × 2^(1-bias).
        man as f32 / (1u32 << m) as f32 * 2f32.powi(1 - bias)
    } else {
        (1.0 + man as f32 / (1u32 << m) as f32) * 2f32.powi(exp as i32 - bias)
    };
    if sign == 1 { -magnitude } else { magnitude }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Special {
    /// All-ones exponent: infinities and NaNs (IEEE style).
    Ieee,
    /// Only the all-ones pattern is NaN; no infinities.
    FnNan,
    /// 0x80 (negative zero's pattern) is the single NaN.
    Fnuz,
    /// Every pattern is a finite number.
    None,
}

fn table<const N: usize>(f: impl Fn(u32) -> f32) -> [f32; N] {
    let mut t = [0f32; N];
    for (i, v) in t.iter_mut().enumerate() {
        *v = f(i as u32);
    }
    t
}

struct Tables {
    e4m3: [f32; 256],
    e5m2: [f32; 256],
    e4m3fnuz: [f32; 256],
    e5m2fnuz: [f32; 256],
    e8m0: [f32; 256],
    f4: [f32; 16],
    f6_e2m3: [f32; 64],
    f6_e3m2: [f32; 64],
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| Tables {
        e4m3: table(|b| minifloat(b, 4, 3, 7, Special::FnNan)),
        e5m2: table(|b| minifloat(b, 5, 2, 15, Special::Ieee)),
        e4m3fnuz: table(|b| minifloat(b, 4, 3, 8, Special::Fnuz)),
        e5m2fnuz: table(|b| minifloat(b, 5, 2, 16, Special::Fnuz)),
        // E8M0: an unsigned power of two, 2^(e-127); 0xFF is NaN.
        e8m0: table(|b| {
            if b == 0xff {
                f32::NAN
            } else {
                2f32.powi(b as i32 - 127)
            }
        }),
        f4: table(|b| minifloat(b, 2, 1, 1, Special::None)),
        f6_e2m3: table(|b| minifloat(b, 2, 3, 1, Special::None)),
        f6_e3m2: table(|b| minifloat(b, 3, 2, 3, Special::None)),
    })
}

/// Reads element `i` of a packed sub-byte array (F4 or F6) as its raw bit pattern.
pub(crate) fn sub_byte_bits(dtype: DType, bytes: &[u8], i: u64) -> Option<u32> {
    match dtype {
        DType::F4 => {
            let b = *bytes.get(usize::try_from(i / 2).ok()?)?;
            Some(u32::from(if i.is_multiple_of(2) {
                b & 0x0f
            } else {
                b >> 4
            }))
        }
        DType::F6_E2M3 | DType::F6_E3M2 => {
            let group = usize::try_from(i / 4).ok()?.checked_mul(3)?;
            let g = bytes.get(group..group + 3)?;
            let word = u32::from(g[0]) | u32::from(g[1]) << 8 | u32::from(g[2]) << 16;
            Some((word >> (6 * (i % 4))) & 0x3f)
        }
        _ => None,
    }
}

/// Decodes element `i` (counting elements, not bytes) of `bytes`. `None` if it lies outside.
/// Complex values decode to their magnitude.
pub fn decode_at(dtype: DType, order: ByteOrder, bytes: &[u8], i: u64) -> Option<f64> {
    let t = tables();
    let Some(size) = dtype.byte_size() else {
        let bits = sub_byte_bits(dtype, bytes, i)? as usize;
        return Some(f64::from(match dtype {
            DType::F4 => t.f4[bits],
            DType::F6_E2M3 => t.f6_e2m3[bits],
            _ => t.f6_e3m2[bits],
        }));
    };
    let size = size as usize;
    let at = usize::try_from(i).ok()?.checked_mul(size)?;
    let raw = bytes.get(at..at.checked_add(size)?)?;
    Some(decode_one(dtype, order, raw, t))
}

#[inline(always)]
fn arr<const N: usize>(raw: &[u8], order: ByteOrder) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&raw[..N]);
    if order == ByteOrder::Big {
        a.reverse();
    }
    a
}

#[inline(always)]
fn decode_one(dtype: DType, order: ByteOrder, raw: &[u8], t: &Tables) -> f64 {
    match dtype {
        DType::BOOL => f64::from(u8::from(raw[0] != 0)),
        DType::U8 => f64::from(raw[0]),
        DType::I8 => f64::from(raw[0] as i8),
        DType::F8_E4M3 => f64::from(t.e4m3[raw[0] as usize]),
        DType::F8_E5M2 => f64::from(t.e5m2[raw[0] as usize]),
        DType::F8_E4M3FNUZ => f64::from(t.e4m3fnuz[raw[0] as usize]),
        DType::F8_E5M2FNUZ => f64::from(t.e5m2fnuz[raw[0] as usize]),
        DType::F8_E8M0 => f64::from(t.e8m0[raw[0] as usize]),
        DType::I16 => f64::from(i16::from_le_bytes(arr(raw, order))),
        DType::U16 => f64::from(u16::from_le_bytes(arr(raw, order))),
        DType::F16 => f64::from(half::f16::from_le_bytes(arr(raw, order)).to_f32()),
        DType::BF16 => f64::from(half::bf16::from_le_bytes(arr(raw, order)).to_f32()),
        DType::I32 => f64::from(i32::from_le_bytes(arr(raw, order))),
        DType::U32 => f64::from(u32::from_le_bytes(arr(raw, order))),
        DType::F32 => f64::from(f32::from_le_bytes(arr(raw, order))),
        DType::C64 => {
            let re = f32::from_le_bytes(arr(&raw[..4], order));
            let im = f32::from_le_bytes(arr(&raw[4..8], order));
            f64::from(re).hypot(f64::from(im))
        }
        DType::F64 => f64::from_le_bytes(arr(raw, order)),
        DType::I64 => i64::from_le_bytes(arr(raw, order)) as f64,
        DType::U64 => u64::from_le_bytes(arr(raw, order)) as f64,
        DType::F4 | DType::F6_E2M3 | DType::F6_E3M2 => f64::NAN,
    }
}

/// Decodes `n` consecutive elements starting at element `first`, appending to `out`. Returns
/// `false` (appending nothing) if they do not all lie inside `bytes`.
pub fn decode_run(
    dtype: DType,
    order: ByteOrder,
    bytes: &[u8],
    first: u64,
    n: usize,
    out: &mut Vec<f64>,
) -> bool {
    let t = tables();
    let Some(size) = dtype.byte_size() else {
        let last = first.saturating_add(n as u64);
        if n > 0 && sub_byte_bits(dtype, bytes, last - 1).is_none() {
            return false;
        }
        out.extend((first..last).filter_map(|i| decode_at(dtype, order, bytes, i)));
        return true;
    };
    let size = size as usize;
    let Some(start) = usize::try_from(first)
        .ok()
        .and_then(|f| f.checked_mul(size))
    else {
        return false;
    };
    let Some(raw) = start
        .checked_add(n.saturating_mul(size))
        .and_then(|end| bytes.get(start..end))
    else {
        return false;
    };
    let little = order == ByteOrder::Little;
    // Tight loops for the common types, so the compiler can vectorise them.
    match dtype {
        DType::F32 if little => out.extend(
            raw.chunks_exact(4)
                .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
        ),
        DType::BF16 if little => out.extend(raw.chunks_exact(2).map(|c| {
            f64::from(f32::from_bits(
                u32::from(u16::from_le_bytes([c[0], c[1]])) << 16,
            ))
        })),
        DType::F16 if little => {
            out.extend(raw.chunks_exact(2).map(|c| {
                f64::from(half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
            }))
        }
        DType::F64 if little => out.extend(
            raw.chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])),
        ),
        _ => out.extend(
            raw.chunks_exact(size)
                .map(|c| decode_one(dtype, order, c, t)),
        ),
    }
    true
}

/// True when every value of `dtype` is exactly representable as an `f32` (so statistics can
/// decode to `f32`, half the memory traffic of `f64`).
pub fn fits_f32(dtype: DType) -> bool {
    !matches!(
        dtype,
        DType::F64 | DType::I32 | DType::U32 | DType::I64 | DType::U64 | DType::C64
    )
}

/// [`decode_run`] into `f32`, for dtypes where [`fits_f32`] holds; `false` otherwise or when the
/// run lies outside `bytes`.
pub fn decode_run_f32(
    dtype: DType,
    order: ByteOrder,
    bytes: &[u8],
    first: u64,
    n: usize,
    out: &mut Vec<f32>,
) -> bool {
    if !fits_f32(dtype) {
        return false;
    }
    let t = tables();
    let Some(size) = dtype.byte_size() else {
        let last = first.saturating_add(n as u64);
        if n > 0 && sub_byte_bits(dtype, bytes, last - 1).is_none() {
            return false;
        }
        out.extend(
            (first..last).filter_map(|i| decode_at(dtype, order, bytes, i).map(|v| v as f32)),
        );
        return true;
    };
    let size = size as usize;
    let Some(raw) = usize::try_from(first)
        .ok()
        .and_then(|f| f.checked_mul(size))
        .and_then(|start| Some((start, start.checked_add(n.checked_mul(size)?)?)))
        .and_then(|(start, end)| bytes.get(start..end))
    else {
        return false;
    };
    let little = order == ByteOrder::Little || size == 1;
    match dtype {
        DType::F32 if little => out.extend(
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        ),
        DType::BF16 if little => out.extend(
            raw.chunks_exact(2)
                .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16)),
        ),
        DType::F16 if little => out.extend(
            raw.chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()),
        ),
        DType::U8 => out.extend(raw.iter().map(|&b| f32::from(b))),
        DType::I8 => out.extend(raw.iter().map(|&b| f32::from(b as i8))),
        DType::F8_E4M3 => out.extend(raw.iter().map(|&b| t.e4m3[b as usize])),
        DType::F8_E5M2 => out.extend(raw.iter().map(|&b| t.e5m2[b as usize])),
        _ => out.extend(
            raw.chunks_exact(size)
                .map(|c| decode_one(dtype, order, c, t) as f32),
        ),
    }
    true
}

/// Element `i` as exact text: integers in full, floats as Rust prints them, complex as `a+bj`,
/// booleans as `true`/`false`.
pub fn element_text(dtype: DType, order: ByteOrder, bytes: &[u8], i: u64) -> Option<String> {
    let exact_int = |v: i128| Some(v.to_string());
    if let Some(size) = dtype.byte_size() {
        let size = size as usize;
        let at = usize::try_from(i).ok()?.checked_mul(size)?;
        let raw = bytes.get(at..at.checked_add(size)?)?;
        match dtype {
            DType::BOOL => return Some((raw[0] != 0).to_string()),
            DType::I64 => return exact_int(i128::from(i64::from_le_bytes(arr(raw, order)))),
            DType::U64 => return exact_int(i128::from(u64::from_le_bytes(arr(raw, order)))),
            DType::C64 => {
                let re = f32::from_le_bytes(arr(&raw[..4], order));
                let im = f32::from_le_bytes(arr(&raw[4..8], order));
                return Some(format!(
                    "{re}{}{}j",
                    if im.is_sign_negative() { "-" } else { "+" },
                    im.abs()
                ));
            }
            _ => {}
        }
    }
    let v = decode_at(dtype, order, bytes, i)?;
    Some(if dtype.is_float() {
        format_float(v)
    } else {
        format!("{v}")
    })
}

/// A float in at most 6 significant digits, scientific when very large or small.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let a = v.abs();
    if (1e-4..1e6).contains(&a) {
        let decimals = (5 - a.log10().floor() as i32).clamp(0, 9) as usize;
        let s = format!("{v:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        format!("{v:.4e}")
    }
}

#[cfg(test)]
// Bit patterns are grouped sign_exponent_mantissa, as the specs write them.
#[allow(clippy::unusual_byte_groupings)]
mod tests {
    use super::*;

    fn f8(dtype: DType, b: u8) -> f64 {
        decode_at(dtype, ByteOrder::Little, &[b], 0).unwrap()
    }

    #[test]
    fn fp8_e4m3fn_bit_patterns() {
        // OCP FP8 spec table: max 448 = S.1111.110, min normal 2^-6, min subnormal 2^-9.
        assert_eq!(f8(DType::F8_E4M3, 0x7e), 448.0);
        assert_eq!(f8(DType::F8_E4M3, 0xfe), -448.0);
        assert!(f8(DType::F8_E4M3, 0x7f).is_nan());
        assert!(f8(DType::F8_E4M3, 0xff).is_nan());
        assert_eq!(f8(DType::F8_E4M3, 0x08), 2f64.powi(-6));
        assert_eq!(f8(DType::F8_E4M3, 0x01), 2f64.powi(-9));
        assert_eq!(f8(DType::F8_E4M3, 0x38), 1.0);
        assert_eq!(f8(DType::F8_E4M3, 0x80), -0.0);
        assert!(
            f8(DType::F8_E4M3, 0x78).is_finite(),
            "no infinities in E4M3FN"
        );
    }

    #[test]
    fn fp8_e5m2_bit_patterns() {
        assert_eq!(f8(DType::F8_E5M2, 0x7b), 57344.0);
        assert_eq!(f8(DType::F8_E5M2, 0x7c), f64::INFINITY);
        assert_eq!(f8(DType::F8_E5M2, 0xfc), f64::NEG_INFINITY);
        assert!(f8(DType::F8_E5M2, 0x7d).is_nan());
        assert_eq!(f8(DType::F8_E5M2, 0x3c), 1.0);
        assert_eq!(f8(DType::F8_E5M2, 0x01), 2f64.powi(-16));
        assert_eq!(f8(DType::F8_E5M2, 0x04), 2f64.powi(-14));
    }

    #[test]
    fn fp8_fnuz_bit_patterns() {
        // E4M3FNUZ: bias 8, max 240 = 0.1111.111, single NaN at 0x80, no negative zero.
        assert_eq!(f8(DType::F8_E4M3FNUZ, 0x7f), 240.0);
        assert_eq!(f8(DType::F8_E4M3FNUZ, 0x40), 1.0);
        assert!(f8(DType::F8_E4M3FNUZ, 0x80).is_nan());
        assert_eq!(f8(DType::F8_E4M3FNUZ, 0xff), -240.0);
        assert_eq!(f8(DType::F8_E4M3FNUZ, 0x01), 2f64.powi(-10));
        // E5M2FNUZ: bias 16, max 57344 = 0.11111.11, single NaN at 0x80, no infinities.
        assert_eq!(f8(DType::F8_E5M2FNUZ, 0x7f), 57344.0);
        assert_eq!(f8(DType::F8_E5M2FNUZ, 0x40), 1.0);
        assert!(f8(DType::F8_E5M2FNUZ, 0x80).is_nan());
        assert!(f8(DType::F8_E5M2FNUZ, 0x7c).is_finite());
        assert_eq!(f8(DType::F8_E5M2FNUZ, 0x01), 2f64.powi(-17));
    }

    #[test]
    fn e8m0_scales() {
        assert_eq!(f8(DType::F8_E8M0, 127), 1.0);
        assert_eq!(f8(DType::F8_E8M0, 128), 2.0);
        assert_eq!(f8(DType::F8_E8M0, 0), 2f64.powi(-127));
        assert_eq!(f8(DType::F8_E8M0, 254), 2f64.powi(127));
        assert!(f8(DType::F8_E8M0, 255).is_nan());
    }

    #[test]
    fn fp4_e2m1_all_values_and_nibble_order() {
        // OCP MX: 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives.
        let expected = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0];
        for (b, want) in expected.iter().enumerate() {
            assert_eq!(
                decode_at(DType::F4, ByteOrder::Little, &[b as u8], 0),
                Some(*want)
            );
            assert_eq!(
                decode_at(DType::F4, ByteOrder::Little, &[(b as u8 | 8) << 4], 1),
                Some(-*want)
            );
        }
        // Low nibble first.
        let byte = [0x72u8];
        assert_eq!(decode_at(DType::F4, ByteOrder::Little, &byte, 0), Some(1.0));
        assert_eq!(decode_at(DType::F4, ByteOrder::Little, &byte, 1), Some(6.0));
        assert_eq!(decode_at(DType::F4, ByteOrder::Little, &byte, 2), None);
    }

    #[test]
    fn fp6_values_and_packing() {
        // E2M3: max 7.5 = 0.11.111, min subnormal 0.125; E3M2: max 28 = 0.111.11, min 0.0625.
        let one = |dtype, bits: u32| {
            let word = bits.to_le_bytes();
            decode_at(dtype, ByteOrder::Little, &word[..3], 0).unwrap()
        };
        assert_eq!(one(DType::F6_E2M3, 0b0_11_111), 7.5);
        assert_eq!(one(DType::F6_E2M3, 0b0_00_001), 0.125);
        assert_eq!(one(DType::F6_E2M3, 0b1_01_000), -1.0);
        assert_eq!(one(DType::F6_E3M2, 0b0_111_11), 28.0);
        assert_eq!(one(DType::F6_E3M2, 0b0_000_01), 0.0625);
        assert_eq!(one(DType::F6_E3M2, 0b0_011_00), 1.0);
        // Four values in three bytes: 1.0, 2.0, 0.5, -1.0 (E2M3).
        let vals = [0b001000u32, 0b010000, 0b000100, 0b101000];
        let word = vals
            .iter()
            .enumerate()
            .fold(0u32, |w, (i, v)| w | v << (6 * i));
        let bytes = &word.to_le_bytes()[..3];
        let decoded: Vec<f64> = (0..4)
            .map(|i| decode_at(DType::F6_E2M3, ByteOrder::Little, bytes, i).unwrap())
            .collect();
        assert_eq!(decoded, [1.0, 2.0, 0.5, -1.0]);
    }

    #[test]
    fn wide_types_and_byte_order() {
        let b = 1.5f32.to_be_bytes();
        assert_eq!(decode_at(DType::F32, ByteOrder::Big, &b, 0), Some(1.5));
        let bf = half::bf16::from_f32(-2.5).to_le_bytes();
        assert_eq!(
            decode_at(DType::BF16, ByteOrder::Little, &bf, 0),
            Some(-2.5)
        );
        let h = half::f16::from_f32(0.1).to_le_bytes();
        assert!((decode_at(DType::F16, ByteOrder::Little, &h, 0).unwrap() - 0.1).abs() < 1e-4);
        let mut c = 3f32.to_le_bytes().to_vec();
        c.extend_from_slice(&(-4f32).to_le_bytes());
        assert_eq!(decode_at(DType::C64, ByteOrder::Little, &c, 0), Some(5.0));
        assert_eq!(
            element_text(DType::C64, ByteOrder::Little, &c, 0).as_deref(),
            Some("3-4j")
        );
        let big = (i64::MAX - 1).to_le_bytes();
        assert_eq!(
            element_text(DType::I64, ByteOrder::Little, &big, 0).unwrap(),
            (i64::MAX - 1).to_string()
        );
        assert_eq!(
            decode_at(DType::BOOL, ByteOrder::Little, &[2], 0),
            Some(1.0)
        );
    }

    #[test]
    fn runs_match_single_decodes() {
        let bytes: Vec<u8> = (0..64u32)
            .flat_map(|i| ((i as f32) * 0.5 - 3.0).to_le_bytes())
            .collect();
        for dtype in [
            DType::F32,
            DType::BF16,
            DType::F16,
            DType::I16,
            DType::F8_E4M3,
            DType::U8,
        ] {
            let n = (bytes.len() as u64 * 8 / dtype.bits()) as usize;
            let mut run = Vec::new();
            assert!(decode_run(
                dtype,
                ByteOrder::Little,
                &bytes,
                2,
                n - 2,
                &mut run
            ));
            let single: Vec<f64> = (2..n as u64)
                .map(|i| decode_at(dtype, ByteOrder::Little, &bytes, i).unwrap())
                .collect();
            assert_eq!(run.len(), single.len());
            assert!(
                run.iter()
                    .zip(&single)
                    .all(|(a, b)| a == b || (a.is_nan() && b.is_nan())),
                "{dtype}"
            );
            assert!(!decode_run(
                dtype,
                ByteOrder::Little,
                &bytes,
                2,
                n,
                &mut run
            ));
        }
    }

    #[test]
    fn float_formatting() {
        assert_eq!(format_float(0.5), "0.5");
        assert_eq!(format_float(-0.0), "-0");
        assert_eq!(format_float(1.0e-7), "1.0000e-7");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(123.456789), "123.457");
    }
}
