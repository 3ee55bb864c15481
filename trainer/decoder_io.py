"""Decoder-with-past I/O shared by the ONNX export, the greedy-loop export and the fused decoder: the model's
dimensions, the graph's input/output names, empty caches and one forward pass through an onnxruntime session.

It imports no other trainer module, so export_onnx, export_greedy_loop and fused_decoder import it (and each other
in one direction) without a circle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch


def model_dimensions(config: Any) -> dict[str, int]:
    num_attention_heads = config.num_attention_heads
    return {
        "num_layers": config.num_hidden_layers,
        "num_attention_heads": num_attention_heads,
        "num_kv_heads": getattr(config, "num_key_value_heads", None) or num_attention_heads,
        "head_dim": getattr(config, "head_dim", None) or config.hidden_size // num_attention_heads,
        "hidden_size": config.hidden_size,
        "vocab_size": config.vocab_size,
    }


def input_output_names(num_layers: int) -> tuple[list[str], list[str]]:
    inputs = ["input_ids", "attention_mask", "position_ids"]
    outputs = ["logits"]
    for layer_index in range(num_layers):
        inputs += [f"past_key_values.{layer_index}.key", f"past_key_values.{layer_index}.value"]
        outputs += [f"present.{layer_index}.key", f"present.{layer_index}.value"]
    return inputs, outputs


def position_ids_for(attention_mask: np.ndarray, query_length: int) -> np.ndarray:
    """The caller's rule: cumsum(attention_mask) - 1 clipped at 0, last `query_length` columns."""
    positions = np.clip(np.cumsum(attention_mask, axis=1) - 1, 0, None)
    return positions[:, -query_length:].astype(np.int64)


def load_causal_lm(model_dir: Path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32, attn_implementation="eager")
    model.eval()
    return model


def empty_past(dimensions: dict[str, int], batch: int, dtype=np.float32) -> list[np.ndarray]:
    """Zero-length key/value caches, key then value per layer, in input_output_names order."""
    shape = (batch, dimensions["num_kv_heads"], 0, dimensions["head_dim"])
    return [np.zeros(shape, dtype=dtype) for _ in range(2 * dimensions["num_layers"])]


def cache_dtype_of(session) -> type:
    """numpy dtype of an onnxruntime session's key/value cache inputs."""
    return np.float16 if session.get_inputs()[3].type == "tensor(float16)" else np.float32


def run_decoder(session, input_ids: np.ndarray, attention_mask: np.ndarray, past: list[np.ndarray]):
    """One forward pass of a decoder-with-past session (position ids by the caller's rule): logits, present list."""
    num_layers = len(past) // 2
    input_names, output_names = input_output_names(num_layers)
    feeds = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "position_ids": position_ids_for(attention_mask, input_ids.shape[1]),
    }
    feeds.update(zip(input_names[3:], past))
    results = session.run(output_names, feeds)
    return results[0], results[1:]
