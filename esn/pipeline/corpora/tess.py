"""TESS loader: ``OAF_angry/OAF_back_angry.wav``, ``YAF_pleasant_surprised/YAF_bath_ps.wav``.

The label is the last segment of the file name (angry, disgust, fear, happy, neutral, ps, sad);
the speaker is its first segment (OAF or YAF). Files are found at any depth, since common
copies nest the tree one or two folders down; a recording that appears twice (some copies hold
the whole tree twice) is listed once, from the shallowest folder. No published split.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from esn.errors import CorpusError
from esn.pipeline.corpora.base import LoadResult, NameReading, WavName, read_wav_names, require_dir
from esn.schemas.utterance import Utterance

__all__ = ["TESS_CODES", "load_tess"]

CORPUS = "tess"

TESS_CODES: dict[str, str | None] = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happy",
    "neutral": "neutral",
    "ps": "surprise",
    "sad": "sad",
}

_EXPECTED = "OAF_*/ and YAF_*/ folders of OAF_word_emotion.wav files"
_NAME = re.compile(r"^(OAF|YAF)_(.+)_([A-Za-z]+)$", re.IGNORECASE)
_SPEAKER_DIR = re.compile(r"^(OAF|YAF)_", re.IGNORECASE)


def load_tess(root: str | os.PathLike[str]) -> LoadResult:
    """Read every TESS wav under ``root``."""
    base = require_dir(root, CORPUS, _EXPECTED)
    files = sorted(
        (f for f in base.rglob("*.wav") if not f.name.startswith(".")),
        key=lambda f: (len(f.relative_to(base).parts), str(f)),
    )
    if not any(_NAME.match(f.stem) for f in files):
        raise CorpusError(f"{CORPUS}: no TESS wav files under {base} (expected {_EXPECTED})")
    result = read_wav_names(
        CORPUS, TESS_CODES, ((wav, _read_name(wav)) for wav in files), unknown="unknown emotion"
    )
    # Files come shallowest first, so a recording listed twice keeps its shallowest copy.
    first: dict[str, Utterance] = {}
    for utterance in result.utterances:
        first.setdefault(utterance.id, utterance)
    return dataclasses.replace(result, utterances=tuple(sorted(first.values(), key=lambda u: u.id)))


def _read_name(wav: Path) -> NameReading:
    match = _NAME.match(wav.stem)
    if match is None:
        # Other wavs may share the folder tree; only those in speaker folders are TESS's.
        return "not a TESS file name" if _SPEAKER_DIR.match(wav.parent.name) else None
    speaker, _word, code = match.groups()
    return WavName(raw_label=code, speaker=speaker.upper(), code=code.lower())
