#!/usr/bin/env bash
# Drives bench/device/engines.py and llama-cpp-bench.mjs on the GPU machine (no network, no Node.js), from parts
# that bench/device/engines-pack.sh prepared and the device calls carried in .dev/s4-20 (see bench/device/README.md):
#   engines.sh stage        keep this call's parts (.dev/s4-20/parts/*) in /root/s4/parts; unpack what is complete
#   engines.sh background   (detached, first call) 1.1B random model + GGUF conversions + the PyTorch benches
#   engines.sh llamacpp     node-llama-cpp on every GGUF (f16, q8_0; both models), then the report
#   engines.sh collect      results to $OUT
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
carried=$(cd "$here/.." && pwd)
s4=/root/s4
parts=$s4/parts
work=$s4/work
mkdir -p "$parts" "$work"
say() { echo "[engines $(date +%H:%M:%S)] $*"; }

unxz_to() {  # unxz_to FILE.xz DEST
  if command -v xz >/dev/null; then xz -d -T0 -c "$1" > "$2"
  else python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'), 1<<24)" "$1" "$2"
  fi
}

cuda_library_path() {  # libcudart.so.13 and libcublas.so.13 from the machine's PyTorch wheels
  python3 -c "
import glob, os, site
print(':'.join(sorted({d for b in site.getsitepackages() for d in glob.glob(os.path.join(b, 'nvidia', '**', 'lib'), recursive=True)})))"
}

stage() {
  cp -f "$carried"/parts/* "$parts/" 2>/dev/null
  cp -f "$here"/*.py "$here"/*.mjs "$s4/" 2>/dev/null
  if [ -e "$parts/tok.tar" ] && [ ! -d "$s4/tok" ]; then mkdir -p "$s4/tok" && tar -C "$s4/tok" -xf "$parts/tok.tar"; fi
  if [ -e "$parts/convert.tar.xz" ] && [ ! -d "$s4/llamacpp" ]; then mkdir -p "$s4/llamacpp" && tar -C "$s4/llamacpp" -xJf "$parts/convert.tar.xz"; fi
  if ls "$parts"/smol.part2 >/dev/null 2>&1 && [ ! -e "$s4/smol/hf/model.safetensors" ]; then
    mkdir -p "$s4/smol" && cat "$parts"/smol.part0 "$parts"/smol.part1 "$parts"/smol.part2 | xz -dc | tar -C "$s4/smol" -xf - \
      && say "SmolLM2 unpacked: $(ls "$s4/smol/hf")"
  fi
  if [ -e "$parts/modules.xz" ] && [ ! -d "$s4/nm/node_modules" ]; then
    mkdir -p "$s4/nm" && unxz_to "$parts/modules.xz" "$s4/nm/modules.tar" && tar -C "$s4/nm" -xf "$s4/nm/modules.tar" && rm "$s4/nm/modules.tar"
  fi
  if [ -e "$parts/ggml-cuda.xz.b" ] && [ -d "$s4/nm/node_modules" ]; then
    local bins=$s4/nm/node_modules/@node-llama-cpp/linux-x64-cuda/bins/linux-x64-cuda
    [ -e "$bins/libggml-cuda.so" ] || [ -e "$bins/libggml-cuda.prebuilt.so" ] || { cat "$parts/ggml-cuda.xz.a" "$parts/ggml-cuda.xz.b" > "$s4/ggml.xz" && unxz_to "$s4/ggml.xz" "$bins/libggml-cuda.so" && rm "$s4/ggml.xz"; }
  fi
  if [ -e "$parts/node.xz" ] && [ ! -x "$s4/node/bin/node" ]; then
    mkdir -p "$s4/node/bin" && unxz_to "$parts/node.xz" "$s4/node/bin/node" && chmod +x "$s4/node/bin/node"
  fi
  cp -f "$s4"/*.mjs "$s4/nm/" 2>/dev/null
  say "staged: $(ls "$parts" | tr '\n' ' ')"
  df -h /root | tail -n 1
}

build_cuda() {  # llama.cpp's CUDA backend from the same source, for sm_90 with this machine's nvcc
  local bins=$s4/nm/node_modules/@node-llama-cpp/linux-x64-cuda/bins/linux-x64-cuda
  [ -e "$s4/ggml-build/done" ] && return 0
  rm -rf "$s4/ggml-src" && mkdir -p "$s4/ggml-src" && tar -C "$s4/ggml-src" -xJf "$parts/ggml-src.tar.xz" || return 1
  local started=$SECONDS
  # llama.cpp's copy of ggml lacks the standalone project's tests/, examples/ and ggml.pc.in: empty stand-ins.
  mkdir -p "$s4/ggml-src/ggml/tests" "$s4/ggml-src/ggml/examples"
  touch "$s4/ggml-src/ggml/tests/CMakeLists.txt" "$s4/ggml-src/ggml/examples/CMakeLists.txt" "$s4/ggml-src/ggml/ggml.pc.in"
  rm -rf "$s4/ggml-build"
  nice -n 5 cmake -S "$s4/ggml-src/ggml" -B "$s4/ggml-build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
    -DGGML_CUDA=ON -DGGML_BACKEND_DL=ON -DGGML_NATIVE=OFF -DGGML_CPU=OFF -DGGML_BUILD_TESTS=OFF -DGGML_BUILD_EXAMPLES=OFF -DCMAKE_CUDA_ARCHITECTURES=90 > "$s4/ggml-cmake.log" 2>&1 \
    && nice -n 5 cmake --build "$s4/ggml-build" --target ggml-cuda -j 16 > "$s4/ggml-build.log" 2>&1 || { tail -n 30 "$s4/ggml-cmake.log"; tail -n 30 "$s4/ggml-build.log"; return 1; }
  local built; built=$(find "$s4/ggml-build" -name libggml-cuda.so | head -n 1)
  for _ in $(seq 1 300); do [ -d "$bins" ] && break; sleep 1; done
  [ -e "$bins/libggml-cuda.prebuilt.so" ] || mv "$bins/libggml-cuda.so" "$bins/libggml-cuda.prebuilt.so" 2>/dev/null
  cp "$built" "$bins/libggml-cuda.so" && touch "$s4/ggml-build/done"
  say "libggml-cuda.so built for sm_90 in $((SECONDS - started)) s"
}

background() {
  say "build"
  build_cuda || say "build failed"
  say "prepare"
  python3 "$s4/engines.py" prepare --work "$work" --tokenizer "$s4/tok" --convert "$s4/llamacpp" --smol "$s4/smol/hf" \
    --wait-seconds 5 || say "prepare (1.1B) failed"
  python3 "$s4/engines.py" torch --work "$work" --name llama1b || say "torch llama1b failed"
  for _ in $(seq 1 900); do [ -e "$s4/smol/hf/model.safetensors" ] && break; sleep 1; done
  python3 "$s4/engines.py" prepare --work "$work" --tokenizer "$s4/tok" --convert "$s4/llamacpp" --smol "$s4/smol/hf" \
    || say "prepare (SmolLM2) failed"
  python3 "$s4/engines.py" torch --work "$work" --name smollm2 || say "torch smollm2 failed"
  say "background done"
  touch "$work/background.done"
}

llamacpp() {
  export PATH=$s4/node/bin:$PATH
  LD_LIBRARY_PATH=$(cuda_library_path)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export LD_LIBRARY_PATH
  node --version
  ldd "$s4/nm/node_modules/@node-llama-cpp/linux-x64-cuda/bins/linux-x64-cuda/libggml-cuda.so" | grep -E 'not found|cublas|cudart' || true
  for _ in $(seq 1 400); do [ -e "$work/background.done" ] && break; sleep 1; done
  for name in llama1b smollm2; do
    local parameters
    parameters=$(python3 -c "import json,sys; print(next(json.loads(l)['parameters'] for l in open('$work/results.jsonl') if json.loads(l).get('model')=='$name'))" 2>/dev/null)
    for quant in f16 q8_0; do
      [ -e "$work/$name/model-$quant.gguf" ] || { say "no $name $quant gguf"; continue; }
      (cd "$s4/nm" && node llama-cpp-bench.mjs --gguf "$work/$name/model-$quant.gguf" --prompts "$work/$name/prompts.json" \
        --model "$name" --quant "$quant" --parameters "$parameters" --out "$work/results.jsonl") || say "llama.cpp $name $quant failed"
    done
  done
  python3 "$s4/engines.py" report --work "$work"
}

collect() {
  [ -n "${OUT:-}" ] || return 0
  cp "$work/results.jsonl" "$work/summary.json" "$OUT/" 2>/dev/null
  cp "$s4/bg.log" "$OUT/" 2>/dev/null
  for name in llama1b smollm2; do cp "$work/$name/reference.json" "$OUT/reference-$name.json" 2>/dev/null; done
  ls -la "$OUT"
}

case "${1:-}" in
  stage) stage ;;
  background) background ;;
  build) build_cuda ;;
  llamacpp) llamacpp ;;
  collect) collect ;;
  *) sed -n '2,7p' "$0"; exit 2 ;;
esac
