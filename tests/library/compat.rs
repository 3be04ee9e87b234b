//! The compatibility answer ("does `torch.load(f, weights_only=True)` load it, and what must
//! `add_safe_globals` allow first?") against what torch 2.15 really does: every file in
//! `tests/fixtures/compat/` was written by `tests/gen/compat.py`, which recorded the truth beside
//! it by running torch.load on it. The security verdict is a separate question: NumPy arrays,
//! random states and decimals run no code, so those files are `safe` though torch refuses them.

use crate::common;

use ckptscope::pickle::policy::{Policy, Verdict};
use ckptscope::scan::scan_file;

#[derive(serde::Deserialize, Debug)]
struct Truth {
    loads: bool,
    error_global: Option<String>,
    needs: Vec<String>,
    loads_after: bool,
    blocker: Option<String>,
}

fn dir() -> std::path::PathBuf {
    common::fixture("compat")
}

fn files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

#[test]
fn weights_only_answers_match_torch() {
    let names = files();
    assert!(names.len() >= 12, "{names:?}");
    for name in names {
        let path = dir().join(&name);
        let truth: Truth = serde_json::from_str(
            &std::fs::read_to_string(dir().join(format!("{name}.expected.json"))).unwrap(),
        )
        .unwrap();
        let r = scan_file(&path, &Policy::default(), &ckptscope::Limits::DEFAULT).unwrap();
        let w = r
            .weights_only
            .clone()
            .expect("a pickle-based file has an answer");
        assert_eq!(w.loads, truth.loads, "{name}: {w:?}");
        assert_eq!(w.needs, truth.needs, "{name}");
        // The first name torch's error gives is the first of the list.
        assert_eq!(w.needs.first(), truth.error_global.as_ref(), "{name}");
        assert_eq!(w.blocker.is_none(), truth.loads_after, "{name}: {w:?}");
        if let Some(b) = &truth.blocker
            && let Some(operand) = b.strip_prefix("UnpicklingError: Unsupported operand ")
        {
            let said = w.blocker.clone().unwrap_or_default();
            assert!(
                said.contains(&format!("Unsupported operand {operand}")) || said.contains("NumPy"),
                "{name}: {said}"
            );
        }
    }
}

#[test]
fn data_only_payloads_are_safe_for_the_verdict() {
    for name in [
        "numpy_array.pt",
        "numpy_scalar.pt",
        "numpy_legacy.pt",
        "rng_state.pth",
        "numpy_random_objects.pth",
        "decimal.pt",
        "object_array.pt",
        "object_array.npy",
        "state_dict.pt",
        "state_dict_proto4.pt",
    ] {
        let r = scan_file(
            &dir().join(name),
            &Policy::default(),
            &ckptscope::Limits::DEFAULT,
        )
        .unwrap();
        assert_eq!(r.verdict, Verdict::Safe, "{name}: {:#?}", r.findings);
    }
}

#[test]
fn an_object_array_is_safe_only_while_what_it_holds_is() {
    // np.save of an object array holding os.system: the array machinery is data, its item is
    // not.
    let (_d, path) = common::write_temp("evil.npy", &evil_npy());
    let r = scan_file(&path, &Policy::default(), &ckptscope::Limits::DEFAULT).unwrap();
    assert_eq!(r.verdict, Verdict::Dangerous, "{:#?}", r.findings);
}

/// A `.npy` object array whose pickle's single item is `posix.system('id')`.
fn evil_npy() -> Vec<u8> {
    let header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }";
    let mut h = header.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    let p = common::Pickle::new(2)
        .global("numpy.core.multiarray", "_reconstruct")
        .global("numpy", "ndarray")
        .int(0)
        .tuple1()
        .str("b")
        .raw(b"\x87")
        .reduce()
        .mark()
        .int(1)
        .int(1)
        .tuple1()
        .global("numpy", "dtype")
        .str("O8")
        .raw(b"\x89\x88\x87")
        .reduce()
        .raw(b"\x89")
        .raw(b"]")
        .call1("posix", "system", "id")
        .raw(b"a")
        .raw(b"t")
        .build()
        .stop();
    out.extend_from_slice(&p.0);
    out
}

#[test]
fn scan_and_info_show_both_answers() {
    let path = dir().join("rng_state.pth");
    let p = path.to_str().unwrap();
    let (code, out, _) = common::run(&["scan", "--json", p]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["verdict"], "safe");
    assert_eq!(v[0]["weights_only"]["loads"], false);
    assert_eq!(
        v[0]["weights_only"]["needs"][0],
        "numpy._core.multiarray._reconstruct"
    );
    let (_, out, _) = common::run(&["scan", p]);
    assert!(
        out.contains("SAFE") && out.contains("add_safe_globals"),
        "{out}"
    );
    let (code, out, _) = common::run(&["info", "--json", p]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["scan"]["verdict"], "safe");
    assert_eq!(v["scan"]["weights_only"]["loads"], false);
    let (_, out, _) = common::run(&["info", dir().join("state_dict.pt").to_str().unwrap()]);
    assert!(
        out.contains("compat: loads with torch.load(weights_only=True)"),
        "{out}"
    );
}
