"""CREMA-D loader: ``AudioWAV/1001_DFA_ANG_XX.wav`` (ActorID_Sentence_Emotion_Level).

The wavs may also sit directly under the root. Speaker is the actor id; no published split.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from esn.errors import CorpusError
from esn.pipeline.corpora.base import LoadResult, NameReading, WavName, read_wav_names, require_dir

__all__ = ["CREMAD_CODES", "load_cremad"]

CORPUS = "cremad"

CREMAD_CODES: dict[str, str | None] = {
    "ANG": "anger",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}

_EXPECTED = "AudioWAV/1001_DFA_ANG_XX.wav style files (or the wavs directly under the root)"
_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{1,2})$")


def load_cremad(root: str | os.PathLike[str]) -> LoadResult:
    """Read every CREMA-D wav; the emotion is the third field of the file name."""
    base = require_dir(root, CORPUS, _EXPECTED)
    folder = base / "AudioWAV" if (base / "AudioWAV").is_dir() else base
    files = sorted(f for f in folder.glob("*.wav") if not f.name.startswith("."))
    if not files:
        raise CorpusError(f"{CORPUS}: no .wav files in {folder} (expected {_EXPECTED})")
    return read_wav_names(CORPUS, CREMAD_CODES, ((wav, _read_name(wav)) for wav in files))


def _read_name(wav: Path) -> NameReading:
    match = _NAME.match(wav.stem)
    if match is None:
        return "not a CREMA-D file name"
    actor, _sentence, code, _level = match.groups()
    return WavName(raw_label=code, speaker=actor)
