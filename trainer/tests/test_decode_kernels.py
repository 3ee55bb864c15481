"""The Triton decode step (trainer/decode_kernels.py, WEFT_TORCH_COMPILE=triton) against the engine's PyTorch step, in
Triton's interpreter on CPU (float32): the same kernels the H200 runs compiled (bench/device/torch_engine.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from trainer.tests.conftest import REPOSITORY_ROOT


def run_interpreted(code: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPOSITORY_ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, TRITON_INTERPRET="1"),
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def test_the_triton_step_decodes_what_the_pytorch_step_decodes():
    out = run_interpreted("from trainer.decode_kernels import check; check()")
    assert "'max_abs_logit_diff'" in out


def test_every_kernel_config_compiles_for_hopper_without_a_gpu():
    """What the H200 compiles at autotuning, compiled here for compute capability 9.0: Triton's compiler rejects
    kernels the interpreter runs (a loop-carried value changing shape cost a device call in session 10)."""
    completed = subprocess.run(
        [sys.executable, "-m", "trainer.decode_kernels", "--compile-only"], cwd=REPOSITORY_ROOT, capture_output=True,
        text=True, timeout=600, env={key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "compiled 126 kernels" in completed.stdout


def test_the_fused_argmax_picks_what_torch_argmax_picks():
    """The head's fused argmax (packed atomic max) on negative logits, ties (the first row wins, as in torch.argmax),
    a maximum in the last partial row block; the token and column advance and the packed best resets."""
    out = run_interpreted(
        """
import torch
from trainer.decode_kernels import _gemv, _take_best
cases = [
    [-3.0, -1.5, -7.0, -1.5, -2.0, -9.0, -1.5],
    [0.5, 2.0, -1.0, 2.0, 2.0, 0.0, 1.0, 1.5, 2.0],
    [1.0, 0.0, -0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 3.25],
]
for logits in cases:
    rows = len(logits)
    weight = torch.zeros(rows, 16)
    weight[:, 0] = torch.tensor(logits)
    x = torch.zeros(16); x[0] = 1.0
    out = torch.empty(rows)
    best = torch.full((1,), torch.iinfo(torch.int64).min, dtype=torch.int64)
    token, column = torch.zeros(1, dtype=torch.long), torch.tensor([41])
    _gemv[lambda meta: ((rows + meta["BLOCK_N"] - 1) // meta["BLOCK_N"],)](
        x, x, weight, out, best, rows, 16, 0, 1e-6, NORM=False, MODE=0, PDL=False)
    _take_best[(1,)](best, token, column, PDL=False)
    print(int(token), int(torch.tensor(logits).argmax()), int(column), int(best) == torch.iinfo(torch.int64).min)
"""
    )
    lines = [line.split() for line in out.strip().splitlines()]
    assert len(lines) == 3
    for got, expected, column, reset in lines:
        assert (got, column, reset) == (expected, "42", "True")


def test_the_engine_check_accepts_the_kernels_and_catches_a_wrong_step():
    out = run_interpreted(
        """
from trainer.decode_engine import LlamaWeights, StaticDecoder
from trainer.decode_kernels import TritonStep, tiny_llama

decoder = StaticDecoder(LlamaWeights(tiny_llama(), 64), 1, 64, "off")
step = TritonStep(decoder)
print("right:", decoder._disagreement(step))

class WrongLayer:  # a kernel that gets the first layer wrong
    def __init__(self, step):
        self.step = step
    def __call__(self):
        self.step()
    def run(self, layers=None):
        self.step.run(layers)
        self.step.x[0] += 10.0
    x = property(lambda self: self.step.x)

class WrongChoice(WrongLayer):  # right first layer, wrong head: picks the token PyTorch ranks last
    def run(self, layers=None):
        self.step.run(layers)
    def __call__(self):
        self.step()
        self.logits = self.step.logits.clone()
        self.logits[int(self.logits.argmin())] += 1000.0

print("wrong layer:", decoder._disagreement(WrongLayer(step)))
print("wrong choice:", decoder._disagreement(WrongChoice(step)))
"""
    )
    assert "right: None" in out
    assert "wrong layer: after the first layer, max |difference| to float32 10" in out
    assert "wrong choice: greedy choice differs" in out


def test_the_engine_check_allows_bfloat16_rounding_and_no_more():
    """In bfloat16 the first layer's tolerance is PyTorch's own rounding error against float32 (times 3): a step that
    rounds like PyTorch passes (on the H200 a fixed 2% bound rejected the right kernels on the 1.1B model); one off by
    five times that rounding is caught."""
    import torch

    from trainer.decode_engine import LlamaWeights, StaticDecoder
    from trainer.decode_kernels import tiny_llama

    decoder = StaticDecoder(LlamaWeights(tiny_llama(dtype=torch.bfloat16), 64), 1, 64, "off")

    class PyTorchStep:  # the decoder's own bfloat16 step, standing where the kernels would
        off_by = 0.0

        def run(self, layers=None):
            position = (decoder.column - decoder.padding)[:, None]
            self.x = decoder.forward(decoder.token[:, None], decoder.column, position, layers=1)[0, -1]
            if self.off_by:
                rounding = (self.x.float() - decoder._first_layer_float32(position)).abs().max()
                self.x = self.x.clone()
                self.x[0] += self.off_by * rounding

        def __call__(self):
            position = (decoder.column - decoder.padding)[:, None]
            self.logits = decoder.forward(decoder.token[:, None], decoder.column, position)[0]

    assert decoder._disagreement(PyTorchStep()) is None
    perturbed = PyTorchStep()
    perturbed.off_by = 5.0
    problem = decoder._disagreement(perturbed)
    assert problem is not None and problem.startswith("after the first layer, max |difference| to float32")
