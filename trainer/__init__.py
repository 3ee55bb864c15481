"""weft trainer: tokenizer and tiny base model builds, ONNX export, LoRA fine-tuning."""
