//! Shared by the bench binaries: timing, generated checkpoints, and the Python reference runs.
//! Every benchmark makes its own data in a temporary folder, so `cargo bench` needs no download.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Median and minimum of repeated runs.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub median: Duration,
    pub min: Duration,
    pub runs: usize,
}

impl std::fmt::Display for Timing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "median {} (min {}, {} runs)",
            ms(self.median),
            ms(self.min),
            self.runs
        )
    }
}

/// `1.234 ms`.
pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Runs `f` once to warm up, then `runs` times.
pub fn time(runs: usize, mut f: impl FnMut()) -> Timing {
    f();
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    samples.sort();
    Timing {
        median: samples[samples.len() / 2],
        min: samples[0],
        runs,
    }
}

/// Times a whole process (spawn, run, exit), output discarded.
pub fn time_process(runs: usize, program: &Path, args: &[&str]) -> Timing {
    time(runs, || {
        let status = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("spawn");
        assert!(status.success(), "{} {:?} failed", program.display(), args);
    })
}

/// The release binary built by `cargo bench`.
pub fn ckptscope_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ckptscope"))
}

/// True when `python3` can import every module named.
pub fn python_has(modules: &[&str]) -> bool {
    let code = modules
        .iter()
        .map(|m| format!("import {m}"))
        .collect::<Vec<_>>()
        .join(";");
    Command::new("python3")
        .args(["-c", &code])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Times `python3 -c code args...` as a whole process.
pub fn time_python(runs: usize, code: &str, args: &[&str]) -> Timing {
    let mut all = vec!["-c", code];
    all.extend_from_slice(args);
    time_process(runs, Path::new("python3"), &all)
}

/// Writes a safetensors file with `count` F32 tensors of `elements` each, filled with a cheap
/// deterministic pattern, streaming the data so a 1 GiB file never sits in memory.
pub fn write_f32_checkpoint(
    path: &Path,
    count: usize,
    elements: usize,
    name: impl Fn(usize) -> String,
) {
    let bytes_each = elements * 4;
    let mut header = String::from("{\"__metadata__\":{\"format\":\"pt\"}");
    for i in 0..count {
        let (b, e) = (i * bytes_each, (i + 1) * bytes_each);
        header.push_str(&format!(
            ",\"{}\":{{\"dtype\":\"F32\",\"shape\":[{elements}],\"data_offsets\":[{b},{e}]}}",
            name(i)
        ));
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    out.write_all(&(header.len() as u64).to_le_bytes()).unwrap();
    out.write_all(header.as_bytes()).unwrap();
    let mut chunk = Vec::with_capacity(1 << 20);
    let mut state = 0x2545_f491u32;
    let mut left = count * elements;
    while left > 0 {
        chunk.clear();
        let n = left.min(1 << 18);
        for _ in 0..n {
            // xorshift: values spread over [-1, 1), cheap to generate.
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let v = (state as f32 / u32::MAX as f32) * 2.0 - 1.0;
            chunk.extend_from_slice(&v.to_le_bytes());
        }
        out.write_all(&chunk).unwrap();
        left -= n;
    }
    out.flush().unwrap();
}

/// Reads a file once so its pages are in the page cache.
pub fn warm_page_cache(path: &Path) {
    let mut f = std::fs::File::open(path).unwrap();
    std::io::copy(&mut f, &mut std::io::sink()).unwrap();
}
