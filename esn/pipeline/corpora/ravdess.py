"""RAVDESS loader: ``Actor_01/03-01-05-01-02-01-01.wav`` file names carry every label.

Fields: modality-channel-emotion-intensity-statement-repetition-actor. Only modality ``03``
(audio-only) is audio; speech (channel 01) and song (02) are both read. No published split.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from esn.errors import CorpusError
from esn.pipeline.corpora.base import LoadResult, NameReading, WavName, read_wav_names, require_dir

__all__ = ["RAVDESS_CODES", "load_ravdess"]

CORPUS = "ravdess"

RAVDESS_CODES: dict[str, str | None] = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "anger",
    "06": "fear",
    "07": "disgust",
    "08": "surprise",
}

AUDIO_ONLY = "03"
_EXPECTED = "Actor_01/03-01-05-01-02-01-01.wav style files (under the root or one level down)"
_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


def load_ravdess(root: str | os.PathLike[str]) -> LoadResult:
    """Read every audio-only RAVDESS file; speaker is ``Actor_XX`` from the actor field."""
    base = require_dir(root, CORPUS, _EXPECTED)
    actors = sorted(p for p in base.glob("Actor_*") if p.is_dir())
    if not actors:
        actors = sorted(p for p in base.glob("*/Actor_*") if p.is_dir())
    files = sorted(f for actor in actors for f in actor.glob("*.wav") if not f.name.startswith("."))
    if not files:
        raise CorpusError(f"{CORPUS}: no Actor_*/*.wav files under {base} (expected {_EXPECTED})")
    return read_wav_names(CORPUS, RAVDESS_CODES, ((wav, _read_name(wav)) for wav in files))


def _read_name(wav: Path) -> NameReading:
    match = _NAME.match(wav.stem)
    if match is None:
        return "not a RAVDESS file name"
    modality, _channel, code, *_rest, actor = match.groups()
    if modality != AUDIO_ONLY:
        return None
    return WavName(raw_label=code, speaker=f"Actor_{actor}")
