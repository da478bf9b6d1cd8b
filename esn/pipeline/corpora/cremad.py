"""CREMA-D loader: ``AudioWAV/1001_DFA_ANG_XX.wav`` (ActorID_Sentence_Emotion_Level).

The wavs may also sit directly under the root. Speaker is the actor id; no published split.
"""

from __future__ import annotations

import os
import re

from esn.errors import CorpusError
from esn.pipeline.corpora.base import LoadResult, Problem, require_dir
from esn.pipeline.corpora.emotions import lookup_code
from esn.schemas.utterance import Utterance

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
    utterances: list[Utterance] = []
    problems: list[Problem] = []
    for wav in files:
        match = _NAME.match(wav.stem)
        if match is None:
            problems.append(Problem(path=str(wav), reason="not a CREMA-D file name"))
            continue
        actor, _sentence, code, _level = match.groups()
        try:
            emotion = lookup_code(code, CREMAD_CODES)
        except KeyError:
            problems.append(Problem(path=str(wav), reason=f"unknown emotion code {code!r}"))
            continue
        if emotion is None:
            continue
        utterances.append(
            Utterance(
                id=wav.stem,
                corpus=CORPUS,
                path=str(wav.resolve()),
                emotion=emotion,
                raw_label=code,
                speaker=actor,
                split=None,
            )
        )
    return LoadResult(utterances=tuple(utterances), problems=tuple(problems))
