//! Every container reader through the public entry point: the bytes are written to a file and
//! opened as a user's double-click would (safetensors, zip/legacy/tar torch, npy/npz, raw
//! pickles), with suspicious and dangerous files read too, then every tensor's bytes are taken
//! and analysed as the inspector would (a sample, then the exact statistics and histogram).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let _ = ckptscope::pickle::container::torch_zip(data);
    let Ok(mut file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if file.write_all(data).is_err() {
        return;
    }
    let mut options = ckptscope::format::OpenOptions::default();
    options.pickle.trust = Some(ckptscope::pickle::ScanVerdict::Dangerous);
    if let Ok(ckpt) = ckptscope::format::open_with(file.path(), &options) {
        let control = ckptscope::analysis::Control::default();
        for t in &ckpt.tensors {
            let _ = ckpt.tensor_bytes(t);
            // Expanded views can name 10^12 elements over one stored value: a real but slow
            // computation (with progress and cancel in the app), not what this target looks for.
            if t.elements() > 1 << 20 {
                continue;
            }
            let Ok(src) = ckptscope::analysis::source(&ckpt, t) else {
                continue;
            };
            let view = ckptscope::analysis::View::of(t);
            let _ = ckptscope::analysis::analyze_sample(&src, &view, 16, 64);
            let _ = ckptscope::analysis::analyze(&src, &view, 16, &control);
        }
    }
});
