#!/usr/bin/env bash
# Issue #14: bring-your-own Llama at ~1B parameters through the whole lifecycle on this CPU machine:
# a random-weight 1.1B Llama folder (bench/device/llama_1b.py's shape, bfloat16 safetensors, the demo tokenizer
# padded to 32,000 ids) -> `weft models import` -> `weft run pipeline` (LoRA fine-tune, merge, ONNX export with its
# checks, register, integrate, evaluate, gate). Random weights: the scores mean nothing; this measures that the
# path holds at this size (memory, >2 GB ONNX weights, per-layer weight sharing) and how long each stage takes.
#
#   WEFT_HOME=<home> bash bench/import-llama-cpu.sh DEMO_JSON [WORK_DIR] [ROWS] [-- more weft run pipeline flags]
#
# DEMO_JSON is what `WEFT_HOME=<home> bin/weft demo --json` printed in that home (its training Dataset is reused).
# The evaluation is the first ROWS (default 8) rows of data/climate/qa-eval.jsonl, published by `weft evaluate`
# (which also scores the demo's production app on them); the fine-tune is cut to a few short steps (--hp below):
# 80 rows and the demo-cpu recipe would take hours for a 1.1B model on 2 cores. Results: WORK_DIR/results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
demo_json=${1:?usage: WEFT_HOME=<home> bash bench/import-llama-cpu.sh DEMO_JSON [WORK_DIR] [ROWS]}
work=${2:-/tmp/weft-import-1b}
rows=${3:-8}
shift $(( $# < 3 ? $# : 3 )); [ "${1:-}" = "--" ] && shift   # the rest goes to weft run pipeline (e.g. --id)
: "${WEFT_HOME:?set WEFT_HOME to the home where weft demo printed DEMO_JSON}"
models=${WEFT_MODELS_DIR:-$WEFT_HOME/models}
python=${WEFT_PYTHON:-$root/.venv/bin/python}
mkdir -p "$work"
say() { echo "[import-1b $(date +%H:%M:%S)] $*" >&2; }
seconds_since() { echo $(( $(date +%s) - $1 )); }

folder=$work/llama-1b-random
if [ ! -e "$folder/tokenizer.json" ]; then
  say "building the random 1.1B Llama folder in $folder"
  "$python" - "$folder" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "bench/device")
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from llama_1b import SHAPE, padded_tokenizer
out = Path(sys.argv[1])
torch.manual_seed(0)
config = LlamaConfig(**SHAPE, tie_word_embeddings=False, bos_token_id=0, eos_token_id=1, pad_token_id=0)
LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(out)
padded_tokenizer(out, SHAPE["vocab_size"])
PY
fi
source_bytes=$(du -sb "$folder" | cut -f1)

head -n "$rows" data/climate/qa-eval.jsonl > "$work/qa-eval-head.jsonl"
say "publishing the $rows-row evaluation (and scoring the demo's production app on it)"
started=$(date +%s)
bin/weft evaluate --dataset "$work/qa-eval-head.jsonl" --json > "$work/evaluate.json"
evaluate_seconds=$(seconds_since "$started")

say "weft models import"
started=$(date +%s)
bin/weft models import "$folder" --name llama-1b-random --json > "$work/import.json"
import_seconds=$(seconds_since "$started")

read -r base evaluation rag dataset < <("$python" - "$work" "$demo_json" <<'PY'
import json, sys
work = sys.argv[1]
imported = json.load(open(f"{work}/import.json"))
evaluated = json.load(open(f"{work}/evaluate.json"))
demo = json.load(open(sys.argv[2]))["demo"]
print(imported["ref"], evaluated["refs"]["evaluationRef"], evaluated["refs"]["ragModelRef"], demo["trainingDatasetRef"])
PY
)
say "weft run pipeline on $base"
started=$(date +%s)
bin/weft run pipeline --app llama1b-random --base-model "$base" --dataset "$dataset" --evaluation "$evaluation" \
  --rag "$rag" --config demo-cpu --hp max_steps=3 --hp batch_size=2 --hp max_length=256 --hp lora_top_layers=2 \
  --hp warmup_steps=0 --json "$@" > "$work/pipeline.json"
pipeline_seconds=$(seconds_since "$started")
du -sb "$models/imported"/* "$models"/runs/* 2>/dev/null > "$work/sizes.txt" || true
"$python" - "$work" "$source_bytes" "$evaluate_seconds" "$import_seconds" "$pipeline_seconds" <<'PY'
import json, sys
work, source_bytes, evaluate_seconds, import_seconds, pipeline_seconds = sys.argv[1], *map(int, sys.argv[2:])
result = {
    "source_folder_bytes": source_bytes,
    "seconds": {"evaluate_demo_app": evaluate_seconds, "import": import_seconds, "pipeline": pipeline_seconds},
    "import": json.load(open(f"{work}/import.json")),
    "pipeline": json.load(open(f"{work}/pipeline.json")),
    "sizes": open(f"{work}/sizes.txt").read().splitlines(),
}
json.dump(result, open(f"{work}/results.json", "w"), indent=1)
print(json.dumps(result["seconds"]))
PY
