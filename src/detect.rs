//! What a file is, decided from its bytes and never from its name.
//!
//! A checkpoint renamed `.safetensors` may still be a pickle zip that runs code when loaded with
//! torch; a pickle named `.txt` is still a pickle. The extension is only used afterwards, to give
//! a better error for a file that is *meant* to be safetensors but is broken.

use crate::archive::protobuf::{Fields, Value, WireError};
use crate::archive::{tar, zip};

/// The kinds of file ckptscope recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// A safetensors file.
    Safetensors,
    /// A sharded safetensors model: `model.safetensors.index.json` and its shards.
    SafetensorsSharded,
    /// `torch.save` output since torch 1.6: a zip holding `data.pkl` and `data/<key>` storages.
    PytorchZip,
    /// `torch.save(..., _use_new_zipfile_serialization=False)`: consecutive pickles and raw storages.
    PytorchLegacy,
    /// The torch < 0.4 tar format (`sys_info`, `pickle`, `storages`, `tensors` members).
    PytorchTar,
    /// A TorchScript archive (`torch.jit.save`): holds code, not just weights.
    Torchscript,
    /// A plain pickle stream (`pickle.dump`, joblib...).
    Pickle,
    /// A NumPy `.npy` array.
    Numpy,
    /// A NumPy `.npz` archive of arrays.
    NumpyZip,
    /// A GGUF model (llama.cpp).
    Gguf,
    /// An ONNX model (a protobuf `ModelProto`), its weights inside or in external data files.
    Onnx,
    /// An HDF5 file (`h5py`, Keras 2 `.h5` models, Keras 3 `.weights.h5`).
    Hdf5,
    /// A Keras 3 `.keras` archive: a zip of `config.json` (which can name Python code, such
    /// as a `Lambda` layer's marshalled bytecode), `metadata.json` and `model.weights.h5`.
    Keras,
    /// A TensorFlow SavedModel: a folder holding `saved_model.pb` (or `.pbtxt`) and
    /// `variables/`; its graph can read and write files when run.
    TfSavedModel,
    /// A TensorFlow `GraphDef` or `MetaGraphDef` protobuf (`.pb`, `.meta`), known by name.
    TfGraph,
    /// A TensorFlow checkpoint (TensorBundle): a `.index` LevelDB table and its
    /// `.data-NNNNN-of-NNNNN` shards.
    TfCheckpoint,
    /// A TensorFlow Lite flatbuffer (`TFL3`).
    #[serde(rename = "tflite")]
    TfLite,
    /// A Flax / msgpack state (`flax.serialization.to_bytes`), known by name.
    FlaxMsgpack,
    /// A PaddlePaddle file (`.pdparams`, `.pdopt`, `.pdmodel`, `.pdiparams`) that is not a
    /// pickle (pickles are judged as pickles).
    Paddle,
    /// An Apache Arrow IPC file or Feather file (`ARROW1`, `FEA1`).
    Arrow,
    /// A joblib file compressed with zlib, gzip, bz2, xz or lz4: a pickle inside.
    JoblibCompressed,
    /// A 7-Zip archive.
    #[serde(rename = "7z")]
    SevenZip,
    /// A compressed tar archive (`.tar.gz`, `.tgz`, `.tar.bz2`, `.tar.xz`, `.tar.zst`).
    CompressedTar,
    /// A tar archive that is not torch's legacy tar format.
    Tar,
    /// A compressed stream (gzip, bzip2, xz, zstd, lz4) whose name claims nothing.
    Compressed,
    /// A model file of another runtime, known by its name alone (Core ML, ExecuTorch, NeMo,
    /// TensorRT, TorchServe, llamafile, GGML): never read, always refused.
    OtherModel,
    /// A zip archive that is none of the above.
    Zip,
    /// Not a format ckptscope knows.
    Unknown,
}

/// The pickle that opens every legacy `torch.save` file with the default protocol: PROTO 2,
/// then LONG1 of the magic number 0x1950a86a20f9469cfc6c.
pub const LEGACY_MAGIC_PICKLE: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";

/// Whether `bytes` opens with the legacy magic-number pickle in any protocol `torch.save`
/// writes (`pickle_protocol=1..5`: protocol 1 writes the number as text, with no PROTO;
/// protocols 4 and 5 put a FRAME before it).
pub fn is_legacy_magic(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"L119547037146038801333356L\n") {
        return true;
    }
    let number = LEGACY_MAGIC_PICKLE.get(2..).unwrap_or_default();
    let Some(&[0x80, protocol]) = bytes.get(..2) else {
        return false;
    };
    let rest = bytes.get(2..).unwrap_or_default();
    match protocol {
        2 | 3 => rest.starts_with(number),
        4 | 5 => {
            rest.first() == Some(&0x95) && rest.get(9..).is_some_and(|r| r.starts_with(number))
        }
        _ => false,
    }
}

/// Decides what `bytes` (a whole file, usually a memory map) holds.
pub fn detect(bytes: &[u8]) -> Format {
    if bytes.starts_with(b"GGUF") {
        return Format::Gguf;
    }
    if bytes.starts_with(b"\x93NUMPY") {
        return Format::Numpy;
    }
    if zip::looks_like_zip(bytes) {
        return detect_zip(bytes);
    }
    if tar::is_tar(bytes) {
        return if tar::member_names(bytes).iter().any(|n| n == "pickle") {
            Format::PytorchTar
        } else {
            Format::Tar
        };
    }
    if is_legacy_magic(bytes) {
        return Format::PytorchLegacy;
    }
    if bytes.starts_with(HDF5_MAGIC) {
        return Format::Hdf5;
    }
    if bytes.get(4..8) == Some(b"TFL3") {
        return Format::TfLite;
    }
    if bytes.starts_with(b"ARROW1") || bytes.starts_with(b"FEA1") {
        return Format::Arrow;
    }
    if bytes.starts_with(b"7z\xbc\xaf\x27\x1c") {
        return Format::SevenZip;
    }
    if compression(bytes).is_some() {
        return Format::Compressed;
    }
    if looks_like_safetensors(bytes) {
        return Format::Safetensors;
    }
    if looks_like_index(bytes) {
        return Format::SafetensorsSharded;
    }
    if looks_like_onnx(bytes) {
        return Format::Onnx;
    }
    if is_leveldb_table(bytes) {
        return Format::TfCheckpoint;
    }
    if looks_like_pickle(bytes) {
        return Format::Pickle;
    }
    if is_hdf5(bytes) {
        return Format::Hdf5;
    }
    Format::Unknown
}

/// The signature of an HDF5 superblock.
pub const HDF5_MAGIC: &[u8] = b"\x89HDF\r\n\x1a\n";

/// An HDF5 file: its superblock signature at offset 0, or at 512, 1024, 2048... (a file with a
/// user block; the HDF5 spec allows only those offsets).
pub fn is_hdf5(bytes: &[u8]) -> bool {
    let mut at = 0usize;
    loop {
        match bytes.get(at..) {
            Some(rest) if rest.starts_with(HDF5_MAGIC) => return true,
            Some(rest) if rest.len() >= HDF5_MAGIC.len() => {}
            _ => return false,
        }
        at = match at.checked_mul(2) {
            Some(0) => 512,
            Some(next) => next,
            None => return false,
        };
    }
}

/// The footer magic of a LevelDB table (TensorFlow's `.index` files): the last 8 bytes, little
/// endian, after the 40-byte block handles.
const LEVELDB_MAGIC: u64 = 0xdb47_7524_8b80_fb57;

/// A LevelDB table, as TensorFlow writes a checkpoint's `.index` (TensorBundle).
pub fn is_leveldb_table(bytes: &[u8]) -> bool {
    bytes.len() >= 48
        && bytes
            .get(bytes.len() - 8..)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
            == Some(LEVELDB_MAGIC)
}

/// The compressor whose stream `bytes` starts with: gzip, bzip2, xz, zstd or lz4 (frame).
pub fn compression(bytes: &[u8]) -> Option<&'static str> {
    const MAGICS: [(&[u8], &str); 5] = [
        (b"\x1f\x8b\x08", "gzip"),
        (b"\xfd7zXZ\x00", "xz"),
        (b"\x28\xb5\x2f\xfd", "zstd"),
        (b"\x04\x22\x4d\x18", "lz4"),
        (b"BZh", "bzip2"),
    ];
    let (_, name) = MAGICS.iter().find(|(m, _)| bytes.starts_with(m))?;
    if *name == "bzip2" && !bytes.get(3).is_some_and(|b| (b'1'..=b'9').contains(b)) {
        return None;
    }
    Some(name)
}

/// A zlib stream (joblib's default compressor): method 8, a window of at most 32 KiB and the
/// header checksum right. Two bytes only, so it is trusted only for files named `.joblib`.
pub fn is_zlib(bytes: &[u8]) -> bool {
    match bytes {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(*cmf) * 256 + u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

/// A protobuf `ModelProto`: its top-level fields (at most 64 are looked at) all have the
/// numbers and wire types ONNX gives them, `ir_version` (field 1) is a plausible version (1 to
/// 20; ONNX is at 12), and the `graph` (field 7) is there and starts like a `GraphProto` (every
/// graph field is length-delimited), even when a truncated file cuts it short. A random file
/// passes the first two bytes with a chance of about 1 in 3,000 and the rest almost never.
pub fn looks_like_onnx(bytes: &[u8]) -> bool {
    let (mut version, mut graph) = (false, false);
    for field in Fields::new(bytes, 0).take(64) {
        let field = match field {
            Ok(f) => f,
            Err(WireError::PastEnd { field: 7, at, .. }) => {
                // The key 0x3a is one byte; then the length varint; then what the file holds.
                let body = usize::try_from(at)
                    .ok()
                    .and_then(|at| bytes.get(at.checked_add(1)?..))
                    .and_then(|rest| {
                        let (_, used) = crate::archive::protobuf::varint(rest)?;
                        rest.get(used..)
                    });
                graph = body.is_some_and(|b| !b.is_empty() && looks_like_graph(b));
                break;
            }
            Err(_) => return false,
        };
        let expected = match field.number {
            1 | 5 => 0,
            2 | 3 | 4 | 6 | 7 | 8 | 14 | 20 | 25 | 26 => 2,
            _ => return false,
        };
        if field.wire() != expected {
            return false;
        }
        match (field.number, field.value) {
            (1, Value::Varint(v)) => version = (1..=20).contains(&v),
            (7, Value::Bytes(body, _)) => {
                if !looks_like_graph(body) {
                    return false;
                }
                graph = true;
            }
            _ => {}
        }
    }
    version && graph
}

/// The first fields of a `GraphProto` (or of a prefix of one): known numbers, all
/// length-delimited.
fn looks_like_graph(body: &[u8]) -> bool {
    for field in Fields::new(body, 0).take(8) {
        let number = match field {
            Ok(f) if f.wire() == 2 => f.number,
            Ok(_) => return false,
            Err(WireError::PastEnd { field, .. }) => field,
            Err(_) => return false,
        };
        if !matches!(number, 1 | 2 | 5 | 10 | 11 | 12 | 13 | 14 | 15 | 16) {
            return false;
        }
    }
    true
}

/// Eight length bytes, then (after optional whitespace) the `{` of a JSON object.
fn looks_like_safetensors(bytes: &[u8]) -> bool {
    let Some(rest) = bytes.get(8..) else {
        return false;
    };
    let declared = bytes
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0);
    declared >= 2 && rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// A JSON object that mentions `weight_map` near its start (HF index files put it within the
/// first few hundred bytes, after `metadata`).
fn looks_like_index(bytes: &[u8]) -> bool {
    let head = bytes.get(..64 * 1024).unwrap_or(bytes);
    head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        && head.windows(12).any(|w| w == b"\"weight_map\"")
}

/// A pickle stream: PROTO 2..5, or a protocol 0/1 stream whose first byte is an opcode that can
/// start one and whose last meaningful byte is STOP (`.`).
fn looks_like_pickle(bytes: &[u8]) -> bool {
    match bytes {
        [0x80, proto, ..] => *proto <= 5,
        [first, ..] => {
            const STARTS: &[u8] = b"(}]cNI LFSVXUTGJKM\x88\x89)";
            let last = bytes.iter().rev().find(|b| !b.is_ascii_whitespace());
            STARTS.contains(first) && last == Some(&b'.')
        }
        [] => false,
    }
}

/// True for a (lower-cased) member name only TorchScript archives have: `constants.pkl` or
/// anything under `code/`.
pub fn is_torchscript_member(lower: &str) -> bool {
    lower.ends_with("/constants.pkl")
        || lower == "constants.pkl"
        || lower.contains("/code/")
        || lower.starts_with("code/")
}

/// The members of a Keras 3 archive (lower-cased names): `config.json` at the root beside
/// `metadata.json` or the `model.weights.*` store.
pub fn is_keras_members(lower: &[String]) -> bool {
    lower.iter().any(|n| n == "config.json")
        && lower
            .iter()
            .any(|n| n == "metadata.json" || n.starts_with("model.weights."))
}

fn detect_zip(bytes: &[u8]) -> Format {
    let Ok(entries) = zip::entries(bytes) else {
        return Format::Zip;
    };
    let lower: Vec<String> = entries
        .iter()
        .map(|e| e.name.to_ascii_lowercase())
        .collect();
    if lower.iter().any(|n| is_torchscript_member(n)) {
        return Format::Torchscript;
    }
    if lower.iter().any(|n| n.ends_with("data.pkl")) {
        return Format::PytorchZip;
    }
    if !lower.is_empty() && lower.iter().all(|n| n.ends_with(".npy")) {
        return Format::NumpyZip;
    }
    if is_keras_members(&lower) {
        return Format::Keras;
    }
    Format::Zip
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn fixtures_are_detected_by_content() {
        assert_eq!(
            detect(&fixture("st_basic.safetensors")),
            Format::Safetensors
        );
        assert_eq!(detect(&fixture("torch_zip_basic.pt")), Format::PytorchZip);
        assert_eq!(detect(&fixture("lightning_like.ckpt")), Format::PytorchZip);
        assert_eq!(
            detect(&fixture("torch_legacy_basic.pt")),
            Format::PytorchLegacy
        );
        assert_eq!(detect(&fixture("malicious_exec.pkl")), Format::Pickle);
        assert_eq!(
            detect(&fixture("sharded/model.safetensors.index.json")),
            Format::SafetensorsSharded
        );
    }

    #[test]
    fn small_headers_of_other_formats() {
        assert_eq!(detect(b"GGUF\x03\x00\x00\x00"), Format::Gguf);
        assert_eq!(detect(b"\x93NUMPY\x01\x00v\x00{'descr'"), Format::Numpy);
        assert_eq!(detect(b"(lp0\nI1\na."), Format::Pickle);
        assert_eq!(detect(b"hello world"), Format::Unknown);
        assert_eq!(detect(b""), Format::Unknown);
        assert_eq!(detect(b"\x80\x09garbage"), Format::Unknown);
        // ir_version 8, producer "x", a graph of 2 bytes; cut short; without a graph.
        assert_eq!(detect(b"\x08\x08\x12\x01x\x3a\x02\x12\x00"), Format::Onnx);
        assert_eq!(detect(b"\x08\x08\x3a\x7f\x12\x01g\x2a\x05ab"), Format::Onnx);
        assert_eq!(detect(b"\x08\x08\x3a\x7f\x08"), Format::Unknown);
        assert_eq!(detect(b"\x08\x08\x12\x01x"), Format::Unknown);
        assert_eq!(detect(b"\x08\xc8\x01\x3a\x00"), Format::Unknown);
        assert_eq!(detect(b"\x08\x08\x10\x01\x3a\x00"), Format::Unknown);
    }

    #[test]
    fn formats_not_read_yet_are_recognised_by_content() {
        assert_eq!(detect(b"\x89HDF\r\n\x1a\n\x00\x00"), Format::Hdf5);
        let mut user_block = vec![0u8; 1024];
        user_block.extend_from_slice(HDF5_MAGIC);
        assert_eq!(detect(&user_block), Format::Hdf5);
        // Only at 512 * 2^k: not at 700.
        let mut elsewhere = vec![0u8; 700];
        elsewhere.extend_from_slice(HDF5_MAGIC);
        assert_eq!(detect(&elsewhere), Format::Unknown);
        assert_eq!(detect(b"\x1c\x00\x00\x00TFL3\x00\x00"), Format::TfLite);
        assert_eq!(detect(b"ARROW1\x00\x00"), Format::Arrow);
        assert_eq!(detect(b"FEA1...."), Format::Arrow);
        assert_eq!(detect(b"7z\xbc\xaf\x27\x1c\x00\x04"), Format::SevenZip);
        for magic in [
            &b"\x1f\x8b\x08\x00"[..],
            b"BZh91AY",
            b"\xfd7zXZ\x00\x00",
            b"\x28\xb5\x2f\xfd\x00",
            b"\x04\x22\x4d\x18\x00",
        ] {
            assert_eq!(detect(magic), Format::Compressed, "{magic:?}");
        }
        assert_eq!(detect(b"BZhx"), Format::Unknown);
        let mut index = vec![0u8; 40];
        index.extend_from_slice(&LEVELDB_MAGIC.to_le_bytes());
        assert_eq!(detect(&index), Format::TfCheckpoint);
        assert_eq!(
            detect(&index[8..]),
            Format::Unknown,
            "too short for a footer"
        );
        assert!(is_zlib(b"\x78\x9c") && is_zlib(b"\x78\x01") && is_zlib(b"\x78\xda"));
        assert!(!is_zlib(b"\x78\x9d") && !is_zlib(b"x"));
    }

    #[test]
    fn tar_names_are_read_and_bounded() {
        let mut tar = vec![0u8; 2048];
        tar[..6].copy_from_slice(b"pickle");
        tar[124..135].copy_from_slice(b"00000000012");
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(tar::member_names(&tar), ["pickle"]);
        assert_eq!(detect(&tar), Format::PytorchTar);
        tar[124..135].copy_from_slice(b"77777777777");
        assert_eq!(tar::member_names(&tar), ["pickle"]);
        tar[..6].copy_from_slice(b"notes_");
        assert_eq!(detect(&tar), Format::Tar);
    }
}
