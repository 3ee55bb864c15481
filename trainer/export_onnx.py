"""Export a Hugging Face Llama-family causal LM folder to ONNX (decoder with past, float32).

    python -m trainer.export_onnx --model <hf dir> --out <dir> [--opset 17]

The graph follows the Optimum decoder-with-past contract that lib/inference implements:

    inputs   input_ids int64 [batch, seq]; attention_mask int64 [batch, past+seq];
             position_ids int64 [batch, seq] (the caller computes cumsum(attention_mask)-1, clipped at 0);
             past_key_values.{i}.key / .value float32 [batch, num_kv_heads, past, head_dim] (past may be 0)
    outputs  logits float32 [batch, 1, vocab] (the last position's); present.{i}.key / .value [batch, num_kv_heads, past+seq, head_dim]

One model.onnx serves prefill (past length 0) and decode. Before the folder is published, prefill
plus two decode steps (and a left-padded batch) are compared with PyTorch; a logit difference over
--tolerance fails the export, and so do greedy tokens that leave PyTorch's anywhere but at a near-tie
(check_greedy_agreement).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer.decoder_io import (  # noqa: F401 -- re-exported: callers import these from export_onnx too
    cache_dtype_of,
    empty_past,
    input_output_names,
    load_causal_lm,
    model_dimensions,
    position_ids_for,
    run_decoder,
)
from trainer.export_greedy_loop import LoopExportError, export_greedy_loop
from trainer.weight_files import share_onnx_weights

MANIFEST_FORMAT = "weft-onnx-causal-lm/1"
LOGITS_KEPT = "last-position"
DEFAULT_TOLERANCE = 1e-3
# Largest |logit difference| to PyTorch's float32 logits an export may show, per exported dtype.
DTYPE_TOLERANCE = {"float32": DEFAULT_TOLERANCE, "float16": 0.25}
COPIED_FILES = [
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
]


class ExportError(Exception):
    """The model cannot be exported or the export does not match PyTorch."""


def additive_causal_mask(attention_mask: torch.Tensor, query_length: int, dtype: torch.dtype) -> torch.Tensor:
    """[batch, 1, query, past+query] additive mask: a query at absolute index past+i sees keys at
    indices <= past+i that the attention mask keeps. Built here (not by transformers) so the traced
    graph has no data-dependent shortcuts and left padding behaves the same in prefill and decode."""
    total_length = attention_mask.shape[1]
    past_length = total_length - query_length
    key_index = torch.arange(total_length, device=attention_mask.device)[None, :]
    query_index = torch.arange(query_length, device=attention_mask.device)[:, None] + past_length
    allowed = (key_index <= query_index)[None, None, :, :] & attention_mask[:, None, None, :].bool()
    zero = torch.zeros((), dtype=dtype, device=attention_mask.device)
    blocked = torch.full((), torch.finfo(dtype).min, dtype=dtype, device=attention_mask.device)
    return torch.where(allowed, zero, blocked)


class DecoderWithPast(torch.nn.Module):
    """Flat tensors in and out, a transformers DynamicCache inside."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.num_layers = model.config.num_hidden_layers

    def forward(self, input_ids, attention_mask, position_ids, *past_flat):
        from transformers.cache_utils import DynamicCache, DynamicLayer

        cache = DynamicCache()
        cache.layers = []
        for layer_index in range(self.num_layers):
            layer = DynamicLayer()
            # Filled directly: DynamicLayer.update would concatenate onto an empty 1-D tensor, which
            # does not trace to valid ONNX.
            layer.keys = past_flat[2 * layer_index]
            layer.values = past_flat[2 * layer_index + 1]
            layer.dtype, layer.device = layer.keys.dtype, layer.keys.device
            layer.is_initialized = True
            cache.layers.append(layer)
        mask = additive_causal_mask(attention_mask, input_ids.shape[1], self.model.dtype)
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=position_ids,
            past_key_values=cache,
            use_cache=True,
            return_dict=True,
            # Only the last position's logits: every caller samples from them, and on a prompt the LM head over all
            # positions is a fifth of the prefill's FLOPs (SmolLM2) and a [seq, vocab] output to copy out.
            logits_to_keep=1,
        )
        present = []
        for layer in outputs.past_key_values.layers:
            present.extend([layer.keys, layer.values])
        return (outputs.logits, *present)


class Float32Logits(torch.nn.Module):
    """A float16 export still hands float32 logits to the runtime (weft reads logits as float32)."""

    def __init__(self, decoder: torch.nn.Module):
        super().__init__()
        self.decoder = decoder

    def forward(self, input_ids, attention_mask, position_ids, *past_flat):
        logits, *present = self.decoder(input_ids, attention_mask, position_ids, *past_flat)
        return (logits.float(), *present)


def example_inputs(model) -> tuple[tuple, list[str], list[str], dict[str, dict[int, str]]]:
    """Tracing inputs (a batch of 2, 3 new tokens after 4 cached ones, in the model's dtype and device), the
    graph's input and output names, and their dynamic axes."""
    dimensions = model_dimensions(model.config)
    device = next(model.parameters()).device
    batch, query, past = 2, 3, 4
    input_ids = torch.randint(5, model.config.vocab_size, (batch, query), dtype=torch.long, device=device)
    attention_mask = torch.ones((batch, past + query), dtype=torch.long, device=device)
    position_ids = torch.arange(past, past + query, dtype=torch.long, device=device)[None, :].repeat(batch, 1)
    past_shape = (batch, dimensions["num_kv_heads"], past, dimensions["head_dim"])
    past_flat = [torch.randn(past_shape, dtype=model.dtype, device=device) for _ in range(2 * dimensions["num_layers"])]
    input_names, output_names = input_output_names(dimensions["num_layers"])
    dynamic_axes: dict[str, dict[int, str]] = {
        "input_ids": {0: "batch_size", 1: "sequence_length"},
        "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
        "position_ids": {0: "batch_size", 1: "sequence_length"},
        "logits": {0: "batch_size"},
    }
    for name in input_names[3:]:
        dynamic_axes[name] = {0: "batch_size", 2: "past_sequence_length"}
    for name in output_names[1:]:
        dynamic_axes[name] = {0: "batch_size", 2: "total_sequence_length"}
    return (input_ids, attention_mask, position_ids, *past_flat), input_names, output_names, dynamic_axes


def export_graph(model, onnx_path: Path, opset: int = 17) -> None:
    """Traces the decoder with past in the model's own dtype and device (float16 weights and cache give a float16
    export with float32 logits). Models over 2 GB are written with their weights in side files."""
    inputs, input_names, output_names, dynamic_axes = example_inputs(model)
    decoder = DecoderWithPast(model)
    if model.dtype != torch.float32:
        decoder = Float32Logits(decoder)
    with torch.no_grad():
        torch.onnx.export(
            decoder,
            inputs,
            str(onnx_path),
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


def _sample_prompts(tokenizer) -> list[list[int]]:
    from trainer.rag_prompt import rag_messages

    from trainer.chat_tokens import chat_prompt_ids

    context = "The Keeling curve records carbon dioxide at Mauna Loa since 1958."
    prompts = []
    if getattr(tokenizer, "chat_template", None):
        prompts.append(chat_prompt_ids(tokenizer, rag_messages("Where is carbon dioxide measured?", [context])))
    else:
        prompts.append(tokenizer.encode(context, add_special_tokens=False))
    prompts.append(tokenizer.encode("Sea level rises as oceans warm.", add_special_tokens=False))
    return prompts


def verify_export(model, tokenizer, onnx_path: Path, decode_steps: int = 2) -> float:
    """Max |logit difference| between onnxruntime and PyTorch (the float32 model) over a prefill + greedy decode
    steps of one prompt, and over a left-padded batch of two prompts."""
    import onnxruntime

    dimensions = model_dimensions(model.config)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    cache_dtype = cache_dtype_of(session)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def run_onnx(input_ids: np.ndarray, attention_mask: np.ndarray, past: list[np.ndarray]):
        return run_decoder(session, input_ids, attention_mask, past)

    def run_torch(input_ids: np.ndarray, attention_mask: np.ndarray, cache):
        with torch.no_grad():
            outputs = model(
                input_ids=torch.from_numpy(input_ids),
                attention_mask=torch.from_numpy(attention_mask),
                position_ids=torch.from_numpy(position_ids_for(attention_mask, input_ids.shape[1])),
                past_key_values=cache,
                use_cache=True,
            )
        return outputs.logits.numpy(), outputs.past_key_values

    prompts = _sample_prompts(tokenizer)
    max_difference = 0.0

    # One prompt: prefill and greedy decode steps.
    input_ids = np.array([prompts[0]], dtype=np.int64)
    attention_mask = np.ones_like(input_ids)
    onnx_logits, past = run_onnx(input_ids, attention_mask, empty_past(dimensions, 1, cache_dtype))
    torch_logits, cache = run_torch(input_ids, attention_mask, None)
    for step in range(decode_steps + 1):
        max_difference = max(max_difference, float(np.abs(onnx_logits[:, -1] - torch_logits[:, -1]).max()))
        if step == decode_steps:
            break
        next_token = np.array([[int(torch_logits[0, -1].argmax())]], dtype=np.int64)
        attention_mask = np.concatenate([attention_mask, np.ones((1, 1), dtype=np.int64)], axis=1)
        onnx_logits, past = run_onnx(next_token, attention_mask, past)
        torch_logits, cache = run_torch(next_token, attention_mask, cache)

    # Left-padded batch: the last position of every row is a real token.
    width = max(len(ids) for ids in prompts)
    input_ids = np.array([[pad_id] * (width - len(ids)) + ids for ids in prompts], dtype=np.int64)
    attention_mask = np.array([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts], dtype=np.int64)
    onnx_logits, _ = run_onnx(input_ids, attention_mask, empty_past(dimensions, len(prompts), cache_dtype))
    torch_logits, _ = run_torch(input_ids, attention_mask, None)
    max_difference = max(max_difference, float(np.abs(onnx_logits[:, -1] - torch_logits[:, -1]).max()))
    return max_difference


GREEDY_CHECK_STEPS = 16


def _greedy_check_prompts(tokenizer) -> list[list[int]]:
    """The fixed prompts of the greedy agreement check: the two verification prompts and two more RAG questions."""
    from trainer.chat_tokens import chat_prompt_ids
    from trainer.rag_prompt import rag_messages

    prompts = _sample_prompts(tokenizer)
    if getattr(tokenizer, "chat_template", None):
        for question, context in (
            ("When was the Kyoto Protocol adopted?", "The Kyoto Protocol was adopted in Kyoto on 11 December 1997."),
            ("What melts as the Arctic warms?", "Arctic sea ice shrinks each summer as the region warms."),
        ):
            prompts.append(chat_prompt_ids(tokenizer, rag_messages(question, [context])))
    return prompts


def check_greedy_agreement(model, tokenizer, onnx_path: Path, tolerance: float, steps: int = GREEDY_CHECK_STEPS) -> dict:
    """Greedy tokens of model.onnx (host loop) against the float32 PyTorch model on fixed prompts, no stop token.
    Logits within `tolerance` of PyTorch's can only pick another token where PyTorch's top two logits are within
    2 * tolerance (a near-tie); a divergence anywhere else is a wrong export and raises ExportError. Returns per
    prompt the steps that agreed and, where they part, PyTorch's top-1 minus top-2 logit gap there."""
    import onnxruntime

    from trainer.export_greedy_loop import greedy_reference

    dimensions = model_dimensions(model.config)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    results = []
    for index, prompt in enumerate(_greedy_check_prompts(tokenizer)):
        ids = torch.tensor([prompt])
        expected, gaps = [], []
        with torch.no_grad():
            outputs = model(input_ids=ids, use_cache=True)
            for _ in range(steps):
                logits = outputs.logits[0, -1].float()
                top = torch.topk(logits, 2)
                gaps.append(float(top.values[0] - top.values[1]))
                expected.append(int(top.indices[0]))
                outputs = model(input_ids=top.indices[:1][None], past_key_values=outputs.past_key_values, use_cache=True)
        got = greedy_reference(session, {**dimensions, "eos_token_ids": []}, prompt, steps)
        agreed = next((step for step, (left, right) in enumerate(zip(got, expected)) if left != right), steps)
        entry: dict[str, Any] = {"prompt": index, "agreed_steps": agreed}
        if agreed < steps:
            entry["top2_gap"] = round(gaps[agreed], 5)
            if gaps[agreed] > 2 * tolerance:
                raise ExportError(
                    f"greedy tokens of the ONNX export leave PyTorch's at step {agreed} of prompt {index}, where "
                    f"PyTorch's top two logits are {gaps[agreed]:.3g} apart (not a near-tie within 2 x {tolerance})"
                )
        results.append(entry)
    return {"steps": steps, "prompts": results}


def _token_id_list(value: Any) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]


def build_manifest(model, tokenizer, max_difference: float, dtype: str = "float32") -> dict[str, Any]:
    config = model.config
    generation_config = getattr(model, "generation_config", None)
    eos_ids = _token_id_list(getattr(generation_config, "eos_token_id", None)) or _token_id_list(config.eos_token_id)
    pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else config.pad_token_id
    return {
        "format": MANIFEST_FORMAT,
        **model_dimensions(config),
        "bos_token_id": config.bos_token_id,
        "eos_token_ids": eos_ids,
        "pad_token_id": pad_token_id,
        "dtype": dtype,
        "max_positions": config.max_position_embeddings,
        # What the logits output holds (setup re-exports folders that predate last-position logits).
        "logits": LOGITS_KEPT,
        "export_check": {"max_abs_logit_diff": max_difference},
    }


def export_causal_lm(
    model_dir: Path,
    out_dir: Path,
    opset: int = 17,
    tolerance: float | None = None,
    dtype: str = "float32",
) -> dict[str, Any]:
    """Export, verify, then publish out_dir atomically. Returns the weft-model.json manifest. dtype float16
    halves the weights and the key/value cache (for GPUs; logits stay float32), checked against the float32
    PyTorch model with a float16 tolerance."""
    from transformers import AutoTokenizer

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if not (model_dir / "config.json").exists():
        raise ExportError(f"{model_dir} is not a Hugging Face model folder (no config.json)")
    model = load_causal_lm(model_dir)
    if model.config.model_type not in SUPPORTED_MODEL_TYPES:
        raise ExportError(f"model_type {model.config.model_type!r} is not a supported Llama-family type")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    onnx_path = staging / "model.onnx"
    if tolerance is None:
        tolerance = DTYPE_TOLERANCE[dtype]
    if dtype == "float16":
        import copy

        export_graph(copy.deepcopy(model).half(), onnx_path, opset)
    else:
        export_graph(model, onnx_path, opset)
    # Weights in per-layer files (trainer/weight_files.py) before anything is checked, so the checks run on what is
    # published; generate_greedy.onnx then reads the same files.
    weights = share_onnx_weights(staging)
    max_difference = verify_export(model, tokenizer, onnx_path)
    if not max_difference <= tolerance:
        shutil.rmtree(staging, ignore_errors=True)
        raise ExportError(f"ONNX logits differ from PyTorch by {max_difference:.3g} (tolerance {tolerance})")
    try:
        greedy = check_greedy_agreement(model, tokenizer, onnx_path, tolerance)
    except ExportError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for name in COPIED_FILES:
        if (model_dir / name).exists():
            shutil.copy2(model_dir / name, staging / name)
    manifest = build_manifest(model, tokenizer, max_difference, dtype)
    manifest["export_check"]["greedy"] = greedy
    manifest["weights"] = {"layout": weights["layout"], "files": sorted(weights["files"])}
    (staging / "weft-model.json").write_text(json.dumps(manifest, indent=2) + "\n")
    # The in-graph greedy decoder (generate_greedy.onnx), checked token for token against the host loop.

    try:
        loop = export_greedy_loop(staging, _sample_prompts(tokenizer)[0], hf_model=model)
        manifest["greedy_loop"] = {key: loop[key] for key in ("decoder", "fused_refused") if key in loop}
        loop_files = loop.get("weights", {}).get("files", [])
        manifest["weights"]["files"] = sorted(set(manifest["weights"]["files"]) | set(loop_files))
        (staging / "weft-model.json").write_text(json.dumps(manifest, indent=2) + "\n")
    except LoopExportError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise ExportError(str(error)) from error
    if dtype == "float32":
        manifest["greedy_int8"] = _int8_loop(staging, model, tokenizer)
        manifest["weights"]["files"] = sorted(
            set(manifest["weights"]["files"]) | set(manifest["greedy_int8"].get("weight_files", [])))
        (staging / "weft-model.json").write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    return manifest


# 8-bit weights are written for float32 exports up to this many parameters: quantizing holds the folded float32
# graph in memory about four times over (SmolLM2-135M: 2.0 GB resident for 0.54 GB of weights), beside the trainer's
# own copy of the model, so a 1B model's would not fit a 24 GB machine.
INT8_MAX_PARAMETERS = 500_000_000


def _int8_loop(staging: Path, model, tokenizer) -> dict[str, Any]:
    """generate_greedy.int8.onnx (trainer/quantize_int8.py) beside the float32 loop. An accelerator, not a
    requirement: when it cannot be made, the manifest says why and the export stands (weft then serves float32)."""
    if not (staging / "generate_greedy.onnx").exists():
        return {"refused": "no generate_greedy.onnx"}
    parameters = sum(p.numel() for p in model.parameters())
    if parameters > INT8_MAX_PARAMETERS:
        return {"refused": f"{parameters:,} parameters (8-bit weights are written up to {INT8_MAX_PARAMETERS:,})"}
    from trainer.quantize_int8 import QuantizeError, write_int8_loop

    try:
        return write_int8_loop(staging, _sample_prompts(tokenizer)[:2])
    except (QuantizeError, RuntimeError, ValueError, OSError) as error:
        for leftover in [*staging.glob("weights.int8.*"), staging / "generate_greedy.int8.onnx"]:
            leftover.unlink(missing_ok=True)
        return {"refused": f"{type(error).__name__}: {str(error)[:500]}"}


# Decoder-only models whose forward accepts a 4-D additive mask and a DynamicCache of full layers.
SUPPORTED_MODEL_TYPES = {"llama", "mistral", "qwen2", "qwen3", "gemma", "phi3", "smollm3", "olmo", "olmo2", "granite"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="Hugging Face model folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder (replaced when the export passes)")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--tolerance", type=float, default=None, help="default: 1e-3 (float32), 0.25 (float16)")
    parser.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    args = parser.parse_args(argv)
    try:
        manifest = export_causal_lm(args.model, args.out, args.opset, args.tolerance, args.dtype)
    except ExportError as error:
        print(json.dumps({"event": "error", "kind": "export_failed", "message": str(error)}), flush=True)
        sys.exit(1)
    print(json.dumps({"event": "done", "onnx_dir": str(args.out), "export_check": manifest["export_check"]}))


if __name__ == "__main__":
    main()
