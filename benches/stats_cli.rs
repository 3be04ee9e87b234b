//! `ckptscope stats FILE --json` as a user runs it (whole process: start, open, map, every
//! figure, the JSON), on three 256 MiB tensors in the page cache — F32 and BF16 safetensors and a
//! GGUF Q4_K — against NumPy computing the same figures (`tests/gen/stats_bench.py`: the
//! safetensors NumPy loader, the uint16-widening for BF16, `gguf.quants.dequantize` for Q4_K)
//! when `python3` can import safetensors, numpy and gguf. The two answers are compared before
//! they are timed, so the comparison is of the same work.
//!
//! Run: `cargo bench --bench stats_cli` (with the venv's python3 first in `PATH` for the
//! comparison).

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::*;

/// One `python3 tests/gen/stats_bench.py FILE KIND`: its figures and the seconds it took.
fn numpy(path: &Path, kind: &str) -> (Value, f64) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gen/stats_bench.py");
    let text = python_stdout(&[script.as_os_str(), path.as_os_str(), kind.as_ref()]);
    let mut lines = text.lines();
    let figures = serde_json::from_str(lines.next().expect("figures")).expect("json");
    let seconds = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("seconds");
    (figures, seconds)
}

fn ckptscope_stats(path: &Path) -> Value {
    let out = Command::new(ckptscope_bin())
        .args(["stats", "--json"])
        .arg(path)
        .output()
        .expect("ckptscope");
    assert!(out.status.success(), "{out:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    doc["tensors"][0].clone()
}

/// Panics unless ckptscope and NumPy agree: the counts exactly, the moments to 1e-6, the
/// percentiles to ckptscope's stated resolution (0 when exact).
fn agree(label: &str, ours: &Value, theirs: &Value) {
    for k in ["count", "finite", "nan", "pos_inf", "neg_inf", "zeros"] {
        assert_eq!(ours[k], theirs[k], "{label}: {k}");
    }
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let scale = f(theirs, "max").abs().max(f(theirs, "min").abs());
    for k in ["min", "max", "mean", "std", "rms"] {
        let (a, b) = (f(ours, k), f(theirs, k));
        assert!(
            (a - b).abs() <= 1e-6 * scale,
            "{label}: {k} {a} vs numpy {b}"
        );
    }
    let resolution = f(ours, "percentile_resolution");
    let theirs_p = theirs["percentiles"].as_array().expect("percentiles");
    for (p, q) in ours["percentiles"]
        .as_array()
        .expect("percentiles")
        .iter()
        .zip(theirs_p)
    {
        let (a, b) = (
            p["value"].as_f64().unwrap_or(f64::NAN),
            q.as_f64().unwrap_or(f64::NAN),
        );
        assert!(
            (a - b).abs() <= resolution * 1.001 + 1e-9 * scale,
            "{label}: p{} {a} vs numpy {b} (resolution {resolution})",
            p["p"]
        );
    }
}

fn bench(label: &str, path: &Path, kind: &str, python: bool) {
    warm_page_cache(path);
    let ours = ckptscope_stats(path);
    let path_text = path.to_str().unwrap();
    let timing = time_process(5, &ckptscope_bin(), &["stats", "--json", path_text]);
    let exact = ours["percentiles_exact"] == true;
    println!(
        "{label}: ckptscope stats --json, whole process: {timing} (percentiles {})",
        if exact { "exact" } else { "from fine bins" }
    );
    if !python {
        return;
    }
    let runs: Vec<(Value, f64)> = (0..3).map(|_| numpy(path, kind)).collect();
    agree(label, &ours, &runs[0].0);
    let best = runs.iter().map(|r| r.1).fold(f64::INFINITY, f64::min);
    println!(
        "{label}: numpy (best of 3, after imports): {best:.3} s = {:.1}x the time of ckptscope",
        best / timing.median.as_secs_f64()
    );
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let f32_path = dir.path().join("f32.safetensors");
    let bf16_path = dir.path().join("bf16.safetensors");
    let q4k_path = dir.path().join("q4k.gguf");
    write_checkpoint(&f32_path, "F32", 1, 1 << 26, 11, |_| "t".into());
    write_checkpoint(&bf16_path, "BF16", 1, 1 << 27, 11, |_| "t".into());
    write_q4k(&q4k_path, Q4K_ROWS);
    let python = python_has(&["safetensors", "numpy", "gguf"]);
    if !python {
        println!("(python3 with safetensors, numpy and gguf not found: reference runs skipped)");
    }
    println!(
        "# ckptscope stats (64 bins, 7 percentiles) of one 256 MiB tensor ({} threads)",
        rayon::current_num_threads()
    );
    bench("F32 [67108864]", &f32_path, "f32", python);
    bench("BF16 [134217728]", &bf16_path, "bf16", python);
    bench(
        &format!("Q4_K [{Q4K_ROWS}, {Q4K_COLS}]"),
        &q4k_path,
        "gguf",
        python,
    );
}
