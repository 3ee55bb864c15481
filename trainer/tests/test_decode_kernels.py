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
    assert "wrong layer: after the first layer, max |difference| 10" in out
    assert "wrong choice: greedy choice differs" in out
