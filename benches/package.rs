//! Model folders as packages: `ckptscope info DIR` and `ckptscope convert DIR` on a generated
//! Trainer-like run of N checkpoint folders (each a `pytorch_model.bin` and an `optimizer.pt`
//! torch zip, a `config.json` and a `trainer_state.json`), whole process, page cache warm.
//!
//! `info` scans every pickle and lists every file; `convert` converts the N models (the
//! optimizer states are skipped as training state), streamed and verified, one after the other.
//! `cp -r` of the same folder is the floor a conversion of everything is measured against.
//!
//! Run: `cargo bench --no-default-features --bench package`

mod support;

use std::path::Path;

use support::*;

/// Writes a run of `points` checkpoint folders, each model `tensors` × `elements` F32.
fn write_run(root: &Path, points: usize, tensors: usize, elements: usize) {
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(
        root.join("config.json"),
        r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": "float32"}"#,
    )
    .unwrap();
    for p in 1..=points {
        let dir = root.join(format!("checkpoint-{}", p * 500));
        std::fs::create_dir_all(&dir).unwrap();
        write_torch_zip(&dir.join("pytorch_model.bin"), tensors, elements);
        write_torch_zip(&dir.join("optimizer.pt"), tensors, elements);
        std::fs::write(dir.join("config.json"), "{}").unwrap();
        std::fs::write(
            dir.join("trainer_state.json"),
            format!(r#"{{"global_step": {}, "log_history": []}}"#, p * 500),
        )
        .unwrap();
    }
}

fn folder_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            folder_bytes(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

fn warm(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            warm(&entry.path());
        } else {
            warm_page_cache(&entry.path());
        }
    }
}

fn main() {
    let bin = ckptscope_bin();
    for (points, tensors, elements) in [(100, 4, 1024), (8, 16, 1 << 20)] {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        write_run(&run, points, tensors, elements);
        let files = 1 + points * 4;
        let bytes = folder_bytes(&run);
        let r = run.to_str().unwrap();
        warm(&run);
        let runs = 5;
        println!(
            "# {points} checkpoint folders, {files} files, {} MiB ({} pickles, models of {} MiB)",
            bytes >> 20,
            points * 2,
            (tensors * elements * 4) >> 20
        );
        let t_info = time_process(runs, &bin, &["info", r]);
        println!("ckptscope info DIR          : {t_info}");
        // `info` exits 0 (every pickle here is safe) and `convert --force` rewrites every model.
        let t_convert = time_process(runs, &bin, &["convert", "--force", r]);
        println!("ckptscope convert DIR       : {t_convert}");
        let copy = tmp.path().join("copy");
        let c = copy.to_str().unwrap();
        let t_cp = time_shell(runs, &format!("rm -rf {c}; cp -r {r} {c}"));
        println!("cp -r (models + optimizers) : {t_cp}");
        println!(
            "convert per model: {:.1} ms; convert / cp -r = {:.2}x (convert writes half the bytes cp -r does)",
            t_convert.median.as_secs_f64() * 1e3 / points as f64,
            t_convert.median.as_secs_f64() / t_cp.median.as_secs_f64()
        );
        let (_, peak) = run_measuring(&bin, &["convert", "--force", r]);
        println!(
            "convert DIR peak memory: {} MiB resident (VmHWM)",
            peak.rss_kib / 1024
        );
    }
}
