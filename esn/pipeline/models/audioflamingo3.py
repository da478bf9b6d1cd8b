"""Audio Flamingo 3 (``AudioFlamingo3ForConditionalGeneration``, Qwen2.5-7B decoder).

Prompt: ``<|im_start|>system ... <|im_end|> <|im_start|>user <sound> x n {prompt} <|im_end|>
<|im_start|>assistant``; the user turn puts the audio before the text whatever the content
order. n = 25 per second: ``((F - 1)//2 + 1 - 2)//2 + 1`` over the valid mel frames F of all
30-s windows of the clip together. Positions: 1-D RoPE. Long audio: the processor keeps at
most ``max_audio_len`` seconds (600 s, 20 windows) and drops the rest.
"""

from __future__ import annotations

from typing import ClassVar

from esn.pipeline.models.base import ChatTemplateAdapter

__all__ = ["AudioFlamingo3Adapter"]


class AudioFlamingo3Adapter(ChatTemplateAdapter):
    family: ClassVar[str] = "audioflamingo3"
    model_types: ClassVar[tuple[str, ...]] = ("audioflamingo3",)
    model_class: ClassVar[str] = "AudioFlamingo3ForConditionalGeneration"

    @property
    def max_audio_seconds(self) -> float | None:
        return float(self.processor.max_audio_len)  # 20 Whisper windows: 600 s
