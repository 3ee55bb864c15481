from __future__ import annotations

import json

import numpy as np
import pytest

from trainer.export_onnx import export_causal_lm, position_ids_for


@pytest.fixture(scope="module")
def exported(tiny_model_dir, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("export") / "onnx"
    manifest = export_causal_lm(tiny_model_dir, out_dir)
    return out_dir, manifest


@pytest.fixture(scope="module")
def session(exported):
    import onnxruntime

    return onnxruntime.InferenceSession(str(exported[0] / "model.onnx"), providers=["CPUExecutionProvider"])


def test_manifest_describes_the_model(exported):
    out_dir, manifest = exported
    on_disk = json.loads((out_dir / "weft-model.json").read_text())
    assert on_disk == manifest
    assert manifest["format"] == "weft-onnx-causal-lm/1"
    assert (manifest["num_layers"], manifest["num_kv_heads"], manifest["head_dim"]) == (2, 2, 8)
    assert manifest["eos_token_ids"] == [4, 1] and manifest["pad_token_id"] == 2 and manifest["dtype"] == "float32"
    assert manifest["export_check"]["max_abs_logit_diff"] <= 1e-3
    for name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"):
        assert (out_dir / name).exists(), name


def test_graph_follows_the_decoder_with_past_contract(session, exported):
    manifest = exported[1]
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    expected_inputs = ["input_ids", "attention_mask", "position_ids"] + [
        f"past_key_values.{i}.{kind}" for i in range(2) for kind in ("key", "value")
    ]
    assert list(inputs) == expected_inputs
    assert list(outputs) == ["logits"] + [f"present.{i}.{kind}" for i in range(2) for kind in ("key", "value")]
    assert inputs["input_ids"].type == "tensor(int64)" and inputs["past_key_values.0.key"].type == "tensor(float)"
    assert inputs["past_key_values.0.key"].shape[1:4:2] == [manifest["num_kv_heads"], manifest["head_dim"]]


def _run(session, manifest, input_ids, attention_mask, past=None):
    batch = input_ids.shape[0]
    if past is None:
        shape = (batch, manifest["num_kv_heads"], 0, manifest["head_dim"])
        past = [np.zeros(shape, np.float32) for _ in range(2 * manifest["num_layers"])]
    feeds = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "position_ids": position_ids_for(attention_mask, input_ids.shape[1]),
    }
    names = [i.name for i in session.get_inputs()][3:]
    feeds.update(zip(names, past))
    results = session.run(None, feeds)
    return results[0], results[1:]


def test_prefill_and_decode_shapes_and_parity_with_pytorch(session, exported, tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    manifest = exported[1]
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)).eval()
    prompt = np.array([[5, 17, 42, 99, 7]], dtype=np.int64)
    mask = np.ones_like(prompt)
    logits, present = _run(session, manifest, prompt, mask)
    assert logits.shape == (1, 1, manifest["vocab_size"])  # the last position's logits only
    assert present[0].shape == (1, 2, 5, 8)
    next_token = np.array([[int(logits[0, -1].argmax())]], dtype=np.int64)
    mask = np.ones((1, 6), dtype=np.int64)
    step_logits, present = _run(session, manifest, next_token, mask, present)
    assert step_logits.shape == (1, 1, manifest["vocab_size"]) and present[0].shape == (1, 2, 6, 8)
    with torch.no_grad():
        full = model(torch.from_numpy(np.concatenate([prompt, next_token], axis=1))).logits.numpy()
    assert np.abs(full[:, 4:5] - logits).max() < 1e-3
    assert np.abs(full[:, 5:] - step_logits).max() < 1e-3
    assert np.abs(full).max() > 1.0  # the comparison is not between two near-zero tensors


def test_left_padding_gives_the_same_next_token_logits(session, exported):
    manifest = exported[1]
    short = [11, 12, 13]
    long = [21, 22, 23, 24, 25, 26]
    batch = np.array([[2, 2, 2] + short, long], dtype=np.int64)
    mask = np.array([[0, 0, 0, 1, 1, 1], [1] * 6], dtype=np.int64)
    batch_logits, batch_past = _run(session, manifest, batch, mask)
    alone_logits, alone_past = _run(session, manifest, np.array([short], dtype=np.int64), np.ones((1, 3), np.int64))
    assert np.abs(batch_logits[0, -1] - alone_logits[0, -1]).max() < 1e-4
    # A decode step after left-padded prefill matches the unpadded one too.
    token = np.array([[30], [30]], dtype=np.int64)
    step_batch, _ = _run(session, manifest, token, np.concatenate([mask, np.ones((2, 1), np.int64)], 1), batch_past)
    step_alone, _ = _run(session, manifest, token[:1], np.ones((1, 4), np.int64), alone_past)
    assert np.abs(step_batch[0, -1] - step_alone[0, -1]).max() < 1e-4


def test_greedy_loop_decodes_like_the_host_loop_and_stops_on_a_stop_token(exported):
    import onnxruntime

    from trainer.export_greedy_loop import LOOP_FILE, greedy_reference

    out_dir, manifest = exported
    decoder = onnxruntime.InferenceSession(str(out_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    looped = onnxruntime.InferenceSession(str(out_dir / LOOP_FILE), providers=["CPUExecutionProvider"])
    prompts = [[5, 17, 42, 99, 7], [21, 22, 23]]
    expected = [greedy_reference(decoder, {**manifest, "eos_token_ids": []}, prompt, 10) for prompt in prompts]
    width = max(len(p) for p in prompts)
    ids = np.array([[2] * (width - len(p)) + p for p in prompts], dtype=np.int64)
    mask = np.array([[0] * (width - len(p)) + [1] * len(p) for p in prompts], dtype=np.int64)
    feeds = {
        "prompt_ids": ids,
        "prompt_attention_mask": mask,
        "prompt_position_ids": position_ids_for(mask, width),
        "max_new_tokens": np.array(10, dtype=np.int64),
        "eos_token_ids": np.array([-1], dtype=np.int64),
        "pad_token_id": np.array(2, dtype=np.int64),
    }
    (tokens,) = looped.run(["tokens"], feeds)
    assert tokens.shape == (10, 2, 1)
    assert [list(tokens[:, row, 0]) for row in range(2)] == expected
    # Row 0's first token as the only stop token: row 0 stops at once and pads from then on, row 1 runs until it
    # produces that token too (or its budget ends), and the loop ends as soon as every row has stopped.
    stop = expected[0][0]
    (tokens,) = looped.run(["tokens"], {**feeds, "eos_token_ids": np.array([stop], dtype=np.int64)})
    row1_steps = expected[1].index(stop) + 1 if stop in expected[1] else 10
    assert tokens.shape[0] == row1_steps
    assert tokens[0, 0, 0] == stop and set(tokens[1:, 0, 0]) <= {2}
    assert list(tokens[:, 1, 0]) == expected[1][:row1_steps]
    alone = {k: v[:1] for k, v in feeds.items() if k.startswith("prompt_")}
    (tokens,) = looped.run(["tokens"], {**feeds, **alone, "eos_token_ids": np.array([stop], dtype=np.int64)})
    assert tokens.shape == (1, 1, 1)


def test_greedy_loop_refuses_a_graph_without_the_decoder_contract(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from trainer.export_greedy_loop import LoopExportError, build_greedy_loop

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "not_a_decoder",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    with pytest.raises(LoopExportError, match="decoder-with-past contract"):
        build_greedy_loop(helper.make_model(graph))


def test_float16_export_halves_the_weights_keeps_float32_logits_and_tracks_pytorch(tiny_model_dir, tmp_path, exported):
    import onnxruntime

    manifest = export_causal_lm(tiny_model_dir, tmp_path / "fp16", dtype="float16")
    assert manifest["dtype"] == "float16"
    assert 0 < manifest["export_check"]["max_abs_logit_diff"] <= 0.25
    session = onnxruntime.InferenceSession(str(tmp_path / "fp16" / "model.onnx"), providers=["CPUExecutionProvider"])
    types = {value.name: value.type for value in session.get_inputs() + session.get_outputs()}
    assert types["past_key_values.0.key"] == "tensor(float16)" and types["present.0.value"] == "tensor(float16)"
    assert types["logits"] == "tensor(float)"
    # Greedy tokens on the fixed prompts agree with float32 PyTorch, or part only at a near-tie (top-2 gap <= 0.5).
    greedy = manifest["export_check"]["greedy"]
    assert len(greedy["prompts"]) >= 2 and greedy["steps"] == 16
    for prompt in greedy["prompts"]:
        assert prompt["agreed_steps"] == 16 or prompt["top2_gap"] <= 0.5, prompt

    def weight_bytes(folder):
        return sum(path.stat().st_size for path in folder.glob("weights.*.bin") if ".int8." not in path.name)

    # Half the weight bytes, in the same per-layer files (float32 exports add 8-bit ones; float16 exports do not).
    float32_files = [name for name in exported[1]["weights"]["files"] if not name.startswith("weights.int8.")]
    assert manifest["weights"]["files"] == float32_files and "greedy_int8" not in manifest
    assert weight_bytes(tmp_path / "fp16") < 0.6 * weight_bytes(exported[0])


def test_fused_decoder_matches_transformers_with_left_padding(tmp_path):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from trainer.fused_decoder import check_against_pytorch

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=320, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, bos_token_id=0, eos_token_id=1, pad_token_id=2,
    )
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    report = check_against_pytorch(str(tmp_path))
    # 13 per layer (onnxruntime folds the q/k/v Concat of weights when it loads: 12 run), plus the bias and length
    # arithmetic once.
    assert report["nodes"] <= 13 * 2 + 25
    for key in ("prefill_max_abs_logit_diff", "decode_max_abs_logit_diff"):
        assert report[key] < 1e-4, report
    for key in ("left_padded_prefill_vs_alone", "left_padded_decode_vs_alone"):
        assert report[key] < 1e-4, report


def test_greedy_loop_falls_back_to_model_onnx_when_the_fused_decoder_cannot_serve(exported):
    # The test model's head dimension (8) is below what GroupQueryAttention takes: the loop wraps model.onnx.
    manifest = exported[1]
    assert manifest["greedy_loop"]["decoder"] == "model.onnx"
    assert "multiple of 16" in manifest["greedy_loop"]["fused_refused"]


def test_greedy_agreement_check_refuses_an_export_whose_weights_are_wrong(tiny_model_dir, exported, tmp_path):
    import shutil

    from transformers import AutoTokenizer

    from trainer.decoder_io import load_causal_lm
    from trainer.export_onnx import ExportError, check_greedy_agreement

    out_dir, manifest = exported
    assert all(prompt["agreed_steps"] == 16 for prompt in manifest["export_check"]["greedy"]["prompts"])
    broken = tmp_path / "broken"
    shutil.copytree(out_dir, broken)
    # Layer 1's weights scaled: the graph runs, its tokens are simply not the model's.
    weights = np.fromfile(broken / "weights.layer-001.bin", dtype=np.float32)
    (weights * 1.5).astype(np.float32).tofile(broken / "weights.layer-001.bin")
    model, tokenizer = load_causal_lm(tiny_model_dir), AutoTokenizer.from_pretrained(str(tiny_model_dir))
    with pytest.raises(ExportError, match="not a near-tie"):
        check_greedy_agreement(model, tokenizer, broken / "model.onnx", tolerance=1e-3)
