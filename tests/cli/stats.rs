//! `ckptscope stats`, run as a user runs it, against NumPy's figures for the same arrays read by
//! each format's own library (`tests/gen/stats_truth.py` writes `tests/fixtures/stats/truth.json`).

use crate::common;

use std::process::{Command, Stdio};

use common::{fixture, run};
use serde_json::Value;

fn truth() -> Value {
    let text = std::fs::read_to_string(fixture("stats/truth.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn stats_json(args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["stats", "--json"];
    all.extend_from_slice(args);
    let (code, out, err) = run(&all);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?} {err}"));
    (code, v, err)
}

/// Checks one tensor's figures (a `tensors` entry of `--json`) against NumPy's.
fn check(what: &str, got: &Value, want: &Value) {
    for k in ["count", "finite", "nan", "pos_inf", "neg_inf", "zeros"] {
        assert_eq!(got[k], want[k], "{what}: {k}");
    }
    if want["finite"] == 0 {
        for k in ["min", "max", "mean", "std", "rms"] {
            assert!(got[k].is_null(), "{what}: {k} {}", got[k]);
        }
        return;
    }
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or_else(|| panic!("{what}: {k} {v}"));
    // Exact, but for complex magnitudes, which may differ in the last bit (a hypotenuse is
    // rounded either way).
    let ulps = if got["dtype"] == "C64" { 4e-16 } else { 0.0 };
    for k in ["min", "max"] {
        let (g, w) = (f(got, k), f(want, k));
        assert!(
            (g - w).abs() <= ulps * w.abs(),
            "{what}: {k} {g} vs numpy {w}"
        );
    }
    let scale = f(want, "max").abs().max(f(want, "min").abs());
    for k in ["mean", "std", "rms"] {
        let (g, w) = (f(got, k), f(want, k));
        assert!(
            (g - w).abs() <= 1e-9 * scale.max(w.abs()) + 1e-12 * scale,
            "{what}: {k} {g} vs numpy {w}"
        );
    }
    let exact = got["percentiles_exact"].as_bool().unwrap();
    let resolution = f(got, "percentile_resolution");
    assert_eq!(exact, resolution == 0.0, "{what}");
    let ps = got["percentiles"].as_array().unwrap();
    let wants = want["percentiles"].as_array().unwrap();
    assert_eq!(ps.len(), wants.len(), "{what}");
    for (p, w) in ps.iter().zip(wants) {
        let (g, w) = (p["value"].as_f64().unwrap(), w.as_f64().unwrap());
        if exact {
            assert_eq!(g, w, "{what}: p{} {g} vs numpy {w}", p["p"]);
        } else {
            assert!(
                (g - w).abs() <= resolution * 1.001 + 1e-12 * scale,
                "{what}: p{} {g} vs numpy {w} (resolution {resolution})",
                p["p"]
            );
        }
    }
    // The bins are NumPy's: same edges, same counts, except that a value on an edge may fall on
    // either side of it by rounding (NumPy's bin arithmetic is not ckptscope's). Quantized
    // tensors sit on a grid that does hit edges, so each count may move to its neighbour: the
    // running totals stay within a few values of NumPy's.
    let h = &got["histogram"];
    let counts: Vec<u64> = h["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    let want_counts: Vec<u64> = want["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert_eq!(
        counts.iter().sum::<u64>(),
        f(want, "finite") as u64,
        "{what}"
    );
    assert_eq!(counts.len(), want_counts.len(), "{what}: bins");
    let slack = 3 + f(want, "finite") as u64 / 1000;
    let (mut ours, mut theirs) = (0u64, 0u64);
    for (a, b) in counts.iter().zip(&want_counts) {
        ours += a;
        theirs += b;
        assert!(
            ours.abs_diff(theirs) <= slack,
            "{what}: histogram {counts:?} vs numpy {want_counts:?}"
        );
    }
    if f(want, "min") < f(want, "max") {
        assert_eq!(h["lo"], got["min"], "{what}: histogram lo");
        assert_eq!(h["hi"], got["max"], "{what}: histogram hi");
    }
}

#[test]
fn every_format_matches_numpy() {
    let truth = truth();
    for (file, tensors) in truth.as_object().unwrap() {
        let path = fixture(file);
        let (code, v, err) = stats_json(&[path.to_str().unwrap()]);
        let errors = v["errors"].as_u64().unwrap();
        assert_eq!(code, i32::from(errors > 0), "{file}: {err}");
        let got: std::collections::BTreeMap<&str, &Value> = v["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["name"].as_str().unwrap(), t))
            .collect();
        for (name, slices) in tensors.as_object().unwrap() {
            let g = got
                .get(name.as_str())
                .unwrap_or_else(|| panic!("{file}: no `{name}` in {v}"));
            assert!(g["sampled"].is_null(), "{file} {name}");
            check(&format!("{file} {name}"), g, &slices[""]);
        }
    }
}

#[test]
fn slices_match_numpy_indexing() {
    let truth = truth();
    let mut checked = 0;
    for (file, tensors) in truth.as_object().unwrap() {
        for (name, slices) in tensors.as_object().unwrap() {
            for (slice, want) in slices.as_object().unwrap() {
                if slice.is_empty() {
                    continue;
                }
                let path = fixture(file);
                let (code, v, err) =
                    stats_json(&[path.to_str().unwrap(), "--tensor", name, "--slice", slice]);
                assert_eq!(code, 0, "{file} {name}{slice}: {err}");
                // The slice is printed back as given (these are all in its canonical spelling).
                assert_eq!(v["slice"], slice.as_str(), "{file} {name}");
                let t = &v["tensors"][0];
                assert_eq!(t["count"], want["count"]);
                check(&format!("{file} {name}{slice}"), t, want);
                checked += 1;
            }
        }
    }
    assert!(checked >= 12, "{checked}");
}

#[test]
fn special_values_are_counted_apart() {
    let path = fixture("stats/special.safetensors");
    let (code, v, _) = stats_json(&[path.to_str().unwrap(), "--tensor", "f32"]);
    assert_eq!(code, 0);
    let t = &v["tensors"][0];
    assert_eq!(
        (&t["nan"], &t["pos_inf"], &t["neg_inf"]),
        (&Value::from(3), &Value::from(1), &Value::from(1))
    );
    assert_eq!(t["count"], 5000);
    assert_eq!(t["finite"], 4995);
    assert!(t["zeros"].as_u64().unwrap() >= 7);
}

#[test]
fn globs_select_in_file_order_once() {
    let path = fixture("st_basic.safetensors");
    let (code, v, _) = stats_json(&[
        path.to_str().unwrap(),
        "--tensor",
        "*.BIAS",
        "--tensor",
        "0.*",
    ]);
    assert_eq!(code, 0);
    let names: Vec<&str> = v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["0.bias", "0.weight", "1.bias", "3.bias"]);
    let (_, v, _) = stats_json(&[path.to_str().unwrap(), "--tensor", "?.weight"]);
    assert_eq!(v["tensors"].as_array().unwrap().len(), 3);
}

#[test]
fn unknown_names_list_close_names_and_exit_2() {
    let path = fixture("st_basic.safetensors");
    let (code, out, err) = run(&["stats", path.to_str().unwrap(), "--tensor", "0.weigth"]);
    assert_eq!(code, 2);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("no tensor named `0.weigth`; close names: `0.weight`"),
        "{err}"
    );
    let (code, _, err) = run(&["stats", path.to_str().unwrap(), "--tensor", "layers.*"]);
    assert_eq!(code, 2);
    assert!(err.contains("no tensor matches `layers.*`"), "{err}");
    // One good name does not excuse a bad one.
    let (code, out, _) = run(&[
        "stats",
        path.to_str().unwrap(),
        "--tensor",
        "0.weight",
        "--tensor",
        "nope",
    ]);
    assert_eq!((code, out.as_str()), (2, ""));
}

#[test]
fn bad_slices_are_errors() {
    let path = fixture("st_basic.safetensors");
    let p = path.to_str().unwrap();
    let (code, _, err) = run(&["stats", p, "--slice", "[0:2, x]"]);
    assert_eq!(code, 2);
    assert!(err.contains("`x` is not an integer"), "{err}");
    let (code, _, err) = run(&["stats", p, "--slice", "[::0]"]);
    assert_eq!(code, 2);
    assert!(err.contains("the step must be a positive integer"), "{err}");
    // A slice that fits some tensors and not others: each says why, exit 1.
    let (code, v, _) = stats_json(&[p, "--slice", "[0, 3]"]);
    assert_eq!(code, 1);
    // The four 1-D tensors (0.bias, 1.weight, 1.bias, 3.bias).
    assert_eq!(v["errors"], 4);
    let bias = v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "0.bias")
        .unwrap();
    assert_eq!(bias["error"], "2 selections for a tensor with 1 dimensions");
    assert!(bias["selected_shape"].is_null() && bias.get("count").is_none());
    let (code, _, _) = stats_json(&[p, "--tensor", "0.weight", "--slice", "[16]"]);
    assert_eq!(code, 1);
    let (_, v, _) = stats_json(&[p, "--tensor", "0.weight", "--slice", "[16]"]);
    assert_eq!(
        v["tensors"][0]["error"],
        "index 16 is out of range for dimension 0 of size 16"
    );
}

#[test]
fn unsupported_ggml_types_say_so_and_exit_1() {
    let path = fixture("gguf/blocks.gguf");
    let (code, v, _) = stats_json(&[path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(v["errors"], 1);
    let bad: Vec<&Value> = v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t.get("error").is_some())
        .collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0]["dtype"], "IQ2_XXS");
    assert!(
        bad[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("statistics not supported for IQ2_XXS"),
        "{}",
        bad[0]
    );
    let (code, out, _) = run(&["stats", path.to_str().unwrap(), "--tensor", "iq2*"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("  error: statistics not supported for IQ2_XXS"),
        "{out}"
    );
    assert!(
        out.contains("1 of 1 tensors could not be measured"),
        "{out}"
    );
}

#[test]
fn json_has_the_documented_shape() {
    let path = fixture("stats/special.safetensors");
    let (code, v, err) = stats_json(&[path.to_str().unwrap(), "--bins", "7"]);
    assert_eq!(code, 0, "{err}");
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&v),
        [
            "bins", "errors", "format", "path", "sample", "slice", "tensors"
        ]
    );
    assert_eq!(
        (&v["format"], &v["bins"], &v["errors"]),
        (
            &Value::from("safetensors"),
            &Value::from(7),
            &Value::from(0)
        )
    );
    assert!(v["slice"].is_null() && v["sample"].is_null());
    let t = &v["tensors"][0];
    assert_eq!(
        keys(t),
        [
            "count",
            "dtype",
            "finite",
            "histogram",
            "max",
            "mean",
            "min",
            "name",
            "nan",
            "neg_inf",
            "percentile_resolution",
            "percentiles",
            "percentiles_exact",
            "pos_inf",
            "rms",
            "sampled",
            "selected_shape",
            "shape",
            "std",
            "zeros"
        ]
    );
    assert_eq!(keys(&t["histogram"]), ["counts", "hi", "lo"]);
    assert_eq!(t["histogram"]["counts"].as_array().unwrap().len(), 7);
    assert_eq!(t["histogram"]["lo"], t["min"]);
    let ps: Vec<f64> = t["percentiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["p"].as_f64().unwrap())
        .collect();
    assert_eq!(ps, [1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0]);
    // BF16 is counted by bit pattern: exact percentiles; F32 reads them from fine bins.
    let by = |n: &str| {
        v["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by("bf16")["percentiles_exact"], true);
    assert_eq!(by("f32")["percentiles_exact"], false);
}

#[test]
fn sample_marks_results_sampled() {
    let path = fixture("stats/special.safetensors");
    let p = path.to_str().unwrap();
    let (code, v, _) = stats_json(&[p, "--tensor", "f32", "--sample", "100"]);
    assert_eq!(code, 0);
    assert_eq!(v["sample"], 100);
    let t = &v["tensors"][0];
    let n = t["sampled"].as_u64().unwrap();
    assert!((90..=110).contains(&n), "{t}");
    assert_eq!(t["count"].as_u64().unwrap(), n);
    // Without a count: the window's first answer, 16,384 elements; a tensor that small is
    // measured whole, so exactly.
    let (_, v, _) = stats_json(&[p, "--tensor", "f32", "--sample"]);
    assert!(v["tensors"][0]["sampled"].is_null());
    assert_eq!(v["tensors"][0]["count"], 5000);
    let (_, out, _) = run(&["stats", p, "--tensor", "bf16", "--sample", "50"]);
    assert!(out.contains("  sampled: "), "{out}");
    assert!(out.contains(" of 4096 elements, evenly spaced"), "{out}");
}

#[test]
fn human_output_is_one_aligned_block_per_tensor() {
    let path = fixture("stats/special.safetensors");
    let (code, out, err) = run(&["stats", path.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(err.is_empty(), "no progress line off a terminal: {err}");
    assert!(
        out.starts_with(&format!(
            "{} (safetensors, 4 of 4 tensors)\n",
            path.display()
        )),
        "{out}"
    );
    let blocks: Vec<&str> = out.split("\n\n").skip(1).collect();
    assert_eq!(blocks.len(), 4, "{out}");
    let f32_block = blocks
        .iter()
        .find(|b| b.starts_with("f32  F32  [100, 50]"))
        .unwrap();
    let lines: Vec<&str> = f32_block.lines().collect();
    for (i, key) in ["count", "min", "mean", "rms"].iter().enumerate() {
        assert!(lines[i + 1].starts_with(&format!("  {key}")), "{f32_block}");
    }
    let col = lines[1].find("finite").unwrap();
    assert_eq!(lines[2].find("max"), Some(col), "{f32_block}");
    assert_eq!(lines[3].find("std"), Some(col), "{f32_block}");
    assert!(lines[2].ends_with("NaN    3"), "{f32_block}");
    assert!(
        lines[5].starts_with("  percentiles (≈, within "),
        "{f32_block}"
    );
    assert!(
        lines[6].starts_with("  histogram  64 bins over ["),
        "{f32_block}"
    );
    assert!(lines[7].contains('█'), "{f32_block}");
    let bf16 = blocks.iter().find(|b| b.starts_with("bf16  BF16")).unwrap();
    assert!(bf16.contains("  percentiles (exact)  p1 "), "{bf16}");
}

#[test]
fn a_closed_pipe_ends_with_141() {
    let path = fixture("stats/special.safetensors");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .args(["stats", path.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(141), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
}
