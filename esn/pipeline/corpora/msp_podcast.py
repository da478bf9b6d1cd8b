"""MSP-Podcast loader: ``Labels/labels_consensus.csv`` (EmoClass codes, Split_Set) and ``Audios/``.

Columns: FileName, EmoClass, EmoAct, EmoVal, EmoDom, SpkrID, Gender, Split_Set. ``X`` (no
agreement among annotators) rows are dropped; ``SpkrID`` ``Unknown`` becomes speaker None.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from esn.errors import CorpusError
from esn.pipeline.corpora.base import LoadResult, Problem, read_text, require_dir, text_stream
from esn.pipeline.corpora.emotions import lookup_code
from esn.schemas.utterance import Utterance

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
    reader = csv.DictReader(text_stream(read_text(label_file)))
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in _REQUIRED if c not in columns]
    if missing:
        raise CorpusError(
            f"{CORPUS}: {label_file} lacks column(s) {', '.join(missing)} "
            f"(expected FileName, EmoClass, EmoAct, EmoVal, EmoDom, SpkrID, Gender, Split_Set)"
        )
    reader.fieldnames = columns
    utterances: list[Utterance] = []
    problems: list[Problem] = []
    n_unlabelled = 0
    seen: set[str] = set()
    for row_number, row in enumerate(reader, start=2):
        where = f"{label_file.name}:{row_number}"
        name = (row.get("FileName") or "").strip()
        code = (row.get("EmoClass") or "").strip().upper()
        split = (row.get("Split_Set") or "").strip().lower() or None
        if not name:
            problems.append(Problem(path=f"{label_file}:{row_number}", reason="empty FileName"))
            continue
        audio = audio_dir / name
        try:
            emotion = lookup_code(code, MSP_PODCAST_CODES)
        except KeyError:
            problems.append(
                Problem(path=str(audio), reason=f"unknown EmoClass {code!r} ({where})", split=split)
            )
            continue
        if emotion is None:
            n_unlabelled += 1
            continue
        utt_id = Path(name).stem
        if utt_id in seen:
            problems.append(
                Problem(
                    path=str(audio),
                    reason=f"duplicate FileName ({where})",
                    emotion=emotion,
                    split=split,
                )
            )
            continue
        if not audio.is_file():
            problems.append(
                Problem(
                    path=str(audio),
                    reason=f"audio file not found (labelled in {where})",
                    emotion=emotion,
                    split=split,
                )
            )
            continue
        seen.add(utt_id)
        speaker = (row.get("SpkrID") or "").strip()
        utterances.append(
            Utterance(
                id=utt_id,
                corpus=CORPUS,
                path=str(audio.resolve()),
                emotion=emotion,
                raw_label=code,
                speaker=None if speaker.lower() in _UNKNOWN_SPEAKERS else speaker,
                split=split,
            )
        )
    return LoadResult(
        utterances=tuple(utterances), problems=tuple(problems), n_unlabelled=n_unlabelled
    )


def _label_file(base: Path) -> Path:
    for candidate in (base / "Labels" / "labels_consensus.csv", base / "labels_consensus.csv"):
        if candidate.is_file():
            return candidate
    raise CorpusError(
        f"{CORPUS}: label file {base / 'Labels' / 'labels_consensus.csv'} not found "
        f"(expected {_EXPECTED})"
    )
