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

pub mod assets;
pub mod members;
#[cfg(test)]
mod tests;

pub use assets::{desktop_mime_line, mime_types, mime_xml, packager_associations};
pub use members::ZipArchive;

use super::reader::Reader;
use super::{Format, readers};
use crate::detect::{detect, is_zlib};

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
        // Keras 3 writes sharded weights as `NAME.weights.json` beside `NAME_0000N.weights.h5`.
        claims: &[
            weights(Pattern::Ext("keras")),
            unsaid(Pattern::Ext("weights.json")),
        ],
        carries_code: true,
        risk: "its config.json can hold Python bytecode (Lambda layers) and name classes that Keras imports and runs when it loads the model",
        ..entry(
            Format::Keras,
            "keras",
            "Keras 3 model (.keras, .weights.json)",
        )
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
        claims: &[
            weights(Pattern::Ext("pb")),
            weights(Pattern::Ext("pbtxt")),
            weights(Pattern::Ext("meta")),
        ],
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
        claims: &[
            weights(Pattern::Ext("tflite")),
            weights(Pattern::Ext("lite")),
        ],
        ..entry(Format::TfLite, "tflite", "TensorFlow Lite model")
    },
    Entry {
        // Claimed by name so that a file named like one is refused, never skipped.
        claims: &[
            weights(Pattern::Ext("mlmodel")),
            weights(Pattern::Ext("pte")),
            weights(Pattern::Ext("nemo")),
            weights(Pattern::Ext("engine")),
            weights(Pattern::Ext("mar")),
            weights(Pattern::Ext("llamafile")),
            weights(Pattern::Ext("ggml")),
        ],
        carries_code: true,
        risk: "NeMo and TorchServe archives hold pickles and Python handlers, a llamafile is a program",
        ..entry(
            Format::OtherModel,
            "other_model",
            "model file of another runtime (Core ML, ExecuTorch, NeMo, TensorRT, TorchServe, llamafile or GGML)",
        )
    },
    Entry {
        // An Orbax checkpoint folder: its manifest and metadata files claim it.
        claims: &[
            weights(Pattern::Ext("msgpack")),
            weights(Pattern::Ext("flax")),
            weights(Pattern::Name("manifest.ocdbt")),
            unsaid(Pattern::Name("_checkpoint_metadata")),
        ],
        ..entry(
            Format::FlaxMsgpack,
            "flax_msgpack",
            "Flax msgpack state or Orbax checkpoint",
        )
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
            unsaid(Pattern::Ext("arrows")),
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
        // Any JSON with a `weight_map` looks like a safetensors index; a Keras index is one too.
        // A torch or NumPy zip named `.keras` is also what Keras would load (a polyglot):
        // the format the name claims and ckptscope does not read decides.
        Format::Zip
        | Format::PytorchZip
        | Format::Torchscript
        | Format::NumpyZip
        | Format::Tar
        | Format::Unknown
        | Format::SafetensorsSharded => match named {
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
    let named = match claim(path) {
        Some((e, c)) => format!(
            "; it is named like a {} ({}), but its content is not one",
            e.label,
            c.pattern.shown()
        ),
        None => String::new(),
    };
    format!(
        "not a format ckptscope can judge (first bytes: {first_bytes}){named}; it was not scanned, so it is not known to be safe"
    )
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
