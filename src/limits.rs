//! Every bound ckptscope puts on what a file may make it allocate, loop over or write, in one
//! place.
//!
//! Files are untrusted: a header length, a shape or a pickle opcode count comes from whoever
//! wrote the file. Each reader checks the relevant limit *before* allocating, so opening a hostile
//! file costs at most these amounts, and a legitimate file never comes near them. The pickle
//! bounds are a budget for the **whole file**: every stream in it (concatenated pickles, archive
//! members, pickles nested in values) draws from the same counts, so a file cannot multiply them.
//!
//! Reaching a limit never makes a file look better than it is: the analysis stops, the verdict
//! is at least `suspicious`, and the message names the limit and how to raise it
//! (`--limit NAME=VALUE`, see [`Limits::set`]).

// ---- fixed bounds ------------------------------------------------------------------------------
// Not settable with --limit: each bounds a loop or a copy whose real-world need is far below it.

/// Opcodes charged for each try at starting a stream in the junk after the last STOP.
pub const RESYNC_COST: u64 = 64;

/// Most bytes of strings one such try (a hidden stream after junk) may copy.
pub const MAX_TRY_BYTES: u64 = 16 << 20;

/// Longest module or name line a protocol 0 GLOBAL candidate may have.
pub const MAX_GLOBAL_LINE: usize = 256;

/// Most opcodes walked after the point where a stream broke (also bounded by what is left of the
/// file's opcode budget).
pub const MAX_WALK_STEPS: u64 = 10_000_000;

/// Most distinct names the walk after a break reports.
pub const MAX_WALK_NAMES: usize = 10_000;

/// Most flagged TorchScript code lines kept for one archive (the findings they make are capped separately).
pub const MAX_CODE_FLAGS: usize = 10_000;

/// Longest dotted name in TorchScript code judged, in bytes: every rule looks at its first four components, so a
/// longer name (a hostile file can write one of any length) is judged by its start.
pub const MAX_CODE_NAME: usize = 256;

/// Most units of work the TorchScript state-dict walk may do: one per module visited and one per attribute
/// looked at. Far above real models (a 100,000-tensor model takes about a million), and what
/// bounds a hostile tree that names one module under many paths.
pub const MAX_MODULE_WALK: usize = 16_000_000;

/// Longest LONG1/LONG4 operand shown in decimal (1024 bits, 309 digits).
pub const MAX_DECIMAL_LONG_BYTES: usize = 128;

/// Most dict items gathered from constructor arguments and SETITEMs for the value view, in
/// all.
pub const MAX_DICT_ITEM_WORK: usize = 4 * MAX_VALUE_NODES;

/// Deepest chain of dict-like objects built from one another (`OrderedDict(OrderedDict(...))`).
pub const MAX_MAPPING_NESTING: usize = 16;

/// What one GLOBAL, STACK_GLOBAL or INST costs in opcodes of the budget.
pub const GLOBAL_COST: u64 = 64;

/// Most files listed in one folder tree (scan, package view): a folder of a million entries is
/// listed in about a second; past it the listing says it is incomplete.
pub const MAX_FOLDER_FILES: usize = 1_000_000;

/// Largest JSON file of a package read to summarise it (config.json, trainer_state.json, an
/// index).
pub const MAX_PACKAGE_JSON: u64 = 64 << 20;

/// Entries kept in the hash cache file; the oldest-keyed go first.
pub const MAX_CACHE_ENTRIES: usize = 20_000;

/// Most storage records a legacy tar checkpoint may declare.
pub const MAX_TAR_RECORDS: u64 = 10_000_000;

/// Most initializers one ONNX graph may list (each costs a little bookkeeping at open).
pub const MAX_ONNX_TENSORS: usize = 1_000_000;

/// Deepest nesting of ONNX sub-graphs entered (the body of a `Loop` inside the branch of an
/// `If` is depth 2); a sub-graph deeper still is counted and reported, not read. Exporters nest
/// a few levels; the bound keeps a hostile file from recursing without end.
pub const MAX_ONNX_GRAPH_DEPTH: usize = 16;

/// Most entries of an ONNX model's `metadata_props`, opset imports, or one tensor's
/// `external_data`.
pub const MAX_ONNX_ENTRIES: usize = 100_000;

/// Most dimensions of one tensor (NumPy's own limit is 64).
pub const MAX_DIMS: usize = 64;

/// Longest `.npy` header read (NumPy itself refuses headers over 10,000 bytes unless told to
/// trust the file).
pub const MAX_NPY_HEADER: usize = 1 << 20;

/// How deep the walk that turns a pickle's value tree into tensors and a JSON view goes (the
/// tree itself is bounded by [`Limits::pickle`]).
pub const MAX_VALUE_DEPTH: usize = 128;

/// Most values shown in a pickle's JSON view of non-tensor objects.
pub const MAX_VALUE_NODES: usize = 200_000;

/// Longest string kept in that view, in characters (longer ones are cut, and say so).
pub const MAX_VALUE_STRING: usize = 4096;

/// How deep arrays nested in GGUF metadata are followed (real files nest at most once).
pub const MAX_GGUF_DEPTH: usize = 8;

// ---- settable limits ---------------------------------------------------------------------------

/// Bounds applied while reading files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest safetensors JSON header accepted, in bytes (the safetensors crate's own limit).
    pub max_header_bytes: u64,
    /// Largest `*.index.json` of a sharded checkpoint, in bytes.
    pub max_index_bytes: u64,
    /// Most shards one index may name.
    pub max_shards: usize,
    /// The pickle machine's budget for the whole file (all its streams together).
    pub pickle: PickleLimits,
    /// Most pickle streams run for one file: concatenated pickles, archive members, the
    /// per-storage records of the old tar format and pickles nested in values, together (each
    /// costs a little bookkeeping beyond its opcodes, which the opcode budget already counts).
    pub max_streams: usize,
    /// How deep pickles hidden in bytes values are followed.
    pub max_nesting: usize,
    /// Bytes inflated from compressed archive members, for the whole file.
    pub max_inflated_bytes: u64,
    /// Distinct findings kept for one file; repeats of a kept finding only raise its count, and
    /// findings past this number are counted in one summary finding per risk.
    pub max_findings: usize,
    /// A tensor whose logical bytes exceed the bytes of the storage it views by more than this
    /// factor (a stride-0 expand) is listed, but `convert` refuses it unless asked to
    /// materialize expanded tensors.
    pub max_expansion: u64,
    /// Bytes of TorchScript source (`code/*.py`) read and scanned for one archive.
    pub max_code_bytes: u64,
    /// TorchScript source files read for one archive.
    pub max_code_files: usize,
    /// Tensors one GGUF header may declare.
    pub max_gguf_tensors: u64,
    /// Metadata entries one GGUF header may declare.
    pub max_gguf_kvs: u64,
    /// Items of one GGUF metadata array (walked and summarised, never stored whole).
    pub max_gguf_array: u64,
    /// Bytes of one GGUF string (key, tensor name or value).
    pub max_gguf_string: u64,
}

impl Limits {
    /// The limits used unless a caller chooses others.
    pub const DEFAULT: Limits = Limits {
        max_header_bytes: 100_000_000,
        max_index_bytes: 256 * 1024 * 1024,
        max_shards: 100_000,
        pickle: PickleLimits::DEFAULT,
        max_streams: 100_000,
        max_nesting: 3,
        max_inflated_bytes: 1 << 30,
        max_findings: 10_000,
        max_expansion: 64,
        max_code_bytes: 64 << 20,
        max_code_files: 10_000,
        max_gguf_tensors: 1_000_000,
        max_gguf_kvs: 1_000_000,
        max_gguf_array: 1 << 26,
        max_gguf_string: 1 << 26,
    };

    /// Names accepted by [`Limits::set`], with what each bounds.
    pub const NAMES: &'static [(&'static str, &'static str)] = &[
        ("ops", "pickle opcodes executed, whole file"),
        ("nodes", "pickle values built, whole file"),
        ("items", "values stored in pickle containers, whole file"),
        ("bytes", "bytes of pickle strings materialized, whole file"),
        ("memo", "memo entries of one pickle stream"),
        ("stack", "values on the stack of one pickle stream"),
        ("marks", "MARKs open at once in one pickle stream"),
        ("streams", "pickle streams run for one file"),
        ("nesting", "depth of pickles nested in values"),
        ("inflated", "bytes inflated from compressed archive members"),
        ("findings", "distinct findings kept for one file"),
        (
            "expansion",
            "logical bytes over storage bytes a tensor may have for convert",
        ),
        ("code", "bytes of TorchScript source read for one archive"),
        (
            "code-files",
            "TorchScript source files read for one archive",
        ),
        ("header", "bytes of a safetensors JSON header"),
        ("index", "bytes of a sharded checkpoint's index"),
        ("shards", "shards one index may name"),
        ("gguf-tensors", "tensors one GGUF header may declare"),
        ("gguf-kvs", "metadata entries one GGUF header may declare"),
        ("gguf-array", "items of one GGUF metadata array"),
        ("gguf-string", "bytes of one GGUF string"),
    ];

    /// Sets the limit called `name` (one of [`Limits::NAMES`]) to `value`.
    pub fn set(&mut self, name: &str, value: u64) -> Result<(), String> {
        let as_usize = || usize::try_from(value).map_err(|_| format!("{value} is too large"));
        match name {
            "ops" => self.pickle.max_ops = value,
            "nodes" => self.pickle.max_nodes = as_usize()?,
            "items" => self.pickle.max_items = value,
            "bytes" => self.pickle.max_bytes = value,
            "memo" => self.pickle.max_memo = as_usize()?,
            "stack" => self.pickle.max_stack = as_usize()?,
            "marks" => self.pickle.max_marks = as_usize()?,
            "streams" => self.max_streams = as_usize()?,
            "nesting" => self.max_nesting = as_usize()?,
            "inflated" => self.max_inflated_bytes = value,
            "findings" => self.max_findings = as_usize()?.max(1),
            "expansion" => self.max_expansion = value.max(1),
            "code" => self.max_code_bytes = value,
            "code-files" => self.max_code_files = as_usize()?,
            "header" => self.max_header_bytes = value,
            "index" => self.max_index_bytes = value,
            "shards" => self.max_shards = as_usize()?,
            "gguf-tensors" => self.max_gguf_tensors = value,
            "gguf-kvs" => self.max_gguf_kvs = value,
            "gguf-array" => self.max_gguf_array = value,
            "gguf-string" => self.max_gguf_string = value,
            _ => {
                let known: Vec<&str> = Self::NAMES.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "unknown limit `{name}`; the limits are {}",
                    known.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Applies one `NAME=VALUE` assignment (`ops=500000000`, `inflated=4G`); values take an
    /// optional `K`, `M`, `G` or `T` suffix (powers of 1024).
    pub fn apply(&mut self, assignment: &str) -> Result<(), String> {
        let (name, value) = assignment
            .split_once('=')
            .ok_or_else(|| format!("`{assignment}` is not NAME=VALUE"))?;
        let value = parse_amount(value.trim()).ok_or_else(|| {
            format!("`{value}` is not a whole number (K, M, G, T suffixes allowed)")
        })?;
        self.set(name.trim(), value)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// `123`, `4K`, `16M`, `2G`, `1T` (powers of 1024; `_` separators allowed).
fn parse_amount(text: &str) -> Option<u64> {
    let text: String = text.chars().filter(|c| *c != '_').collect();
    let (digits, shift) = match text.chars().last()? {
        'k' | 'K' => (&text[..text.len() - 1], 10),
        'm' | 'M' => (&text[..text.len() - 1], 20),
        'g' | 'G' => (&text[..text.len() - 1], 30),
        't' | 'T' => (&text[..text.len() - 1], 40),
        _ => (text.as_str(), 0),
    };
    let n: u64 = digits.parse().ok()?;
    n.checked_mul(1u64 << shift)
}

/// Bounds on what the pickles of one file may make the machine do. Opcodes, nodes, stored
/// values and bytes are counted over the whole file (every stream draws from one `pickle::vm::Budget`);
/// memo, stack and marks are what one stream may hold at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PickleLimits {
    /// Opcodes executed, whole file.
    pub max_ops: u64,
    /// Memo entries of one stream.
    pub max_memo: usize,
    /// Values on the stack of one stream.
    pub max_stack: usize,
    /// MARKs open at once in one stream (how deep `(` … `t` can nest).
    pub max_marks: usize,
    /// Nodes built (strings, containers, objects...), whole file.
    pub max_nodes: usize,
    /// Values stored in containers (list items, dict entries, tuple members, object states),
    /// whole file.
    pub max_items: u64,
    /// Bytes of strings and bytes materialized, whole file.
    pub max_bytes: u64,
}

impl PickleLimits {
    /// Far above what real checkpoints need (a 100,000-tensor state dict takes about 6M opcodes,
    /// 1M nodes and 2M stored values), and small enough that the worst file costs a few seconds
    /// and at most about 3 GiB (16M nodes of at most 64 bytes, 64M stored values of 16 bytes,
    /// 1 GiB of strings).
    pub const DEFAULT: PickleLimits = PickleLimits {
        max_ops: 100_000_000,
        max_memo: 16_000_000,
        max_stack: 16_000_000,
        max_marks: 10_000,
        max_nodes: 16_000_000,
        max_items: 64_000_000,
        max_bytes: 1 << 30,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_set_limits_and_reject_nonsense() {
        let mut l = Limits::DEFAULT;
        l.apply("ops=500_000_000").unwrap();
        l.apply("inflated=4G").unwrap();
        l.apply("nodes = 2M").unwrap();
        assert_eq!(l.pickle.max_ops, 500_000_000);
        assert_eq!(l.max_inflated_bytes, 4 << 30);
        assert_eq!(l.pickle.max_nodes, 2 << 20);
        assert!(
            l.apply("opz=1")
                .unwrap_err()
                .contains("unknown limit `opz`")
        );
        assert!(l.apply("ops").is_err());
        assert!(l.apply("ops=-1").is_err());
        assert!(l.apply("ops=99999999999T").is_err());
        for (name, _) in Limits::NAMES {
            l.set(name, 7).unwrap();
        }
    }
}
