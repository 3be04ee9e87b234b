//! `diff` of two checkpoints: statuses, measures against an independent computation,
//! identity, cross-format and cross-dtype comparison, JSON and exit codes.

use crate::common;

use ckptscope::analysis::diff::{self, Status};
use ckptscope::progress::Progress;
use common::{fixture, run, safetensors_bytes, write_temp};

fn open(name: &str) -> ckptscope::Checkpoint {
    ckptscope::open(&fixture(name)).unwrap()
}

fn f32s(c: &ckptscope::Checkpoint, name: &str) -> Vec<f64> {
    let t = c.require(name).unwrap();
    c.tensor_bytes(t)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        .collect()
}

#[test]
fn lineage_pair_statuses_are_exact() {
    let (a, b) = (
        open("st_lineage_v1.safetensors"),
        open("st_lineage_v2.safetensors"),
    );
    let d = diff::diff(&a, &b, &Progress::default());
    let status = |n: &str| d.tensors.iter().find(|t| t.name == n).unwrap().status;
    assert_eq!(status("1.bias"), Status::OnlyInA);
    assert_eq!(status("extra.bias"), Status::OnlyInB);
    for n in ["0.weight", "0.bias", "1.weight", "3.bias", "3.weight"] {
        assert_eq!(status(n), Status::ValuesChanged, "{n}");
    }
    // The re-initialised head is the largest change, listed first among the compared pairs.
    let compared: Vec<&str> = d
        .tensors
        .iter()
        .filter(|t| t.measures.is_some())
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(compared[0], "3.weight");
    let head = d
        .tensors
        .iter()
        .find(|t| t.name == "3.weight")
        .unwrap()
        .measures
        .clone()
        .unwrap();
    let noise = d
        .tensors
        .iter()
        .find(|t| t.name == "0.weight")
        .unwrap()
        .measures
        .clone()
        .unwrap();
    assert!(
        head.rel_l2 > 1.0 && noise.rel_l2 < 0.1,
        "{} {}",
        head.rel_l2,
        noise.rel_l2
    );
    assert_eq!(
        d.metadata.added,
        [(
            "parent".to_string(),
            "st_lineage_v1.safetensors".to_string()
        )]
    );
    assert!(
        d.metadata
            .changed
            .iter()
            .any(|(k, x, y)| k == "step" && x == "1000" && y == "2000")
    );
}

#[test]
fn measures_match_an_independent_computation() {
    let (a, b) = (
        open("st_lineage_v1.safetensors"),
        open("st_lineage_v2.safetensors"),
    );
    let d = diff::diff(&a, &b, &Progress::default());
    for name in ["3.weight", "0.weight", "3.bias"] {
        let (x, y) = (f32s(&a, name), f32s(&b, name));
        let n = x.len() as f64;
        let dif: Vec<f64> = x.iter().zip(&y).map(|(p, q)| p - q).collect();
        let max_abs = dif.iter().map(|v| v.abs()).fold(0.0, f64::max);
        let mean_abs = dif.iter().map(|v| v.abs()).sum::<f64>() / n;
        let norm = |v: &[f64]| v.iter().map(|e| e * e).sum::<f64>().sqrt();
        let rel = norm(&dif) / norm(&x);
        let cos = x.iter().zip(&y).map(|(p, q)| p * q).sum::<f64>() / (norm(&x) * norm(&y));
        let m = d
            .tensors
            .iter()
            .find(|t| t.name == name)
            .unwrap()
            .measures
            .clone()
            .unwrap();
        assert_eq!(m.count, x.len() as u64);
        assert_eq!(
            m.differing,
            dif.iter().filter(|v| **v != 0.0).count() as u64
        );
        assert_eq!(m.max_abs_diff, max_abs, "{name}");
        assert!((m.mean_abs_diff - mean_abs).abs() < 1e-12, "{name}");
        assert!((m.rel_l2 - rel).abs() < 1e-12, "{name}");
        assert!((m.cosine - cos).abs() < 1e-12, "{name}");
        let t = (a.require(name).unwrap(), b.require(name).unwrap());
        let h = diff::diff_histogram(&a, t.0, &b, t.1, &m, 10, &Progress::default()).unwrap();
        assert_eq!(h.counts.iter().sum::<u64>(), x.len() as u64);
        assert_eq!((h.lo, h.hi), (m.min_diff, m.max_diff));
    }
}

#[test]
fn a_file_against_itself_is_identical() {
    let a = open("st_basic.safetensors");
    let b = open("st_basic.safetensors");
    let d = diff::diff(&a, &b, &Progress::default());
    assert!(d.is_identical());
    assert!(
        d.tensors
            .iter()
            .all(|t| t.status == Status::Identical && t.measures.is_none())
    );
    let (code, out, _) = run(&[
        "diff",
        fixture("st_basic.safetensors").to_str().unwrap(),
        fixture("st_basic.safetensors").to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("identical"), "{out}");
}

#[test]
fn a_pickle_and_its_conversion_are_identical() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("views.pt");
    std::fs::copy(fixture("torch_views.pt"), &input).unwrap();
    let report =
        ckptscope::convert::convert(&input, &Default::default(), &Progress::default()).unwrap();
    let a = ckptscope::open(&input).unwrap();
    let b = ckptscope::open(&report.output).unwrap();
    let d = diff::diff(&a, &b, &Progress::default());
    assert!(
        d.tensors.iter().all(|t| t.status == Status::Identical),
        "{:#?}",
        d.tensors
    );
}

#[test]
fn different_dtypes_of_the_same_shape_are_compared_by_value() {
    let values = [1.0f32, -2.5, 3.25, 0.0];
    let f32_bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let bf16_bytes: Vec<u8> = values
        .iter()
        .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
        .collect();
    let (_d1, pa) = write_temp(
        "a.safetensors",
        &safetensors_bytes(
            r#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#,
            &f32_bytes,
        ),
    );
    let (_d2, pb) = write_temp(
        "b.safetensors",
        &safetensors_bytes(
            r#"{"w":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]}}"#,
            &bf16_bytes,
        ),
    );
    let (a, b) = (ckptscope::open(&pa).unwrap(), ckptscope::open(&pb).unwrap());
    let d = diff::diff(&a, &b, &Progress::default());
    let t = &d.tensors[0];
    assert_eq!(t.status, Status::DtypeChanged);
    let m = t.measures.as_ref().unwrap();
    assert_eq!(
        (m.differing, m.max_abs_diff),
        (0, 0.0),
        "exactly representable in BF16"
    );
    assert!((m.cosine - 1.0).abs() < 1e-12);
}

#[test]
fn json_follows_the_documented_shape_and_exit_codes() {
    let (code, out, _) = run(&[
        "diff",
        "--json",
        fixture("st_lineage_v1.safetensors").to_str().unwrap(),
        fixture("st_lineage_v2.safetensors").to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for key in ["a", "b", "summary", "tensors", "metadata"] {
        assert!(v.get(key).is_some(), "{key}");
    }
    for key in ["added", "removed", "changed"] {
        assert!(v["metadata"][key].is_array(), "{key}");
    }
    let t = v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "3.weight")
        .unwrap();
    for key in [
        "status",
        "dtype_a",
        "dtype_b",
        "shape_a",
        "shape_b",
        "max_abs_diff",
        "mean_abs_diff",
        "rel_l2",
        "cosine",
    ] {
        assert!(t.get(key).is_some(), "{key}");
    }
    assert_eq!(t["status"], "values_changed");
    let only = v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "1.bias")
        .unwrap();
    assert_eq!(only["status"], "only_in_a");
    assert!(only["dtype_b"].is_null());
    let (code, _, err) = run(&[
        "diff",
        "/nope.safetensors",
        fixture("st_basic.safetensors").to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("/nope.safetensors"));
}

#[test]
fn renames_are_suggested() {
    let bytes = 1.5f32.to_le_bytes();
    let (_d1, pa) = write_temp(
        "a.safetensors",
        &safetensors_bytes(
            r#"{"old.w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
            &bytes,
        ),
    );
    let (_d2, pb) = write_temp(
        "b.safetensors",
        &safetensors_bytes(
            r#"{"new.w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
            &bytes,
        ),
    );
    let d = diff::diff(
        &ckptscope::open(&pa).unwrap(),
        &ckptscope::open(&pb).unwrap(),
        &Progress::default(),
    );
    assert_eq!(d.renames, [("old.w".to_string(), "new.w".to_string())]);
}

#[test]
fn two_versions_of_a_real_ordered_pairs_checkpoint_differ() {
    // LPIPS v0.0 and v0.1 weights (2018, legacy `OrderedDict([[name, tensor], ...])`): once read
    // as one and the same empty model; every tensor changed between the versions.
    let (a, b) = (
        open("real/lpips_v0.0_alex.pth"),
        open("real/lpips_v0.1_alex.pth"),
    );
    assert_eq!(a.tensors.len(), 5);
    let d = diff::diff(&a, &b, &Progress::default());
    assert_eq!(d.tensors.len(), 5);
    assert!(
        d.tensors.iter().all(|t| t.status == Status::ValuesChanged),
        "{:?}",
        d.tensors
            .iter()
            .map(|t| (&t.name, t.status))
            .collect::<Vec<_>>()
    );
}
