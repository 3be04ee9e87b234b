#!/usr/bin/env bash
# Creates the five venvs (if missing) and runs every generator in its own venv and process.
# Usage: bash run_all.sh [VENV_ROOT] ; outputs go to $FIXTURES_OUT (default tests/fixtures/next).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="${1:-$here/.venvs}"
for v in tf paddle jax misc np1; do
  if [ ! -x "$root/$v/bin/python" ]; then
    python3 -m venv "$root/$v"
    "$root/$v/bin/pip" install -q -r "$here/requirements/$v.txt"
  fi
done
cd "$here"
export PYTHONHASHSEED=0
"$root/misc/bin/python" gen_onnx_constants.py
"$root/misc/bin/python" gen_arrow.py
"$root/misc/bin/python" gen_numpy_pickles.py
"$root/np1/bin/python" gen_numpy_pickles.py
"$root/jax/bin/python" gen_flax.py
"$root/paddle/bin/python" gen_paddle.py
"$root/tf/bin/python" gen_keras.py
"$root/tf/bin/python" gen_tf.py
"$root/misc/bin/python" gen_scanner.py     # after gen_tf.py and gen_flax.py (reuses outputs)
"$root/misc/bin/python" gen_readme.py
