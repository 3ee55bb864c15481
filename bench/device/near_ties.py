"""How close the random 1.1B model's top two logits are on the first tokens of each benchmark prompt (PyTorch
fp16 greedy), to tell numerical noise from a wrong graph when another runtime's greedy tokens diverge.

    python3 bench/device/near_ties.py [--prompts 4] [--steps 4]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llama_1b import SHAPE  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    args = parser.parse_args()
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**SHAPE, tie_word_embeddings=False, bos_token_id=0, eos_token_id=1, pad_token_id=0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16).to(torch.float16).eval()
    generator = torch.Generator().manual_seed(1)
    prompts = torch.randint(5, SHAPE["vocab_size"], (32, args.prompt_tokens), generator=generator).cuda()
    for row in range(args.prompts):
        ids = prompts[row : row + 1]
        gaps = []
        with torch.no_grad():
            for _ in range(args.steps):
                logits = model(ids).logits[0, -1].float()
                top = torch.topk(logits, 2)
                gaps.append(round(float(top.values[0] - top.values[1]), 5))
                ids = torch.cat([ids, top.indices[:1][None]], dim=1)
        spread = float(logits.std())
        print(json.dumps({"prompt": row, "top1_minus_top2": gaps, "logit_std": round(spread, 4)}), flush=True)


if __name__ == "__main__":
    main()
