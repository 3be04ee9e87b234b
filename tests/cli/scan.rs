//! `ckptscope scan`: verdict lines, JSON, exit codes 2 (anything not scanned), else 1 (any unsafe),
//! else 0 (all scanned and safe).

use crate::common;

use common::{fixture, run};

#[test]
fn safe_files_exit_0() {
    let (code, out, _) = run(&["scan", fixture("torch_zip_basic.pt").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("SAFE"), "{out}");
    assert!(
        out.contains("1 file scanned: 1 safe, 0 suspicious, 0 dangerous"),
        "{out}"
    );
}

#[test]
fn a_dangerous_file_exits_1_and_names_the_global() {
    let (code, out, _) = run(&["scan", fixture("malicious_exec.pkl").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("DANGEROUS") && out.contains("builtins.exec"),
        "{out}"
    );
}

#[test]
fn folders_are_scanned_recursively_by_content() {
    let (code, out, _) = run(&["scan", "--json", fixture("").to_str().unwrap()]);
    // `next/` holds files of formats not read yet (Keras, TensorFlow...): not scanned, so the
    // folder exits 2 whatever else it holds.
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let entries = v.as_array().unwrap();
    let verdict = |suffix: &str| {
        entries
            .iter()
            .find(|e| e["path"].as_str().unwrap().ends_with(suffix))
            .map(|e| e["verdict"].as_str().unwrap().to_string())
    };
    assert_eq!(
        verdict("malicious_os_system.pt").as_deref(),
        Some("dangerous")
    );
    assert_eq!(verdict("torch_views.pt").as_deref(), Some("safe"));
    assert_eq!(
        verdict("model-00001-of-00002.safetensors").as_deref(),
        Some("safe")
    );
    assert_eq!(verdict("next/tf/float32.tflite").as_deref(), Some("error"));
    // The ground-truth JSON files are not checkpoints and are skipped.
    assert!(verdict("torch_views.pt.expected.json").is_none());
    let finding = &entries
        .iter()
        .find(|e| {
            e["path"]
                .as_str()
                .unwrap()
                .ends_with("malicious_os_system.pt")
        })
        .unwrap()["findings"][0];
    assert_eq!(finding["severity"], "dangerous");
    assert_eq!(finding["global"], "posix.system");
    assert_eq!(finding["member"], "malicious_os_system/data.pkl");
    assert!(finding["offset"].is_u64() && finding["reason"].is_string());
}

#[test]
fn an_unreadable_file_exits_2() {
    let (code, out, err) = run(&[
        "scan",
        "/no/such/file.pt",
        fixture("torch_tied.pt").to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(
        out.contains("ERROR") && err.contains("/no/such/file.pt"),
        "{out}{err}"
    );
}

#[test]
fn allow_flag_extends_the_allowlist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ns.pkl");
    std::fs::write(&path, b"\x80\x02cargparse\nNamespace\n)R.").unwrap();
    let (code, _, _) = run(&["scan", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    let (code, out, _) = run(&[
        "scan",
        "--allow",
        "argparse.Namespace",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
}
