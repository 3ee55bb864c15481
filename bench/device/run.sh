#!/usr/bin/env bash
# Runs on the GPU machine (see bench/device/README.md for the order of calls):
#   run.sh stage N      keep the part this call carried (.dcN); after the last one, install everything
#   run.sh llama        build the 1.1B speed model and time PyTorch eager (bench/device/llama_1b.py); start it
#                       detached (setsid) in an early call so it runs while parts travel
#   run.sh probe        does onnxruntime-node load the CUDA provider? (a session on the demo chat model)
#   run.sh profile      onnxruntime's profile of generate_greedy.onnx steps (bench/device/profile-decode.ts)
#   run.sh decode       weft's decoders on the 1.1B model vs PyTorch (bench/device/decode-bench.ts)
#   run.sh evaluate [demo|compare|all]
#                       demo: the lifecycle on the GPU (fine-tune `gpu` config + evaluations through the workers);
#                       compare: `weft evaluate --fresh` on CUDA and on CPU with the same stack settings
#   run.sh collect      copy results to $OUT
# Results and logs go to $WEFT_DEVICE_RESULTS (default /root/weft-results).
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
results=${WEFT_DEVICE_RESULTS:-/root/weft-results}
parts=/root/weft-parts
tools=/root/weft-tools
llama=/root/weft-llama
mkdir -p "$results" "$parts" "$tools"

say() { echo "[device $(date +%H:%M:%S)] $*"; }

# The CUDA provider loads cuBLAS, cuDNN, cuFFT, cuRAND and the CUDA runtime by name: PyTorch's wheels bring them.
cuda_library_path() {
  python3 - <<'PY'
import glob, os, site
dirs = set()
for base in site.getsitepackages():
    for lib in glob.glob(os.path.join(base, "nvidia", "**", "lib"), recursive=True):
        dirs.add(lib)
print(":".join(sorted(dirs)))
PY
}

environment() {
  export PATH=$tools/node/bin:$PATH
  LD_LIBRARY_PATH=$(cuda_library_path)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export LD_LIBRARY_PATH
  export WEFT_PYTHON=${WEFT_PYTHON:-$(command -v python3)}
}

unxz_to() {  # unxz_to FILE.xz DEST  (xz if the machine has it, else Python's lzma)
  if command -v xz >/dev/null; then xz -d -T0 -c "$1" > "$2"
  else python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'), 1<<24)" "$1" "$2"
  fi
}

install_all() {
  # shellcheck disable=SC1090
  . "$parts/manifest"
  local have; have=$(ls "$parts"/part.* 2>/dev/null | wc -l)
  if [ "$have" -lt "$part_count" ]; then say "have $have of $part_count parts"; return 0; fi
  say "all $part_count parts here; installing"
  local bundle=/root/weft-bundle
  rm -rf "$bundle" && mkdir -p "$bundle"
  cat "$parts"/part.* > "$bundle/bundle.tar"
  echo "$bundle_sha256  $bundle/bundle.tar" | sha256sum -c --quiet || { say "bundle digest mismatch"; return 1; }
  tar -C "$bundle" -xf "$bundle/bundle.tar" && rm "$bundle/bundle.tar"
  mkdir -p "$tools/node/bin"
  unxz_to "$bundle/node.xz" "$tools/node/bin/node" && chmod +x "$tools/node/bin/node"
  unxz_to "$bundle/modules.xz" "$bundle/modules.tar" && tar -C "$root" -xf "$bundle/modules.tar"
  local ort_lib=$root/node_modules/onnxruntime-node/bin/napi-v6/linux/x64
  unxz_to "$bundle/cuda.xz" "$bundle/cuda.tar" && tar -C "$ort_lib" -xf "$bundle/cuda.tar"
  mkdir -p "$root/.venv/bin"
  unxz_to "$bundle/temporal.xz" "$root/.venv/bin/temporal" && chmod +x "$root/.venv/bin/temporal"
  mkdir -p "$root/.weft"
  unxz_to "$bundle/models.xz" "$bundle/models.tar" && tar -C "$root/.weft" -xf "$bundle/models.tar"
  rm -rf "$bundle"
  environment
  say "installed: node $(node --version), $("$root/.venv/bin/temporal" --version | head -n 1)"
  ls -la "$ort_lib"
}

stage() {
  local n=$1
  mv ".dc$n"/part.* "$parts/" 2>/dev/null || say "no part in .dc$n"
  [ -e ".dc$n/manifest" ] && cp ".dc$n/manifest" "$parts/manifest"
  install_all
}

probe() {
  environment
  say "nvidia-smi: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"
  say "provider libraries need:"
  ldd node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so | grep -E 'not found|cublas|cudart|cudnn|curand|cufft' || true
  WEFT_LOG_LEVEL=INFO node -e "
    require('tsx/cjs');
    const { loadChatModel } = require('./lib/inference');
    (async () => {
      const model = await loadChatModel('.weft/models/base-chat/onnx', { executionProvider: 'cuda', greedyInGraph: 'auto' });
      const result = await model.generate({ messages: [{ role: 'user', content: 'What raises sea level?' }], maxNewTokens: 16 });
      console.log(JSON.stringify({ event: 'probe', executionProvider: model.executionProvider, decodesInGraph: model.decodesInGraph, text: result.text }));
    })().catch((error) => { console.error(error); process.exit(1); });
  " 2>&1 | tee "$results/probe.log"
}

decode() {
  environment
  [ -e "$llama/onnx/generate_greedy.onnx" ] || { say "no 1.1B model yet: see $results/llama.log"; tail -n 5 "$results/llama.log"; return 1; }
  WEFT_EXECUTION_PROVIDER=cuda node_modules/.bin/tsx bench/device/decode-bench.ts \
    --model "$llama/onnx" --pytorch "$llama/pytorch.json" --out "$results/decode.json" 2>&1 | tee "$results/decode.log"
}

# Starts `weft up` with the given provider, waits for it, runs the command, stops the stack.
with_stack() {
  local provider=$1; shift
  local log=$results/up-$provider.log
  WEFT_EXECUTION_PROVIDER=$provider setsid bin/weft up --json > "$log" 2>&1 &
  local up=$!
  for _ in $(seq 1 120); do grep -q '"temporal' "$log" 2>/dev/null && break; sleep 1; done
  WEFT_EXECUTION_PROVIDER=$provider "$@"
  local status=$?
  kill -TERM -- "-$up" 2>/dev/null; wait "$up" 2>/dev/null
  return $status
}

timed() {  # timed NAME COMMAND...  -> $results/NAME.json (the command's last line) and NAME.seconds
  local name=$1; shift
  local started; started=$(date +%s.%N)
  "$@" > "$results/$name.out" 2>&1
  local status=$?
  awk "BEGIN { print $(date +%s.%N) - $started }" > "$results/$name.seconds"
  tail -n 1 "$results/$name.out" > "$results/$name.json"
  say "$name: exit $status in $(cat "$results/$name.seconds") s"
  return $status
}

evaluate_runs() {  # evaluate_runs PROVIDER: a warm-up evaluation, then the timed ones (batch 8 and 40)
  local evaluate=(bin/weft evaluate --dataset data/climate/qa-eval.jsonl --fresh --json)
  timed "evaluate-$1-warmup" "${evaluate[@]}"
  timed "evaluate-$1" "${evaluate[@]}"
  timed "evaluate-$1-b40" "${evaluate[@]}" --batch-size 40 --parallel 2
}

evaluate() {
  environment
  export WEFT_HOME=/root/weft-home WEFT_MODELS_DIR=$root/.weft/models WEFT_GPU_SLOTS=${WEFT_GPU_SLOTS:-2}
  if [ "${1:-all}" != compare ]; then
  rm -rf "$WEFT_HOME"
  # The whole lifecycle with the gpu worker on CUDA: bootstrap, fine-tune (gpu config), evaluations, gate, publish.
  with_stack cuda timed demo-gpu bin/weft demo --config gpu --json
  cp -r "$WEFT_HOME/logs" "$results/logs-demo-gpu" 2>/dev/null
  fi
  [ "${1:-all}" = demo ] && return 0
  # The same 80-row evaluation, predictions not cached, on each provider; the second run of each counts
  # (the first loads the models into the worker).
  for provider in cuda cpu; do
    with_stack "$provider" evaluate_runs "$provider"
    cp -r "$WEFT_HOME/logs" "$results/logs-evaluate-$provider" 2>/dev/null
    say "evaluate $provider: $(cat "$results/evaluate-$provider.seconds") s (batch 8), $(cat "$results/evaluate-$provider-b40.seconds") s (batch 40)"
  done
  grep -rh 'CUDA execution provider\|executionProvider' "$WEFT_HOME" "$results"/up-*.log 2>/dev/null | head -n 5
}

collect() {
  [ -n "${OUT:-}" ] || return 0
  (cd "$results" && tar -czf "$OUT/results.tgz" .)
  for name in decode.json probe.log llama.log; do [ -e "$results/$name" ] && cp "$results/$name" "$OUT/"; done
  ls -la "$OUT"
}

case "${1:-}" in
  stage) stage "$2" ;;
  llama) shift; PYTHONUNBUFFERED=1 python3 bench/device/llama_1b.py --out "$llama" "$@" ;;
  profile)
    environment
    WEFT_EXECUTION_PROVIDER=${WEFT_EXECUTION_PROVIDER:-cuda} node_modules/.bin/tsx bench/device/profile-decode.ts \
      --model "$llama/onnx" 2>&1 | tee "$results/profile.log" ;;
  probe) probe ;;
  decode) decode ;;
  evaluate) evaluate "${2:-all}" ;;
  collect) collect ;;
  *) sed -n '2,13p' "$0"; exit 2 ;;
esac
