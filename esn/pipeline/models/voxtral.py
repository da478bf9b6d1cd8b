"""Voxtral (``VoxtralForConditionalGeneration``, Llama decoder, mistral-common tokenizer).

Prompt (mistral-common instruct format): ``<s> [INST] [BEGIN_AUDIO] [AUDIO] x n {prompt}
[/INST]``. Audio is padded to whole chunks (30 s for the real model) and gets 12.5 tokens per
second of padded audio: n = 375 per 30-s chunk; a long clip is heard whole, in as many
chunks as it needs (the processor cuts nothing). Positions: 1-D RoPE. Needs the
``mistral-common`` package (the processor's tokenizer backend).
"""

from __future__ import annotations

import base64
import io
from typing import Any, ClassVar

import numpy as np

from esn.errors import MissingDependencyError
from esn.pipeline.models.base import ChatTemplateAdapter, LoadOptions, ModelAdapter

__all__ = ["VoxtralAdapter", "require_mistral_common"]


def require_mistral_common() -> None:
    try:
        import mistral_common  # noqa: F401
    except ImportError as err:
        raise MissingDependencyError(
            "Voxtral's processor needs the mistral-common package: pip install mistral-common"
        ) from err


def wav_audio_item(audio: np.ndarray, sample_rate: int) -> dict[str, Any]:
    """One clip as mistral-common takes audio: encoded files only (no raw arrays); a float32
    WAV round-trips the samples exactly."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, audio, sample_rate, format="WAV", subtype="FLOAT")
    return {"type": "audio", "base64": base64.b64encode(buffer.getvalue()).decode("ascii")}


class VoxtralAdapter(ChatTemplateAdapter):
    family: ClassVar[str] = "voxtral"
    model_types: ClassVar[tuple[str, ...]] = ("voxtral",)
    model_class: ClassVar[str] = "VoxtralForConditionalGeneration"

    @classmethod
    def from_pretrained(cls, options: LoadOptions, *, commit_hash: str | None) -> ModelAdapter:
        require_mistral_common()
        return super().from_pretrained(options, commit_hash=commit_hash)

    audio_item = staticmethod(wav_audio_item)
