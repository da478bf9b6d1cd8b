"""Shared pieces of the corpus loaders: the problem record, the loader result, layout helpers."""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from esn.errors import CorpusError
from esn.schemas.utterance import Utterance

__all__ = [
    "LoadResult",
    "Loader",
    "Problem",
    "find_dirs",
    "read_text",
    "require_dir",
    "require_file",
    "text_stream",
    "unique_id",
]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Problem:
    """One corpus item that cannot be used, with a short reason.

    Attributes:
        path: The audio file (or label-file row) concerned.
        reason: A few words: ``audio file not found``, ``empty file (0 bytes)``...
        emotion: Canonical emotion of the item when known, so emotion filters apply to it.
        split: Split of the item when known, so split filters apply to it.
    """

    path: str
    reason: str
    emotion: str | None = None
    split: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "reason": self.reason}


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoadResult:
    """What a loader returns: usable utterances, unusable items, and rows without a label.

    Attributes:
        utterances: Labelled items whose audio file exists, in label-file order.
        problems: Items that cannot be used (missing audio, unknown code, bad file name).
        n_unlabelled: Rows the corpus marks as having no agreed label (IEMOCAP ``xxx``,
            MSP-Podcast ``X``); they are dropped, not errors.
    """

    utterances: tuple[Utterance, ...]
    problems: tuple[Problem, ...] = ()
    n_unlabelled: int = 0


Loader = Callable[[Path], LoadResult]


def require_dir(root: str | os.PathLike[str], corpus: str, expected: str) -> Path:
    """Return ``root`` as a Path, or raise ``CorpusError`` saying what the layout should be."""
    path = Path(root).expanduser()
    if not path.exists():
        raise CorpusError(f"{corpus}: corpus root {path} does not exist (expected {expected})")
    if not path.is_dir():
        raise CorpusError(f"{corpus}: corpus root {path} is not a folder (expected {expected})")
    return path


def require_file(path: Path, corpus: str, expected: str) -> Path:
    """Return ``path`` when it is a file, else raise ``CorpusError`` naming what was expected."""
    if not path.is_file():
        raise CorpusError(f"{corpus}: label file {path} not found (expected {expected})")
    return path


def find_dirs(root: Path, names: Iterable[str], depth: int = 1) -> dict[str, Path]:
    """Find folders called one of ``names`` directly under ``root`` or up to ``depth`` below.

    Returns ``{name: path}`` for the names found; the shallowest match wins.
    """
    wanted = set(names)
    found: dict[str, Path] = {}
    level = [root]
    for _ in range(depth + 1):
        next_level: list[Path] = []
        for folder in level:
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir())
            except OSError:
                continue
            for child in children:
                if child.name in wanted and child.name not in found:
                    found[child.name] = child
                next_level.append(child)
        level = next_level
    return found


def read_text(path: Path) -> str:
    """Read a label file as text, tolerating the stray non-UTF-8 bytes real corpora contain.

    UTF-8 (with or without BOM) first; otherwise Windows-1252, with undecodable bytes replaced.
    """
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def text_stream(text: str) -> io.StringIO:
    """A file-like view of ``text`` for the csv module (newline handling left to csv)."""
    return io.StringIO(text, newline="")


def unique_id(base: str, seen: set[str]) -> str:
    """Return ``base``, or ``base-2``, ``base-3``... whichever is not in ``seen``; record it."""
    candidate = base
    n = 1
    while candidate in seen:
        n += 1
        candidate = f"{base}-{n}"
    seen.add(candidate)
    return candidate
