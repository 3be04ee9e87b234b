//! Statistics of real fixtures: the pickle path (strided views of torch storages) and the
//! safetensors path (contiguous ranges) agree on every dtype, and F32/F64/integer statistics
//! match values computed here directly from the bytes.

use crate::common;

use ckptscope::analysis::{self, Control, SliceSpec, View};
use common::fixture;

fn analyze(ckpt: &ckptscope::Checkpoint, name: &str, slice: &str) -> analysis::Analysis {
    let t = ckpt.require(name).unwrap();
    let src = analysis::source(ckpt, t).unwrap();
    let view = View::select(t, &SliceSpec::parse(slice).unwrap()).unwrap();
    analysis::analyze(&src, &view, 16, &Control::default()).unwrap()
}

#[test]
fn pickle_and_safetensors_paths_agree_on_every_dtype() {
    let pt = ckptscope::open(&fixture("torch_dtypes.pt")).unwrap();
    let st = ckptscope::open(&fixture("st_dtypes.safetensors")).unwrap();
    assert_eq!(pt.tensors.len(), 16);
    for t in &st.tensors {
        for slice in ["", "[1]", "[:, 1:4]", "[::2, -1]"] {
            let a = analyze(&pt, &t.name, slice);
            let b = analyze(&st, &t.name, slice);
            assert_eq!(a.stats.count, b.stats.count, "{} {slice}", t.name);
            assert_eq!(format!("{:?}", a), format!("{:?}", b), "{} {slice}", t.name);
        }
    }
}

#[test]
fn f32_stats_match_a_direct_computation() {
    let st = ckptscope::open(&fixture("st_basic.safetensors")).unwrap();
    for t in &st.tensors {
        let bytes = st.tensor_bytes(t).unwrap();
        let values: Vec<f64> = bytes
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect();
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let a = analyze(&st, &t.name, "");
        assert_eq!(a.stats.count, values.len() as u64);
        assert!(
            (a.stats.mean - mean).abs() <= 1e-12 * (1.0 + mean.abs()),
            "{}",
            t.name
        );
        assert!(
            (a.stats.std - std).abs() <= 1e-12 * (1.0 + std),
            "{}",
            t.name
        );
        assert_eq!((a.stats.min, a.stats.max), (min, max), "{}", t.name);
        assert_eq!(a.histogram.counts.iter().sum::<u64>(), values.len() as u64);
    }
}

#[test]
fn integer_and_bool_stats_are_exact() {
    let st = ckptscope::open(&fixture("st_dtypes.safetensors")).unwrap();
    let t = st.require("i64").unwrap();
    let bytes = st.tensor_bytes(t).unwrap();
    let values: Vec<i64> = bytes
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let a = analyze(&st, "i64", "");
    assert_eq!(a.stats.min, *values.iter().min().unwrap() as f64);
    assert_eq!(a.stats.max, *values.iter().max().unwrap() as f64);
    assert_eq!(
        a.stats.zeros,
        values.iter().filter(|&&v| v == 0).count() as u64
    );
    let b = analyze(&st, "bool", "");
    let bits = st.tensor_bytes(st.require("bool").unwrap()).unwrap();
    let ones = bits.iter().filter(|&&x| x != 0).count() as f64;
    assert!((b.stats.mean - ones / bits.len() as f64).abs() < 1e-12);
}
