//! The formats ckptscope knows, in one table: for each its names, the file names it claims, its
//! MIME type, the role its files play in a model folder, whether it can carry code, and its
//! reader. Detection's verdict on content is [`crate::detect::detect`] (an ordered decision
//! tree: zip before tar before pickle); every consumer of names reads this table — `scan`, the
//! folder roles, lineage's file filter, the open dialog, the start screen, `install-desktop`, the
//! MIME and `.desktop` files in `assets/` and the packager's file associations (a test checks
//! the last three against it).
//!
//! A format in the table without a reader is *claimed but not understood*: a file whose name or
//! content says it is one is refused ("not scanned"), never skipped and never safe. Adding a
//! reader is what makes ckptscope judge it.

use std::path::Path;

use super::reader::{Input, Judgement, Reader};
use super::readers;
use super::{Checkpoint, Format, MappedFile, OpenOptions};
use crate::archive::zip;
use crate::detect::{detect, is_zlib};
use crate::error::Error;
use crate::pickle::StreamReport;
use crate::pickle::policy::{Finding, Risk};
use crate::progress::Progress;

/// One way a file's name claims a format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// The name ends with `.` and this (ASCII case ignored); it may hold dots
    /// (`safetensors.index.json`, `weights.h5`).
    Ext(&'static str),
    /// The whole file name (ASCII case ignored).
    Name(&'static str),
    /// TensorFlow's shard suffix `.data-NNNNN-of-NNNNN`.
    TfShard,
}

impl Pattern {
    /// Whether the (lower-cased) file name matches.
    pub fn matches(self, lower: &str) -> bool {
        match self {
            Pattern::Ext(ext) => lower
                .strip_suffix(ext)
                .is_some_and(|stem| stem.len() > 1 && stem.ends_with('.')),
            Pattern::Name(name) => lower == name,
            Pattern::TfShard => is_tf_shard(lower),
        }
    }

    /// How the pattern is shown to people (`.pt`, `saved_model.pb`, `.data-00000-of-00001`).
    pub fn shown(self) -> String {
        match self {
            Pattern::Ext(ext) => format!(".{ext}"),
            Pattern::Name(name) => name.to_string(),
            Pattern::TfShard => ".data-NNNNN-of-NNNNN".into(),
        }
    }
}

/// `name.data-00000-of-00001`: five digits, `-of-`, five digits.
fn is_tf_shard(lower: &str) -> bool {
    let Some(at) = lower.rfind(".data-") else {
        return false;
    };
    let tail = lower
        .get(at + ".data-".len()..)
        .unwrap_or_default()
        .as_bytes();
    tail.len() == 14
        && tail.get(5..9) == Some(b"-of-")
        && tail
            .iter()
            .enumerate()
            .all(|(i, b)| (5..9).contains(&i) || b.is_ascii_digit())
}

/// What a file named like a format holds in a model folder, when no naming convention of
/// trainers placed it (see `package::roles`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamedRole {
    /// A model's weights.
    Weights,
    /// Weights with optimizer state (Lightning `.ckpt`).
    TrainingCheckpoint,
    /// Nothing the name can promise (`.pkl`, `.npy`).
    Unsaid,
}

/// A name a format claims, and the role it gives a file.
#[derive(Clone, Copy, Debug)]
pub struct Claim {
    /// The name pattern.
    pub pattern: Pattern,
    /// The role the name gives.
    pub role: NamedRole,
}

const fn weights(pattern: Pattern) -> Claim {
    Claim {
        pattern,
        role: NamedRole::Weights,
    }
}

const fn unsaid(pattern: Pattern) -> Claim {
    Claim {
        pattern,
        role: NamedRole::Unsaid,
    }
}

/// The role a file of the format plays by its content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentRole {
    /// A model's weights.
    Weights,
    /// Weights, optimizer state or neither, from the tensor names (pickles).
    ByTensors,
    /// Not a model's file.
    Other,
}

/// A MIME type as the desktop registers it.
#[derive(Debug)]
pub struct Mime {
    /// `application/x-safetensors`.
    pub name: &'static str,
    /// What the packager shows (`safetensors weights`).
    pub title: &'static str,
    /// What the desktop shows (`safetensors model weights`).
    pub comment: &'static str,
    /// shared-mime-info globs, with a weight (0: the default 50).
    pub globs: &'static [(&'static str, u8)],
    /// `sub-class-of`.
    pub parent: Option<&'static str>,
    /// A string at offset 0 that identifies the type.
    pub magic: Option<&'static str>,
}

/// One format.
pub struct Entry {
    /// The format.
    pub format: Format,
    /// Its spelling in `--json` output.
    pub json_name: &'static str,
    /// How it is named to users.
    pub label: &'static str,
    /// The file names it claims.
    pub claims: &'static [Claim],
    /// Its MIME type, for formats the desktop opens with ckptscope.
    pub mime: Option<&'static Mime>,
    /// The role its files play by content.
    pub role: ContentRole,
    /// Whether loading it with its own library can run code (pickles, TorchScript, Keras
    /// `Lambda` layers, TensorFlow graphs that read and write files).
    pub carries_code: bool,
    /// Whether its loading goes through Python's `pickle`.
    pub pickle: bool,
    /// Whether lineage looks at its files (they carry the metadata lineage links by).
    pub lineage: bool,
    /// Its reader; `None`: claimed but not understood yet, so refused (fail closed).
    pub reader: Option<&'static dyn Reader>,
    /// For a format not read yet: what loading it can do, said when it is refused.
    pub risk: &'static str,
}

impl Entry {
    /// Whether ckptscope refuses files of this format: it claims a model (or an archive that can
    /// hold one) that no reader understands.
    pub fn refused(&self) -> bool {
        self.reader.is_none() && !matches!(self.format, Format::Unknown)
    }
}

const SAFETENSORS_MIME: Mime = Mime {
    name: "application/x-safetensors",
    title: "safetensors weights",
    comment: "safetensors model weights",
    globs: &[("*.safetensors", 0)],
    parent: None,
    magic: None,
};
const INDEX_MIME: Mime = Mime {
    name: "application/x-safetensors-index+json",
    title: "sharded safetensors index",
    comment: "sharded safetensors model index",
    globs: &[("*.safetensors.index.json", 80)],
    parent: Some("application/json"),
    magic: None,
};
// Only Hugging Face's `.bin` weight files: every other `.bin` stays what it is to the desktop.
const PYTORCH_MIME: Mime = Mime {
    name: "application/x-pytorch-checkpoint",
    title: "PyTorch checkpoint",
    comment: "PyTorch checkpoint (pickle)",
    globs: &[
        ("*.pt", 0),
        ("*.pth", 0),
        ("*.ckpt", 0),
        ("pytorch_model*.bin", 0),
        ("*.bin.index.json", 80),
    ],
    parent: None,
    magic: None,
};
const PICKLE_MIME: Mime = Mime {
    name: "application/x-python-pickle",
    title: "Python pickle",
    comment: "Python pickle",
    globs: &[("*.pkl", 0), ("*.pickle", 0)],
    parent: None,
    magic: None,
};
const GGUF_MIME: Mime = Mime {
    name: "application/x-gguf",
    title: "GGUF model",
    comment: "GGUF model (llama.cpp)",
    globs: &[("*.gguf", 0)],
    parent: None,
    magic: Some("GGUF"),
};
const ONNX_MIME: Mime = Mime {
    name: "application/x-onnx",
    title: "ONNX model",
    comment: "ONNX model",
    globs: &[("*.onnx", 0)],
    parent: None,
    magic: None,
};
const NPY_MIME: Mime = Mime {
    name: "application/x-npy",
    title: "NumPy array",
    comment: "NumPy array",
    globs: &[("*.npy", 0)],
    parent: None,
    magic: None,
};
const NPZ_MIME: Mime = Mime {
    name: "application/x-npz",
    title: "NumPy archive",
    comment: "NumPy array archive",
    globs: &[("*.npz", 0)],
    parent: Some("application/zip"),
    magic: None,
};

/// An entry with the defaults of a format not read yet; the fields given override them.
const fn entry(format: Format, json_name: &'static str, label: &'static str) -> Entry {
    Entry {
        format,
        json_name,
        label,
        claims: &[],
        mime: None,
        role: ContentRole::Weights,
        carries_code: false,
        pickle: false,
        lineage: false,
        reader: None,
        risk: "",
    }
}

/// Every format, in the order tables list them. Tests check that each [`Format`] appears once.
pub static FORMATS: &[Entry] = &[
    Entry {
        claims: &[weights(Pattern::Ext("safetensors"))],
        mime: Some(&SAFETENSORS_MIME),
        lineage: true,
        reader: Some(&readers::Safetensors),
        ..entry(Format::Safetensors, "safetensors", "safetensors")
    },
    Entry {
        claims: &[unsaid(Pattern::Ext("safetensors.index.json"))],
        mime: Some(&INDEX_MIME),
        lineage: true,
        reader: Some(&readers::ShardedIndex),
        ..entry(
            Format::SafetensorsSharded,
            "safetensors_sharded",
            "sharded safetensors",
        )
    },
    Entry {
        claims: &[
            weights(Pattern::Ext("pt")),
            weights(Pattern::Ext("pth")),
            weights(Pattern::Ext("bin")),
            Claim {
                pattern: Pattern::Ext("ckpt"),
                role: NamedRole::TrainingCheckpoint,
            },
        ],
        mime: Some(&PYTORCH_MIME),
        role: ContentRole::ByTensors,
        carries_code: true,
        pickle: true,
        lineage: true,
        reader: Some(&readers::Pickled),
        ..entry(
            Format::PytorchZip,
            "pytorch_zip",
            "PyTorch zip checkpoint (pickle)",
        )
    },
    Entry {
        mime: Some(&PYTORCH_MIME),
        role: ContentRole::ByTensors,
        carries_code: true,
        pickle: true,
        lineage: true,
        reader: Some(&readers::Pickled),
        ..entry(
            Format::PytorchLegacy,
            "pytorch_legacy",
            "PyTorch legacy checkpoint (pickle)",
        )
    },
    Entry {
        mime: Some(&PYTORCH_MIME),
        role: ContentRole::ByTensors,
        carries_code: true,
        pickle: true,
        lineage: true,
        reader: Some(&readers::Pickled),
        ..entry(
            Format::PytorchTar,
            "pytorch_tar",
            "PyTorch tar checkpoint (pickle)",
        )
    },
    Entry {
        mime: Some(&PYTORCH_MIME),
        carries_code: true,
        pickle: true,
        lineage: true,
        reader: Some(&readers::Pickled),
        ..entry(
            Format::Torchscript,
            "torchscript",
            "TorchScript archive (code + pickle)",
        )
    },
    Entry {
        claims: &[
            unsaid(Pattern::Ext("pkl")),
            unsaid(Pattern::Ext("pickle")),
            unsaid(Pattern::Ext("joblib")),
        ],
        mime: Some(&PICKLE_MIME),
        role: ContentRole::ByTensors,
        carries_code: true,
        pickle: true,
        lineage: true,
        reader: Some(&readers::Pickled),
        ..entry(Format::Pickle, "pickle", "Python pickle")
    },
    Entry {
        claims: &[weights(Pattern::Ext("gguf"))],
        mime: Some(&GGUF_MIME),
        reader: Some(&readers::Gguf),
        ..entry(Format::Gguf, "gguf", "GGUF model")
    },
    Entry {
        claims: &[weights(Pattern::Ext("onnx"))],
        mime: Some(&ONNX_MIME),
        reader: Some(&readers::Onnx),
        ..entry(Format::Onnx, "onnx", "ONNX model")
    },
    Entry {
        claims: &[unsaid(Pattern::Ext("npy"))],
        mime: Some(&NPY_MIME),
        carries_code: true,
        pickle: true,
        reader: Some(&readers::Numpy),
        ..entry(Format::Numpy, "numpy", "NumPy .npy array")
    },
    Entry {
        claims: &[unsaid(Pattern::Ext("npz"))],
        mime: Some(&NPZ_MIME),
        carries_code: true,
        pickle: true,
        reader: Some(&readers::Numpy),
        ..entry(Format::NumpyZip, "numpy_zip", "NumPy .npz archive")
    },
    Entry {
        claims: &[
            weights(Pattern::Ext("h5")),
            weights(Pattern::Ext("hdf5")),
            weights(Pattern::Ext("weights.h5")),
        ],
        carries_code: true,
        risk: "a Keras .h5 model's config can name Python code (Lambda layers) that Keras runs when it loads the model",
        ..entry(Format::Hdf5, "hdf5", "HDF5 file (Keras .h5, h5py)")
    },
    Entry {
        claims: &[weights(Pattern::Ext("keras"))],
        carries_code: true,
        risk: "its config.json can hold Python bytecode (Lambda layers) and name classes that Keras imports and runs when it loads the model",
        ..entry(Format::Keras, "keras", "Keras v3 archive (.keras)")
    },
    Entry {
        claims: &[
            weights(Pattern::Name("saved_model.pb")),
            weights(Pattern::Name("saved_model.pbtxt")),
        ],
        carries_code: true,
        risk: "its graph's functions can read and write files (ReadFile, WriteFile, tf.io ops) when the model is loaded and run",
        ..entry(
            Format::TfSavedModel,
            "tf_saved_model",
            "TensorFlow SavedModel",
        )
    },
    Entry {
        claims: &[weights(Pattern::Ext("pb")), weights(Pattern::Ext("meta"))],
        carries_code: true,
        risk: "a TensorFlow graph can read and write files (ReadFile, WriteFile ops) when it is run",
        ..entry(
            Format::TfGraph,
            "tf_graph",
            "TensorFlow graph (GraphDef or MetaGraphDef protobuf)",
        )
    },
    Entry {
        claims: &[weights(Pattern::TfShard)],
        ..entry(
            Format::TfCheckpoint,
            "tf_checkpoint",
            "TensorFlow checkpoint (TensorBundle .index and .data shards)",
        )
    },
    Entry {
        claims: &[weights(Pattern::Ext("tflite"))],
        ..entry(Format::TfLite, "tflite", "TensorFlow Lite model")
    },
    Entry {
        claims: &[
            weights(Pattern::Ext("msgpack")),
            weights(Pattern::Ext("flax")),
        ],
        ..entry(Format::FlaxMsgpack, "flax_msgpack", "Flax msgpack state")
    },
    Entry {
        claims: &[
            weights(Pattern::Ext("pdparams")),
            unsaid(Pattern::Ext("pdopt")),
            weights(Pattern::Ext("pdmodel")),
            weights(Pattern::Ext("pdiparams")),
        ],
        carries_code: true,
        risk: "PaddlePaddle loads .pdparams and .pdopt files with pickle",
        ..entry(Format::Paddle, "paddle", "PaddlePaddle file")
    },
    Entry {
        claims: &[
            unsaid(Pattern::Ext("arrow")),
            unsaid(Pattern::Ext("feather")),
            unsaid(Pattern::Ext("ipc")),
        ],
        role: ContentRole::Other,
        ..entry(Format::Arrow, "arrow", "Apache Arrow IPC or Feather file")
    },
    Entry {
        role: ContentRole::ByTensors,
        carries_code: true,
        pickle: true,
        risk: "joblib unpickles what it decompresses, and a pickle can run any code",
        ..entry(
            Format::JoblibCompressed,
            "joblib_compressed",
            "compressed joblib file (a pickle inside)",
        )
    },
    Entry {
        claims: &[unsaid(Pattern::Ext("7z"))],
        role: ContentRole::Other,
        risk: "an archive can hold pickles and other files that run code when loaded",
        ..entry(Format::SevenZip, "7z", "7-Zip archive")
    },
    Entry {
        claims: &[
            unsaid(Pattern::Ext("tar.gz")),
            unsaid(Pattern::Ext("tgz")),
            unsaid(Pattern::Ext("tar.bz2")),
            unsaid(Pattern::Ext("tbz2")),
            unsaid(Pattern::Ext("tar.xz")),
            unsaid(Pattern::Ext("txz")),
            unsaid(Pattern::Ext("tar.zst")),
        ],
        role: ContentRole::Other,
        risk: "an archive can hold pickles and other files that run code when loaded",
        ..entry(
            Format::CompressedTar,
            "compressed_tar",
            "compressed tar archive",
        )
    },
    Entry {
        claims: &[unsaid(Pattern::Ext("tar"))],
        role: ContentRole::Other,
        risk: "an archive can hold pickles and other files that run code when loaded",
        ..entry(Format::Tar, "tar", "tar archive")
    },
    Entry {
        role: ContentRole::Other,
        risk: "a compressed file can hold a pickle or a model that runs code when loaded",
        ..entry(Format::Compressed, "compressed", "compressed file")
    },
    Entry {
        claims: &[unsaid(Pattern::Ext("zip"))],
        role: ContentRole::Other,
        carries_code: true,
        reader: Some(&ZipArchive),
        ..entry(Format::Zip, "zip", "zip archive")
    },
    Entry {
        role: ContentRole::Other,
        ..entry(Format::Unknown, "unknown", "unknown format")
    },
];

/// The entry of `format`.
pub fn lookup(format: Format) -> &'static Entry {
    FORMATS
        .iter()
        .find(|e| e.format == format)
        // Every variant has an entry (checked by a test); Unknown is the last one.
        .unwrap_or(&FORMATS[FORMATS.len() - 1])
}

impl Format {
    /// How the format is named to users.
    pub fn label(self) -> &'static str {
        lookup(self).label
    }

    /// The spelling used in `--json` output.
    pub fn json_name(self) -> &'static str {
        lookup(self).json_name
    }

    /// Formats whose loading in Python goes through `pickle` (and so can run code).
    pub fn is_pickle_based(self) -> bool {
        lookup(self).pickle
    }

    /// Whether ckptscope reads this format (judges and opens it).
    pub fn is_read(self) -> bool {
        lookup(self).reader.is_some()
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

fn lower_name(path: &Path) -> Option<String> {
    Some(path.file_name()?.to_string_lossy().to_ascii_lowercase())
}

/// The format a file's name claims, and the claim (the longest pattern that matches wins:
/// `model.weights.h5` over `.h5`, `x.tar.gz` over nothing).
pub fn claim(path: &Path) -> Option<(&'static Entry, &'static Claim)> {
    let lower = lower_name(path)?;
    let claim = FORMATS
        .iter()
        .flat_map(|e| e.claims.iter().map(move |c| (e, c)))
        .filter(|(_, c)| c.pattern.matches(&lower))
        .max_by_key(|(_, c)| match c.pattern {
            Pattern::Ext(ext) => ext.len(),
            Pattern::Name(_) | Pattern::TfShard => usize::MAX,
        })?;
    Some(claim)
}

/// The format a file's name claims.
pub fn claimed_by_name(path: &Path) -> Option<&'static Entry> {
    claim(path).map(|(e, _)| e)
}

/// Suffixes of compressed files, stripped to see what the file inside claims to be.
const COMPRESSED_SUFFIXES: [&str; 5] = [".gz", ".bz2", ".xz", ".zst", ".lz4"];

/// Whether the name says the file is (or, compressed, holds) a format of the table: such a file
/// is never skipped in a folder. `model.pt.gz` claims; `notes.txt.gz` does not.
pub fn name_claims(path: &Path) -> bool {
    if claimed_by_name(path).is_some() {
        return true;
    }
    let Some(lower) = lower_name(path) else {
        return false;
    };
    COMPRESSED_SUFFIXES
        .iter()
        .filter_map(|s| lower.strip_suffix(s))
        .any(|inner| claimed_by_name(Path::new(inner)).is_some())
}

/// What a file is judged as, from its content and its name. Content decides (a pickle named
/// `.h5` is a pickle, and judged as one), except where content alone cannot: a zip, a tar or
/// unknown bytes named like a format ckptscope does not read are that format (a `.keras`
/// archive without its metadata is still what Keras loads), and a compressed stream is known
/// by its name (`.joblib`, `.tar.gz`).
pub fn identify(path: &Path, bytes: &[u8]) -> Format {
    let content = detect(bytes);
    let named = claimed_by_name(path);
    let lower = lower_name(path).unwrap_or_default();
    match content {
        Format::Compressed => match named.map(|e| e.format) {
            Some(Format::CompressedTar) => Format::CompressedTar,
            Some(Format::Pickle) if lower.ends_with(".joblib") => Format::JoblibCompressed,
            _ => Format::Compressed,
        },
        Format::Unknown if lower.ends_with(".joblib") && is_zlib(bytes) => Format::JoblibCompressed,
        Format::Zip | Format::Tar | Format::Unknown => match named {
            Some(e) if e.refused() => e.format,
            _ => content,
        },
        _ => content,
    }
}

/// Why a file of a format not read yet was not scanned: what it is, that ckptscope does not
/// read it, and what loading it can do.
pub fn not_read(format: Format) -> String {
    let e = lookup(format);
    let mut why = format!(
        "a {}: ckptscope does not read this format yet, so it was not scanned and is not known to be safe",
        e.label
    );
    if !e.risk.is_empty() {
        why.push_str(&format!(" ({})", e.risk));
    }
    why
}

/// Why a file whose content was not recognised was not scanned, saying what its name claims.
pub fn unrecognised(path: &Path, first_bytes: &str) -> String {
    match claim(path) {
        Some((e, c)) => format!(
            "named like a {} ({}), but its content is not one (first bytes: {first_bytes}); it was not scanned, so it is not known to be safe",
            e.label,
            c.pattern.shown()
        ),
        None => format!(
            "not a format ckptscope can judge (first bytes: {first_bytes}); it was not scanned, so it is not known to be safe"
        ),
    }
}

/// A TensorFlow SavedModel folder: it holds `saved_model.pb` or `saved_model.pbtxt`.
pub fn is_saved_model(dir: &Path) -> bool {
    ["saved_model.pb", "saved_model.pbtxt"]
        .iter()
        .any(|n| dir.join(n).is_file())
}

/// Why a SavedModel folder was not scanned.
pub fn saved_model_not_read() -> String {
    format!(
        "{} (a folder, judged as one model with its variables/)",
        not_read(Format::TfSavedModel)
    )
}

/// Whether lineage looks at a file of this name.
pub fn lineage_name(path: &Path) -> bool {
    claimed_by_name(path).is_some_and(|e| e.lineage)
}

/// The extensions the open dialog offers (no dot; `json` for sharded indexes): the names of
/// every format read.
pub fn open_extensions() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for e in FORMATS.iter().filter(|e| e.reader.is_some()) {
        for c in e.claims {
            if let Pattern::Ext(ext) = c.pattern {
                let last = ext.rsplit('.').next().unwrap_or(ext);
                if !out.contains(&last) {
                    out.push(last);
                }
            }
        }
    }
    out
}

/// The names the start screen lists, one group per MIME type of a format read
/// (`.safetensors · .safetensors.index.json · .pt .pth .bin .ckpt · ...`).
pub fn shown_names() -> String {
    let mut groups: Vec<(Option<&str>, Vec<String>)> = Vec::new();
    for e in FORMATS.iter().filter(|e| e.reader.is_some()) {
        let key = e.mime.map(|m| m.name);
        let names = e.claims.iter().map(|c| c.pattern.shown());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g.extend(names),
            None => groups.push((key, names.collect())),
        }
    }
    groups
        .into_iter()
        .map(|(_, g)| g.join(" "))
        .filter(|g| !g.is_empty())
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The MIME types the desktop opens with ckptscope, once each, in table order.
pub fn mime_types() -> Vec<&'static Mime> {
    let mut out: Vec<&'static Mime> = Vec::new();
    for m in FORMATS.iter().filter_map(|e| e.mime) {
        if !out.iter().any(|o| o.name == m.name) {
            out.push(m);
        }
    }
    out
}

/// `assets/ckptscope-mime.xml`, the shared-mime-info package.
pub fn mime_xml() -> String {
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- Generated from src/format/registry.rs: CKPTSCOPE_BLESS=1 cargo test --lib registry -->\n<mime-info xmlns=\"http://www.freedesktop.org/standards/shared-mime-info\">\n",
    );
    for m in mime_types() {
        x.push_str(&format!("  <mime-type type=\"{}\">\n", m.name));
        x.push_str(&format!("    <comment>{}</comment>\n", m.comment));
        if let Some(p) = m.parent {
            x.push_str(&format!("    <sub-class-of type=\"{p}\"/>\n"));
        }
        x.push_str("    <icon name=\"ckptscope\"/>\n");
        if let Some(magic) = m.magic {
            x.push_str(&format!(
                "    <magic priority=\"60\">\n      <match type=\"string\" offset=\"0\" value=\"{magic}\"/>\n    </magic>\n"
            ));
        }
        for (glob, weight) in m.globs {
            match weight {
                0 => x.push_str(&format!("    <glob pattern=\"{glob}\"/>\n")),
                w => x.push_str(&format!("    <glob pattern=\"{glob}\" weight=\"{w}\"/>\n")),
            }
        }
        x.push_str("  </mime-type>\n");
    }
    x.push_str("</mime-info>\n");
    x
}

/// The `MimeType=` line of `assets/ckptscope.desktop`.
pub fn desktop_mime_line() -> String {
    let types: String = mime_types()
        .iter()
        .map(|m| format!("{};", m.name))
        .collect();
    format!("MimeType={types}")
}

/// The `file-associations` array of `[package.metadata.packager]` in `Cargo.toml`: one per
/// MIME type with plain `*.ext` globs.
pub fn packager_associations() -> String {
    let mut out = String::from("file-associations = [\n");
    for m in mime_types() {
        let exts: Vec<String> = m
            .globs
            .iter()
            .filter_map(|(g, _)| g.strip_prefix("*."))
            .filter(|ext| !ext.contains('.'))
            .map(|ext| format!("\"{ext}\""))
            .collect();
        if exts.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "  {{ extensions = [{}], mime-type = \"{}\", name = \"{}\", description = \"{}\", role = \"Viewer\" }},\n",
            exts.join(", "),
            m.name,
            m.title,
            m.comment
        ));
    }
    out.push(']');
    out
}

/// Member names of plain data a zip may hold beside what ckptscope reads: text, configs, tables
/// and images (lower case).
const PLAIN_EXTENSIONS: [&str; 16] = [
    "json", "txt", "md", "rst", "yaml", "yml", "csv", "tsv", "toml", "png", "jpg", "jpeg", "gif",
    "bmp", "webp", "svg",
];
const PLAIN_NAMES: [&str; 5] = ["license", "readme", "notice", "copying", "authors"];

fn is_plain_member(lower: &str) -> bool {
    let base = lower.rsplit('/').next().unwrap_or(lower);
    PLAIN_NAMES.contains(&base)
        || base
            .rsplit_once('.')
            .is_some_and(|(_, ext)| PLAIN_EXTENSIONS.contains(&ext))
}

/// Bytes of a member looked at to tell what it is.
const MEMBER_PREFIX: usize = 64 * 1024;

/// A zip that is not a torch, TorchScript, NumPy or Keras archive: judged by what it holds.
/// Pickles and arrays in it are run and judged (as in any archive); plain data is fine; every
/// other member is identified through the table: a format read is judged by its reader, a
/// format not read (or not known) makes the archive not scanned, naming the member.
pub struct ZipArchive;

impl ZipArchive {
    /// The findings of the members that are not pickles (the archive's pickle analysis ran
    /// them: `streams`), arrays or plain data, or why the archive cannot be judged.
    fn members(input: &Input<'_>, streams: &[StreamReport]) -> Result<Vec<Finding>, String> {
        let entries = zip::entries(input.bytes).map_err(|p| {
            format!(
                "a zip archive whose central directory cannot be read (truncated or damaged?): {p}"
            )
        })?;
        let mut findings = Vec::new();
        for entry in &entries {
            let lower = entry.name.to_ascii_lowercase();
            if lower.ends_with('/') || is_plain_member(&lower) {
                continue;
            }
            let member = |what: String| format!("member `{}` {what}", entry.name);
            let range = zip::data_range(input.bytes, entry).map_err(|p| member(p.to_string()))?;
            let raw = usize::try_from(range.start)
                .ok()
                .zip(usize::try_from(range.end).ok())
                .and_then(|(s, e)| input.bytes.get(s..e))
                .unwrap_or_default();
            let whole = |raw: &[u8]| -> Result<Vec<u8>, String> {
                match entry.method {
                    0 => Ok(raw.to_vec()),
                    8 if entry.size <= input.limits.max_inflated_bytes => {
                        let size = usize::try_from(entry.size).map_err(|e| e.to_string())?;
                        zip::inflate_exact(raw, size)
                    }
                    8 => Err(format!(
                        "inflates to {} bytes, more than the limit of {} (raise --limit inflated=N)",
                        entry.size, input.limits.max_inflated_bytes
                    )),
                    m => Err(format!(
                        "is compressed with method {m}, which ckptscope does not read"
                    )),
                }
            };
            let prefix = match entry.method {
                0 => raw.get(..MEMBER_PREFIX).unwrap_or(raw).to_vec(),
                8 => zip::inflate_prefix(raw, MEMBER_PREFIX).map_err(member)?,
                _ => whole(raw).map_err(member)?,
            };
            let name = Path::new(&entry.name);
            let format = identify(name, &prefix);
            // Pickles and `.npy` arrays were run with the archive's pickle analysis.
            if streams
                .iter()
                .any(|s| s.member.as_deref() == Some(entry.name.as_str()))
                || matches!(format, Format::Pickle | Format::PytorchLegacy)
                || (format == Format::Numpy && lower.ends_with(".npy"))
            {
                continue;
            }
            let e = lookup(format);
            let reader = match (format, e.reader) {
                (Format::Unknown, _) => {
                    return Err(member(format!(
                        "is not a format ckptscope reads ({}), so the archive was not scanned and is not known to be safe",
                        unrecognised(name, &first_bytes(&prefix))
                    )));
                }
                (Format::Zip, _) => {
                    return Err(member(
                        "is a zip inside the zip; ckptscope does not judge nested archives yet, so the archive was not scanned and is not known to be safe".into(),
                    ));
                }
                (_, Some(reader)) => reader,
                (_, None) => {
                    return Err(member(format!(
                        "is {}, so the archive is not known to be safe",
                        not_read(format)
                    )));
                }
            };
            let bytes = whole(raw).map_err(member)?;
            let judged = reader
                .judge(&Input {
                    bytes: &bytes,
                    file_len: bytes.len() as u64,
                    format,
                    ..*input
                })
                .map_err(member)?;
            findings.extend(judged.findings.into_iter().map(|mut f| {
                f.member.get_or_insert_with(|| entry.name.clone());
                f
            }));
        }
        Ok(findings)
    }
}

impl Reader for ZipArchive {
    fn open(
        &self,
        mapped: MappedFile,
        format: Format,
        options: &OpenOptions,
        progress: Option<&Progress>,
    ) -> Result<Checkpoint, Error> {
        let mut ckpt = readers::Pickled.open(mapped, format, options, progress)?;
        let members = {
            let streams = ckpt.pickle.as_ref().map(|r| r.streams.as_slice());
            let file = ckpt
                .sources
                .first()
                .ok_or_else(|| Error::Unsupported {
                    path: ckpt.path.clone(),
                    what: "a zip archive with no file to read".into(),
                })?
                .mapped()?;
            let input = Input {
                path: &ckpt.path,
                bytes: file.bytes(),
                file_len: file.len(),
                format,
                policy: &options.pickle.policy,
                limits: &options.limits,
            };
            Self::members(&input, streams.unwrap_or_default()).map_err(|what| {
                Error::Unsupported {
                    path: ckpt.path.clone(),
                    what,
                }
            })?
        };
        if let Some(report) = ckpt.pickle.as_mut() {
            report.findings.extend(members);
            report.findings.sort_by_key(|f| std::cmp::Reverse(f.risk));
            report.verdict = report
                .verdict
                .max(crate::pickle::policy::Verdict::of(&report.findings));
        }
        Ok(ckpt)
    }

    fn judge(&self, input: &Input<'_>) -> Result<Judgement, String> {
        let mut j = readers::Pickled.judge(input)?;
        let members = Self::members(input, &j.streams)?;
        j.findings.extend(members);
        j.findings.sort_by_key(|f| std::cmp::Reverse(f.risk));
        j.verdict = j
            .verdict
            .max(crate::pickle::policy::Verdict::of(&j.findings));
        if j.findings.is_empty() {
            j.findings.push(Finding::new(
                Risk::Info,
                None,
                "every member is plain data (text, configs, tables, images)",
            ));
        }
        Ok(j)
    }
}

/// The first 8 bytes in hex.
pub fn first_bytes(bytes: &[u8]) -> String {
    let head = bytes.get(..8).unwrap_or(bytes);
    if head.is_empty() {
        return "none, the file is empty".into();
    }
    head.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant, by an exhaustive match: a new variant does not compile until it is here,
    /// and the test below then asks for its table entry.
    fn all_formats() -> Vec<Format> {
        let all = [
            Format::Safetensors,
            Format::SafetensorsSharded,
            Format::PytorchZip,
            Format::PytorchLegacy,
            Format::PytorchTar,
            Format::Torchscript,
            Format::Pickle,
            Format::Numpy,
            Format::NumpyZip,
            Format::Gguf,
            Format::Onnx,
            Format::Hdf5,
            Format::Keras,
            Format::TfSavedModel,
            Format::TfGraph,
            Format::TfCheckpoint,
            Format::TfLite,
            Format::FlaxMsgpack,
            Format::Paddle,
            Format::Arrow,
            Format::JoblibCompressed,
            Format::SevenZip,
            Format::CompressedTar,
            Format::Tar,
            Format::Compressed,
            Format::Zip,
            Format::Unknown,
        ];
        for f in all {
            match f {
                Format::Safetensors
                | Format::SafetensorsSharded
                | Format::PytorchZip
                | Format::PytorchLegacy
                | Format::PytorchTar
                | Format::Torchscript
                | Format::Pickle
                | Format::Numpy
                | Format::NumpyZip
                | Format::Gguf
                | Format::Onnx
                | Format::Hdf5
                | Format::Keras
                | Format::TfSavedModel
                | Format::TfGraph
                | Format::TfCheckpoint
                | Format::TfLite
                | Format::FlaxMsgpack
                | Format::Paddle
                | Format::Arrow
                | Format::JoblibCompressed
                | Format::SevenZip
                | Format::CompressedTar
                | Format::Tar
                | Format::Compressed
                | Format::Zip
                | Format::Unknown => {}
            }
        }
        all.to_vec()
    }

    #[test]
    fn every_format_has_one_entry_and_unique_names() {
        for f in all_formats() {
            let n = FORMATS.iter().filter(|e| e.format == f).count();
            assert_eq!(n, 1, "{f:?} has {n} registry entries");
        }
        assert_eq!(FORMATS.len(), all_formats().len());
        assert_eq!(FORMATS.last().map(|e| e.format), Some(Format::Unknown));
        let mut names: Vec<&str> = FORMATS.iter().map(|e| e.json_name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FORMATS.len(), "json names are unique");
        // The serde spelling of the enum is the registry's json name.
        for e in FORMATS {
            let serde = serde_json::to_value(e.format).unwrap();
            assert_eq!(serde.as_str(), Some(e.json_name), "{:?}", e.format);
        }
    }

    #[test]
    fn names_claim_formats() {
        let cases = [
            ("model.safetensors", Some(Format::Safetensors)),
            (
                "model.safetensors.index.json",
                Some(Format::SafetensorsSharded),
            ),
            ("pytorch_model.bin", Some(Format::PytorchZip)),
            ("epoch=1.CKPT", Some(Format::PytorchZip)),
            ("model.gguf", Some(Format::Gguf)),
            ("model.weights.h5", Some(Format::Hdf5)),
            ("model.h5", Some(Format::Hdf5)),
            ("model.keras", Some(Format::Keras)),
            ("saved_model.pb", Some(Format::TfSavedModel)),
            ("fingerprint.pb", Some(Format::TfGraph)),
            ("model.ckpt.meta", Some(Format::TfGraph)),
            ("variables.data-00000-of-00001", Some(Format::TfCheckpoint)),
            ("model.tflite", Some(Format::TfLite)),
            ("flax_model.msgpack", Some(Format::FlaxMsgpack)),
            ("model.pdparams", Some(Format::Paddle)),
            ("model.pdiparams", Some(Format::Paddle)),
            ("table.feather", Some(Format::Arrow)),
            ("data.tar.gz", Some(Format::CompressedTar)),
            ("data.tgz", Some(Format::CompressedTar)),
            ("data.tar", Some(Format::Tar)),
            ("a.7z", Some(Format::SevenZip)),
            ("model.joblib", Some(Format::Pickle)),
            ("config.json", None),
            ("README.md", None),
            ("x.data-0000-of-00001", None),
            (".pt", None),
        ];
        for (name, format) in cases {
            assert_eq!(
                claimed_by_name(Path::new(name)).map(|e| e.format),
                format,
                "{name}"
            );
        }
        assert!(name_claims(Path::new("model.pt.gz")));
        assert!(!name_claims(Path::new("notes.txt.gz")));
    }

    #[test]
    fn content_and_name_identify_what_is_judged() {
        let id = |name: &str, bytes: &[u8]| identify(Path::new(name), bytes);
        // Content decides for formats it knows.
        assert_eq!(id("model.h5", b"\x80\x02}q\x00."), Format::Pickle);
        assert_eq!(id("model.pdparams", b"\x80\x04\x95"), Format::Pickle);
        assert_eq!(id("x.bin", b"\x89HDF\r\n\x1a\n...."), Format::Hdf5);
        // Unknown bytes named like a format not read are that format.
        assert_eq!(
            id("flax_model.msgpack", b"\x82\xa6params"),
            Format::FlaxMsgpack
        );
        assert_eq!(
            id("saved_model.pb", b"\x08\x01\x12\x04"),
            Format::TfSavedModel
        );
        // Unknown bytes named like a format read stay unknown (the scan says what the name
        // claims).
        assert_eq!(id("model.gguf", b"GGUX garbage"), Format::Unknown);
        // Compressed streams are known by their name.
        assert_eq!(
            id("model.joblib", b"\x78\x9c\x01\x02"),
            Format::JoblibCompressed
        );
        assert_eq!(
            id("model.joblib", b"\x1f\x8b\x08\x00"),
            Format::JoblibCompressed
        );
        assert_eq!(
            id("data.tar.xz", b"\xfd7zXZ\x00\x00"),
            Format::CompressedTar
        );
        assert_eq!(id("log.txt.gz", b"\x1f\x8b\x08\x00"), Format::Compressed);
        assert_eq!(id("notes.txt", b"\x78\x9c\x01\x02"), Format::Unknown);
    }

    #[test]
    fn tf_shard_names_need_five_digits_each_side() {
        assert!(Pattern::TfShard.matches("variables.data-00000-of-00001"));
        assert!(Pattern::TfShard.matches("model.ckpt-100.data-00003-of-00010"));
        assert!(!Pattern::TfShard.matches("variables.data-0000x-of-00001"));
        assert!(!Pattern::TfShard.matches("variables.data-00000-of-000011"));
        assert!(!Pattern::TfShard.matches("variables.data"));
    }

    #[test]
    fn refused_formats_say_what_they_are_and_that_they_are_not_read() {
        for e in FORMATS.iter().filter(|e| e.refused()) {
            let why = not_read(e.format);
            assert!(why.contains(e.label), "{why}");
            assert!(why.contains("not known to be safe"), "{why}");
        }
        assert!(!lookup(Format::Unknown).refused());
        assert!(lookup(Format::Keras).refused());
        assert!(!lookup(Format::Safetensors).refused());
    }

    /// `assets/ckptscope-mime.xml`, the `MimeType=` line of `assets/ckptscope.desktop` and the
    /// packager's `file-associations` in `Cargo.toml` are what the registry says; with
    /// `CKPTSCOPE_BLESS=1` they are rewritten from it.
    #[test]
    fn assets_and_packager_agree_with_the_registry() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let bless = std::env::var_os("CKPTSCOPE_BLESS").is_some_and(|v| v == "1");
        let mut stale = Vec::new();
        let mut check = |rel: &str, update: &dyn Fn(&str) -> String| {
            let path = root.join(rel);
            let text = std::fs::read_to_string(&path).unwrap();
            let want = update(&text);
            if want != text {
                if bless {
                    std::fs::write(&path, want).unwrap();
                } else {
                    stale.push(rel.to_string());
                }
            }
        };
        check("assets/ckptscope-mime.xml", &|_| mime_xml());
        check("assets/ckptscope.desktop", &|text| {
            text.lines()
                .map(|l| {
                    if l.starts_with("MimeType=") {
                        desktop_mime_line()
                    } else {
                        l.to_string()
                    }
                })
                .map(|l| l + "\n")
                .collect()
        });
        check("Cargo.toml", &|text| {
            let start = text
                .find("file-associations = [\n")
                .expect("Cargo.toml lists file-associations");
            let end = start + text[start..].find("\n]").expect("the list ends") + 2;
            format!(
                "{}{}{}",
                &text[..start],
                packager_associations(),
                &text[end..]
            )
        });
        assert!(
            stale.is_empty(),
            "out of date with src/format/registry.rs: {} (run CKPTSCOPE_BLESS=1 cargo test --lib registry)",
            stale.join(", ")
        );
        let desktop = std::fs::read_to_string(root.join("assets/ckptscope.desktop")).unwrap();
        assert!(desktop.contains("MimeType=application/x-safetensors;"));
    }

    #[test]
    fn consumers_list_the_formats_read() {
        let exts = open_extensions();
        for e in [
            "safetensors",
            "json",
            "pt",
            "pth",
            "bin",
            "ckpt",
            "pkl",
            "npy",
            "npz",
            "gguf",
            "onnx",
        ] {
            assert!(exts.contains(&e), "{e} in {exts:?}");
        }
        assert!(!exts.contains(&"keras"), "formats not read are not offered");
        let shown = shown_names();
        assert!(
            shown.contains(".safetensors · .safetensors.index.json · .pt .pth .bin .ckpt"),
            "{shown}"
        );
        assert!(shown.contains(".gguf") && shown.contains(".onnx") && shown.contains(".npz"));
        assert!(lineage_name(Path::new("a/model.safetensors")));
        assert!(lineage_name(Path::new("a/model.safetensors.index.json")));
        assert!(lineage_name(Path::new("epoch=3.ckpt")));
        assert!(!lineage_name(Path::new("model.gguf")));
        assert!(!lineage_name(Path::new("notes.txt")));
    }

    fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = crate::archive::zip_write::ZipWriter::new(Vec::new(), 1);
        for (name, bytes) in members {
            w.add(name, bytes).unwrap();
        }
        w.finish().unwrap().0
    }

    fn judge_zip(bytes: &[u8]) -> Result<Judgement, String> {
        let policy = crate::pickle::policy::Policy::default();
        let limits = crate::limits::Limits::default();
        ZipArchive.judge(&Input {
            path: Path::new("a.zip"),
            bytes,
            file_len: bytes.len() as u64,
            format: Format::Zip,
            policy: &policy,
            limits: &limits,
        })
    }

    #[test]
    fn a_zip_is_judged_by_its_members() {
        use crate::pickle::policy::Verdict;
        let plain = zip_of(&[("README.md", b"# hi"), ("cfg/config.json", b"{}")]);
        assert_eq!(detect(&plain), Format::Zip);
        assert_eq!(judge_zip(&plain).unwrap().verdict, Verdict::Safe);
        let h5 = zip_of(&[
            ("config.json", b"{}"),
            ("w.h5", b"\x89HDF\r\n\x1a\n\0\0\0\0"),
        ]);
        let why = judge_zip(&h5).unwrap_err();
        assert!(
            why.contains("member `w.h5`") && why.contains("HDF5"),
            "{why}"
        );
        let unknown = zip_of(&[("blob.bin", b"\x01\x02\x03\x04")]);
        let why = judge_zip(&unknown).unwrap_err();
        assert!(
            why.contains("member `blob.bin`") && why.contains("not known to be safe"),
            "{why}"
        );
        let mut st = Vec::new();
        st.extend_from_slice(&2u64.to_le_bytes());
        st.extend_from_slice(b"{}");
        let safetensors = zip_of(&[("model.safetensors", &st)]);
        assert_eq!(judge_zip(&safetensors).unwrap().verdict, Verdict::Safe);
        let bad = zip_of(&[("model.safetensors", &st[..9])]);
        assert!(judge_zip(&bad).unwrap_err().contains("model.safetensors"));
        let evil = zip_of(&[("evil.pkl", b"cposix\nsystem\n(S'id'\ntR.")]);
        assert_eq!(judge_zip(&evil).unwrap().verdict, Verdict::Dangerous);
        let keras = zip_of(&[("config.json", b"{}"), ("metadata.json", b"{}")]);
        assert_eq!(detect(&keras), Format::Keras);
        assert_eq!(identify(Path::new("m.zip"), &keras), Format::Keras);
        let nested = zip_of(&[("inner.zip", &plain)]);
        assert!(judge_zip(&nested).unwrap_err().contains("inner.zip"));
    }
}
