"""Writes tests/fixtures/next/README.md: every file, what it exercises, its generator and the library
versions recorded in its truth. Run after the generators (any Python 3, stdlib only)."""

import fnmatch
import json
import os

ROOT = os.environ.get("FIXTURES_OUT",
                      os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                   "..", "fixtures", "next"))

GROUPS = {
    "keras": ("Keras 3 / Keras 2 / h5py files (issue 24)", "gen_keras.py", "tf"),
    "tf": ("TensorFlow checkpoints, SavedModels, GraphDefs, TFLite (issues 24, 26)",
           "gen_tf.py", "tf"),
    "flax": ("Flax msgpack and Orbax (issue 25)", "gen_flax.py", "jax"),
    "paddle": ("PaddlePaddle .pdparams / .pdopt / jit programs (issue 25)", "gen_paddle.py",
               "paddle"),
    "arrow": ("Arrow IPC tensors, IPC file/stream, Feather v2 (issue 25)", "gen_arrow.py",
              "misc"),
    "numpy_pickles": ("NumPy arrays inside pickles, joblib, object .npy (issues 25, 26)",
                      "gen_numpy_pickles.py", "misc + np1"),
    "onnx_constants": ("ONNX Constant-node weights, training_info, external-data checksums "
                       "(issue 25)", "gen_onnx_constants.py", "misc"),
    "scanner": ("Scanner cases beyond pickles: archives, ONNX operators, GGUF templates, "
                "malformed files (issue 26; extra, not in the original request)",
                "gen_scanner.py", "misc"),
}

# (glob, description); first match wins
DESC = [
    # keras
    ("keras/sequential.keras", "Keras 3 archive of a small Sequential (Dense 4→8→3): config.json, metadata.json, model.weights.h5 (stored); HDF5 paths layers/dense/vars/N use auto names, the layer names are in the config"),
    ("keras/functional.keras", "Keras 3 archive of a functional model (two inputs, Embedding, BatchNorm, LayerNorm, Concatenate), trained one step: optimizer/vars/N (Adam) included"),
    ("keras/sequential.weights.h5", "Keras 3 .weights.h5 of the Sequential (layers/<auto>/vars/N, vars attr name=)"),
    ("keras/functional.weights.h5", "Keras 3 .weights.h5 of the functional model with optimizer state"),
    ("keras/sequential_legacy.h5", "legacy HDF5 written by Keras 3's model.save('x.h5'): model_weights/<layer>/<model>/<layer>/<weight>, layer_names / weight_names attrs, model_config"),
    ("keras/functional_legacy.h5", "legacy HDF5 (Keras 3 writer) with training_config and optimizer_weights/"),
    ("keras/keras2_legacy.h5", "real Keras 2 (tf_keras 2.21) legacy HDF5: model_weights/<layer>/<layer>/kernel:0, optimizer_weights/Adam/m|v/..., training_config"),
    ("keras/legacy_split_layer_names.h5", "legacy HDF5 whose layer_names attribute passed 64,512 bytes: split into layer_names0 / layer_names1"),
    ("keras/functional_sharded.weights.json", "sharded Keras 3 weights: index (weight_map) for functional_sharded_0000N.weights.h5"),
    ("keras/functional_sharded_0000*.weights.h5", "a shard of functional_sharded.weights.json (truth in the .json's truth)"),
    ("keras/lambda_arith.keras", "Lambda layer with a marshalled Python 3.11 lambda (arithmetic only; no names); safe_mode=True refuses it"),
    ("keras/lambda_import_os.keras", "Lambda layer whose bytecode references __import__ and getpid (dangerous); safe_mode=True refuses it"),
    ("keras/custom_object.keras", "custom layer registered as ckptscope_fixture>Scale (module/registered_name outside Keras); loads only where registered"),
    ("keras/keras_module_os.keras", "CVE-2025-1550 family: config.json rewritten so an activation is os.getcwd (module outside Keras)"),
    ("keras/keras_get_file.keras", "CVE-2025-8747 gadget: activation references keras.utils.get_file"),
    ("keras/keras_enable_unsafe.keras", "CVE-2025-9906: activation references keras.config.enable_unsafe_deserialization"),
    ("keras/keras_config_not_json.keras", "config.json cut at 200 bytes (not JSON): must be 'not scanned'"),
    ("keras/bf16.keras", "bfloat16 Dense weights in a .keras (stored as |V2 opaque with attrs dtype=bfloat16)"),
    ("keras/bf16.weights.h5", "bfloat16 weights in a .weights.h5"),
    ("keras/h5_chunked_filters.h5", "h5py: chunked (v1 B-tree, partial edge chunks), gzip, shuffle, fletcher32 in combinations, compact layout, contiguous, big-endian, scalar, empty, bool enum, unallocated chunked (fill value)"),
    ("keras/h5_track_order.h5", "h5py track_order=True: compact link messages, dense (fractal heap) links past 8 members, dense attributes; a symbol-table group beside"),
    ("keras/h5_string_attrs.h5", "h5py attributes: fixed-length ascii/utf-8 strings and arrays, variable-length (global heap) strings and arrays, many attributes (continuation blocks)"),
    ("keras/h5_libver_v108.h5", "h5py libver=('v108','v108'): superblock v2, v2 object headers, link messages, chunked with the v1 B-tree index"),
    ("keras/h5_libver_latest.h5", "h5py libver='latest': superblock v3, v2 object headers, chunk indexes other than the v1 B-tree (single chunk, fixed array, extensible array) — to be refused by name"),
    # tf
    ("tf/ckpt_single.*", "tf.train.Checkpoint(...).write of a Keras 3 model + extra variables (F16, F64, I64): .index + one data file; keys model/_functional/_operations/N/..."),
    ("tf/ckpt_sharded.*", "the same checkpoint sharded over 3 data files (MaxShardSizePolicy(200 bytes))"),
    ("tf/ckpt_tf_keras2.*", "checkpoint of a Keras 2 (tf_keras) model: keys model/layer_with_weights-N/..."),
    ("tf/tf1_saver.*", "TF1 name-based checkpoint from tf.compat.v1.train.Saver with its .meta MetaGraph (SaveV2/RestoreV2: benign)"),
    ("tf/savedmodel_two_signatures*", "SavedModel with signatures serving_default and classify, variables under variables/"),
    ("tf/savedmodel_file_ops*", "malicious control: SavedModel whose serving function calls ReadFile and WriteFile"),
    ("tf/savedmodel_vocab_asset*", "benign control: SavedModel with a lookup table initialised from assets/vocab.txt"),
    ("tf/frozen_graph.pb", "frozen GraphDef (convert_variables_to_constants_v2): weights as Const nodes"),
    ("tf/graph_file_ops.pb", "GraphDef with ReadFile, WriteFile and PrintV2 to a file:// stream (dangerous)"),
    ("tf/float32.tflite", "TFLite float32 (Conv2D + Dense) from TFLiteConverter"),
    ("tf/dynamic_range_int8.tflite", "TFLite dynamic-range quantization: Dense kernel int8 per-channel scales, rest float"),
    ("tf/float16.tflite", "TFLite float16 weights with DEQUANTIZE ops"),
    ("tf/full_int8.tflite", "TFLite full integer quantization (int8 I/O, per-axis scales, int32 biases)"),
    ("tf/custom_op.tflite", "TFLite with a custom operator (BesselI0e, allow_custom_ops): suspicious; the interpreter refuses it"),
    ("tf/flex_readfile.tflite", "TFLite with Flex (SELECT_TF_OPS) FlexReadFile: dangerous"),
    # flax
    ("flax/params.msgpack", "flax.serialization.to_bytes of nested params: F32, BF16, F16, F64, I32, I8, U64, BOOL, C64, C128, 0-d, empty, NumPy scalars (ext 3), Python complex (ext 2), plain ints/floats/strings"),
    ("flax/linen_variables.msgpack", "to_bytes of a real flax.linen Conv/BatchNorm/Dense variables dict (params + batch_stats)"),
    ("flax/chunked.msgpack", "msgpack_serialize with MAX_CHUNK_SIZE=64: __msgpack_chunked_array__ maps (2-3 chunks), a list, bf16 chunks"),
    ("flax/orbax_checkpoint*", "Orbax StandardCheckpointer folder (OCDBT + zarr, _METADATA, _CHECKPOINT_METADATA)"),
    # paddle
    ("paddle/net_p2.pdparams", "paddle.save(state_dict, protocol=2): _codecs.encode latin-1 arrays, StructuredToParameterName@@"),
    ("paddle/net_p3.pdparams", "paddle.save protocol 3 (BINBYTES arrays)"),
    ("paddle/net_p4.pdparams", "paddle.save protocol 4 (the default)"),
    ("paddle/net_split_p*.pdparams", "split big parameters key@@.N + UnpackBigParamInfor@@ (paddle's code with a 63-byte limit)"),
    ("paddle/net.pdopt", "Adam optimizer state after one step (moment1/2, beta pow accumulators)"),
    ("paddle/net_after_step.pdparams", "the parameters matching net.pdopt"),
    ("paddle/jit_pir/*", "paddle.jit.save in PIR mode (paddle 3 default): inference.json + inference.pdiparams"),
    ("paddle/jit_legacy/*", "paddle.jit.save with FLAGS_enable_pir_api=0: inference.pdmodel (ProgramDesc) + .pdiparams + .pdiparams.info (a pickle)"),
    # arrow
    ("arrow/tensor_f32.arrow", "pyarrow.ipc.write_tensor: one F32 Tensor message"),
    ("arrow/tensor_i64_named.arrow", "Tensor message with dim_names"),
    ("arrow/tensor_fortran_f64.arrow", "Tensor message of a Fortran-order array (non-C strides)"),
    ("arrow/tensors_multi.arrow", "three Tensor messages back to back (F16, U8, I16 with names)"),
    ("arrow/table_file.arrow", "IPC file, 2 record batches: numeric, fixed_size_list and arrow.fixed_shape_tensor (incl. permutation/dim_names) columns, a utf8 column"),
    ("arrow/table_file_zstd.arrow", "the same IPC file with ZSTD-compressed bodies"),
    ("arrow/table_stream.arrows", "the same as an IPC stream"),
    ("arrow/table_stream_lz4.arrows", "IPC stream with LZ4-frame bodies"),
    ("arrow/feather_default_lz4.feather", "Feather v2 with the default compression (LZ4 frame)"),
    ("arrow/feather_zstd.feather", "Feather v2 ZSTD"),
    ("arrow/feather_uncompressed.feather", "Feather v2 uncompressed"),
    # numpy pickles
    ("numpy_pickles/arrays_p2_np1.pkl", "NumPy 1.26 pickle protocol 2 (numpy.core.multiarray._reconstruct, _codecs.encode)"),
    ("numpy_pickles/arrays_p*_np1.pkl", "NumPy 1.26 pickle (numpy.core.* names)"),
    ("numpy_pickles/arrays_p2.pkl", "NumPy 2 pickle protocol 2: _reconstruct + BUILD, data as _codecs.encode latin-1 strings"),
    ("numpy_pickles/arrays_p3.pkl", "protocol 3: BINBYTES data"),
    ("numpy_pickles/arrays_p4.pkl", "protocol 4: BINBYTES8/SHORT_BINBYTES, STACK_GLOBAL"),
    ("numpy_pickles/arrays_p5.pkl", "protocol 5 in-band: numpy._core.numeric._frombuffer with in-band buffers"),
    ("numpy_pickles/model_plain*.joblib", "joblib.dump uncompressed: NumpyArrayWrapper arrays after the pickle"),
    ("numpy_pickles/model_zlib3*.joblib", "joblib compress=3 (zlib)"),
    ("numpy_pickles/model_gzip.joblib", "joblib compress=('gzip', 3)"),
    ("numpy_pickles/model_bz2.joblib", "joblib compress=('bz2', 3)"),
    ("numpy_pickles/model_lzma.joblib", "joblib compress=('lzma', 3)"),
    ("numpy_pickles/model_xz.joblib", "joblib compress=('xz', 3)"),
    ("numpy_pickles/model_lz4.joblib", "joblib compress=('lz4', 3)"),
    ("numpy_pickles/strings_object.npy", "object-dtype .npy of plain strings (needs allow_pickle=True: at least suspicious)"),
    # onnx
    ("onnx_constants/constants.onnx", "Constant nodes of every attribute kind (value raw/float_data, value_float(s), value_int(s), sparse_value, value_string) in the main graph, If branches (nested two deep) and an unnamed Loop body; BF16, F16, F64, I8, I64, BOOL, scalar, empty"),
    ("onnx_constants/training_info.onnx", "training_info: initialization graph with an initializer and a Constant, algorithm graph initializer"),
    ("onnx_constants/external_checksum.*", "external data (initializers and Constant values) in external_checksum.data, each entry with a correct checksum (SHA-1 of the file)"),
    ("onnx_constants/external_badsum.onnx", "the same external data with a wrong checksum (onnx.load does not check it)"),
]


def describe(rel):
    for pat, d in DESC:
        if fnmatch.fnmatch(rel, pat):
            return d
    return None


def main():
    lines = ["# Ground-truth fixtures for the next formats", "",
             "Every file below was written by the real library named in its truth and read back "
             "by it. Beside each file (or folder) `NAME.expected.json` holds the truth: "
             "`tensors` (name as the library names it, `dtype`, `shape`, `sha256` of the C-order "
             "little-endian bytes, `nbytes`, first `values`, `min`/`max`/`mean`), `naming`, "
             "`unsupported`, `metadata` (what the library reports: configs, signatures, ops, "
             "quantization, pickle globals...), `library_versions` and `generator`. Scanner "
             "cases add `expected_verdict` and `why`.", "",
             "Generators: `tests/gen/next/gen_<group>.py` (shared helpers in "
             "`_truth.py`), all run by `run_all.sh`, which builds the venvs from "
             "`requirements/*.txt`. Paddle and TensorFlow never share a process.", "",
             "TOTAL", "",
             "## Reproducibility", "",
             "Seeds are fixed everywhere. Reruns are byte-identical except where the library "
             "itself writes times or ids: `.keras` archives (zip member times, "
             "`metadata.json` date_saved, `shared_object_id` = Python id() in config.json; also the "
             "Keras config-attack archives built from sequential.keras — "
             "their weights are identical), SavedModel `fingerprint.pb` (and so "
             "scanner/savedmodel_hub.tar.gz, which holds one), the Orbax folder "
             "(random file names and timestamps), and the 7z files (py7zr writes times).", "",
             "## Findings worth knowing before writing the readers", "",
             "- Keras 3 `.weights.h5` / `.keras` name HDF5 groups by class-based auto names "
             "(`layers/dense`, `layers/dense_1`, `layers/batch_normalization`), not by layer "
             "names; the layer name is only in the group's `vars` attr `name` and in "
             "config.json. Optimizer state is `optimizer/vars/N`.",
             "- Keras 3 legacy `.h5` nests `model_weights/<layer>/<model name>/<layer>/<weight>` "
             "for Sequential models (`small_sequential/dense_a/kernel`) and "
             "`model_weights/<layer>/<layer>/<weight>` for functional ones; real Keras 2 adds "
             "`:0` (`dense_a/kernel:0`).",
             "- Keras stores bfloat16 as 2-byte opaque data (`|V2`) tagged `attrs['dtype'] = "
             "'bfloat16'`.",
             "- A TF checkpoint of a Keras 3 model has keys "
             "`model/_functional/_operations/N/_kernel/...` (Keras 2: `layer_with_weights-N`). "
             "MaxShardSizePolicy splits tensors into hyper-rectangular slices across data files "
             "(see `bundle_entry.slices` and the slice entries in `index_entries` of "
             "tf/ckpt_sharded).",
             "- TFLite tensor names are long `;`-joined op names; dynamic-range quantization "
             "skips tensors under 1024 elements.",
             "- Paddle `.pdiparams` holds tensors without names, in sorted parameter-name "
             "order; `paddle.jit.load` renames them (`linear_0.w_0_0`). Protocol 2 pickles "
             "carry array bytes as `_codecs.encode(latin-1)` strings (no zero-copy range).",
             "- Flax `to_bytes` of a Python complex uses ext 2; NumPy scalars ext 3; chunked "
             "arrays are maps `{__msgpack_chunked_array__, shape:{'0':..}, chunks:{'0':..}}`.",
             "- `file_offset` in a truth (where a tensor's exact bytes sit in the file, when "
             "they occur exactly once) is a search made by the generator, not the library's "
             "word; None means not stored in one little-endian C-order piece.",
             "- Keras 3.15 already refuses the rewritten CVE configs in safe mode (recorded as "
             "`safe_mode_true_loads_fresh_process`); the expected verdicts still follow the "
             "issues.", "",
             "Paths of the generating machine inside files, written by the libraries "
             "themselves: `paddle/jit_legacy/inference.pdmodel` (paddle records every op's "
             "Python creation call stack) and `flax/orbax_checkpoint/commit_success.txt`.", ""]
    total = 0
    nfiles = 0
    biggest = (0, "")
    for group, (title, gen, venv) in GROUPS.items():
        gdir = os.path.join(ROOT, group)
        if not os.path.isdir(gdir):
            continue
        files = sorted(os.path.relpath(os.path.join(r, f), ROOT)
                       for r, _, fs in os.walk(gdir) for f in fs)
        truths = [f for f in files if f.endswith(".expected.json")]
        vers = {}
        for t in truths:
            doc = json.load(open(os.path.join(ROOT, t)))
            for k, v in doc.get("library_versions", {}).items():
                if v:
                    vers.setdefault(k, set()).add(v)
        size = sum(os.path.getsize(os.path.join(ROOT, f)) for f in files)
        total += size
        nfiles += len(files)
        lines += [f"## {group}/ — {title}", "",
                  f"Generator `{gen}` (venv {venv}); {len(files)} files, {size / 1024:.0f} KiB. "
                  "Library versions: " + ", ".join(f"{k} {'/'.join(sorted(v))}"
                                                   for k, v in sorted(vers.items())) + ".", "",
                  "| file | bytes | exercises | truth |", "| --- | ---: | --- | --- |"]
        for f in files:
            if f.endswith(".expected.json"):
                continue
            n = os.path.getsize(os.path.join(ROOT, f))
            biggest = max(biggest, (n, f))
            d = describe(f) or ""
            t = f + ".expected.json"
            truth = "`" + os.path.basename(t) + "`" if t in truths else ""
            if not truth:
                top = f.split("/")
                for i in range(len(top) - 1, 0, -1):
                    cand = "/".join(top[:i]) + ".expected.json"
                    if cand in truths:
                        truth = f"in `{os.path.basename(cand)}`"
                        break
            if not truth and "sharded_0000" in f:
                truth = "in `functional_sharded.weights.json.expected.json`"
            if not truth and (".data-" in f or f.endswith((".index", ".meta"))):
                prefix = f.split(".data-")[0] if ".data-" in f else f.rsplit(".", 1)[0]
                if prefix + ".expected.json" in truths:
                    truth = f"`{os.path.basename(prefix)}.expected.json`"
            if not truth and "/jit_" in f:
                cand = os.path.dirname(f) + "/inference.pdiparams.expected.json"
                if cand in truths:
                    truth = "in `inference.pdiparams.expected.json`"
            if not truth and f.endswith(".data"):
                truth = "in the .onnx truths"
            extra = ""
            if t in truths:
                doc = json.load(open(os.path.join(ROOT, t)))
                if "expected_verdict" in doc:
                    extra = f" — **{doc['expected_verdict']}**: {doc.get('why', '')}"
                elif "expected_verdict" in doc.get("metadata", {}):
                    extra = f" — **{doc['metadata']['expected_verdict']}**"
                if not d:
                    d = doc.get("why", "")
                    extra = f" — **{doc.get('expected_verdict')}**" if d else extra
                nt = len(doc.get("tensors", {}))
                truth += f" ({nt} tensors)" if nt else ""
            cell = (d + extra).replace("|", "\\|")
            lines.append(f"| `{f}` | {n} | {cell} | {truth} |")
        lines.append("")
    lines[lines.index("TOTAL")] = (f"Total: {total / 1024 / 1024:.2f} MiB in "
                                   f"{nfiles} files; largest file `{biggest[1]}` "
                                   f"({biggest[0]} bytes).")
    with open(os.path.join(ROOT, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
