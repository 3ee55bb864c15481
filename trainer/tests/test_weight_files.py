"""Weights stored once per content (trainer/weight_files.py): a fine-tune that changes one of two layers writes
byte-identical files for everything else, both ONNX graphs read the same weight files, and the folders still load
and match PyTorch."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from trainer import finetune
from trainer.export_onnx import export_causal_lm
from trainer.weight_files import WEIGHT_FILES_METADATA, shard_hf_folder


def file_digests(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir()) if path.is_file()}


def external_locations(graph_path: Path) -> set[str]:
    model = onnx.load(str(graph_path), load_external_data=False)
    return {
        entry.value
        for tensor in model.graph.initializer
        for entry in tensor.external_data
        if entry.key == "location"
    }


@pytest.fixture(scope="module")
def base_and_tuned(tiny_model_dir, chat_rows_file, tmp_path_factory):
    """The tiny model laid out per layer (hf + ONNX), and a real fine-tune of it with LoRA on its top layer only."""
    root = tmp_path_factory.mktemp("sharing")
    base_hf = root / "base" / "hf"
    shutil.copytree(tiny_model_dir, base_hf)
    shard_hf_folder(base_hf)
    export_causal_lm(base_hf, root / "base" / "onnx")
    arguments = [
        "--base", str(base_hf), "--train", str(chat_rows_file), "--out", str(root / "tuned"), "--config", "demo-cpu",
        "--batch-size", "2", "--lora-rank", "4", "--max-length", "192", "--device", "cpu", "--max-steps", "2",
        "--lora-top-layers", "1", "--learning-rate", "0.05", "--warmup-steps", "0",
    ]
    finetune.main(arguments)
    return root / "base", root / "tuned"


def test_hf_folder_is_one_shard_per_layer_and_loads_as_before(tiny_model_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    folder = tmp_path / "hf"
    shutil.copytree(tiny_model_dir, folder)
    shard_hf_folder(folder)
    assert not (folder / "model.safetensors").exists()
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    assert sorted(set(index["weight_map"].values())) == [
        "model-layer-000.safetensors", "model-layer-001.safetensors", "model-shared.safetensors",
    ]
    assert index["weight_map"]["model.layers.1.mlp.down_proj.weight"] == "model-layer-001.safetensors"
    assert index["weight_map"]["model.embed_tokens.weight"] == "model-shared.safetensors"
    before = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32).state_dict()
    after = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[name], after[name]) for name in before)
    # Idempotent: sharding a sharded folder gives the same bytes.
    digests = file_digests(folder)
    shard_hf_folder(folder)
    assert file_digests(folder) == digests


def test_a_fine_tune_rewrites_only_the_layer_it_changed(base_and_tuned):
    base, tuned = base_and_tuned
    for kind, changed, unchanged in (
        ("hf", "model-layer-001.safetensors", ["model-layer-000.safetensors", "model-shared.safetensors"]),
        ("onnx", "weights.layer-001.bin", ["weights.layer-000.bin", "weights.shared.bin"]),
    ):
        before, after = file_digests(base / kind), file_digests(tuned / kind)
        assert after[changed] != before[changed], f"{kind}/{changed} should hold the LoRA-merged layer"
        for name in unchanged:
            assert after[name] == before[name], f"{kind}/{name} differs from the base's although LoRA left it alone"
    # Bytes a content-addressed store (one blob per file sha256, like lib/lineage's) adds for the tuned version.
    known = set(file_digests(base / "hf").values()) | set(file_digests(base / "onnx").values())
    added = {
        f"{kind}/{path.name}": path.stat().st_size
        for kind in ("hf", "onnx")
        for path in sorted((tuned / kind).iterdir())
        if hashlib.sha256(path.read_bytes()).hexdigest() not in known
    }
    # The changed layer in HF, float32 ONNX and 8-bit ONNX (trainer/quantize_int8.py); the other 8-bit files are shared.
    changed_layer = sum((tuned / name).stat().st_size for name in (
        "hf/model-layer-001.safetensors", "onnx/weights.layer-001.bin", "onnx/weights.int8.layer-001.bin"))
    graphs = sum((tuned / "onnx" / name).stat().st_size
                 for name in ("model.onnx", "generate_greedy.onnx", "generate_greedy.int8.onnx", "weft-model.json"))
    weight_files_added = {name for name in added if name.endswith(".safetensors") or "/weights." in name}
    assert weight_files_added == {
        "hf/model-layer-001.safetensors", "onnx/weights.layer-001.bin", "onnx/weights.int8.layer-001.bin"}, added
    # Slack: the small JSON files the fine-tune writes again (tokenizer config).
    assert sum(added.values()) <= changed_layer + graphs + 16 * 1024, added


def test_a_bfloat16_base_shares_its_untouched_hf_and_onnx_layers_with_a_fine_tune(tiny_model_dir, chat_rows_file, tmp_path):
    """A bf16 checkpoint (as most downloaded Llamas are): the fine-tune trains in float32 but saves its HF folder in
    bf16, so the layer LoRA left alone is the base's file byte for byte in both the HF folder and the ONNX export."""
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    base_hf = tmp_path / "base" / "hf"
    AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.bfloat16).save_pretrained(str(base_hf))
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        if (tiny_model_dir / name).exists():
            shutil.copy2(tiny_model_dir / name, base_hf / name)
    shard_hf_folder(base_hf)
    export_causal_lm(base_hf, tmp_path / "base" / "onnx")
    finetune.main([
        "--base", str(base_hf), "--train", str(chat_rows_file), "--out", str(tmp_path / "tuned"), "--config", "demo-cpu",
        "--batch-size", "2", "--lora-rank", "4", "--max-length", "192", "--device", "cpu", "--max-steps", "2",
        "--lora-top-layers", "1", "--learning-rate", "0.05", "--warmup-steps", "0",
    ])
    tuned = tmp_path / "tuned"
    with safe_open(str(tuned / "hf" / "model-layer-001.safetensors"), framework="pt") as handle:
        assert {handle.get_slice(name).get_dtype() for name in handle.keys()} == {"BF16"}
    for kind, changed, unchanged in (
        ("hf", "model-layer-001.safetensors", ["model-layer-000.safetensors", "model-shared.safetensors"]),
        ("onnx", "weights.layer-001.bin", ["weights.layer-000.bin", "weights.shared.bin"]),
    ):
        before, after = file_digests(tmp_path / "base" / kind), file_digests(tuned / kind)
        assert after[changed] != before[changed], f"{kind}/{changed} should hold the LoRA-merged layer"
        for name in unchanged:
            assert after[name] == before[name], f"{kind}/{name} differs from the bf16 base's although LoRA left it alone"


def test_both_graphs_read_the_same_weight_files_and_record_their_digests(base_and_tuned):
    onnx_dir = base_and_tuned[0] / "onnx"
    manifest = json.loads((onnx_dir / "weft-model.json").read_text())
    # The float32 graphs' files (the 8-bit decoder's own are tested in test_quantize_int8.py).
    files = [name for name in manifest["weights"]["files"] if not name.startswith("weights.int8.")]
    assert manifest["weights"]["layout"] == "weft-layer-files/1"
    assert external_locations(onnx_dir / "model.onnx") == set(files)
    # The tiny model's loop wraps model.onnx (head dimension 8 is below what the fused decoder takes).
    assert external_locations(onnx_dir / "generate_greedy.onnx") == set(files)
    for graph in ("model.onnx", "generate_greedy.onnx"):
        metadata = {p.key: p.value for p in onnx.load(str(onnx_dir / graph), load_external_data=False).metadata_props}
        recorded = json.loads(metadata[WEIGHT_FILES_METADATA])
        assert recorded == {name: hashlib.sha256((onnx_dir / name).read_bytes()).hexdigest() for name in files}
    # A weight change reaches the graph file's own hash (what lib/inference keys its sessions on).
    tuned_dir = base_and_tuned[1] / "onnx"
    assert file_digests(onnx_dir)["model.onnx"] != file_digests(tuned_dir)["model.onnx"]


def test_the_fused_loop_reads_model_onnx_weights_and_decodes_like_it(tokenizer_dir, tmp_path):
    """head_dim 16: the fused decoder serves; its q/k/v, MLP, norm, embedding and head tensors are model.onnx's."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from trainer.export_greedy_loop import check_loop

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, bos_token_id=0, eos_token_id=1, pad_token_id=2,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(3.0)
    hf_dir = tmp_path / "hf"
    model.save_pretrained(hf_dir)
    for path in tokenizer_dir.iterdir():
        shutil.copy2(path, hf_dir / path.name)
    manifest = export_causal_lm(hf_dir, tmp_path / "onnx")
    assert manifest["greedy_loop"]["decoder"] == "fused"
    loop = onnx.load(str(tmp_path / "onnx" / "generate_greedy.onnx"), load_external_data=False)
    inline = {t.name: t.ByteSize() for t in loop.graph.initializer if not t.external_data and t.ByteSize() >= 1024}
    assert inline == {}, inline
    # Every tensor but the rotary tables is model.onnx's; those have a weight file of their own.
    own = {t.name for t in loop.graph.initializer if any(e.value == "weights.generate_greedy.bin" for e in t.external_data)}
    assert own == {"rotary.cos", "rotary.sin"}
    assert "weights.generate_greedy.bin" in manifest["weights"]["files"]
    assert check_loop(tmp_path / "onnx", [1, 42, 17, 99, 5, 300, 12])["steps"] == 12
    weight_bytes = sum(
        (tmp_path / "onnx" / name).stat().st_size for name in manifest["weights"]["files"]
        if "generate_greedy" not in name and not name.startswith("weights.int8.")
    )
    parameters = sum(p.numel() for p in model.parameters()) * 4
    # One copy of the weights, not one per graph, and the tied head not again as a transposed copy of the embedding.
    assert weight_bytes < parameters + 64 * 1024
    for graph in ("model.onnx", "generate_greedy.onnx"):
        nodes = onnx.load(str(tmp_path / "onnx" / graph), load_external_data=False).graph.node
        assert [node.op_type for node in nodes if node.name.startswith("weft.transpose.")] == ["Transpose"], graph
    assert np.isfinite(manifest["export_check"]["max_abs_logit_diff"])


def test_weights_already_in_side_files_move_into_weight_files(tiny_model_dir, tmp_path):
    """What a model over 2 GB looks like after torch's export (each tensor in its own side file): sharing reads them,
    writes the weight files, removes the side files, and the graph gives the same logits."""
    import onnxruntime

    from trainer.decoder_io import empty_past, model_dimensions, run_decoder
    from trainer.weight_files import share_onnx_weights

    exported = tmp_path / "exported"
    export_causal_lm(tiny_model_dir, exported)
    inline = onnx.load(str(exported / "model.onnx"))  # weights read back from the weight files
    side = tmp_path / "side"
    side.mkdir()
    onnx.save_model(inline, str(side / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=False,
                    size_threshold=0)
    side_files = {path.name for path in side.iterdir()} - {"model.onnx"}
    assert len(side_files) > 5
    result = share_onnx_weights(side)
    assert set(result["files"]) == {path.name for path in exported.glob("weights.*.bin") if ".int8." not in path.name}
    assert {path.name for path in side.iterdir()} == {"model.onnx", *result["files"]}
    for name in result["files"]:
        assert (side / name).read_bytes() == (exported / name).read_bytes(), name

    config = json.loads((tiny_model_dir / "config.json").read_text())
    dimensions = model_dimensions(type("Config", (), {"head_dim": None, **config})())
    prompt = np.array([[1, 42, 17, 99, 5]], dtype=np.int64)
    logits = []
    for folder in (exported, side):
        session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
        logits.append(run_decoder(session, prompt, np.ones_like(prompt), empty_past(dimensions, 1))[0])
    assert np.array_equal(logits[0], logits[1])
