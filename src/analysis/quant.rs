//! Dequantization of ggml block types, straight from the mapping.
//!
//! A quantized tensor is a row of blocks (32 or 256 values each) holding scales and packed codes.
//! The statistics see it as a tensor of F32 values: [`run_f32`] decodes the blocks a run of
//! elements touches (and only those) into the caller's buffer, [`value_at`] decodes one element
//! without decoding its whole block (strided slices, samples, heatmap pixels). Both follow
//! ggml's `dequantize_row_*` operation for operation in `f32` (no fused multiply-add), so the
//! values are bit-identical to llama.cpp's and to the `gguf` Python package's
//! `gguf.quants.dequantize`, which the fixtures check.
//!
//! Decoded: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ4_NL, IQ4_XS and
//! MXFP4. The lattice codebook types (IQ1/IQ2/IQ3), the ternary TQ types, NVFP4, Q1_0 and Q8_1
//! are listed but not decoded ([`supported`] says so, and the statistics say why) rather than
//! guessed.
//!
//! `clippy::indexing_slicing` is allowed here: every block decoder gets a slice of exactly one
//! block (taken with `get` at the type's block size by `block_bytes` or `chunks_exact`), and the
//! offsets inside it are constants of the format; a check per value would slow the decoding
//! loops.

#![allow(clippy::indexing_slicing)]

use crate::dtype::ggml::GgmlType;

/// True when the values of `q` can be decoded here.
pub fn supported(q: GgmlType) -> bool {
    use GgmlType::*;
    matches!(
        q,
        Q4_0 | Q4_1
            | Q5_0
            | Q5_1
            | Q8_0
            | Q2_K
            | Q3_K
            | Q4_K
            | Q5_K
            | Q6_K
            | Q8_K
            | IQ4_NL
            | IQ4_XS
            | MXFP4
    )
}

/// The non-linear 4-bit table of IQ4_NL and IQ4_XS (`kvalues_iq4nl`).
const IQ4NL: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];
/// E2M1 values, doubled (`kvalues_mxfp4`); the E8M0 scale is halved to match.
const MXFP4_VALUES: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

#[inline(always)]
fn f16(b: &[u8], at: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// `ggml_e8m0_to_fp32_half`: 2^(x−128), with the two smallest exponents as subnormals.
#[inline(always)]
fn e8m0_half(x: u8) -> f32 {
    let bits = if x < 2 {
        0x0020_0000u32 << x
    } else {
        u32::from(x - 1) << 23
    };
    f32::from_bits(bits)
}

/// Scale and minimum `j` (0..8) of the 12 packed 6-bit pairs of Q4_K and Q5_K
/// (`get_scale_min_k4`).
#[inline(always)]
fn scale_min_k4(q: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Scale `i` (0..16) of Q3_K's 12 bytes of packed 6-bit scales, minus its offset of 32.
#[inline(always)]
fn scale_q3k(s: &[u8], i: usize) -> i8 {
    let low = if i < 8 { s[i] & 0x0f } else { s[i - 8] >> 4 };
    let high = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
    (low | (high << 4)) as i8 - 32
}

/// Scale `ib` (0..8) of an IQ4_XS block, minus its offset of 32.
#[inline(always)]
fn scale_iq4xs(b: &[u8], ib: usize) -> i8 {
    let high = u16::from_le_bytes([b[2], b[3]]);
    let low = (b[4 + ib / 2] >> (4 * (ib % 2))) & 0x0f;
    let high = ((high >> (2 * ib)) & 3) as u8;
    (low | (high << 4)) as i8 - 32
}

/// Decodes one whole block `b` (exactly the type's block bytes) into `out` (exactly its block
/// length). Nothing is written for an unsupported type or wrong lengths.
pub fn decode_block(q: GgmlType, b: &[u8], out: &mut [f32]) {
    let (len, bytes) = q.block();
    if b.len() as u64 != bytes || out.len() as u64 != len || !supported(q) {
        return;
    }
    match q {
        GgmlType::Q4_0 => {
            let d = f16(b, 0);
            let qs = &b[2..18];
            for l in 0..16 {
                out[l] = d * ((qs[l] & 0x0f) as i32 - 8) as f32;
                out[l + 16] = d * ((qs[l] >> 4) as i32 - 8) as f32;
            }
        }
        GgmlType::Q4_1 => {
            let (d, m) = (f16(b, 0), f16(b, 2));
            let qs = &b[4..20];
            for l in 0..16 {
                out[l] = d * f32::from(qs[l] & 0x0f) + m;
                out[l + 16] = d * f32::from(qs[l] >> 4) + m;
            }
        }
        GgmlType::Q5_0 => {
            let d = f16(b, 0);
            let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
            let qs = &b[6..22];
            for l in 0..16 {
                let lo = (qs[l] & 0x0f) | ((((qh >> l) & 1) as u8) << 4);
                let hi = (qs[l] >> 4) | ((((qh >> (l + 16)) & 1) as u8) << 4);
                out[l] = d * (lo as i32 - 16) as f32;
                out[l + 16] = d * (hi as i32 - 16) as f32;
            }
        }
        GgmlType::Q5_1 => {
            let (d, m) = (f16(b, 0), f16(b, 2));
            let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            let qs = &b[8..24];
            for l in 0..16 {
                let lo = (qs[l] & 0x0f) | ((((qh >> l) & 1) as u8) << 4);
                let hi = (qs[l] >> 4) | ((((qh >> (l + 16)) & 1) as u8) << 4);
                out[l] = d * f32::from(lo) + m;
                out[l + 16] = d * f32::from(hi) + m;
            }
        }
        GgmlType::Q8_0 => {
            let d = f16(b, 0);
            for (o, &x) in out.iter_mut().zip(&b[2..34]) {
                *o = f32::from(x as i8) * d;
            }
        }
        GgmlType::Q8_K => {
            let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            for (o, &x) in out.iter_mut().zip(&b[4..260]) {
                *o = d * f32::from(x as i8);
            }
        }
        GgmlType::Q2_K => {
            let (scales, qs) = (&b[0..16], &b[16..80]);
            let (d, dmin) = (f16(b, 80), f16(b, 82));
            for (g, chunk) in out.chunks_exact_mut(16).enumerate() {
                let s = scales[g];
                let dl = d * f32::from(s & 0x0f);
                let ml = dmin * f32::from(s >> 4);
                let (h, w) = (g / 8, (g % 8) * 16);
                let shift = 2 * (w / 32);
                let base = h * 32 + w % 32;
                for (l, o) in chunk.iter_mut().enumerate() {
                    *o = dl * f32::from((qs[base + l] >> shift) & 3) - ml;
                }
            }
        }
        GgmlType::Q3_K => {
            let (hmask, qs, scales) = (&b[0..32], &b[32..96], &b[96..108]);
            let d = f16(b, 108);
            for (g, chunk) in out.chunks_exact_mut(16).enumerate() {
                let dl = d * f32::from(scale_q3k(scales, g));
                let (h, w) = (g / 8, (g % 8) * 16);
                let shift = 2 * (w / 32);
                let base = h * 32 + w % 32;
                let bit = (g * 16) / 32;
                for (l, o) in chunk.iter_mut().enumerate() {
                    let low = ((qs[base + l] >> shift) & 3) as i8;
                    let m = (base + l) % 32;
                    let missing = ((hmask[m] >> bit) & 1) ^ 1;
                    *o = dl * f32::from(low - ((missing << 2) as i8));
                }
            }
        }
        GgmlType::Q4_K => {
            let (d, dmin) = (f16(b, 0), f16(b, 2));
            let (scales, qs) = (&b[4..16], &b[16..144]);
            for (c, (pair, codes)) in out
                .chunks_exact_mut(64)
                .zip(qs.chunks_exact(32))
                .enumerate()
            {
                let (sc1, m1) = scale_min_k4(scales, 2 * c);
                let (sc2, m2) = scale_min_k4(scales, 2 * c + 1);
                let (d1, m1) = (d * f32::from(sc1), dmin * f32::from(m1));
                let (d2, m2) = (d * f32::from(sc2), dmin * f32::from(m2));
                let (lo, hi) = pair.split_at_mut(32);
                for ((a, z), &q) in lo.iter_mut().zip(hi.iter_mut()).zip(codes) {
                    *a = d1 * f32::from(q & 0x0f) - m1;
                    *z = d2 * f32::from(q >> 4) - m2;
                }
            }
        }
        GgmlType::Q5_K => {
            let (d, dmin) = (f16(b, 0), f16(b, 2));
            let (scales, qh, qs) = (&b[4..16], &b[16..48], &b[48..176]);
            for (c, (pair, codes)) in out
                .chunks_exact_mut(64)
                .zip(qs.chunks_exact(32))
                .enumerate()
            {
                let (sc1, m1) = scale_min_k4(scales, 2 * c);
                let (sc2, m2) = scale_min_k4(scales, 2 * c + 1);
                let (d1, m1) = (d * f32::from(sc1), dmin * f32::from(m1));
                let (d2, m2) = (d * f32::from(sc2), dmin * f32::from(m2));
                let (lo, hi) = pair.split_at_mut(32);
                for (l, ((a, z), &q)) in lo.iter_mut().zip(hi.iter_mut()).zip(codes).enumerate() {
                    let h1 = ((qh[l] >> (2 * c)) & 1) << 4;
                    let h2 = ((qh[l] >> (2 * c + 1)) & 1) << 4;
                    *a = d1 * f32::from((q & 0x0f) | h1) - m1;
                    *z = d2 * f32::from((q >> 4) | h2) - m2;
                }
            }
        }
        GgmlType::Q6_K => {
            let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
            let d = f16(b, 208);
            for (h, half) in out.chunks_exact_mut(128).enumerate() {
                let (ql, qh) = (&ql[h * 64..h * 64 + 64], &qh[h * 32..h * 32 + 32]);
                let dl: [f32; 8] = std::array::from_fn(|k| d * f32::from(sc[h * 8 + k] as i8));
                for l in 0..32 {
                    let q1 = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i8 - 32;
                    let q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
                    let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
                    let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
                    let g = l / 16;
                    half[l] = dl[g] * f32::from(q1);
                    half[l + 32] = dl[g + 2] * f32::from(q2);
                    half[l + 64] = dl[g + 4] * f32::from(q3);
                    half[l + 96] = dl[g + 6] * f32::from(q4);
                }
            }
        }
        GgmlType::IQ4_NL => {
            let d = f16(b, 0);
            let qs = &b[2..18];
            for l in 0..16 {
                out[l] = d * f32::from(IQ4NL[usize::from(qs[l] & 0x0f)]);
                out[l + 16] = d * f32::from(IQ4NL[usize::from(qs[l] >> 4)]);
            }
        }
        GgmlType::IQ4_XS => {
            let d = f16(b, 0);
            let qs = &b[8..136];
            for (ib, chunk) in out.chunks_exact_mut(32).enumerate() {
                let dl = d * f32::from(scale_iq4xs(b, ib));
                let codes = &qs[ib * 16..ib * 16 + 16];
                for l in 0..16 {
                    chunk[l] = dl * f32::from(IQ4NL[usize::from(codes[l] & 0x0f)]);
                    chunk[l + 16] = dl * f32::from(IQ4NL[usize::from(codes[l] >> 4)]);
                }
            }
        }
        GgmlType::MXFP4 => {
            let d = e8m0_half(b[0]);
            let qs = &b[1..17];
            for l in 0..16 {
                out[l] = d * f32::from(MXFP4_VALUES[usize::from(qs[l] & 0x0f)]);
                out[l + 16] = d * f32::from(MXFP4_VALUES[usize::from(qs[l] >> 4)]);
            }
        }
        _ => {}
    }
}

/// Value `j` of one block `b` (exactly the type's block bytes), computed alone: the same
/// operations as [`decode_block`] for that value. `None` for an unsupported type, a wrong
/// length or `j` outside the block.
pub fn block_value(q: GgmlType, b: &[u8], j: usize) -> Option<f32> {
    let (len, bytes) = q.block();
    if b.len() as u64 != bytes || j as u64 >= len {
        return None;
    }
    // Nibble `j` of the 32-value layouts: the first 16 values low, the next 16 high.
    let nib32 = |qs: &[u8]| {
        if j < 16 {
            qs[j] & 0x0f
        } else {
            qs[j - 16] >> 4
        }
    };
    Some(match q {
        GgmlType::Q4_0 => f16(b, 0) * (nib32(&b[2..18]) as i32 - 8) as f32,
        GgmlType::Q4_1 => f16(b, 0) * f32::from(nib32(&b[4..20])) + f16(b, 2),
        GgmlType::Q5_0 => {
            let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
            let q = nib32(&b[6..22]) | ((((qh >> j) & 1) as u8) << 4);
            f16(b, 0) * (q as i32 - 16) as f32
        }
        GgmlType::Q5_1 => {
            let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            let q = nib32(&b[8..24]) | ((((qh >> j) & 1) as u8) << 4);
            f16(b, 0) * f32::from(q) + f16(b, 2)
        }
        GgmlType::Q8_0 => f32::from(b[2 + j] as i8) * f16(b, 0),
        GgmlType::Q8_K => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * f32::from(b[4 + j] as i8),
        GgmlType::Q2_K => {
            let s = b[j / 16];
            let (h, w) = (j / 128, j % 128);
            let code = (b[16 + h * 32 + w % 32] >> (2 * (w / 32))) & 3;
            let dl = f16(b, 80) * f32::from(s & 0x0f);
            let ml = f16(b, 82) * f32::from(s >> 4);
            dl * f32::from(code) - ml
        }
        GgmlType::Q3_K => {
            let (h, w) = (j / 128, j % 128);
            let low = ((b[32 + h * 32 + w % 32] >> (2 * (w / 32))) & 3) as i8;
            let missing = ((b[j % 32] >> (j / 32)) & 1) ^ 1;
            let dl = f16(b, 108) * f32::from(scale_q3k(&b[96..108], j / 16));
            dl * f32::from(low - ((missing << 2) as i8))
        }
        GgmlType::Q4_K | GgmlType::Q5_K => {
            let is = j / 32;
            let (sc, m) = scale_min_k4(&b[4..16], is);
            let (d1, m1) = (f16(b, 0) * f32::from(sc), f16(b, 2) * f32::from(m));
            let qs_at = if q == GgmlType::Q4_K { 16 } else { 48 };
            let mut code = (b[qs_at + (j / 64) * 32 + j % 32] >> (4 * (is % 2))) & 0x0f;
            if q == GgmlType::Q5_K {
                code |= ((b[16 + j % 32] >> is) & 1) << 4;
            }
            d1 * f32::from(code) - m1
        }
        GgmlType::Q6_K => {
            let (h, w) = (j / 128, j % 128);
            let low = (b[h * 64 + w % 64] >> (4 * (w / 64))) & 0x0f;
            let high = (b[128 + h * 32 + w % 32] >> (2 * (w / 32))) & 3;
            let code = (low | (high << 4)) as i8 - 32;
            let dl = f16(b, 208) * f32::from(b[192 + j / 16] as i8);
            dl * f32::from(code)
        }
        GgmlType::IQ4_NL => f16(b, 0) * f32::from(IQ4NL[usize::from(nib32(&b[2..18]))]),
        GgmlType::IQ4_XS => {
            let ib = j / 32;
            let dl = f16(b, 0) * f32::from(scale_iq4xs(b, ib));
            let codes = &b[8 + ib * 16..8 + ib * 16 + 16];
            let l = j % 32;
            let code = if l < 16 {
                codes[l] & 0x0f
            } else {
                codes[l - 16] >> 4
            };
            dl * f32::from(IQ4NL[usize::from(code)])
        }
        GgmlType::MXFP4 => e8m0_half(b[0]) * f32::from(MXFP4_VALUES[usize::from(nib32(&b[1..17]))]),
        _ => return None,
    })
}

/// The bytes of block `index`, if they lie inside `bytes`.
fn block_bytes(q: GgmlType, bytes: &[u8], index: u64) -> Option<&[u8]> {
    let size = q.block().1;
    let start = usize::try_from(index.checked_mul(size)?).ok()?;
    bytes.get(start..start.checked_add(size as usize)?)
}

/// Element `i` (counting values, row-major as listed) of a tensor of type `q` whose bytes are
/// `bytes`. `None` if it lies outside them or the type is not decoded.
pub fn value_at(q: GgmlType, bytes: &[u8], i: u64) -> Option<f32> {
    let len = q.block_len();
    let block = block_bytes(q, bytes, i / len)?;
    block_value(q, block, (i % len) as usize)
}

/// Decodes elements `first..first + n`, appending them to `out`; only the blocks they touch
/// are read. `false` (appending nothing) when they do not all lie inside `bytes` or the type is
/// not decoded.
pub fn run_f32(q: GgmlType, bytes: &[u8], first: u64, n: usize, out: &mut Vec<f32>) -> bool {
    if !supported(q) {
        return false;
    }
    let (len, size) = q.block();
    let Some(end) = first.checked_add(n as u64) else {
        return false;
    };
    if n == 0 {
        return true;
    }
    // Fewer values than a block: decode them alone (a strided walk asks for one at a time).
    if (n as u64) < len {
        let start = out.len();
        for i in first..end {
            match value_at(q, bytes, i) {
                Some(v) => out.push(v),
                None => {
                    out.truncate(start);
                    return false;
                }
            }
        }
        return true;
    }
    let (b0, b1) = (first / len, end.div_ceil(len));
    let raw = usize::try_from(b0 * size)
        .ok()
        .zip(usize::try_from(b1 * size).ok())
        .and_then(|(s, e)| bytes.get(s..e));
    let Some(raw) = raw else {
        return false;
    };
    let start = out.len();
    let blocks = (b1 - b0) as usize;
    let len = len as usize;
    out.resize(start + blocks * len, 0.0);
    for (block, dst) in raw
        .chunks_exact(size as usize)
        .zip(out[start..].chunks_exact_mut(len))
    {
        decode_block(q, block, dst);
    }
    let head = (first - b0 * len as u64) as usize;
    if head > 0 {
        out.drain(start..start + head);
    }
    out.truncate(start + n);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random bytes, with every f16 scale replaced by a sane one.
    fn random_block(q: GgmlType, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut b: Vec<u8> = (0..q.block().1)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let scale = half::f16::from_f32(0.0123).to_le_bytes();
        let positions: &[usize] = match q {
            GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 | GgmlType::IQ4_NL => &[0],
            GgmlType::IQ4_XS => &[0],
            GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
            GgmlType::Q2_K => &[80, 82],
            GgmlType::Q3_K => &[108],
            GgmlType::Q6_K => &[208],
            _ => &[],
        };
        for &p in positions {
            b[p..p + 2].copy_from_slice(&scale);
        }
        if q == GgmlType::Q8_K {
            b[..4].copy_from_slice(&0.01f32.to_le_bytes());
        }
        b
    }

    const DECODED: [GgmlType; 14] = [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::Q8_K,
        GgmlType::IQ4_NL,
        GgmlType::IQ4_XS,
        GgmlType::MXFP4,
    ];

    #[test]
    fn single_values_match_block_decoding() {
        for q in DECODED {
            assert!(supported(q));
            for seed in 1..20 {
                let b = random_block(q, seed);
                let mut out = vec![f32::NAN; q.block_len() as usize];
                decode_block(q, &b, &mut out);
                for (j, &v) in out.iter().enumerate() {
                    let one = block_value(q, &b, j).unwrap();
                    assert_eq!(one.to_bits(), v.to_bits(), "{q} seed {seed} value {j}");
                }
            }
        }
        let supported_count = GgmlType::ALL.iter().filter(|&&q| supported(q)).count();
        assert_eq!(supported_count, DECODED.len());
    }

    #[test]
    fn runs_cover_partial_blocks_and_refuse_out_of_range() {
        for q in DECODED {
            let bytes: Vec<u8> = (0..3).flat_map(|s| random_block(q, s + 7)).collect();
            let total = 3 * q.block_len();
            let all: Vec<f32> = (0..total)
                .map(|i| value_at(q, &bytes, i).unwrap())
                .collect();
            for (first, n) in [(0, total), (1, total - 1), (5, 40), (total - 3, 3), (3, 1)] {
                let mut out = vec![7.0];
                assert!(run_f32(q, &bytes, first, n as usize, &mut out), "{q}");
                assert_eq!(out[0], 7.0);
                assert_eq!(&out[1..], &all[first as usize..(first + n) as usize], "{q}");
            }
            let mut out = Vec::new();
            assert!(!run_f32(q, &bytes, 1, total as usize, &mut out));
            assert!(!run_f32(q, &bytes, total, 1, &mut out));
            assert!(out.is_empty());
            assert_eq!(value_at(q, &bytes, total), None);
        }
    }

    #[test]
    fn known_values() {
        // Q8_0: scale 0.5, codes -2 and 3.
        let mut b = vec![0u8; 34];
        b[..2].copy_from_slice(&half::f16::from_f32(0.5).to_le_bytes());
        b[2] = (-2i8) as u8;
        b[3] = 3;
        assert_eq!(value_at(GgmlType::Q8_0, &b, 0), Some(-1.0));
        assert_eq!(value_at(GgmlType::Q8_0, &b, 1), Some(1.5));
        // Q4_0: scale 1, low nibble 0 (−8) then high nibble 15 (+7) at value 16.
        let mut b = vec![0u8; 18];
        b[..2].copy_from_slice(&half::f16::from_f32(1.0).to_le_bytes());
        b[2] = 0xf0;
        assert_eq!(value_at(GgmlType::Q4_0, &b, 0), Some(-8.0));
        assert_eq!(value_at(GgmlType::Q4_0, &b, 16), Some(7.0));
        // MXFP4: exponent 127 (2^0) halved for the doubled table: code 7 (E2M1 6.0) is 6.0.
        let mut b = vec![0u8; 17];
        b[0] = 127;
        b[1] = 0x07;
        assert_eq!(value_at(GgmlType::MXFP4, &b, 0), Some(6.0));
        assert_eq!(value_at(GgmlType::IQ2_XXS, &[0u8; 66], 0), None);
    }
}
