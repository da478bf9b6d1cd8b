"""ESD loader: ``0011/Angry/train/0011_000351.wav`` (speaker/Emotion/split/file).

Split folders are ``train``, ``evaluation`` and ``test``; the flat variant without them
(``0011/Angry/0011_000351.wav``) is read too, with split None. The tree may sit one folder down
(``Emotion Speech Dataset/0011``). Speaker ids keep their four digits (``0011``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from esn.errors import CorpusError
from esn.pipeline.corpora.base import LoadResult, NameReading, WavName, read_wav_names, require_dir

__all__ = ["ESD_CODES", "ESD_SPLITS", "load_esd"]

CORPUS = "esd"

ESD_CODES: dict[str, str | None] = {
    "Angry": "anger",
    "Happy": "happy",
    "Neutral": "neutral",
    "Sad": "sad",
    "Surprise": "surprise",
}

ESD_SPLITS: tuple[str, ...] = ("train", "evaluation", "test")

_EXPECTED = "speaker folders like 0011/ holding Angry/, Happy/, Neutral/, Sad/, Surprise/ wavs"
_SPEAKER = re.compile(r"^\d{4}$")
_NAME = re.compile(r"^\d{4}_\d{6}$")


def load_esd(root: str | os.PathLike[str]) -> LoadResult:
    """Read every ESD wav; emotion from its emotion folder, split from its split folder if any."""
    base = require_dir(root, CORPUS, _EXPECTED)
    speakers = _speaker_dirs(base) or [d for sub in _subdirs(base) for d in _speaker_dirs(sub)]
    result = read_wav_names(
        CORPUS, ESD_CODES, _read_names(speakers), unknown="unknown emotion folder"
    )
    if not result.utterances and not result.problems:
        raise CorpusError(f"{CORPUS}: no ESD wav files under {base} (expected {_EXPECTED})")
    return result


def _read_names(speakers: list[Path]) -> Iterator[tuple[Path, NameReading]]:
    """Every wav of the speaker folders with its labels, which come from its folders."""
    for speaker_dir in speakers:
        for emotion_dir in _subdirs(speaker_dir):
            for wav, split in _wavs(emotion_dir):
                misnamed = None if _NAME.match(wav.stem) else "not an ESD file name"
                yield (
                    wav,
                    WavName(
                        raw_label=emotion_dir.name,
                        speaker=speaker_dir.name,
                        split=split,
                        misnamed=misnamed,
                    ),
                )


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _speaker_dirs(folder: Path) -> list[Path]:
    return [p for p in _subdirs(folder) if _SPEAKER.match(p.name)]


def _wavs(emotion_dir: Path) -> list[tuple[Path, str | None]]:
    """The wavs of one emotion folder with their split (None for the flat layout)."""
    found: list[tuple[Path, str | None]] = [
        (f, None) for f in sorted(emotion_dir.glob("*.wav")) if not f.name.startswith(".")
    ]
    for split in ESD_SPLITS:
        split_dir = emotion_dir / split
        if split_dir.is_dir():
            found.extend(
                (f, split) for f in sorted(split_dir.glob("*.wav")) if not f.name.startswith(".")
            )
    return found
