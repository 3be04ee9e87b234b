//! Statistics + a 256-bin histogram of a whole 256 MiB Q4_K tensor (477 million values,
//! dequantized block by block from the mapping, data in the page cache), a first sampled answer
//! and one row, against the `gguf` Python package (`gguf.quants.dequantize` + NumPy, the script
//! `tests/gen/gguf_bench.py`) when `python3` can import `gguf` and `numpy`.
//!
//! Run: `cargo bench --bench gguf` (with the venv's python3 first in `PATH` for the comparison).

mod support;

use std::io::Write;

use ckptscope::analysis::{self, Control, SliceSpec, View};
use support::*;

/// Values per row: 16 Q4_K blocks of 256.
const COLS: u64 = 4096;
/// Rows: 116,508 × 16 blocks × 144 bytes = 256.0 MiB.
const ROWS: u64 = 116_508;

/// A GGUF v3 file holding one Q4_K tensor `t` of `ROWS` × `COLS` with random codes and sane
/// f16 scales, written block by block.
fn write_q4k(path: &std::path::Path) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut header = b"GGUF".to_vec();
    header.extend_from_slice(&3u32.to_le_bytes());
    header.extend_from_slice(&1u64.to_le_bytes());
    header.extend_from_slice(&0u64.to_le_bytes());
    header.extend_from_slice(&1u64.to_le_bytes());
    header.push(b't');
    header.extend_from_slice(&2u32.to_le_bytes());
    header.extend_from_slice(&COLS.to_le_bytes());
    header.extend_from_slice(&ROWS.to_le_bytes());
    header.extend_from_slice(&12u32.to_le_bytes());
    header.extend_from_slice(&0u64.to_le_bytes());
    header.resize(header.len().next_multiple_of(32), 0);
    out.write_all(&header).unwrap();
    let mut x = 0x9E37_79B9u32;
    let mut block = [0u8; 144];
    for _ in 0..ROWS * COLS / 256 {
        for b in block.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        let d = half::f16::from_f32(0.001 + (x % 1000) as f32 * 4e-5).to_le_bytes();
        let dmin = half::f16::from_f32(0.002 + (x % 777) as f32 * 3e-5).to_le_bytes();
        block[..2].copy_from_slice(&d);
        block[2..4].copy_from_slice(&dmin);
        out.write_all(&block).unwrap();
    }
    out.flush().unwrap();
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q4k.gguf");
    write_q4k(&path);
    warm_page_cache(&path);
    let ckpt = ckptscope::open(&path).unwrap();
    let t = ckpt.require("t").unwrap();
    let bytes = t.byte_len();
    let src = analysis::source(&ckpt, t).unwrap();
    let view = View::of(t);
    println!(
        "# stats + 256-bin histogram of a Q4_K tensor {:?}, {} MiB, {} M values ({} threads)",
        t.shape,
        bytes >> 20,
        t.elements() / 1_000_000,
        rayon::current_num_threads()
    );
    let timing = time(5, || {
        std::hint::black_box(analysis::analyze(&src, &view, 256, &Control::default()).unwrap());
    });
    let (a, anon) =
        anon_growth_kib(|| analysis::analyze(&src, &view, 256, &Control::default()).unwrap());
    let values = t.elements() as f64 / timing.median.as_secs_f64() / 1e9;
    println!(
        "whole tensor: {timing} = {:.2} GB/s of blocks, {values:.2} G values/s, anonymous memory +{anon} KiB",
        bytes as f64 / timing.median.as_secs_f64() / 1e9
    );
    println!(
        "  mean {:.6} std {:.6} min {} max {}",
        a.stats.mean, a.stats.std, a.stats.min, a.stats.max
    );
    let sample = time(20, || {
        std::hint::black_box(analysis::analyze_sample(&src, &view, 256, 16_384).unwrap());
    });
    println!("first (sampled) answer, 16,384 values: {sample}");
    let row = View::select(t, &SliceSpec::parse("[70000, :]").unwrap()).unwrap();
    let one = time(20, || {
        std::hint::black_box(analysis::analyze(&src, &row, 256, &Control::default()).unwrap());
    });
    println!("one row (16 blocks): {one}");
    let column = View::select(t, &SliceSpec::parse("[:, 1000]").unwrap()).unwrap();
    let col = time(5, || {
        std::hint::black_box(analysis::analyze(&src, &column, 256, &Control::default()).unwrap());
    });
    println!("one column (116,508 values, one per row): {col}");
    if python_has(&["gguf", "numpy"]) {
        let script = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gen/gguf_bench.py"),
        )
        .unwrap();
        let secs: Vec<f64> = (0..3)
            .map(|_| python_seconds(&script, &[path.to_str().unwrap(), "t"]))
            .collect();
        let best = secs.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "gguf.quants.dequantize + numpy (best of 3): {best:.3} s = {:.1}x slower",
            best / timing.median.as_secs_f64()
        );
    } else {
        println!("(python3 with gguf+numpy not found: reference run skipped)");
    }
}
