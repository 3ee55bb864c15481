"""Tokenizing chat conversations for training: the loss covers assistant turns only."""

from __future__ import annotations

from typing import Any

import torch

IGNORE_INDEX = -100


def _template_ids(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool) -> list[int]:
    ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt)
    # transformers may return a BatchEncoding-like mapping for some tokenizers.
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def chat_prompt_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """Ids of a prompt ready for generation (ends with the assistant header)."""
    return _template_ids(tokenizer, messages, add_generation_prompt=True)


def tokenize_conversation(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[list[int], list[int]]:
    """Input ids and labels; labels are IGNORE_INDEX except on each assistant message's content and
    its closing <|im_end|> (what the model must learn to produce, including when to stop)."""
    input_ids = _template_ids(tokenizer, messages, add_generation_prompt=False)
    labels = [IGNORE_INDEX] * len(input_ids)
    end_of_turn_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(_template_ids(tokenizer, messages[:index], add_generation_prompt=True))
        end = len(_template_ids(tokenizer, messages[: index + 1], add_generation_prompt=False))
        for position in range(start, end):
            labels[position] = input_ids[position]
            if input_ids[position] == end_of_turn_id:
                break
    return input_ids, labels


def pad_batch(
    sequences: list[tuple[list[int], list[int]]], pad_token_id: int, max_length: int
) -> dict[str, torch.Tensor]:
    """Right-padded batch (training only; generation pads left)."""
    sequences = [(ids[:max_length], labels[:max_length]) for ids, labels in sequences]
    width = max(len(ids) for ids, _ in sequences)
    input_ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(sequences), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, (ids, row_labels) in enumerate(sequences):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(ids)] = torch.tensor(row_labels)
        attention_mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


def length_grouped_batches(lengths: list[int], batch_size: int, generator: torch.Generator) -> list[list[int]]:
    """Batches of similar length (less padding), in a seeded random order."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    # Sort within windows of 8 batches so batches stay mixed across epochs.
    window = batch_size * 8
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda index: lengths[index])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    permutation = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in permutation]
