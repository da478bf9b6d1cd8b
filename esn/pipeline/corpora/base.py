"""Shared pieces of the corpus loaders: the problem record, the loader result and its collector,
layout helpers, the file-name loop of the wav-folder corpora, and CSV label-file reading.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from esn.errors import CorpusError
from esn.pipeline.corpora.emotions import lookup_code
from esn.schemas.utterance import Utterance

__all__ = [
    "Collector",
    "LoadResult",
    "Loader",
    "NameReading",
    "Problem",
    "WavName",
    "audio_key",
    "find_dirs",
    "read_label_rows",
    "read_text",
    "read_wav_names",
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
        n_unlabelled: Rows without a label: an empty one, or one the corpus marks as having no
            agreed label (IEMOCAP ``xxx``, MSP-Podcast ``X``); they are dropped, not errors.
    """

    utterances: tuple[Utterance, ...]
    problems: tuple[Problem, ...] = ()
    n_unlabelled: int = 0


Loader = Callable[[Path], LoadResult]


@dataclasses.dataclass
class Collector:
    """What a loader has found so far, in order; ``result()`` makes the ``LoadResult``.

    The steps every loader shares are methods: looking a code up (recording an unknown code,
    counting an unlabelled one), checking that a labelled item's audio exists, adding an
    utterance. Problems of a corpus's own go straight into ``problems``.
    """

    corpus: str
    utterances: list[Utterance] = dataclasses.field(default_factory=list)
    problems: list[Problem] = dataclasses.field(default_factory=list)
    n_unlabelled: int = 0

    def emotion(
        self,
        code: str,
        codes: Mapping[str, str | None],
        *,
        path: str,
        reason: str,
        split: str | None = None,
    ) -> str | None:
        """``code``'s canonical emotion from a corpus code table (see ``lookup_code``).

        None for an item to skip: a code not in ``codes`` is recorded as a problem (``path``,
        ``reason``, ``split``); an empty code, or one the table marks as unlabelled, is counted.
        """
        if not code.strip():
            self.n_unlabelled += 1
            return None
        try:
            emotion = lookup_code(code, codes)
        except KeyError:
            self.problems.append(Problem(path=path, reason=reason, split=split))
            return None
        if emotion is None:
            self.n_unlabelled += 1
        return emotion

    def audio_found(
        self,
        audio: Path,
        where: str,
        *,
        emotion: str,
        split: str | None = None,
        listed: str = "labelled",
    ) -> bool:
        """Whether ``audio`` is a file; if not, records the problem ``audio file not found``.

        ``where`` names the label-file line (``file.csv:12``) and ``listed`` the verb before it in
        the reason: ``audio file not found (labelled in file.csv:12)``.
        """
        if audio.is_file():
            return True
        self.problems.append(
            Problem(
                path=str(audio),
                reason=f"audio file not found ({listed} in {where})",
                emotion=emotion,
                split=split,
            )
        )
        return False

    def add(
        self,
        audio: Path,
        *,
        id: str,
        emotion: str,
        raw_label: str,
        speaker: str | None,
        split: str | None,
    ) -> None:
        """Add the utterance of ``audio`` (its path resolved) to this corpus's list."""
        self.utterances.append(
            Utterance(
                id=id,
                corpus=self.corpus,
                path=str(audio.resolve()),
                emotion=emotion,
                raw_label=raw_label,
                speaker=speaker,
                split=split,
            )
        )

    def result(self) -> LoadResult:
        return LoadResult(
            utterances=tuple(self.utterances),
            problems=tuple(self.problems),
            n_unlabelled=self.n_unlabelled,
        )


def audio_key(path: str) -> str:
    """``path`` as compared when asking whether two items are the same audio file.

    Loaders store resolved paths; this only normalises spelling (``a/./b``, case on Windows),
    without touching the disk. URLs are compared as written.
    """
    if "://" in path:
        return path
    return os.path.normcase(os.path.normpath(path))


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


def read_label_rows(
    label_file: Path,
    corpus: str,
    required: Sequence[str] = (),
    *,
    expected: Sequence[str] | None = None,
    lower: bool = False,
    check: Callable[[list[str]], None] | None = None,
) -> Iterator[tuple[int, dict[str, str]]]:
    """The rows of a CSV label file, each with its row number (the header is row 1).

    Column names are stripped (and lower-cased with ``lower``) and checked before any row is
    read: a column of ``required`` that is missing raises ``CorpusError`` naming it and the
    ``expected`` columns (by default the required ones). ``check``, when given, gets the column
    names and does the checking instead.
    """
    reader = csv.DictReader(text_stream(read_text(label_file)))
    columns = [c.strip() for c in reader.fieldnames or []]
    if lower:
        columns = [c.lower() for c in columns]
    if check is not None:
        check(columns)
    else:
        missing = [c for c in required if c not in columns]
        if missing:
            raise CorpusError(
                f"{corpus}: {label_file} lacks column(s) {', '.join(missing)} "
                f"(expected {', '.join(required if expected is None else expected)})"
            )
    reader.fieldnames = columns
    return enumerate(reader, start=2)


@dataclasses.dataclass(frozen=True, kw_only=True)
class WavName:
    """What a wav-folder corpus (CREMA-D, RAVDESS, TESS, ESD) reads from one file's name or folders.

    Attributes:
        raw_label: The emotion code as written (``ANG``, ``05``, ``Angry``...).
        speaker: Speaker id.
        split: Split of the file, or None when the corpus publishes none.
        code: The key to look up in the code table when it is not ``raw_label`` itself (TESS
            looks labels up lower-cased).
        misnamed: For a file whose label comes from its folder but whose own name is wrong, the
            reason to record (with the emotion) instead of listing it.
    """

    raw_label: str
    speaker: str | None
    split: str | None = None
    code: str | None = None
    misnamed: str | None = None


# A ``WavName``; a reason string for a name the corpus cannot read (recorded as a problem); or
# None for a file that is not the corpus's (skipped).
NameReading = WavName | str | None


def read_wav_names(
    corpus: str,
    codes: Mapping[str, str | None],
    named: Iterable[tuple[Path, NameReading]],
    *,
    unknown: str = "unknown emotion code",
) -> LoadResult:
    """List the wavs of a wav-folder corpus from what their names say, in the order given.

    Each item pairs a wav with its ``NameReading``. A label not in ``codes`` is a problem
    ``"{unknown} 'CODE'"``; one the table marks unlabelled is counted, not listed. Utterance ids
    are the file stems.
    """
    out = Collector(corpus)
    for wav, name in named:
        if name is None:
            continue
        if isinstance(name, str):
            out.problems.append(Problem(path=str(wav), reason=name))
            continue
        emotion = out.emotion(
            name.raw_label if name.code is None else name.code,
            codes,
            path=str(wav),
            reason=f"{unknown} {name.raw_label!r}",
            split=name.split,
        )
        if emotion is None:
            continue
        if name.misnamed is not None:
            out.problems.append(Problem(path=str(wav), reason=name.misnamed, emotion=emotion))
            continue
        out.add(
            wav,
            id=wav.stem,
            emotion=emotion,
            raw_label=name.raw_label,
            speaker=name.speaker,
            split=name.split,
        )
    return out.result()
