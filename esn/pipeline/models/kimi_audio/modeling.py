"""Kimi-Audio's text branch rebuilt on transformers' Qwen2 layers: config, embedding mix, model.

The checkpoint's own ``MoonshotKimiaForCausalLM`` (hub remote code) predates transformers 5.x
and needs flash-attn. Its main branch is a Qwen2 decoder (same module names, biases, RMSNorm
and 1-D RoPE), so ``KimiAudioForText`` is transformers' ``Qwen2Model`` plus Kimi's
``vq_adaptor``, and ``lm_head``: the checkpoint's keys ``model.embed_tokens``,
``model.layers.N.*``, ``model.norm``, ``model.vq_adaptor.layers.*`` and ``lm_head`` load one to
one, with sdpa attention and no remote code.

The audio-output branch (``model.mimo_layers``, ``model.mimo_norm``, ``mimo_output``; six more
decoder layers, ~1.3B parameters at 7B) is not built and its keys are not loaded: it branches
off after layer 21 and never feeds the text logits that esn's probe reads.

Input (``KimiAudioModel.embed_streams``): two token streams of one length, the audio stream
``input_ids`` and the text stream ``text_input_ids``, plus continuous Whisper features at the
discrete audio-token positions (``is_continuous_mask``)::

    a = embed(input_ids)
    a[m] = (a[m] + vq_adaptor(whisper[m])) * sqrt(2)      m = is_continuous_mask
    inputs_embeds = a + embed(text_input_ids)

(the text stream is added unless its ids are all zero, as the checkpoint's code does; per
item here, since that code runs one item at a time). Here the
features come batched, ``(B, L, adaptor_input_dim)`` aligned with the positions (zeros off the
mask), not as the remote code's per-clip list.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import nn
from transformers import Qwen2Config
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.models.qwen2.modeling_qwen2 import Qwen2Model, Qwen2PreTrainedModel

__all__ = ["KIMI_MODEL_TYPE", "KimiAudioConfig", "KimiAudioForText", "KimiAudioModel",
           "KimiVQAdaptor"]

KIMI_MODEL_TYPE = "moonshot_kimia"


class KimiAudioConfig(Qwen2Config):
    """The checkpoint's ``config.json`` (``model_type`` ``moonshot_kimia``, or none and
    ``architectures`` ``MoonshotKimiaForCausalLM``): a Qwen2 config plus the ``kimia_*``
    fields (special ids, token offset, adaptor width), kept as read."""

    model_type = KIMI_MODEL_TYPE

    @property
    def adaptor_input_dim(self) -> int:
        return int(getattr(self, "kimia_adaptor_input_dim", 5120))

    def kimia_id(self, name: str) -> int:
        """A ``kimia_*`` id of the config (``kimia_text_blank``...), with a clear error."""
        value = getattr(self, name, None)
        if not isinstance(value, int):
            raise ValueError(f"the Kimi-Audio config has no integer {name!r}")
        return value


class KimiVQAdaptor(nn.Module):
    """``vq_adaptor``: Whisper features (12.5 Hz x 5120) into the residual stream:
    Linear, SiLU, Dropout, Linear, LayerNorm (eps ``rms_norm_eps``), as ``layers.0..4`` (the
    checkpoint's names)."""

    def __init__(self, config: KimiAudioConfig) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.layers = nn.Sequential(
            nn.Linear(config.adaptor_input_dim, hidden, bias=True), nn.SiLU(),
            nn.Dropout(0.0), nn.Linear(hidden, hidden, bias=True),
            nn.LayerNorm(hidden, eps=config.rms_norm_eps, bias=True),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layers(features)
        return out


class KimiAudioModel(Qwen2Model):
    """The main branch: transformers' ``Qwen2Model`` (its forward unchanged: it takes
    ``inputs_embeds``) plus ``vq_adaptor`` and the two-stream embedding mix."""

    config_class = KimiAudioConfig

    def __init__(self, config: KimiAudioConfig) -> None:
        super().__init__(config)
        self.vq_adaptor = KimiVQAdaptor(config)
        self.post_init()

    def embed_streams(self, input_ids: torch.Tensor, text_input_ids: torch.Tensor,
                      whisper_features: torch.Tensor | None,
                      is_continuous_mask: torch.Tensor | None) -> torch.Tensor:
        """``(B, L, H)`` inputs of layer 0 from the two streams ``(B, L)`` and the features
        ``(B, L, adaptor_input_dim)`` at ``is_continuous_mask`` ``(B, L)`` (module docstring)."""
        audio = self.embed_tokens(input_ids)
        if whisper_features is not None and is_continuous_mask is not None:
            mask = is_continuous_mask.bool()
            if bool(mask.any()):
                adapted = self.vq_adaptor(whisper_features[mask].to(audio.dtype))
                audio = audio.clone()
                audio[mask] = (audio[mask] + adapted) * math.sqrt(2.0)
        # The checkpoint's code adds the text stream unless its ids sum to zero (it runs one
        # item at a time): per row here, so that a batch decodes as its items alone.
        text = (text_input_ids != 0).any(dim=-1)
        return audio + self.embed_tokens(text_input_ids) * text[:, None, None].to(audio.dtype)


class KimiAudioForText(Qwen2PreTrainedModel):
    """Kimi-Audio without its audio-output branch: ``model`` (``KimiAudioModel``) and the
    text head ``lm_head``. ``forward`` takes the two streams (or ``inputs_embeds``) and
    returns text logits; cache keywords pass through to ``Qwen2Model``."""

    config_class = KimiAudioConfig
    base_model_prefix = "model"
    # The audio-output branch is not built (module docstring): its keys are skipped, and so
    # are per-layer RoPE buffers (``rotary_emb.inv_freq``) should a snapshot hold them.
    _keys_to_ignore_on_load_unexpected = [r"^model\.mimo_", r"^mimo_output\.",
                                          r"rotary_emb\.inv_freq$"]

    def __init__(self, config: KimiAudioConfig) -> None:
        super().__init__(config)
        self.model = KimiAudioModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.model.embed_tokens

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def get_decoder(self) -> KimiAudioModel:
        return self.model

    def forward(self, input_ids: torch.Tensor | None = None,
                text_input_ids: torch.Tensor | None = None,
                whisper_features: torch.Tensor | None = None,
                is_continuous_mask: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None,
                inputs_embeds: torch.Tensor | None = None,
                **kwargs: Any) -> CausalLMOutputWithPast:
        if inputs_embeds is None:
            if input_ids is None or text_input_ids is None:
                raise ValueError("Kimi-Audio needs input_ids and text_input_ids (or "
                                 "inputs_embeds)")
            inputs_embeds = self.model.embed_streams(input_ids, text_input_ids,
                                                     whisper_features, is_continuous_mask)
        out = self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                         position_ids=position_ids, **kwargs)
        cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        return CausalLMOutputWithPast(logits=self.lm_head(out.last_hidden_state),
                                      hidden_states=out.hidden_states, **{_CACHE_FIELD: cache})


# The output field of the KV cache: "past_key_values" up to 5.2x, then "cache".
_CACHE_FIELD = ("cache" if "cache" in {f.name for f in dataclasses.fields(CausalLMOutputWithPast)}
                else "past_key_values")
