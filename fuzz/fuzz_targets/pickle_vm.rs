//! The pickle VM and the verdict on arbitrary bytes: never a panic, and never more work than the
//! file's budget (opcodes, streams, findings), and a stopped analysis is never `safe`.
#![no_main]

use ckptscope::pickle::{self, policy::Policy, policy::Verdict, vm};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut limits = ckptscope::Limits::DEFAULT;
    for a in ["ops=200000", "nodes=50000", "streams=64", "findings=64", "inflated=4M"] {
        limits.apply(a).unwrap();
    }
    let mut events = Vec::new();
    let _ = vm::run(data, 0, &mut vm::Budget::new(limits.pickle, None), &mut events);
    let policy = Policy::with_allow(Vec::new());
    let format = ckptscope::detect::detect(data);
    let a = pickle::analyze(data, format, &policy, &limits, None);
    let ops: u64 = a.streams.iter().map(|s| s.opcodes).sum();
    assert!(ops <= 200_001);
    assert!(a.streams.len() <= 64);
    assert!(a.findings.len() <= 3 * 64 + 4);
    if a.stopped.is_some() {
        assert_ne!(a.verdict, Verdict::Safe);
    }
});
