"""Decode engines side by side on one GPU machine: PyTorch eager, PyTorch + CUDA graph, llama.cpp (node-llama-cpp).

Run on the GPU machine (bench/device/engines.sh drives it; see bench/device/README.md):

    python3 engines.py prepare --work W --smol SMOL_HF --convert LLAMA_CPP_SRC
        W/llama1b/hf: the 1.1B Llama shape (hidden 2048, 22 layers, 32 heads, 4 KV heads, intermediate 5632) with
        random weights and SmolLM2's tokenizer (vocabulary 49,152, so llama.cpp's converter knows the tokenizer);
        GGUF files (f16, q8_0) of it and of SmolLM2-135M, by llama.cpp's own convert_hf_to_gguf.py
    python3 engines.py torch --work W --name llama1b|smollm2
        PyTorch eager (transformers generate, bf16, SDPA) and PyTorch + CUDA graph (graph_decoder.py, bf16):
        batch 1 and 32 decode tokens/s, time to first token for a 200-token prompt; the float32 reference's greedy
        tokens and top-1/top-2 logit gaps for the agreement prompts; writes W/<name>/prompts.json for the Node side
    python3 engines.py torch --work W --name N --compile-modes max-autotune-no-cudagraphs[,default]
        also the CUDA-graph decoder with its decode step torch.compile'd in each mode ("pytorch-compile-<mode>")
    python3 engines.py weft --work W --name N --summary decode.json
        rows for weft's onnxruntime-node CUDA decoder from bench/device/decode-bench.ts --prompts W/N/prompts.json
    python3 engines.py report --work W [--bandwidth-tbps 4.8]
        the table: tokens/s, fraction of the bandwidth limit, greedy agreement with near-tie analysis
W/<name>/hf may be a link to a folder built elsewhere (bench/device/llama_1b.py --save-hf: the 1.1B shape with its
32,000-token vocabulary, the model weft's decoder is timed on).

Protocol (the one bench/device/llama_1b.py used): greedy, 128-token prompts, every row exactly 128 new tokens, best
of two; decode tokens/s = batch x 127 / (t(128 new) - t(1 new)), so the prefill is taken out. Results: JSON lines
in W/results.jsonl (one per engine x model x batch), W/<name>/reference.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

LLAMA_1B = dict(
    hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4,
    max_position_embeddings=2048,
)
NEW_TOKENS = 128
PROMPT_TOKENS = 128
TTFT_PROMPT_TOKENS = 200
AGREEMENT_NEW_TOKENS = 32
TEXTS = [
    "Sea level rise is driven by two main processes: the thermal expansion of ocean water as it warms, and",
    "Question: Why do glaciers retreat when average temperatures rise?\nAnswer:",
    "The carbon cycle moves carbon between the atmosphere, the oceans, soils and living things. When fossil fuels",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
]


def log(**event) -> None:
    print(json.dumps(event), flush=True)


def append_result(work: Path, row: dict) -> None:
    with (work / "results.jsonl").open("a") as handle:
        handle.write(json.dumps(row) + "\n")
    log(**row)


DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# One compiled step per decoder (2 batch sizes x modes x models) shares forward's code object: above dynamo's
# default of 8 compiled versions it would silently run eager.
torch._dynamo.config.recompile_limit = 64


def synchronize() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def seconds(fn) -> float:
    synchronize()
    started = time.perf_counter()
    fn()
    synchronize()
    return time.perf_counter() - started


def convert(hf: Path, out: Path, outtype: str, source: Path) -> None:
    if out.exists():
        return
    started = time.perf_counter()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source / "gguf-py"), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, str(source / "convert_hf_to_gguf.py"), str(hf), "--outfile", str(out), "--outtype", outtype],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"convert_hf_to_gguf.py failed: {result.stderr[-3000:]}")
    log(event="gguf", path=str(out), bytes=out.stat().st_size, seconds=round(time.perf_counter() - started, 1))


def prepare(args) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    work: Path = args.work
    hf = work / "llama1b" / "hf"
    if not (hf / "model.safetensors").exists() and not list(hf.glob("model*.safetensors")):
        hf.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        if args.smoke:
            LLAMA_1B.update(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4)
        config = LlamaConfig(
            **LLAMA_1B, vocab_size=49152, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=2,
        )
        with torch.device(DEVICE):
            model = LlamaForCausalLM(config).to(torch.bfloat16)
        model.save_pretrained(hf)
        for name in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]:
            if (args.tokenizer / name).exists():
                shutil.copy2(args.tokenizer / name, hf / name)
        log(event="built", model="llama1b", parameters=sum(p.numel() for p in model.parameters()))
        del model
        torch.cuda.empty_cache()
    for outtype in ["f16", "q8_0"]:
        convert(hf, work / "llama1b" / f"model-{outtype}.gguf", outtype, args.convert)
    if args.smol is not None:
        for _ in range(args.wait_seconds):
            if (args.smol / "model.safetensors").exists():
                break
            time.sleep(1)
        if not (args.smol / "model.safetensors").exists():
            log(event="smol_missing", path=str(args.smol))
            return
        (work / "smollm2").mkdir(parents=True, exist_ok=True)
        link = work / "smollm2" / "hf"
        if not link.exists():
            link.symlink_to(args.smol.resolve())
        for outtype in ["f16", "q8_0"]:
            convert(link, work / "smollm2" / f"model-{outtype}.gguf", outtype, args.convert)


def agreement_prompts(name: str, tokenizer_dir: Path, vocab: int) -> list[list[int]]:
    if name == "smollm2":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        return [tokenizer(text)["input_ids"] for text in TEXTS]
    generator = torch.Generator().manual_seed(2)
    return torch.randint(5, vocab, (4, PROMPT_TOKENS), generator=generator).tolist()


def eager_timings(model, prompts: torch.Tensor) -> dict:
    mask = torch.ones_like(prompts)

    def run(count: int):
        return model.generate(prompts, attention_mask=mask, max_new_tokens=count, min_new_tokens=count,
                              do_sample=False, pad_token_id=0)

    run(NEW_TOKENS)
    full = min(seconds(lambda: run(NEW_TOKENS)) for _ in range(2))
    first = min(seconds(lambda: run(1)) for _ in range(3))
    return dict(generate_seconds=full, first_token_seconds=first)


def graph_timings(model, prompts: torch.Tensor, use_graph: bool = DEVICE == "cuda", compile_mode=None) -> dict:
    from graph_decoder import StaticLlama

    batch = prompts.shape[0]
    started = time.perf_counter()
    decoder = StaticLlama(model, batch, max_len=TTFT_PROMPT_TOKENS + NEW_TOKENS + 8, compile_mode=compile_mode)
    if use_graph:
        decoder.capture()  # with compile_mode: compiles (and autotunes) during the capture's warm-up steps
    setup_seconds = time.perf_counter() - started
    decoder.generate(prompts, NEW_TOKENS)
    full = min(seconds(lambda: decoder.generate(prompts, NEW_TOKENS)) for _ in range(2))
    first = min(seconds(lambda: decoder.generate(prompts, 1)) for _ in range(3))
    return dict(generate_seconds=full, first_token_seconds=first, decoder=decoder, setup_seconds=setup_seconds)


def row(engine: str, name: str, batch: int, timing: dict, weight_bytes: int, **extra) -> dict:
    decode = timing["generate_seconds"] - timing["first_token_seconds"]
    return dict(
        engine=engine, model=name, batch=batch, new_tokens=NEW_TOKENS, prompt_tokens=PROMPT_TOKENS,
        generate_seconds=timing["generate_seconds"], first_token_seconds=timing["first_token_seconds"],
        decode_tokens_per_second=batch * (NEW_TOKENS - 1) / decode, decode_step_ms=1000 * decode / (NEW_TOKENS - 1),
        weight_bytes=weight_bytes, **extra,
    )


@torch.no_grad()
def torch_bench(args) -> None:
    from transformers import AutoModelForCausalLM

    work, name = args.work, args.name
    hf = work / name / "hf"
    model = AutoModelForCausalLM.from_pretrained(hf, dtype=torch.bfloat16, attn_implementation="sdpa").to(DEVICE).eval()
    vocab = model.config.vocab_size
    parameters = sum(p.numel() for p in model.parameters())
    weight_bytes = 2 * parameters
    device = torch.cuda.get_device_name(0) if DEVICE == "cuda" else "cpu"
    generator = torch.Generator().manual_seed(1)
    speed = torch.randint(5, vocab, (32, PROMPT_TOKENS), generator=generator)
    ttft = torch.randint(5, vocab, (1, TTFT_PROMPT_TOKENS), generator=generator)
    agreement = agreement_prompts(name, hf, vocab)
    (work / name / "prompts.json").write_text(
        json.dumps(dict(speed=speed.tolist(), ttft=ttft.tolist()[0], agreement=agreement, new_tokens=NEW_TOKENS,
                        agreement_new_tokens=AGREEMENT_NEW_TOKENS))
    )
    speed, ttft = speed.to(DEVICE), ttft.to(DEVICE)
    common = dict(device=device, torch=torch.__version__, parameters=parameters, dtype="bfloat16")

    # Time to first token, 200-token prompt, batch 1 (median of 5 after a warm-up).
    def first_token_ms(fn) -> float:
        fn()
        return 1000 * statistics.median(seconds(fn) for _ in range(5))

    eager_ttft = first_token_ms(lambda: model.generate(ttft, attention_mask=torch.ones_like(ttft), max_new_tokens=1,
                                                       do_sample=False, pad_token_id=0)) if args.eager else None
    for batch in args.batches if args.eager else ():
        timing = eager_timings(model, speed[:batch])
        append_result(work, row("pytorch-eager", name, batch, timing, weight_bytes,
                                ttft_200_ms=eager_ttft if batch == 1 else None, **common))
    tokens = {}
    variants = [("pytorch-cuda-graph", None)] if args.eager else []
    variants += [(f"pytorch-compile-{mode}", mode) for mode in args.compile_modes if mode]
    for engine, mode in variants:
        for batch in args.batches:
            try:
                timing = graph_timings(model, speed[:batch], compile_mode=mode)
            except Exception as error:  # a compile failure must not cost the other engines' rows
                log(event="engine_failed", engine=engine, model=name, batch=batch, error=repr(error)[-2000:])
                break
            decoder = timing.pop("decoder")
            extra = dict(setup_seconds=timing.pop("setup_seconds"), compile_mode=mode)
            if batch == 1:
                extra["ttft_200_ms"] = first_token_ms(lambda: decoder_prefill(decoder, ttft))
                # The timed decoder itself (its graph, its compiled step): a fresh one would compile again.
                tokens[engine] = [decoder.generate(torch.tensor([p], device=DEVICE), AGREEMENT_NEW_TOKENS)[0].tolist()
                                  for p in agreement]
            append_result(work, row(engine, name, batch, timing, weight_bytes, **extra, **common))
            if args.profile and batch == 1:
                try:
                    profile_steps(work, name, engine, decoder, speed[:1])
                except Exception as error:  # the profile is extra: its failure must not cost the timings
                    log(event="profile_failed", engine=engine, error=repr(error)[-1000:])
            del decoder
            torch.cuda.empty_cache()
    if 1 not in args.batches:
        return  # the agreement tokens come from batch 1: keep the reference.json that run wrote
    tokens["graph"] = tokens.get("pytorch-cuda-graph")
    # Greedy tokens of bf16 eager, and the float32 reference with its top-1/top-2 gaps along its own path.
    if args.eager:
        tokens["eager"] = [greedy(model, prompt)[0] for prompt in agreement]
    model = model.float()
    reference = [greedy(model, prompt) for prompt in agreement]
    (work / name / "reference.json").write_text(
        json.dumps(dict(tokens=[r[0] for r in reference], gaps=[r[1] for r in reference],
                        logits=[r[2] for r in reference], pytorch=tokens))
    )
    log(event="reference", model=name)


def profile_steps(work: Path, name: str, engine: str, decoder, prompt: torch.Tensor, steps: int = 32) -> None:
    """Where a batch-1 decode step's time goes: the GPU kernels of `steps` graph replays (CUPTI sees the kernels
    inside a CUDA graph), per step: how many, their summed time against the step's wall time (the rest is gaps
    between kernels), and the 15 costliest by name. Written to W/<name>/profile-<engine>.json and logged."""
    from torch.profiler import ProfilerActivity, profile

    if DEVICE != "cuda" or decoder.graph is None:
        return
    decoder.generate(prompt, 2)
    synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as trace:
        started = time.perf_counter()
        for _ in range(steps):
            decoder.graph.replay()
        synchronize()
        wall = time.perf_counter() - started
    kernels: dict[str, list[float]] = {}
    for event in trace.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            kernels.setdefault(event.name, []).append(event.time_range.elapsed_us())
    per_step = sorted(((sum(times) / steps, len(times) / steps, kernel) for kernel, times in kernels.items()), reverse=True)
    result = dict(
        event="profile", engine=engine, model=name, steps=steps, step_wall_us=1e6 * wall / steps,
        kernels_per_step=sum(count for _, count, _ in per_step), kernel_us_per_step=sum(us for us, _, _ in per_step),
        top=[dict(us=round(us, 2), per_step=count, kernel=kernel[:160]) for us, count, kernel in per_step[:15]],
    )
    rounds = len(list((work / name).glob(f"profile-{engine}-*.json")))  # a mode listed twice: one file per round
    (work / name / f"profile-{engine}-{rounds + 1}.json").write_text(json.dumps(result, indent=1))
    log(**result)


def greedy(model, prompt: list[int]):
    ids = torch.tensor([prompt], device=DEVICE)
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=AGREEMENT_NEW_TOKENS,
                         min_new_tokens=AGREEMENT_NEW_TOKENS, do_sample=False, pad_token_id=0,
                         output_logits=True, return_dict_in_generate=True)
    chosen = out.sequences[0, len(prompt):].tolist()
    gaps, logits = [], []
    for step in out.logits:
        top = step[0].float().topk(2)
        gaps.append(float(top.values[0] - top.values[1]))
        logits.append(step[0].float().cpu())
    # Keep the whole float32 logit rows only as the top 8 (token, logit) pairs: enough to place another engine's pick.
    top8 = [[(int(i), float(v)) for v, i in zip(*row.topk(8))] for row in logits]
    return chosen, gaps, top8


def decoder_prefill(decoder, prompt: torch.Tensor):
    from graph_decoder import StaticLlama  # noqa: F401  (decoder is one)

    return decoder.forward(prompt, torch.arange(prompt.shape[1], device=prompt.device))


def decoder_greedy(model, prompt: list[int], new_tokens: int) -> list[int]:
    from graph_decoder import StaticLlama

    decoder = StaticLlama(model, 1, max_len=len(prompt) + new_tokens + 8)
    if DEVICE == "cuda":
        decoder.capture()
    return decoder.generate(torch.tensor([prompt], device=DEVICE), new_tokens)[0].tolist()


def compare(reference: dict, candidate: list[list[int]]) -> dict:
    """Greedy agreement with the float32 reference; at a divergence, how far the candidate's pick was from top-1."""
    matched, divergences = [], []
    for index, (ref, got) in enumerate(zip(reference["tokens"], candidate)):
        same = next((i for i, (a, b) in enumerate(zip(ref, got)) if a != b), min(len(ref), len(got)))
        matched.append(same)
        if same < min(len(ref), len(got)):
            top = dict(reference["logits"][index][same])
            best = reference["logits"][index][same][0][1]
            deficit = best - top[got[same]] if got[same] in top else None
            divergences.append(dict(prompt=index, step=same, top1_top2_gap=reference["gaps"][index][same],
                                    candidate_deficit=deficit))
    return dict(tokens_matched=matched, of=[len(r) for r in reference["tokens"]], divergences=divergences)


def weft_rows(args) -> None:
    """Rows for weft's decoder (onnxruntime-node, CUDA EP) from decode-bench.ts --prompts's summary."""
    summary = json.loads(args.summary.read_text())
    parameters = None
    for line in (args.work / "results.jsonl").read_text().splitlines():
        candidate = json.loads(line)
        if candidate.get("model") == args.name and candidate.get("parameters"):
            parameters = candidate["parameters"]
    for timing in summary["rows"]:
        extra = {}
        if timing["batch"] == 1:
            extra = dict(ttft_200_ms=summary.get("ttft200Ms"), agreement_tokens=summary.get("agreementTokens"))
        append_result(args.work, dict(
            engine=f"weft-ort-{summary.get('executionProvider', 'cuda')}-{timing['decoder']}", model=args.name, batch=timing["batch"], new_tokens=NEW_TOKENS,
            prompt_tokens=PROMPT_TOKENS, generate_seconds=timing["generateSeconds"],
            first_token_seconds=timing["prefillSeconds"], decode_tokens_per_second=timing["decodeTokensPerSecond"],
            decode_step_ms=timing["decodeStepMs"], weight_bytes=summary["weightBytes"], parameters=parameters,
            dtype=summary.get("dtype", "float16"), execution_provider=summary.get("executionProvider"), **extra,
        ))


def report(args) -> None:
    work = args.work
    rows = [json.loads(line) for line in (work / "results.jsonl").read_text().splitlines() if line.strip()]
    bandwidth = args.bandwidth_tbps * 1e12
    summary = []
    for r in rows:
        if "decode_tokens_per_second" not in r:
            continue
        steps = r["decode_tokens_per_second"] / r["batch"]
        fp16_bytes = 2 * r["parameters"] if "parameters" in r else None
        r["bandwidth_limit_steps_per_second_fp16"] = bandwidth / fp16_bytes if fp16_bytes else None
        r["fraction_of_limit_fp16_bytes"] = steps * fp16_bytes / bandwidth if fp16_bytes else None
        r["fraction_of_limit_own_bytes"] = steps * r["weight_bytes"] / bandwidth
        reference_path = work / r["model"] / "reference.json"
        if r["batch"] == 1 and reference_path.exists():
            reference = json.loads(reference_path.read_text())
            candidate = r.get("agreement_tokens")
            if candidate is None and r["engine"].startswith("pytorch-c"):
                candidate = reference["pytorch"].get(r["engine"]) or (
                    reference["pytorch"].get("graph") if r["engine"] == "pytorch-cuda-graph" else None)
            if candidate is None and r["engine"] == "pytorch-eager":
                candidate = reference["pytorch"].get("eager")
            if candidate is not None:
                r["agreement_with_float32"] = compare(reference, candidate)
        summary.append(r)
    (work / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"{'engine':24} {'model':9} {'b':>3} {'tok/s':>9} {'step ms':>8} {'frac(fp16)':>10} {'frac(own)':>9} "
          f"{'ttft200':>8}  agreement")
    for r in summary:
        agreement = r.get("agreement_with_float32")
        text = ""
        if agreement:
            text = f"{agreement['tokens_matched']}/{agreement['of'][0]}"
            for d in agreement["divergences"]:
                deficit = d["candidate_deficit"]
                text += f" [p{d['prompt']}@{d['step']} gap {d['top1_top2_gap']:.3f}" + (
                    f" deficit {deficit:.3f}]" if deficit is not None else " deficit >top8]")
        ttft = r.get("ttft_200_ms")
        frac = r["fraction_of_limit_fp16_bytes"]
        print(f"{r['engine'] + (' ' + r['quant'] if r.get('quant') else ''):24} {r['model']:9} {r['batch']:>3} "
              f"{r['decode_tokens_per_second']:9.0f} {r['decode_step_ms']:8.3f} "
              f"{(frac if frac is not None else float('nan')):10.3f} {r['fraction_of_limit_own_bytes']:9.3f} "
              f"{(f'{ttft:.1f}' if ttft else '-'):>8}  {text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--tokenizer", type=Path, required=True, help="a folder with SmolLM2's tokenizer files")
    p.add_argument("--convert", type=Path, required=True, help="llama.cpp source (convert_hf_to_gguf.py, gguf-py)")
    p.add_argument("--smol", type=Path, help="SmolLM2's HF folder (waited for: it may still be arriving)")
    p.add_argument("--wait-seconds", type=int, default=900)
    p.add_argument("--smoke", action="store_true", help="a 2-layer model instead of the 1.1B shape (CPU check)")
    t = sub.add_parser("torch")
    t.add_argument("--work", type=Path, required=True)
    t.add_argument("--name", required=True)
    t.add_argument("--compile-modes", type=lambda text: text.split(","), default=["max-autotune-no-cudagraphs"],
                   help="torch.compile modes for the compiled CUDA-graph decoder, comma-separated ('' for none); a mode "
                   "may add +cdt (coordinate-descent tuning) and +mm (matmul attention), see graph_decoder.py")
    t.add_argument("--batches", type=lambda text: [int(b) for b in text.split(",")], default=[1, 32])
    t.add_argument("--no-eager", dest="eager", action="store_false",
                   help="skip PyTorch eager and the uncompiled CUDA graph (already measured on this model)")
    t.add_argument("--profile", action="store_true",
                   help="after each batch-1 timing, the kernels of 32 decode steps (torch.profiler): count, summed "
                   "time against the step's wall time, the costliest 15")
    w = sub.add_parser("weft")
    w.add_argument("--work", type=Path, required=True)
    w.add_argument("--name", required=True)
    w.add_argument("--summary", type=Path, required=True)
    r = sub.add_parser("report")
    r.add_argument("--work", type=Path, required=True)
    r.add_argument("--bandwidth-tbps", type=float, default=4.8)
    args = parser.parse_args()
    {"prepare": prepare, "torch": torch_bench, "weft": weft_rows, "report": report}[args.command](args)


if __name__ == "__main__":
    main()
