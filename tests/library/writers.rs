//! Issue 12: hostile and broken inputs never give a damaged or runaway output, and every file
//! ckptscope writes gets the mode, the place and the durability a careful tool gives it.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ckptscope::convert::{ConvertError, ConvertOptions, convert};
use ckptscope::pipeline::WriteError;
use ckptscope::progress::Progress;
use common::{fixture, run};

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A pickle int: BININT for small values, LONG1 beyond.
fn int(v: u64) -> Vec<u8> {
    if v < (1 << 31) {
        let mut b = vec![b'J'];
        b.extend_from_slice(&(v as u32).to_le_bytes());
        b
    } else {
        let bytes = v.to_le_bytes();
        let len = bytes.iter().rposition(|&b| b != 0).unwrap() + 2; // keep a sign byte
        let mut b = vec![0x8a, len as u8];
        b.extend_from_slice(&bytes[..len.min(8)]);
        b.resize(2 + len, 0);
        b
    }
}

/// A torch zip with one 1-D tensor `w` of `shape` elements, `stride`, viewing a ByteStorage of
/// `numel` bytes.
fn one_tensor_zip(numel: u64, shape: u64, stride: u64) -> Vec<u8> {
    let mut p = b"\x80\x02ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nByteStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu".to_vec();
    p.extend(int(numel));
    p.extend_from_slice(b"tQK\x00");
    p.extend(int(shape));
    p.push(0x85);
    p.extend(int(stride));
    p.push(0x85);
    p.extend_from_slice(b"\x89ccollections\nOrderedDict\n)RtRu.");
    let data: Vec<u8> = (0..numel).map(|i| i as u8).collect();
    common::Zip::new()
        .add("x/data.pkl", &p)
        .add("x/byteorder", b"little")
        .add("x/data/0", &data)
        .bytes()
}

fn temp_with(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    common::write_temp(name, bytes)
}

fn convert_with(
    input: &Path,
    options: ConvertOptions,
) -> Result<ckptscope::convert::ConvertReport, ConvertError> {
    convert(input, &options, &Progress::default())
}

#[test]
fn a_stride_0_terabyte_from_one_byte_is_refused_with_its_sizes() {
    let (dir, input) = temp_with("expand.pt", &one_tensor_zip(1, 1 << 40, 0));
    // Listed as what it claims to be...
    let ckpt = ckptscope::open(&input).unwrap();
    assert_eq!(ckpt.require("w").unwrap().shape, [1u64 << 40]);
    // ...but not written.
    let err = convert_with(&input, ConvertOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ConvertError::Expanded { .. }), "{text}");
    assert!(
        text.contains("`w`")
            && text.contains(&(1u64 << 40).to_string())
            && text.contains("only 1 bytes")
            && !text.contains("--"),
        "{text}"
    );
    let cli = ckptscope::output::convert::error_text(&err);
    assert!(cli.contains("--materialize-expanded"), "{cli}");
    assert_eq!(names(dir.path()), ["expand.pt"]);
    // A modest expansion (8x) is an ordinary tensor.
    let (dir, input) = temp_with("small.pt", &one_tensor_zip(4, 32, 0));
    let r = convert_with(&input, ConvertOptions::default()).unwrap();
    let out = ckptscope::open(&r.output).unwrap();
    assert_eq!(
        out.tensor_bytes(out.require("w").unwrap()).unwrap(),
        [0u8; 32]
    );
    assert_eq!(names(dir.path()), ["small.pt", "small.safetensors"]);
    // The limit is the one in Limits.
    let mut limits = ckptscope::Limits::DEFAULT;
    limits.max_expansion = 4;
    let err = convert_with(
        &input,
        ConvertOptions {
            limits,
            force: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, ConvertError::Expanded { factor: 4, .. }),
        "{err}"
    );
}

#[test]
fn materializing_more_than_the_disk_holds_is_refused_before_writing() {
    // 1 PiB: more than any test machine has free.
    let (dir, input) = temp_with("expand.pt", &one_tensor_zip(1, 1 << 50, 0));
    let err = convert_with(
        &input,
        ConvertOptions {
            materialize_expanded: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, ConvertError::Write(WriteError::NoSpace { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("free"), "{err}");
    assert_eq!(names(dir.path()), ["expand.pt"]);
    // The CLI says so and fails.
    let (code, _, stderr) = run(&["convert", "--materialize-expanded", input.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("free"), "{stderr}");
}

#[test]
fn a_legacy_file_cut_short_fails_unless_skipping_is_asked_for() {
    let whole = std::fs::read(fixture("torch_legacy_basic.pt")).unwrap();
    let cut = &whole[..whole.len() * 99 / 100];
    let (dir, input) = temp_with("legacy.pt", cut);
    let err = convert_with(&input, ConvertOptions::default()).unwrap_err();
    assert!(matches!(err, ConvertError::Unreadable { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("cannot be read") && !text.contains("--skip-unreadable"),
        "{text}"
    );
    let cli = ckptscope::output::convert::error_text(&err);
    assert!(cli.contains("--skip-unreadable"), "{cli}");
    assert_eq!(names(dir.path()), ["legacy.pt"]);
    let (code, stdout, stderr) = run(&["convert", input.to_str().unwrap()]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(!stdout.contains("verified"), "{stdout}");
    assert_eq!(names(dir.path()), ["legacy.pt"]);

    // Asked for: the rest is converted, and the output and the report say what is missing.
    let r = convert_with(
        &input,
        ConvertOptions {
            skip_unreadable: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!r.skipped.is_empty());
    let out = ckptscope::open(&r.output).unwrap();
    let listed: serde_json::Value =
        serde_json::from_str(out.metadata_value("ckptscope.skipped").unwrap()).unwrap();
    for s in &r.skipped {
        assert!(listed.get(&s.name).is_some(), "{} not in metadata", s.name);
        assert!(out.tensor(&s.name).is_none());
    }
    let (code, stdout, stderr) = run(&[
        "convert",
        "--force",
        "--skip-unreadable",
        input.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stdout.contains("INCOMPLETE") && stdout.contains("skipped"),
        "{stdout}"
    );
}

#[test]
fn a_zip_storage_with_flipped_bytes_fails_its_crc_naming_member_and_tensor() {
    let mut bytes = std::fs::read(fixture("torch_zip_basic.pt")).unwrap();
    let entries = ckptscope::archive::zip::entries(&bytes).unwrap();
    let data0 = entries.iter().find(|e| e.name.ends_with("data/0")).unwrap();
    let range = ckptscope::archive::zip::data_range(&bytes, data0).unwrap();
    for b in &mut bytes[range.start as usize + 16..range.start as usize + 24] {
        *b ^= 0xA5;
    }
    let (dir, input) = temp_with("flipped.pt", &bytes);
    let err = convert_with(&input, ConvertOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ConvertError::Damaged { .. }), "{text}");
    assert!(
        text.contains("torch_zip_basic/data/0") && text.contains("CRC-32") && text.contains('`'),
        "{text}"
    );
    let ConvertError::Damaged { tensors, .. } = &err else {
        unreachable!()
    };
    assert!(!tensors.is_empty());
    assert_eq!(names(dir.path()), ["flipped.pt"]);
    let (code, _, stderr) = run(&["convert", input.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("damaged"), "{stderr}");
    assert_eq!(names(dir.path()), ["flipped.pt"]);
}

/// Runs the binary under `umask` (through `sh`), with its own hash cache folder.
fn run_with_umask(umask: &str, cache: &Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_ckptscope"))
        .args(args)
        .env("CKPTSCOPE_CACHE_DIR", cache)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn new_files_get_0666_minus_the_umask_and_rewrites_keep_their_mode() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.pt");
    std::fs::copy(fixture("torch_zip_basic.pt"), &input).unwrap();
    let cache = dir.path().join("cache");
    let out = dir.path().join("out.safetensors");
    let o = out.to_str().unwrap();
    for (umask, want) in [("027", 0o640), ("002", 0o664), ("077", 0o600)] {
        let _ = std::fs::remove_file(&out);
        let _ = std::fs::remove_dir_all(&cache);
        let (code, err) = run_with_umask(
            umask,
            &cache,
            &["convert", input.to_str().unwrap(), "-o", o],
        );
        assert_eq!(code, 0, "{err}");
        assert_eq!(mode(&out), want, "convert output under umask {umask}");
        // The hash cache the converter fills is written the same way.
        assert_eq!(
            mode(&cache.join("hashes.json")),
            want,
            "cache under umask {umask}"
        );
    }
    // Replacing an output keeps the mode it had, whatever the umask.
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o604)).unwrap();
    let (code, err) = run_with_umask(
        "077",
        &cache,
        &["convert", "--force", input.to_str().unwrap(), "-o", o],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(mode(&out), 0o604);
    // set-parent rewrites keep it too.
    let parent = dir.path().join("parent.safetensors");
    std::fs::copy(fixture("st_lineage_v1.safetensors"), &parent).unwrap();
    let (code, err) = run_with_umask("077", &cache, &["set-parent", o, parent.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(mode(&out), 0o604);
    assert_eq!(
        ckptscope::open(&out).unwrap().metadata_value("parent"),
        Some("parent.safetensors")
    );
    let mut left = names(dir.path());
    left.retain(|n| n.starts_with('.'));
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn set_parent_on_a_hugging_face_cache_symlink_rewrites_the_blob_and_keeps_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = dir.path().join("blobs");
    let snapshot = dir.path().join("snapshots/abc123");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::create_dir_all(&snapshot).unwrap();
    let blob = blobs.join("5f0e7a");
    std::fs::copy(fixture("st_lineage_v2.safetensors"), &blob).unwrap();
    std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = snapshot.join("model.safetensors");
    std::os::unix::fs::symlink("../../blobs/5f0e7a", &link).unwrap();
    let parent = dir.path().join("v1.safetensors");
    std::fs::copy(fixture("st_lineage_v1.safetensors"), &parent).unwrap();

    let (code, err) = run_with_umask(
        "077",
        &dir.path().join("cache"),
        &[
            "set-parent",
            link.to_str().unwrap(),
            parent.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let meta = std::fs::symlink_metadata(&link).unwrap();
    assert!(
        meta.file_type().is_symlink(),
        "the link was replaced by a file"
    );
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("../../blobs/5f0e7a")
    );
    assert_eq!(mode(&blob), 0o644);
    let ckpt = ckptscope::open(&blob).unwrap();
    assert!(ckpt.metadata_value("parent_sha256").is_some());
    assert_eq!(names(&snapshot), ["model.safetensors"]);
    assert_eq!(names(&blobs), ["5f0e7a"]);
}

#[test]
fn converting_through_a_symlinked_output_writes_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.pt");
    std::fs::copy(fixture("torch_zip_basic.pt"), &input).unwrap();
    let real = dir.path().join("real.safetensors");
    std::fs::write(&real, b"old").unwrap();
    let link = dir.path().join("link.safetensors");
    std::os::unix::fs::symlink("real.safetensors", &link).unwrap();
    convert_with(
        &input,
        ConvertOptions {
            output: Some(link.clone()),
            force: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(ckptscope::open(&real).is_ok());
}

#[test]
fn sigkill_while_the_output_is_being_written_leaves_no_file() {
    let (dir, input) = temp_with("big.pt", &one_tensor_zip(96 << 20, 96 << 20, 1));
    let output = dir.path().join("big.safetensors");
    let mut caught = 0;
    for _ in 0..5 {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ckptscope"))
            .args(["convert", "--force", input.to_str().unwrap(), "-o"])
            .arg(&output)
            .env("CKPTSCOPE_CACHE_DIR", dir.path().join("cache"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the process holds its unnamed output file ("/dir/#inode (deleted)" in
        // /proc), then kill it mid-write.
        let fds = PathBuf::from(format!("/proc/{}/fd", child.id()));
        let folder = dir.path().to_string_lossy().into_owned();
        let start = std::time::Instant::now();
        let mut writing = false;
        while start.elapsed() < std::time::Duration::from_secs(20) && !writing {
            writing = std::fs::read_dir(&fds)
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| {
                    std::fs::read_link(e.path()).is_ok_and(|t| {
                        let t = t.to_string_lossy();
                        t.starts_with(&folder) && t.ends_with("(deleted)")
                    })
                });
            if child.try_wait().unwrap().is_some() {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        if writing {
            caught += 1;
            assert!(!output.exists(), "a killed conversion left an output");
        }
        let _ = std::fs::remove_file(&output);
        let mut left = names(dir.path());
        left.retain(|n| n != "cache");
        assert_eq!(left, ["big.pt"], "a killed conversion left files behind");
    }
    assert!(
        caught > 0,
        "never caught the converter while it was writing"
    );
}
