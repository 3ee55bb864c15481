from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from trainer import finetune
from trainer.tests.conftest import REPOSITORY_ROOT

FAST = ["--config", "demo-cpu", "--batch-size", "2", "--lora-rank", "4", "--max-length", "192", "--device", "cpu"]


def subprocess_environment() -> dict[str, str]:
    inherited = os.environ.get("PYTHONPATH")
    python_path = str(REPOSITORY_ROOT) + (os.pathsep + inherited if inherited else "")
    return {**os.environ, "PYTHONPATH": python_path, "HF_HUB_OFFLINE": "1"}


def run_in_process(arguments, capsys):
    """Runs finetune.main; returns (exit code, parsed stdout events)."""
    try:
        finetune.main(arguments)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return code, events


def invalid_input_message(arguments, capsys) -> str:
    code, events = run_in_process(arguments, capsys)
    assert code == 2
    assert events[-1]["event"] == "error" and events[-1]["kind"] == "invalid_input"
    return events[-1]["message"]


def test_empty_training_file_is_invalid_input(tiny_model_dir, tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    message = invalid_input_message(["--base", str(tiny_model_dir), "--train", str(empty), "--out", str(tmp_path / "o")] + FAST, capsys)
    assert "empty" in message


def test_row_without_messages_names_the_line(tiny_model_dir, chat_rows_file, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(chat_rows_file.read_text() + json.dumps({"question": "q", "answer": "a"}) + "\n")
    arguments = ["--base", str(tiny_model_dir), "--train", str(bad), "--out", str(tmp_path / "o")] + FAST
    assert "line 9" in invalid_input_message(arguments, capsys)


def test_row_with_unknown_role_is_invalid_input(tiny_model_dir, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "robot", "content": "x"}]}) + "\n")
    arguments = ["--base", str(tiny_model_dir), "--train", str(bad), "--out", str(tmp_path / "o")] + FAST
    assert "'robot'" in invalid_input_message(arguments, capsys)


def test_base_folder_missing_weights_is_invalid_input(tiny_model_dir, chat_rows_file, tmp_path, capsys):
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir, base)
    (base / "model.safetensors").unlink()
    arguments = ["--base", str(base), "--train", str(chat_rows_file), "--out", str(tmp_path / "o")] + FAST
    assert "missing model.safetensors" in invalid_input_message(arguments, capsys)


def test_corrupt_weights_are_invalid_input(tiny_model_dir, chat_rows_file, tmp_path, capsys):
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir, base)
    (base / "model.safetensors").write_bytes(b"not a safetensors file")
    arguments = ["--base", str(base), "--train", str(chat_rows_file), "--out", str(tmp_path / "o")] + FAST
    assert "model does not load" in invalid_input_message(arguments, capsys)


@pytest.mark.parametrize(
    "override, expected",
    [(["--learning-rate", "-1"], "learning-rate"), (["--batch-size", "0"], "batch-size"), (["--epochs", "0"], "epochs")],
)
def test_nonsense_hyper_parameters_are_invalid_input(tiny_model_dir, chat_rows_file, tmp_path, capsys, override, expected):
    arguments = ["--base", str(tiny_model_dir), "--train", str(chat_rows_file), "--out", str(tmp_path / "o")] + FAST + override
    assert expected in invalid_input_message(arguments, capsys)


def test_checkpoint_and_resume_continue_the_same_run(tiny_model_dir, chat_rows_file, tmp_path, capsys):
    common = ["--base", str(tiny_model_dir), "--train", str(chat_rows_file)] + FAST + ["--max-steps", "4", "--checkpoint-every", "2"]
    code, straight = run_in_process(common + ["--out", str(tmp_path / "straight")], capsys)
    assert code == 0
    checkpoints = [event for event in straight if event["event"] == "checkpoint"]
    assert [event["step"] for event in checkpoints] == [2]
    checkpoint = tmp_path / "straight" / "checkpoints" / "step-2"
    assert checkpoints[0]["path"] == str(checkpoint)
    assert {"adapter", "optimizer.pt", "scheduler.pt", "rng.pt", "trainer_state.json"} <= set(os.listdir(checkpoint))

    code, resumed = run_in_process(common + ["--out", str(tmp_path / "resumed"), "--resume-from", str(checkpoint)], capsys)
    assert code == 0
    resumed_progress = [event for event in resumed if event["event"] == "progress"]
    assert [event["step"] for event in resumed_progress] == [3, 4]
    straight_losses = [event["loss"] for event in straight if event["event"] == "progress"][2:]
    assert [event["loss"] for event in resumed_progress] == pytest.approx(straight_losses, abs=1e-4)

    done = resumed[-1]
    assert done["event"] == "done" and done["export_check"]["max_abs_logit_diff"] <= 1e-3
    assert (tmp_path / "resumed" / "onnx" / "model.onnx").exists()
    assert (tmp_path / "resumed" / "hf" / "model.safetensors.index.json").exists()


def test_resume_with_different_hyper_parameters_is_invalid_input(tiny_model_dir, chat_rows_file, tmp_path, capsys):
    common = ["--base", str(tiny_model_dir), "--train", str(chat_rows_file)] + FAST + ["--checkpoint-every", "1"]
    code, _ = run_in_process(common + ["--max-steps", "2", "--out", str(tmp_path / "a")], capsys)
    assert code == 0
    checkpoint = tmp_path / "a" / "checkpoints" / "step-1"
    arguments = common + ["--max-steps", "3", "--out", str(tmp_path / "b"), "--resume-from", str(checkpoint)]
    assert "max_steps=2" in invalid_input_message(arguments, capsys)


def test_sigterm_stops_promptly_with_code_143(tiny_model_dir, chat_rows_file, tmp_path):
    environment = subprocess_environment()
    arguments = ["--base", str(tiny_model_dir), "--train", str(chat_rows_file), "--out", str(tmp_path / "o")]
    process = subprocess.Popen(
        [sys.executable, "-m", "trainer.finetune", *arguments, *FAST, "--max-steps", "100000", "--checkpoint-every", "1000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=environment,
        cwd=str(REPOSITORY_ROOT),
    )
    try:
        first_line = process.stdout.readline()
        assert json.loads(first_line)["event"] == "progress", first_line
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        remaining = process.stdout.read()
        code = process.wait(timeout=10)
        assert time.monotonic() - sent < 5
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 143
    assert json.loads(remaining.strip().splitlines()[-1]) == {"event": "cancelled"}
    assert not (tmp_path / "o" / "hf").exists()


def test_invalid_input_exit_code_from_the_command_line(tmp_path):
    environment = subprocess_environment()
    completed = subprocess.run(
        [sys.executable, "-m", "trainer.finetune", "--base", str(tmp_path / "nowhere"), "--train", str(tmp_path / "x.jsonl"), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, env=environment, cwd=str(REPOSITORY_ROOT), timeout=60,
    )
    assert completed.returncode == 2
    error = json.loads(completed.stdout.strip().splitlines()[-1])
    assert error["kind"] == "invalid_input" and "does not exist" in error["message"]


def test_answer_only_loss_equals_the_models_own_loss_and_gradients(tiny_model_dir, chat_rows_file):
    """causal_lm_loss skips the LM head on prompt positions; the loss and every LoRA gradient must not change."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, LlamaForCausalLM

    from trainer.chat_tokens import pad_batch, tokenize_conversation

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    rows = [json.loads(line)["messages"] for line in chat_rows_file.read_text().splitlines()[:3]]
    batch = pad_batch([tokenize_conversation(tokenizer, row) for row in rows], tokenizer.pad_token_id, 192)
    assert int((batch["labels"] != -100).sum()) < batch["labels"].numel() // 2  # mostly prompt: the head is skipped there

    def loss_and_gradients(compute):
        torch.manual_seed(0)
        model = get_peft_model(
            LlamaForCausalLM.from_pretrained(str(tiny_model_dir)),
            LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]),
        )
        for name, parameter in model.named_parameters():  # LoRA's B starts at zero; make the gradients non-trivial
            if "lora_B" in name:
                torch.nn.init.normal_(parameter, std=0.1)
        loss = compute(model)
        loss.backward()
        return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    reference_loss, reference_gradients = loss_and_gradients(lambda model: model(**batch).loss)
    loss, gradients = loss_and_gradients(lambda model: finetune.causal_lm_loss(model, batch))
    assert loss == pytest.approx(reference_loss, rel=1e-5)
    assert gradients.keys() == reference_gradients.keys() and len(gradients) > 0
    for name, gradient in gradients.items():
        assert torch.allclose(gradient, reference_gradients[name], rtol=1e-4, atol=1e-6), name
