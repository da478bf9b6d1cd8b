"""A tiny Qwen2-Audio whose greedy answer is any text chosen in the test, through a byte-level
BPE tokenizer that splits digits as Qwen2's does (``"12"`` is ``"1"``, ``"2"``).

Every decoder layer's attention and MLP outputs are zeroed, so the residual stream at a
position is that position's input embedding; the LM head is then set so that each token of
the chain ``"\\n"`` (the prompt's last token), the answer's tokens, maps to the next one, and
the last to end-of-sequence. Replay, full generation and ``generate`` all follow the chain.
The head does not touch the stored hidden states, so one store serves every forced answer.
"""

from __future__ import annotations

import torch

from esn.pipeline.models import LoadOptions, load_adapter
from esn.pipeline.models.base import ModelAdapter
from esn.pipeline.models.qwen2_audio import Qwen2AudioAdapter
from esn.pipeline.models.tiny import _build_qwen2_audio
from esn.pipeline.models.tiny_tokenizers import qwen2_bpe_tokenizer

SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>",
           "<|audio_eos|>")


def forced_adapter() -> ModelAdapter:
    """tiny-qwen2_audio rebuilt on ``qwen2_bpe_tokenizer``, its layers passing the residual
    stream through unchanged (the head still to be set by ``force``)."""
    tokenizer = qwen2_bpe_tokenizer(SPECIAL, pad_token="<|endoftext|>", eos_token="<|im_end|>")
    model, processor = _build_qwen2_audio(tokenizer)
    with torch.no_grad():
        for layer in model.get_decoder().layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
    info = load_adapter(LoadOptions(model_id="tiny-qwen2_audio")).info
    return Qwen2AudioAdapter(model, processor, info)


def force(adapter: ModelAdapter, answer: str) -> list[int]:
    """Set the LM head so that greedy decoding after the prompt emits ``answer``'s tokens,
    then end-of-sequence; returns those token ids."""
    tokenizer = adapter.tokenizer
    ids = tokenizer.encode(answer, add_special_tokens=False)
    chain = [tokenizer.convert_tokens_to_ids("Ċ"), *ids]  # "\n" ends the generation prompt
    if len(set(chain)) != len(chain):
        raise ValueError(f"{answer!r}: the chain {chain} repeats a token")
    following = [*ids, tokenizer.convert_tokens_to_ids("<|im_end|>")]
    with torch.no_grad():
        embedded = adapter.model.get_input_embeddings().weight[chain]
        normed = adapter.decoder.norm(embedded).double()  # (m, H): what the head sees
        dual = torch.linalg.pinv(normed)  # (H, m): normed @ dual = I
        head = torch.zeros_like(adapter.lm_head.weight, dtype=torch.float64)
        for k, target in enumerate(following):
            head[target] += 100.0 * dual[:, k]
        adapter.lm_head.weight.copy_(head.float())
    return ids
