"""MELD loader (MELD.Raw): ``{train,dev,test}_sent_emo.csv`` labels and ``dia{D}_utt{U}.mp4`` clips.

Clips live in ``train_splits/``, ``dev_splits_complete/`` and ``output_repeated_splits_test/``,
directly under the root or one level down (``train/train_splits``). The CSVs carry stray
non-UTF-8 bytes in the Utterance column, so they are decoded leniently.
"""

from __future__ import annotations

import os
from pathlib import Path

from esn.errors import CorpusError
from esn.pipeline.corpora.base import (
    Collector,
    LoadResult,
    Problem,
    find_dirs,
    read_label_rows,
    require_dir,
)

__all__ = ["MELD_CODES", "MELD_SPLITS", "load_meld"]

CORPUS = "meld"

MELD_CODES: dict[str, str | None] = {
    "neutral": "neutral",
    "joy": "happy",
    "sadness": "sad",
    "anger": "anger",
    "surprise": "surprise",
    "fear": "fear",
    "disgust": "disgust",
}

# split -> (label file, clip folder)
MELD_SPLITS: dict[str, tuple[str, str]] = {
    "train": ("train_sent_emo.csv", "train_splits"),
    "dev": ("dev_sent_emo.csv", "dev_splits_complete"),
    "test": ("test_sent_emo.csv", "output_repeated_splits_test"),
}

_REQUIRED = ("Emotion", "Dialogue_ID", "Utterance_ID", "Speaker")
_EXPECTED = (
    "train/dev/test_sent_emo.csv and clip folders train_splits/, dev_splits_complete/, "
    "output_repeated_splits_test/ under the root or one level down"
)


def load_meld(root: str | os.PathLike[str]) -> LoadResult:
    """Read the MELD splits whose CSV is present; ids are ``{split}_dia{D}_utt{U}``."""
    base = require_dir(root, CORPUS, _EXPECTED)
    csvs = _find_files(base, [name for name, _ in MELD_SPLITS.values()])
    if not csvs:
        raise CorpusError(f"{CORPUS}: no label CSV under {base} (expected {_EXPECTED})")
    folders = find_dirs(base, [folder for _, folder in MELD_SPLITS.values()], depth=1)
    if not any(MELD_SPLITS[split][1] in folders for split in MELD_SPLITS):
        raise CorpusError(f"{CORPUS}: no clip folder under {base} (expected {_EXPECTED})")
    out = Collector(CORPUS)
    for split, (csv_name, folder_name) in MELD_SPLITS.items():
        if csv_name not in csvs:
            continue
        folder = folders.get(folder_name)
        if folder is None:
            out.problems.append(
                Problem(
                    path=str(base / folder_name),
                    reason=f"clip folder {folder_name}/ not found; {split} split skipped",
                    split=split,
                )
            )
            continue
        _read_split(csvs[csv_name], folder, split, out)
    return out.result()


def _find_files(base: Path, names: list[str]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for name in names:
        candidates = [base / name, *sorted(base.glob(f"*/{name}"))]
        for candidate in candidates:
            if candidate.is_file():
                found[name] = candidate
                break
    return found


def _read_split(label_file: Path, folder: Path, split: str, out: Collector) -> None:
    for row_number, row in read_label_rows(label_file, CORPUS, _REQUIRED):
        where = f"{label_file.name}:{row_number}"
        dialogue, utt = (
            (row.get("Dialogue_ID") or "").strip(),
            (row.get("Utterance_ID") or "").strip(),
        )
        code = (row.get("Emotion") or "").strip().lower()
        if not dialogue.isdigit() or not utt.isdigit():
            out.problems.append(
                Problem(
                    path=f"{label_file}:{row_number}",
                    reason="bad Dialogue_ID/Utterance_ID",
                    split=split,
                )
            )
            continue
        clip = folder / f"dia{int(dialogue)}_utt{int(utt)}.mp4"
        reason = f"unknown emotion {code!r} ({where})"
        emotion = out.emotion(code, MELD_CODES, path=str(clip), reason=reason, split=split)
        if emotion is None:
            continue
        if not out.audio_found(clip, where, emotion=emotion, split=split):
            continue
        speaker = (row.get("Speaker") or "").strip() or None
        out.add(
            clip,
            id=f"{split}_dia{int(dialogue)}_utt{int(utt)}",
            emotion=emotion,
            raw_label=(row.get("Emotion") or "").strip(),
            speaker=speaker,
            split=split,
        )
