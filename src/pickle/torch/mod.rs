//! Reading PyTorch objects out of a pickle's value tree, without torch.
//!
//! `torch.save` pickles a tensor as a call to one of `torch._utils._rebuild_tensor*` with a
//! storage (a persistent id naming a record of the archive), an element offset, a size and a
//! stride. This module recognises those calls in the symbolic tree the machine built, and walks
//! dicts, lists and object states to give every tensor its dotted name. Everything that is not a
//! tensor becomes a JSON-like tree for display and for the converter's metadata. The walk visits
//! every container once: a value referenced many times is described once and then referred to,
//! so a "billion laughs" pickle costs its size, not its expansion.
//!
//! Owns: tensors and non-tensor values out of a pickle's value tree. Must not import: `format`.

mod rebuild;
mod walk;

use crate::dtype::DType;
use crate::limits::{
    MAX_VALUE_DEPTH as MAX_DEPTH, MAX_VALUE_NODES as MAX_JSON_NODES, MAX_VALUE_STRING as MAX_STRING,
};
use crate::pickle::policy::normalize;
use crate::pickle::value::{Arena, Node, NodeId, Val};
use rebuild::*;
pub use rebuild::{key_list, storage_keys, storages, sys_info_little_endian};
use serde_json::{Map, Value as Json};
use std::collections::HashMap;
use walk::*;

/// A torch element type, supported by safetensors or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TorchDType {
    /// One of the safetensors dtypes.
    Supported(DType),
    /// A torch dtype safetensors cannot hold (quantized, complex128...), with its element size.
    Unsupported {
        /// The torch name (`qint8`).
        name: String,
        /// Bytes per element.
        size: u64,
    },
}

impl TorchDType {
    /// Bytes per element.
    pub fn size(&self) -> u64 {
        match self {
            TorchDType::Supported(d) => d.byte_size().unwrap_or(1),
            TorchDType::Unsupported { size, .. } => *size,
        }
    }

    /// The name to show.
    pub fn label(&self) -> String {
        match self {
            TorchDType::Supported(d) => d.name().to_string(),
            TorchDType::Unsupported { name, .. } => format!("torch.{name}"),
        }
    }
}

/// The dtype of a `torch.<name>` dtype object.
pub fn dtype_from_torch_name(name: &str) -> Option<TorchDType> {
    use DType as D;
    let supported = match name {
        "float32" | "float" => D::F32,
        "float64" | "double" => D::F64,
        "float16" | "half" => D::F16,
        "bfloat16" => D::BF16,
        "uint8" => D::U8,
        "int8" => D::I8,
        "int16" | "short" => D::I16,
        "int32" | "int" => D::I32,
        "int64" | "long" => D::I64,
        "bool" => D::BOOL,
        "complex64" | "cfloat" => D::C64,
        "uint16" => D::U16,
        "uint32" => D::U32,
        "uint64" => D::U64,
        "float8_e4m3fn" => D::F8_E4M3,
        "float8_e5m2" => D::F8_E5M2,
        "float8_e4m3fnuz" => D::F8_E4M3FNUZ,
        "float8_e5m2fnuz" => D::F8_E5M2FNUZ,
        "float8_e8m0fnu" => D::F8_E8M0,
        _ => {
            let size = match name {
                "complex128" | "cdouble" => 16,
                "complex32" | "chalf" | "qint32" => 4,
                "bits16" => 2,
                "qint8" | "quint8" | "quint4x2" | "quint2x4" | "float4_e2m1fn_x2" | "bits8"
                | "bits1x8" | "bits2x4" | "bits4x2" => 1,
                _ => return None,
            };
            return Some(TorchDType::Unsupported {
                name: name.to_string(),
                size,
            });
        }
    };
    Some(TorchDType::Supported(supported))
}

/// The dtype of a legacy typed storage class (`FloatStorage`).
pub fn dtype_from_storage_class(name: &str) -> Option<TorchDType> {
    let torch_name = match name {
        "FloatStorage" => "float32",
        "DoubleStorage" => "float64",
        "HalfStorage" => "float16",
        "BFloat16Storage" => "bfloat16",
        "ByteStorage" => "uint8",
        "CharStorage" => "int8",
        "ShortStorage" => "int16",
        "IntStorage" => "int32",
        "LongStorage" => "int64",
        "BoolStorage" => "bool",
        "ComplexFloatStorage" => "complex64",
        "ComplexDoubleStorage" => "complex128",
        "QInt8Storage" => "qint8",
        "QUInt8Storage" => "quint8",
        "QInt32Storage" => "qint32",
        "QUInt4x2Storage" => "quint4x2",
        "QUInt2x4Storage" => "quint2x4",
        // Untyped storages count bytes; the tensor's dtype comes from _rebuild_tensor_v3.
        "UntypedStorage" | "_UntypedStorage" | "ByteStorageUntyped" => "uint8",
        _ => return None,
    };
    dtype_from_torch_name(torch_name)
}

/// A storage a tensor views, as its persistent id describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageRef {
    /// Record key in the archive (`"0"`), or the legacy object key.
    pub key: String,
    /// Element type of the storage class (`uint8` for untyped storages).
    pub dtype: TorchDType,
    /// True for `UntypedStorage` (sizes in bytes).
    pub untyped: bool,
    /// Device tag (`cpu`, `cuda:0`).
    pub location: String,
    /// Elements of the storage as the pickle declares them.
    pub numel: Option<u64>,
    /// Legacy views of a larger storage: (root key, offset in elements, size in elements).
    pub view: Option<(String, u64, u64)>,
}

/// A tensor found in the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PickledTensor {
    /// Dotted path from the root (`state_dict.model.0.weight`).
    pub name: String,
    /// Element type.
    pub dtype: TorchDType,
    /// Dimensions.
    pub shape: Vec<u64>,
    /// Strides in elements.
    pub stride: Vec<u64>,
    /// Offset in elements into the storage.
    pub offset: u64,
    /// The storage.
    pub storage: StorageRef,
    /// Whether it was saved as an `nn.Parameter`.
    pub parameter: bool,
    /// The arena node of the rebuild call (same node = same Python tensor object).
    pub node: NodeId,
    /// The key of the top-level entry this tensor sits under, when the root is a mapping and
    /// that entry is itself a mapping (`state_dict` of a Lightning checkpoint, `model` of
    /// `{"model": ..., "optimizer": ...}`); `None` for a flat state dict.
    pub root: Option<String>,
}

/// A tensor ckptscope recognises but cannot read (quantized, sparse, meta...).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UnsupportedTensor {
    /// Dotted path.
    pub name: String,
    /// Why it is not read.
    pub reason: String,
    /// As [`PickledTensor::root`].
    #[serde(skip)]
    pub root: Option<String>,
}

/// What the walk found.
#[derive(Clone, Debug, Default)]
pub struct Extracted {
    /// Readable tensors, in the order they appear.
    pub tensors: Vec<PickledTensor>,
    /// Tensors that cannot be read, with why.
    pub unsupported: Vec<UnsupportedTensor>,
    /// The non-tensor values, with tensors replaced by short descriptions.
    pub objects: Json,
    /// Anything the walk had to cut short (depth, size).
    pub notes: Vec<String>,
}

/// Walks the tree under `root`, naming tensors by dotted path.
pub fn extract(arena: &Arena, root: Val) -> Extracted {
    extract_with(arena, root, None)
}

/// [`extract`] for files whose object pickle names tensors by persistent key (the tar format):
/// `by_key` gives each key's tensor.
pub fn extract_with(
    arena: &Arena,
    root: Val,
    by_key: Option<&HashMap<String, PickledTensor>>,
) -> Extracted {
    walk_tree(arena, root, by_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_names_cover_safetensors_types() {
        assert_eq!(
            dtype_from_storage_class("BFloat16Storage"),
            Some(TorchDType::Supported(DType::BF16))
        );
        assert_eq!(
            dtype_from_torch_name("float8_e4m3fnuz"),
            Some(TorchDType::Supported(DType::F8_E4M3FNUZ))
        );
        assert!(matches!(
            dtype_from_torch_name("complex128"),
            Some(TorchDType::Unsupported { size: 16, .. })
        ));
        assert_eq!(dtype_from_torch_name("nonsense"), None);
    }
}
