"""TESS loader: ``OAF_angry/OAF_back_angry.wav``, ``YAF_pleasant_surprised/YAF_bath_ps.wav``.

The label is the last segment of the file name (angry, disgust, fear, happy, neutral, ps, sad);
the speaker is its first segment (OAF or YAF). Files are found at any depth, since common
copies nest the tree one or two folders down; a recording that appears twice (some copies hold
the whole tree twice) is listed once, from the shallowest folder. No published split.
"""

from __future__ import annotations

import os
import re

from esn.errors import CorpusError
from esn.pipeline.corpora.base import LoadResult, Problem, require_dir
from esn.pipeline.corpora.emotions import lookup_code
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
    utterances: list[Utterance] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for wav in files:
        match = _NAME.match(wav.stem)
        if match is None:
            # Other wavs may share the folder tree; only those in speaker folders are TESS's.
            if _SPEAKER_DIR.match(wav.parent.name):
                problems.append(Problem(path=str(wav), reason="not a TESS file name"))
            continue
        speaker, _word, code = match.groups()
        try:
            emotion = lookup_code(code.lower(), TESS_CODES)
        except KeyError:
            problems.append(Problem(path=str(wav), reason=f"unknown emotion {code!r}"))
            continue
        if emotion is None or wav.stem in seen:
            continue
        seen.add(wav.stem)
        utterances.append(
            Utterance(
                id=wav.stem,
                corpus=CORPUS,
                path=str(wav.resolve()),
                emotion=emotion,
                raw_label=code,
                speaker=speaker.upper(),
                split=None,
            )
        )
    utterances.sort(key=lambda u: u.id)
    return LoadResult(utterances=tuple(utterances), problems=tuple(problems))
