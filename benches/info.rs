//! `ckptscope info --json`, whole process, on generated files: 20,000 tensors, and 1 MiB vs 1 GiB
//! (open time must not grow with data size). Compared with Python `safe_open` listing keys and
//! shapes when Python's safetensors is installed.
//!
//! Run: `cargo bench --bench info`

mod support;

use support::*;

const PY_LIST: &str = "import sys\nfrom safetensors import safe_open\nwith safe_open(sys.argv[1], 'np') as f:\n    shapes = {k: f.get_slice(k).get_shape() for k in f.keys()}\n";

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let many = dir.path().join("many.safetensors");
    let small = dir.path().join("1mib.safetensors");
    let big = dir.path().join("1gib.safetensors");
    write_f32_checkpoint(&many, 20_000, 16, |i| {
        format!("model.layers.{}.block.{}.weight", i / 100, i % 100)
    });
    write_f32_checkpoint(&small, 4, 1 << 16, |i| format!("t{i}"));
    write_f32_checkpoint(&big, 4, 1 << 26, |i| format!("t{i}"));
    let bin = ckptscope_bin();
    let runs = 50;

    println!("# info (whole process, {runs} runs each)");
    let t_many = time_process(runs, &bin, &["info", "--json", many.to_str().unwrap()]);
    println!("ckptscope info --json, 20,000 tensors : {t_many}");
    let t_small = time_process(runs, &bin, &["info", "--json", small.to_str().unwrap()]);
    println!("ckptscope info --json, 1 MiB file     : {t_small}");
    let t_big = time_process(runs, &bin, &["info", "--json", big.to_str().unwrap()]);
    println!("ckptscope info --json, 1 GiB file     : {t_big}");

    println!("# open only (in process, {runs} runs each)");
    for (label, path) in [
        ("20,000 tensors", &many),
        ("1 MiB", &small),
        ("1 GiB", &big),
    ] {
        let t = time(runs, || {
            std::hint::black_box(ckptscope::open(path).unwrap());
        });
        println!("ckptscope::open, {label:<15}: {t}");
    }

    if python_has(&["safetensors", "numpy"]) {
        let py = time_python(10, PY_LIST, &[many.to_str().unwrap()]);
        println!("# reference");
        println!("python safe_open keys+shapes, 20,000 tensors: {py}");
        println!(
            "speed-up on 20,000 tensors: {:.1}x",
            py.median.as_secs_f64() / t_many.median.as_secs_f64()
        );
    } else {
        println!("(python3 with safetensors+numpy not found: reference run skipped)");
    }
}
