"""Synthetic emotional speech: deterministic source-filter clips whose emotions differ as
acted emotions do, written as a ``manifest:`` corpus (``synthesize``)."""

from esn.pipeline.synth.corpus import MANIFEST_COLUMNS, read_settings, synthesize
from esn.pipeline.synth.voice import (
    EMOTION_PROFILES,
    SAMPLE_RATE,
    ClipParams,
    EmotionProfile,
    Speaker,
    draw_params,
    make_speakers,
    render,
)

__all__ = [
    "EMOTION_PROFILES",
    "MANIFEST_COLUMNS",
    "SAMPLE_RATE",
    "ClipParams",
    "EmotionProfile",
    "Speaker",
    "draw_params",
    "make_speakers",
    "read_settings",
    "render",
    "synthesize",
]
