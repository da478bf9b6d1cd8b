"""Qwen2-Audio-7B-Instruct (``Qwen2AudioForConditionalGeneration``, Qwen2 decoder).

Prompt (the processor's own template): ``<|im_start|>system ... <|im_end|> <|im_start|>user
Audio 1: <|audio_bos|> <|AUDIO|> x n <|audio_eos|> {prompt} <|im_end|> <|im_start|>assistant``,
n = 25 per second (``((F - 1)//2 + 1 - 2)//2 + 1`` for F valid mel frames). Positions: 1-D
RoPE. Long audio: the Whisper feature extractor keeps the first 30 s of a clip (one window).
"""

from __future__ import annotations

from typing import ClassVar

from esn.pipeline.models.base import ChatTemplateAdapter, whisper_window_seconds

__all__ = ["Qwen2AudioAdapter"]


class Qwen2AudioAdapter(ChatTemplateAdapter):
    family: ClassVar[str] = "qwen2_audio"
    model_types: ClassVar[tuple[str, ...]] = ("qwen2_audio",)
    model_class: ClassVar[str] = "Qwen2AudioForConditionalGeneration"

    @property
    def max_audio_seconds(self) -> float | None:
        return whisper_window_seconds(self.processor)  # one Whisper window: 30 s
