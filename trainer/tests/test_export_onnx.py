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
    assert logits.shape == (1, 5, manifest["vocab_size"])
    assert present[0].shape == (1, 2, 5, 8)
    next_token = np.array([[int(logits[0, -1].argmax())]], dtype=np.int64)
    mask = np.ones((1, 6), dtype=np.int64)
    step_logits, present = _run(session, manifest, next_token, mask, present)
    assert step_logits.shape == (1, 1, manifest["vocab_size"]) and present[0].shape == (1, 2, 6, 8)
    with torch.no_grad():
        full = model(torch.from_numpy(np.concatenate([prompt, next_token], axis=1))).logits.numpy()
    assert np.abs(full[:, :5] - logits).max() < 1e-3
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
