"""8-bit weights for the CPU's in-graph greedy decoder (trainer/quantize_int8.py), as the export writes them."""

from __future__ import annotations

import json
import shutil

import onnx
import pytest
from onnx.external_data_helper import ExternalDataInfo, uses_external_data

from trainer.export_greedy_loop import LOOP_FILE
from trainer.export_onnx import export_causal_lm
from trainer.quantize_int8 import INT8_LOOP_FILE, greedy_tokens, main, write_int8_loop
from trainer.weight_files import _graphs, sha256_of


@pytest.fixture(scope="module")
def exported(tiny_model_dir, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("export-int8") / "onnx"
    return out_dir, export_causal_lm(tiny_model_dir, out_dir)


def test_export_writes_the_int8_decoder_and_lists_its_files(exported):
    out_dir, manifest = exported
    int8 = manifest["greedy_int8"]
    assert int8["file"] == INT8_LOOP_FILE and (out_dir / INT8_LOOP_FILE).exists()
    assert int8["quantization"]["bits"] == 8
    # Its own files are per layer (plus the head), and every one it reads is in the manifest's weight list.
    own = sorted(name for name in int8["weight_files"] if name.startswith("weights.int8."))
    assert own == ["weights.int8.layer-000.bin", "weights.int8.layer-001.bin", "weights.int8.shared.bin"]
    assert set(int8["weight_files"]) <= set(manifest["weights"]["files"])
    assert json.loads((out_dir / "weft-model.json").read_text())["greedy_int8"]["file"] == INT8_LOOP_FILE


def test_int8_graph_quantizes_every_matmul_and_reuses_the_float32_embeddings(exported):
    out_dir, _ = exported
    model = onnx.load(str(out_dir / INT8_LOOP_FILE), load_external_data=False)
    nodes = [node for graph in _graphs(model.graph) for node in graph.node]
    weights = {tensor.name for graph in _graphs(model.graph) for tensor in graph.initializer}
    # No MatMul reads a weight any more (the ones left multiply activations: attention); qkv, o, gate/up, down of
    # each of the 2 layers and the head are MatMulNBits.
    assert not [node.name for node in nodes if node.op_type == "MatMul" and set(node.input) & weights]
    assert sum(node.op_type == "MatMulNBits" for node in nodes) >= 2 * 4 + 1
    locations = {ExternalDataInfo(t).location for g in _graphs(model.graph) for t in g.initializer if uses_external_data(t)}
    # The float32 tensors it still needs (embeddings, norms) are read from the existing files, not copied.
    assert "weights.shared.bin" in locations
    assert not any(name.startswith("weights.int8.") and "embed" in name for name in locations)


def test_int8_decoder_runs_and_follows_float32_on_the_check_prompts(exported):
    out_dir, manifest = exported
    check = manifest["greedy_int8"]["check"]
    assert len(check["agreed_steps_with_float32"]) == 2
    prompt = [5, 6, 7, 8, 9, 10]
    tokens = greedy_tokens(out_dir / INT8_LOOP_FILE, prompt, 8)
    assert len(tokens) == 8 and all(isinstance(token, int) for token in tokens)
    # Near-ties may flip later tokens of a random tiny model; the first follows float32.
    assert tokens[0] == greedy_tokens(out_dir / LOOP_FILE, prompt, 8)[0]


def test_quantizing_is_deterministic_so_unchanged_layers_are_stored_once(exported, tmp_path):
    out_dir, _ = exported
    again = tmp_path / "onnx"
    shutil.copytree(out_dir, again)
    for leftover in [*again.glob("weights.int8.*"), again / INT8_LOOP_FILE]:
        leftover.unlink()
    write_int8_loop(again, [[5, 6, 7]])
    for name in ["weights.int8.layer-000.bin", "weights.int8.layer-001.bin", "weights.int8.shared.bin", INT8_LOOP_FILE]:
        assert sha256_of(again / name) == sha256_of(out_dir / name), name


def test_cli_refuses_a_folder_that_is_not_a_float32_weft_export(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path)])
    assert exit_info.value.code == 1
    error = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert error["kind"] == "quantize_failed" and "weft-model.json" in error["message"]
