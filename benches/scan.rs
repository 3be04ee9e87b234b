//! `ckptscope scan` of a 1 GiB torch zip checkpoint, whole process: only the central directory
//! and `data.pkl` are read, so the time does not grow with the weights. Compared with
//! picklescan and modelscan when they are installed (`pip install picklescan modelscan`).
//!
//! Run: `cargo bench --bench scan`

mod support;

use support::*;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("model-1gib.pt");
    let small = dir.path().join("model-16mib.pt");
    write_torch_zip(&big, 16, 16 << 20);
    write_torch_zip(&small, 16, 256 << 10);
    warm_page_cache(&big);
    let bin = ckptscope_bin();
    println!("# scan (whole process)");
    let scan = |path: &std::path::Path| time_process(30, &bin, &["scan", path.to_str().unwrap()]);
    let t_big = scan(&big);
    println!("ckptscope scan, 1 GiB zip checkpoint : {t_big}");
    println!("ckptscope scan, 16 MiB zip checkpoint: {}", scan(&small));
    for (tool, args) in [("picklescan", vec!["-p"]), ("modelscan", vec!["-p"])] {
        if !have(tool) {
            println!("({tool} not installed: reference run skipped)");
            continue;
        }
        let mut a = args.clone();
        a.push(big.to_str().unwrap());
        // Both exit non-zero on some inputs; only the time matters here.
        let t = time(3, || {
            let _ = std::process::Command::new(tool)
                .args(&a)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        });
        println!(
            "{tool} -p, 1 GiB zip checkpoint: {t} ({:.0}x slower)",
            t.median.as_secs_f64() / t_big.median.as_secs_f64()
        );
    }
}
