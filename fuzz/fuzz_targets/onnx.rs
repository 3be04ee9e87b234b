//! ONNX models from arbitrary bytes: the wire reader, the model parser, detection, opening (as a
//! double-click would, with the bytes as `model.onnx` in a folder of its own that also holds
//! a small `w.bin`, so external data can be found) and the scan; then every tensor's bytes
//! are taken and analysed as the inspector does. Never a panic; decoding stays within the
//! budget; a model is never both unparseable and "safe".
#![no_main]

use ckptscope::archive::protobuf::Fields;
use ckptscope::pickle::policy::{Policy, Verdict};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for f in Fields::new(data, 0).take(1 << 16) {
        if f.is_err() {
            break;
        }
    }
    let parsed = ckptscope::format::onnx::proto::parse(data);
    let _ = ckptscope::detect::looks_like_onnx(data);
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let path = dir.path().join("model.onnx");
    if std::fs::write(&path, data).is_err() || std::fs::write(dir.path().join("w.bin"), [0u8; 256]).is_err() {
        return;
    }
    let mut limits = ckptscope::Limits::DEFAULT;
    limits.apply("inflated=16M").unwrap();
    if let Ok(r) = ckptscope::scan::scan_file(&path, &Policy::default(), &limits)
        && r.format == ckptscope::Format::Onnx
    {
        assert!(parsed.is_ok() || r.verdict != Verdict::Safe);
    }
    let Ok(ckpt) = ckptscope::format::open_with_limits(&path, &limits) else {
        return;
    };
    let control = ckptscope::analysis::Control::default();
    for t in &ckpt.tensors {
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
});
