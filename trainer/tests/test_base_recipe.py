"""The base model's pretraining data holds no QA rows, the recipe stamp setup-python.sh reads, and
evaluate_quick's paired bootstrap."""

from __future__ import annotations

import re
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
CORPUS = REPOSITORY_ROOT / "data" / "climate" / "corpus.jsonl"
QA_FILES = [REPOSITORY_ROOT / "data" / "climate" / name for name in ("qa-train.jsonl", "qa-eval.jsonl")]


def test_fill_blank_rows_copy_a_span_of_the_document_and_use_no_rag_prompt():
    from trainer.data import read_jsonl
    from trainer.rag_prompt import SYSTEM_PROMPT
    from trainer.synthetic_qa import fill_blank_chat_rows

    rows = fill_blank_chat_rows(CORPUS, 3, seed=1234)
    assert len(rows) == 3 * len(read_jsonl(CORPUS))
    for row in rows:
        system, user, assistant = row["messages"]
        assert system["content"] != SYSTEM_PROMPT and "Question:" not in user["content"]
        text, sentence = user["content"].removeprefix("Text:\n").split("\n\nSentence: ")
        assert "___" in sentence and assistant["content"] and assistant["content"] in text


def test_default_pretraining_examples_hold_no_qa_text(tokenizer_dir):
    from transformers import AutoTokenizer

    from trainer.build_base_model import pretraining_examples
    from trainer.data import read_jsonl

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    examples = pretraining_examples(tokenizer, CORPUS, None, 0, 2)
    texts = "\n".join(tokenizer.decode(ids) for ids, _ in examples)
    for path in QA_FILES:
        for row in read_jsonl(path):
            assert row["question"] not in texts


def test_setup_reads_the_recipe_version_it_compares():
    source = (REPOSITORY_ROOT / "trainer" / "build_base_model.py").read_text()
    from trainer.build_base_model import RECIPE_VERSION

    # scripts/setup-python.sh extracts it with sed; keep the line in this exact shape.
    assert re.search(r'^RECIPE_VERSION = "' + re.escape(RECIPE_VERSION) + '"$', source, re.MULTILINE)
    assert "weft-recipe.txt" in (REPOSITORY_ROOT / "scripts" / "setup-python.sh").read_text()


def test_paired_bootstrap_interval():
    from trainer.evaluate_quick import paired_bootstrap

    same = paired_bootstrap([0.0, 1.0, 0.5], [0.0, 1.0, 0.5])
    assert same == {"mean_difference": 0.0, "ci95": [0.0, 0.0]}
    better = paired_bootstrap([0.0] * 40, [0.5] * 20 + [0.0] * 20)
    assert better["mean_difference"] == 0.25 and 0 < better["ci95"][0] < 0.25 < better["ci95"][1]
