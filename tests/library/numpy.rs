//! NumPy `.npy` and `.npz` files written by NumPy 2.4 (`tests/gen/onnx_numpy.py`) against what
//! `np.load` reads back, and hostile ones: truncated, absurd shapes, a deflate bomb.

use crate::common;

use ckptscope::format::{Format, Layout};
use ckptscope::pickle::policy::{Policy, Risk, Verdict};
use ckptscope::scan::scan_file;
use ckptscope::{Limits, detect::detect};

fn numpy_fixtures() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(common::fixture("numpy"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".npy") || n.ends_with(".npz"))
        .map(|n| format!("numpy/{n}"))
        .collect();
    names.sort();
    names
}

fn open(path: &std::path::Path) -> ckptscope::Checkpoint {
    ckptscope::format::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn unsupported(ckpt: &ckptscope::Checkpoint) -> Vec<String> {
    let mut names: Vec<String> = ckpt
        .pickle
        .as_ref()
        .map(|r| r.unsupported.iter().map(|u| u.name.clone()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn every_fixture_matches_what_numpy_reads_back() {
    let names = numpy_fixtures();
    assert!(names.len() > 30, "{names:?}");
    for name in &names {
        let path = common::fixture(name);
        let ckpt = open(&path);
        let want = if name.ends_with(".npz") {
            Format::NumpyZip
        } else {
            Format::Numpy
        };
        assert_eq!(ckpt.format, want, "{name}");
        common::assert_arrays_match_truth(name, &ckpt);
        assert_eq!(
            unsupported(&ckpt),
            common::file_truth(name).unsupported,
            "{name}"
        );
    }
}

#[test]
fn fortran_and_big_endian_arrays_are_views_of_the_stored_bytes() {
    let ckpt = open(&common::fixture("numpy/fortran_3d.npy"));
    let t = &ckpt.tensors[0];
    assert_eq!(
        t.layout,
        Layout::Strided {
            offset: 0,
            strides: vec![1, 2, 6]
        }
    );
    assert_eq!(t.file_offset % 64, 0, "NumPy aligns data to 64 bytes");
    let ckpt = open(&common::fixture("numpy/dtype_be_f4.npy"));
    assert_eq!(
        ckpt.tensors[0].byte_order,
        ckptscope::format::ByteOrder::Big
    );
}

#[test]
fn stored_members_are_mapped_and_deflated_ones_inflated_on_first_use() {
    let stored = open(&common::fixture("numpy/stored.npz"));
    assert_eq!(stored.sources.len(), 1);
    let deflated = open(&common::fixture("numpy/deflated.npz"));
    assert_eq!(deflated.sources.len(), 1 + deflated.tensors.len());
    let w = deflated.require("weight").unwrap();
    let d = deflated.sources[w.source].derivation().unwrap();
    assert!(!d.is_made(), "nothing is inflated at open");
    assert!(
        deflated.sources[w.source]
            .label()
            .contains("deflated member weight.npy")
    );
    deflated.tensor_bytes(w).unwrap();
    assert!(d.is_made());
    let others = deflated
        .tensors
        .iter()
        .filter(|t| t.name != "weight")
        .filter(|t| deflated.sources[t.source].derivation().unwrap().is_made())
        .count();
    assert_eq!(others, 0, "only the array asked for was inflated");
    assert_eq!(
        deflated.file_size,
        std::fs::metadata(common::fixture("numpy/deflated.npz"))
            .unwrap()
            .len()
    );
}

#[test]
fn scans_say_data_only_and_object_arrays_go_to_the_pickle_engine() {
    for name in [
        "numpy/dtype_le_f4.npy",
        "numpy/stored.npz",
        "numpy/deflated.npz",
    ] {
        let r = scan_file(&common::fixture(name), &Policy::default(), &Limits::DEFAULT).unwrap();
        assert_eq!(r.verdict, Verdict::Safe, "{name}");
        assert!(r.streams.is_empty(), "{name}: no pickle is run");
        assert!(
            r.findings
                .iter()
                .any(|f| f.reason.starts_with("no pickle: data-only format")),
            "{name}: {:?}",
            r.findings
        );
    }
    for name in ["numpy/object.npy", "numpy/with_object.npz"] {
        let r = scan_file(&common::fixture(name), &Policy::default(), &Limits::DEFAULT).unwrap();
        assert!(!r.streams.is_empty(), "{name}: its pickle is judged");
        assert!(!r.findings.iter().any(|f| f.reason.starts_with("no pickle")));
    }
}

fn npy(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn absurd_sizes_are_listed_with_a_reason_and_are_never_safe_in_a_scan() {
    for (dict, data, why) in [
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }",
            &[0u8; 8][..],
            "only 8 follow the header",
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }",
            &[][..],
            "overflows",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }",
            &[][..],
            "too large for 64 bits",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)",
            &[][..],
            "header",
        ),
    ] {
        let (_d, path) = common::write_temp("a.npy", &npy(dict, data));
        let ckpt = open(&path);
        assert!(ckpt.tensors.is_empty());
        let report = ckpt.pickle.as_ref().unwrap();
        assert!(
            report.unsupported[0].reason.contains(why),
            "{:?}",
            report.unsupported
        );
        // A header that cannot be read at all is not understood: not scanned (never safe);
        // one that reads but cannot be right is suspicious.
        let bytes = std::fs::read(&path).unwrap();
        match ckptscope::pickle::container::npy_header(&bytes) {
            Err(_) => {
                let e = scan_file(&path, &Policy::default(), &Limits::DEFAULT).unwrap_err();
                assert!(
                    e.to_string()
                        .contains("starts like a NumPy .npy array, but"),
                    "{dict}: {e}"
                );
            }
            Ok(_) => {
                let r = scan_file(&path, &Policy::default(), &Limits::DEFAULT).unwrap();
                assert_eq!(r.verdict, Verdict::Suspicious, "{dict}: {:?}", r.findings);
                assert_eq!(r.findings[0].risk, Risk::Suspicious);
            }
        }
    }
}

#[test]
fn truncated_files_never_panic() {
    for name in [
        "numpy/fortran_be.npy",
        "numpy/deflated.npz",
        "numpy/stored.npz",
    ] {
        let bytes = std::fs::read(common::fixture(name)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut");
        for len in (0..bytes.len()).step_by(7) {
            std::fs::write(&path, &bytes[..len]).unwrap();
            if let Ok(ckpt) = ckptscope::format::open(&path) {
                for t in &ckpt.tensors {
                    let _ = ckpt.tensor_bytes(t);
                }
            }
            let _ = scan_file(&path, &Policy::default(), &Limits::DEFAULT);
        }
    }
}

/// A zip of one deflated `.npy` member whose directory entry says `declared` bytes, made of
/// `header` then `inflated` zero bytes.
fn deflated_npz(header: &str, inflated: usize, declared: u32) -> Vec<u8> {
    let mut member = npy(header, &[]);
    member.resize(member.len() + inflated, 0);
    let crc = crc32fast_hash(&member);
    let data = miniz_oxide::deflate::compress_to_vec(&member, 9);
    let name = b"bomb.npy";
    let mut out = Vec::new();
    let local = |out: &mut Vec<u8>| {
        out.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00\x08\x00\x00\x00\x00\x00");
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&declared.to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name);
    };
    local(&mut out);
    out.extend_from_slice(&data);
    let cd = out.len();
    out.extend_from_slice(b"PK\x01\x02\x14\x00\x14\x00\x00\x00\x08\x00\x00\x00\x00\x00");
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&declared.to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0u8; 12]);
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(name);
    let cd_len = out.len() - cd;
    out.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00");
    out.extend_from_slice(&(cd_len as u32).to_le_bytes());
    out.extend_from_slice(&(cd as u32).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn crc32fast_hash(bytes: &[u8]) -> u32 {
    ckptscope::archive::zip::crc32(bytes)
}

#[test]
fn a_deflate_bomb_in_an_npz_costs_what_its_directory_says() {
    // 64 MiB of zeros claimed as 1 KiB of float32: inflating stops one byte past 1 KiB.
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (256,), }";
    let header_len = npy(header, &[]).len();
    let bytes = deflated_npz(header, 64 << 20, (header_len + 1024) as u32);
    assert!(bytes.len() < 200_000);
    let (_d, path) = common::write_temp("bomb.npz", &bytes);
    assert_eq!(detect(&bytes), Format::NumpyZip);
    let ckpt = open(&path);
    let t = ckpt.require("bomb").unwrap();
    let e = ckpt.tensor_bytes(t).unwrap_err().to_string();
    assert!(e.contains("more than the") && e.contains("zip bomb"), "{e}");
    let r = scan_file(&path, &Policy::default(), &Limits::DEFAULT).unwrap();
    assert_eq!(
        r.verdict,
        Verdict::Safe,
        "the header says numbers: {:?}",
        r.findings
    );

    // An honest directory entry over the inflate limit is refused at open, not inflated.
    let big_header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1048576,), }";
    let big_len = npy(big_header, &[]).len();
    let big = deflated_npz(big_header, 4 << 20, (big_len + (4 << 20)) as u32);
    let (_d, path) = common::write_temp("big.npz", &big);
    let mut limits = Limits::DEFAULT;
    limits.max_inflated_bytes = 1 << 20;
    let ckpt = ckptscope::format::open_with_limits(&path, &limits).unwrap();
    let report = ckpt.pickle.as_ref().unwrap();
    assert!(ckpt.tensors.is_empty());
    assert!(
        report.unsupported[0].reason.contains("--limit inflated"),
        "{:?}",
        report.unsupported
    );
    // Within the limit it reads, CRC-checked.
    let ckpt = open(&path);
    assert_eq!(ckpt.tensor_bytes(&ckpt.tensors[0]).unwrap().len(), 4 << 20);
}

#[test]
fn a_damaged_deflated_member_fails_its_crc_when_read() {
    let header = "{'descr': '<u1', 'fortran_order': False, 'shape': (4096,), }";
    let header_len = npy(header, &[]).len();
    let mut bytes = deflated_npz(header, 4096, (header_len + 4096) as u32);
    // Rewrite the recorded CRC (local header at 14, central directory entry after the data).
    let wrong = 0xdead_beefu32.to_le_bytes();
    bytes[14..18].copy_from_slice(&wrong);
    let cd = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    bytes[cd + 16..cd + 20].copy_from_slice(&wrong);
    let (_d, path) = common::write_temp("crc.npz", &bytes);
    let ckpt = open(&path);
    let e = ckpt.tensor_bytes(&ckpt.tensors[0]).unwrap_err().to_string();
    assert!(e.contains("CRC-32"), "{e}");
}

#[test]
fn info_and_scan_on_the_command_line() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let path = common::fixture("numpy/deflated.npz");
    let (code, out) = run(&["info", "--json", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["format"], "numpy_zip");
    assert_eq!(v["tensors"].as_array().unwrap().len(), 6);
    let (code, out) = run(&["scan", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("SAFE") && out.contains("no pickle: data-only format"),
        "{out}"
    );
}
