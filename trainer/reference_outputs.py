"""Reference outputs for the TypeScript parity tests (lib/inference): tokenization, chat prompts,
greedy generations of the base chat model and sentence-transformers embeddings.

    python -m trainer.reference_outputs --out $WEFT_MODELS_DIR/reference.json [--chat-model DIR] [--chat-only]

--chat-only (a pretrained chat model such as SmolLM2): no embeddings; tokenization covers every corpus
document and qa-eval question besides the sentences and edge cases.

Format "weft-reference/2":
    tokenization[]:  {text, ids}                          encode without special tokens
    chat_prompts[]:  {messages, text, ids}                chat template, add_generation_prompt=True
    generations[]:   {messages, prompt_ids, output_ids, text}
                     greedy (do_sample=False), max_new_tokens=24, batch of one; output_ids are the new
                     tokens only and end with the stop token when one was generated;
                     top2_gaps[i]: PyTorch's top-1 minus top-2 logit at step i, so a parity test can tell a
                     real mismatch from a near-tie that rounding may break either way
    embeddings[]:    {text, input_ids, embedding}         all-MiniLM-L6-v2, mean pooled, L2-normalised
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import torch

from trainer import paths
from trainer.chat_tokens import chat_prompt_ids
from trainer.data import corpus_by_id, read_jsonl
from trainer.rag_prompt import rag_messages

FORMAT = "weft-reference/2"
MAX_NEW_TOKENS = 24
EDGE_CASE_TEXTS = [
    "",
    " ",
    "CO₂ rose to 420 ppm in 2023 — about 50 % above pre-industrial levels.",
    "Temperatures near minus 18 °C.\n\nNew paragraph\twith a tab.",
    "  leading spaces, trailing spaces  ",
    "UNFCCC, IPCC's AR6 (2021–2023) & the Paris Agreement's 1.5°C goal!",
    "<|im_start|> is only special inside the chat template",
]


def corpus_sentences(corpus_path: Path, count: int) -> list[str]:
    documents = read_jsonl(corpus_path)
    step = max(1, len(documents) // count)
    sentences = []
    for document in documents[::step][:count]:
        first_sentence = re.split(r"(?<=[.!?])\s+", document["text"])[0]
        sentences.append(first_sentence)
    return sentences


def rag_examples(qa_path: Path, corpus_path: Path, count: int) -> list[list[dict[str, str]]]:
    documents = corpus_by_id(corpus_path)
    rows = read_jsonl(qa_path)[:count]
    return [rag_messages(row["question"], [documents[row["doc_id"]]["text"]]) for row in rows]


def build_reference(chat_model_dir: Path, corpus_path: Path, qa_path: Path, chat_only: bool = False) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(chat_model_dir))
    texts = corpus_sentences(corpus_path, 20) + EDGE_CASE_TEXTS
    if chat_only:
        texts += [document["text"] for document in read_jsonl(corpus_path)]
        texts += [row["question"] for row in read_jsonl(paths.DEMO_DATA_DIR / "qa-eval.jsonl")]
    tokenization = [{"text": text, "ids": tokenizer.encode(text, add_special_tokens=False)} for text in texts]

    documents = corpus_by_id(corpus_path)
    first_document = next(iter(documents.values()))["text"]
    chat_conversations = rag_examples(qa_path, corpus_path, 5) + [
        [{"role": "user", "content": "What is the greenhouse effect?"}],
        [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Name a greenhouse gas."},
            {"role": "assistant", "content": "Methane."},
            {"role": "user", "content": "Another?"},
        ],
        rag_messages("Which gases absorb infrared radiation?", [first_document[:200], first_document[200:400]]),
    ]
    chat_prompts = []
    for messages in chat_conversations:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        chat_prompts.append({"messages": messages, "text": text, "ids": chat_prompt_ids(tokenizer, messages)})

    # Eager attention: the same arithmetic as the exported graph, so near-tie argmaxes agree with ONNX.
    model = AutoModelForCausalLM.from_pretrained(
        str(chat_model_dir), dtype=torch.float32, attn_implementation="eager"
    ).eval()
    generations = []
    # Three for a 135M-parameter model (setup time on 2 cores), five for the tiny one.
    for messages in rag_examples(qa_path, corpus_path, 3 if chat_only else 5):
        prompt_ids = chat_prompt_ids(tokenizer, messages)
        with torch.no_grad():
            output = model.generate(
                torch.tensor([prompt_ids]),
                attention_mask=torch.ones((1, len(prompt_ids)), dtype=torch.long),
                max_new_tokens=MAX_NEW_TOKENS,
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
            )
        output_ids = output.sequences[0, len(prompt_ids) :].tolist()
        top2_gaps = []
        for scores in output.scores:
            top = torch.topk(scores[0].float(), 2).values
            top2_gaps.append(round(float(top[0] - top[1]), 6))
        generations.append(
            {
                "messages": messages,
                "prompt_ids": prompt_ids,
                "output_ids": output_ids,
                "text": tokenizer.decode(output_ids, skip_special_tokens=True),
                "top2_gaps": top2_gaps,
            }
        )

    reference = {
        "format": FORMAT,
        "chat_model_dir": str(chat_model_dir),
        "max_new_tokens": MAX_NEW_TOKENS,
        "tokenization": tokenization,
        "chat_prompts": chat_prompts,
        "generations": generations,
    }
    if chat_only:
        return reference

    from trainer.embedding_model import load_sentence_transformer

    embedder = load_sentence_transformer()
    embedding_texts = corpus_sentences(corpus_path, 6) + [
        "What did Eunice Foote measure?",
        "CO₂ and methane — greenhouse gases",
    ]
    vectors = embedder.encode(embedding_texts, normalize_embeddings=True)
    embeddings = [
        {
            "text": text,
            "input_ids": embedder.tokenizer(text, truncation=True, max_length=256)["input_ids"],
            "embedding": [round(float(value), 7) for value in vector],
        }
        for text, vector in zip(embedding_texts, vectors)
    ]
    return {**reference, "embeddings": embeddings}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="default $WEFT_MODELS_DIR/reference.json")
    parser.add_argument("--chat-model", type=Path, default=None, help="default $WEFT_MODELS_DIR/base-chat/hf")
    parser.add_argument("--corpus", type=Path, default=paths.DEMO_DATA_DIR / "corpus.jsonl")
    parser.add_argument("--qa", type=Path, default=paths.DEMO_DATA_DIR / "qa-train.jsonl")
    parser.add_argument("--chat-only", action="store_true", help="no embeddings; every corpus document tokenized")
    args = parser.parse_args(argv)
    out_path = args.out or paths.models_dir() / "reference.json"
    reference = build_reference(args.chat_model or paths.base_chat_hf_dir(), args.corpus, args.qa, args.chat_only)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = out_path.with_name(out_path.name + ".tmp")
    temporary.write_text(json.dumps(reference, indent=1, ensure_ascii=False) + "\n")
    temporary.rename(out_path)
    print(json.dumps({"event": "done", "reference": str(out_path), "generations": len(reference["generations"])}))


if __name__ == "__main__":
    main()
