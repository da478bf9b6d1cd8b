"""IEMOCAP loader: ``Session{1..5}/dialog/EmoEvaluation/*.txt`` labels, ``sentences/wav`` audio.

A label line looks like ``[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5, 2.5, 2.5]``;
header lines (``%``) and per-evaluator lines (``C-E2:<TAB>Neutral state;<TAB>()``) are ignored.
The audio of that line is ``Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav``.
"""

from __future__ import annotations

import os
import re

from esn.errors import CorpusError
from esn.pipeline.corpora.base import Collector, LoadResult, Problem, read_text, require_dir

__all__ = ["IEMOCAP_CODES", "load_iemocap"]

CORPUS = "iemocap"

# Majority-vote codes of the EmoEvaluation files; ``xxx`` means the evaluators did not agree.
IEMOCAP_CODES: dict[str, str | None] = {
    "neu": "neutral",
    "fru": "frustration",
    "ang": "anger",
    "sad": "sad",
    "hap": "happy",
    "exc": "excited",
    "sur": "surprise",
    "fea": "fear",
    "dis": "disgust",
    "oth": "other",
    "xxx": None,
}

_EXPECTED = "Session1..Session5 folders with dialog/EmoEvaluation/*.txt and sentences/wav/"
_LINE = re.compile(
    r"^\[\s*(?P<start>[\d.]+)\s*-\s*(?P<end>[\d.]+)\s*\]\s+(?P<id>Ses\d\d[FM]\S*)\s+(?P<code>\S+)"
)


def speaker_of(utterance_id: str) -> str:
    """``Ses01F_impro01_M003`` -> ``Ses01M``: the session plus the gender of the last segment."""
    return utterance_id[:5] + utterance_id.rsplit("_", 1)[-1][:1]


def load_iemocap(root: str | os.PathLike[str]) -> LoadResult:
    """Read every labelled sentence of an IEMOCAP release (no published split: split None)."""
    base = require_dir(root, CORPUS, _EXPECTED)
    sessions = sorted(
        p for p in base.glob("Session*") if p.is_dir() and re.fullmatch(r"Session\d+", p.name)
    )
    label_files = [
        f
        for session in sessions
        for f in sorted((session / "dialog" / "EmoEvaluation").glob("*.txt"))
        if not f.name.startswith(".")
    ]
    if not label_files:
        raise CorpusError(f"{CORPUS}: no label files under {base} (expected {_EXPECTED})")
    out = Collector(CORPUS)
    seen: set[str] = set()
    for label_file in label_files:
        session = label_file.parents[2]
        for lineno, line in enumerate(read_text(label_file).splitlines(), start=1):
            match = _LINE.match(line.strip())
            if match is None:
                continue
            utt_id, code = match["id"], match["code"]
            where = f"{label_file.name}:{lineno}"
            dialog = utt_id.rsplit("_", 1)[0]
            wav = session / "sentences" / "wav" / dialog / f"{utt_id}.wav"
            reason = f"unknown emotion code {code!r} ({where})"
            emotion = out.emotion(code, IEMOCAP_CODES, path=str(wav), reason=reason)
            if emotion is None:
                continue
            if utt_id in seen:
                out.problems.append(
                    Problem(
                        path=str(wav),
                        reason=f"duplicate utterance id {utt_id} ({where})",
                        emotion=emotion,
                    )
                )
                continue
            if not out.audio_found(wav, where, emotion=emotion):
                continue
            seen.add(utt_id)
            out.add(
                wav,
                id=utt_id,
                emotion=emotion,
                raw_label=code,
                speaker=speaker_of(utt_id),
                split=None,
            )
    return out.result()
