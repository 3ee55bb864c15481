"""The ~1.1B Llama speed model, built on the GPU machine (random weights: speed only, no quality).

    python3 bench/device/llama_1b.py --out /root/weft-llama [--new-tokens 128] [--prompt-tokens 128]

1. Builds LlamaForCausalLM (hidden 2048, 22 layers, 32 heads, 4 KV heads, intermediate 5632, vocab 32000)
   with random weights on the GPU.
2. Times PyTorch eager `generate` (bf16, SDPA attention, no torch.compile, no CUDA graphs) at batch 1 and 32:
   greedy, every row exactly --new-tokens long (min_new_tokens), and once with one new token so the prefill can
   be taken out: decode tokens/s = batch x (new - 1) / (t(new) - t(1)).
3. Exports the decoder with past to ONNX in float16 (logits cast to float32) with trainer.export_onnx's graph
   contract (--exporter torchscript, the default, model.onnx as trainer.export_onnx writes it; dynamo; or fused:
   trainer/fused_decoder.py, the decoder generate_greedy.onnx runs for Llama models),
   then wraps it in generate_greedy.onnx (trainer.export_greedy_loop), and writes a weft model folder:
   weft-model.json, config.json, and a byte-level BPE tokenizer.json with 32000 entries (the demo tokenizer's
   vocabulary padded with placeholder tokens, so weft can decode any id the random model picks).
4. Writes prompts and PyTorch's greedy tokens, so the weft side can check it decodes the same tokens.

Results: <out>/pytorch.json. Progress: JSON lines on stdout.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SHAPE = dict(
    vocab_size=32000,
    hidden_size=2048,
    intermediate_size=5632,
    num_hidden_layers=22,
    num_attention_heads=32,
    num_key_value_heads=4,
    max_position_embeddings=2048,
)


def log(**event) -> None:
    print(json.dumps(event), flush=True)


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def synchronized_seconds(fn) -> float:
    synchronize()
    started = time.perf_counter()
    fn()
    synchronize()
    return time.perf_counter() - started


def pytorch_generate_timings(model, prompts: torch.Tensor, new_tokens: int) -> dict:
    mask = torch.ones_like(prompts)

    def run(count: int):
        return model.generate(
            prompts,
            attention_mask=mask,
            max_new_tokens=count,
            min_new_tokens=count,
            do_sample=False,
            pad_token_id=0,
        )

    with torch.no_grad():
        run(new_tokens)  # warm-up: kernels, allocator
        outputs = {}
        full = min(synchronized_seconds(lambda: outputs.__setitem__("ids", run(new_tokens))) for _ in range(2))
        prefill = min(synchronized_seconds(lambda: run(1)) for _ in range(3))
    batch = prompts.shape[0]
    decode_seconds = full - prefill
    return {
        "batch": batch,
        "new_tokens": new_tokens,
        "generate_seconds": full,
        "prefill_seconds": prefill,
        "tokens_per_second": batch * new_tokens / full,
        "decode_tokens_per_second": batch * (new_tokens - 1) / decode_seconds,
        "decode_step_ms": 1000 * decode_seconds / (new_tokens - 1),
        "output_ids": outputs["ids"][:, prompts.shape[1] :].tolist(),
    }


def padded_tokenizer(out: Path, vocab_size: int) -> None:
    source = ROOT / ".weft" / "models" / "tokenizer"
    tokenizer = json.loads((source / "tokenizer.json").read_text())
    vocab = tokenizer["model"]["vocab"]
    used = set(vocab)
    next_id = max(vocab.values()) + 1
    serial = 0
    while next_id < vocab_size:
        name = f"<|x{serial}|>"
        serial += 1
        if name in used:
            continue
        vocab[name] = next_id
        next_id += 1
    (out / "tokenizer.json").write_text(json.dumps(tokenizer))
    for name in ["tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"]:
        if (source / name).exists():
            shutil.copy2(source / name, out / name)


class ListPast(torch.nn.Module):
    """The past as one list argument: torch.export's dynamic shapes are given per argument."""

    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, input_ids, attention_mask, position_ids, past):
        return self.decoder(input_ids, attention_mask, position_ids, *past)


def export_onnx(model, out: Path, opset: int = 17, exporter: str = "torchscript") -> Path:
    """model.onnx of the decoder with past, in the model's dtype, under <out>/raw (weights in side files)."""
    from trainer.export_onnx import DecoderWithPast, Float32Logits, example_inputs, export_graph

    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    if exporter == "torchscript":
        export_graph(model, raw / "model.onnx", opset)
        return raw / "model.onnx"
    # torch.export-based exporter: dynamic shapes per argument, so the past travels as one list.
    (input_ids, attention_mask, position_ids, *past_flat), input_names, output_names, _ = example_inputs(model)
    auto = torch.export.Dim.AUTO
    flat = {0: auto, 1: auto}
    cache = {0: auto, 2: auto}
    with torch.no_grad():
        torch.onnx.export(
            ListPast(Float32Logits(DecoderWithPast(model))),
            (input_ids, attention_mask, position_ids, past_flat),
            str(raw / "model.onnx"),
            input_names=input_names,
            output_names=output_names,
            dynamic_shapes=(flat, flat, flat, [cache] * len(past_flat)),
            opset_version=max(opset, 18),
            dynamo=True,
            external_data=True,
            optimize=True,
        )
    return raw / "model.onnx"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument(
        "--exporter",
        choices=["torchscript", "dynamo", "fused"],
        default="torchscript",
        help="torch.onnx's TorchScript tracer (trainer.export_onnx's), its dynamo exporter, or a graph of "
        "onnxruntime's fused operators built from the weights (trainer/fused_decoder.py)",
    )
    parser.add_argument("--skip-pytorch", action="store_true", help="export only (pytorch.json must exist)")
    parser.add_argument("--smoke", action="store_true", help="a 2-layer model of the same vocabulary, CPU allowed")
    parser.add_argument("--save-hf", type=Path, default=None,
                        help="also save the bfloat16 model as a transformers folder (bench/device/engines.py times it)")
    args = parser.parse_args()
    if args.smoke:
        SHAPE.update(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4)
        SHAPE.update(num_key_value_heads=2)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    import onnx
    from transformers import LlamaConfig, LlamaForCausalLM

    from trainer.export_greedy_loop import LOOP_FILE, build_greedy_loop, save_model

    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    config = LlamaConfig(**SHAPE, tie_word_embeddings=False, bos_token_id=0, eos_token_id=1, pad_token_id=0)
    started = time.perf_counter()
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.eval()
    parameters = sum(p.numel() for p in model.parameters())
    log(event="built", parameters=parameters, seconds=round(time.perf_counter() - started, 1))
    if args.save_hf is not None and not (args.save_hf / "config.json").exists():
        model.save_pretrained(args.save_hf)
        log(event="saved_hf", path=str(args.save_hf))

    generator = torch.Generator().manual_seed(1)
    prompts = torch.randint(5, SHAPE["vocab_size"], (32, args.prompt_tokens), generator=generator).to(device)
    results = {
        "shape": SHAPE,
        "parameters": parameters,
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "torch": torch.__version__,
        "prompts": prompts.tolist(),
        "pytorch": {},
    }
    if args.skip_pytorch:
        results = json.loads((args.out / "pytorch.json").read_text())
    else:
        for batch in (1, 32):
            timing = pytorch_generate_timings(model, prompts[:batch], args.new_tokens)
            results["pytorch"][f"batch{batch}"] = timing
            log(event="pytorch", **{k: v for k, v in timing.items() if k != "output_ids"})
        (args.out / "pytorch.json").write_text(json.dumps(results))
    if args.skip_export:
        return

    started = time.perf_counter()
    model = model.to(torch.float16)
    # The same weights in float16: PyTorch's greedy tokens in that precision are what weft should reproduce.
    with torch.no_grad():
        reference = model.generate(
            prompts[:4],
            attention_mask=torch.ones_like(prompts[:4]),
            max_new_tokens=16,
            min_new_tokens=16,
            do_sample=False,
            pad_token_id=0,
        )[:, prompts.shape[1] :]
    results["pytorch_float16_greedy_16"] = reference.tolist()
    (args.out / "pytorch.json").write_text(json.dumps(results))
    if args.exporter == "fused":
        from trainer.fused_decoder import build_fused_decoder

        decoder = build_fused_decoder(model, torch.float16)
        raw_path = None
    else:
        raw_path = export_onnx(model, args.out, exporter=args.exporter)
    log(event="exported", exporter=args.exporter, seconds=round(time.perf_counter() - started, 1))
    started = time.perf_counter()
    folder = args.out / "onnx"
    folder.mkdir(exist_ok=True)
    if raw_path is not None:
        decoder = onnx.load(str(raw_path))
    log(event="decoder_nodes", count=len(decoder.graph.node))
    save_model(decoder, folder / "model.onnx")
    save_model(build_greedy_loop(decoder), folder / LOOP_FILE)
    if raw_path is not None:
        shutil.rmtree(raw_path.parent)
    head_dim = SHAPE["hidden_size"] // SHAPE["num_attention_heads"]
    manifest = {
        "format": "weft-onnx-causal-lm/1",
        "num_layers": SHAPE["num_hidden_layers"],
        "num_attention_heads": SHAPE["num_attention_heads"],
        "num_kv_heads": SHAPE["num_key_value_heads"],
        "head_dim": head_dim,
        "hidden_size": SHAPE["hidden_size"],
        "vocab_size": SHAPE["vocab_size"],
        "bos_token_id": 0,
        # Random weights have no meaningful stop token: -1 never matches, so every row runs its whole budget,
        # as min_new_tokens makes PyTorch do.
        "eos_token_ids": [-1],
        "pad_token_id": 0,
        "dtype": "float16",
        "max_positions": SHAPE["max_position_embeddings"],
        "export_check": {"note": "random weights; weft's greedy tokens are compared with PyTorch's by the bench"},
    }
    (folder / "weft-model.json").write_text(json.dumps(manifest, indent=2))
    model.config.save_pretrained(folder)
    padded_tokenizer(folder, SHAPE["vocab_size"])
    log(event="weft_folder", path=str(folder), seconds=round(time.perf_counter() - started, 1))


if __name__ == "__main__":
    main()
