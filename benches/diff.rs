//! `diff` of two 1 GiB F32 checkpoints (16 tensors of 64 MiB, every value different), data in
//! the page cache, in process; against reading both files once (`cat a b > /dev/null`) and the
//! Python route (safetensors numpy + per-tensor numpy measures).
//!
//! Run: `cargo bench --bench diff`

mod support;

use ckptscope::analysis::diff;
use ckptscope::progress::Progress;
use support::*;

const NUMPY: &str = "import sys, time\nimport numpy as np\nfrom safetensors.numpy import load_file\nt = time.perf_counter()\na = load_file(sys.argv[1]); b = load_file(sys.argv[2])\nfor k in a:\n    x = a[k].astype(np.float64); y = b[k].astype(np.float64); d = x - y\n    r = (np.abs(d).max(), np.abs(d).mean(), np.linalg.norm(d) / np.linalg.norm(x), np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y)), np.count_nonzero(d))\nprint(time.perf_counter() - t)\n";

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = (
        dir.path().join("a.safetensors"),
        dir.path().join("b.safetensors"),
    );
    let name = |i| format!("layers.{i}.weight");
    write_checkpoint(&pa, "F32", 16, 16 << 20, 11, name);
    write_checkpoint(&pb, "F32", 16, 16 << 20, 12, name);
    warm_page_cache(&pa);
    warm_page_cache(&pb);
    let (a, b) = (ckptscope::open(&pa).unwrap(), ckptscope::open(&pb).unwrap());
    println!(
        "# diff of two 1 GiB F32 checkpoints ({} threads)",
        rayon::current_num_threads()
    );
    let t = time(3, || {
        std::hint::black_box(diff::diff(&a, &b, &Progress::default()));
    });
    let (_, anon) = anon_growth_kib(|| diff::diff(&a, &b, &Progress::default()));
    println!("ckptscope diff, all values changed : {t}, anonymous memory +{anon} KiB");
    let a2 = ckptscope::open(&pa).unwrap();
    let same = time(3, || {
        std::hint::black_box(diff::diff(&a, &a2, &Progress::default()));
    });
    println!("ckptscope diff, a file with itself  : {same}");
    let cat = time_shell(
        3,
        &format!("cat {} {} > /dev/null", pa.display(), pb.display()),
    );
    println!("cat a b > /dev/null (one read each) : {cat}");
    println!(
        "diff / read both once = {:.2}x",
        t.median.as_secs_f64() / cat.median.as_secs_f64()
    );
    if python_has(&["safetensors", "numpy"]) {
        let secs: Vec<f64> = (0..2)
            .map(|_| python_seconds(NUMPY, &[pa.to_str().unwrap(), pb.to_str().unwrap()]))
            .collect();
        let best = secs.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "python safetensors+numpy (best of 2): {best:.3} s = {:.1}x slower",
            best / t.median.as_secs_f64()
        );
    } else {
        println!("(python3 with safetensors+numpy not found: reference run skipped)");
    }
}
