//! Statistics + a 256-bin histogram over a whole 1 GiB F32 tensor and a 512 MiB BF16 tensor,
//! data in the page cache, in process, against NumPy (`safe_open(..., "np")` + `np.histogram`
//! + min/max/mean/std) when Python has safetensors and numpy.
//!
//! Run: `cargo bench --bench stats`

mod support;

use ckptscope::analysis::{self, Control, View};
use support::*;

const NUMPY: &str = "import sys, time\nimport numpy as np\nfrom safetensors import safe_open\nt = time.perf_counter()\nwith safe_open(sys.argv[1], 'np') as f:\n    x = f.get_tensor('t')\nx = x.astype(np.float32) if x.dtype != np.float32 else x\nfinite = x[np.isfinite(x)]\nh = np.histogram(finite, bins=256)\nr = (finite.min(), finite.max(), finite.mean(), finite.std())\nprint(time.perf_counter() - t)\n";

/// NumPy has no bfloat16 (and `safe_open(..., "np")` refuses BF16 without ml_dtypes): the
/// Python route maps the bytes as `uint16` and widens them to `float32` itself.
const NUMPY_BF16: &str = "import sys, time, json, struct\nimport numpy as np\nt = time.perf_counter()\nwith open(sys.argv[1], 'rb') as f:\n    n = struct.unpack('<Q', f.read(8))[0]\n    b, e = json.loads(f.read(n))['t']['data_offsets']\nraw = np.memmap(sys.argv[1], dtype=np.uint16, mode='r', offset=8 + n + b, shape=((e - b) // 2,))\nx = (raw.astype(np.uint32) << 16).view(np.float32)\nfinite = x[np.isfinite(x)]\nh = np.histogram(finite, bins=256)\nr = (finite.min(), finite.max(), finite.mean(), finite.std())\nprint(time.perf_counter() - t)\n";

fn bench(label: &str, path: &std::path::Path, bytes: u64, numpy: Option<&str>) {
    warm_page_cache(path);
    let ckpt = ckptscope::open(path).unwrap();
    let t = ckpt.require("t").unwrap();
    let src = analysis::source(&ckpt, t).unwrap();
    let view = View::of(t);
    let timing = time(5, || {
        std::hint::black_box(analysis::analyze(&src, &view, 256, &Control::default()).unwrap());
    });
    let (_, anon) =
        anon_growth_kib(|| analysis::analyze(&src, &view, 256, &Control::default()).unwrap());
    let gbs = bytes as f64 / timing.median.as_secs_f64() / 1e9;
    println!("{label}: {timing} = {gbs:.2} GB/s, anonymous memory +{anon} KiB");
    let sample = time(20, || {
        std::hint::black_box(analysis::analyze_sample(&src, &view, 256, 16_384).unwrap());
    });
    println!("{label}, first (sampled) answer: {sample}");
    if let Some(script) = numpy {
        let secs: Vec<f64> = (0..3)
            .map(|_| python_seconds(script, &[path.to_str().unwrap()]))
            .collect();
        let best = secs.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "{label}, numpy (best of 3): {:.3} s = {:.1}x slower",
            best,
            best / timing.median.as_secs_f64()
        );
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let f32_path = dir.path().join("f32.safetensors");
    let bf16_path = dir.path().join("bf16.safetensors");
    write_checkpoint(&f32_path, "F32", 1, 1 << 28, 7, |_| "t".into());
    write_checkpoint(&bf16_path, "BF16", 1, 1 << 28, 7, |_| "t".into());
    let numpy_ok = python_has(&["safetensors", "numpy"]);
    if !numpy_ok {
        println!("(python3 with safetensors+numpy not found: reference runs skipped)");
    }
    println!(
        "# stats + 256-bin histogram of a whole tensor ({} threads)",
        rayon::current_num_threads()
    );
    bench(
        "1 GiB F32 (268M elements)",
        &f32_path,
        1 << 30,
        numpy_ok.then_some(NUMPY),
    );
    bench(
        "512 MiB BF16 (268M elements)",
        &bf16_path,
        1 << 29,
        numpy_ok.then_some(NUMPY_BF16),
    );
}
