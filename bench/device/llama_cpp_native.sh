#!/usr/bin/env bash
# llama.cpp's own C++ benchmarks (no Node.js, no per-token JavaScript) on the GPU machine, to separate llama.cpp's
# decode speed from node-llama-cpp's per-token cost (issue #20). Carries llama.cpp's source (the git bundle inside
# npm node-llama-cpp, packed by `engines-pack.sh`: llamacpp-src.tar.xz) plus tok.tar and convert.tar.xz; builds
# llama-bench and llama-batched-bench for sm_90 with the machine's nvcc, converts the random 1.1B model
# (engines.py prepare) and a random SmolLM2-135M-shaped one, and writes their JSON/markdown to $OUT.
#   bash bench/device/llama_cpp_native.sh <folder holding the three tarballs>
set -uo pipefail
parts=$(cd "$1" && pwd); here=$(cd "$(dirname "$0")" && pwd)
s4=/root/s4n; mkdir -p "$s4/src" "$s4/tok" "$s4/llamacpp" "$s4/work"
tar -C "$s4/src" -xJf "$parts/llamacpp-src.tar.xz"; tar -C "$s4/tok" -xf "$parts/tok.tar"; tar -C "$s4/llamacpp" -xJf "$parts/convert.tar.xz"
( cmake -S "$s4/src" -B "$s4/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_APP=OFF > "$s4/cmake.log" 2>&1 \
  && cmake --build "$s4/build" --target llama-bench llama-batched-bench -j 16 > "$s4/build.log" 2>&1 ) &
build=$!
python3 "$here/engines.py" prepare --work "$s4/work" --tokenizer "$s4/tok" --convert "$s4/llamacpp"
python3 - "$s4" <<'PY'
import shutil, sys, torch
from pathlib import Path
from transformers import LlamaConfig, LlamaForCausalLM
root = Path(sys.argv[1]); hf = root / "work" / "smolshape" / "hf"; hf.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)
config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                     num_key_value_heads=3, head_dim=64, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
                     pad_token_id=2, max_position_embeddings=8192, rope_theta=100000.0)
LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(hf)
for name in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]:
    shutil.copy2(root / "tok" / name, hf / name)
PY
PYTHONPATH=$s4/llamacpp/gguf-py python3 "$s4/llamacpp/convert_hf_to_gguf.py" "$s4/work/smolshape/hf" --outfile "$s4/work/smolshape/model-f16.gguf" --outtype f16 > /dev/null 2>&1
wait $build || { tail -n 20 "$s4/cmake.log" "$s4/build.log"; exit 1; }
bin=$s4/build/bin; out=${OUT:-/tmp}
for model in llama1b/model-f16 llama1b/model-q8_0 smolshape/model-f16; do
  tag=$(echo "$model" | tr / -)
  "$bin/llama-bench" -m "$s4/work/$model.gguf" -ngl 99 -fa 1 -p 200 -n 128 -r 3 -o json > "$out/bench-$tag.json" 2> "$out/bench-$tag.err"
  python3 -c "import json,sys; [print('$tag', r['n_prompt'], r['n_gen'], round(r['avg_ts'],1)) for r in json.load(open(sys.argv[1]))]" "$out/bench-$tag.json"
  "$bin/llama-batched-bench" -m "$s4/work/$model.gguf" -ngl 99 -fa on -c 16896 -b 4096 -ub 512 -npp 128 -ntg 128 -npl 1,32 \
    > "$out/batched-$tag.txt" 2>&1; grep -E '^\|' "$out/batched-$tag.txt"
done
