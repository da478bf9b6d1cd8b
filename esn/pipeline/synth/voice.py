"""Source-filter synthesis of one speech-like clip, and the emotion and speaker profiles.

A clip is a glottal pulse train (F0 contour with per-cycle jitter, spectral tilt from a
two-pass one-pole low-pass, aspiration noise) through a cascade of three vowel formant
resonators, one vowel per syllable, with raised-cosine syllable envelopes, optional noise
bursts for onset consonants, and an optional pause. Emotions differ as acted emotions do:
F0 level and accent range, contour (surprise rises), speaking rate, level and tilt.
Every parameter is jittered per clip (``draw_params``) so that the classes overlap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
from scipy import signal

__all__ = [
    "EMOTION_PROFILES",
    "SAMPLE_RATE",
    "ClipParams",
    "EmotionProfile",
    "Speaker",
    "draw_params",
    "make_speakers",
    "render",
]

SAMPLE_RATE = 16000
#: RMS of a clip's voiced part at level 0 dB (about -18 dBFS).
REFERENCE_RMS = 0.125
#: Vowels as (F1, F2, F3) in Hz for a speaker with formant scale 1.0.
VOWELS: tuple[tuple[float, float, float], ...] = (
    (730.0, 1090.0, 2440.0), (530.0, 1840.0, 2480.0), (270.0, 2290.0, 3010.0),
    (570.0, 840.0, 2410.0), (300.0, 870.0, 2240.0), (660.0, 1720.0, 2410.0),
)
BANDWIDTHS = (80.0, 100.0, 130.0)


@dataclasses.dataclass(frozen=True, kw_only=True)
class EmotionProfile:
    """How one emotion is spoken, before per-clip jitter.

    ``f0_factor`` multiplies the speaker's base F0; ``accent_st`` is the spread of
    per-syllable pitch accents in semitones; ``contour_st`` the pitch change from the start to
    the end of the clip (mostly over its last part); ``rate_sps`` syllables per second;
    ``level_db`` the voiced RMS relative to ``REFERENCE_RMS``; ``tilt`` the low-pass pole of
    the glottal source (higher = steeper spectral tilt, duller voice); ``breath`` the
    aspiration noise relative to the pulses.
    """

    f0_factor: float
    accent_st: float
    contour_st: float
    rate_sps: float
    level_db: float
    tilt: float
    breath: float


EMOTION_PROFILES: Mapping[str, EmotionProfile] = MappingProxyType({
    "anger": EmotionProfile(f0_factor=1.45, accent_st=4.0, contour_st=-3.0, rate_sps=5.5,
                            level_db=0.0, tilt=0.55, breath=0.02),
    "happy": EmotionProfile(f0_factor=1.40, accent_st=5.0, contour_st=-1.0, rate_sps=5.0,
                            level_db=-5.0, tilt=0.68, breath=0.03),
    "neutral": EmotionProfile(f0_factor=1.00, accent_st=1.2, contour_st=-2.0, rate_sps=4.0,
                              level_db=-8.0, tilt=0.78, breath=0.03),
    "sad": EmotionProfile(f0_factor=0.85, accent_st=0.8, contour_st=-1.5, rate_sps=2.8,
                          level_db=-16.0, tilt=0.88, breath=0.08),
    "surprise": EmotionProfile(f0_factor=1.35, accent_st=2.0, contour_st=9.0, rate_sps=4.2,
                               level_db=-6.0, tilt=0.70, breath=0.04),
})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Speaker:
    """A synthetic speaker: base F0, formant scale (vocal tract length) and group (0 or 1:
    two disjoint halves of the speakers, for transfer between speaker groups)."""

    name: str
    f0_hz: float
    formant_scale: float
    group: int


# The first four speakers: two low and two high voices, one of each in either group.
_BASE_SPEAKERS = ((110.0, 1.00), (200.0, 1.15), (135.0, 0.95), (225.0, 1.20))


def make_speakers(n: int) -> tuple[Speaker, ...]:
    """``n`` speakers ``spk0..``; speaker i is in group ``i // 2 % 2`` (spk0, spk1 in group 0,
    spk2, spk3 in group 1, ...), so each group has low and high voices."""
    speakers = []
    for i in range(n):
        f0, scale = _BASE_SPEAKERS[i % 4]
        # Later rounds of four get slightly shifted voices.
        shift = 1.0 + 0.06 * (i // 4) * (-1) ** (i // 4)
        speakers.append(Speaker(name=f"spk{i}", f0_hz=round(f0 * shift, 2),
                                formant_scale=round(scale * (2 - shift), 4), group=i // 2 % 2))
    return tuple(speakers)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClipParams:
    """The drawn parameters of one clip (what ``render`` needs besides its RNG)."""

    f0_hz: float
    accent_st: float
    contour_st: float
    rate_sps: float
    level_db: float
    tilt: float
    breath: float
    formant_scale: float
    duration_s: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def draw_params(profile: EmotionProfile, speaker: Speaker, rng: np.random.Generator,
                *, jitter: float = 1.0) -> ClipParams:
    """One clip's parameters: the profile on the speaker, each parameter jittered
    (``jitter`` scales every spread; 0 gives the profile itself)."""
    j = float(jitter)
    return ClipParams(
        f0_hz=speaker.f0_hz * profile.f0_factor * float(np.exp(rng.normal(0.0, 0.10 * j))),
        accent_st=profile.accent_st * float(np.exp(rng.normal(0.0, 0.35 * j))),
        contour_st=profile.contour_st + float(rng.normal(0.0, 2.0 * j)),
        rate_sps=profile.rate_sps * float(np.exp(rng.normal(0.0, 0.15 * j))),
        level_db=profile.level_db + float(rng.normal(0.0, 3.0 * j)),
        tilt=float(np.clip(profile.tilt + rng.normal(0.0, 0.06 * j), 0.3, 0.95)),
        breath=profile.breath * float(np.exp(rng.normal(0.0, 0.3 * j))),
        formant_scale=speaker.formant_scale * float(np.exp(rng.normal(0.0, 0.02 * j))),
        duration_s=float(rng.uniform(1.5, 2.5)),
    )


def render(params: ClipParams, rng: np.random.Generator) -> np.ndarray:
    """The clip as float32 mono samples at ``SAMPLE_RATE``, shape ``(round(duration * rate),)``."""
    fs = SAMPLE_RATE
    n = int(round(params.duration_s * fs))
    syllables = _syllables(params, n, rng)
    f0 = _f0_track(params, syllables, n, rng)
    source = _glottal_source(f0, params, rng)
    voiced = np.zeros(n)
    consonants = np.zeros(n)
    envelope_mask = np.zeros(n, dtype=bool)
    burst_filter = signal.butter(2, (2000.0, 6000.0), btype="bandpass", fs=fs, output="sos")
    for start, stop in syllables:
        vowel = VOWELS[int(rng.integers(len(VOWELS)))]
        segment = source[start:stop]
        for formant, bandwidth in zip(vowel, BANDWIDTHS, strict=True):
            segment = _resonate(segment, formant * params.formant_scale, bandwidth)
        envelope = _envelope(stop - start)
        voiced[start:stop] += segment * envelope
        envelope_mask[start:stop] |= envelope > 0.1
        if rng.random() < 0.6:  # an onset consonant: a short noise burst before the vowel
            length = int(rng.uniform(0.02, 0.06) * fs)
            b0 = max(0, start - length // 2)
            burst = signal.sosfilt(burst_filter, rng.standard_normal(length))[: n - b0]
            consonants[b0:b0 + burst.size] += burst * np.hanning(length)[: burst.size]
    rms = float(np.sqrt(np.mean(voiced[envelope_mask] ** 2))) if envelope_mask.any() else 1.0
    gain = REFERENCE_RMS * 10 ** (params.level_db / 20) / max(rms, 1e-9)
    burst_rms = float(np.sqrt(np.mean(consonants ** 2))) or 1.0
    out = gain * (voiced + 0.25 * rms * consonants / burst_rms)
    out += 10 ** (-62 / 20) * rng.standard_normal(n)  # a faint noise floor, never digital zero
    return np.clip(out, -0.99, 0.99).astype(np.float32)


def _syllables(params: ClipParams, n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Sample spans ``(start, stop)`` of the syllables' vowels, with lead/trail silence and at
    most one pause."""
    fs = SAMPLE_RATE
    t = int(rng.uniform(0.08, 0.2) * fs)
    end = n - int(rng.uniform(0.08, 0.2) * fs)
    pause_at = int(rng.uniform(0.35, 0.65) * n) if rng.random() < 0.5 else n
    spans = []
    while True:
        period = int(fs / params.rate_sps * rng.uniform(0.75, 1.25))
        length = int(period * rng.uniform(0.6, 0.8))
        if t + length > end:
            break
        spans.append((t, t + length))
        t += period
        if t >= pause_at:
            t += int(rng.uniform(0.12, 0.3) * fs)
            pause_at = n
    if not spans:  # very slow speech in a short clip: one syllable over the available span
        spans.append((min(t, end - 1), end))
    return spans


def _f0_track(params: ClipParams, syllables: list[tuple[int, int]], n: int,
              rng: np.random.Generator) -> np.ndarray:
    """Per-sample F0 (Hz): base, global contour (its change mostly over the last 40%),
    per-syllable accents (alternating sign), smoothed."""
    x = np.arange(n) / n
    contour = params.contour_st * np.clip((x - 0.35) / 0.65, 0.0, 1.0) ** 1.5
    accents = np.zeros(n)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    for start, stop in syllables:
        accents[start:stop] = sign * params.accent_st * float(rng.uniform(0.3, 1.0)) / 2
        sign = -sign
    width = SAMPLE_RATE // 25
    kernel = np.hanning(2 * width + 1)
    accents = np.convolve(np.pad(accents, width, mode="edge"), kernel / kernel.sum(), "valid")
    return params.f0_hz * 2 ** ((contour + accents) / 12)


def _glottal_source(f0: np.ndarray, params: ClipParams, rng: np.random.Generator) -> np.ndarray:
    """An impulse per glottal cycle (period jittered ~1.5%, amplitude shimmer ~8%) low-passed
    twice by ``params.tilt``, plus white aspiration noise (``params.breath``)."""
    n = f0.size
    pulses = np.zeros(n)
    t = 0.0
    while True:
        i = int(t)
        if i >= n:
            break
        pulses[i] = 1.0 + 0.08 * rng.standard_normal()
        t += SAMPLE_RATE / f0[i] * (1.0 + 0.015 * rng.standard_normal())
    a = params.tilt
    shaped = signal.lfilter([1 - a], [1, -a], signal.lfilter([1 - a], [1, -a], pulses))
    shaped -= signal.lfilter([0.02], [1, -0.98], shaped)  # remove the DC of the pulse train
    scale = float(np.std(shaped)) or 1.0
    return shaped / scale + params.breath * 3 * rng.standard_normal(n)


def _resonate(x: np.ndarray, freq: float, bandwidth: float) -> np.ndarray:
    """A two-pole resonator at ``freq`` Hz with unit gain at 0 Hz."""
    freq = min(freq, 0.45 * SAMPLE_RATE)
    r = np.exp(-np.pi * bandwidth / SAMPLE_RATE)
    den = [1.0, -2 * r * np.cos(2 * np.pi * freq / SAMPLE_RATE), r * r]
    return np.asarray(signal.lfilter([sum(den)], den, x))


def _envelope(length: int) -> np.ndarray:
    """Fast rise, plateau, slower fall (raised-cosine ramps of 20% and 35% of the span)."""
    rise, fall = max(1, int(0.2 * length)), max(1, int(0.35 * length))
    env = np.ones(length)
    env[:rise] = 0.5 - 0.5 * np.cos(np.pi * np.arange(rise) / rise)
    env[length - fall:] = 0.5 + 0.5 * np.cos(np.pi * np.arange(fall) / fall)
    return env
