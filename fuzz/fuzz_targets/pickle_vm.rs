//! The pickle VM and the verdict on arbitrary bytes: never a panic, always within the limits.
#![no_main]

use ckptscope::pickle::{self, policy::Policy, vm};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = vm::PickleLimits::default();
    let _ = vm::run(data, 0, &limits);
    let policy = Policy::with_allow(Vec::new());
    let format = ckptscope::format::detect::detect(data);
    let _ = pickle::analyze(data, format, &policy, &limits);
});
