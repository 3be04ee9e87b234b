//! Statistics + a 256-bin histogram of a whole 256 MiB Q4_K tensor (477 million values,
//! dequantized block by block from the mapping, data in the page cache), a first sampled answer
//! and one row, against the `gguf` Python package (`gguf.quants.dequantize` + NumPy, the script
//! `tests/gen/gguf_bench.py`) when `python3` can import `gguf` and `numpy`.
//!
//! Run: `cargo bench --bench gguf` (with the venv's python3 first in `PATH` for the comparison).

mod support;

use ckptscope::analysis::{self, Control, SliceSpec, View};
use support::*;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q4k.gguf");
    write_q4k(&path, Q4K_ROWS);
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
