from __future__ import annotations

import pytest

from trainer.build_tokenizer import SPECIAL_TOKENS
from trainer.chat_tokens import IGNORE_INDEX, chat_prompt_ids, tokenize_conversation
from trainer.rag_prompt import rag_messages


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tokenizer_dir))


@pytest.mark.parametrize(
    "text",
    [
        "The greenhouse effect warms the surface.",
        "CO₂ rose to 420 ppm — about 50 % above 1750 levels.",
        "  two leading spaces\n\nand a tab\tinside",
        "",
    ],
)
def test_round_trip_reproduces_the_text(tokenizer, text):
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(ids) == text


def test_special_tokens_have_fixed_ids(tokenizer):
    assert [tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (0, 1, 2)


def test_chat_template_renders_chatml_with_generation_prompt(tokenizer):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    without = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    assert without == text[: -len("<|im_start|>assistant\n")]
    ids = chat_prompt_ids(tokenizer, messages)
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert ids.count(tokenizer.convert_tokens_to_ids("<|im_end|>")) == 2


def test_tokenizer_config_carries_the_chat_template(tokenizer_dir):
    import json

    config = json.loads((tokenizer_dir / "tokenizer_config.json").read_text())
    assert "<|im_start|>" in config["chat_template"] and "add_generation_prompt" in config["chat_template"]


def test_loss_covers_only_the_assistant_answer_and_its_end_token(tokenizer):
    messages = rag_messages("What warms the planet?", ["Greenhouse gases warm the planet."], "Greenhouse gases")
    input_ids, labels = tokenize_conversation(tokenizer, messages)
    learned = [token for token, label in zip(input_ids, labels) if label != IGNORE_INDEX]
    assert tokenizer.decode(learned) == "Greenhouse gases<|im_end|>"
    prompt = chat_prompt_ids(tokenizer, messages[:2])
    assert input_ids[: len(prompt)] == prompt
