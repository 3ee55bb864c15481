"""8-bit weights for the CPU's in-graph greedy decoder: generate_greedy.int8.onnx beside generate_greedy.onnx.

On CPU, batch-1 decode reads every weight once per token, so memory bandwidth sets its speed; 8-bit weights read a
quarter of float32's bytes. The graph is generate_greedy.onnx after onnxruntime's basic constant folding (the fused
decoder's QKV and gate/up matrices are Concat nodes over per-layer initializers until folded) with every MatMul
weight quantized by onnxruntime's MatMulNBits quantizer: 8 bits, blocks of 32 along K, symmetric, accuracy level 4
(int8 compute). Embeddings and norms stay float32 and are read from the folder's existing weight files; the new
tensors go to per-layer files (`weights.int8.layer-007.bin`, `weights.int8.shared.bin`), so the layers a fine-tune
leaves alone quantize to the same bytes and are stored once across versions, as the float32 ones are.

Measured on SmolLM2-135M, 2 cores, 80 qa-eval RAG prompts (bench/python/cpu_int8.py): decode 3.5x PyTorch float32,
end to end 2.18x, qa-eval F1 -0.010 [-0.030, +0.010] against float32. Greedy tokens can differ from float32's, so
the check below records agreement with the float32 decoder instead of requiring it; weft serves this graph only when
asked (WEFT_CPU_WEIGHTS=int8), for greedy requests that decode in the graph.

    python -m trainer.quantize_int8 <onnx folder>      # writes the graph and its weight files, prints the check
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto
from onnx.external_data_helper import uses_external_data

from trainer.export_greedy_loop import LOOP_FILE
from trainer.weight_files import (
    EXTERNAL_MIN_BYTES,
    WEIGHT_FILE_PREFIX,
    _graphs,
    _prepend_transposes,
    _record_weight_files,
    _tensor_key,
    _write_graph,
    _write_weight_file,
    layer_group,
    onnx_group_of,
    point_at_indexed,
    sha256_of,
    tensor_bytes,
    weight_file_index,
)

INT8_LOOP_FILE = "generate_greedy.int8.onnx"
INT8_FILE_PREFIX = f"{WEIGHT_FILE_PREFIX}int8."
BITS, BLOCK_SIZE, ACCURACY_LEVEL = 8, 32, 4


class QuantizeError(Exception):
    pass


def _fold(loop_path: Path, scratch: Path) -> Path:
    """generate_greedy.onnx after onnxruntime's basic optimizations (constant folding), weights in one side file."""
    import onnxruntime as ort

    folded = scratch / "folded.onnx"
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(folded)
    options.add_session_config_entry("session.optimized_model_external_initializers_file_name", "folded.bin")
    options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    ort.InferenceSession(str(loop_path), options, providers=["CPUExecutionProvider"])
    return folded


def _quantize(folded: Path, bits: int = BITS) -> onnx.ModelProto:
    from onnxruntime.quantization import matmul_nbits_quantizer as nbits

    logging.getLogger(nbits.__name__).setLevel(logging.WARNING)  # one INFO line per tensor otherwise

    config = nbits.DefaultWeightOnlyQuantConfig(
        block_size=BLOCK_SIZE, is_symmetric=True, accuracy_level=ACCURACY_LEVEL, bits=bits
    )
    quantizer = nbits.MatMulNBitsQuantizer(
        onnx.load(str(folded)), block_size=BLOCK_SIZE, is_symmetric=True, accuracy_level=ACCURACY_LEVEL,
        algo_config=config,
    )
    quantizer.process()
    model = quantizer.model.model
    quantized = sum(node.op_type == "MatMulNBits" for graph in _graphs(model.graph) for node in graph.node)
    if quantized == 0:
        raise QuantizeError("the quantizer found no MatMul weight to quantize")
    return model


# The fused decoder (trainer/fused_decoder.py) names its per-layer tensors l<i>.<what>; the quantizer keeps the name.
_FUSED_LAYER_NAME = re.compile(r"^l(\d+)\.")


def _group_of(name: str, readers: list[str]) -> str:
    match = _FUSED_LAYER_NAME.match(name)
    return layer_group(int(match.group(1))) if match else onnx_group_of(name, readers)


def _save(model: onnx.ModelProto, onnx_dir: Path) -> dict:
    """Writes the quantized graph: tensors equal to ones in the folder's float32 weight files point there; the others
    of at least EXTERNAL_MIN_BYTES go to per-layer int8 weight files; smaller ones stay inline."""
    index = weight_file_index(onnx_dir, LOOP_FILE)
    readers: dict[str, list[str]] = {}
    for graph in _graphs(model.graph):
        for node in graph.node:
            for name in node.input:
                readers.setdefault(name, []).append(node.name)
    used: set[str] = set()
    groups: dict[str, dict[tuple, list[TensorProto]]] = {}
    shared = 0
    for graph in list(_graphs(model.graph)):
        transposes: list[tuple[str, str]] = []
        for tensor in graph.initializer:
            data = tensor_bytes(tensor, onnx_dir)  # the quantizer kept every tensor in memory
            if uses_external_data(tensor):
                raise QuantizeError(f"initializer {tensor.name} still points at an external file")
            if len(data) < EXTERNAL_MIN_BYTES:
                continue
            key = _tensor_key(tensor, data)
            found = index.get(key)
            if found is None:
                group = _group_of(tensor.name, readers.get(tensor.name, []))
                groups.setdefault(group, {}).setdefault(key, []).append(tensor)
                continue
            used.add(point_at_indexed(tensor, found, transposes))
            shared += 1
        if transposes:
            _prepend_transposes(graph, transposes)
    digests = {location: sha256_of(onnx_dir / location) for location in sorted(used)}
    for group, tensors in sorted(groups.items()):
        location = f"{INT8_FILE_PREFIX}{group}.bin"
        digests[location] = _write_weight_file(onnx_dir, location, tensors)
    _record_weight_files(model, digests)
    _write_graph(model, onnx_dir / INT8_LOOP_FILE)
    own = sorted(location for location in digests if location.startswith(INT8_FILE_PREFIX))
    return {"shared_tensors": shared, "files": sorted(digests), "own_files": own,
            "own_bytes": sum((onnx_dir / location).stat().st_size for location in own)}


def greedy_tokens(path: Path, prompt: list[int], new_tokens: int, threads: int = 2) -> list[int]:
    """The graph's greedy tokens for one prompt (no stop token: every step counts)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    ids = np.array([prompt], dtype=np.int64)
    tokens = session.run(None, {
        "prompt_ids": ids, "prompt_attention_mask": np.ones_like(ids),
        "prompt_position_ids": np.arange(len(prompt), dtype=np.int64)[None],
        "max_new_tokens": np.array(new_tokens, dtype=np.int64),
        "eos_token_ids": np.array([-1], dtype=np.int64), "pad_token_id": np.array(0, dtype=np.int64),
    })[0]
    return tokens[:, 0, 0].tolist()


def write_int8_loop(onnx_dir: Path, check_prompts: list[list[int]], new_tokens: int = 16) -> dict:
    """Writes generate_greedy.int8.onnx and its weight files into onnx_dir (which has generate_greedy.onnx) and
    compares its greedy tokens with the float32 graph's on check_prompts. Returns what weft-model.json records."""
    onnx_dir = Path(onnx_dir)
    loop_path = onnx_dir / LOOP_FILE
    if not loop_path.exists():
        raise QuantizeError(f"{loop_path} does not exist")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="weft-int8-", dir=onnx_dir.parent) as scratch:
        model = _quantize(_fold(loop_path, Path(scratch)))
        for graph in _graphs(model.graph):  # bytes from folded.bin into memory before the scratch folder goes
            for tensor in graph.initializer:
                if uses_external_data(tensor):
                    data = tensor_bytes(tensor, Path(scratch))
                    del tensor.external_data[:]
                    tensor.data_location = TensorProto.DEFAULT
                    tensor.raw_data = data
    saved = _save(model, onnx_dir)
    del model
    agreement = []
    for prompt in check_prompts:
        reference = greedy_tokens(loop_path, prompt, new_tokens)
        got = greedy_tokens(onnx_dir / INT8_LOOP_FILE, prompt, new_tokens)
        agreement.append(next((i for i, (a, b) in enumerate(zip(reference, got)) if a != b), len(reference)))
    return {
        "file": INT8_LOOP_FILE,
        "quantization": {"op": "MatMulNBits", "bits": BITS, "block_size": BLOCK_SIZE, "symmetric": True,
                         "accuracy_level": ACCURACY_LEVEL},
        "weight_files": saved["files"],
        "own_bytes": saved["own_bytes"],
        "check": {"steps": new_tokens, "agreed_steps_with_float32": agreement},
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("onnx_dir", type=Path, help="an exported folder with generate_greedy.onnx (float32)")
    parser.add_argument("--new-tokens", type=int, default=16)
    args = parser.parse_args(argv)
    manifest_path = args.onnx_dir / "weft-model.json"
    try:
        if not manifest_path.exists():
            raise QuantizeError(f"{args.onnx_dir} has no weft-model.json: not a weft export")
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("dtype", "float32") != "float32":
            raise QuantizeError(f"{args.onnx_dir} is a {manifest['dtype']} export; 8-bit weights are made from float32")
        prompt = list(range(5, 37))
        result = write_int8_loop(args.onnx_dir, [prompt], args.new_tokens)
    except QuantizeError as error:
        print(json.dumps({"event": "error", "kind": "quantize_failed", "message": str(error)}), flush=True)
        sys.exit(1)
    manifest["greedy_int8"] = result
    files = set(manifest.get("weights", {}).get("files", []))
    if "weights" in manifest:
        manifest["weights"]["files"] = sorted(files | set(result["weight_files"]))
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps({"event": "done", **result}))


if __name__ == "__main__":
    main()
