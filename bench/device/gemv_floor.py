"""How fast can the 1.1B decode step's matrix-vector products be on this GPU, kernel by kernel?

For each projection shape of the 1.1B Llama (batch 1, bf16): 22 distinct weight matrices (as the 22 layers have,
so the 50 MB L2 cannot hold them), one product each, captured as one CUDA graph and replayed; time per product and
the bandwidth it reaches, for cuBLAS (F.linear) and for Inductor's reduction kernel (torch.compile of the same
product with coordinate-descent tuning, what the compiled decoder emits). The sum over a step's products is the floor
a decoder built from these kernels cannot go below; the bench prints it against the bandwidth limit.

    python3 bench/device/gemv_floor.py [--layers 22] [--replays 50]
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F

SHAPES = {"qkv": (2048, 2560), "o": (2048, 2048), "gate_up": (2048, 11264), "down": (5632, 2048),
          "lm_head": (2048, 32000)}
BANDWIDTH = 4.8e12


def timed_graph(fn, replays: int) -> float:
    fn()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    graph.replay()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(replays):
        graph.replay()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1000 / replays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=22)
    parser.add_argument("--replays", type=int, default=50)
    args = parser.parse_args()
    import torch._inductor.config as inductor_config

    inductor_config.coordinate_descent_tuning = True

    def reduction(x, w):
        return (x[:, None, :].float() * w.float()).sum(-1).to(x.dtype)

    compiled_reduction = torch.compile(reduction, fullgraph=True, dynamic=False)
    compiled_linear = torch.compile(F.linear, fullgraph=True, dynamic=False)
    step = {}
    for name, (k, n) in SHAPES.items():
        count = 1 if name == "lm_head" else args.layers
        weights = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) for _ in range(count)]
        x = torch.randn(1, k, device="cuda", dtype=torch.bfloat16)
        out = {}
        for kernel, fn in [("cublas", F.linear), ("inductor-linear-cdt", compiled_linear),
                           ("inductor-reduction-cdt", compiled_reduction)]:
            seconds = timed_graph(lambda: [fn(x, w) for w in weights], args.replays) / count
            out[kernel] = seconds
            print(json.dumps(dict(shape=name, k=k, n=n, kernel=kernel, us=round(1e6 * seconds, 2),
                                  tbps=round(2 * k * n / seconds / 1e12, 2),
                                  fraction=round(2 * k * n / seconds / BANDWIDTH, 3))), flush=True)
        step[name] = (count if name != "lm_head" else 1, out)
    for kernel in ["cublas", "inductor-linear-cdt", "inductor-reduction-cdt", "best"]:
        total = sum(
            (args.layers if name != "lm_head" else 1) * (min(out.values()) if kernel == "best" else out[kernel])
            for name, (_, out) in step.items())
        print(json.dumps(dict(event="step_floor", kernel=kernel, ms=round(1000 * total, 3),
                              tokens_per_second=round(1 / total), note="matrix products only, no attention/norms")))


if __name__ == "__main__":
    main()
