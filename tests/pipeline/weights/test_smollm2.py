"""SmolLM2-135M-Instruct converted from its GGUF answers a factual question and finds a
plain sentence far likelier than the same words shuffled."""

from __future__ import annotations

import torch

from esn.pipeline.weights.smollm2 import load_smollm2, smollm2_folder


def perplexity(model, tokenizer, text: str) -> float:  # noqa: ANN001
    enc = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        return float(torch.exp(model(**enc, labels=enc["input_ids"]).loss))


def test_converted_smollm2_answers_and_reads_english() -> None:
    model, tokenizer = load_smollm2()
    assert type(model).__name__ == "LlamaForCausalLM"
    config = model.config
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size) == (
        30, 576, 1536)
    assert (smollm2_folder() / "model.safetensors").is_file()
    messages = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
    out = model.generate(**inputs, max_new_tokens=10, do_sample=False)
    answer = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer
    plain = perplexity(model, tokenizer, "Paris is the capital and largest city of France.")
    shuffled = perplexity(model, tokenizer, "city capital France the Paris of and is largest.")
    assert plain < 30 and shuffled > 30 * plain
