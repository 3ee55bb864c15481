"""The int8 lever for CPU decode (#14), measured: weft's in-graph greedy decoder (generate_greedy.onnx) with its
MatMul weights quantized to 8 bits, against the same graph in float32 and against PyTorch float32, on qa-eval's RAG
prompts (question + its gold document, as bench/inference-generation.ts builds them), batch 1, one process run.

    .venv/bin/python bench/python/cpu_int8.py [--onnx .weft/models/smollm2/onnx] [--hf .weft/models/smollm2/hf]
        [--rows 80] [--threads 2] [--max-new-tokens 48] [--work /tmp/weft-int8] [--out results.json]

Quantization: onnxruntime's MatMulNBitsQuantizer (8 bits, blocks of 32 along K, symmetric, accuracy level 4 = int8
compute) after onnxruntime's basic constant folding (the decoder's fused QKV/gate-up weights are Concat nodes over
per-layer initializers until folded). Every MatMul inside the Loop becomes MatMulNBits; embeddings stay float32.

Reports decode tokens/s (32 forced tokens on 4 prompts: 31 / (t(32) - t(1))), end-to-end tokens/s over the rows,
token F1 / exact match of each variant against the gold answers, the paired F1 difference int8 - float32 with its
bootstrap 95% interval, and how many answers are identical. Point --onnx/--hf at a fine-tuned run's folders to
measure the published model. When the folder has the export's generate_greedy.int8.onnx (trainer/quantize_int8.py,
what WEFT_CPU_WEIGHTS=int8 serves), that graph is measured; --pytorch-int8 adds PyTorch's dynamic int8 quantization.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from trainer.chat_tokens import chat_prompt_ids  # noqa: E402
from trainer.data import corpus_by_id, read_jsonl  # noqa: E402
from trainer.evaluate_quick import normalize_answer, paired_bootstrap, token_f1  # noqa: E402
from trainer.rag_prompt import rag_messages  # noqa: E402


def quantize(source: Path, work: Path, bits: int) -> Path:
    """generate_greedy.onnx folded and quantized as trainer/quantize_int8.py does (any bit width), saved whole."""
    import onnx

    from trainer.quantize_int8 import _fold, _quantize

    out = work / f"int{bits}" / "generate_greedy.onnx"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    model = _quantize(_fold(source, work), bits)
    onnx.save(model, str(out), save_as_external_data=True, location="weights.bin", size_threshold=1024)
    return out


class InGraph:
    def __init__(self, path: Path, threads: int, eos: list[int], pad: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.eos, self.pad = eos, pad

    def generate(self, ids: list[int], new_tokens: int, stop: bool = True) -> list[int]:
        prompt = np.array([ids], dtype=np.int64)
        tokens = self.session.run(None, {
            "prompt_ids": prompt, "prompt_attention_mask": np.ones_like(prompt),
            "prompt_position_ids": np.arange(len(ids), dtype=np.int64)[None],
            "max_new_tokens": np.array(new_tokens, dtype=np.int64),
            "eos_token_ids": np.array(self.eos if stop else [-1], dtype=np.int64),
            "pad_token_id": np.array(self.pad, dtype=np.int64),
        })[0][:, 0, 0].tolist()
        return cut(tokens, self.eos) if stop else tokens


def cut(tokens: list[int], eos: list[int]) -> list[int]:
    for index, token in enumerate(tokens):
        if token in eos:
            return tokens[: index + 1]
    return tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--onnx", type=Path, default=ROOT / ".weft" / "models" / "smollm2" / "onnx")
    parser.add_argument("--hf", type=Path, default=ROOT / ".weft" / "models" / "smollm2" / "hf")
    parser.add_argument("--rows", type=int, default=80)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--bits", type=int, default=8, choices=[4, 8])
    parser.add_argument("--work", type=Path, default=Path("/tmp/weft-int8"))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--pytorch-int8", action="store_true",
                        help="also PyTorch with torch.ao dynamic int8 quantization of every Linear (its CPU int8 path)")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(str(args.onnx))
    eos = sorted({tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.eos_token_id} - {None})
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    documents = corpus_by_id(ROOT / "data" / "climate" / "corpus.jsonl")
    rows = read_jsonl(ROOT / "data" / "climate" / "qa-eval.jsonl")[: args.rows]
    prompts = [chat_prompt_ids(tokenizer, rag_messages(r["question"], [documents[r["doc_id"]]["text"]])) for r in rows]

    started = time.time()
    exported = args.onnx / "generate_greedy.int8.onnx"
    if args.bits == 8 and exported.exists():
        # What weft serves with WEFT_CPU_WEIGHTS=int8: the export's own graph (trainer/quantize_int8.py).
        quantized, quantize_seconds = exported, None
        quantized_bytes = sum(f.stat().st_size for f in args.onnx.glob("weights.int8.*"))
    else:
        quantized = quantize(args.onnx / "generate_greedy.onnx", args.work, args.bits)
        quantize_seconds = round(time.time() - started, 1)
        quantized_bytes = (quantized.parent / "weights.bin").stat().st_size
    engines = {"weft-fp32": InGraph(args.onnx / "generate_greedy.onnx", args.threads, eos, pad),
               f"weft-int{args.bits}": InGraph(quantized, args.threads, eos, pad)}
    model = AutoModelForCausalLM.from_pretrained(str(args.hf), dtype=torch.float32).eval()

    def greedy_with(hf_model):
        def generate(ids: list[int], new_tokens: int, stop: bool = True) -> list[int]:
            with torch.no_grad():
                out = hf_model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                        max_new_tokens=new_tokens, min_new_tokens=0 if stop else new_tokens,
                                        do_sample=False, pad_token_id=pad)
            return cut(out[0, len(ids):].tolist(), eos) if stop else out[0, len(ids):].tolist()

        return generate

    generators = {**{name: engine.generate for name, engine in engines.items()}, "pytorch-fp32": greedy_with(model)}
    if args.pytorch_int8:
        # PyTorch's own CPU int8 baseline: dynamic quantization of every nn.Linear (int8 weights, activations
        # quantized per batch), the usual one-line int8 for transformers on CPU.
        generators["pytorch-int8-dynamic"] = greedy_with(torch.ao.quantization.quantize_dynamic(
            AutoModelForCausalLM.from_pretrained(str(args.hf), dtype=torch.float32).eval(), {torch.nn.Linear},
            dtype=torch.qint8))
    for generate in generators.values():
        generate(prompts[0], 4)  # warm-up
    result = {"rows": len(rows), "threads": args.threads, "max_new_tokens": args.max_new_tokens,
              "quantize_seconds": quantize_seconds, "quantized_weight_bytes": quantized_bytes, "int8_graph": str(quantized),
              "engines": {}}
    answers = {}
    for name, generate in generators.items():
        # Decode alone: 32 forced tokens minus 1, on 4 prompts, best of 2.
        decode = []
        for ids in prompts[:4]:
            times = []
            for count in (1, 32):
                best = min(timed(lambda: generate(ids, count, stop=False)) for _ in range(2))
                times.append(best)
            decode.append(31 / (times[1] - times[0]))
        started, tokens, texts = time.perf_counter(), 0, []
        for ids in prompts:
            out = generate(ids, args.max_new_tokens)
            tokens += len(out)
            texts.append(tokenizer.decode(out, skip_special_tokens=True).strip())
        seconds = time.perf_counter() - started
        answers[name] = texts
        f1 = [token_f1(a, r["answer"]) for a, r in zip(texts, rows)]
        exact = [float(normalize_answer(a) == normalize_answer(r["answer"])) for a, r in zip(texts, rows)]
        result["engines"][name] = {"decode_tokens_per_second": round(float(np.median(decode)), 1),
                                   "end_to_end_tokens_per_second": round(tokens / seconds, 1), "seconds": round(seconds, 1),
                                   "tokens": tokens, "token_f1": round(float(np.mean(f1)), 4),
                                   "exact_match": round(float(np.mean(exact)), 4), "per_row_f1": f1}
        print(json.dumps({"engine": name, **{k: v for k, v in result["engines"][name].items() if k != "per_row_f1"}}), flush=True)
    int8 = f"weft-int{args.bits}"
    engines_out = result["engines"]
    result["int8_vs_fp32_f1"] = paired_bootstrap(engines_out["weft-fp32"]["per_row_f1"], engines_out[int8]["per_row_f1"])
    result["identical_answers"] = {name: sum(a == b for a, b in zip(answers["weft-fp32"], answers[name])) for name in answers}
    for key in ("decode_tokens_per_second", "end_to_end_tokens_per_second"):
        result[f"ratio_{key}"] = {name: round(engines_out[name][key] / engines_out["pytorch-fp32"][key], 2) for name in engines_out}
    for engine in engines_out.values():
        engine.pop("per_row_f1")
    print(json.dumps({k: v for k, v in result.items() if k != "engines"}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
