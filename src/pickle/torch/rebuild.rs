//! Tensors out of `torch._utils._rebuild_*` calls and their storages: dtype, shape, strides,
//! storage offset, the storage's key, location and byte order.
//!
//! Owns: reading one tensor. Must not import: `walk`.

use super::*;

/// Reads a tensor from a rebuild call: `None` if `v` is not a tensor at all, `Some(Err)` if it
/// is one ckptscope cannot read.
pub(super) fn read_tensor(
    arena: &Arena,
    v: Val,
    name: &str,
    node: NodeId,
    depth: usize,
) -> Option<Result<PickledTensor, String>> {
    if depth > 4 {
        return None;
    }
    let obj = arena.object(v)?;
    let (module, func) = arena.global(obj.callable).map(|(m, n)| normalize(m, n))?;
    let args = arena.seq(obj.args).unwrap_or(&[]);
    let arg = |i: usize| args.get(i).copied();
    let result = match (module.as_str(), func.as_str()) {
        ("torch._utils", "_rebuild_tensor") => rebuild(arena, args, None, name, node),
        ("torch._utils", "_rebuild_tensor_v2") => rebuild(arena, args, None, name, node),
        ("torch._utils", "_rebuild_tensor_v3") => {
            let dtype = arg(6)
                .and_then(|d| arena.global(d))
                .and_then(|(m, n)| (normalize(m, n).0 == "torch").then(|| dtype_from_torch_name(n)))
                .flatten();
            match dtype {
                Some(dtype) => rebuild(arena, args, Some(dtype), name, node),
                None => Err("_rebuild_tensor_v3 without a known dtype".to_string()),
            }
        }
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state")
        | ("torch.nn.parameter", "Parameter") => {
            let data = arg(0)?;
            let Val::Ref(inner) = data else {
                return Some(Err("parameter without tensor data".into()));
            };
            let mut t = read_tensor(arena, data, name, inner, depth + 1)?;
            if let Ok(t) = &mut t {
                t.parameter = true;
                t.node = node;
            }
            t
        }
        ("torch._tensor", "_rebuild_from_type_v2") => {
            // _rebuild_from_type_v2(func, new_type, args, state): the tensor is func(*args).
            let func = arg(0)?;
            let inner_args = arg(2)?;
            let (m, n) = arena.global(func).map(|(m, n)| normalize(m, n))?;
            if m != "torch._utils" {
                return Some(Err(format!("tensor subclass rebuilt by {m}.{n}")));
            }
            let inner = arena.seq(inner_args).unwrap_or(&[]);
            match n.as_str() {
                "_rebuild_tensor" | "_rebuild_tensor_v2" => rebuild(arena, inner, None, name, node),
                "_rebuild_tensor_v3" => {
                    let dtype = inner
                        .get(6)
                        .and_then(|d| arena.global(*d))
                        .and_then(|(_, n)| dtype_from_torch_name(n));
                    match dtype {
                        Some(dtype) => rebuild(arena, inner, Some(dtype), name, node),
                        None => Err("_rebuild_tensor_v3 without a known dtype".to_string()),
                    }
                }
                other => Err(unsupported_rebuild(other)),
            }
        }
        ("torch._utils", other) if other.starts_with("_rebuild_") => {
            Err(unsupported_rebuild(other))
        }
        _ => return None,
    };
    Some(result)
}

pub(super) fn unsupported_rebuild(func: &str) -> String {
    match func {
        "_rebuild_qtensor" => "quantized tensor (not supported)".into(),
        "_rebuild_sparse_tensor" | "_rebuild_sparse_csr_tensor" => {
            "sparse tensor (not supported)".into()
        }
        "_rebuild_meta_tensor_no_storage" => "meta tensor: it has a shape but no data".into(),
        "_rebuild_nested_tensor" => "nested tensor (not supported)".into(),
        "_rebuild_wrapper_subclass" => {
            "tensor subclass without a plain storage (not supported)".into()
        }
        "_rebuild_device_tensor_from_numpy" | "_rebuild_device_tensor_from_cpu_tensor" => {
            "device tensor rebuilt from NumPy (not supported)".into()
        }
        other => format!("rebuilt by torch._utils.{other} (not supported)"),
    }
}

pub(super) fn ints(arena: &Arena, v: Val) -> Option<Vec<u64>> {
    // torch.Size(tuple) or a plain tuple.
    let seq = match arena.object(v) {
        Some(obj) => arena
            .seq(obj.args)?
            .first()
            .and_then(|inner| arena.seq(*inner))?,
        None => arena.seq(v)?,
    };
    seq.iter()
        .map(|x| arena.int(*x).and_then(|i| u64::try_from(i).ok()))
        .collect()
}

pub(super) fn rebuild(
    arena: &Arena,
    args: &[Val],
    dtype: Option<TorchDType>,
    name: &str,
    node: NodeId,
) -> Result<PickledTensor, String> {
    let storage = args.first().copied().ok_or("no storage argument")?;
    let storage = storage_ref(arena, storage)?;
    let offset = args
        .get(1)
        .and_then(|v| arena.int(*v))
        .and_then(|i| u64::try_from(i).ok())
        .ok_or("storage offset is not a non-negative integer")?;
    let shape = args
        .get(2)
        .and_then(|v| ints(arena, *v))
        .ok_or("size is not a tuple of non-negative integers")?;
    let stride = args
        .get(3)
        .and_then(|v| ints(arena, *v))
        .ok_or("stride is not a tuple of non-negative integers")?;
    if stride.len() != shape.len() {
        return Err(format!(
            "size has {} dimensions but stride has {}",
            shape.len(),
            stride.len()
        ));
    }
    let dtype = dtype.unwrap_or_else(|| storage.dtype.clone());
    Ok(PickledTensor {
        name: name.to_string(),
        dtype,
        shape,
        stride,
        offset,
        storage,
        parameter: false,
        node,
        root: None,
    })
}

/// Reads `('storage', storage_type, key, location, numel[, view_metadata])`.
pub(super) fn storage_ref(arena: &Arena, v: Val) -> Result<StorageRef, String> {
    let pid = match arena.node(v) {
        Some(Node::Persistent { pid }) => *pid,
        _ => {
            return Err(format!(
                "storage is {}, not a persistent storage id",
                arena.repr(v, 60)
            ));
        }
    };
    let items = arena.seq(pid).ok_or("persistent id is not a tuple")?;
    if items.first().and_then(|f| arena.text(*f)).as_deref() != Some("storage") {
        return Err("persistent id is not a storage".into());
    }
    let class = items
        .get(1)
        .and_then(|c| arena.global(*c))
        .ok_or("storage type is not a class")?;
    let (_, class_name) = normalize(class.0, class.1);
    let dtype = dtype_from_storage_class(&class_name)
        .ok_or_else(|| format!("unknown storage class {class_name}"))?;
    let untyped = class_name.contains("Untyped");
    let key = items
        .get(2)
        .and_then(|k| {
            arena
                .text(*k)
                .or_else(|| arena.int(*k).map(|i| i.to_string()))
        })
        .ok_or("storage key is not a string")?;
    let location = items
        .get(3)
        .and_then(|l| arena.text(*l))
        .unwrap_or_default();
    let numel = items
        .get(4)
        .and_then(|n| arena.int(*n))
        .and_then(|n| u64::try_from(n).ok());
    let view = items.get(5).and_then(|vm| {
        let vm = arena.seq(*vm)?;
        let key = arena.text(*vm.first()?)?;
        let offset = u64::try_from(arena.int(*vm.get(1)?)?).ok()?;
        let size = u64::try_from(arena.int(*vm.get(2)?)?).ok()?;
        Some((key, offset, size))
    });
    Ok(StorageRef {
        key,
        dtype,
        untyped,
        location,
        numel,
        view,
    })
}

/// Every storage a pickle's persistent ids name, by key (first description wins).
pub fn storages(arena: &Arena) -> HashMap<String, StorageRef> {
    let mut out = HashMap::new();
    for id in 0..arena.len() as NodeId {
        if let Some(Node::Persistent { .. }) = arena.get(id)
            && let Ok(s) = storage_ref(arena, Val::Ref(id))
        {
            out.entry(s.key.clone()).or_insert(s);
        }
    }
    out
}

/// Keys of the storages a pickle references, sorted.
pub fn storage_keys(arena: &Arena) -> Vec<String> {
    let mut keys: Vec<String> = storages(arena).into_keys().collect();
    keys.sort();
    keys
}

/// `sys_info['little_endian']` of a legacy file's third pickle.
pub fn sys_info_little_endian(arena: &Arena, root: Val) -> Option<bool> {
    match arena.node(root)? {
        Node::Dict(entries) => entries.iter().find_map(|(k, v)| {
            (arena.text(*k).as_deref() == Some("little_endian")).then_some(match v {
                Val::Bool(b) => Some(*b),
                _ => None,
            })?
        }),
        _ => None,
    }
}

/// The strings of a legacy storage-keys pickle (a list of str).
pub fn key_list(arena: &Arena, root: Val) -> Option<Vec<String>> {
    arena
        .seq(root)?
        .iter()
        .map(|k| {
            arena
                .text(*k)
                .or_else(|| arena.int(*k).map(|i| i.to_string()))
        })
        .collect()
}
