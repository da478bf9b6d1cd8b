"""Long audio: each adapter's ``max_audio_seconds`` is what its processor lets the model hear,
measured by the audio tokens a clip longer than the window gets (tiny models, real processors)."""

from __future__ import annotations

import numpy as np
import pytest

from esn.pipeline.models import LoadOptions, load_adapter

RATE = 16000


def _audio_tokens(adapter, seconds: float) -> int:
    clip = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * RATE))).astype(np.float32)
    return int(adapter.build_batch([clip], ["Which emotion?"]).audio.sum())


@pytest.mark.parametrize("model", ["tiny-qwen2_5_omni", "tiny-qwen2_audio"])
def test_whisper_window_families_hear_30_seconds(model: str) -> None:
    adapter = load_adapter(LoadOptions(model_id=model))
    assert adapter.max_audio_seconds == 30.0
    assert adapter.sample_rate == RATE
    window = _audio_tokens(adapter, 30.0)
    assert _audio_tokens(adapter, 35.0) == window  # the last 5 s are dropped
    assert _audio_tokens(adapter, 20.0) < window


def test_audioflamingo3_hears_up_to_600_seconds() -> None:
    adapter = load_adapter(LoadOptions(model_id="tiny-audioflamingo3"))
    assert adapter.max_audio_seconds == 600.0
    assert _audio_tokens(adapter, 35.0) > _audio_tokens(adapter, 30.0)  # a second window


def test_voxtral_hears_a_long_clip_whole() -> None:
    adapter = load_adapter(LoadOptions(model_id="tiny-voxtral"))
    assert adapter.max_audio_seconds is None
    assert _audio_tokens(adapter, 35.0) > _audio_tokens(adapter, 30.0)  # a second chunk
