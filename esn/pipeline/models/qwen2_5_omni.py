"""Qwen2.5-Omni (3B/7B): the thinker only (``Qwen2_5OmniThinkerForConditionalGeneration``).

Prompt: ``<|im_start|>system ... <|im_end|> <|im_start|>user <|audio_bos|> <|AUDIO|> x n
<|audio_eos|> {prompt} <|im_end|> <|im_start|>assistant``, n = 25 per second of audio
(``n = ((F - 1)//2 + 1 - 2)//2 + 1`` for F valid 10-ms mel frames). Positions are 3-axis
mRoPE from ``get_rope_index``; for audio-only prompts the three axes are equal. Long audio:
the Whisper feature extractor keeps the first 30 s of a clip (one window).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from esn.pipeline.models.base import ChatTemplateAdapter, ProbeBatch, whisper_window_seconds

__all__ = ["QwenOmniAdapter"]


class QwenOmniAdapter(ChatTemplateAdapter):
    family: ClassVar[str] = "qwen2_5_omni"
    model_types: ClassVar[tuple[str, ...]] = ("qwen2_5_omni", "qwen2_5_omni_thinker")
    model_class: ClassVar[str] = "Qwen2_5OmniThinkerForConditionalGeneration"
    #: The thinker computes its mRoPE positions itself (and caches rope deltas for decoding).
    explicit_positions: ClassVar[bool] = False

    @property
    def max_audio_seconds(self) -> float | None:
        return whisper_window_seconds(self.processor)  # one Whisper window: 30 s

    def _rope_owner(self) -> nn.Module:
        # get_rope_index lives on the thinker in 5.17 and on thinker.model in 5.24.
        inner = getattr(self.model, "model", None)
        for owner in (inner, self.model):
            if owner is not None and hasattr(owner, "get_rope_index"):
                return owner
        raise AttributeError("no get_rope_index on the thinker or its .model")

    def rope_positions(self, batch: ProbeBatch) -> torch.Tensor:
        """``(3, B, L)`` mRoPE positions, as the thinker's own forward computes them."""
        features_mask = batch.inputs.get("feature_attention_mask")
        seqlens = None if features_mask is None else features_mask.sum(-1)
        owner: Any = self._rope_owner()
        positions, _ = owner.get_rope_index(
            batch.input_ids, None, None, batch.attention_mask, False, seqlens, None,
        )
        return positions
