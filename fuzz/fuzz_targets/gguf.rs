//! The GGUF reader on arbitrary bytes: the header parser directly (which must answer with a
//! value or a `GgufProblem`, never panic, within a small budget), then the bytes opened as a
//! file, every decodable tensor analysed as the inspector does (a sample, the exact statistics
//! and histogram, a heatmap preview and a few values), and the scan's answer. Seed it with
//! `tests/fixtures/gguf/`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    // GGUF files start with the magic: put it there so the fuzzer explores the header.
    let mut bytes = b"GGUF".to_vec();
    bytes.extend_from_slice(data.get(4..).unwrap_or(&[]));
    let limits = ckptscope::Limits::DEFAULT;
    let _ = ckptscope::format::gguf::parse(&bytes, &limits);
    let _ = ckptscope::format::gguf::scan_findings(&bytes, &limits);
    let Ok(mut file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if file.write_all(&bytes).is_err() {
        return;
    }
    let Ok(ckpt) = ckptscope::format::open_with_limits(file.path(), &limits) else {
        return;
    };
    let control = ckptscope::analysis::Control::default();
    for t in &ckpt.tensors {
        let _ = ckpt.tensor_bytes(t);
        if t.elements() > 1 << 20 {
            continue;
        }
        let Ok(src) = ckptscope::analysis::source(&ckpt, t) else {
            continue;
        };
        let view = ckptscope::analysis::View::of(t);
        let _ = ckptscope::analysis::stats::analyze_sample(&src, &view, 16, 64);
        let _ = ckptscope::analysis::stats::analyze(&src, &view, 16, &control);
        if view.shape.len() == 2 {
            let _ = ckptscope::analysis::heatmap::heatmap_preview(&src, &view, 8, 8);
            let _ = ckptscope::analysis::heatmap::values_grid(&src, &view, 0, 2, 0, 2);
        }
    }
});
