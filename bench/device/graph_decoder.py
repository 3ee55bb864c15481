"""A Llama decoder for greedy decode with a static key/value cache, one step captured as a CUDA graph.

Used by bench/device/engines.py as "PyTorch + CUDA graph": the same PyTorch kernels as eager, but one graph
replay per decode step instead of ~10 launches per layer, to show how much of eager's gap to the memory-bandwidth
limit is launch overhead. Weights are taken from a transformers LlamaForCausalLM (no rope scaling, no biases).
With compile_mode (e.g. "max-autotune-no-cudagraphs") the decode step is torch.compile'd first, so Inductor fuses
the ~30 kernels of a layer (norms, rotary, residuals, SiLU x up) into a few, and the compiled step is captured as
the CUDA graph (Inductor's own CUDA graphs stay off: one graph per step is captured here either way).

    python3 bench/device/graph_decoder.py --check [--compile default[+cdt][+mm]]   # vs transformers (CPU, float32)

A compile mode may carry options after '+': "cdt" turns on Inductor's coordinate-descent tuning of the kernels it
generates (what gpt-fast does for decode), "mm" replaces scaled_dot_product_attention by plain matmul + softmax
over the static cache (one query row: Inductor can fuse it; SDPA with a mask and grouped KV heads is an opaque op),
"gemv" writes the batch-1 decode step's projections as multiply + float32 sum instead of matmuls, so Inductor emits
them as its own reduction kernels and can fuse the RMSNorm before and the residual add after into them (fewer,
larger kernels per layer; cuBLAS matmuls are opaque calls it cannot fuse into). Prefill and batches > 1 keep matmuls.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from trainer.decode_engine import LlamaWeights  # noqa: E402 -- after the repository root is on the path


class StaticLlama:
    def __init__(self, model, batch: int, max_len: int, compile_mode: str | None = None):
        options = set()
        if compile_mode:
            compile_mode, *extra = compile_mode.split("+")
            options = set(extra)
            unknown = options - {"cdt", "mm", "gemv"}
            if unknown:
                raise ValueError(f"unknown compile option(s) {sorted(unknown)}: use cdt, mm, gemv")
        self.options = options
        self.batch, self.max_len = batch, max_len
        # The weights arranged as weft's decode engine arranges them (q/k/v and gate/up concatenated, rotary tables).
        weights = LlamaWeights(model, max_len)
        self.heads, self.kv_heads, self.head_dim, self.eps = (
            weights.heads, weights.kv_heads, weights.head_dim, weights.eps)
        self.embed, self.final_norm, self.lm_head = weights.embed, weights.final_norm, weights.lm_head
        self.layers, self.cos, self.sin = weights.layers, weights.cos, weights.sin
        dtype, device = weights.dtype, weights.device
        shape = (batch, self.kv_heads, max_len, self.head_dim)
        self.cache_k = [torch.zeros(shape, dtype=dtype, device=device) for _ in self.layers]
        self.cache_v = [torch.zeros(shape, dtype=dtype, device=device) for _ in self.layers]
        self.key_positions = torch.arange(max_len, device=device)
        # Decode-step state the graph reads and writes in place.
        self.token = torch.zeros(batch, dtype=torch.long, device=device)
        self.position = torch.zeros(1, dtype=torch.long, device=device)
        self.graph = None
        # Compiled once per decoder; dynamic=False: the step's shapes never change, so no recompiles.
        self.step_forward = (
            torch.compile(self.forward, mode=compile_mode, fullgraph=True, dynamic=False) if compile_mode else self.forward
        )
        if compile_mode:
            import torch._inductor.config as inductor_config

            # Global, read when the step is first compiled (in capture): set per decoder, before that.
            inductor_config.coordinate_descent_tuning = "cdt" in options

    def _norm(self, x, weight):
        variance = x.float().pow(2).mean(-1, keepdim=True)
        return (x.float() * torch.rsqrt(variance + self.eps)).to(x.dtype) * weight

    @staticmethod
    def _rotate(x):
        half = x.shape[-1] // 2
        return torch.cat([-x[..., half:], x[..., :half]], dim=-1)

    def _linear(self, h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """h (B, T, K) @ weight.T; one row with "gemv": a float32 multiply-sum Inductor generates and fuses itself."""
        if "gemv" in self.options and h.shape[0] * h.shape[1] == 1:
            return (h[..., None, :].float() * weight.float()).sum(-1).to(h.dtype)
        return h @ weight.t()

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) at positions (T,) -> logits of the last position (B, vocab); fills the cache."""
        batch, steps = tokens.shape
        x = F.embedding(tokens, self.embed)
        cos = self.cos.index_select(0, positions)[None, None]
        sin = self.sin.index_select(0, positions)[None, None]
        allowed = self.key_positions[None, :] <= positions[:, None]  # (T, L)
        mask = torch.zeros(allowed.shape, dtype=x.dtype, device=x.device).masked_fill(~allowed, float("-inf"))
        q_size, kv_size = self.heads * self.head_dim, self.kv_heads * self.head_dim
        for index, layer in enumerate(self.layers):
            h = self._norm(x, layer["norm1"])
            q, k, v = self._linear(h, layer["qkv"]).split([q_size, kv_size, kv_size], dim=-1)
            q = q.view(batch, steps, self.heads, self.head_dim).transpose(1, 2)
            k = k.view(batch, steps, self.kv_heads, self.head_dim).transpose(1, 2)
            v = v.view(batch, steps, self.kv_heads, self.head_dim).transpose(1, 2)
            q = q * cos + self._rotate(q) * sin
            k = k * cos + self._rotate(k) * sin
            self.cache_k[index].index_copy_(2, positions, k)
            self.cache_v[index].index_copy_(2, positions, v)
            if "mm" in self.options:
                attended = self._attend(q, self.cache_k[index], self.cache_v[index], mask)
            else:
                attended = F.scaled_dot_product_attention(
                    q, self.cache_k[index], self.cache_v[index], attn_mask=mask, enable_gqa=True,
                    scale=1.0 / math.sqrt(self.head_dim),
                )
            x = x + self._linear(attended.transpose(1, 2).reshape(batch, steps, q_size), layer["o"])
            h = self._norm(x, layer["norm2"])
            gate, up = self._linear(h, layer["gate_up"]).chunk(2, dim=-1)
            x = x + self._linear(F.silu(gate) * up, layer["down"])
        return self._linear(self._norm(x[:, -1:], self.final_norm), self.lm_head)[:, 0]

    def _attend(self, q, keys, values, mask):
        """Grouped-query attention as matmuls: q (B, H, T, D), keys/values (B, KV, L, D), mask (T, L)."""
        batch, heads, steps, dim = q.shape
        group = heads // self.kv_heads
        q = q.reshape(batch, self.kv_heads, group * steps, dim)
        scores = (q @ keys.transpose(-1, -2)).float() / math.sqrt(dim)
        scores = scores.view(batch, self.kv_heads, group, steps, -1) + mask.float()
        weights = scores.softmax(-1).to(values.dtype).view(batch, self.kv_heads, group * steps, -1)
        return (weights @ values).view(batch, heads, steps, dim)

    def _step(self):
        logits = self.step_forward(self.token[:, None], self.position)
        self.token.copy_(logits.argmax(-1))
        self.position.add_(1)

    def capture(self):
        """Captures one greedy decode step (reads token/position, writes the next token, advances position)."""
        saved = [c.clone() for c in self.cache_k + self.cache_v], self.token.clone(), self.position.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self._step()
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self._step()
        for target, source in zip(self.cache_k + self.cache_v, saved[0]):
            target.copy_(source)
        self.token.copy_(saved[1])
        self.position.copy_(saved[2])

    @torch.no_grad()
    def generate(self, prompts: torch.Tensor, new_tokens: int) -> torch.Tensor:
        """Greedy: prefill eagerly, then new_tokens - 1 graph replays (or eager steps without a graph)."""
        length = prompts.shape[1]
        positions = torch.arange(length, device=prompts.device)
        logits = self.forward(prompts, positions)
        self.token.copy_(logits.argmax(-1))
        self.position.fill_(length)
        out = [self.token.clone()]
        for _ in range(new_tokens - 1):
            if self.graph is not None:
                self.graph.replay()
            else:
                self._step()
            out.append(self.token.clone())
        return torch.stack(out, dim=1)


def check(compile_mode: str | None = None) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config).eval()
    prompts = torch.randint(0, 300, (3, 7))
    with torch.no_grad():
        theirs = model.generate(prompts, attention_mask=torch.ones_like(prompts), max_new_tokens=8, min_new_tokens=8,
                                do_sample=False, pad_token_id=0)[:, 7:]
        # Batch 3 and batch 1 (the "gemv" option changes only batch-1 steps).
        ours = StaticLlama(model, batch=3, max_len=32, compile_mode=compile_mode).generate(prompts, 8)
        single = StaticLlama(model, batch=1, max_len=32, compile_mode=compile_mode).generate(prompts[:1], 8)
        ours_single_equal = bool(torch.equal(single, theirs[:1]))
        full = model(torch.cat([prompts, theirs[:, :-1]], 1)).logits[:, -1]
        decoder2 = StaticLlama(model, batch=3, max_len=32)
        decoder2.forward(torch.cat([prompts, theirs[:, :-2]], 1), torch.arange(7 + 6))
        step = decoder2.forward(theirs[:, -2:-1], torch.tensor([13]))
    error = (step - full).norm() / full.norm()
    print({"tokens_equal": bool(torch.equal(ours, theirs)), "batch1_tokens_equal": ours_single_equal,
           "relative_logit_error": float(error), "compile": compile_mode})
    assert torch.equal(ours, theirs) and ours_single_equal and error < 1e-5


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--compile", default=None, help="torch.compile mode for the decode step (e.g. default)")
    arguments = parser.parse_args()
    if arguments.check:
        check(arguments.compile)
