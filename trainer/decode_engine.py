"""weft's PyTorch decode engine (WEFT_ENGINE=torch): greedy generation for Llama-family models from the model's
Hugging Face weights (the artifact's hf/ folder), served to lib/inference/torch-engine.ts over stdin/stdout.

    python -m trainer.decode_engine --model <hf dir> [--device cpu|cuda[:n]] [--compile triton|default+cdt|default|off]

On CUDA each batch decodes with a static key/value cache, one decode step captured as a CUDA graph: at batch 1 the
step is trainer/decode_kernels.py's Triton kernels (--compile triton, the default; checked against the PyTorch step
when built), otherwise torch.compile'd (default+cdt; --compile off: eager kernels). On the H200 the 1.1B Llama decodes
at ~940-970 tokens/s at batch 1 (43-45% of the memory-bandwidth limit; weft's onnxruntime decoder: 289) and ~21,600
at batch 32 (bench/device/README.md, issue #20). On CPU it decodes eagerly in float32 (what the tests run).

Protocol: one JSON object per line. The engine first prints
    {"ready": true, "device": ..., "dtype": ..., "compile": ..., "check": {...}}
then answers each request
    {"id": 7, "prompts": [[ids], ...], "max_new_tokens": [n, ...], "eos": [ids], "pad": id}
with chunks {"id": 7, "tokens": [[row 0's new tokens], [row 1's], ...], "rows": n} (every row gets the same number
of tokens per chunk; rows past their stop or budget go on with meaningless tokens that the caller drops; n rows of
the batch were decoding) and a last line {"id": 7, "done": true, "steps": s, "prefill_ms": p, "decode_ms": d}, or
{"id": 7, "error": "..."}. Rows are left-padded into one prefill; a request stops once every row of it has produced
a stop token or used its budget. Requests read while a batch decodes join its free rows when their prompts fit
before the current cache column and their budgets before the cache's end (continuous batching); others wait for
the next batch, in arrival order.

Loading checks the decoder against transformers on the same weights (one prompt's logits, and its greedy choice
unless transformers' own top-2 gap is a near-tie) and refuses configurations it does not implement.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import queue
import sys
import threading
import time
from collections import OrderedDict, deque
from pathlib import Path

import torch
import torch.nn.functional as F

# Largest |logit difference| to transformers at load, per dtype, and the top-2 gap below which a differing greedy
# choice is a near-tie (rounding), not an error.
CHECK_TOLERANCE = {torch.float32: 1e-3, torch.bfloat16: 0.5, torch.float16: 0.25}
NEAR_TIE = {torch.float32: 1e-3, torch.bfloat16: 0.5, torch.float16: 0.25}
# Static cache lengths are rounded up to this, and batches to a power of two, so few shapes are compiled.
LENGTH_BUCKET = 256
# Decoders (caches + graphs) kept per engine, least recently used dropped first.
KEPT_DECODERS = 4


def greedy_comparison(candidate: torch.Tensor, reference: torch.Tensor) -> tuple[bool, float]:
    """Whether `candidate` logits pick the reference's greedy token, and the reference's top-1 minus top-2 gap (a
    differing pick below NEAR_TIE is rounding, not an error)."""
    top2 = reference.topk(2).values
    return int(candidate.argmax()) == int(reference.argmax()), float(top2[0] - top2[1])


class EngineError(Exception):
    """The model or a request is not something this engine runs; the message says why."""


def _log(message: str) -> None:
    print(f"[decode-engine] {message}", file=sys.stderr, flush=True)


def check_config(config) -> None:
    """Refuses what the decoder below does not implement (transformers would run it; weft would decode it wrongly)."""
    problems = []
    if getattr(config, "model_type", None) != "llama":
        problems.append(f"model_type {getattr(config, 'model_type', None)!r} (the engine implements 'llama')")
    rope = getattr(config, "rope_scaling", None) or {}
    rope_type = rope.get("rope_type", rope.get("type", "default")) if isinstance(rope, dict) else "default"
    if rope_type not in (None, "default"):
        problems.append(f"rope scaling {rope_type!r}")
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        problems.append("biases in attention or MLP")
    if getattr(config, "hidden_act", "silu") != "silu":
        problems.append(f"activation {config.hidden_act!r}")
    if problems:
        raise EngineError("WEFT_ENGINE=torch cannot run this model: " + "; ".join(problems) + ". Use WEFT_ENGINE=onnxruntime.")


class LlamaWeights:
    """A LlamaForCausalLM's weights arranged for decoding: q/k/v and gate/up concatenated, rotary tables."""

    def __init__(self, model, max_positions: int):
        config = model.config
        self.heads = config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or self.heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.eps = config.rms_norm_eps
        inner = model.model
        self.embed = inner.embed_tokens.weight
        self.final_norm = inner.norm.weight
        self.lm_head = model.lm_head.weight
        self.layers = []
        for layer in inner.layers:
            attention, mlp = layer.self_attn, layer.mlp
            self.layers.append(
                dict(
                    norm1=layer.input_layernorm.weight,
                    qkv=torch.cat([attention.q_proj.weight, attention.k_proj.weight, attention.v_proj.weight]),
                    o=attention.o_proj.weight,
                    norm2=layer.post_attention_layernorm.weight,
                    gate_up=torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]),
                    down=mlp.down_proj.weight,
                )
            )
        self.dtype, self.device = self.embed.dtype, self.embed.device
        theta = getattr(config, "rope_theta", None)
        if theta is None:
            theta = (getattr(config, "rope_parameters", None) or {}).get("rope_theta", 10000.0)
        inv = 1.0 / (theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.float32, device=self.device) / self.head_dim))
        angles = torch.outer(torch.arange(max_positions, dtype=torch.float32, device=self.device), inv)
        angles = torch.cat([angles, angles], dim=-1)
        self.cos, self.sin = angles.cos().to(self.dtype), angles.sin().to(self.dtype)


class StaticDecoder:
    """Greedy decoding of `batch` left-padded rows in a static cache of `length` columns (one per token slot)."""

    def __init__(self, weights: LlamaWeights, batch: int, length: int, compile_mode: str):
        self.w, self.batch, self.length = weights, batch, length
        shape = (batch, weights.kv_heads, length, weights.head_dim)
        device = weights.device
        self.cache_k = [torch.zeros(shape, dtype=weights.dtype, device=device) for _ in weights.layers]
        self.cache_v = [torch.zeros(shape, dtype=weights.dtype, device=device) for _ in weights.layers]
        self.columns = torch.arange(length, device=device)
        # Decode-step state, read and written in place by the captured graph.
        self.token = torch.zeros(batch, dtype=torch.long, device=device)
        self.column = torch.zeros(1, dtype=torch.long, device=device)
        self.padding = torch.zeros(batch, dtype=torch.long, device=device)
        self.graph = None
        step = self._decode_step
        if compile_mode == "triton":
            # Batch 1 on CUDA: hand-written Triton kernels (trainer/decode_kernels.py); larger batches: Inductor.
            compile_mode = "default+cdt"
            if batch == 1 and device.type == "cuda":
                from trainer.decode_kernels import TritonStep

                kernels = TritonStep(self)
                problem = self._disagreement(kernels)
                if problem is None:
                    step, compile_mode = kernels, "off"
                else:
                    _log(f"warning: the Triton decode step does not match PyTorch's on this model ({problem}); "
                         "batch 1 decodes with torch.compile instead")
        if compile_mode != "off":
            import torch._inductor.config as inductor_config

            mode, *options = compile_mode.split("+")
            inductor_config.coordinate_descent_tuning = "cdt" in options
            step = torch.compile(self._decode_step, mode=mode, fullgraph=True, dynamic=False)
        self.step = step
        if device.type == "cuda":
            self._capture()

    def _norm(self, x, weight):
        variance = x.float().pow(2).mean(-1, keepdim=True)
        return (x.float() * torch.rsqrt(variance + self.w.eps)).to(x.dtype) * weight

    @staticmethod
    def _rotate(x):
        half = x.shape[-1] // 2
        return torch.cat([-x[..., half:], x[..., :half]], dim=-1)

    def forward(self, tokens, columns, positions, layers: int | None = None, rows: slice | None = None):
        """tokens (B, T) written to cache `columns` (T,), rotary `positions` (B, T) -> last position's logits (B, V);
        with `layers`, the residual stream (B, T, hidden) after that many layers instead; with `rows`, only those
        rows of the batch (a row joining a running batch)."""
        w = self.w
        batch, steps = tokens.shape
        padding = self.padding if rows is None else self.padding[rows]
        caches_k = self.cache_k if rows is None else [cache[rows] for cache in self.cache_k]
        caches_v = self.cache_v if rows is None else [cache[rows] for cache in self.cache_v]
        x = F.embedding(tokens, w.embed)
        cos = w.cos[positions][:, None]  # (B, 1, T, D)
        sin = w.sin[positions][:, None]
        # Row b's query at column c sees keys from its first real column to c; a padding query sees itself only
        # (its output is never used, and this keeps its softmax finite).
        keys = self.columns[None, None, :]
        allowed = (keys >= padding[:, None, None]) & (keys <= columns[None, :, None])
        allowed = allowed | (keys == columns[None, :, None])
        mask = torch.zeros(allowed.shape, dtype=torch.float32, device=x.device).masked_fill(~allowed, float("-inf"))
        q_size, kv_size = w.heads * w.head_dim, w.kv_heads * w.head_dim
        group = w.heads // w.kv_heads
        for index, layer in enumerate(w.layers[:layers]):
            h = self._norm(x, layer["norm1"])
            q, k, v = (h @ layer["qkv"].t()).split([q_size, kv_size, kv_size], dim=-1)
            q = q.view(batch, steps, w.heads, w.head_dim).transpose(1, 2)
            k = k.view(batch, steps, w.kv_heads, w.head_dim).transpose(1, 2)
            v = v.view(batch, steps, w.kv_heads, w.head_dim).transpose(1, 2)
            q = q * cos + self._rotate(q) * sin
            k = k * cos + self._rotate(k) * sin
            caches_k[index].index_copy_(2, columns, k)
            caches_v[index].index_copy_(2, columns, v)
            # Grouped-query attention as two matmuls over the whole static cache (masked): one query row per step,
            # which Inductor fuses better than scaled_dot_product_attention with a mask (bench/device, session 7).
            grouped = q.reshape(batch, w.kv_heads, group * steps, w.head_dim)
            scores = (grouped @ caches_k[index].transpose(-1, -2)).float() / math.sqrt(w.head_dim)
            scores = scores.view(batch, w.kv_heads, group, steps, -1) + mask[:, None, None]
            weights = scores.softmax(-1).to(x.dtype).view(batch, w.kv_heads, group * steps, -1)
            attended = (weights @ caches_v[index]).view(batch, w.heads, steps, w.head_dim)
            x = x + attended.transpose(1, 2).reshape(batch, steps, q_size) @ layer["o"].t()
            h = self._norm(x, layer["norm2"])
            gate, up = (h @ layer["gate_up"].t()).chunk(2, dim=-1)
            x = x + (F.silu(gate) * up) @ layer["down"].t()
        if layers is not None:
            return x
        return (self._norm(x[:, -1:], w.final_norm) @ w.lm_head.t())[:, 0].float()

    @torch.no_grad()
    def _disagreement(self, step) -> str | None:
        """`step` (the Triton kernels) against this decoder's PyTorch forward, from the same prefilled cache: the
        residual stream after the first layer, measured against the same layer in float32 arithmetic, may be off by
        at most 3x PyTorch's own rounding error (and 1e-4 of its largest value); then the whole step's greedy choice,
        equal unless PyTorch's top two are a near-tie. (Over a whole deep model, rounding differences grow past any
        fixed bound, as they do between PyTorch's own bfloat16 and float32.) None when both hold; else what differs."""
        vocab = self.w.embed.shape[0]
        prompt = [(7 * index + 3) % vocab for index in range(12)]
        self.prefill([prompt], 0)
        step()  # first call: autotunes each kernel (the residual stream is restored between trials)
        self.prefill([prompt], 0)
        position = (self.column - self.padding)[:, None]
        exact = self._first_layer_float32(position)
        expected = self.forward(self.token[:, None], self.column, position, layers=1)[0, -1].float()
        step.run(layers=1)
        difference = float((step.x.float() - exact).abs().max())
        rounding = float((expected - exact).abs().max())
        tolerance = max(3 * rounding, 1e-4 * float(exact.abs().max()))
        if difference > tolerance:
            return (f"after the first layer, max |difference| to float32 {difference:.4g} (PyTorch's own "
                    f"{rounding:.4g}; tolerance {tolerance:.4g})")
        logits = self.forward(self.token[:, None], self.column, position)[0]
        step()
        same_choice, gap = greedy_comparison(step.logits, logits)
        if not same_choice and gap >= NEAR_TIE[self.w.dtype]:
            return f"greedy choice differs where PyTorch's top-2 gap is {gap:.4g}"
        _log(f"Triton decode step checked against PyTorch: first layer max |difference| to float32 {difference:.4g} "
             f"(PyTorch's own {rounding:.4g}), greedy choice {'equal' if same_choice else 'a near-tie'}")
        return None

    def _first_layer_float32(self, position) -> torch.Tensor:
        """The residual stream after the first layer for the current token, computed in float32 from the same weights
        and cache (the reference both the Triton step and PyTorch's step are measured against)."""
        w = copy.copy(self.w)
        w.embed = self.w.embed[self.token].float()  # one row: the token is looked up as index 0 below
        w.layers = [{name: tensor.float() for name, tensor in self.w.layers[0].items()}]
        w.cos, w.sin = self.w.cos.float(), self.w.sin.float()
        reference = copy.copy(self)
        reference.w = w
        reference.cache_k, reference.cache_v = [self.cache_k[0].float()], [self.cache_v[0].float()]
        return reference.forward(torch.zeros_like(self.token)[:, None], self.column, position, layers=1)[0, -1]

    def _decode_step(self):
        logits = self.forward(self.token[:, None], self.column, (self.column - self.padding)[:, None])
        self.token.copy_(logits.argmax(-1))
        self.column.add_(1)

    def _capture(self):
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.no_grad():
            for _ in range(2):  # compiles (first call) and warms up outside the capture
                self.step()
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.no_grad():
            self.step()

    @torch.no_grad()
    def prefill(self, prompts: list[list[int]], pad: int) -> torch.Tensor:
        """Left-pads the prompts into the cache (columns 0..width-1) and sets the first generated token per row;
        returns the last position's logits."""
        width = max(len(prompt) for prompt in prompts)
        device = self.token.device
        ids = torch.full((self.batch, width), pad, dtype=torch.long)
        padding = torch.full((self.batch,), width - 1, dtype=torch.long)  # unused rows: one padding token
        for row, prompt in enumerate(prompts):
            ids[row, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
            padding[row] = width - len(prompt)
        self.padding.copy_(padding.to(device))
        columns = torch.arange(width, device=device)
        positions = (columns[None, :] - self.padding[:, None]).clamp(min=0)
        logits = self.forward(ids.to(device), columns, positions)
        self.token.copy_(logits.argmax(-1))
        self.column.fill_(width)
        return logits

    @torch.no_grad()
    def join(self, slot: int, prompt: list[int], column: int) -> None:
        """Prefills one prompt into `slot` of a running batch, right-aligned to end at `column` (the next column the
        batch writes), and sets its first generated token; the other rows' cache and state are untouched."""
        device = self.token.device
        start = column - len(prompt)
        self.padding[slot] = start
        columns = torch.arange(start, column, device=device)
        positions = torch.arange(len(prompt), device=device)[None]
        ids = torch.tensor([prompt], dtype=torch.long, device=device)
        logits = self.forward(ids, columns, positions, rows=slice(slot, slot + 1))
        self.token[slot] = logits[0].argmax()

    @torch.no_grad()
    def advance(self) -> None:
        if self.graph is not None:
            self.graph.replay()
        else:
            self._decode_step()


class Engine:
    def __init__(self, model_dir: Path, device: torch.device, compile_mode: str):
        if compile_mode == "triton" and device.type == "cuda":
            import trainer.decode_kernels  # noqa: F401 -- fails here, before serving, if Triton is missing
        from transformers import AutoConfig, AutoModelForCausalLM

        config = AutoConfig.from_pretrained(str(model_dir))
        check_config(config)
        # CPU: float32 (the tests compare with float32 references). CUDA: float16 for a float16 model, else bfloat16.
        stored = str(getattr(config, "torch_dtype", None) or getattr(config, "dtype", None))
        dtype = torch.float32 if device.type == "cpu" else (
            torch.float16 if stored.endswith("float16") and not stored.endswith("bfloat16") else torch.bfloat16)
        self.device, self.dtype = device, dtype
        self.compile_mode = compile_mode if device.type == "cuda" else "off"
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype, attn_implementation="eager")
        model.to(device).eval()
        self.max_positions = config.max_position_embeddings
        self.vocab_size = config.vocab_size
        self.chunk = 8 if device.type == "cuda" else 1
        self.decoders: OrderedDict[tuple[int, int], StaticDecoder] = OrderedDict()
        self.weights = LlamaWeights(model, self.max_positions)
        self.check = self._check_against(model)
        # From here on only the weights' arrangement is kept: the model's separate q/k/v and gate/up go with it.
        del model

    @torch.no_grad()
    def _check_against(self, model) -> dict:
        """Our decoder's prompt logits vs transformers' (same weights, dtype and device), before serving anything."""
        prompt = [(7 * index + 3) % self.vocab_size for index in range(12)]
        theirs = model(torch.tensor([prompt], device=self.device)).logits[0, -1].float()
        mine = StaticDecoder(self.weights, 1, len(prompt), "off").prefill([prompt], 0)[0]
        difference = float((mine - theirs).abs().max())
        same_choice, gap = greedy_comparison(mine, theirs)
        if difference > CHECK_TOLERANCE[self.dtype] or (not same_choice and gap >= NEAR_TIE[self.dtype]):
            raise EngineError(
                f"the decoder does not match transformers on this model (max |logit difference| {difference:.4g}, "
                f"greedy choice {'equal' if same_choice else 'different'}, top-2 gap {gap:.4g}); use WEFT_ENGINE=onnxruntime"
            )
        return {"max_abs_logit_diff": difference, "same_greedy_choice": same_choice, "top2_gap": gap}

    def decoder(self, rows: int, length: int) -> StaticDecoder:
        batch = 1 << max(0, (rows - 1).bit_length())
        columns = min(self.max_positions, LENGTH_BUCKET * math.ceil(length / LENGTH_BUCKET))
        key = (batch, columns)
        if key in self.decoders:
            self.decoders.move_to_end(key)
            return self.decoders[key]
        while len(self.decoders) >= KEPT_DECODERS:
            self.decoders.popitem(last=False)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        started = time.perf_counter()
        _log(f"preparing a decoder for {batch} rows x {columns} positions (compile: {self.compile_mode})")
        decoder = StaticDecoder(self.weights, batch, columns, self.compile_mode)
        _log(f"decoder for {batch} x {columns} ready in {time.perf_counter() - started:.1f}s")
        self.decoders[key] = decoder
        return decoder

    def validate(self, request: dict) -> "_Request":
        prompts, budgets = request.get("prompts"), request.get("max_new_tokens")
        if not prompts or not isinstance(budgets, list) or len(prompts) != len(budgets):
            raise EngineError("a request needs prompts and one max_new_tokens per prompt")
        for index, (prompt, budget) in enumerate(zip(prompts, budgets)):
            if not prompt or budget < 1:
                raise EngineError(f"row {index}: an empty prompt or a budget below 1")
            if any(not 0 <= token < self.vocab_size for token in prompt):
                raise EngineError(f"row {index}: token ids must be in [0, {self.vocab_size})")
            if len(prompt) + budget > self.max_positions:
                raise EngineError(f"row {index}: {len(prompt)} prompt tokens + {budget} new exceed {self.max_positions}")
        return _Request(request.get("id"), prompts, budgets, set(request.get("eos", [])), int(request.get("pad", 0)))

    def generate(self, request: dict, emit) -> dict:
        """One request alone (what the tests call): its chunks to `emit`, its summary returned."""
        summaries = {}

        def send(message: dict) -> None:
            if message.get("done"):
                summaries["done"] = message
            elif "tokens" in message:
                emit({"tokens": message["tokens"]})

        self.run(self.validate(request), deque(), None, send)
        summary = dict(summaries["done"])
        summary.pop("id", None)
        return summary

    def serve(self, incoming: "queue.Queue[dict | None]", send) -> None:
        """Requests as they arrive: each starts a run, or joins the running one where it fits (continuous batching)."""
        waiting: deque = deque()
        while True:
            if not waiting:
                message = incoming.get()
                if message is None:
                    return
                waiting.append(message)
            message = waiting.popleft()
            if message is None:  # end of input, seen during a run
                return
            try:
                request = self.validate(message)
            except (EngineError, TypeError, ValueError) as error:
                send({"id": message.get("id"), "error": f"{type(error).__name__}: {error}"})
                continue
            self.run(request, waiting, incoming, send)

    def run(self, first: "_Request", waiting: deque, incoming, send) -> None:
        """Decodes `first`; between chunks, waiting requests join free rows of the batch when their prompts fit
        before the current column and their budgets before the cache's end (else they wait for the next run)."""
        width = max(len(prompt) for prompt in first.prompts)
        decoder = self.decoder(len(first.prompts), width + max(first.budgets))
        first.started = time.perf_counter()
        decoder.prefill(first.prompts, first.pad)
        slots: list = [None] * decoder.batch
        first.slots = list(range(len(first.prompts)))
        for slot in first.slots:
            slots[slot] = first
        column = width  # the next cache column a decode step writes (decoder.column, mirrored here)
        active = [first]
        fresh = [first]  # requests whose first token (from their prefill) is still to be sent
        while active:
            # Rows of the batch still decoding for some request: how many shared this chunk's forward passes.
            sharing = sum(len(request.slots) - sum(request.done) for request in active)
            if fresh:
                firsts = decoder.token.tolist()
                for request in fresh:
                    self._deliver(request, [[firsts[slot]] for slot in request.slots], sharing, send)
                fresh = []
            else:
                # No step past what the longest unfinished row still needs (nor past the cache's end).
                needed = max(request.budgets[row] - request.produced[row] for request in active
                             for row in range(len(request.prompts)) if not request.done[row])
                count = min(self.chunk, decoder.length - column, needed)
                chunk = []
                for _ in range(count):
                    decoder.advance()
                    chunk.append(decoder.token.clone())
                column += count
                tokens = torch.stack(chunk, dim=1).tolist()
                for request in active:
                    self._deliver(request, [tokens[slot] for slot in request.slots], sharing, send)
            for request in [request for request in active if all(request.done)]:
                active.remove(request)
                for slot in request.slots:
                    slots[slot] = None
            # Requests that arrived meanwhile join now if they fit, in arrival order.
            while incoming is not None and not incoming.empty():
                try:
                    message = incoming.get_nowait()
                except queue.Empty:
                    break
                if message is None:
                    incoming = None
                    waiting.append(None)
                    break
                waiting.append(message)
            while waiting and waiting[0] is not None:
                try:
                    request = self.validate(waiting[0])
                except (EngineError, TypeError, ValueError) as error:
                    send({"id": waiting.popleft().get("id"), "error": f"{type(error).__name__}: {error}"})
                    continue
                free = [slot for slot, owner in enumerate(slots) if owner is None]
                fits = (len(request.prompts) <= len(free) and all(len(prompt) <= column for prompt in request.prompts)
                        and column + max(request.budgets) <= decoder.length)
                if not fits:
                    break
                waiting.popleft()
                request.started = time.perf_counter()
                request.slots = free[: len(request.prompts)]
                for slot, prompt in zip(request.slots, request.prompts):
                    decoder.join(slot, prompt, column)
                    slots[slot] = request
                active.append(request)
                fresh.append(request)

    @staticmethod
    def _deliver(request: "_Request", tokens: list[list[int]], sharing: int, send) -> None:
        """Sends a request's rows' new tokens (up to each row's stop; rows already stopped get the batch's filler
        tokens, which the caller drops) with the number of rows they were decoded beside, and, once every row has
        stopped, its summary."""
        if all(request.done):
            return
        now = time.perf_counter()
        if request.first_token_at is None:
            request.first_token_at = now
        send({"id": request.id, "tokens": tokens, "rows": sharing})
        for row, row_tokens in enumerate(tokens):
            for token in row_tokens:
                if request.done[row]:
                    break
                request.produced[row] += 1
                if token in request.eos or request.produced[row] >= request.budgets[row]:
                    request.done[row] = True
        if all(request.done):
            prefill_ms = (request.first_token_at - request.started) * 1000
            send({"id": request.id, "done": True, "steps": max(request.produced), "prefill_ms": prefill_ms,
                  "decode_ms": (now - request.first_token_at) * 1000})


class _Request:
    def __init__(self, request_id, prompts, budgets, eos, pad):
        self.id, self.prompts, self.budgets, self.eos, self.pad = request_id, prompts, budgets, eos, pad
        self.slots: list[int] = []
        self.produced = [0] * len(prompts)
        self.done = [False] * len(prompts)
        self.started = 0.0
        self.first_token_at: float | None = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="Hugging Face folder (config.json, safetensors)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:n]")
    parser.add_argument("--compile", default="triton",
                        help="on CUDA: off, default, default+cdt (Inductor modes), triton (batch 1: trainer/decode_kernels.py)")
    args = parser.parse_args(argv)
    try:
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise EngineError(f"--device {args.device}, but this PyTorch sees no CUDA device")
        if args.compile not in ("off", "default", "default+cdt", "triton"):
            raise EngineError(f"--compile {args.compile}: use off, default, default+cdt or triton")
        if not (args.model / "config.json").exists():
            raise EngineError(f"{args.model} has no config.json (the model's Hugging Face folder is needed)")
        torch.set_grad_enabled(False)
        engine = Engine(args.model, device, args.compile)
    except EngineError as error:
        print(json.dumps({"ready": False, "error": str(error)}), flush=True)
        return 2
    out = sys.stdout
    out.write(json.dumps({"ready": True, "device": str(device), "dtype": str(engine.dtype).replace("torch.", ""),
                          "compile": engine.compile_mode, "check": engine.check}) + "\n")
    out.flush()

    def send(message: dict) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    # Requests are read as they come (a thread), so one arriving mid-run can join the running batch.
    incoming: queue.Queue = queue.Queue()

    def read() -> None:
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                message = json.loads(line)
                if not isinstance(message, dict):
                    raise ValueError("a request is a JSON object")
            except ValueError as error:
                send({"id": None, "error": f"{type(error).__name__}: {error}"})
                continue
            incoming.put(message)
        incoming.put(None)

    threading.Thread(target=read, daemon=True).start()
    engine.serve(incoming, send)
    return 0


if __name__ == "__main__":
    sys.exit(main())
