"""Batch-1 decode step of a Llama model as five Triton kernels per layer (WEFT_TORCH_COMPILE=triton), for the PyTorch
decode engine (trainer/decode_engine.py) on CUDA.

torch.compile's step runs ~12 kernels per layer (issue #20's profile: 269 per step on the 1.1B model), most of them
tiny: each costs a launch and a ramp to full memory bandwidth, which at batch 1 is most of the step. Here a layer is
    1. RMSNorm + q/k/v projection + rotary embedding + key/value cache write      (norm_qkv_rope)
    2. attention of every query head over its cache columns                      (attend)
    3. o projection + residual add                                               (gemv, residual)
    4. RMSNorm + gate/up projection + SiLU(gate) * up                            (gemv, norm + silu pair)
    5. down projection + residual add                                            (gemv, residual)
and the head is RMSNorm + the vocabulary projection (float32 logits) with the argmax folded in (a packed atomic max),
then one tiny kernel that takes the token and advances the column. Matrix-vector products read each weight once,
accumulate in float32 and round where PyTorch's bfloat16 path rounds (the projection outputs, the normalised input,
the SiLU product), so tokens follow the compiled path's up to near-ties.

On Hopper (compute capability 9) the kernels use programmatic dependent launch (PDL; WEFT_TRITON_PDL=0 turns it
off): each is launched while the one before still runs, loads what does not depend on it (its first weight tile;
attention: the key/value columns before the current one), then waits on the device for that kernel's writes.

Kernels are autotuned per shape on their first call (outside CUDA-graph capture: the engine warms up first).
`python -m trainer.decode_kernels` compares decode steps with the engine's PyTorch step (CPU: Triton's interpreter,
TRITON_INTERPRET=1, float32); `--compile-only` compiles every kernel and config for compute capability 9.0 without
a GPU.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

# BLOCK_N rows per program, BLOCK_K columns per loop step; PRE_K: the width of the first tile, whose weights are loaded
# before the program waits for the kernel before it (with programmatic dependent launch they stream in while that
# kernel finishes; without it, a wide first tile is more bytes in flight at the start).
_GEMV_CONFIGS = [
    triton.Config({"BLOCK_N": n, "BLOCK_K": k, "PRE_K": pre}, num_warps=w, num_stages=s)
    for n, k, pre, w, s in [
        (4, 512, 512, 4, 3), (8, 256, 256, 4, 3), (8, 512, 512, 4, 3), (8, 512, 512, 8, 3), (16, 256, 256, 4, 3),
        (16, 512, 512, 8, 3), (4, 1024, 1024, 4, 2), (2, 1024, 1024, 4, 3), (8, 1024, 1024, 8, 2),
        (4, 512, 2048, 4, 3), (8, 512, 2048, 8, 3), (8, 512, 1024, 4, 3), (16, 512, 1024, 8, 3),
        (2, 1024, 4096, 4, 3), (4, 1024, 4096, 8, 2),
    ]
]
_INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
if _INTERPRET:  # the interpreter runs every config the same way: keep one, a first tile and a loop on tiny models
    _GEMV_CONFIGS = [triton.Config({"BLOCK_N": 4, "BLOCK_K": 16, "PRE_K": 32}, num_warps=4, num_stages=3)]


@triton.jit
def _pdl_start(PDL: tl.constexpr):
    """With programmatic dependent launch (PDL): wait until the kernel before has finished and its writes are
    visible (this kernel was launched while it ran), then let the next kernel launch early in turn."""
    if PDL:
        tl.extra.cuda.gdc_wait()
        tl.extra.cuda.gdc_launch_dependents()


@triton.jit
def _input_chunk(x_ptr, norm_ptr, cols, K, NORM: tl.constexpr):
    """The input's columns `cols` in float32 (times the norm weight when NORM) and their squares' contribution."""
    value = tl.load(x_ptr + cols, mask=cols < K, other=0.0).to(tl.float32)
    square = value * value
    if NORM:
        value = value * tl.load(norm_ptr + cols, mask=cols < K, other=0.0).to(tl.float32)
    return value, square


@triton.jit
def _row_dots(w_ptr, rows, cols, K, value, mask):
    """W[rows, cols] . value for a tile of rows (row-major W with K columns), in float32."""
    weight = tl.load(w_ptr + rows[:, None] * K + cols[None, :], mask=mask, other=0.0)
    return tl.sum(weight.to(tl.float32) * value[None, :], axis=1)


@triton.jit
def _pack_best(value, index):
    """A logit and its row as one int64 whose signed order is (value, then lower row first): the float's bits made
    order-preserving as an int32 in the high half, 0xFFFFFFFF - row in the low half. atomic_max of these over all
    programs leaves torch.argmax's choice (the first row of the largest value)."""
    bits = value.to(tl.int32, bitcast=True)
    key = tl.where(bits < 0, bits ^ 0x7FFFFFFF, bits).to(tl.int64)
    return (key << 32) | (tl.full([], 0xFFFFFFFF, tl.int64) - index.to(tl.int64))


@triton.jit
def _take_best(best_ptr, token_ptr, column_ptr, PDL: tl.constexpr):
    """The step's end: the greedy token from the packed best (_pack_best) into token_ptr, the column advanced, the
    packed best reset for the next step."""
    _pdl_start(PDL)
    packed = tl.load(best_ptr)
    low = tl.full([], 0xFFFFFFFF, tl.int64)
    tl.store(token_ptr, low - (packed & low))
    tl.store(column_ptr, tl.load(column_ptr) + 1)
    tl.store(best_ptr, tl.full([], -9223372036854775808, tl.int64))


def _prefetch_configs(configs, named_args, **kwargs):
    """Configs whose first tile (PRE_K columns of BLOCK_N rows, twice for two-matrix kernels) fits in registers (at most
    128 16-bit weights a thread) and is no wider than the input. WEFT_TRITON_PREFETCH=0 keeps first tiles of one loop
    step only (a benchmark's baseline: bench/device/torch_engine.py --compile triton:nopre)."""
    K = kwargs.get("K", named_args.get("K"))
    tiles = 2 if kwargs.get("MODE", named_args.get("MODE", 2)) == 2 else 1
    wide = os.environ.get("WEFT_TRITON_PREFETCH", "1") != "0"
    kept = [config for config in configs
            if (wide or config.kwargs["PRE_K"] == config.kwargs["BLOCK_K"])
            and config.kwargs["PRE_K"] <= max(triton.next_power_of_2(K), config.kwargs["BLOCK_K"])
            and tiles * config.kwargs["BLOCK_N"] * config.kwargs["PRE_K"] <= 128 * 32 * config.num_warps]
    return kept or configs[:1]


# restore_value: autotuning runs the kernel many times; the in-place residual add must not accumulate (nor the best
# logit: harmless, as the maximum of equal values, but restored all the same).
@triton.autotune(configs=_GEMV_CONFIGS, key=["N", "K", "MODE", "NORM"], restore_value=["out_ptr", "best_ptr"],
                 prune_configs_by={"early_config_prune": _prefetch_configs})
@triton.jit
def _gemv(x_ptr, norm_ptr, w_ptr, out_ptr, best_ptr, N, K, pair_offset, eps,
          NORM: tl.constexpr, MODE: tl.constexpr, PDL: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
          PRE_K: tl.constexpr):
    """out[rows] = W[rows] . input, input = x or RMSNorm(x) * norm (NORM; one pass: the dot products are scaled by
    1/rms at the end). MODE 0: out = product (out's dtype: float32 logits); MODE 1: out += product (the residual
    stream, in place); MODE 2: out = SiLU(W[r].in) * W[r + pair_offset].in (gate and up halves of one matrix).
    MODE 0 also folds its rows' largest logit into best_ptr (see _pack_best): the greedy token without a separate
    argmax over the logits. The weights of the first PRE_K columns are loaded before waiting for the kernel before
    (they do not depend on it)."""
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_mask = rows < N
    first = tl.arange(0, PRE_K)
    first_mask = row_mask[:, None] & (first[None, :] < K)
    weight = tl.load(w_ptr + rows[:, None] * K + first[None, :], mask=first_mask, other=0.0)
    if MODE == 2:
        weight2 = tl.load(w_ptr + (rows + pair_offset)[:, None] * K + first[None, :], mask=first_mask, other=0.0)
    else:
        weight2 = weight
    _pdl_start(PDL)
    value, square = _input_chunk(x_ptr, norm_ptr, first, K, NORM)
    squares = tl.sum(square, axis=0)
    acc = tl.sum(weight.to(tl.float32) * value[None, :], axis=1)
    acc2 = tl.sum(weight2.to(tl.float32) * value[None, :], axis=1)
    for start in range(PRE_K, K, BLOCK_K):
        cols = start + tl.arange(0, BLOCK_K)
        chunk, chunk_square = _input_chunk(x_ptr, norm_ptr, cols, K, NORM)
        squares += tl.sum(chunk_square, axis=0)
        mask = row_mask[:, None] & (cols[None, :] < K)
        acc += _row_dots(w_ptr, rows, cols, K, chunk, mask)
        if MODE == 2:
            acc2 += _row_dots(w_ptr, rows + pair_offset, cols, K, chunk, mask)
    if NORM:
        scale = 1.0 / tl.sqrt(squares / K + eps)
        acc = acc * scale
        acc2 = acc2 * scale
    dtype = w_ptr.dtype.element_ty
    if MODE == 0:
        tl.store(out_ptr + rows, acc.to(out_ptr.dtype.element_ty), mask=row_mask)
        logits = tl.where(row_mask, acc.to(out_ptr.dtype.element_ty).to(tl.float32), float("-inf"))
        packed = _pack_best(tl.max(logits, axis=0), tl.program_id(0) * BLOCK_N + tl.argmax(logits, axis=0))
        if packed > tl.load(best_ptr, volatile=True):  # most programs see a larger value already there: no atomic
            tl.atomic_max(best_ptr, packed)
    elif MODE == 1:
        residual = tl.load(out_ptr + rows, mask=row_mask, other=0.0).to(tl.float32)
        tl.store(out_ptr + rows, (residual + acc.to(dtype).to(tl.float32)).to(dtype), mask=row_mask)
    else:
        gate = acc.to(dtype).to(tl.float32)
        up = acc2.to(dtype).to(tl.float32)
        silu = (gate / (1.0 + tl.exp(-gate))).to(dtype).to(tl.float32)
        tl.store(out_ptr + rows, (silu * up).to(dtype), mask=row_mask)


def _rope_configs(configs, named_args, **kwargs):
    """Row blocks must fit in half a head (the rotary pairs i, i + HALF are in one program); two first tiles."""
    half = kwargs.get("HALF", named_args.get("HALF"))
    kept = [config for config in _prefetch_configs(configs, named_args, MODE=2, **kwargs)
            if config.kwargs["BLOCK_N"] <= half and half % config.kwargs["BLOCK_N"] == 0]
    return kept or [triton.Config({"BLOCK_N": 1, "BLOCK_K": 256, "PRE_K": 256}, num_warps=4)]


@triton.autotune(configs=_GEMV_CONFIGS, key=["K", "HALF"], prune_configs_by={"early_config_prune": _rope_configs})
@triton.jit
def _norm_qkv_rope(x_ptr, norm_ptr, w_ptr, cos_ptr, sin_ptr, column_ptr, q_ptr, k_cache_ptr, v_cache_ptr,
                   K, eps, heads, kv_heads, cache_length,
                   HALF: tl.constexpr, PDL: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                   PRE_K: tl.constexpr):
    """One program: BLOCK_N rows of the first half of one q/k/v head and the matching rows of its second half, so the
    rotary embedding (pairs i, i + HALF) is applied here. q goes to q_ptr; k and v into the caches at the column.
    The weights of the first PRE_K columns are loaded before waiting for the kernel before."""
    blocks = HALF // BLOCK_N
    head = tl.program_id(0) // blocks
    within = (tl.program_id(0) % blocks) * BLOCK_N + tl.arange(0, BLOCK_N)
    rows_a = head * 2 * HALF + within
    rows_b = rows_a + HALF
    first = tl.arange(0, PRE_K)
    first_mask = first[None, :] < K
    weight_a = tl.load(w_ptr + rows_a[:, None] * K + first[None, :], mask=first_mask, other=0.0)
    weight_b = tl.load(w_ptr + rows_b[:, None] * K + first[None, :], mask=first_mask, other=0.0)
    _pdl_start(PDL)
    value, square = _input_chunk(x_ptr, norm_ptr, first, K, True)
    squares = tl.sum(square, axis=0)
    acc_a = tl.sum(weight_a.to(tl.float32) * value[None, :], axis=1)
    acc_b = tl.sum(weight_b.to(tl.float32) * value[None, :], axis=1)
    for start in range(PRE_K, K, BLOCK_K):
        cols = start + tl.arange(0, BLOCK_K)
        chunk, chunk_square = _input_chunk(x_ptr, norm_ptr, cols, K, True)
        squares += tl.sum(chunk_square, axis=0)
        col_mask = cols[None, :] < K
        acc_a += _row_dots(w_ptr, rows_a, cols, K, chunk, col_mask)
        acc_b += _row_dots(w_ptr, rows_b, cols, K, chunk, col_mask)
    scale = 1.0 / tl.sqrt(squares / K + eps)
    dtype = w_ptr.dtype.element_ty
    a = (acc_a * scale).to(dtype).to(tl.float32)
    b = (acc_b * scale).to(dtype).to(tl.float32)
    column = tl.load(column_ptr)
    if head < heads + kv_heads:  # q and k get the rotary embedding at the token's position (= column at batch 1)
        cos = tl.load(cos_ptr + column * 2 * HALF + within).to(tl.float32)
        sin = tl.load(sin_ptr + column * 2 * HALF + within).to(tl.float32)
        rotated_a = (a * cos).to(dtype).to(tl.float32) - (b * sin).to(dtype).to(tl.float32)
        rotated_b = (b * cos).to(dtype).to(tl.float32) + (a * sin).to(dtype).to(tl.float32)
        a, b = rotated_a, rotated_b
    if head < heads:
        tl.store(q_ptr + head * 2 * HALF + within, a.to(dtype))
        tl.store(q_ptr + head * 2 * HALF + HALF + within, b.to(dtype))
    else:
        kv = head - heads
        cache = k_cache_ptr
        if kv >= kv_heads:
            kv = kv - kv_heads
            cache = v_cache_ptr
        base = (kv * cache_length + column) * 2 * HALF
        tl.store(cache + base + within, a.to(dtype))
        tl.store(cache + base + HALF + within, b.to(dtype))


@triton.jit
def _attend(q_ptr, k_cache_ptr, v_cache_ptr, out_ptr, column_ptr, cache_length, scale, group,
            PDL: tl.constexpr, D: tl.constexpr, BLOCK_L: tl.constexpr):
    """One program per query head: softmax(q . k / sqrt(D)) over cache columns 0..column, times v (online softmax).
    The first BLOCK_L columns' keys and values are loaded before waiting for the kernel before, which writes only
    the current column (patched in after the wait); the column index itself changes only at the end of the step."""
    head = tl.program_id(0)
    kv = head // group
    column = tl.load(column_ptr)
    dims = tl.arange(0, D)
    cols = tl.arange(0, BLOCK_L)
    older = cols < column
    offsets = (kv * cache_length + cols[:, None]) * D + dims[None, :]
    keys = tl.load(k_cache_ptr + offsets, mask=older[:, None], other=0.0)
    values = tl.load(v_cache_ptr + offsets, mask=older[:, None], other=0.0)
    _pdl_start(PDL)
    q = tl.load(q_ptr + head * D + dims).to(tl.float32)
    current = (kv * cache_length + column) * D + dims
    is_current = (cols == column)[:, None]
    keys = tl.where(is_current, tl.load(k_cache_ptr + current)[None, :], keys).to(tl.float32)
    values = tl.where(is_current, tl.load(v_cache_ptr + current)[None, :], values).to(tl.float32)
    valid = cols <= column
    scores = tl.where(valid, tl.sum(keys * q[None, :], axis=1) * scale, float("-inf"))
    best = tl.max(scores, axis=0)
    probabilities = tl.where(valid, tl.exp(scores - best), 0.0)
    total = tl.sum(probabilities, axis=0)
    acc = tl.sum(probabilities[:, None] * values, axis=0)
    for start in range(BLOCK_L, column + 1, BLOCK_L):
        block = start + tl.arange(0, BLOCK_L)
        in_range = block <= column
        block_offsets = (kv * cache_length + block[:, None]) * D + dims[None, :]
        block_keys = tl.load(k_cache_ptr + block_offsets, mask=in_range[:, None], other=0.0).to(tl.float32)
        block_scores = tl.where(in_range, tl.sum(block_keys * q[None, :], axis=1) * scale, float("-inf"))
        new_best = tl.maximum(best, tl.max(block_scores, axis=0))
        block_probabilities = tl.where(in_range, tl.exp(block_scores - new_best), 0.0)
        correction = tl.exp(best - new_best)
        block_values = tl.load(v_cache_ptr + block_offsets, mask=in_range[:, None], other=0.0).to(tl.float32)
        total = total * correction + tl.sum(block_probabilities, axis=0)
        acc = acc * correction + tl.sum(block_probabilities[:, None] * block_values, axis=0)
        best = new_best
    tl.store(out_ptr + head * D + dims, (acc / total).to(out_ptr.dtype.element_ty))


def _grid_rows(rows):
    return lambda meta: (triton.cdiv(rows, meta["BLOCK_N"]),)


class TritonStep:
    """The batch-1 decode step of a StaticDecoder (trainer/decode_engine.py) as Triton kernels: reads its token and
    column, writes its caches, the next token and the next column, like StaticDecoder._decode_step."""

    def __init__(self, decoder):
        w = decoder.w
        if decoder.batch != 1:
            raise ValueError("the Triton decode step serves batch 1 only")
        if w.head_dim % 2 or (w.head_dim // 2) % 2:
            raise ValueError(f"head dimension {w.head_dim} is not supported by the Triton step")
        self.d = decoder
        hidden = w.embed.shape[1]
        device, dtype = w.device, w.dtype
        self.hidden = hidden
        self.x = torch.empty(hidden, dtype=dtype, device=device)
        self.q = torch.empty(w.heads * w.head_dim, dtype=dtype, device=device)
        self.attended = torch.empty(w.heads * w.head_dim, dtype=dtype, device=device)
        self.intermediate = w.layers[0]["down"].shape[1]
        self.act = torch.empty(self.intermediate, dtype=dtype, device=device)
        self.logits = torch.empty(w.lm_head.shape[0], dtype=torch.float32, device=device)
        # The head's largest logit and its row, packed (_pack_best); reset by _take_best at the end of each step.
        self.best = torch.full((1,), torch.iinfo(torch.int64).min, dtype=torch.int64, device=device)
        self.block_l = 64 if w.head_dim >= 128 else 128
        # Programmatic dependent launch (Hopper and later): each kernel is launched while the one before still runs,
        # loads the weights of its first tile, then waits on the device for that kernel's writes. On by default
        # (session 10, H200: 1,089 / 1,125 tokens/s against 1,056 without); WEFT_TRITON_PDL=0 turns it off.
        self.pdl = (os.environ.get("WEFT_TRITON_PDL", "1") != "0" and device.type == "cuda"
                    and torch.cuda.get_device_capability(device)[0] >= 9)

    def __call__(self):
        self.run()

    def run(self, layers: int | None = None):
        """The step; with `layers`, only the embedding and that many layers (self.x then holds the residual stream),
        for checking the kernels without the error growth of a whole deep model."""
        d, w = self.d, self.d.w
        hidden, eps = self.hidden, w.eps
        launch = dict(PDL=self.pdl, launch_pdl=self.pdl) if self.pdl else dict(PDL=False)
        torch.index_select(w.embed, 0, d.token, out=self.x.view(1, -1))
        qkv_heads = w.heads + 2 * w.kv_heads
        half = w.head_dim // 2
        for index, layer in enumerate(w.layers[:layers]):
            k_cache, v_cache = d.cache_k[index], d.cache_v[index]
            _norm_qkv_rope[lambda meta: (qkv_heads * (half // meta["BLOCK_N"]),)](
                self.x, layer["norm1"], layer["qkv"], w.cos, w.sin, d.column, self.q, k_cache, v_cache,
                hidden, eps, w.heads, w.kv_heads, d.length, HALF=half, **launch,
            )
            _attend[(w.heads,)](
                self.q, k_cache, v_cache, self.attended, d.column, d.length, 1.0 / (w.head_dim ** 0.5),
                w.heads // w.kv_heads, D=w.head_dim, BLOCK_L=self.block_l, **launch,
            )
            _gemv[_grid_rows(hidden)](self.attended, self.attended, layer["o"], self.x, self.best, hidden,
                                      w.heads * w.head_dim, 0, eps, NORM=False, MODE=1, **launch)
            _gemv[_grid_rows(self.intermediate)](self.x, layer["norm2"], layer["gate_up"], self.act, self.best,
                                                 self.intermediate, hidden, self.intermediate, eps, NORM=True, MODE=2,
                                                 **launch)
            _gemv[_grid_rows(hidden)](self.act, self.act, layer["down"], self.x, self.best, hidden, self.intermediate,
                                      0, eps, NORM=False, MODE=1, **launch)
        if layers is not None:
            return
        vocab = w.lm_head.shape[0]
        _gemv[_grid_rows(vocab)](self.x, w.final_norm, w.lm_head, self.logits, self.best, vocab, hidden, 0, eps,
                                 NORM=True, MODE=0, **launch)
        _take_best[(1,)](self.best, d.token, d.column, **launch)


def tiny_llama(device: str = "cpu", dtype: torch.dtype = torch.float32):
    """A 2-layer random Llama (head dimension 16, grouped KV heads) with logits of a few units, for the checks."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(3.0)
    return model.to(device=device, dtype=dtype)


def check(dtype: torch.dtype = torch.float32) -> dict:
    """Decode steps of the Triton kernels against the engine's PyTorch step, in lockstep from one prefill, on a tiny
    random Llama: logits and tokens at every step."""
    from trainer.decode_engine import LlamaWeights, StaticDecoder

    device = "cuda" if torch.cuda.is_available() and not _INTERPRET else "cpu"
    weights = LlamaWeights(tiny_llama(device, dtype), 64)
    prompt = [5, 17, 42, 9, 100, 7, 3]
    reference, kernels = StaticDecoder(weights, 1, 64, "off"), StaticDecoder(weights, 1, 64, "off")
    step = TritonStep(kernels)
    step.block_l = 4  # attention tiles of 4 columns: the first (loaded before the wait) and the loop after it both run
    worst, tokens = 0.0, []
    with torch.no_grad():
        reference.prefill([prompt], 0)
        kernels.prefill([prompt], 0)
        for _ in range(8):
            logits = reference.forward(reference.token[:, None], reference.column, reference.column[:, None])
            reference.token.copy_(logits.argmax(-1))
            reference.column.add_(1)
            step()
            worst = max(worst, float((step.logits - logits[0]).abs().max()))
            tokens.append((int(reference.token[0]), int(kernels.token[0])))
    result = {"dtype": str(dtype), "device": device, "max_abs_logit_diff": worst, "tokens (pytorch, triton)": tokens}
    print(result, flush=True)
    if dtype == torch.float32:
        assert all(a == b for a, b in tokens) and worst < 1e-3, (worst, tokens)
    return result


def compile_for(capability: int = 90) -> int:
    """Compiles every kernel in every autotuning config for a CUDA GPU of this compute capability (default: Hopper,
    the H100/H200), with PDL on and off, without a GPU (Triton's bundled ptxas): front-end and register-allocation
    errors show here, not on the device. Returns the number of kernels compiled."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    target = GPUTarget("cuda", capability, 32)
    count = 0

    def build(fn, signature, constexprs, config):
        nonlocal count
        constexprs = dict(constexprs, **config.kwargs)
        signature = dict(signature, **{name: "constexpr" for name in constexprs})
        source = ASTSource(fn=fn, signature=signature, constexprs=constexprs)
        triton.compile(source, target=target, options=dict(num_warps=config.num_warps, num_stages=config.num_stages))
        count += 1

    pointers = {name: "*bf16" for name in ("x_ptr", "norm_ptr", "w_ptr", "out_ptr")}
    gemv = dict(pointers, best_ptr="*i64", N="i32", K="i32", pair_offset="i32", eps="fp32")
    rope = dict(pointers, cos_ptr="*bf16", sin_ptr="*bf16", column_ptr="*i64", q_ptr="*bf16", k_cache_ptr="*bf16",
                v_cache_ptr="*bf16", K="i32", eps="fp32", heads="i32", kv_heads="i32", cache_length="i32")
    del rope["out_ptr"]
    attend = dict(q_ptr="*bf16", k_cache_ptr="*bf16", v_cache_ptr="*bf16", out_ptr="*bf16", column_ptr="*i64",
                  cache_length="i32", scale="fp32", group="i32")
    for pdl in (True, False):
        for config in _GEMV_CONFIGS:
            for mode, norm in ((0, True), (1, False), (2, True)):
                build(_gemv.fn, dict(gemv, out_ptr="*fp32" if mode == 0 else "*bf16"),
                      dict(NORM=norm, MODE=mode, PDL=pdl), config)
            build(_norm_qkv_rope.fn, rope, dict(HALF=32, PDL=pdl), config)
        build(_take_best, dict(best_ptr="*i64", token_ptr="*i64", column_ptr="*i64"), dict(PDL=pdl),
              triton.Config({}, num_warps=1))
        for head_dim, block in ((64, 128), (128, 64)):
            build(_attend, attend, dict(PDL=pdl, D=head_dim, BLOCK_L=block), triton.Config({}, num_warps=4))
    return count


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--compile-only"]:
        print(f"compiled {compile_for()} kernels for compute capability 9.0", flush=True)
        sys.exit(0)
    check()
    if torch.cuda.is_available() and not _INTERPRET:
        check(torch.bfloat16)  # reported, not asserted: bfloat16 rounding differs between kernel orders
