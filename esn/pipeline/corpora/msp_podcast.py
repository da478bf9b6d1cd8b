"""MSP-Podcast loader: ``Labels/labels_consensus.csv`` (EmoClass codes, Split_Set) and ``Audios/``.

Columns: FileName, EmoClass, EmoAct, EmoVal, EmoDom, SpkrID, Gender, Split_Set. ``X`` (no
agreement among annotators) rows are dropped; ``SpkrID`` ``Unknown`` becomes speaker None.
"""

from __future__ import annotations

import os
from pathlib import Path

from esn.errors import CorpusError
from esn.pipeline.corpora.base import (
    Collector,
    LoadResult,
    Problem,
    read_label_rows,
    require_dir,
)

__all__ = ["MSP_PODCAST_CODES", "load_msp_podcast"]

CORPUS = "msp-podcast"

MSP_PODCAST_CODES: dict[str, str | None] = {
    "A": "anger",
    "S": "sad",
    "H": "happy",
    "U": "surprise",
    "F": "fear",
    "D": "disgust",
    "C": "contempt",
    "N": "neutral",
    "O": "other",
    "X": None,
}

_COLUMNS = ("FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set")
_REQUIRED = ("FileName", "EmoClass")
_EXPECTED = "Labels/labels_consensus.csv and Audios/<FileName>"
_UNKNOWN_SPEAKERS = {"", "unknown", "nan", "none"}


def load_msp_podcast(root: str | os.PathLike[str]) -> LoadResult:
    """Read the consensus labels; split is ``Split_Set`` lower-cased (train, development...)."""
    base = require_dir(root, CORPUS, _EXPECTED)
    label_file = _label_file(base)
    audio_dir = base / "Audios"
    if not audio_dir.is_dir():
        raise CorpusError(f"{CORPUS}: audio folder {audio_dir} not found (expected {_EXPECTED})")
    out = Collector(CORPUS)
    seen: set[str] = set()
    for row_number, row in read_label_rows(label_file, CORPUS, _REQUIRED, expected=_COLUMNS):
        where = f"{label_file.name}:{row_number}"
        name = (row.get("FileName") or "").strip()
        code = (row.get("EmoClass") or "").strip().upper()
        split = (row.get("Split_Set") or "").strip().lower() or None
        if not name:
            out.problems.append(Problem(path=f"{label_file}:{row_number}", reason="empty FileName"))
            continue
        audio = audio_dir / name
        reason = f"unknown EmoClass {code!r} ({where})"
        emotion = out.emotion(code, MSP_PODCAST_CODES, path=str(audio), reason=reason, split=split)
        if emotion is None:
            continue
        utt_id = Path(name).stem
        if utt_id in seen:
            out.problems.append(
                Problem(
                    path=str(audio),
                    reason=f"duplicate FileName ({where})",
                    emotion=emotion,
                    split=split,
                )
            )
            continue
        if not out.audio_found(audio, where, emotion=emotion, split=split):
            continue
        seen.add(utt_id)
        speaker = (row.get("SpkrID") or "").strip()
        out.add(
            audio,
            id=utt_id,
            emotion=emotion,
            raw_label=code,
            speaker=None if speaker.lower() in _UNKNOWN_SPEAKERS else speaker,
            split=split,
        )
    return out.result()


def _label_file(base: Path) -> Path:
    for candidate in (base / "Labels" / "labels_consensus.csv", base / "labels_consensus.csv"):
        if candidate.is_file():
            return candidate
    raise CorpusError(
        f"{CORPUS}: label file {base / 'Labels' / 'labels_consensus.csv'} not found "
        f"(expected {_EXPECTED})"
    )
