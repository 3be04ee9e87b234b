"""Arrow IPC tensors, IPC file and stream with numeric / fixed_size_list / arrow.fixed_shape_tensor
columns, and Feather v2 files (default LZ4, ZSTD, uncompressed). Writes tests/fixtures/next/arrow/.

    $VENVS/misc/bin/python gen_arrow.py

Naming:
- `pyarrow.ipc.write_tensor` files: one Tensor message each, named `tensor` (files with several
  tensors back to back: `tensor.0`, `tensor.1`, ... in order, read with pyarrow.ipc.read_tensor
  at successive offsets). Truth has `dim_names`, `strides` and `is_contiguous`, and `offset` of
  each message.
- IPC / Feather tables: each column is one tensor named by the column's name, over all record
  batches concatenated: a numeric column is [rows], a fixed_size_list<T>[n] column [rows, n], an
  arrow.fixed_shape_tensor column [rows, *shape] (its `permutation`/`dim_names` reported). No
  nulls anywhere. `record_batches` gives the row count of each batch; `compression` the body
  codec. A utf8 column `label` is listed in `unsupported` (not a tensor).
"""

import os

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.ipc as ipc

from _truth import out_dir, sample, truth, versions, write_truth

GEN = "gen_arrow.py"
VERS = versions("pyarrow", "numpy")
OUT = out_dir("arrow")
rng = np.random.default_rng(26)


def write_tensors():
    specs = {
        "tensor_f32.arrow": [(sample(rng, np.float32, (4, 6)), None)],
        "tensor_i64_named.arrow": [(sample(rng, np.int64, (2, 3, 4)), ["batch", "row", "col"])],
        "tensor_fortran_f64.arrow": [(np.asfortranarray(sample(rng, np.float64, (3, 5))), None)],
        "tensors_multi.arrow": [(sample(rng, np.float16, (8,)), None),
                                (sample(rng, np.uint8, (2, 2)), None),
                                (sample(rng, np.int16, (3, 1, 2)), ["a", "b", "c"])],
    }
    for name, items in specs.items():
        path = os.path.join(OUT, name)
        with pa.OSFile(path, "wb") as sink:
            for arr, dims in items:
                t = pa.Tensor.from_numpy(arr, dim_names=dims)
                ipc.write_tensor(t, sink)
        found, offsets = {}, []
        with pa.memory_map(path) as src:
            for i in range(len(items)):
                offsets.append(src.tell())
                t = ipc.read_tensor(src)
                key = "tensor" if len(items) == 1 else f"tensor.{i}"
                found[key] = truth(t.to_numpy(), dim_names=list(t.dim_names),
                                   strides=list(t.strides), is_contiguous=t.is_contiguous,
                                   arrow_type=str(t.type), offset=offsets[-1])
        write_truth(path, found, generator=GEN, library_versions=VERS,
                    naming="'tensor', or 'tensor.N' for the N-th message", metadata={})


def table():
    rows = [3, 2]  # two record batches
    n = sum(rows)
    tensor_type = pa.fixed_shape_tensor(pa.float32(), [2, 3])
    tensor_perm_type = pa.fixed_shape_tensor(pa.int32(), [2, 2], dim_names=["h", "w"],
                                             permutation=[1, 0])
    cols = {
        "f32": pa.array(sample(rng, np.float32, (n,))),
        "i64": pa.array(sample(rng, np.int64, (n,))),
        "f16": pa.array(sample(rng, np.float16, (n,))),
        "u8": pa.array(sample(rng, np.uint8, (n,))),
        "f64": pa.array(sample(rng, np.float64, (n,))),
        "flag": pa.array(sample(rng, np.bool_, (n,))),
        "vec4": pa.FixedSizeListArray.from_arrays(pa.array(sample(rng, np.float32, (n * 4,))), 4),
        "ivec2": pa.FixedSizeListArray.from_arrays(pa.array(sample(rng, np.int16, (n * 2,))), 2),
        "image": pa.ExtensionArray.from_storage(
            tensor_type,
            pa.FixedSizeListArray.from_arrays(pa.array(sample(rng, np.float32, (n * 6,))), 6)),
        "perm": pa.ExtensionArray.from_storage(
            tensor_perm_type,
            pa.FixedSizeListArray.from_arrays(pa.array(sample(rng, np.int32, (n * 4,))), 4)),
        "label": pa.array([f"row{i}" for i in range(n)]),
    }
    t = pa.table(cols)
    return t, rows


def column_truth(tab):
    found, unsupported = {}, []
    for name in tab.column_names:
        col = tab.column(name).combine_chunks() if tab.column(name).num_chunks else None
        typ = tab.schema.field(name).type
        if isinstance(typ, pa.FixedShapeTensorType):
            arr = col.to_numpy_ndarray()
            found[name] = truth(arr, arrow_type=str(typ), kind="fixed_shape_tensor",
                                tensor_shape=list(typ.shape),
                                permutation=typ.permutation, dim_names=typ.dim_names,
                                extension_name=typ.extension_name)
        elif pa.types.is_fixed_size_list(typ):
            flat = col.flatten().to_numpy(zero_copy_only=False)
            found[name] = truth(flat.reshape(len(col), typ.list_size), arrow_type=str(typ),
                                kind="fixed_size_list")
        elif pa.types.is_boolean(typ):
            found[name] = truth(col.to_numpy(zero_copy_only=False), arrow_type=str(typ),
                                kind="numeric", note="Arrow stores booleans bit-packed; "
                                "sha256 is of one byte per value as NumPy holds them")
        elif pa.types.is_integer(typ) or pa.types.is_floating(typ):
            found[name] = truth(col.to_numpy(), arrow_type=str(typ), kind="numeric")
        else:
            unsupported.append(name)
    return found, unsupported


def write_ipc():
    tab, rows = table()
    batches = tab.to_batches(max_chunksize=rows[0])
    assert [b.num_rows for b in batches] == rows
    md = {b"producer": b"ckptscope-fixtures"}
    schema = tab.schema.with_metadata(md)
    out = []
    for fname, kind, compression in [("table_file.arrow", "file", None),
                                     ("table_stream.arrows", "stream", None),
                                     ("table_file_zstd.arrow", "file", "zstd"),
                                     ("table_stream_lz4.arrows", "stream", "lz4")]:
        path = os.path.join(OUT, fname)
        opts = ipc.IpcWriteOptions(compression=compression)
        with pa.OSFile(path, "wb") as sink:
            w = (ipc.new_file if kind == "file" else ipc.new_stream)(sink, schema, options=opts)
            for b in batches:
                w.write_batch(b)
            w.close()
        with pa.memory_map(path) as src:
            r = ipc.open_file(src) if kind == "file" else ipc.open_stream(src)
            back = r.read_all()
        found, unsup = column_truth(back)
        write_truth(path, found, generator=GEN, library_versions=VERS,
                    naming="column name; rows of all record batches concatenated",
                    unsupported=unsup,
                    metadata={k.decode(): v.decode() for k, v in back.schema.metadata.items()},
                    extra={"ipc_kind": kind, "compression": compression or "none",
                           "record_batches": [b.num_rows for b in back.to_batches()],
                           "schema": str(back.schema)})
        out.append(path)


def write_feather():
    tab, rows = table()
    for fname, compression in [("feather_default_lz4.feather", None),
                               ("feather_zstd.feather", "zstd"),
                               ("feather_uncompressed.feather", "uncompressed")]:
        path = os.path.join(OUT, fname)
        kwargs = {} if compression is None else {"compression": compression}
        feather.write_feather(tab, path, chunksize=rows[0], **kwargs)
        back = feather.read_table(path)
        found, unsup = column_truth(back)
        write_truth(path, found, generator=GEN, library_versions=VERS,
                    naming="column name; rows of all record batches concatenated",
                    unsupported=unsup, metadata={},
                    extra={"feather_version": 2,
                           "compression": compression or "default (lz4)",
                           "record_batches": [b.num_rows for b in back.to_batches()],
                           "schema": str(back.schema)})


if __name__ == "__main__":
    write_tensors()
    write_ipc()
    write_feather()
