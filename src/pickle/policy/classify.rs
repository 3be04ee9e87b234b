//! Classifying one global by name: its normal form (`torch._utils` spellings, Python 2 module
//! names), whether it is data, allowlisted, a tensor or storage class, and why it is dangerous
//! or unknown.
//!
//! Owns: the name rules. Must not import: `Policy`, `Findings` (the policy's state).

use super::tables::*;

/// Python 2 names that `pickle` maps to Python 3 ones when it loads a protocol < 3 pickle
/// (`_compat_pickle`), so `__builtin__.eval` is judged as `builtins.eval`.
pub fn normalize(module: &str, name: &str) -> (String, String) {
    let module = match module {
        "__builtin__" | "exceptions" => "builtins",
        "copy_reg" => "copyreg",
        "cPickle" => "pickle",
        "cStringIO" | "StringIO" => "io",
        "commands" => "subprocess",
        "urllib2" => "urllib.request",
        "httplib" => "http.client",
        "SocketServer" => "socketserver",
        "thread" => "_thread",
        "dummy_thread" => "_dummy_thread",
        "UserDict" | "UserList" | "UserString" => "collections",
        other => other,
    };
    let name = match (module, name) {
        ("builtins", "xrange") => "range",
        ("builtins", "unicode") => "str",
        ("builtins", "basestring") => "str",
        ("builtins", "long") => "int",
        ("builtins", "reduce") => "functools.reduce",
        ("builtins", "intern") => "sys.intern",
        ("builtins", "unichr") => "chr",
        ("builtins", "raw_input") => "input",
        (_, other) => other,
    };
    // `builtins.functools.reduce` above is not a real name: keep it pointing at the module.
    if let Some(rest) = name.strip_prefix("functools.") {
        return ("functools".into(), rest.into());
    }
    if let Some(rest) = name.strip_prefix("sys.") {
        return ("sys".into(), rest.into());
    }
    (module.to_string(), name.to_string())
}

pub(crate) fn root_module(module: &str) -> &str {
    module.split('.').next().unwrap_or(module)
}

pub(crate) fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `module.name` is one of the [`DATA_ONLY`] globals (or a NumPy dtype class).
pub fn is_data_only(module: &str, name: &str) -> bool {
    DATA_ONLY.contains(&(module, name))
        || (module == "numpy.dtypes" && is_ident(name) && name.ends_with("DType"))
}

/// The globals TorchScript's unpickler resolves itself, without importing anything: the
/// `torch.jit._pickle` helpers (each returns its argument, typed) and the `__torch__` classes
/// compiled from `code/` (checked against the code by the TorchScript reader, `pickle::torchscript`;
/// custom C++ classes under `__torch__.torch.classes` are judged there like custom operators).
/// The policy allows them only in a TorchScript archive's pickles (`Policy::torchscript`).
pub fn is_torchscript_allowlisted(module: &str, name: &str) -> bool {
    let ident = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match module {
        "torch.jit._pickle" => matches!(
            name,
            "build_intlist"
                | "build_tensorlist"
                | "build_doublelist"
                | "build_boollist"
                | "build_tensor_from_id"
                | "restore_type_tag"
        ),
        _ => {
            (module == "__torch__" || module.starts_with("__torch__."))
                && ident
                && module.split('.').all(|p| {
                    !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
        }
    }
}

/// The built-in allowlist.
pub fn is_allowlisted(module: &str, name: &str) -> bool {
    if is_data_only(module, name) {
        return true;
    }
    match module {
        "collections" => matches!(name, "OrderedDict" | "Counter" | "defaultdict"),
        "torch.nn.parameter" => name == "Parameter",
        "torch.serialization" => name == "_get_layout",
        "_codecs" => name == "encode",
        "builtins" => SAFE_BUILTINS.contains(&name),
        "torch._utils" => REBUILD_FUNCTIONS.contains(&name),
        "torch._tensor" => name == "_rebuild_from_type_v2",
        "torch" => {
            matches!(name, "Size" | "Tensor" | "device")
                || DTYPE_NAMES.contains(&name)
                || QSCHEMES.contains(&name)
                || is_tensor_or_storage_class(name)
        }
        "torch.cuda" | "torch.sparse" | "torch.cuda.sparse" => is_tensor_or_storage_class(name),
        "torch.storage" => matches!(name, "UntypedStorage" | "TypedStorage" | "_LegacyStorage"),
        _ => false,
    }
}

pub(crate) fn is_tensor_or_storage_class(name: &str) -> bool {
    is_ident(name)
        && name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && (name.ends_with("Tensor") || name.ends_with("Storage"))
}

pub(crate) fn dangerous_reason(module: &str, name: &str) -> Option<String> {
    let full = format!("{module}.{name}");
    for (m, n, why) in DANGEROUS_GLOBALS {
        if module == *m && name == *n {
            return Some(format!("`{full}` {why}"));
        }
    }
    let root = root_module(module);
    for (m, why) in DANGEROUS_MODULES {
        if root == *m || module == *m {
            return Some(format!("module `{module}`: {why}"));
        }
    }
    for (prefix, why) in DANGEROUS_PREFIXES {
        if module == *prefix || module.starts_with(&format!("{prefix}.")) {
            return Some(format!("module `{module}`: {why}"));
        }
    }
    // `uuid.UUID` is data; the module's functions look for the MAC address by running
    // `ifconfig`, `ip`, `arp`, `netstat`... (`_get_command_stdout`).
    if module == "uuid" && !matches!(name, "UUID" | "SafeUUID" | "uuid3" | "uuid4" | "uuid5") {
        return Some(format!(
            "`{full}`: module `uuid`'s other functions find the MAC address by running commands (_get_command_stdout)"
        ));
    }
    if root == "pathlib" && name.contains('.') {
        return Some(format!(
            "`{full}` reaches a method of a path object, which reads, writes or deletes files"
        ));
    }
    if name.contains('.') && name.split('.').any(|part| part.starts_with("__")) {
        return Some(format!(
            "dotted name `{name}` walks through dunder attributes to reach objects the module does not export (for example __globals__ or __builtins__)"
        ));
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    if DANGEROUS_NAMES.contains(&last) || (module.ends_with("pickle") && last.starts_with("load")) {
        return Some(format!(
            "`{full}`: a function named `{last}` typically runs commands, code or nested loads"
        ));
    }
    if last == "load" && !module.starts_with("torch.") {
        return Some(format!(
            "`{full}`: a `load` function deserializes more data, possibly another pickle"
        ));
    }
    None
}

pub(crate) fn unknown_reason(module: &str, name: &str) -> String {
    let full = format!("{module}.{name}");
    let known = [
        (
            "numpy",
            "NumPy object (arrays, dtypes, scalars): benign in itself, but outside torch's weights_only allowlist",
        ),
        ("_codecs", "codec function outside the allowlist"),
        (
            "argparse",
            "argparse.Namespace of training arguments: benign in itself, but a class import",
        ),
        (
            "omegaconf",
            "OmegaConf configuration object: imports omegaconf and calls its constructors",
        ),
        (
            "pathlib",
            "a path object: benign in itself, but a class import",
        ),
        ("collections", "a collections class outside the allowlist"),
        (
            "__main__",
            "a class from the training script: loading needs that script's code and runs its constructor",
        ),
        (
            "torch",
            "a torch global outside torch's weights_only allowlist",
        ),
        (
            "lightning",
            "a Lightning class: imports Lightning and runs its constructors",
        ),
        (
            "pytorch_lightning",
            "a Lightning class: imports Lightning and runs its constructors",
        ),
        (
            "transformers",
            "a transformers class: imports transformers and runs its constructors",
        ),
        ("builtins", "a builtin outside the allowlist"),
    ];
    for (prefix, why) in known {
        if module == prefix || module.starts_with(&format!("{prefix}.")) {
            return format!("`{full}`: {why}");
        }
    }
    format!(
        "`{full}` is not on the allowlist: importing it runs module `{}`'s code and calling it can do anything that code does",
        root_module(module)
    )
}
