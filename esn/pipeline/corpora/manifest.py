"""Generic manifest loader: a ``.csv`` or ``.jsonl`` file of ``path, label[, speaker, split, id]``.

``emotion`` is accepted for ``label``. Labels go through the canonical vocabulary (``angry`` is
``anger``); a label that is not a known name or alias is kept lower-cased, so custom label sets
work (``load_corpus`` keeps such a label only when it is asked for). A row with an empty label
is counted as unlabelled. Relative paths resolve against the manifest's folder; the default id
is the path's stem, made unique (``a``, ``a-2``...).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from esn.errors import CorpusError
from esn.pipeline.corpora.base import (
    Collector,
    LoadResult,
    Problem,
    read_label_rows,
    read_text,
    unique_id,
)
from esn.pipeline.corpora.emotions import normalize_label

__all__ = ["MANIFEST_SUFFIXES", "load_manifest"]

CORPUS = "manifest"
MANIFEST_SUFFIXES: tuple[str, ...] = (".csv", ".jsonl", ".ndjson")
_EXPECTED = (
    "a .csv or .jsonl file with columns path, label (or emotion), and optionally speaker, split, id"
)


def load_manifest(path: str | os.PathLike[str]) -> LoadResult:
    """Read a manifest file; rows without a usable path or audio file become problems, rows
    with an empty label are counted in ``n_unlabelled``."""
    manifest = Path(path).expanduser()
    if not manifest.exists():
        raise CorpusError(f"{CORPUS}: manifest {manifest} does not exist (expected {_EXPECTED})")
    if not manifest.is_file():
        raise CorpusError(f"{CORPUS}: manifest {manifest} is not a file (expected {_EXPECTED})")
    suffix = manifest.suffix.lower()
    if suffix not in MANIFEST_SUFFIXES:
        raise CorpusError(f"{CORPUS}: {manifest} has suffix {suffix!r} (expected {_EXPECTED})")
    rows = list(_csv_rows(manifest) if suffix == ".csv" else _jsonl_rows(manifest))
    if not rows:
        raise CorpusError(f"{CORPUS}: manifest {manifest} has no rows (expected {_EXPECTED})")
    folder = manifest.parent
    # Ids given in the file win; default ids (path stems) step around them.
    given = (_text(r.get("id")) for _, r in rows if isinstance(r, dict))
    explicit: set[str] = {i for i in given if i is not None}
    seen: set[str] = set()
    out = Collector(CORPUS)
    for where, row in rows:
        if not isinstance(row, dict):
            out.problems.append(Problem(path=where, reason=str(row)))
            continue
        audio_text = _text(row.get("path"))
        raw_label = _text(row.get("label")) or _text(row.get("emotion"))
        split = _text(row.get("split"))
        if audio_text is None:
            out.problems.append(Problem(path=where, reason="empty path", split=split))
            continue
        audio = Path(audio_text).expanduser()
        if not audio.is_absolute():
            audio = folder / audio
        if raw_label is None:
            out.n_unlabelled += 1  # no label is not an unusable file
            continue
        emotion = normalize_label(raw_label)
        if not out.audio_found(audio, where, emotion=emotion, split=split, listed="listed"):
            continue
        given_id = _text(row.get("id"))
        if given_id is not None and given_id in seen:
            out.problems.append(
                Problem(
                    path=str(audio),
                    reason=f"duplicate id {given_id!r} ({where})",
                    emotion=emotion,
                    split=split,
                )
            )
            continue
        if given_id is not None:
            seen.add(given_id)
            utt_id = given_id
        else:
            utt_id = unique_id(audio.stem, seen | explicit)
            seen.add(utt_id)
        out.add(
            audio,
            id=utt_id,
            emotion=emotion,
            raw_label=raw_label,
            speaker=_text(row.get("speaker")),
            split=split,
        )
    return out.result()


def _text(value: Any) -> str | None:
    """A cell as stripped text, or None when empty/missing."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _csv_rows(manifest: Path) -> Iterator[tuple[str, dict[str, Any] | str]]:
    rows = read_label_rows(
        manifest, CORPUS, lower=True, check=lambda columns: _check_columns(manifest, columns)
    )
    for row_number, row in rows:
        yield f"{manifest.name}:{row_number}", dict(row)


def _jsonl_rows(manifest: Path) -> Iterator[tuple[str, dict[str, Any] | str]]:
    keys: set[str] = set()
    parsed: list[tuple[str, dict[str, Any] | str]] = []
    for lineno, line in enumerate(read_text(manifest).splitlines(), start=1):
        where = f"{manifest.name}:{lineno}"
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            parsed.append((where, f"invalid JSON line: {exc.msg}"))
            continue
        if not isinstance(item, dict):
            parsed.append((where, "JSON line is not an object"))
            continue
        item = {str(k).strip().lower(): v for k, v in item.items()}
        keys.update(item)
        parsed.append((where, item))
    if keys:
        _check_columns(manifest, sorted(keys))
    yield from parsed


def _check_columns(manifest: Path, columns: list[str]) -> None:
    missing = []
    if "path" not in columns:
        missing.append("path")
    if "label" not in columns and "emotion" not in columns:
        missing.append("label (or emotion)")
    if missing:
        raise CorpusError(
            f"{CORPUS}: {manifest} lacks {' and '.join(missing)} (found {', '.join(columns)}; "
            f"expected {_EXPECTED})"
        )
