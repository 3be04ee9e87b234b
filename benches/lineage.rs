//! `ckptscope lineage` of a folder of 200 safetensors checkpoints, each naming the previous
//! one as its parent (headers only, no hashing), whole process and in process; then folders of
//! 2,000 and 10,000 checkpoints whose parents are named by file name or by relative path (the
//! linking must stay well under a second at 10,000).
//!
//! Run: `cargo bench --bench lineage`

mod support;

use std::io::Write;

use ckptscope::lineage::{LineageOptions, family};
use ckptscope::progress::Progress;
use support::*;

/// A folder of `n` checkpoints, each naming the previous one by name or by `./name`.
fn chain(n: usize, path_style: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..n {
        let parent = if i == 0 {
            String::new()
        } else if path_style {
            format!(",\"parent\":\"./ckpt-{}.safetensors\"", i - 1)
        } else {
            format!(",\"parent\":\"ckpt-{}.safetensors\"", i - 1)
        };
        let header = format!(
            "{{\"__metadata__\":{{\"step\":\"{i}\"{parent}}},\"w\":{{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}}}"
        );
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&[0u8; 4]);
        std::fs::write(dir.path().join(format!("ckpt-{i}.safetensors")), bytes).unwrap();
    }
    dir
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..200 {
        let parent = if i > 0 {
            format!(",\"parent\":\"checkpoint-{}.safetensors\"", (i - 1) * 500)
        } else {
            String::new()
        };
        let header = format!(
            "{{\"__metadata__\":{{\"version\":\"{i}\",\"step\":\"{}\",\"created\":\"2026-01-01\"{parent}}},\"w\":{{\"dtype\":\"F32\",\"shape\":[1024],\"data_offsets\":[0,4096]}}}}",
            i * 500
        );
        let mut f = std::fs::File::create(
            dir.path()
                .join(format!("checkpoint-{}.safetensors", i * 500)),
        )
        .unwrap();
        f.write_all(&(header.len() as u64).to_le_bytes()).unwrap();
        f.write_all(header.as_bytes()).unwrap();
        f.write_all(&[0u8; 4096]).unwrap();
    }
    let bin = ckptscope_bin();
    let folder = dir.path().to_str().unwrap();
    println!("# lineage of a folder of 200 checkpoints");
    let t = time_process(20, &bin, &["lineage", "--json", folder]);
    println!("ckptscope lineage --json (whole process): {t}");
    let inproc = time(20, || {
        let g = family(dir.path(), &LineageOptions::default(), &Progress::default()).unwrap();
        assert_eq!(g.edges.len(), 199);
        std::hint::black_box(g);
    });
    println!("lineage::family (in process)            : {inproc}");
    for (n, path_style, runs) in [(2_000, false, 5), (2_000, true, 5), (10_000, false, 3)] {
        let dir = chain(n, path_style);
        let t = time(runs, || {
            let g = family(dir.path(), &LineageOptions::default(), &Progress::default()).unwrap();
            assert_eq!(g.edges.len(), n - 1);
            std::hint::black_box(g);
        });
        let style = if path_style { "path" } else { "name" };
        println!("lineage::family, {n} files, parents by {style}: {t}");
    }
}
