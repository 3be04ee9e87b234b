//! TorchScript archives (`torch.jit.save`) written by real torch (`tests/gen/torchscript.py`):
//! their state dict is listed exactly as `torch.jit.load(f).state_dict()` gives it, converts
//! bit-exactly without `--allow-*`, and the verdict is one suspicious "TorchScript program"
//! finding, plus dangerous ones for code that writes files or calls custom native operators.

use crate::common;

use std::path::Path;

use ckptscope::convert::{ConvertError, ConvertOptions, convert};
use ckptscope::pickle::policy::{Finding, Risk, Verdict};
use ckptscope::progress::Progress;
use ckptscope::{Checkpoint, Format, Limits};
use common::{
    Pickle, Zip, assert_tensors_match_truth, expected, fixture, run, sha256_hex, write_temp,
};

const BENIGN: &[&str] = &[
    "torchscript_small.pt",
    "torchscript/scripted.pt",
    "torchscript/traced.pt",
    "torchscript/lists.pt",
    // A real model from a public package (silero-vad 6.2.3), written by its authors.
    "real/silero_vad.jit",
];

fn open(name: &str) -> Checkpoint {
    ckptscope::open(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn serious(findings: &[Finding]) -> Vec<&Finding> {
    findings.iter().filter(|f| f.risk > Risk::Info).collect()
}

fn is_program(f: &Finding) -> bool {
    f.reason.starts_with(
        "TorchScript program: `torch.jit.load` compiles and runs the code in `code/` (",
    )
}

#[test]
fn benign_archives_list_the_state_dict_torch_gives() {
    for name in BENIGN {
        let ckpt = open(name);
        assert_eq!(ckpt.format, Format::Torchscript, "{name}");
        let report = ckpt.pickle.as_ref().unwrap();
        assert!(!report.withheld && report.unsupported.is_empty(), "{name}");
        assert_tensors_match_truth(name, &ckpt);
    }
}

#[test]
fn benign_archives_have_exactly_the_program_finding() {
    for name in BENIGN {
        let ckpt = open(name);
        let report = ckpt.pickle.as_ref().unwrap();
        let serious = serious(&report.findings);
        assert_eq!(serious.len(), 1, "{name}: {serious:#?}");
        assert!(is_program(serious[0]), "{name}: {}", serious[0].reason);
        assert_eq!(serious[0].risk, Risk::Suspicious);
        assert_eq!(report.verdict, Verdict::Suspicious, "{name}");
        assert_eq!(report.read_verdict(), Verdict::Safe, "{name}");
        // Debug pickles and constants are read as the pickles torch reads, silently.
        assert!(
            report.findings.iter().all(|f| f.risk > Risk::Info),
            "{name}: {:#?}",
            report.findings
        );
        let code = report.torchscript.as_ref().unwrap();
        assert!(code.files.iter().all(|f| f.path.ends_with(".py")));
        assert!(report.streams.iter().all(|s| {
            s.member
                .as_deref()
                .is_some_and(|m| !m.ends_with(".py") && s.error.is_none())
        }));
    }
    let small = open("torchscript_small.pt");
    let reason = &serious(&small.pickle.as_ref().unwrap().findings)[0].reason;
    assert!(reason.ends_with("(5 files, 150 lines)"), "{reason}");
}

#[test]
fn code_that_writes_files_or_calls_custom_operators_is_dangerous_with_file_and_line() {
    for (name, call, file, line) in [
        (
            "torchscript/writes_file.pt",
            "torch.save",
            "writes_file/code/__torch__.py",
            10,
        ),
        (
            "torchscript/custom_op.pt",
            "ops.ckptscope_evil.run",
            "custom_op/code/__torch__.py",
            10,
        ),
    ] {
        let ckpt = open(name);
        let report = ckpt.pickle.as_ref().unwrap();
        assert_eq!(report.verdict, Verdict::Dangerous, "{name}");
        let dangerous: Vec<&Finding> = report
            .findings
            .iter()
            .filter(|f| f.risk == Risk::Dangerous)
            .collect();
        assert_eq!(dangerous.len(), 1, "{name}: {dangerous:#?}");
        let d = dangerous[0];
        assert_eq!(d.global.as_deref(), Some(call));
        assert_eq!(d.member.as_deref(), Some(file));
        assert!(
            d.reason
                .starts_with(&format!("TorchScript code, line {line}: ")),
            "{}",
            d.reason
        );
        assert_eq!(report.findings.iter().filter(|f| is_program(f)).count(), 1);
        let flag = &report.torchscript.as_ref().unwrap().flagged[0];
        assert_eq!((flag.file.as_str(), flag.line), (file, line));
        // Dangerous code: tensors only on request, convert only with --allow-dangerous.
        assert!(ckpt.tensors.is_empty() && report.withheld);
        let dir = tempfile::tempdir().unwrap();
        let options = ConvertOptions {
            output: Some(dir.path().join("out.safetensors")),
            ..ConvertOptions::default()
        };
        assert!(matches!(
            convert(&fixture(name), &options, &Progress::default()),
            Err(ConvertError::Refused {
                verdict: Verdict::Dangerous,
                ..
            })
        ));
    }
}

/// Converts `name` without any --allow flag and checks every output tensor against the truth.
fn converts_bit_exactly(name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.safetensors");
    let options = ConvertOptions {
        output: Some(output.clone()),
        ..ConvertOptions::default()
    };
    let report = convert(&fixture(name), &options, &Progress::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(report.verified, "{name}");
    assert_eq!(report.exported, None, "{name}");
    let out = ckptscope::open(&output).unwrap();
    for (tname, want) in expected(name) {
        let stored = match out.tensor(&tname) {
            Some(t) => t,
            // Tied weights are stored once; the alias is in the metadata.
            None => {
                let kept = out
                    .metadata_value(&tname)
                    .unwrap_or_else(|| panic!("{name}: {tname} is neither a tensor nor an alias"));
                out.tensor(kept).unwrap()
            }
        };
        assert_eq!(stored.dtype.name(), want.dtype, "{name}/{tname}");
        assert_eq!(stored.shape, want.shape, "{name}/{tname}");
        assert_eq!(
            sha256_hex(out.tensor_bytes(stored).unwrap()),
            want.sha256,
            "{name}/{tname}"
        );
    }
    assert_eq!(
        out.metadata_value("ckptscope.scan_verdict"),
        Some("suspicious")
    );
}

#[test]
fn benign_archives_convert_bit_exactly_without_allow_flags() {
    for name in BENIGN {
        converts_bit_exactly(name);
    }
}

#[test]
fn generator_verified_load_state_dict_reproduces_outputs() {
    // The Rust tests cannot run torch: the generator checked it and recorded it.
    for name in ["scripted.pt", "traced.pt", "lists.pt"] {
        let path = fixture(&format!("torchscript/{name}.roundtrip.json"));
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(record["reproduced"], true, "{name}");
    }
}

#[test]
fn cli_info_scan_and_convert() {
    let path = fixture("torchscript/scripted.pt");
    let path = path.to_str().unwrap();
    let (code, out, _) = run(&["info", path]);
    assert_eq!(code, 0);
    assert!(out.contains("TorchScript archive"), "{out}");
    assert!(out.contains("bn.num_batches_tracked"), "{out}");
    assert!(out.contains("code: 10 TorchScript source files, 288 lines, 0 flagged"));

    let (code, out, _) = run(&["scan", "--json", path]);
    assert_eq!(code, 1, "suspicious exits 1");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json[0]["format"], "torchscript");
    assert_eq!(json[0]["verdict"], "suspicious");
    let findings = json[0]["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0]["severity"], "suspicious");

    let (_, out, _) = run(&[
        "info",
        "--json",
        "tests/fixtures/torchscript/writes_file.pt",
    ]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let flagged = &json["scan"]["torchscript"]["flagged"][0];
    assert_eq!(flagged["file"], "writes_file/code/__torch__.py");
    assert_eq!(flagged["line"], 10);
    assert_eq!(flagged["severity"], "dangerous");
    assert_eq!(flagged["call"], "torch.save");
    assert_eq!(json["scan"]["torchscript"]["files"][0]["lines"], 12);

    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.safetensors");
    let (code, _, err) = run(&["convert", path, "-o", output.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&[
        "convert",
        "tests/fixtures/torchscript/custom_op.pt",
        "-o",
        dir.path().join("evil.safetensors").to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("--allow-dangerous"), "{err}");
}

/// A hand-made archive: `data.pkl` of one `__torch__` module, `constants.pkl` and `extra`
/// members under `code/`.
fn archive(code: &[(&str, &[u8])]) -> Vec<u8> {
    let data = Pickle::new(2)
        .global("__torch__", "M")
        .empty_tuple()
        .raw(&[0x81])
        .empty_dict()
        .build()
        .stop()
        .0;
    let mut zip = Zip::new()
        .add("m/data.pkl", &data)
        .add("m/constants.pkl", &Pickle::new(2).empty_tuple().stop().0);
    for (name, bytes) in code {
        zip = zip.add(&format!("m/code/{name}"), bytes);
    }
    zip.bytes()
}

fn scan_bytes(bytes: &[u8], limits: &Limits) -> ckptscope::scan::ScanResult {
    let (_dir, path) = write_temp("m.pt", bytes);
    ckptscope::scan::scan_file(&path, &Default::default(), limits).unwrap()
}

const MODULE: &[u8] = b"class M(Module):\n  __parameters__ = []\n  __buffers__ = []\n  training : bool\n  def forward(self: __torch__.M) -> int:\n    return 1\n";

#[test]
fn source_files_are_never_read_as_pickles() {
    // A source file that is also a pickle calling os.system: torch.jit.load compiles it, never
    // unpickles it, so it is no pickle finding; the code scan sees no call in it either.
    let mut pickle_source = MODULE.to_vec();
    pickle_source.splice(0..0, b"cos\nsystem\n(S'id'\ntR.\n".iter().copied());
    let r = scan_bytes(
        &archive(&[("__torch__.py", &pickle_source)]),
        &Limits::DEFAULT,
    );
    assert_eq!(r.verdict, Verdict::Suspicious, "{:#?}", r.findings);
    assert_eq!(serious(&r.findings).len(), 1, "{:#?}", r.findings);
    assert!(
        r.streams
            .iter()
            .all(|s| s.member.as_deref() != Some("m/code/__torch__.py"))
    );
}

#[test]
fn debug_pickles_are_judged_as_pickles() {
    let evil = Pickle::new(2).call1("os", "system", "id").stop().0;
    let r = scan_bytes(
        &archive(&[("__torch__.py", MODULE), ("__torch__.py.debug_pkl", &evil)]),
        &Limits::DEFAULT,
    );
    assert_eq!(r.verdict, Verdict::Dangerous);
    assert!(r.findings.iter().any(|f| f.risk == Risk::Dangerous
        && f.member.as_deref() == Some("m/code/__torch__.py.debug_pkl")));
}

#[test]
fn a_class_missing_from_the_code_is_suspicious() {
    let r = scan_bytes(&archive(&[("other.py", b"x = 1\n")]), &Limits::DEFAULT);
    assert!(
        r.findings
            .iter()
            .any(|f| f.global.as_deref() == Some("__torch__.M")
                && f.reason.contains("does not define")),
        "{:#?}",
        r.findings
    );
}

#[test]
fn hand_written_system_calls_are_dangerous() {
    let source = b"class M(Module):\n  __parameters__ = []\n  def forward(self: __torch__.M) -> int:\n    torch.ops.load_library(\"/tmp/evil.so\")\n    f = open(\"/etc/passwd\")\n    return os.system(\"id\")\n";
    let r = scan_bytes(&archive(&[("__torch__.py", source)]), &Limits::DEFAULT);
    let lines: Vec<&str> = r
        .findings
        .iter()
        .filter(|f| f.risk == Risk::Dangerous)
        .map(|f| f.reason.as_str())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    for (line, what) in [
        (4, "native library"),
        (5, "opens a file"),
        (6, "Python module `os`"),
    ] {
        assert!(
            lines.iter().any(
                |l| l.starts_with(&format!("TorchScript code, line {line}:")) && l.contains(what)
            ),
            "{line}: {lines:#?}"
        );
    }
}

#[test]
fn huge_or_numerous_source_files_stop_at_the_code_limits() {
    let big = vec![b'a'; 2 << 20];
    let limits = Limits {
        max_code_bytes: 1 << 20,
        ..Limits::DEFAULT
    };
    let r = scan_bytes(
        &archive(&[("__torch__.py", MODULE), ("big.py", &big)]),
        &limits,
    );
    assert!(
        r.findings
            .iter()
            .any(|f| f.risk == Risk::Suspicious && f.reason.contains("--limit code=N")),
        "{:#?}",
        r.findings
    );

    let names: Vec<String> = (0..50).map(|i| format!("f{i}.py")).collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), MODULE)).collect();
    let limits = Limits {
        max_code_files: 10,
        ..Limits::DEFAULT
    };
    let r = scan_bytes(&archive(&files), &limits);
    assert!(
        r.findings
            .iter()
            .any(|f| f.reason.contains("more than 10 source files")),
        "{:#?}",
        r.findings
    );
    assert!(Path::new(&fixture("torchscript")).is_dir());
}

#[test]
fn a_call_repeated_on_many_lines_is_one_finding_naming_its_first_line() {
    let mut source = MODULE.to_vec();
    for _ in 0..20_000 {
        source.extend_from_slice(b"    torch.save(x, \"/tmp/a\")\n");
    }
    // One dotted name of 10 MB: judged by its start, in bounded memory.
    source.extend_from_slice(&b"a.".repeat(5 << 20));
    source.extend_from_slice(b"b()\n");
    let r = scan_bytes(&archive(&[("__torch__.py", &source)]), &Limits::DEFAULT);
    let dangerous: Vec<&Finding> = r
        .findings
        .iter()
        .filter(|f| f.risk == Risk::Dangerous)
        .collect();
    assert_eq!(dangerous.len(), 1, "{dangerous:#?}");
    assert!(
        dangerous[0]
            .reason
            .starts_with("TorchScript code, line 7: ")
            && dangerous[0]
                .reason
                .ends_with("(and on 9999 more lines of this file)"),
        "{}",
        dangerous[0].reason
    );
    assert!(
        r.findings
            .iter()
            .any(|f| f.reason.starts_with("more than 10000 flagged lines"))
    );
}
