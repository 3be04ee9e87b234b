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
    write_checkpoint(path, "F32", count, elements, 0x2545_f491, name)
}

/// [`write_f32_checkpoint`] for `F32` or `BF16`, with a chosen seed (two seeds: two checkpoints
/// whose every value differs).
pub fn write_checkpoint(
    path: &Path,
    dtype: &str,
    count: usize,
    elements: usize,
    seed: u32,
    name: impl Fn(usize) -> String,
) {
    let elem = if dtype == "BF16" { 2 } else { 4 };
    let bytes_each = elements * elem;
    let mut header = String::from("{\"__metadata__\":{\"format\":\"pt\"}");
    for i in 0..count {
        let (b, e) = (i * bytes_each, (i + 1) * bytes_each);
        header.push_str(&format!(
            ",\"{}\":{{\"dtype\":\"{dtype}\",\"shape\":[{elements}],\"data_offsets\":[{b},{e}]}}",
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
    let mut state = seed;
    let mut left = count * elements;
    while left > 0 {
        let n = left.min(1 << 18);
        let chunk = random_f32_bytes(&mut state, n);
        if elem == 2 {
            let bf: Vec<u8> = chunk.chunks_exact(4).flat_map(|c| [c[2], c[3]]).collect();
            out.write_all(&bf).unwrap();
        } else {
            out.write_all(&chunk).unwrap();
        }
        left -= n;
    }
    out.flush().unwrap();
}

/// Peak growth of this process's anonymous memory while `f` runs (sampled every millisecond).
pub fn anon_growth_kib<T>(f: impl FnOnce() -> T) -> (T, u64) {
    fn anon() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("RssAnon:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }
    let base = anon();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = done.clone();
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        while !d.load(std::sync::atomic::Ordering::Relaxed) {
            peak = peak.max(anon());
            std::thread::sleep(Duration::from_millis(1));
        }
        peak.max(anon())
    });
    let out = f();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    (out, peak.saturating_sub(base))
}

/// Runs `python3 ARGS...` and gives what it printed; a failure stops the bench with its stderr.
pub fn python_stdout<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let out = Command::new("python3")
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a Python script that prints its own compute time in seconds on its last line.
pub fn python_seconds(code: &str, args: &[&str]) -> f64 {
    let mut all = vec!["-c", code];
    all.extend_from_slice(args);
    python_stdout(&all)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("seconds")
}

/// Reads a file once so its pages are in the page cache.
pub fn warm_page_cache(path: &Path) {
    let mut f = std::fs::File::open(path).unwrap();
    std::io::copy(&mut f, &mut std::io::sink()).unwrap();
}

/// Writes a `torch.save`-style zip checkpoint: an OrderedDict of `count` F32 tensors
/// (`layers.{i}.weight`, shape `[elements/1024, 1024]`), storages stored 64-byte aligned,
/// streamed so a 1 GiB file never sits in memory.
pub fn write_torch_zip(path: &Path, count: usize, elements: usize) {
    assert!(elements.is_multiple_of(1024));
    let mut pkl = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(".to_vec();
    for i in 0..count {
        let name = format!("layers.{i}.weight");
        pkl.push(b'X');
        pkl.extend_from_slice(&(name.len() as u32).to_le_bytes());
        pkl.extend_from_slice(name.as_bytes());
        pkl.extend_from_slice(
            b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n",
        );
        let key = i.to_string();
        pkl.push(b'X');
        pkl.extend_from_slice(&(key.len() as u32).to_le_bytes());
        pkl.extend_from_slice(key.as_bytes());
        pkl.extend_from_slice(b"X\x03\x00\x00\x00cpuJ");
        pkl.extend_from_slice(&(elements as u32).to_le_bytes());
        pkl.extend_from_slice(b"tQK\x00J");
        pkl.extend_from_slice(&((elements / 1024) as u32).to_le_bytes());
        pkl.extend_from_slice(b"M\x00\x04\x86M\x00\x04K\x01\x86\x89h\x00)RtR");
    }
    pkl.extend_from_slice(b"u.");
    let mut zip = StreamingZip::create(path);
    zip.member("archive/data.pkl", &mut std::iter::once(pkl));
    zip.member(
        "archive/byteorder",
        &mut std::iter::once(b"little".to_vec()),
    );
    let mut state = 0x1234_5678u32;
    for i in 0..count {
        let mut left = elements;
        let mut chunks = std::iter::from_fn(|| {
            if left == 0 {
                return None;
            }
            let n = left.min(1 << 18);
            left -= n;
            Some(random_f32_bytes(&mut state, n))
        });
        zip.member(&format!("archive/data/{i}"), &mut chunks);
    }
    zip.member("archive/version", &mut std::iter::once(b"3\n".to_vec()));
    zip.finish();
}

/// `n` pseudo-random F32 values in [-1, 1) as little-endian bytes.
pub fn random_f32_bytes(state: &mut u32, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 4);
    for _ in 0..n {
        *state ^= *state << 13;
        *state ^= *state >> 17;
        *state ^= *state << 5;
        let v = (*state as f32 / u32::MAX as f32) * 2.0 - 1.0;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// A zip writer for stored members whose sizes and CRC-32s are only known once written (data
/// descriptors are not needed: they are patched into the local header, as torch's writer does).
pub struct StreamingZip {
    file: std::fs::File,
    at: u64,
    central: Vec<u8>,
    count: u16,
}

impl StreamingZip {
    pub fn create(path: &Path) -> Self {
        StreamingZip {
            file: std::fs::File::create(path).unwrap(),
            at: 0,
            central: Vec::new(),
            count: 0,
        }
    }

    pub fn member(&mut self, name: &str, chunks: &mut dyn Iterator<Item = Vec<u8>>) {
        use std::io::{Seek, SeekFrom};
        let offset = self.at;
        let pad = ((64 - (offset as usize + 30 + name.len() + 4) % 64) % 64) as u16;
        let mut header = Vec::new();
        header.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        header.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        header.extend_from_slice(&[0u8; 12]); // crc, sizes: patched below
        header.extend_from_slice(&(name.len() as u16).to_le_bytes());
        header.extend_from_slice(&(4 + pad).to_le_bytes());
        header.extend_from_slice(name.as_bytes());
        header.extend_from_slice(&0xcafeu16.to_le_bytes());
        header.extend_from_slice(&pad.to_le_bytes());
        header.extend(std::iter::repeat_n(b'Z', pad as usize));
        self.file.write_all(&header).unwrap();
        let mut size = 0u64;
        let mut crc = crc32fast::Hasher::new();
        for chunk in chunks {
            self.file.write_all(&chunk).unwrap();
            crc.update(&chunk);
            size += chunk.len() as u64;
        }
        let crc = crc.finalize().to_le_bytes();
        let end = offset + header.len() as u64 + size;
        self.file.seek(SeekFrom::Start(offset + 14)).unwrap();
        self.file.write_all(&crc).unwrap();
        self.file.write_all(&(size as u32).to_le_bytes()).unwrap();
        self.file.write_all(&(size as u32).to_le_bytes()).unwrap();
        self.file.seek(SeekFrom::Start(end)).unwrap();
        self.at = end;
        let c = &mut self.central;
        c.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        c.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        c.extend_from_slice(&crc);
        c.extend_from_slice(&(size as u32).to_le_bytes());
        c.extend_from_slice(&(size as u32).to_le_bytes());
        c.extend_from_slice(&(name.len() as u16).to_le_bytes());
        c.extend_from_slice(&[0u8; 12]);
        c.extend_from_slice(&(offset as u32).to_le_bytes());
        c.extend_from_slice(name.as_bytes());
        self.count += 1;
    }

    pub fn finish(mut self) {
        let cd_offset = self.at as u32;
        self.file.write_all(&self.central).unwrap();
        let mut eocd = 0x0605_4b50u32.to_le_bytes().to_vec();
        eocd.extend_from_slice(&[0, 0, 0, 0]);
        eocd.extend_from_slice(&self.count.to_le_bytes());
        eocd.extend_from_slice(&self.count.to_le_bytes());
        eocd.extend_from_slice(&(self.central.len() as u32).to_le_bytes());
        eocd.extend_from_slice(&cd_offset.to_le_bytes());
        eocd.extend_from_slice(&[0, 0]);
        self.file.write_all(&eocd).unwrap();
    }
}

/// Peak memory of a process: resident set (including touched pages of memory-mapped files,
/// which the page cache shares) and anonymous memory (what the process allocated itself).
#[derive(Clone, Copy, Debug, Default)]
pub struct Peak {
    pub rss_kib: u64,
    pub anon_kib: u64,
}

/// Runs a process, polling `/proc/<pid>/status` every millisecond for its peak memory; the
/// process must succeed.
pub fn run_measuring(program: &Path, args: &[&str]) -> (Duration, Peak) {
    let (elapsed, peak, code) = run_measuring_status(program, args);
    assert_eq!(code, 0, "{} {:?} failed", program.display(), args);
    (elapsed, peak)
}

/// `1.23 s` or `12.3 ms`.
pub fn human_time(d: Duration) -> String {
    if d.as_secs_f64() >= 1.0 {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }
}

/// Runs a shell command line (for reference tools such as `cp`), `runs` times after one warm-up.
pub fn time_shell(runs: usize, script: &str) -> Timing {
    time(runs, || {
        shell_once(script);
    })
}

/// Runs a shell command line once, output discarded; returns how long it took.
pub fn shell_once(script: &str) -> Duration {
    let start = Instant::now();
    let status = Command::new("sh")
        .args(["-c", script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{script}");
    start.elapsed()
}

/// True when `program` is on the PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// [`run_measuring`] for a process whose exit status is part of the answer (a scan that finds
/// something exits 1): returns it instead of asserting success.
pub fn run_measuring_status(program: &Path, args: &[&str]) -> (Duration, Peak, i32) {
    let start = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = Peak::default();
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_path) {
            for line in text.lines() {
                let kib = |l: &str| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                if line.starts_with("VmHWM:") {
                    peak.rss_kib = peak.rss_kib.max(kib(line));
                } else if line.starts_with("RssAnon:") {
                    peak.anon_kib = peak.anon_kib.max(kib(line));
                }
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (start.elapsed(), peak, status.code().unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Values per row of [`write_q4k`]'s tensor: 16 Q4_K blocks of 256.
pub const Q4K_COLS: u64 = 4096;
/// Rows that make [`write_q4k`]'s tensor 256 MiB: 116,508 × 16 blocks × 144 bytes = 256.0 MiB.
pub const Q4K_ROWS: u64 = 116_508;

/// A GGUF v3 file holding one Q4_K tensor `t` of `rows` × [`Q4K_COLS`] with random codes and
/// sane f16 scales, written block by block.
pub fn write_q4k(path: &Path, rows: u64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut header = b"GGUF".to_vec();
    header.extend_from_slice(&3u32.to_le_bytes());
    header.extend_from_slice(&1u64.to_le_bytes());
    header.extend_from_slice(&0u64.to_le_bytes());
    header.extend_from_slice(&1u64.to_le_bytes());
    header.push(b't');
    header.extend_from_slice(&2u32.to_le_bytes());
    header.extend_from_slice(&Q4K_COLS.to_le_bytes());
    header.extend_from_slice(&rows.to_le_bytes());
    header.extend_from_slice(&12u32.to_le_bytes());
    header.extend_from_slice(&0u64.to_le_bytes());
    header.resize(header.len().next_multiple_of(32), 0);
    out.write_all(&header).unwrap();
    let mut x = 0x9E37_79B9u32;
    let mut block = [0u8; 144];
    for _ in 0..rows * Q4K_COLS / 256 {
        for b in block.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        let d = half::f16::from_f32(0.001 + (x % 1000) as f32 * 4e-5).to_le_bytes();
        let dmin = half::f16::from_f32(0.002 + (x % 777) as f32 * 3e-5).to_le_bytes();
        block[..2].copy_from_slice(&d);
        block[2..4].copy_from_slice(&dmin);
        out.write_all(&block).unwrap();
    }
    out.flush().unwrap();
}

/// Runs the shell command lines `a` and `b` alternately (`a b b a a b ...`, after one warm-up
/// each), `runs` pairs: on a machine others load, each pair sees about the same load. Returns
/// both medians and the median of the per-pair ratios `a / b`.
pub fn time_paired(runs: usize, a: &str, b: &str) -> (Duration, Duration, f64) {
    let once = shell_once;
    once(a);
    once(b);
    let mut ta = Vec::new();
    let mut tb = Vec::new();
    let mut ratios = Vec::new();
    for i in 0..runs {
        let (x, y) = if i % 2 == 0 {
            let x = once(a);
            (x, once(b))
        } else {
            let y = once(b);
            (once(a), y)
        };
        ratios.push(x.as_secs_f64() / y.as_secs_f64());
        ta.push(x);
        tb.push(y);
    }
    ta.sort();
    tb.sort();
    ratios.sort_by(f64::total_cmp);
    (ta[runs / 2], tb[runs / 2], ratios[runs / 2])
}
