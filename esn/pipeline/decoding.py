"""The decoding esn owns: plain greedy search, whatever a checkpoint's ``generation_config.json``
says, and the record of it that a store's probe attributes keep.

Checkpoints ship sampling and penalty defaults (Qwen2.5 instruct: ``repetition_penalty`` 1.05,
``top_k``/``top_p``/``temperature``). A repetition penalty pushes down exactly the option digits
that the prompt lists, so an answer generated under it is not the argmax that replay takes.
``generate`` therefore gets a fresh ``GenerationConfig`` holding every setting below, and the
model's own ``generation_config`` is swapped out for the call (``greedy_generation``): transformers
fills every field left ``None`` in a passed config from ``model.generation_config`` (5.24
``_prepare_generation_config``; 4.5x also overwrote fields equal to the global defaults), so
passing a config alone does not keep the checkpoint's settings out.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import torch

from esn.schemas.store import GREEDY_DECODING

if TYPE_CHECKING:
    from esn.pipeline.models.base import ModelAdapter

__all__ = ["DECODING", "Decoded", "LEGACY_DECODING", "describe_decoding", "greedy_config",
           "greedy_from_embeddings", "greedy_generation"]

#: What a store records as ``probe.decoding`` (declared with the store's schema).
DECODING: Mapping[str, Any] = GREEDY_DECODING
#: ``probe.decoding`` of a store written before esn owned its decoding: sampling switched
#: off, every other setting inherited from the checkpoint's ``generation_config.json``.
LEGACY_DECODING: Mapping[str, Any] = MappingProxyType({})

# GenerationConfig settings that DECODING does not name, pinned to their "off" values.
_OFF: Mapping[str, Any] = MappingProxyType({
    "temperature": 1.0, "top_k": None, "top_p": 1.0, "min_p": None, "typical_p": 1.0,
    "epsilon_cutoff": 0.0, "eta_cutoff": 0.0, "num_beam_groups": 1, "diversity_penalty": 0.0,
    "sequence_bias": None, "exponential_decay_length_penalty": None, "guidance_scale": None,
    "watermarking_config": None, "stop_strings": None, "renormalize_logits": False,
    "remove_invalid_values": False, "num_return_sequences": 1,
    "output_scores": False, "output_logits": False, "return_dict_in_generate": False,
    "prompt_lookup_num_tokens": None, "assistant_early_exit": None, "use_cache": True,
})


def describe_decoding(decoding: Mapping[str, Any]) -> str:
    """One phrase naming a recorded decoding (for refusals)."""
    if not decoding:
        return ("the checkpoint's generation_config with sampling off (a store from before "
                "esn recorded its decoding)")
    return f"{decoding.get('strategy', '?')} decoding {dict(decoding)!r}"


def greedy_config(model: Any, tokenizer: Any, max_new_tokens: int) -> Any:
    """A fresh ``transformers.GenerationConfig`` for esn's greedy decoding of ``model``:
    eos from the model's generation config (else its config, else the tokenizer), pad from the
    tokenizer (else eos)."""
    from transformers import GenerationConfig

    eos = _first_set(getattr(getattr(model, "generation_config", None), "eos_token_id", None),
                     getattr(model.config, "eos_token_id", None),
                     getattr(tokenizer, "eos_token_id", None))
    pad = _first_set(getattr(tokenizer, "pad_token_id", None), eos)
    if isinstance(pad, list):
        pad = pad[0]
    settings = {k: v for k, v in DECODING.items() if k not in ("strategy", "eos_pad")}
    config = GenerationConfig(max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=pad,
                              bos_token_id=None, decoder_start_token_id=None,
                              **settings, **_OFF)
    # Unknown or renamed keys in another transformers version must not go unnoticed silently.
    for key, value in {**settings, "max_new_tokens": max_new_tokens}.items():
        if getattr(config, key, value) != value:
            raise RuntimeError(f"GenerationConfig did not keep {key}={value!r}")
    return config


@contextlib.contextmanager
def greedy_generation(model: Any, tokenizer: Any, max_new_tokens: int) -> Iterator[Any]:
    """Within the block, ``model.generation_config`` is esn's greedy configuration (yielded,
    to pass as ``generation_config=``); the checkpoint's is put back afterwards."""
    config = greedy_config(model, tokenizer, max_new_tokens)
    saved = model.generation_config
    model.generation_config = config
    try:
        yield config
    finally:
        model.generation_config = saved


def _first_set(*values: Any) -> Any:
    for value in values:
        if value is not None and value != []:
            return value
    return None


@dataclasses.dataclass(frozen=True)
class Decoded:
    """Greedy new tokens of one row (end-of-sequence not included) and whether the answer
    is complete: an end-of-sequence token came, or ``max_new_tokens`` were decoded."""

    token_ids: tuple[int, ...]
    complete: bool


@torch.no_grad()
def greedy_from_embeddings(adapter: ModelAdapter, hidden: torch.Tensor,
                           attention_mask: torch.Tensor, positions: torch.Tensor,
                           max_new_tokens: int,
                           enough: Callable[[int, str], bool] | None = None) -> list[Decoded]:
    """Greedy decoding from the inputs of layer 0 ``hidden`` ``(B, L, H)``, as ``generate``
    decodes: a KV cache, positions going on from the prompt's last one, each new token fed
    back through ``adapter.next_token_embeddings``. Row b stops at one of
    ``adapter.stop_ids``, after ``max_new_tokens``, or once ``enough(b, text)`` (if given)
    holds for its decoded text so far. Hooks on the layers fire at every step (the caller's)."""
    from transformers import DynamicCache

    decoder: Any = adapter.decoder
    # The cache keyword of the decoder's forward: "past_key_values" up to 5.2x, then "cache".
    cache_key = ("cache" if "cache" in inspect.signature(decoder.forward).parameters
                 else "past_key_values")
    cache = DynamicCache()
    stops = adapter.stop_ids
    size = hidden.shape[0]
    h = hidden.to(adapter.dtype)
    mask = attention_mask.long()
    tokens: list[list[int]] = [[] for _ in range(size)]
    live = [True] * size
    complete = [False] * size
    for _ in range(max_new_tokens):
        out = decoder(inputs_embeds=h, attention_mask=mask, position_ids=positions,
                      use_cache=True, **{cache_key: cache})
        following = adapter.lm_head(out.last_hidden_state[:, -1]).float().argmax(-1)
        for b, token in enumerate(following.tolist()):
            if not live[b]:
                continue
            if token in stops:
                live[b], complete[b] = False, True
                continue
            tokens[b].append(token)
            if len(tokens[b]) == max_new_tokens:
                live[b], complete[b] = False, True
            elif enough is not None and enough(b, adapter.decode(torch.tensor(tokens[b]))):
                live[b] = False
        if not any(live):
            break
        h = adapter.next_token_embeddings(following).to(adapter.dtype)
        mask = torch.cat([mask, mask.new_ones((size, 1))], dim=-1)
        positions = positions[..., -1:] + 1
    return [Decoded(tuple(t), c) for t, c in zip(tokens, complete, strict=True)]
