//! `ckptscope convert` of a 1 GiB F32 torch zip checkpoint, whole process, against `cp` of the
//! same file (and `cp` + `sync`, since the converter fsyncs its output), with the converter's
//! peak memory. The PyTorch route (`torch.load` + `save_file`) is timed when torch is installed.
//!
//! The converter's floor is the SHA-256 of the source it records (~0.75 s/GiB on one core); the
//! CRC-32 of every storage and the checksums that verify the copy share that read, on the
//! second core, while the first copies and reads the output back.
//!
//! Run: `cargo bench --no-default-features --bench convert`

mod support;

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use support::*;

const TORCH_ROUTE: &str = "import sys, torch\nfrom safetensors.torch import save_file\nsd = torch.load(sys.argv[1], weights_only=True)\nsave_file({k: v.contiguous() for k, v in sd.items()}, sys.argv[2])\n";

/// The shared generator leaves CRC-32s at 0 (fine for readers that do not check them);
/// `convert` checks them, so the real CRC of every member is written into its local header and
/// its central-directory record, as torch does.
fn patch_crcs(path: &Path) {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let len = f.metadata().unwrap().len();
    let tail_len = len.min(1 << 20);
    let mut tail = vec![0u8; tail_len as usize];
    f.seek(SeekFrom::Start(len - tail_len)).unwrap();
    f.read_exact(&mut tail).unwrap();
    let eocd = tail.len() - 22;
    assert_eq!(&tail[eocd..eocd + 4], b"PK\x05\x06");
    let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]) as usize;
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let count = u16_at(&tail, eocd + 10);
    let cd_offset = u64::from(u32_at(&tail, eocd + 16));
    let mut at = (cd_offset - (len - tail_len)) as usize;
    let mut buf = vec![0u8; 1 << 22];
    for _ in 0..count {
        assert_eq!(u32_at(&tail, at), 0x0201_4b50);
        let size = u64::from(u32_at(&tail, at + 24));
        let local = u64::from(u32_at(&tail, at + 42));
        let mut header = [0u8; 30];
        f.seek(SeekFrom::Start(local)).unwrap();
        f.read_exact(&mut header).unwrap();
        let data = local + 30 + (u16_at(&header, 26) + u16_at(&header, 28)) as u64;
        let mut crc = crc32fast::Hasher::new();
        let mut left = size;
        f.seek(SeekFrom::Start(data)).unwrap();
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            f.read_exact(&mut buf[..n]).unwrap();
            crc.update(&buf[..n]);
            left -= n as u64;
        }
        let crc = crc.finalize().to_le_bytes();
        f.seek(SeekFrom::Start(local + 14)).unwrap();
        f.write_all(&crc).unwrap();
        f.seek(SeekFrom::Start(len - tail_len + at as u64 + 16))
            .unwrap();
        f.write_all(&crc).unwrap();
        at += 46 + u16_at(&tail, at + 28) + u16_at(&tail, at + 30) + u16_at(&tail, at + 32);
    }
    f.sync_all().unwrap();
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("model.pt");
    let out = dir.path().join("model.safetensors");
    let copy = dir.path().join("copy.pt");
    write_torch_zip(&input, 16, 16 << 20);
    patch_crcs(&input);
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
        "convert / cp = {:.2}x, convert / (cp + sync) = {:.2}x (target: at most 1.3x cp + sync)",
        t_convert.median.as_secs_f64() / t_cp.median.as_secs_f64(),
        t_convert.median.as_secs_f64() / t_cp_sync.median.as_secs_f64()
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
