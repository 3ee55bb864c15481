"""Weights stored once per content: one file per decoder layer plus one for everything else.

A fine-tune that changes some layers leaves the others bit-identical to its base. When every model folder splits
its weights the same way, the unchanged layers land in byte-identical files, and weft's content-addressed blob
store (one blob per file sha256) keeps them once across the base and every fine-tuned version.

    python -m trainer.weight_files shard-hf <hf folder>        # model.safetensors -> per-layer shards, in place

Hugging Face folders: `model-layer-000.safetensors` … and `model-shared.safetensors` (embeddings, final norm, head)
with the standard `model.safetensors.index.json`, so transformers loads them unchanged. safetensors writes a header
that depends only on the tensors (names, dtypes, shapes), so equal tensors give equal files.

ONNX folders: every initializer of at least EXTERNAL_MIN_BYTES lives in `weights.layer-000.bin` … or
`weights.shared.bin` (external data; tensors from 64 KiB on at 4096-byte aligned offsets, smaller ones at 64; a
file's tensors ordered by their own sha256 and stored once each), and both graphs (model.onnx and
generate_greedy.onnx) point into the same files; what only the loop has (the fused decoder's rotary tables) goes to
`weights.generate_greedy.bin`. A tensor belongs to layer i when its name or every node that reads it says
`layers.i`; anything else is shared. A tied head is stored once, as the embedding, and read through a Transpose.
Each graph records the sha256 of every weight file it reads (metadata `weft.weight_files`), so the graph file's own
hash, which lib/inference keys sessions on, still changes whenever any weight does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper
from onnx.external_data_helper import ExternalDataInfo, uses_external_data

# What weft-model.json's "weights" says about a folder laid out this way (absent: weights inside the graph files).
ONNX_LAYOUT = "weft-layer-files/1"
HF_LAYOUT = "weft-layer-shards/1"
WEIGHT_FILE_PREFIX = "weights."
SHARED_GROUP = "shared"
# Large tensors start on a page boundary (onnxruntime can map them); small ones on 64 bytes, not to pad them 4x.
PAGE_ALIGNMENT, SMALL_ALIGNMENT, PAGE_ALIGNED_FROM = 4096, 64, 64 * 1024
# Smaller initializers (a tiny model's norms, shape constants) stay in the graph: not worth a file offset.
EXTERNAL_MIN_BYTES = 1024
WEIGHT_FILES_METADATA = "weft.weight_files"
# Nodes this module adds: a weight stored once, read transposed (a tied head).
TRANSPOSE_NODE_PREFIX = "weft.transpose."
HF_INDEX = "model.safetensors.index.json"

_LAYER_IN_NAME = re.compile(r"(?:^|[./])layers\.(\d+)(?:[./]|$)")


class WeightFilesError(Exception):
    pass


def group_file(group: str, kind: str) -> str:
    """`weights.layer-007.bin` / `weights.shared.bin` (ONNX) or `model-layer-007.safetensors` (HF)."""
    if kind == "onnx":
        return f"{WEIGHT_FILE_PREFIX}{group}.bin"
    return f"model-{group}.safetensors"


def layer_group(index: int) -> str:
    return f"layer-{index:03d}"


def _layer_of_name(name: str) -> int | None:
    match = _LAYER_IN_NAME.search(name)
    return int(match.group(1)) if match else None


# ---- Hugging Face folders -------------------------------------------------------------------------------------


def hf_group_of(tensor_name: str) -> str:
    layer = _layer_of_name(tensor_name)
    return SHARED_GROUP if layer is None else layer_group(layer)


def shard_hf_folder(hf_dir: Path) -> dict:
    """Rewrites a Hugging Face folder's safetensors weights (one file or any sharding) as one shard per decoder layer
    plus a shared one, with model.safetensors.index.json. Idempotent; a folder with .bin weights is refused."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    hf_dir = Path(hf_dir)
    index_path = hf_dir / HF_INDEX
    if index_path.exists():
        weight_map = json.loads(index_path.read_text())["weight_map"]
        sources = sorted(set(weight_map.values()))
    elif (hf_dir / "model.safetensors").exists():
        sources = ["model.safetensors"]
    else:
        raise WeightFilesError(f"{hf_dir} has no safetensors weights (model.safetensors or {HF_INDEX})")
    names_by_source: dict[str, list[str]] = {}
    groups: dict[str, list[tuple[str, str]]] = {}
    for source in sources:
        with safe_open(str(hf_dir / source), framework="pt") as handle:
            names_by_source[source] = list(handle.keys())
        for name in names_by_source[source]:
            groups.setdefault(hf_group_of(name), []).append((name, source))
    staged: list[tuple[Path, Path]] = []
    weight_map = {}
    total_size = 0
    for group, members in sorted(groups.items()):
        tensors = {}
        for name, source in members:
            with safe_open(str(hf_dir / source), framework="pt") as handle:
                tensors[name] = handle.get_tensor(name).contiguous()
        target = hf_dir / group_file(group, "hf")
        partial = target.with_name(target.name + ".partial")
        save_file(tensors, str(partial), metadata={"format": "pt"})
        staged.append((partial, target))
        for name, tensor in tensors.items():
            weight_map[name] = target.name
            total_size += tensor.numel() * tensor.element_size()
    index = {"metadata": {"total_size": total_size, "weft_layout": HF_LAYOUT}, "weight_map": dict(sorted(weight_map.items()))}
    for partial, target in staged:
        partial.replace(target)
    new_names = {target.name for _, target in staged}
    for source in sources:
        if source not in new_names:
            (hf_dir / source).unlink(missing_ok=True)
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    return {"layout": HF_LAYOUT, "files": sorted(new_names)}


# ---- ONNX folders ---------------------------------------------------------------------------------------------


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attribute.g)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for subgraph in attribute.graphs:
                    yield from _graphs(subgraph)


def tensor_bytes(tensor: TensorProto, base_dir: Path) -> bytes:
    """The tensor's little-endian bytes, wherever they are (inline raw_data, typed fields, or an external file)."""
    if uses_external_data(tensor):
        info = ExternalDataInfo(tensor)
        with open(base_dir / info.location, "rb") as handle:
            handle.seek(info.offset or 0)
            return handle.read(info.length) if info.length else handle.read()
    if tensor.HasField("raw_data"):
        return tensor.raw_data
    return numpy_helper.to_array(tensor).tobytes()


def _point_at(tensor: TensorProto, location: str, offset: int, length: int) -> None:
    """Makes the initializer read its bytes from location[offset:offset+length] (onnx's external-data fields)."""
    for field in ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data"):
        tensor.ClearField(field)
    del tensor.external_data[:]
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    tensor.data_location = TensorProto.EXTERNAL


def _tensor_key(tensor: TensorProto, data: bytes) -> tuple[int, tuple[int, ...], str]:
    return (tensor.data_type, tuple(tensor.dims), hashlib.sha256(data).hexdigest())


def onnx_group_of(name: str, readers: list[str]) -> str:
    """layer-i when the initializer's name, or every node that reads it, belongs to decoder layer i."""
    layer = _layer_of_name(name)
    if layer is None:
        layers = {_layer_of_name(reader) for reader in readers}
        if len(layers) == 1:
            layer = layers.pop()
    return SHARED_GROUP if layer is None else layer_group(layer)


def sha256_of(path: Path) -> str:
    """A file's sha256, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _record_weight_files(model: onnx.ModelProto, digests: dict[str, str]) -> None:
    kept = [prop for prop in model.metadata_props if prop.key != WEIGHT_FILES_METADATA]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    if digests:
        entry = model.metadata_props.add()
        entry.key, entry.value = WEIGHT_FILES_METADATA, json.dumps(dict(sorted(digests.items())))


def _write_graph(model: onnx.ModelProto, path: Path) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(model.SerializeToString())
    partial.replace(path)


def _matrix_bytes_transposed(key: tuple, data: bytes) -> bytes:
    dtype = onnx.helper.tensor_dtype_to_np_dtype(key[0])
    return np.frombuffer(data, dtype=dtype).reshape(key[1]).T.tobytes()


def _transposed_duplicates(shared: dict[tuple, list[TensorProto]], onnx_dir: Path) -> list[tuple[str, str]]:
    """Tied embeddings: the exporter stores the head as a transposed copy of the embedding matrix (113 MB for
    SmolLM2). Of two shared matrices that are each other's transpose, the one with the smaller sha256 stays; the other
    is dropped from `shared` and becomes a Transpose node (onnxruntime folds it at load). Returns (kept, dropped)
    initializer names."""
    matrices = [key for key in shared if len(key[1]) == 2 and key[1][0] != key[1][1]]
    shapes = {(key[0], key[1]) for key in matrices}
    pairs: list[tuple[str, str]] = []
    for key in sorted(matrices, key=lambda key: key[2]):
        if key not in shared or (key[0], (key[1][1], key[1][0])) not in shapes:
            continue
        transposed = _matrix_bytes_transposed(key, tensor_bytes(shared[key][0], onnx_dir))
        partner = (key[0], (key[1][1], key[1][0]), hashlib.sha256(transposed).hexdigest())
        if partner in shared:
            keep, drop = sorted([key, partner], key=lambda key: key[2])
            pairs.extend((shared[keep][0].name, tensor.name) for tensor in shared.pop(drop))
    return pairs


def _prepend_transposes(graph: onnx.GraphProto, transposes: list[tuple[str, str]]) -> None:
    nodes = [
        onnx.helper.make_node("Transpose", [source], [target], perm=[1, 0], name=f"{TRANSPOSE_NODE_PREFIX}{target}")
        for source, target in transposes
    ]
    nodes.extend(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)


def _write_weight_file(onnx_dir: Path, location: str, tensors: dict[tuple, list[TensorProto]]) -> str:
    """Writes the distinct tensors (content key -> the initializers holding them) into onnx_dir/location, ordered by
    content so the file depends on nothing but the tensors it holds, and points the initializers at their bytes.
    Returns the file's sha256."""
    partial = onnx_dir / (location + ".partial")
    offset = 0
    digest = hashlib.sha256()
    with open(partial, "wb") as handle:
        for key in sorted(tensors, key=lambda key: (key[2], key[0], key[1])):
            holders = tensors[key]
            data = tensor_bytes(holders[0], onnx_dir)
            padding = b"\0" * ((-offset) % (PAGE_ALIGNMENT if len(data) >= PAGE_ALIGNED_FROM else SMALL_ALIGNMENT))
            handle.write(padding)
            digest.update(padding)
            offset += len(padding)
            handle.write(data)
            digest.update(data)
            for tensor in holders:
                _point_at(tensor, location, offset, len(data))
            offset += len(data)
    partial.replace(onnx_dir / location)
    return digest.hexdigest()


def share_onnx_weights(onnx_dir: Path, graph_file: str = "model.onnx") -> dict:
    """Moves the weights of onnx_dir/graph_file (inline, or the per-tensor side files of a >2 GB export) into the
    per-layer weight files and rewrites the graph to read them there. Returns {"layout", "files": {name: sha256}}."""
    onnx_dir = Path(onnx_dir)
    graph_path = onnx_dir / graph_file
    model = onnx.load(str(graph_path), load_external_data=False)
    readers: dict[str, list[str]] = {}
    for graph in _graphs(model.graph):
        for node in graph.node:
            for name in node.input:
                readers.setdefault(name, []).append(node.name)
    old_locations = set()
    # group -> content key -> the initializers holding those bytes (read again when written: a 1B model's weights
    # need not all sit in memory at once)
    groups: dict[str, dict[tuple, list[TensorProto]]] = {}
    for tensor in model.graph.initializer:
        if uses_external_data(tensor):
            old_locations.add(ExternalDataInfo(tensor).location)
        data = tensor_bytes(tensor, onnx_dir)
        if len(data) < EXTERNAL_MIN_BYTES:
            # Small tensors live in the graph, wherever the exporter put them: the layout depends on the weights only.
            if uses_external_data(tensor):
                del tensor.external_data[:]
                tensor.data_location = TensorProto.DEFAULT
                tensor.raw_data = data
            continue
        key = _tensor_key(tensor, data)
        del data
        groups.setdefault(onnx_group_of(tensor.name, readers.get(tensor.name, [])), {}).setdefault(key, []).append(tensor)
    transposes = _transposed_duplicates(groups.get(SHARED_GROUP, {}), onnx_dir)
    digests = {
        group_file(group, "onnx"): _write_weight_file(onnx_dir, group_file(group, "onnx"), tensors)
        for group, tensors in sorted(groups.items())
    }
    if transposes:
        dropped = {target for _, target in transposes}
        kept = [tensor for tensor in model.graph.initializer if tensor.name not in dropped]
        del model.graph.initializer[:]
        model.graph.initializer.extend(kept)
        _prepend_transposes(model.graph, transposes)
    _record_weight_files(model, digests)
    _write_graph(model, graph_path)
    for location in old_locations - set(digests):
        (onnx_dir / location).unlink(missing_ok=True)
    return {"layout": ONNX_LAYOUT, "files": dict(sorted(digests.items()))}


def has_weight_files(onnx_dir: Path, graph_file: str = "model.onnx") -> bool:
    """True when graph_file reads its weights from per-layer weight files (exported with this layout)."""
    model = onnx.load(str(Path(onnx_dir) / graph_file), load_external_data=False)
    return any(
        uses_external_data(tensor) and ExternalDataInfo(tensor).location.startswith(WEIGHT_FILE_PREFIX)
        for tensor in model.graph.initializer
    )


def weight_file_index(onnx_dir: Path, graph_file: str = "model.onnx") -> dict[tuple, tuple]:
    """Content key (dtype, dims, sha256) -> (file, offset, length, source dims) of every tensor graph_file keeps in
    weight files; source dims is None, or the stored matrix's dims when the graph reads it through a Transpose."""
    onnx_dir = Path(onnx_dir)
    model = onnx.load(str(onnx_dir / graph_file), load_external_data=False)
    index: dict[tuple, tuple] = {}
    stored: dict[str, TensorProto] = {}
    for tensor in model.graph.initializer:
        if not uses_external_data(tensor):
            continue
        info = ExternalDataInfo(tensor)
        if not info.location.startswith(WEIGHT_FILE_PREFIX):
            continue
        stored[tensor.name] = tensor
        index.setdefault(_tensor_key(tensor, tensor_bytes(tensor, onnx_dir)), (info.location, info.offset, info.length, None))
    for node in model.graph.node:
        if node.op_type == "Transpose" and node.name.startswith(TRANSPOSE_NODE_PREFIX) and node.input[0] in stored:
            source = stored[node.input[0]]
            info = ExternalDataInfo(source)
            key = _tensor_key(source, tensor_bytes(source, onnx_dir))
            transposed = _matrix_bytes_transposed(key, tensor_bytes(source, onnx_dir))
            transposed_key = (key[0], (key[1][1], key[1][0]), hashlib.sha256(transposed).hexdigest())
            index.setdefault(transposed_key, (info.location, info.offset, info.length, key[1]))
    return index


def point_at_indexed(tensor: TensorProto, found: tuple, transposes: list[tuple[str, str]]) -> str:
    """Makes the initializer read the equal tensor weight_file_index found; one stored only as its transpose (a tied
    head) is read under a new name and a (source, target) pair is added to transposes for _prepend_transposes.
    Returns the weight file it now reads."""
    location, offset, length, source_dims = found
    if source_dims is not None:
        target = tensor.name
        tensor.name = f"{target}.untransposed"
        del tensor.dims[:]
        tensor.dims.extend(source_dims)
        transposes.append((tensor.name, target))
    _point_at(tensor, location, offset, length)
    return location


def save_sharing_weights(model: onnx.ModelProto, path: Path, index: dict[tuple, tuple]) -> dict:
    """Saves a graph whose initializers equal tensors already in the folder's weight files (index from
    weight_file_index) as references to those bytes; the others of at least EXTERNAL_MIN_BYTES go to a weight file
    named after the graph (`weights.generate_greedy.bin`), smaller ones stay inline. Returns what was shared."""
    path = Path(path)
    shared = inline = 0
    used: set[str] = set()
    transposes: list[tuple[str, str]] = []
    # Tensors only this graph has (the fused decoder's rotary tables): a weight file of their own, equal across
    # versions of one architecture, so stored once as well.
    own: dict[tuple, list[TensorProto]] = {}
    for tensor in model.graph.initializer:
        if uses_external_data(tensor):
            location = ExternalDataInfo(tensor).location
            if not location.startswith(WEIGHT_FILE_PREFIX):
                raise WeightFilesError(f"{path.name}: initializer {tensor.name} is in {location}, not a weight file")
            used.add(location)
            shared += 1
            continue
        data = tensor_bytes(tensor, path.parent)
        if len(data) < EXTERNAL_MIN_BYTES:
            inline += len(data)
            continue
        key = _tensor_key(tensor, data)
        found = index.get(key)
        if found is None:
            own.setdefault(key, []).append(tensor)
            continue
        used.add(point_at_indexed(tensor, found, transposes))
        shared += 1
    if transposes:
        _prepend_transposes(model.graph, transposes)
    digests = {location: sha256_of(path.parent / location) for location in sorted(used)}
    own_location = f"{WEIGHT_FILE_PREFIX}{path.stem}.bin"
    if own:
        digests[own_location] = _write_weight_file(path.parent, own_location, own)
    else:  # an earlier attempt's (the fused loop before a fallback) would be left unread
        (path.parent / own_location).unlink(missing_ok=True)
    _record_weight_files(model, digests)
    _write_graph(model, path)
    return {"shared_tensors": shared, "own_tensors": len(own), "inline_bytes": inline, "files": sorted(digests)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    shard = commands.add_parser("shard-hf", help="split a Hugging Face folder's safetensors into per-layer shards")
    shard.add_argument("hf_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        print(json.dumps({"event": "done", **shard_hf_folder(args.hf_dir)}))
    except WeightFilesError as error:
        print(json.dumps({"event": "error", "kind": "invalid_input", "message": str(error)}))
        sys.exit(2)


if __name__ == "__main__":
    main()
