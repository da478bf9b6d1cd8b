"""Kimi-Audio-7B-Instruct: its text branch rebuilt on transformers' Qwen2 layers (``modeling``),
its two-stream prompt (``streams``), its speech input (``frontend``), the adapter, and a
tiny random-weight checkpoint in the real layout (``tiny``)."""

from esn.pipeline.models.kimi_audio.adapter import KimiAudioAdapter, KimiProcessor
from esn.pipeline.models.kimi_audio.frontend import (
    KimiaInferFrontEnd,
    SpeechFrontEnd,
    StandInFrontEnd,
    load_frontend,
)
from esn.pipeline.models.kimi_audio.modeling import KimiAudioConfig, KimiAudioForText

__all__ = ["KimiAudioAdapter", "KimiAudioConfig", "KimiAudioForText", "KimiProcessor",
           "KimiaInferFrontEnd", "SpeechFrontEnd", "StandInFrontEnd", "load_frontend"]
