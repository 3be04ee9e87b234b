//! `ckptscope scan` of a 1 GiB torch zip checkpoint, whole process: only the central directory
//! and `data.pkl` are read, so the time does not grow with the weights. Compared with
//! picklescan and modelscan when they are installed (`pip install picklescan modelscan`).
//!
//! Then the hostile files that once made it scan for minutes or use gigabytes: each must scan
//! in under 1 s and 256 MiB, whole process.
//!
//! Run: `cargo bench --bench scan`

#[path = "../tests/common/bombs.rs"]
mod bombs;
mod support;

use support::*;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    bomb_figures(dir.path());
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

/// Scans each bomb five times as a whole process: median time, peak resident and anonymous
/// memory, and the exit status (1: not safe).
fn bomb_figures(dir: &std::path::Path) {
    let build = dir.join("build-bomb.pkl");
    std::fs::write(&build, bombs::build_bomb(20_000_000)).unwrap();
    let setitem = dir.join("setitem-bomb.pkl");
    std::fs::write(&setitem, bombs::setitem_bomb(80_000)).unwrap();
    let storages = dir.join("16k-storages.pt");
    let mut zip = StreamingZip::create(&storages);
    zip.member(
        "archive/data.pkl",
        &mut std::iter::once(bombs::state_dict_pickle(16_000, 1)),
    );
    for i in 0..16_000 {
        zip.member(
            &format!("archive/data/{i}"),
            &mut std::iter::once(vec![0u8; 4]),
        );
    }
    zip.member("archive/version", &mut std::iter::once(b"3\n".to_vec()));
    zip.finish();
    let bin = ckptscope_bin();
    println!("# hostile files (scan, whole process, median of 5; target < 1 s and < 256 MiB)");
    for (label, path, command) in [
        ("80,000 single SETITEMs (560 KB)", &setitem, "scan"),
        ("torch zip, 16,000 one-element storages", &storages, "scan"),
        ("torch zip, 16,000 one-element storages", &storages, "info"),
        ("`]` + `N b` x 20,000,000 (40 MB)", &build, "scan"),
    ] {
        let mut runs: Vec<(std::time::Duration, Peak, i32)> = (0..5)
            .map(|_| run_measuring_status(&bin, &[command, path.to_str().unwrap()]))
            .collect();
        runs.sort_by_key(|r| r.0);
        let (t, _, code) = runs[2];
        let rss = runs.iter().map(|r| r.1.rss_kib).max().unwrap_or(0);
        let anon = runs.iter().map(|r| r.1.anon_kib).max().unwrap_or(0);
        println!(
            "{command} {label}: {} , peak RSS {:.1} MiB (anonymous {:.1} MiB), exit {code}",
            human_time(t),
            rss as f64 / 1024.0,
            anon as f64 / 1024.0
        );
    }
}
