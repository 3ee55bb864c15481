"""Wrap a decoder-with-past export (model.onnx) in an ONNX Loop that decodes greedily inside the runtime.

    python -m trainer.export_greedy_loop --model-dir <onnx folder> [--check]

Why: onnxruntime-node hands every output back to JavaScript, so a host-driven decode loop on a GPU copies the
whole key/value cache device -> host -> device on every step. generate_greedy.onnx runs prefill and every decode
step in one session.run(): the cache stays where the execution provider keeps it; only the tokens come back.

    inputs   prompt_ids int64 [batch, prompt]             left-padded prompts
             prompt_attention_mask int64 [batch, prompt]  0 on padding
             prompt_position_ids int64 [batch, prompt]    cumsum(mask) - 1, clipped at 0
             max_new_tokens int64 []                      the loop's trip count
             eos_token_ids int64 [n]                      stop tokens ([-1]: none)
             pad_token_id int64 []                        emitted by rows after they stopped
    outputs  tokens int64 [steps, batch, 1]               generated tokens; the loop ends early once every row
                                                          has produced a stop token

Iteration 0 is the prefill (the whole prompt, an empty cache built in the graph); each later one feeds the previous
token. The decoder's nodes are the loop body unchanged and its weights stay initializers of the outer graph, so
the greedy choice (ArgMax of the last position's logits) is the host loop's for the same logits. When model.onnx
keeps its weights in per-layer weight files (trainer/weight_files.py), this graph reads the same bytes there
instead of storing them again; only tensors model.onnx does not have (the fused decoder's rotary tables) stay inline.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from trainer.decoder_io import cache_dtype_of, empty_past, input_output_names, load_causal_lm, run_decoder
from trainer.fused_decoder import build_fused_decoder, fused_decoder_supported
from trainer.weight_files import has_weight_files, save_sharing_weights, weight_file_index

LOOP_FILE = "generate_greedy.onnx"
LOOP_DATA_FILE = "generate_greedy.onnx.data"
# Protobuf refuses messages over 2 GiB: larger models keep their weights in a side file.
EXTERNAL_DATA_THRESHOLD = 1_500_000_000


class LoopExportError(Exception):
    pass


def build_greedy_loop(decoder: onnx.ModelProto) -> onnx.ModelProto:
    graph = decoder.graph
    input_names = [value.name for value in graph.input]
    output_names = [value.name for value in graph.output]
    num_layers = sum(1 for name in input_names if name.endswith(".key"))
    expected_inputs, expected_outputs = input_output_names(num_layers)
    past, present = expected_inputs[3:], expected_outputs[1:]
    if input_names != expected_inputs or output_names != expected_outputs:
        raise LoopExportError(
            "model.onnx does not follow the decoder-with-past contract "
            f"(inputs {input_names[:4]}…, outputs {output_names[:2]}…); export it with trainer.export_onnx"
        )
    cache_type = graph.input[3].type.tensor_type.elem_type
    cache_dims = graph.input[3].type.tensor_type.shape.dim
    kv_heads, head_dim = cache_dims[1].dim_value, cache_dims[3].dim_value
    if not kv_heads or not head_dim:
        raise LoopExportError("model.onnx must give the key/value heads and head dimension as fixed sizes")
    opset = next((entry.version for entry in decoder.opset_import if entry.domain in ("", "ai.onnx")), 17)

    def info(name: str, elem_type: int, shape: list | None) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, elem_type, shape)

    def int64s(name: str, values: list[int]) -> onnx.TensorProto:
        return helper.make_tensor(name, TensorProto.INT64, [len(values)], values)

    # Body: (iteration, condition, carried...) -> (condition, carried..., scan output). The first iteration is the
    # prefill (input_ids is the whole prompt, past is empty); every later one feeds the previous token.
    body_inputs = [
        info("loop.iteration", TensorProto.INT64, []),
        info("loop.condition", TensorProto.BOOL, []),
        info("input_ids", TensorProto.INT64, ["batch", None]),
        info("attention_mask", TensorProto.INT64, ["batch", None]),
        info("position_ids", TensorProto.INT64, ["batch", None]),
        *[info(name, cache_type, None) for name in past],
        info("loop.finished", TensorProto.BOOL, ["batch", 1]),
    ]
    if opset >= 18:
        reduce_last = helper.make_node("ReduceMax", ["loop.is_eos_each_int", "loop.axis_last"], ["loop.is_eos_int"], keepdims=0)
    else:
        # Reduce* take their axes as an attribute before opset 18.
        reduce_last = helper.make_node("ReduceMax", ["loop.is_eos_each_int"], ["loop.is_eos_int"], axes=[-1], keepdims=0)
    step_nodes = [
        # The greedy choice from the last position's logits -> [batch, 1].
        helper.make_node("Gather", ["logits", "loop.last_index"], ["loop.last_logits"], axis=1),
        helper.make_node("ArgMax", ["loop.last_logits"], ["loop.argmax"], axis=1, keepdims=1),
        helper.make_node("Unsqueeze", ["loop.argmax", "loop.axis_last"], ["loop.argmax_3d"]),
        helper.make_node("Equal", ["loop.argmax_3d", "eos_token_ids"], ["loop.is_eos_each"]),
        helper.make_node("Cast", ["loop.is_eos_each"], ["loop.is_eos_each_int"], to=TensorProto.INT32),
        reduce_last,
        helper.make_node("Cast", ["loop.is_eos_int"], ["loop.is_eos"], to=TensorProto.BOOL),
        # A finished row emits padding; its later logits are never read.
        helper.make_node("Where", ["loop.finished", "pad_token_id", "loop.argmax"], ["loop.token"]),
        helper.make_node("Or", ["loop.finished", "loop.is_eos"], ["loop.finished_next"]),
        # The next step attends to one more column and sits one position after the last.
        helper.make_node("Shape", ["loop.token"], ["loop.token_shape"]),
        helper.make_node(
            "ConstantOfShape",
            ["loop.token_shape"],
            ["loop.ones"],
            value=helper.make_tensor("one", TensorProto.INT64, [1], [1]),
        ),
        helper.make_node("Concat", ["attention_mask", "loop.ones"], ["loop.attention_mask_next"], axis=1),
        helper.make_node(
            "Slice", ["position_ids", "loop.slice_last", "loop.slice_end", "loop.axis_one"], ["loop.last_position"]
        ),
        helper.make_node("Add", ["loop.last_position", "loop.ones"], ["loop.position_ids_next"]),
        # Go on while some row is still generating.
        helper.make_node("Cast", ["loop.finished_next"], ["loop.finished_int"], to=TensorProto.INT32),
        helper.make_node("ReduceMin", ["loop.finished_int"], ["loop.all_finished_int"], keepdims=0),
        helper.make_node("Cast", ["loop.all_finished_int"], ["loop.all_finished"], to=TensorProto.BOOL),
        helper.make_node("Not", ["loop.all_finished"], ["loop.condition_next"]),
        helper.make_node("Identity", ["loop.token"], ["loop.token_out"]),
    ]
    body_constants = [
        helper.make_tensor("loop.last_index", TensorProto.INT64, [], [-1]),
        int64s("loop.axis_last", [-1]),
        int64s("loop.slice_last", [-1]),
        int64s("loop.slice_end", [2**62]),
        int64s("loop.axis_one", [1]),
    ]
    body_outputs = [
        info("loop.condition_next", TensorProto.BOOL, []),
        info("loop.token", TensorProto.INT64, ["batch", 1]),
        info("loop.attention_mask_next", TensorProto.INT64, ["batch", None]),
        info("loop.position_ids_next", TensorProto.INT64, ["batch", 1]),
        *[info(name, cache_type, None) for name in present],
        info("loop.finished_next", TensorProto.BOOL, ["batch", 1]),
        info("loop.token_out", TensorProto.INT64, ["batch", 1]),
    ]
    # Nodes computing from weights alone (the fused decoder's q/k/v Concat) run once, before the loop, where
    # onnxruntime folds them into constants at load; inside the body they would run on every step.
    constant_values = {initializer.name for initializer in graph.initializer}
    hoisted, body_nodes = [], []
    for node in graph.node:
        if node.input and all(not name or name in constant_values for name in node.input):
            hoisted.append(node)
            constant_values.update(node.output)
        else:
            body_nodes.append(node)
    body = helper.make_graph(
        [*body_nodes, *step_nodes], "greedy_step", body_inputs, body_outputs, initializer=body_constants
    )

    # Outer graph: an empty cache and no finished row, then the loop.
    outer_inputs = [
        info("prompt_ids", TensorProto.INT64, ["batch", "prompt"]),
        info("prompt_attention_mask", TensorProto.INT64, ["batch", "prompt"]),
        info("prompt_position_ids", TensorProto.INT64, ["batch", "prompt"]),
        info("max_new_tokens", TensorProto.INT64, []),
        info("eos_token_ids", TensorProto.INT64, ["eos"]),
        info("pad_token_id", TensorProto.INT64, []),
    ]
    setup_nodes = [
        helper.make_node("Shape", ["prompt_ids"], ["setup.batch"], start=0, end=1),
        helper.make_node("Concat", ["setup.batch", "setup.cache_tail"], ["setup.cache_shape"], axis=0),
        helper.make_node(
            "ConstantOfShape",
            ["setup.cache_shape"],
            ["setup.empty_cache"],
            value=helper.make_tensor("zero", cache_type, [1], [0]),
        ),
        helper.make_node("Concat", ["setup.batch", "setup.one"], ["setup.flag_shape"], axis=0),
        helper.make_node(
            "ConstantOfShape",
            ["setup.flag_shape"],
            ["setup.not_finished"],
            value=helper.make_tensor("false", TensorProto.BOOL, [1], [False]),
        ),
    ]
    setup_constants = [
        int64s("setup.cache_tail", [kv_heads, 0, head_dim]),
        int64s("setup.one", [1]),
        helper.make_tensor("setup.start_condition", TensorProto.BOOL, [], [True]),
    ]
    loop = helper.make_node(
        "Loop",
        [
            "max_new_tokens",
            "setup.start_condition",
            "prompt_ids",
            "prompt_attention_mask",
            "prompt_position_ids",
            *["setup.empty_cache" for _ in past],
            "setup.not_finished",
        ],
        [
            "final.token",
            "final.attention_mask",
            "final.position_ids",
            *[f"final.{name}" for name in present],
            "final.finished",
            "tokens",
        ],
        body=body,
        name="greedy_decode",
    )
    outer = helper.make_graph(
        [*setup_nodes, *hoisted, loop],
        "weft_greedy_decode",
        outer_inputs,
        [info("tokens", TensorProto.INT64, ["steps", "batch", 1])],
        # The weights stay in the outer graph: the body reads them as outer-scope values.
        initializer=[*graph.initializer, *setup_constants],
    )
    model = helper.make_model(outer, opset_imports=list(decoder.opset_import), producer_name="weft")
    model.ir_version = decoder.ir_version
    return model


def save_model(model: onnx.ModelProto, path: Path) -> dict:
    """Beside a model.onnx whose weights are in per-layer weight files (trainer/weight_files.py), the graph reads the
    same bytes from them; otherwise (folders exported before) its weights are inline or in `<name>.data`."""
    if (path.parent / "model.onnx").exists() and has_weight_files(path.parent):
        return save_sharing_weights(model, path, weight_file_index(path.parent))
    staging = path.with_name(path.name + ".partial")
    data_name = path.name + ".data"
    size = sum(len(t.raw_data) for t in model.graph.initializer)
    if size > EXTERNAL_DATA_THRESHOLD:
        (path.parent / (data_name + ".partial")).unlink(missing_ok=True)
        onnx.save_model(
            model,
            str(staging),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=data_name,
            size_threshold=1024,
        )
    else:
        onnx.save_model(model, str(staging))
    staging.rename(path)
    return {"shared_tensors": 0, "inline_bytes": size}


def greedy_reference(session, manifest: dict, prompt: list[int], steps: int) -> list[int]:
    """Host-driven greedy decoding through model.onnx: the tokens the loop must reproduce."""
    input_ids = np.array([prompt], dtype=np.int64)
    mask = np.ones_like(input_ids)
    past = empty_past(manifest, 1, cache_dtype_of(session))
    tokens = []
    for _ in range(steps):
        logits, past = run_decoder(session, input_ids, mask, past)
        token = int(logits[0, -1].argmax())
        tokens.append(token)
        if token in manifest["eos_token_ids"]:
            break
        input_ids = np.array([[token]], dtype=np.int64)
        mask = np.concatenate([mask, np.ones((1, 1), dtype=np.int64)], axis=1)
    return tokens


def check_loop(model_dir: Path, prompt: list[int], steps: int = 12) -> dict:
    """Greedy tokens from generate_greedy.onnx equal the host loop's through model.onnx (CPU)."""
    import onnxruntime

    manifest = json.loads((model_dir / "weft-model.json").read_text())
    decoder = onnxruntime.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    looped = onnxruntime.InferenceSession(str(model_dir / LOOP_FILE), providers=["CPUExecutionProvider"])
    expected = greedy_reference(decoder, {**manifest, "eos_token_ids": []}, prompt, steps)
    input_ids = np.array([prompt], dtype=np.int64)
    (tokens,) = looped.run(
        ["tokens"],
        {
            "prompt_ids": input_ids,
            "prompt_attention_mask": np.ones_like(input_ids),
            "prompt_position_ids": np.arange(len(prompt), dtype=np.int64)[None, :],
            "max_new_tokens": np.array(steps, dtype=np.int64),
            # No stop token: the comparison covers every step.
            "eos_token_ids": np.array([-1], dtype=np.int64),
            "pad_token_id": np.array(0, dtype=np.int64),
        },
    )
    got = [int(t) for t in tokens[:, 0, 0]]
    if got != expected:
        raise LoopExportError(f"greedy loop tokens {got} differ from the host loop's {expected}")
    return {"steps": steps, "tokens": got}


def export_greedy_loop(
    model_dir: Path, check_prompt: list[int] | None = None, hf_model=None
) -> dict:
    """Writes generate_greedy.onnx beside model.onnx. With the Hugging Face model at hand and a supported
    architecture, the loop runs the fused decoder (trainer/fused_decoder.py, ~10x fewer nodes per step); otherwise,
    or when the fused loop's greedy tokens differ from the host loop's, it wraps model.onnx itself."""
    model_dir = Path(model_dir)
    decoder_path = model_dir / "model.onnx"
    if not decoder_path.exists():
        raise LoopExportError(f"{decoder_path} does not exist")
    # Weights already in weight files stay there (the loop graph points at the same bytes); older exports load whole.
    wrapped = onnx.load(str(decoder_path), load_external_data=not has_weight_files(model_dir))
    result: dict = {"event": "done", "path": str(model_dir / LOOP_FILE)}
    fused_refusal = "no Hugging Face model given"
    if hf_model is not None:
        fused_refusal = fused_decoder_supported(hf_model.config)
    if fused_refusal is None:
        import torch

        cache_type = wrapped.graph.input[3].type.tensor_type.elem_type
        torch_dtype = torch.float16 if cache_type == TensorProto.FLOAT16 else torch.float32
        result["weights"] = save_model(build_greedy_loop(build_fused_decoder(hf_model, torch_dtype)), model_dir / LOOP_FILE)
        result["decoder"] = "fused"
        if check_prompt:
            try:
                result["check"] = check_loop(model_dir, check_prompt)
                return result
            except LoopExportError as error:
                fused_refusal = f"its greedy tokens differed from model.onnx's ({error})"
            except Exception as error:  # onnxruntime refused the fused graph for this shape: wrap model.onnx instead
                fused_refusal = f"onnxruntime could not run it ({str(error).splitlines()[0][:300]})"
        else:
            return result
    result["weights"] = save_model(build_greedy_loop(wrapped), model_dir / LOOP_FILE)
    result.update(decoder="model.onnx", fused_refused=fused_refusal)
    if check_prompt:
        result["check"] = check_loop(model_dir, check_prompt)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True, help="folder holding model.onnx and weft-model.json")
    parser.add_argument("--check", action="store_true", help="compare 12 greedy tokens with the host loop (CPU)")
    parser.add_argument("--hf", type=Path, help="the Hugging Face folder model.onnx came from: enables the fused decoder")
    args = parser.parse_args(argv)
    try:
        prompt = [1, 42, 17, 99, 5, 300, 12] if args.check else None
        hf_model = None
        if args.hf is not None:
            hf_model = load_causal_lm(args.hf)
        print(json.dumps(export_greedy_loop(args.model_dir, prompt, hf_model)), flush=True)
    except LoopExportError as error:
        print(json.dumps({"event": "error", "kind": "loop_export_failed", "message": str(error)}), flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
