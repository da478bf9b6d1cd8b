"""Fixtures for the model adapters: the built-in tiny models (loaded once per session, not to
be mutated by tests), synthesized clips, and what each family's prompt must look like."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from collections.abc import Callable

import numpy as np
import pytest

from esn.pipeline.models import LoadOptions, ModelAdapter, load_adapter

SAMPLE_RATE = 16000
DURATIONS = (0.5, 1.3, 2.0)
PROMPTS = (
    "Which emotion is the speaker expressing? Answer with the number only.",
    "Options: 1. happy 2. sad",
    "What emotion does the voice express? 1. anger, 2. neutral, 3. sad, 4. happy. "
    "Answer with the number only.",
)


def whisper_tokens(n_samples: int) -> int:
    """Audio tokens of AF3 (all 30-s windows of a clip together): F valid 10-ms mel frames,
    conv stride 2, then pooling by 2, about 25 per second."""
    frames = math.ceil(n_samples / 160)
    return ((frames - 1) // 2 + 1 - 2) // 2 + 1


def whisper_tokens_30s(n_samples: int) -> int:
    """Qwen2-Audio and Qwen2.5-Omni: the same, but their processors keep the first 30 s."""
    return whisper_tokens(min(n_samples, 30 * SAMPLE_RATE))


def kimi_tokens(n_samples: int) -> int:
    """Kimi-Audio: 12.5 Hz per 30-s segment, ``ceil(L / 1280)`` for a segment of L samples,
    the whole clip heard."""
    segments = [min(30 * SAMPLE_RATE, n_samples - s) for s in range(0, n_samples, 30 * SAMPLE_RATE)]
    return sum(math.ceil(length / 1280) for length in segments)


def voxtral_tokens(n_samples: int) -> int:
    """375 tokens (12.5 per second) per started 30-s chunk."""
    return 375 * math.ceil(n_samples / (30 * SAMPLE_RATE))


@dataclasses.dataclass(frozen=True)
class Family:
    """What a tiny model's prompts must contain, written out independently of the adapter."""

    model_id: str
    audio_token: str
    masked: frozenset[str]  # special tokens that occur in the prompt and must not be valid
    n_audio_tokens: Callable[[int], int]
    rope_axes: int  # 3 for mRoPE, 1 otherwise
    two_streams: bool = False  # Kimi-Audio: its prompt tests are in test_kimi_audio.py


QWEN_MASKED = frozenset({"<|endoftext|>", "<|im_start|>", "<|im_end|>"})
FAMILIES = {
    f.model_id: f
    for f in (
        Family("tiny-qwen2_5_omni", "<|AUDIO|>", QWEN_MASKED | {"<|audio_bos|>", "<|audio_eos|>"},
               whisper_tokens_30s, 3),
        Family("tiny-audioflamingo3", "<sound>", QWEN_MASKED, whisper_tokens, 1),
        Family("tiny-qwen2_audio", "<|AUDIO|>", QWEN_MASKED | {"<|audio_bos|>", "<|audio_eos|>"},
               whisper_tokens_30s, 1),
        Family("tiny-voxtral", "[AUDIO]",
               frozenset({"<pad>", "<s>", "[INST]", "[/INST]", "[BEGIN_AUDIO]"}),
               voxtral_tokens, 1),
        Family("tiny-kimi_audio", "", frozenset(), kimi_tokens, 1, two_streams=True),
    )
}


def make_clip(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    clip = 0.3 * np.sin(2 * np.pi * (180 + 40 * seed) * t) + 0.02 * rng.standard_normal(t.size)
    return clip.astype(np.float32)


@pytest.fixture(scope="session")
def clips() -> list[np.ndarray]:
    return [make_clip(d, i) for i, d in enumerate(DURATIONS)]


_ADAPTERS: dict[str, ModelAdapter] = {}


HAVE_MISTRAL_COMMON = importlib.util.find_spec("mistral_common") is not None
TINY_IDS = [
    pytest.param(model_id, marks=pytest.mark.skipif(
        model_id == "tiny-voxtral" and not HAVE_MISTRAL_COMMON,
        reason="tiny-voxtral needs mistral-common (pip install mistral-common)"))
    for model_id in sorted(FAMILIES)
]


@pytest.fixture(scope="session", params=TINY_IDS)
def tiny_id(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def adapter(tiny_id: str) -> ModelAdapter:
    """The tiny model of one family, shared by the session: tests must remove their hooks."""
    if tiny_id not in _ADAPTERS:
        _ADAPTERS[tiny_id] = load_adapter(LoadOptions(model_id=tiny_id))
    return _ADAPTERS[tiny_id]


@pytest.fixture(scope="session")
def family(tiny_id: str) -> Family:
    return FAMILIES[tiny_id]


@pytest.fixture(autouse=True)
def _hub_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here may reach the network: the hub client is put in offline mode."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
