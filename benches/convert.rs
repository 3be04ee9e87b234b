//! `ckptscope convert` of a 1 GiB F32 torch zip checkpoint, whole process, against `cp` of the
//! same file (and `cp` + `sync`, since the converter fsyncs its output), with the converter's
//! peak memory. The PyTorch route (`torch.load` + `save_file`) is timed when torch is installed.
//!
//! The converter's floor is the SHA-256 of the source it records (~0.75 s/GiB on one core); the
//! CRC-32 of every storage and the checksums that verify the copy share that read, on the
//! second core, while the first copies, reads each chunk back as it lands and starts its
//! writeback. The ratio to `cp` + `sync` is the median of paired, alternating runs
//! (`CONVERT_BENCH_PAIRS`, default 7), so a machine loaded by others loads both sides alike.
//!
//! Run: `cargo bench --no-default-features --bench convert`

mod support;

use support::*;

const TORCH_ROUTE: &str = "import sys, torch\nfrom safetensors.torch import save_file\nsd = torch.load(sys.argv[1], weights_only=True)\nsave_file({k: v.contiguous() for k, v in sd.items()}, sys.argv[2])\n";

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("model.pt");
    let out = dir.path().join("model.safetensors");
    let copy = dir.path().join("copy.pt");
    write_torch_zip(&input, 16, 16 << 20);
    let bin = ckptscope_bin();
    let (i, o, c) = (
        input.to_str().unwrap(),
        out.to_str().unwrap(),
        copy.to_str().unwrap(),
    );
    // The converter checks every CRC: a run that succeeds proves the input is well formed.
    let (code, err) = {
        let r = std::process::Command::new(&bin)
            .args(["convert", "--force", i, "-o", o])
            .output()
            .unwrap();
        (
            r.status.code(),
            String::from_utf8_lossy(&r.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(0), "{err}");
    warm_page_cache(&input);
    let runs = 5;
    println!("# convert 1 GiB (whole process, {runs} runs each, input in page cache)");
    let t_convert = time_process(runs, &bin, &["convert", "--force", i, "-o", o]);
    println!("ckptscope convert       : {t_convert}");
    let t_cp = time_shell(runs, &format!("rm -f {c}; cp {i} {c}"));
    println!("cp                      : {t_cp}");
    let t_cp_sync = time_shell(runs, &format!("rm -f {c}; cp {i} {c} && sync {c}"));
    println!("cp + sync               : {t_cp_sync}");
    println!(
        "convert / cp = {:.2}x, convert / (cp + sync) = {:.2}x (unpaired)",
        t_convert.median.as_secs_f64() / t_cp.median.as_secs_f64(),
        t_convert.median.as_secs_f64() / t_cp_sync.median.as_secs_f64()
    );
    let pairs: usize = std::env::var("CONVERT_BENCH_PAIRS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let (a, b, ratio) = time_paired(
        pairs,
        &format!("{} convert --force {i} -o {o}", bin.display()),
        &format!("rm -f {c}; cp {i} {c} && sync {c}"),
    );
    println!(
        "paired, {pairs} alternating runs: convert median {}, cp + sync median {}, convert / (cp + sync) = {ratio:.2}x paired median (target: at most 1.15x)",
        human_time(a),
        human_time(b)
    );
    let (_, peak) = run_measuring(&bin, &["convert", "--force", i, "-o", o]);
    println!(
        "convert peak memory: {} MiB resident (VmHWM), {} MiB anonymous (target: under 64 MiB)",
        peak.rss_kib / 1024,
        peak.anon_kib / 1024
    );
    if python_has(&["torch", "safetensors"]) {
        let t = time_python(3, TORCH_ROUTE, &[i, o]);
        println!("torch.load + save_file  : {t}");
    } else {
        println!("(python3 with torch not found: the PyTorch route was not timed)");
    }
}
