"""A Llama decoder built from the weights out of onnxruntime's fused operators: the graph inside
generate_greedy.onnx when the model allows it (trainer/export_greedy_loop.py).

    python -m trainer.fused_decoder --check <hf llama folder>    # logits vs transformers, float32, CPU

Per layer 12 nodes (13 in the file: onnxruntime folds the Concat of the q, k and v weights when it loads) instead
of the TorchScript export's ~115 (a decode step of a 22-layer model: ~250 onnxruntime node executions instead of
~2,500; on an H200, 3.7 ms instead of 9.3 ms at batch 1):
SimplifiedLayerNormalization / SkipSimplifiedLayerNormalization (com.microsoft), one MatMul for q, k and v,
GroupQueryAttention (com.microsoft: rotary embedding, cache concatenation, grouped heads), the output MatMul and
the SwiGLU MLP. It keeps weft's decoder-with-past contract (input_ids, attention_mask, position_ids,
past_key_values.*; logits, present.*) with left padding: GroupQueryAttention treats every cache column as present
and an additive bias built from attention_mask masks the padding.

Rotary positions are cache column indices, not position_ids (which is accepted and unused). Attention depends only
on the distance between positions, and a row's columns are contiguous, so a left-padded row computes what it
computes alone as long as its cache never moves between columns. That holds inside generate_greedy.onnx, whose loop
only appends; it does not hold for the host loop, which re-lays rows out as they join and leave, so model.onnx
stays the TorchScript export. Supported: model_type llama without attention or MLP biases and without rope
scaling (`fused_decoder_supported`).
"""

from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from trainer.decoder_io import empty_past, model_dimensions, run_decoder

MS = "com.microsoft"


def fused_decoder_supported(config) -> str | None:
    """None when build_fused_decoder reproduces this model; else why not."""
    if config.model_type != "llama":
        return f"model_type {config.model_type!r} (the fused decoder covers llama)"
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        return "attention or MLP biases"
    rope = getattr(config, "rope_scaling", None)
    if rope and (rope.get("rope_type") or rope.get("type")) not in (None, "default"):
        return f"rope scaling {rope}"
    if getattr(config, "hidden_act", "silu") != "silu":
        return f"activation {config.hidden_act}"
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    if head_dim % 16 != 0:
        return f"head dimension {head_dim} (GroupQueryAttention needs a multiple of 16)"
    return None


def build_fused_decoder(model, dtype: torch.dtype = torch.float16, opset: int = 17) -> onnx.ModelProto:
    config = model.config
    layers = config.num_hidden_layers
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    eps = float(config.rms_norm_eps)
    elem = TensorProto.FLOAT16 if dtype == torch.float16 else TensorProto.FLOAT
    state = {name: tensor.detach().to("cpu", dtype) for name, tensor in model.state_dict().items()}
    initializers: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def weight(name: str, array: torch.Tensor) -> str:
        initializers.append(numpy_helper.from_array(array.contiguous().numpy(), name))
        return name

    def node(op: str, inputs: list[str], outputs: list[str], domain: str = "", **attributes) -> None:
        nodes.append(helper.make_node(op, inputs, outputs, name=f"{op}_{len(nodes)}", domain=domain, **attributes))

    # Rotary caches [max positions, head_dim / 2], as Llama's rotate-half rotary embedding computes them.
    theta = float(getattr(config, "rope_theta", 10000.0))
    inverse = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    angles = np.outer(np.arange(config.max_position_embeddings, dtype=np.float64), inverse)
    np_dtype = np.float16 if dtype == torch.float16 else np.float32
    initializers.append(numpy_helper.from_array(np.cos(angles).astype(np_dtype), "rotary.cos"))
    initializers.append(numpy_helper.from_array(np.sin(angles).astype(np_dtype), "rotary.sin"))
    initializers.append(numpy_helper.from_array(np.array(1, dtype=np.int64), "index.one"))
    initializers.append(numpy_helper.from_array(np.array(1, dtype=np.int32), "int32.one"))
    initializers.append(numpy_helper.from_array(np.array([0], dtype=np.int64), "axis.zero"))
    initializers.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), "axis.last"))
    initializers.append(numpy_helper.from_array(np.array([1, 2], dtype=np.int64), "axes.one_two"))
    initializers.append(numpy_helper.from_array(np.array(0, dtype=np.int64), "zero.i64"))
    initializers.append(numpy_helper.from_array(np.array(1, dtype=np.int64), "one.i64"))
    initializers.append(numpy_helper.from_array(np.array(0, dtype=np_dtype), "bias.zero"))
    initializers.append(numpy_helper.from_array(np.array(np.finfo(np_dtype).min, dtype=np_dtype), "bias.blocked"))

    # GroupQueryAttention sees every cache column as present (seqlens_k = total - 1 for every row); left padding is
    # masked by an additive bias [batch, 1, query, total] built once from attention_mask, and rotary positions
    # come from position_ids, so a left-padded row computes what it would alone.
    node("Shape", ["attention_mask"], ["mask.shape"])
    node("Gather", ["mask.shape", "index.one"], ["mask.total"], axis=0)
    node("Cast", ["mask.total"], ["total_sequence_length"], to=TensorProto.INT32)
    node("Sub", ["total_sequence_length", "int32.one"], ["total_minus_one"])
    node("Shape", ["input_ids"], ["ids.shape"], start=0, end=1)
    node("Cast", ["ids.shape"], ["ids.batch32"], to=TensorProto.INT32)
    node("Cast", ["ids.batch32"], ["ids.batch32_64"], to=TensorProto.INT64)
    node("Expand", ["total_minus_one", "ids.batch32_64"], ["seqlens_k"])
    node("Shape", ["input_ids"], ["ids.query"], start=1, end=2)
    node("Unsqueeze", ["mask.total", "axis.zero"], ["mask.total_1d"])
    node("Sub", ["mask.total_1d", "ids.query"], ["mask.past"])
    node("Range", ["zero.i64", "mask.total", "one.i64"], ["key.index"])
    node("Squeeze", ["ids.query", "axis.zero"], ["ids.query_scalar"])
    node("Range", ["zero.i64", "ids.query_scalar", "one.i64"], ["query.index0"])
    node("Squeeze", ["mask.past", "axis.zero"], ["mask.past_scalar"])
    node("Add", ["query.index0", "mask.past_scalar"], ["query.index"])
    node("Unsqueeze", ["query.index", "axis.last"], ["query.column"])
    node("LessOrEqual", ["key.index", "query.column"], ["causal"])
    node("Unsqueeze", ["attention_mask", "axes.one_two"], ["mask.4d"])
    node("Cast", ["mask.4d"], ["mask.4d_bool"], to=TensorProto.BOOL)
    node("And", ["causal", "mask.4d_bool"], ["allowed"])
    node("Where", ["allowed", "bias.zero", "bias.blocked"], ["attention_bias"])

    node("Gather", [weight("embed", state["model.embed_tokens.weight"]), "input_ids"], ["embedded"], axis=0)
    residual, hidden = "embedded", None
    for i in range(layers):
        prefix = f"model.layers.{i}."
        norm_in = weight(f"l{i}.input_norm", state[prefix + "input_layernorm.weight"])
        if hidden is None:
            node("SimplifiedLayerNormalization", [residual, norm_in], [f"l{i}.normed"], axis=-1, epsilon=eps, stash_type=1)
        else:
            node(
                "SkipSimplifiedLayerNormalization",
                [hidden, residual, norm_in],
                [f"l{i}.normed", "", "", f"l{i}.residual_in"],
                domain=MS,
                epsilon=eps,
            )
            residual = f"l{i}.residual_in"
        # q, k and v stay the three tensors model.onnx holds (so both graphs share one copy in the weight files,
        # trainer/weight_files.py); onnxruntime folds this Concat of constants into one weight when it loads.
        projections = [weight(f"l{i}.{p}", state[prefix + f"self_attn.{p}_proj.weight"].t()) for p in ("q", "k", "v")]
        node("Concat", projections, [f"l{i}.qkv"], axis=1)
        node("MatMul", [f"l{i}.normed", f"l{i}.qkv"], [f"l{i}.qkv_out"])
        node(
            "GroupQueryAttention",
            [
                f"l{i}.qkv_out",
                "",
                "",
                f"past_key_values.{i}.key",
                f"past_key_values.{i}.value",
                "seqlens_k",
                "total_sequence_length",
                "rotary.cos",
                "rotary.sin",
                "",
                "attention_bias",
            ],
            [f"l{i}.attention", f"present.{i}.key", f"present.{i}.value"],
            domain=MS,
            num_heads=heads,
            kv_num_heads=kv_heads,
            do_rotary=1,
            rotary_interleaved=0,
            scale=1.0 / float(np.sqrt(head_dim)),
        )
        o_proj = state[prefix + "self_attn.o_proj.weight"].t()
        node("MatMul", [f"l{i}.attention", weight(f"l{i}.o", o_proj)], [f"l{i}.attention_out"])
        norm_post = weight(f"l{i}.post_norm", state[prefix + "post_attention_layernorm.weight"])
        node(
            "SkipSimplifiedLayerNormalization",
            [f"l{i}.attention_out", residual, norm_post],
            [f"l{i}.mlp_in", "", "", f"l{i}.residual_mid"],
            domain=MS,
            epsilon=eps,
        )
        residual = f"l{i}.residual_mid"
        gate = state[prefix + "mlp.gate_proj.weight"].t()
        up = state[prefix + "mlp.up_proj.weight"].t()
        down = state[prefix + "mlp.down_proj.weight"].t()
        node("MatMul", [f"l{i}.mlp_in", weight(f"l{i}.gate", gate)], [f"l{i}.gate_out"])
        node("MatMul", [f"l{i}.mlp_in", weight(f"l{i}.up", up)], [f"l{i}.up_out"])
        node("Sigmoid", [f"l{i}.gate_out"], [f"l{i}.gate_sigmoid"])
        node("Mul", [f"l{i}.gate_out", f"l{i}.gate_sigmoid"], [f"l{i}.gate_silu"])
        node("Mul", [f"l{i}.gate_silu", f"l{i}.up_out"], [f"l{i}.mlp_mid"])
        node("MatMul", [f"l{i}.mlp_mid", weight(f"l{i}.down", down)], [f"l{i}.mlp_out"])
        hidden = f"l{i}.mlp_out"
    node(
        "SkipSimplifiedLayerNormalization",
        [hidden, residual, weight("final_norm", state["model.norm.weight"])],
        ["final.normed"],
        domain=MS,
        epsilon=eps,
    )
    head = state.get("lm_head.weight", state["model.embed_tokens.weight"]).t()
    node("MatMul", ["final.normed", weight("lm_head", head)], ["logits.model_dtype"])
    node("Cast", ["logits.model_dtype"], ["logits"], to=TensorProto.FLOAT)

    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch_size", "total_sequence_length"]),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
    ]
    outputs = [
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", "sequence_length", config.vocab_size])
    ]
    for i in range(layers):
        for kind in ("key", "value"):
            inputs.append(
                helper.make_tensor_value_info(
                    f"past_key_values.{i}.{kind}", elem, ["batch_size", kv_heads, "past_sequence_length", head_dim]
                )
            )
            outputs.append(
                helper.make_tensor_value_info(
                    f"present.{i}.{kind}", elem, ["batch_size", kv_heads, "total_sequence_length", head_dim]
                )
            )
    graph = helper.make_graph(nodes, "weft_fused_llama", inputs, outputs, initializer=initializers)
    model_proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(MS, 1)], producer_name="weft"
    )
    model_proto.ir_version = 8
    return model_proto


def check_against_pytorch(model_dir: str) -> dict:
    """float32 on CPU: logits of a prefill and one decode step of the fused graph vs the transformers model, and a
    left-padded batch of two against the padded row run alone."""
    import onnxruntime
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()
    proto = build_fused_decoder(model, torch.float32)
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    dimensions = model_dimensions(model.config)

    def ones(batch: int, width: int) -> np.ndarray:
        return np.ones((batch, width), dtype=np.int64)

    prompt = np.array([[1, 42, 17, 99, 5, 300, 12]], dtype=np.int64)
    logits, present = run_decoder(session, prompt, ones(1, 7), empty_past(dimensions, 1))
    token = np.array([[int(logits[0, -1].argmax())]], dtype=np.int64)
    step_logits, _ = run_decoder(session, token, ones(1, 8), present)
    with torch.no_grad():
        reference = model(torch.from_numpy(prompt), use_cache=True)
        reference_step = model(torch.from_numpy(token), past_key_values=reference.past_key_values, use_cache=True)

    short, long = [11, 12, 13], [21, 22, 23, 24, 25, 26]
    mask = np.array([[0, 0, 0, 1, 1, 1], [1] * 6], dtype=np.int64)
    batch_logits, batch_past = run_decoder(session, np.array([[2, 2, 2] + short, long]), mask, empty_past(dimensions, 2))
    alone_logits, alone_past = run_decoder(session, np.array([short]), ones(1, 3), empty_past(dimensions, 1))
    next_token = np.array([[30], [30]], dtype=np.int64)
    batch_step, _ = run_decoder(session, next_token, np.concatenate([mask, ones(2, 1)], 1), batch_past)
    alone_step, _ = run_decoder(session, next_token[:1], ones(1, 4), alone_past)
    return {
        "nodes": len(proto.graph.node),
        "layers": dimensions["num_layers"],
        "prefill_max_abs_logit_diff": float(np.abs(logits - reference.logits.numpy()).max()),
        "decode_max_abs_logit_diff": float(np.abs(step_logits - reference_step.logits.numpy()).max()),
        "left_padded_prefill_vs_alone": float(np.abs(batch_logits[0, -1] - alone_logits[0, -1]).max()),
        "left_padded_decode_vs_alone": float(np.abs(batch_step[0, -1] - alone_step[0, -1]).max()),
    }


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description="Check the fused decoder against transformers (float32, CPU).")
    parser.add_argument("--check", required=True, help="a Hugging Face Llama folder, e.g. .weft/models/base-chat/hf")
    print(json.dumps(check_against_pytorch(parser.parse_args().check)))
