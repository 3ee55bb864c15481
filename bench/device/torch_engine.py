"""weft's PyTorch decode engine (trainer/decode_engine.py, WEFT_ENGINE=torch) on the GPU, beside PyTorch eager, in
one process run per model (issue #20). Needs only this repository and a PyTorch with CUDA (no Node, no network).

    python3 bench/device/torch_engine.py --work /root/te [--models llama1b,smollm2] [--compile default+cdt,triton]
    python3 bench/device/torch_engine.py --work /tmp/te --smoke          # a 2-layer model on CPU: checks the script

Per model (random weights in bfloat16, built once under --work: llama1b = the 1.1B TinyLlama shape, smollm2 = the
SmolLM2-135M shape), and per compile mode, the engine runs as weft runs it: a `python -m trainer.decode_engine`
process spoken to over its JSON-lines protocol. Rows (JSON lines, also appended to <work>/results.jsonl):
  - decode tokens/s at batch 1 and 32 (128-token prompts, 128 new tokens, no stop token; the engine's own decode
    time, and the client's wall time per token), the fraction of the HBM bandwidth limit at batch 1 (weight bytes
    per step / step time / --bandwidth-tbps);
  - time to first token for a 200-token prompt at batch 1 (client side: request written -> first token read);
  - greedy agreement with transformers (bf16 eager, same weights) on 4 prompts x 64 tokens, and at each divergence
    the float32 reference's top-1/top-2 gap there (a near-tie) and how far below top-1 the engine's pick was;
  - PyTorch eager (transformers generate, bf16, SDPA) at batch 1 and 32, timed the same way, as the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
SHAPES = {
    "llama1b": dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                    num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048),
    "smollm2": dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                    num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                    tie_word_embeddings=True, rope_theta=100000.0),
    "smoke": dict(vocab_size=32000, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024),
}
PROMPT_TOKENS, NEW_TOKENS, TTFT_TOKENS, AGREEMENT_TOKENS = 128, 128, 200, 64


def log(work: Path, **row) -> None:
    line = json.dumps(row)
    print(line, flush=True)
    with open(work / "results.jsonl", "a") as handle:
        handle.write(line + "\n")


def build(work: Path, name: str, device: str) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    hf = work / name / "hf"
    if (hf / "config.json").exists():
        return hf
    torch.manual_seed(0)
    config = LlamaConfig(**SHAPES[name], bos_token_id=1, eos_token_id=2)
    with torch.device(device):
        model = LlamaForCausalLM(config)
    # Wider weights than the default init, so logits spread like a trained model's and greedy choices are decided
    # (the default init gives near-uniform logits, where every step is a near-tie).
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(2.0)
    model.to(torch.bfloat16).save_pretrained(str(hf))
    return hf


def variant_environment(mode: str) -> tuple[str, dict]:
    """'triton:nopdl+nopre' -> ('triton', its variables): nopdl = no programmatic dependent launch (WEFT_TRITON_PDL=0;
    on by default since session 10, 'pdl' is accepted for earlier command lines), nopre = no wide first weight tile
    before the wait (WEFT_TRITON_PREFETCH=0)."""
    compile_mode, _, variant = mode.partition(":")
    flags = set(filter(None, variant.split("+")))
    unknown = flags - {"pdl", "nopdl", "nopre"}
    if unknown:
        raise SystemExit(f"--compile {mode}: unknown variant {sorted(unknown)} (nopdl, nopre)")
    return compile_mode, dict(WEFT_TRITON_PDL="0" if "nopdl" in flags else "1",
                              WEFT_TRITON_PREFETCH="0" if "nopre" in flags else "1")


class EngineProcess:
    def __init__(self, hf: Path, device: str, compile_mode: str):
        started = time.perf_counter()
        compile_mode, environment = variant_environment(compile_mode)
        environment = dict(os.environ, **environment)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "trainer.decode_engine", "--model", str(hf), "--device", device,
             "--compile", compile_mode],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, env=environment,
        )
        self.ready = json.loads(self.process.stdout.readline())
        if not self.ready.get("ready"):
            raise RuntimeError(f"engine not ready: {self.ready}")
        self.ready_seconds = time.perf_counter() - started
        self.next_id = 0

    def run(self, prompts, new_tokens, eos=()):
        """Returns per-row tokens, the engine's summary, client seconds to the first chunk and to the end."""
        self.next_id += 1
        request = dict(id=self.next_id, prompts=prompts, max_new_tokens=[new_tokens] * len(prompts), eos=list(eos),
                       pad=0)
        started = time.perf_counter()
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        rows = [[] for _ in prompts]
        first = None
        while True:
            message = json.loads(self.process.stdout.readline())
            if "error" in message:
                raise RuntimeError(message["error"])
            if "tokens" in message:
                first = first if first is not None else time.perf_counter() - started
                for row, tokens in zip(rows, message["tokens"]):
                    row.extend(tokens)
            if message.get("done"):
                return rows, message, first, time.perf_counter() - started

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


def synchronize():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def eager_rows(model, prompts: torch.Tensor) -> dict:
    mask = torch.ones_like(prompts)

    def seconds(count):
        synchronize()
        started = time.perf_counter()
        model.generate(prompts, attention_mask=mask, max_new_tokens=count, min_new_tokens=count, do_sample=False,
                       pad_token_id=0)
        synchronize()
        return time.perf_counter() - started

    seconds(4)
    full = min(seconds(NEW_TOKENS) for _ in range(2))
    first = min(seconds(1) for _ in range(3))
    return dict(decode_tokens_per_second=prompts.shape[0] * (NEW_TOKENS - 1) / (full - first),
                decode_step_ms=1000 * (full - first) / (NEW_TOKENS - 1), first_token_ms=1000 * first)


def greedy_with_gaps(model, prompt: list[int]):
    ids = torch.tensor([prompt], device=model.device)
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=AGREEMENT_TOKENS,
                         min_new_tokens=AGREEMENT_TOKENS, do_sample=False, pad_token_id=0, output_logits=True,
                         return_dict_in_generate=True)
    tokens = out.sequences[0, len(prompt):].tolist()
    rows = [step[0].float() for step in out.logits]
    gaps = [float(row.topk(2).values[0] - row.topk(2).values[1]) for row in rows]
    return tokens, gaps, rows


def agreement(reference, candidate: list[list[int]]) -> dict:
    """Tokens equal to the reference's greedy path; at the first divergence, the reference's top-2 gap there and
    how far below the reference's top-1 logit the candidate's pick was."""
    matched, divergences = [], []
    for index, ((tokens, gaps, logits), got) in enumerate(zip(reference, candidate)):
        same = next((i for i, (a, b) in enumerate(zip(tokens, got)) if a != b), min(len(tokens), len(got)))
        matched.append(same)
        if same < min(len(tokens), len(got)):
            row = logits[same]
            divergences.append(dict(prompt=index, step=same, top1_top2_gap=round(gaps[same], 4),
                                    candidate_deficit=round(float(row.max() - row[got[same]]), 4)))
    return dict(tokens_matched=matched, of=[len(r[0]) for r in reference], divergences=divergences)


@torch.no_grad()
def bench_model(args, name: str) -> None:
    from transformers import AutoModelForCausalLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    hf = build(args.work, name, device)
    model = AutoModelForCausalLM.from_pretrained(str(hf), dtype=torch.bfloat16, attn_implementation="sdpa")
    model.to(device).eval()
    parameters = sum(p.numel() for p in model.parameters())
    weight_bytes = 2 * parameters
    vocab = model.config.vocab_size
    common = dict(model=name, parameters=parameters, device=torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
                  torch=torch.__version__, session=args.session)
    generator = torch.Generator().manual_seed(1)
    speed = torch.randint(5, vocab, (32, PROMPT_TOKENS), generator=generator).tolist()
    ttft = torch.randint(5, vocab, (TTFT_TOKENS,), generator=generator).tolist()
    prompts = torch.randint(5, vocab, (4, 32), generator=generator).tolist()
    limit = args.bandwidth_tbps * 1e12 / weight_bytes  # steps/s if every step only streamed the weights once

    def fraction(tokens_per_second, batch):
        return round(tokens_per_second / batch / limit, 4)

    if not args.skip_eager:
        for batch in args.batches:
            timing = eager_rows(model, torch.tensor(speed[:batch], device=device))
            log(args.work, engine="pytorch-eager", batch=batch, **timing,
                bandwidth_fraction=fraction(timing["decode_tokens_per_second"], batch) if batch == 1 else None, **common)
    eager_tokens = [greedy_with_gaps(model, prompt)[0] for prompt in prompts]
    reference = [greedy_with_gaps(model.float(), prompt) for prompt in prompts]
    model.to("cpu")
    del model
    torch.cuda.empty_cache() if device == "cuda" else None
    log(args.work, engine="pytorch-eager", event="agreement", vs="float32", **agreement(reference, eager_tokens), **common)

    for mode in args.compile:
        engine = EngineProcess(hf, device, mode)
        log(args.work, engine=f"weft-torch-{mode}", event="ready", seconds=round(engine.ready_seconds, 1),
            check=engine.ready["check"], dtype=engine.ready["dtype"], **common)
        try:
            for batch in args.batches:
                started = time.perf_counter()
                engine.run(speed[:batch], NEW_TOKENS)  # compiles and captures this shape
                setup = time.perf_counter() - started
                runs = [engine.run(speed[:batch], NEW_TOKENS) for _ in range(3)]
                best = min(runs, key=lambda run: run[1]["decode_ms"])
                _, summary, _, wall = best
                steps = summary["steps"] - 1  # the first token is the prefill's
                tokens_per_second = batch * steps / (summary["decode_ms"] / 1000)
                row = dict(engine=f"weft-torch-{mode}", batch=batch, decode_tokens_per_second=round(tokens_per_second, 1),
                           decode_step_ms=round(summary["decode_ms"] / steps, 4),
                           client_tokens_per_second=round(batch * summary["steps"] / wall, 1),
                           prefill_ms=round(summary["prefill_ms"], 2), first_shape_seconds=round(setup, 1))
                if batch == 1:
                    row["bandwidth_fraction"] = fraction(tokens_per_second, 1)
                    firsts = []
                    engine.run([ttft], 1)
                    for _ in range(5):
                        firsts.append(engine.run([ttft], 1)[2] * 1000)
                    row["ttft_200_ms"] = round(statistics.median(firsts), 2)
                log(args.work, **row, **common)
            got = [engine.run([prompt], AGREEMENT_TOKENS)[0][0] for prompt in prompts]
            log(args.work, engine=f"weft-torch-{mode}", event="agreement", vs="float32", **agreement(reference, got),
                equal_to_bf16_eager=[a == b for a, b in zip(got, eager_tokens)], **common)
        except Exception as error:  # one mode's failure must not cost the others' rows
            log(args.work, engine=f"weft-torch-{mode}", event="failed", error=repr(error)[-2000:], **common)
        finally:
            engine.close()


@torch.no_grad()
def profile(args, name: str, mode: str) -> None:
    """Where a batch-1 decode step's time goes: kernels per step, their summed time, the top kernels, against the
    step's wall time without the profiler (the engine in this process, one decoder, 32 graph replays)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    sys.path.insert(0, str(ROOT))
    compile_mode, environment = variant_environment(mode)
    os.environ.update(environment)
    from trainer.decode_engine import Engine

    engine = Engine(args.work / name / "hf", torch.device("cuda" if torch.cuda.is_available() else "cpu"), compile_mode)
    decoder = engine.decoder(1, PROMPT_TOKENS + NEW_TOKENS)
    prompt = torch.randint(5, engine.vocab_size, (PROMPT_TOKENS,), generator=torch.Generator().manual_seed(3)).tolist()
    steps = 32

    def replay():
        decoder.prefill([prompt], 0)
        for _ in range(steps):
            decoder.advance()
        synchronize()

    replay()
    walls = []
    for _ in range(3):
        decoder.prefill([prompt], 0)
        synchronize()
        started = time.perf_counter()
        for _ in range(steps):
            decoder.advance()
        synchronize()
        walls.append((time.perf_counter() - started) / steps * 1e6)
    decoder.prefill([prompt], 0)
    synchronize()
    with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            decoder.advance()
        synchronize()
    kernels = {}
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            entry = kernels.setdefault(event.name, [0, 0.0])
            entry[0] += 1
            entry[1] += event.device_time
    count = sum(entry[0] for entry in kernels.values()) / steps
    total = sum(entry[1] for entry in kernels.values()) / steps
    top = sorted(kernels.items(), key=lambda item: -item[1][1])[:12]
    log(args.work, engine=f"weft-torch-{mode}", event="profile", model=name, steps=steps,
        step_wall_us=round(min(walls), 1), kernels_per_step=count, kernel_us_per_step=round(total, 1),
        top=[dict(kernel=kernel[:90], per_step=entry[0] / steps, us_per_step=round(entry[1] / steps, 2))
             for kernel, entry in top], session=args.session)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--models", type=lambda text: text.split(","), default=["llama1b", "smollm2"])
    parser.add_argument("--compile", type=lambda text: text.split(","), default=["default+cdt"],
                        help="engine modes, in order (a mode may repeat: alternation); variants: triton:nopdl "
                             "(no programmatic dependent launch), triton:nopre (no wide first weight tile), both: "
                             "triton:nopdl+nopre")
    parser.add_argument("--profile", type=lambda text: text.split(","), default=[],
                        help="engine modes to profile in-process at batch 1 (torch.profiler over 32 step replays)")
    parser.add_argument("--batches", type=lambda text: [int(b) for b in text.split(",")], default=[1, 32])
    parser.add_argument("--bandwidth-tbps", type=float, default=4.8, help="H200 HBM3e: 4.8 TB/s")
    parser.add_argument("--skip-eager", action="store_true")
    parser.add_argument("--session", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="a 2-layer model, CPU allowed, compile off")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.smoke:
        args.models, args.batches = ["smoke"], [1, 4]
        if not torch.cuda.is_available():
            args.compile = ["off"]
    for name in args.models:
        bench_model(args, name)
        for mode in args.profile:
            try:
                profile(args, name, mode)
            except Exception as error:  # the profile is extra: its failure must not cost the timings
                log(args.work, engine=f"weft-torch-{mode}", event="profile_failed", error=repr(error)[-2000:])


if __name__ == "__main__":
    main()
