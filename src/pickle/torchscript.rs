//! TorchScript archives (`torch.jit.save`): a program in `code/`, its module tree in `data.pkl`.
//!
//! `torch.jit.load` does not unpickle like `torch.load`: its C++ unpickler resolves `__torch__.*`
//! globals to classes compiled from the Python-like sources under `code/`, knows a fixed set of
//! helpers (`torch.jit._pickle.build_intlist`...) and refuses every other global. So the one
//! true statement about a benign archive is that loading it compiles and runs its program; the
//! pickles themselves are data. This module reads that program without running it: the source
//! files (bounded by [`crate::Limits::max_code_bytes`] and [`crate::Limits::max_code_files`]),
//! the classes they define (which attributes are parameters and buffers), and every call that
//! reaches the file system, other processes, the network or native libraries, by file and line.
//! The trade-off: the scan is lexical (names, not a compiled graph), so it reports a name that
//! is written in the code even on a path that never runs, and nothing that is not written.
//!
//! The module tree becomes the `state_dict()` torch would return: each module's parameters,
//! then its buffers, then its submodules, named by attribute path.
//!
//! `clippy::indexing_slicing` is allowed here: flag and attribute indexes are positions in their
//! own vectors.

#![allow(clippy::indexing_slicing)]

use std::collections::{HashMap, HashSet};

use crate::archive::zip::ZipEntry;
use crate::limits::{MAX_CODE_FLAGS, MAX_CODE_NAME, MAX_MODULE_WALK};
use crate::pickle::Runner;
use crate::pickle::container::TorchZip;
use crate::pickle::value::{Arena, Node, Val};
use crate::verdict::{Finding, Risk};

/// Longest excerpt of a flagged line quoted in its finding, in characters.
const EXCERPT: usize = 100;

/// The program of a TorchScript archive, as read.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Code {
    /// The source files, by member name.
    pub files: Vec<CodeFile>,
    /// Lines in all of them.
    pub lines: u64,
    /// Bytes in all of them.
    pub bytes: u64,
    /// Lines that call something outside the tensor world, worst first.
    pub flagged: Vec<Flag>,
    /// Why part of the code was not read, if a limit stopped it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
    /// Classes the code defines, by qualified name (`__torch__.torch.nn.modules.conv.Conv1d`).
    #[serde(skip)]
    pub classes: HashMap<String, Class>,
    /// The finding that says the archive is a program (left out of the verdict that decides
    /// whether tensors are read: ckptscope never runs that code).
    #[serde(skip)]
    pub program: Option<Finding>,
}

/// One source file of `code/`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CodeFile {
    /// Archive member (`model/code/__torch__.py`).
    pub path: String,
    /// Lines.
    pub lines: u64,
    /// Bytes.
    pub bytes: u64,
    /// The text (lossy UTF-8); not part of the JSON report.
    #[serde(skip)]
    pub text: String,
}

/// A line of code that reaches outside the tensor world.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Flag {
    /// Archive member of the file.
    pub file: String,
    /// Line number, from 1.
    pub line: u64,
    /// How bad.
    #[serde(rename = "severity")]
    pub risk: Risk,
    /// The name called, as written (`torch.save`, `ops.myns.run`).
    pub call: String,
    /// What it does.
    pub reason: String,
    /// The line, trimmed and cut to [`EXCERPT`] characters.
    pub excerpt: String,
}

/// What the code says about one class.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Class {
    /// True for `class X(Module)`.
    pub module: bool,
    /// `__parameters__`, in order.
    pub parameters: Vec<String>,
    /// `__buffers__`, in order.
    pub buffers: Vec<String>,
    /// The class restores its state with its own `__setstate__`.
    pub setstate: bool,
}

/// Operator namespaces of torch itself whose operators compute on tensors (the few that reach
/// files or the network are listed in [`namespace_rule`]).
const TORCH_NAMESPACES: &[&str] = &[
    "aten",
    "prim",
    "prims",
    "quantized",
    "_quantized",
    "quantized_decomposed",
    "quantization",
    "mkldnn",
    "mkldnn_prepacked",
    "onednn",
    "mkl",
    "sparse",
    "cuda",
    "profiler",
    "inductor",
    "inductor_prims",
    "rngprims",
    "static_runtime",
    "onnx",
    "export",
    "higher_order",
    "streams",
    "_native",
    "_native_aot",
    "flex_gemm",
    "coor",
    "debug_mode_ops",
    "_dtensor",
    "fsdp",
    "prepacked",
    "xnnpack",
    "_nnapi",
    "vulkan",
    "vulkan_prepack",
    "metal_prepack",
];

/// Namespaces whose operators talk to other processes (distributed collectives and RPC).
const NETWORK_NAMESPACES: &[&str] = &[
    "c10d",
    "c10d_functional",
    "_c10d_functional",
    "_c10d_functional_autograd",
    "dist_c10d",
    "symm_mem",
];

/// Libraries of the PyTorch project with their own native operators: a model that uses them
/// needs the package imported, which is a dependency, not a hazard.
const PYTORCH_LIBRARIES: &[&str] = &["torchvision", "torchaudio", "torchtext"];

/// Python modules TorchScript cannot compile; written in `code/` they mean a hand-made archive
/// that tries to reach the system.
const PYTHON_SYSTEM_MODULES: &[&str] = &[
    "os",
    "sys",
    "subprocess",
    "socket",
    "shutil",
    "ctypes",
    "importlib",
    "pickle",
    "builtins",
    "urllib",
    "requests",
    "pathlib",
];

/// Bare calls that reach the system.
const SYSTEM_CALLS: &[(&str, &str)] = &[
    ("open", "opens a file"),
    ("eval", "evaluates Python source"),
    ("exec", "executes Python source"),
    ("compile", "compiles Python source"),
    ("__import__", "imports a module"),
    ("load_library", "loads a native library into the process"),
    ("rpc_async", "calls a function on another process (RPC)"),
    ("rpc_sync", "calls a function on another process (RPC)"),
    ("rpc_remote", "calls a function on another process (RPC)"),
];

/// `name` cut to at most [`MAX_CODE_NAME`] bytes at a dot.
fn bounded(name: &str) -> &str {
    if name.len() <= MAX_CODE_NAME {
        return name;
    }
    let head = name.get(..MAX_CODE_NAME).unwrap_or("");
    head.rfind('.').and_then(|i| head.get(..i)).unwrap_or(head)
}

/// Judges one dotted name written in the code; `call` when a `(` follows it.
fn rule(name: &str, call: bool) -> Option<(Risk, String)> {
    let name = name
        .strip_prefix("torch.ops.")
        .map(|rest| format!("ops.{rest}"))
        .or_else(|| {
            name.strip_prefix("__torch__.torch.classes.")
                .map(|rest| format!("torch.classes.{rest}"))
        })
        .unwrap_or_else(|| name.to_string());
    let parts: Vec<&str> = name.splitn(5, '.').collect();
    let danger = |why: &str| Some((Risk::Dangerous, why.to_string()));
    match parts.as_slice() {
        ["ops", "load_library", ..] | ["torch", "_C", "_load_library" | "load_library", ..] => {
            danger("loads a native library into the process (torch.ops.load_library)")
        }
        ["ops", ns, op, ..] => namespace_rule(ns, op, "operator"),
        ["torch", "classes", ns, class, ..] => namespace_rule(ns, class, "class"),
        ["torch", "save"] => danger("writes a file (aten::save)"),
        ["torch", "from_file"] => danger(
            "maps a file into a tensor (aten::from_file; with shared=True it writes to the file)",
        ),
        ["torch", "load"] | ["torch", "jit", "load"] => {
            danger("loads another file (and the code or pickle in it)")
        }
        ["torch", "hub", ..] => danger("downloads and runs code from the network"),
        ["torch", "distributed", ..] => {
            danger("talks to other processes over the network (torch.distributed)")
        }
        [module, _, ..] if PYTHON_SYSTEM_MODULES.contains(module) => Some((
            Risk::Dangerous,
            format!(
                "uses Python module `{module}`, which reaches the system; TorchScript cannot compile it, so the archive was made or edited by hand"
            ),
        )),
        [single] if call => SYSTEM_CALLS
            .iter()
            .find(|(n, _)| n == single)
            .map(|(_, why)| (Risk::Dangerous, why.to_string())),
        _ => None,
    }
}

/// Judges an operator (or custom class) `ns::item`.
fn namespace_rule(ns: &str, item: &str, what: &str) -> Option<(Risk, String)> {
    let danger = |why: String| Some((Risk::Dangerous, why));
    match (ns, item) {
        ("aten", "save") => danger("writes a file (aten::save)".into()),
        ("aten", "from_file") => danger(
            "maps a file into a tensor (aten::from_file; with shared=True it writes to the file)"
                .into(),
        ),
        ("prim", "rpc_async" | "rpc_sync" | "rpc_remote") => danger(format!(
            "calls a function on another process (prim::{item})"
        )),
        ("debugprims", _) => danger(format!("reads tensors from files (debugprims::{item})")),
        _ if NETWORK_NAMESPACES.contains(&ns) => danger(format!(
            "talks to other processes over the network ({ns}::{item}, distributed collectives)"
        )),
        _ if TORCH_NAMESPACES.contains(&ns) => None,
        _ if PYTORCH_LIBRARIES.contains(&ns) => Some((
            Risk::Info,
            format!(
                "{what} {ns}::{item} comes from the native library of the `{ns}` package: torch.jit.load needs it imported first"
            ),
        )),
        _ => danger(format!(
            "custom {what} {ns}::{item}: native code from a library outside torch (loaded with torch.ops.load_library); what it does cannot be judged"
        )),
    }
}

/// The qualified module name of a source file: `m/code/__torch__/torch/nn/conv.py` →
/// `__torch__.torch.nn.conv`.
pub fn module_of(path: &str) -> Option<String> {
    let lower = path.to_ascii_lowercase();
    let at = if lower.starts_with("code/") {
        0
    } else {
        lower.find("/code/")? + 1
    };
    let rest = path.get(at + "code/".len()..)?;
    let rest = rest
        .strip_suffix(".py")
        .or_else(|| rest.strip_suffix(".PY"))?;
    Some(rest.replace('/', "."))
}

/// True for a member under the archive's `code/` folder (`code/` itself at the top, or in the
/// archive's root folder).
fn under_code(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("code/")
        || lower
            .split_once('/')
            .is_some_and(|(_, rest)| rest.starts_with("code/"))
}

/// True for a TorchScript source file: `torch.jit.load` compiles it and never unpickles it.
pub fn is_source(name: &str) -> bool {
    under_code(name) && name.to_ascii_lowercase().ends_with(".py")
}

/// True for a (lower-cased) member that `torch.jit.load` reads as a pickle: `data.pkl`,
/// `constants.pkl`, the debug source ranges (`code/*.debug_pkl`), the lite interpreter's
/// `bytecode.pkl` and the like.
pub fn is_read_pickle(lower: &str) -> bool {
    lower.ends_with(".pkl") || lower.ends_with(".debug_pkl")
}

impl Code {
    /// Reads one source file: its classes and its flagged lines.
    pub fn add_file(&mut self, path: &str, text: String) {
        let lines = text.lines().count() as u64;
        if let Some(module) = module_of(path) {
            classes(&module, &text, &mut self.classes);
        }
        let mut flags = Vec::new();
        names(&text, |name, line, call| {
            if self.flagged.len() + flags.len() >= MAX_CODE_FLAGS {
                return;
            }
            let name = bounded(name);
            if let Some((risk, reason)) = rule(name, call) {
                flags.push(Flag {
                    file: path.to_string(),
                    line,
                    risk,
                    call: name.to_string(),
                    reason,
                    excerpt: String::new(),
                });
            }
        });
        // Flags come in line order: one pass over the lines quotes them all.
        let mut lines_iter = text.lines().enumerate();
        for flag in &mut flags {
            let want = usize::try_from(flag.line - 1).unwrap_or(usize::MAX);
            for (n, l) in lines_iter.by_ref() {
                if n == want {
                    flag.excerpt = excerpt(l);
                    break;
                }
            }
        }
        // Several flags on one line share its excerpt.
        for i in 1..flags.len() {
            if flags[i].line == flags[i - 1].line {
                flags[i].excerpt = flags[i - 1].excerpt.clone();
            }
        }
        self.flagged.extend(flags);
        self.lines += lines;
        self.bytes += text.len() as u64;
        self.files.push(CodeFile {
            path: path.to_string(),
            lines,
            bytes: text.len() as u64,
            text,
        });
    }

    /// The findings the code makes: the program itself, then one per call and file, naming
    /// its first line and counting the others (the Code tab marks each of them).
    fn findings(&self) -> Vec<Finding> {
        let mut out: Vec<Finding> = self.program.iter().cloned().collect();
        let mut index: HashMap<(&str, &str, &str), usize> = HashMap::new();
        for f in &self.flagged {
            let key = (f.file.as_str(), f.call.as_str(), f.reason.as_str());
            if let Some(kept) = index.get(&key).and_then(|&i| out.get_mut(i)) {
                kept.count += 1;
                continue;
            }
            index.insert(key, out.len());
            let mut finding = Finding::new(
                f.risk,
                Some(f.call.clone()),
                format!(
                    "TorchScript code, line {}: `{}` {}",
                    f.line, f.excerpt, f.reason
                ),
            );
            finding.member = Some(f.file.clone());
            out.push(finding);
        }
        if self.flagged.len() >= MAX_CODE_FLAGS {
            out.push(Finding::new(
                Risk::Info,
                None,
                format!("more than {MAX_CODE_FLAGS} flagged lines of TorchScript code: the first {MAX_CODE_FLAGS} are listed"),
            ));
        }
        for f in out.iter_mut().filter(|f| f.count > 1) {
            f.reason.push_str(&format!(
                " (and on {} more lines of this file)",
                f.count - 1
            ));
            f.count = 1;
        }
        out
    }
}

fn excerpt(line: &str) -> String {
    let l = line.trim();
    if l.chars().count() > EXCERPT {
        let cut: String = l.chars().take(EXCERPT).collect();
        format!("{cut}…")
    } else {
        l.to_string()
    }
}

/// Every dotted name in Python-like `text` outside strings and comments, with its line and
/// whether a call follows; names just after `def` or `class` are definitions, not uses.
fn names(text: &str, mut f: impl FnMut(&str, u64, bool)) {
    let b = text.as_bytes();
    let mut i = 0usize;
    let mut line = 1u64;
    let mut defining = false;
    let ident_start = |c: u8| c.is_ascii_alphabetic() || c == b'_';
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while let Some(&c) = b.get(i) {
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b'#' => {
                while b.get(i).is_some_and(|&c| c != b'\n') {
                    i += 1;
                }
            }
            b'"' | b'\'' => {
                let triple = b.get(i + 1) == Some(&c) && b.get(i + 2) == Some(&c);
                i += if triple { 3 } else { 1 };
                while let Some(&d) = b.get(i) {
                    if d == b'\\' {
                        if b.get(i + 1) == Some(&b'\n') {
                            line += 1;
                        }
                        i += 2;
                        continue;
                    }
                    if d == b'\n' {
                        line += 1;
                        if !triple {
                            i += 1;
                            break;
                        }
                    }
                    if d == c && (!triple || (b.get(i + 1) == Some(&c) && b.get(i + 2) == Some(&c)))
                    {
                        i += if triple { 3 } else { 1 };
                        break;
                    }
                    i += 1;
                }
            }
            c if ident_start(c) => {
                let start = i;
                loop {
                    while b.get(i).copied().is_some_and(ident) {
                        i += 1;
                    }
                    if b.get(i) == Some(&b'.') && b.get(i + 1).copied().is_some_and(ident_start) {
                        i += 1;
                        continue;
                    }
                    break;
                }
                let name = text.get(start..i).unwrap_or("");
                let mut j = i;
                while matches!(b.get(j), Some(b' ' | b'\t')) {
                    j += 1;
                }
                let call = b.get(j) == Some(&b'(');
                if !defining {
                    f(name, line, call);
                }
                defining = matches!(name, "def" | "class");
            }
            c if c.is_ascii_digit() => {
                while b.get(i).copied().is_some_and(ident) {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
}

/// The classes defined at the top level of a source file of module `module`.
fn classes(module: &str, text: &str, out: &mut HashMap<String, Class>) {
    let mut current: Option<String> = None;
    for line in text.lines() {
        let body = line.trim_start();
        let indented = body.len() < line.len();
        if !indented && !body.is_empty() {
            current = None;
            if let Some(rest) = body.strip_prefix("class ") {
                let end = rest.find(['(', ':']).unwrap_or(rest.len());
                let name = rest[..end].trim();
                let bases = rest[end..]
                    .strip_prefix('(')
                    .and_then(|r| r.split_once(')'))
                    .map(|(b, _)| b)
                    .unwrap_or("");
                let qualified = format!("{module}.{name}");
                out.insert(
                    qualified.clone(),
                    Class {
                        module: bases.split(',').any(|b| b.trim() == "Module"),
                        ..Class::default()
                    },
                );
                current = Some(qualified);
            }
            continue;
        }
        let Some(class) = current.as_ref().and_then(|c| out.get_mut(c)) else {
            continue;
        };
        if let Some(rest) = body.strip_prefix("__parameters__") {
            class.parameters = quoted(rest);
        } else if let Some(rest) = body.strip_prefix("__buffers__") {
            class.buffers = quoted(rest);
        } else if body.starts_with("def __setstate__(") {
            class.setstate = true;
        }
    }
}

/// The double-quoted strings of `["weight", "bias", ]`.
fn quoted(text: &str) -> Vec<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

impl Runner<'_> {
    /// Reads the source files of a TorchScript archive (never as pickles), within the code
    /// limits, and records the program finding and the flagged lines.
    pub(super) fn torchscript_code(&mut self, bytes: &[u8], archive: &TorchZip) {
        let mut code = Code::default();
        let sources: Vec<&ZipEntry> = archive
            .entries
            .iter()
            .filter(|e| is_source(&e.name))
            .collect();
        for entry in sources {
            if self.analysis.stopped.is_some() {
                code.incomplete = Some("the analysis stopped before the code was read".into());
                break;
            }
            if code.files.len() >= self.limits.max_code_files {
                code.incomplete = Some(format!(
                    "more than {} source files in code/, the limit (raise it with --limit code-files=N)",
                    self.limits.max_code_files
                ));
                break;
            }
            if code.bytes.saturating_add(entry.size) > self.limits.max_code_bytes {
                code.incomplete = Some(format!(
                    "`{}` would bring the code past {} bytes, the limit (raise it with --limit code=N)",
                    entry.name, self.limits.max_code_bytes
                ));
                break;
            }
            match self.member(bytes, entry) {
                None => break,
                Some(Ok(text)) => {
                    code.add_file(&entry.name, String::from_utf8_lossy(&text).into_owned())
                }
                Some(Err(e)) => self.finding(Finding::new(
                    Risk::Suspicious,
                    None,
                    format!("{e}; torch.jit.load cannot compile it either"),
                )),
            }
        }
        code.flagged.sort_by_key(|f| std::cmp::Reverse(f.risk));
        code.program = Some(Finding::new(
            Risk::Suspicious,
            None,
            format!(
                "TorchScript program: `torch.jit.load` compiles and runs the code in `code/` ({} files, {} lines)",
                code.files.len(),
                code.lines
            ),
        ));
        if let Some(why) = &code.incomplete {
            self.finding(Finding::new(
                Risk::Suspicious,
                None,
                format!(
                    "TorchScript code not fully read: {why}; calls in the rest were not checked"
                ),
            ));
        }
        for f in code.findings() {
            self.finding(f);
        }
        self.check_classes(&code);
        self.analysis.torchscript = Some(code);
    }

    /// Every `__torch__` class the object pickle names must be defined in `code/` (else
    /// `torch.jit.load` fails), and custom C++ classes are judged like custom operators.
    fn check_classes(&mut self, code: &Code) {
        let Some(program) = &self.analysis.object else {
            return;
        };
        let member = self
            .analysis
            .streams
            .iter()
            .find(|s| s.role == "object")
            .and_then(|s| s.member.clone());
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for id in 0..program.arena.len() as crate::pickle::value::NodeId {
            let Some(Node::Global { module, name }) = program.arena.get(id) else {
                continue;
            };
            if !(module == "__torch__" || module.starts_with("__torch__."))
                || !seen.insert((module.clone(), name.clone()))
            {
                continue;
            }
            let full = format!("{module}.{name}");
            if let Some(rest) = full.strip_prefix("__torch__.torch.classes.") {
                let mut parts = rest.splitn(2, '.');
                let (ns, class) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                if let Some((risk, why)) = namespace_rule(ns, class, "class") {
                    out.push(Finding::new(risk, Some(full), why));
                }
            } else if !code.classes.contains_key(&full) {
                out.push(Finding::new(
                    Risk::Suspicious,
                    Some(full),
                    "the pickle names a TorchScript class that code/ does not define: torch.jit.load would fail (a damaged or hand-made archive)",
                ));
            }
        }
        for mut f in out {
            f.member.clone_from(&member);
            self.finding(f);
        }
    }
}

/// The entries of `state_dict()` of a TorchScript module tree, as pickle values.
#[derive(Debug, Default)]
pub struct StateDict {
    /// `(name, value)`, in torch's order; the value is a tensor rebuild call.
    pub entries: Vec<(String, Val)>,
    /// Modules whose state could not be read as attributes, and why.
    pub notes: Vec<String>,
}

/// Walks the module tree under `root` as `Module.state_dict()` does: parameters, buffers, then
/// submodules, each module once per path; `None` when the root is not a TorchScript module.
pub fn state_dict(arena: &Arena, root: Val, code: &Code) -> Option<StateDict> {
    let mut out = StateDict::default();
    let (root_class, _) = module_attrs(arena, root)?;
    code.classes.get(&root_class).filter(|c| c.module)?;
    let mut stack = vec![(root, String::new(), 0usize)];
    let mut work = 0usize;
    while let Some((v, prefix, depth)) = stack.pop() {
        let Some((class_name, attrs)) = module_attrs(arena, v) else {
            continue;
        };
        let Some(class) = code.classes.get(&class_name) else {
            continue;
        };
        work = work.saturating_add(1 + attrs.len() + class.parameters.len() + class.buffers.len());
        if work > MAX_MODULE_WALK {
            out.notes.push(format!(
                "the module tree is too large to walk (more than {MAX_MODULE_WALK} steps): modules from `{}` on are not listed",
                display_prefix(&prefix)
            ));
            break;
        }
        if class.setstate {
            out.notes.push(format!(
                "module `{}` ({class_name}) restores its state with its own __setstate__ (TorchScript code): its tensors are not listed",
                display_prefix(&prefix)
            ));
            continue;
        }
        let join = |k: &str| {
            if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}.{k}")
            }
        };
        let parameters: HashSet<&str> = class.parameters.iter().map(String::as_str).collect();
        let buffers: HashSet<&str> = class.buffers.iter().map(String::as_str).collect();
        for wanted in [&parameters, &buffers] {
            for (key, value) in &attrs {
                if wanted.contains(key.as_str()) && *value != Val::None {
                    out.entries.push((join(key), *value));
                }
            }
        }
        let children: Vec<(String, Val)> = attrs
            .iter()
            .filter(|(k, v)| {
                !parameters.contains(k.as_str())
                    && !buffers.contains(k.as_str())
                    && module_attrs_class(arena, *v)
                        .is_some_and(|c| code.classes.get(&c).is_some_and(|c| c.module))
            })
            .map(|(k, v)| (join(k), *v))
            .collect();
        if !children.is_empty() && depth >= crate::limits::MAX_VALUE_DEPTH {
            out.notes.push(format!(
                "modules nested deeper than {} levels under `{}` are not listed",
                crate::limits::MAX_VALUE_DEPTH,
                display_prefix(&prefix)
            ));
            continue;
        }
        // Reversed onto the stack so that submodules come out in attribute order.
        for (name, v) in children.into_iter().rev() {
            stack.push((v, name, depth + 1));
        }
    }
    Some(out)
}

fn display_prefix(prefix: &str) -> &str {
    if prefix.is_empty() { "(root)" } else { prefix }
}

/// The qualified class of a `__torch__` object.
fn module_attrs_class(arena: &Arena, v: Val) -> Option<String> {
    let obj = arena.object(v)?;
    let (module, name) = arena.global(obj.callable)?;
    (module == "__torch__" || module.starts_with("__torch__.")).then(|| format!("{module}.{name}"))
}

/// The class and attributes (the BUILD state dicts, later keys winning) of a `__torch__` object.
fn module_attrs(arena: &Arena, v: Val) -> Option<(String, Vec<(String, Val)>)> {
    let class = module_attrs_class(arena, v)?;
    let obj = arena.object(v)?;
    let mut attrs: Vec<(String, Val)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for state in &obj.state {
        if let Some(Node::Dict(entries)) = arena.node(*state) {
            for (k, value) in entries {
                let Some(key) = arena.str(*k) else {
                    continue;
                };
                match index.get(key) {
                    Some(&i) => attrs[i].1 = *value,
                    None => {
                        index.insert(key, attrs.len());
                        attrs.push((key.to_string(), *value));
                    }
                }
            }
        }
    }
    Some((class, attrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(text: &str) -> Vec<(u64, Risk, String)> {
        let mut code = Code::default();
        code.add_file("m/code/__torch__.py", text.to_string());
        code.flagged
            .into_iter()
            .map(|f| (f.line, f.risk, f.call))
            .collect()
    }

    #[test]
    fn file_and_library_calls_are_flagged_with_their_line() {
        let text = "class M(Module):\n  def forward(self, x):\n    torch.save(x, \"/tmp/a\")\n    torch.ops.load_library(\"evil.so\")\n    y = ops.myns.run(x)\n    z = ops.aten.relu(x)\n    return torch.relu(x)\n";
        assert_eq!(
            flags(text),
            [
                (3, Risk::Dangerous, "torch.save".to_string()),
                (4, Risk::Dangerous, "torch.ops.load_library".to_string()),
                (5, Risk::Dangerous, "ops.myns.run".to_string()),
            ]
        );
    }

    #[test]
    fn strings_comments_and_definitions_are_not_calls() {
        let text = "def open(x):\n  # torch.save(x)\n  s = \"torch.save(x)\"\n  t = '''\nos.system(1)\n'''\n  return self.save(x)\n";
        assert_eq!(flags(text), []);
        assert_eq!(flags("  f = open(\"x\", \"w\")\n  import_ok = 1\n")[0].0, 1);
    }

    #[test]
    fn pytorch_libraries_are_a_dependency_not_a_hazard() {
        let f = flags("  _0 = ops.torchvision.nms(a, b, 0.5)\n");
        assert_eq!(f, [(1, Risk::Info, "ops.torchvision.nms".to_string())]);
        assert_eq!(flags("  _1 = ops.quantized.linear(x)\n"), []);
        assert_eq!(
            flags("  _1 = ops.c10d.allreduce_(x)\n")[0].1,
            Risk::Dangerous
        );
    }

    #[test]
    fn classes_give_parameters_and_buffers() {
        let mut code = Code::default();
        code.add_file(
            "m/code/__torch__/torch/nn/modules/batchnorm.py",
            "class BatchNorm1d(Module):\n  __parameters__ = [\"weight\", \"bias\", ]\n  __buffers__ = [\"running_mean\", ]\n  weight : Tensor\n  def forward(self: __torch__.X,\n    input: Tensor) -> Tensor:\n    return input\nclass Plain(object):\n  def __setstate__(self, s):\n    pass\n".into(),
        );
        let bn = &code.classes["__torch__.torch.nn.modules.batchnorm.BatchNorm1d"];
        assert!(bn.module && !bn.setstate);
        assert_eq!(bn.parameters, ["weight", "bias"]);
        assert_eq!(bn.buffers, ["running_mean"]);
        let plain = &code.classes["__torch__.torch.nn.modules.batchnorm.Plain"];
        assert!(!plain.module && plain.setstate);
    }

    #[test]
    fn module_names_from_paths() {
        assert_eq!(
            module_of("m/code/__torch__.py").as_deref(),
            Some("__torch__")
        );
        assert_eq!(
            module_of("m/code/__torch__/torch/nn/modules/linear/___torch_mangle_1.py").as_deref(),
            Some("__torch__.torch.nn.modules.linear.___torch_mangle_1")
        );
        assert_eq!(module_of("m/data.pkl"), None);
        assert!(is_source("m/code/__torch__.py") && is_source("code/x.py"));
        assert!(!is_source("m/code/__torch__.py.debug_pkl") && !is_source("m/other/code.py"));
    }

    #[test]
    fn hostile_text_costs_linear_time() {
        // Unterminated strings, endless dotted names, deep nesting of quotes.
        let mut text = String::from("'''");
        text.push_str(&"a.".repeat(200_000));
        text.push_str("\n\"");
        text.push_str(&"\\".repeat(100_001));
        let start = std::time::Instant::now();
        let _ = flags(&text);
        let _ = flags(&"a.".repeat(500_000));
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }
}
