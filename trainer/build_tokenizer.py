"""Train the demo byte-level BPE tokenizer and save it as a Hugging Face tokenizer folder.

    python -m trainer.build_tokenizer [--out DIR] [--vocab-size 4096]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from trainer import paths
from trainer.data import read_jsonl

BOS_TOKEN = "<|bos|>"
EOS_TOKEN = "<|eos|>"
PAD_TOKEN = "<|pad|>"
IM_START_TOKEN = "<|im_start|>"
IM_END_TOKEN = "<|im_end|>"
# Ids 0..4 in this order.
SPECIAL_TOKENS = [BOS_TOKEN, EOS_TOKEN, PAD_TOKEN, IM_START_TOKEN, IM_END_TOKEN]

# ChatML. No BOS: a conversation starts at the first <|im_start|>.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def training_texts(corpus_path: Path, qa_path: Path) -> list[str]:
    texts = []
    for document in read_jsonl(corpus_path):
        texts.extend([document["title"], document["text"]])
    for row in read_jsonl(qa_path):
        texts.extend([row["question"], row["answer"]])
    # Role names and prompt words appear in every chat; make sure they merge.
    texts.extend(["system\nuser\nassistant\nContext:\nQuestion: "] * 50)
    return texts


def train_tokenizer(texts: list[str], vocab_size: int = 4096) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    # GPT-2 style: the regex split and byte-to-unicode mapping, no prefix space, no normalizer.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def save_hf_tokenizer(tokenizer: Tokenizer, out_dir: Path, model_max_length: int = 1024) -> None:
    from transformers import PreTrainedTokenizerFast

    hf_tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        additional_special_tokens=[IM_START_TOKEN, IM_END_TOKEN],
        model_max_length=model_max_length,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    hf_tokenizer.chat_template = CHAT_TEMPLATE
    save_tokenizer_folder(hf_tokenizer, out_dir)


def save_tokenizer_folder(hf_tokenizer, out_dir: Path) -> None:
    """save_pretrained, with the chat template also in tokenizer_config.json: transformers 4.57 moves
    it to chat_template.jinja, but lib/inference (and older readers) look in tokenizer_config.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    hf_tokenizer.save_pretrained(str(out_dir))
    if isinstance(hf_tokenizer.chat_template, str):
        config_path = Path(out_dir) / "tokenizer_config.json"
        config = json.loads(config_path.read_text())
        config["chat_template"] = hf_tokenizer.chat_template
        config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="default: $WEFT_MODELS_DIR/tokenizer")
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--corpus", type=Path, default=paths.DEMO_DATA_DIR / "corpus.jsonl")
    parser.add_argument("--qa", type=Path, default=paths.DEMO_DATA_DIR / "qa-train.jsonl")
    args = parser.parse_args(argv)
    out_dir = args.out or paths.tokenizer_dir()
    tokenizer = train_tokenizer(training_texts(args.corpus, args.qa), args.vocab_size)
    save_hf_tokenizer(tokenizer, out_dir)
    print(json.dumps({"event": "done", "tokenizer_dir": str(out_dir), "vocab_size": tokenizer.get_vocab_size()}))


if __name__ == "__main__":
    main()
