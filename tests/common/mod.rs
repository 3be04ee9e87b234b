//! Helpers shared by the integration tests: building small files and reading ground truth.
#![allow(dead_code)]

pub mod bombs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Path of a committed fixture.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The real app in a kittest harness at 1400×900, its jobs run inline, opening `files` (none:
/// the start screen; one: explore; two: compare).
#[cfg(feature = "gui")]
pub fn app_harness(files: Vec<PathBuf>) -> egui_kittest::Harness<'static, ckptscope::gui::App> {
    app_harness_with(files, egui::vec2(1400.0, 900.0), true)
}

/// The real app in a kittest harness at 1400×900, its jobs on real threads (step frames until
/// they are done: [`step_until`]).
#[cfg(feature = "gui")]
pub fn threaded_harness(
    files: Vec<PathBuf>,
) -> egui_kittest::Harness<'static, ckptscope::gui::App> {
    app_harness_with(files, egui::vec2(1400.0, 900.0), false)
}

/// The real app in a kittest harness of `size` opening `files`; `sync`: its jobs run inline.
#[cfg(feature = "gui")]
pub fn app_harness_with(
    files: Vec<PathBuf>,
    size: egui::Vec2,
    sync: bool,
) -> egui_kittest::Harness<'static, ckptscope::gui::App> {
    egui_kittest::Harness::builder()
        .with_size(size)
        .with_max_steps(12)
        .build_eframe(move |cc| {
            ckptscope::gui::App::new(
                cc,
                ckptscope::gui::StartupArgs {
                    files,
                    sync_jobs: sync,
                    demo_on_first_run: false,
                    ..Default::default()
                },
            )
        })
}

/// Steps frames until `done` holds; the window keeps drawing meanwhile, as it must.
#[cfg(feature = "gui")]
pub fn step_until(
    h: &mut egui_kittest::Harness<'_, ckptscope::gui::App>,
    what: &str,
    done: impl Fn(&egui_kittest::Harness<'_, ckptscope::gui::App>) -> bool,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        h.step();
        if done(h) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A copy of the committed fixture folder `package/NAME`, in a fresh temporary folder.
pub fn package_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join(name);
    copy_tree(&fixture(&format!("package/{name}")), &dest);
    (tmp, dest)
}

/// The names in the folder `dir`, sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Copies the folder `from` (files and subfolders) to `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A safetensors file from raw header text and data bytes.
pub fn safetensors_bytes(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Writes `bytes` to a new file in a fresh temporary folder.
pub fn write_temp(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// One tensor of a fixture's `*.expected.json` ground truth.
#[derive(Debug, serde::Deserialize)]
pub struct Expected {
    pub dtype: String,
    pub shape: Vec<u64>,
    pub sha256: String,
    pub shares_storage_with: Option<String>,
}

/// The ground truth written by real PyTorch/safetensors next to a fixture.
pub fn expected(name: &str) -> BTreeMap<String, Expected> {
    let text = std::fs::read_to_string(fixture(&format!("{name}.expected.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The tensors of `ckpt` are exactly those of the ground truth of fixture `name`: the same
/// names, dtypes, shapes and SHA-256 of the contiguous bytes, sharing a storage where torch's
/// tensors share one and only there.
pub fn assert_tensors_match_truth(name: &str, ckpt: &ckptscope::Checkpoint) {
    let truth = expected(name);
    let ours: BTreeMap<&str, &ckptscope::TensorEntry> =
        ckpt.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    assert_eq!(ours.len(), ckpt.tensors.len(), "{name}: a name twice");
    assert_eq!(
        ours.keys().copied().collect::<Vec<_>>(),
        truth.keys().map(String::as_str).collect::<Vec<_>>(),
        "{name}: tensor names"
    );
    for (tname, want) in &truth {
        let t = ours[tname.as_str()];
        assert_eq!(t.dtype.name(), want.dtype, "{name}/{tname} dtype");
        assert_eq!(t.shape, want.shape, "{name}/{tname} shape");
        let region = ckpt.tensor_bytes(t).unwrap();
        let packed = ckptscope::format::gather::to_vec(t, region).unwrap();
        assert_eq!(sha256_hex(&packed), want.sha256, "{name}/{tname} bytes");
        if let Some(other) = &want.shares_storage_with {
            assert_eq!(
                t.storage,
                ours[other.as_str()].storage,
                "{name}/{tname} should share storage with {other}"
            );
        }
    }
    // Tensors that torch says own their storage do not share one with each other.
    let owners: Vec<&str> = truth
        .iter()
        .filter(|(_, e)| e.shares_storage_with.is_none())
        .map(|(k, _)| k.as_str())
        .collect();
    for (i, a) in owners.iter().enumerate() {
        for b in &owners[i + 1..] {
            assert_ne!(ours[a].storage, ours[b].storage, "{name}: {a} and {b}");
        }
    }
}

/// Runs the real binary and returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"))
        .env(
            "CKPTSCOPE_CACHE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/hash-cache"),
        )
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A pickle written opcode by opcode, for attack tests.
#[derive(Default, Clone)]
pub struct Pickle(pub Vec<u8>);

impl Pickle {
    pub fn new(proto: u8) -> Self {
        Pickle(vec![0x80, proto])
    }
    pub fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    /// GLOBAL (protocol 0-3 style).
    pub fn global(self, module: &str, name: &str) -> Self {
        self.raw(format!("c{module}\n{name}\n").as_bytes())
    }
    /// SHORT_BINUNICODE.
    pub fn str(mut self, s: &str) -> Self {
        self.0.push(0x8c);
        self.0.push(s.len() as u8);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    /// SHORT_BINBYTES.
    pub fn bytes(mut self, b: &[u8]) -> Self {
        if b.len() < 256 {
            self.0.push(b'C');
            self.0.push(b.len() as u8);
        } else {
            self.0.push(b'B');
            self.0.extend_from_slice(&(b.len() as u32).to_le_bytes());
        }
        self.0.extend_from_slice(b);
        self
    }
    pub fn int(mut self, v: u8) -> Self {
        self.0.extend_from_slice(&[b'K', v]);
        self
    }
    pub fn stack_global(self) -> Self {
        self.raw(&[0x93])
    }
    pub fn memoize(self) -> Self {
        self.raw(&[0x94])
    }
    pub fn put(self, i: u8) -> Self {
        self.raw(&[b'q', i])
    }
    pub fn get(self, i: u8) -> Self {
        self.raw(&[b'h', i])
    }
    pub fn tuple1(self) -> Self {
        self.raw(&[0x85])
    }
    pub fn tuple2(self) -> Self {
        self.raw(&[0x86])
    }
    pub fn empty_tuple(self) -> Self {
        self.raw(b")")
    }
    pub fn empty_dict(self) -> Self {
        self.raw(b"}")
    }
    pub fn none(self) -> Self {
        self.raw(b"N")
    }
    pub fn mark(self) -> Self {
        self.raw(b"(")
    }
    pub fn reduce(self) -> Self {
        self.raw(b"R")
    }
    pub fn build(self) -> Self {
        self.raw(b"b")
    }
    pub fn pop(self) -> Self {
        self.raw(b"0")
    }
    pub fn stop(self) -> Self {
        self.raw(b".")
    }
    /// `module.name(arg)` by REDUCE.
    pub fn call1(self, module: &str, name: &str, arg: &str) -> Self {
        self.global(module, name).str(arg).tuple1().reduce()
    }
}

/// A zip archive with stored members, written the way torch.save writes them (64-byte aligned
/// data, data-descriptor flag), with knobs for tampering.
pub struct Zip {
    /// Name, bytes as written, compression method, CRC-32 and size of the inflated bytes.
    members: Vec<(String, Vec<u8>, u16, u32, u32)>,
    pub crc_override: Option<u32>,
    pub flags: u16,
    /// Name written in local headers instead of the real one (central directory keeps the real).
    pub local_name_override: Option<String>,
}

impl Zip {
    pub fn new() -> Self {
        Zip {
            members: Vec::new(),
            crc_override: None,
            flags: 0x08,
            local_name_override: None,
        }
    }
    pub fn add(mut self, name: &str, data: &[u8]) -> Self {
        self.members.push((
            name.to_string(),
            data.to_vec(),
            0,
            crc32(data),
            data.len() as u32,
        ));
        self
    }
    /// A deflated member holding `deflated`, which inflates to `size` bytes with CRC-32 `crc`
    /// (the caller may lie about either).
    pub fn add_deflated(mut self, name: &str, deflated: &[u8], size: usize, crc: u32) -> Self {
        self.members
            .push((name.to_string(), deflated.to_vec(), 8, crc, size as u32));
        self
    }
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data, method, crc, size) in &self.members {
            let local_name = self
                .local_name_override
                .clone()
                .filter(|_| name.ends_with("data.pkl"))
                .unwrap_or_else(|| name.clone());
            let offset = out.len() as u32;
            // Pad with an extra field so data starts 64-byte aligned, as torch does.
            let header_len = 30 + local_name.len();
            let pad = (64 - (out.len() + header_len + 4) % 64) % 64;
            let extra_len = 4 + pad;
            let crc = self.crc_override.unwrap_or(*crc);
            out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
            out.extend_from_slice(&[20, 0]);
            out.extend_from_slice(&self.flags.to_le_bytes());
            out.extend_from_slice(&method.to_le_bytes());
            out.extend_from_slice(&[0, 0, 0, 0]);
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&(local_name.len() as u16).to_le_bytes());
            out.extend_from_slice(&(extra_len as u16).to_le_bytes());
            out.extend_from_slice(local_name.as_bytes());
            out.extend_from_slice(&0xcafeu16.to_le_bytes());
            out.extend_from_slice(&(pad as u16).to_le_bytes());
            out.extend(std::iter::repeat_n(b'Z', pad));
            out.extend_from_slice(data);

            central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            central.extend_from_slice(&[20, 0, 20, 0]);
            central.extend_from_slice(&self.flags.to_le_bytes());
            central.extend_from_slice(&method.to_le_bytes());
            central.extend_from_slice(&[0, 0, 0, 0]);
            central.extend_from_slice(&crc.to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&size.to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        let n = self.members.len() as u16;
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out
    }
}

/// CRC-32 (IEEE), bitwise: only used to build small test archives.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// One array of an ONNX or NumPy fixture's ground truth (`tests/gen/onnx_numpy.py`).
#[derive(Debug, serde::Deserialize)]
pub struct ArrayTruth {
    pub dtype: String,
    pub shape: Vec<u64>,
    pub sha256: String,
    pub values: Vec<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
}

/// The ground truth of an ONNX or NumPy fixture.
#[derive(Debug, serde::Deserialize)]
pub struct FileTruth {
    pub tensors: BTreeMap<String, ArrayTruth>,
    pub unsupported: Vec<String>,
    pub metadata: BTreeMap<String, String>,
}

/// Reads `tests/fixtures/NAME.expected.json` written by `tests/gen/onnx_numpy.py`.
pub fn file_truth(name: &str) -> FileTruth {
    let text = std::fs::read_to_string(fixture(&format!("{name}.expected.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-5 * a.abs().max(b.abs()).max(1e-3)
}

/// The tensors of `ckpt` are exactly the arrays the library read back: names, dtypes, shapes,
/// SHA-256 of the packed C-order little-endian bytes, the first values, and min/max/mean
/// computed by ckptscope's statistics from the bytes as stored (strided, big-endian, inflated
/// or decoded).
pub fn assert_arrays_match_truth(name: &str, ckpt: &ckptscope::Checkpoint) {
    use ckptscope::analysis;
    let truth = file_truth(name);
    let ours: BTreeMap<&str, &ckptscope::TensorEntry> =
        ckpt.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    assert_eq!(ours.len(), ckpt.tensors.len(), "{name}: a name twice");
    assert_eq!(
        ours.keys().copied().collect::<Vec<_>>(),
        truth.tensors.keys().map(String::as_str).collect::<Vec<_>>(),
        "{name}: tensor names"
    );
    for (tname, want) in &truth.tensors {
        let t = ours[tname.as_str()];
        assert_eq!(t.dtype.name(), want.dtype, "{name}/{tname} dtype");
        assert_eq!(t.shape, want.shape, "{name}/{tname} shape");
        let region = ckpt
            .tensor_bytes(t)
            .unwrap_or_else(|e| panic!("{name}/{tname}: {e}"));
        let packed = ckptscope::format::gather::to_vec(t, region).unwrap();
        assert_eq!(sha256_hex(&packed), want.sha256, "{name}/{tname} bytes");
        for (i, v) in want.values.iter().enumerate() {
            let got = analysis::decode::decode_at(
                t.dtype,
                ckptscope::format::ByteOrder::Little,
                &packed,
                i as u64,
            )
            .unwrap();
            assert!(close(got, *v), "{name}/{tname}[{i}]: {got} != {v}");
        }
        let src = analysis::source(ckpt, t).unwrap();
        let a = analysis::analyze(
            &src,
            &analysis::View::of(t),
            16,
            &analysis::Control::default(),
        )
        .unwrap();
        for (what, got, want) in [
            ("min", a.stats.min, want.min),
            ("max", a.stats.max, want.max),
            ("mean", a.stats.mean, want.mean),
        ] {
            if let Some(want) = want {
                assert!(close(got, want), "{name}/{tname} {what}: {got} != {want}");
            }
        }
    }
}
