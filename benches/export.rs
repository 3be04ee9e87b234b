//! `ckptscope export --to pytorch` of a 1 GiB F32 safetensors file, whole process, against
//! `cp` of the same file (and `cp` + `sync`, since the exporter fsyncs its output), with the
//! exporter's peak memory. The Python route (`safetensors.torch.load_file` + `torch.save`) is
//! timed when torch and safetensors are importable by `python3`.
//!
//! The exporter's floor is the SHA-256 of the source it records (~0.75 s/GiB on one core),
//! taken on the second core while the first copies the storages (with their CRC-32) and then
//! reads the output back.
//!
//! Run: `cargo bench --no-default-features --bench export` (the data takes 2 GiB in `$TMPDIR`).

mod support;

use support::*;

const TORCH_ROUTE: &str = "import sys, torch\nfrom safetensors.torch import load_file\ntorch.save(load_file(sys.argv[1]), sys.argv[2])\n";

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("model.safetensors");
    let out = dir.path().join("pytorch_model.bin");
    let copy = dir.path().join("copy.safetensors");
    write_f32_checkpoint(&input, 16, 16 << 20, |i| format!("layers.{i}.weight"));
    let bin = ckptscope_bin();
    let (i, o, c) = (
        input.to_str().unwrap(),
        out.to_str().unwrap(),
        copy.to_str().unwrap(),
    );
    let args = ["export", "--to", "pytorch", "--force", i, "-o", o];
    let r = std::process::Command::new(&bin)
        .args(args)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    warm_page_cache(&input);
    let runs = 5;
    println!(
        "# export 1 GiB safetensors -> pytorch_model.bin (whole process, {runs} runs each, input in page cache)"
    );
    // Like `cp` below, each run starts without an output (a replaced output would need room for
    // both until the new one is linked in).
    let t_export = time_shell(
        runs,
        &format!("rm -f {o}; {} {}", bin.display(), args.join(" ")),
    );
    println!("ckptscope export        : {t_export}");
    let t_cp = time_shell(runs, &format!("rm -f {c}; cp {i} {c}"));
    println!("cp                      : {t_cp}");
    let t_cp_sync = time_shell(runs, &format!("rm -f {c}; cp {i} {c} && sync {c}"));
    println!("cp + sync               : {t_cp_sync}");
    println!(
        "export / cp = {:.2}x, export / (cp + sync) = {:.2}x",
        t_export.median.as_secs_f64() / t_cp.median.as_secs_f64(),
        t_export.median.as_secs_f64() / t_cp_sync.median.as_secs_f64()
    );
    let (_, peak) = run_measuring(&bin, &args);
    println!(
        "export peak memory: {} MiB resident (VmHWM), {} MiB anonymous",
        peak.rss_kib / 1024,
        peak.anon_kib / 1024
    );
    if python_has(&["torch", "safetensors"]) {
        let t = time_python(3, TORCH_ROUTE, &[i, o]);
        println!("load_file + torch.save  : {t}");
    } else {
        println!("(python3 with torch and safetensors not found: the Python route was not timed)");
    }
}
