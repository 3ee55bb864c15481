"""The PyTorch decode engine (trainer/decode_engine.py, WEFT_ENGINE=torch) against transformers' greedy generate."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
import torch

from trainer.decode_engine import Engine, EngineError, check_config
from trainer.tests.conftest import REPOSITORY_ROOT


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return Engine(tiny_model_dir, torch.device("cpu"), "off")


def transformers_greedy(model_dir, prompt: list[int], new_tokens: int) -> list[int]:
    """Greedy tokens from transformers' forward pass, the whole sequence each step (no cache, nothing masked)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(new_tokens):
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    return ids[len(prompt):]


def run(engine, request):
    chunks = []
    summary = engine.generate(request, chunks.append)
    rows = len(request["prompts"])
    tokens = [[token for chunk in chunks for token in chunk["tokens"][row]] for row in range(rows)]
    return tokens, summary


def test_load_checks_the_decoder_against_transformers(engine):
    assert engine.check["same_greedy_choice"] is True
    assert engine.check["max_abs_logit_diff"] < 1e-3


def test_left_padded_rows_generate_what_transformers_generates_alone(engine, tiny_model_dir):
    prompts = [[5, 17, 42, 9, 100, 7, 3], [8, 8, 21], [300, 2, 77, 45, 11]]
    expected = [transformers_greedy(tiny_model_dir, prompt, 12) for prompt in prompts]
    # Three rows run in a batch of four (the power-of-two bucket); no stop token, so every row runs its budget.
    tokens, summary = run(engine, {"id": 1, "prompts": prompts, "max_new_tokens": [12, 12, 12], "eos": [], "pad": 0})
    assert tokens == expected
    assert summary["done"] is True and summary["steps"] == 12


def test_generation_ends_when_every_row_has_stopped_or_used_its_budget(engine, tiny_model_dir):
    prompt = [5, 17, 42, 9, 100, 7, 3]
    expected = transformers_greedy(tiny_model_dir, prompt, 12)
    stop = expected[3]  # the fourth token, taken as a stop token
    first_stop = expected.index(stop)
    tokens, summary = run(engine, {"id": 2, "prompts": [prompt, [8, 8, 21]], "max_new_tokens": [12, 2], "eos": [stop]})
    assert summary["steps"] == first_stop + 1
    assert tokens[0] == expected[: first_stop + 1]


def test_bad_requests_are_refused_with_the_reason(engine):
    with pytest.raises(EngineError, match="exceed"):
        engine.generate({"prompts": [[1, 2, 3]], "max_new_tokens": [5000]}, lambda _: None)
    with pytest.raises(EngineError, match="token ids"):
        engine.generate({"prompts": [[1, 10**6]], "max_new_tokens": [2]}, lambda _: None)
    with pytest.raises(EngineError, match="one max_new_tokens per prompt"):
        engine.generate({"prompts": [[1]], "max_new_tokens": []}, lambda _: None)


def test_configurations_it_does_not_implement_are_refused(tiny_model_dir):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(tiny_model_dir))
    config.rope_scaling = {"rope_type": "llama3", "factor": 8.0}
    with pytest.raises(EngineError, match="rope scaling 'llama3'.*WEFT_ENGINE=onnxruntime"):
        check_config(config)


def test_the_process_protocol_serves_requests_and_reports_errors_per_request(tiny_model_dir):
    requests = [
        {"id": 1, "prompts": [[5, 17, 42]], "max_new_tokens": [3], "eos": []},
        {"id": 2, "prompts": [[5]], "max_new_tokens": [0]},
        "not json",
    ]
    stdin = "\n".join(item if isinstance(item, str) else json.dumps(item) for item in requests) + "\n"
    completed = subprocess.run(
        [sys.executable, "-m", "trainer.decode_engine", "--model", str(tiny_model_dir)],
        input=stdin, capture_output=True, text=True, cwd=REPOSITORY_ROOT, timeout=300, check=True,
    )
    lines = [json.loads(line) for line in io.StringIO(completed.stdout)]
    assert lines[0]["ready"] is True and lines[0]["device"] == "cpu" and lines[0]["dtype"] == "float32"
    first = [line for line in lines[1:] if line.get("id") == 1]
    assert [token for line in first if "tokens" in line for token in line["tokens"][0]] == transformers_greedy(
        tiny_model_dir, [5, 17, 42], 3
    )
    assert first[-1]["done"] is True
    assert "budget below 1" in next(line for line in lines if line.get("id") == 2)["error"]
    # A line that is no JSON has no id: its error comes as soon as it is read.
    assert "JSONDecodeError" in next(line for line in lines[1:] if line.get("id") is None)["error"]


def test_a_folder_without_weights_is_refused_before_ready(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "trainer.decode_engine", "--model", str(tmp_path)],
        capture_output=True, text=True, cwd=REPOSITORY_ROOT, timeout=120,
    )
    assert completed.returncode == 2
    assert json.loads(completed.stdout)["error"].endswith("(the model's Hugging Face folder is needed)")


def test_requests_arriving_mid_run_join_free_rows_or_wait_for_the_next_run(engine, tiny_model_dir):
    from collections import deque

    first = {"id": 1, "prompts": [[5, 17, 42, 9, 100, 7, 3], [8, 8, 21], [300, 2, 77, 45, 11]],
             "max_new_tokens": [12, 12, 12], "eos": []}
    joins = {"id": 2, "prompts": [[9, 4, 33]], "max_new_tokens": [5], "eos": []}  # fits: 3 tokens <= column 7
    waits = {"id": 3, "prompts": [list(range(20, 40))], "max_new_tokens": [4], "eos": []}  # 20 tokens > column 7
    messages = []
    engine.run(engine.validate(first), deque([joins, waits]), None, messages.append)
    # The batch of four rows had one free: request 2 took it and finished inside the run; request 3 waited.
    order = [(message["id"], "done" if message.get("done") else "tokens") for message in messages]
    assert order.index((2, "done")) < order.index((1, "done"))
    assert all(message["id"] != 3 for message in messages)

    def tokens_of(request_id):
        return [t for m in messages if m["id"] == request_id and "tokens" in m for t in m["tokens"][0]]

    assert tokens_of(2)[:5] == transformers_greedy(tiny_model_dir, joins["prompts"][0], 5)
    assert tokens_of(1)[:12] == transformers_greedy(tiny_model_dir, first["prompts"][0], 12)
