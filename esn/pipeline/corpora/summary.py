"""What a corpus holds and which of its files cannot be used: ``esn corpus SPEC`` in a library.

``summarize_corpus`` lists the corpus, optionally decodes every file (thread pool) to find the
unreadable ones, and returns one frozen ``CorpusSummary``; ``format_summary`` renders it.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from esn.errors import AudioDecodeError
from esn.pipeline.audio import load_audio
from esn.pipeline.corpora.base import Problem
from esn.pipeline.corpora.emotions import emotion_sort_key
from esn.pipeline.corpora.spec import CorpusSpec, load_corpus
from esn.schemas.utterance import Utterance

__all__ = ["CorpusSummary", "format_summary", "summarize_corpus"]

NO_SPLIT = "none"
Progress = Callable[[int, int], None]


@dataclasses.dataclass(frozen=True, kw_only=True)
class CorpusSummary:
    """Counts of the usable items of a corpus and the list of unusable ones.

    Attributes:
        corpus: Corpus name (``iemocap``...).
        path: Corpus root or manifest path.
        n_items: Labelled items whose audio is readable (every listed item if not checked).
        per_emotion: Readable items per emotion, in vocabulary order.
        per_split: Readable items per split (``"none"`` for items without a split).
        speakers: Number of distinct speakers among readable items (None speakers not counted).
        unreadable: Unusable items with reasons: undecodable audio, and label rows whose file
            is missing or whose code the corpus does not define.
        n_unlabelled: Items without a label, or that the corpus marks as having no agreed
            label (dropped, not errors).
        n_repeated: Audio files listed more than once (each kept once).
        n_conflicting: Of those, files whose listings differ in emotion (dropped).
        dropped_labels: Labels outside the emotion set and the items each lost.
        checked_audio: Whether every file was decoded (otherwise only listed).
        sample_rate: Rate the files were decoded at, when checked.
        duration_s: Total readable audio in seconds, when checked.
    """

    corpus: str
    path: str
    n_items: int
    per_emotion: Mapping[str, int]
    per_split: Mapping[str, int]
    speakers: int
    unreadable: tuple[Problem, ...] = ()
    n_unlabelled: int = 0
    n_repeated: int = 0
    n_conflicting: int = 0
    dropped_labels: Mapping[str, int] = dataclasses.field(default_factory=dict)
    checked_audio: bool = True
    sample_rate: int | None = None
    duration_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """One JSON-able object (what ``esn corpus --json`` prints)."""
        return {
            "corpus": self.corpus,
            "path": self.path,
            "n_items": self.n_items,
            "per_emotion": dict(self.per_emotion),
            "per_split": dict(self.per_split),
            "speakers": self.speakers,
            "unreadable": [p.to_dict() for p in self.unreadable],
            "n_unreadable": len(self.unreadable),
            "n_unlabelled": self.n_unlabelled,
            "n_repeated": self.n_repeated,
            "n_conflicting": self.n_conflicting,
            "dropped_labels": dict(self.dropped_labels),
            "checked_audio": self.checked_audio,
            "sample_rate": self.sample_rate,
            "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
        }


def summarize_corpus(
    spec: str | CorpusSpec,
    *,
    emotions: Iterable[str] | str | None = None,
    splits: Iterable[str] | str | None = None,
    merges: Iterable[str] | Mapping[str, str] | None = None,
    check_audio: bool = True,
    sample_rate: int = 16000,
    max_workers: int | None = None,
    progress: Progress | None = None,
) -> CorpusSummary:
    """Summarise a corpus; with ``check_audio`` decode every listed file to find unreadable ones.

    ``progress(done, total)`` is called after each decoded file. A missing ffmpeg (MELD's mp4
    clips) raises ``MissingDependencyError`` once instead of marking every clip unreadable.
    """
    listing = load_corpus(spec, emotions=emotions, splits=splits, merges=merges)
    unreadable = list(listing.problems)
    readable: list[Utterance] = list(listing.utterances)
    duration_s: float | None = None
    if check_audio:
        readable, failed, duration_s = _check(
            listing.utterances, sample_rate, max_workers, progress
        )
        unreadable.extend(failed)
    # Emotions and splits of the listing appear even when none of their files is readable.
    emotion_counts = Counter({u.emotion: 0 for u in listing.utterances})
    emotion_counts.update({p.emotion: 0 for p in listing.problems if p.emotion is not None})
    emotion_counts.update(u.emotion for u in readable)
    split_counts = Counter({u.split or NO_SPLIT: 0 for u in listing.utterances})
    split_counts.update({p.split: 0 for p in listing.problems if p.split is not None})
    split_counts.update(u.split or NO_SPLIT for u in readable)
    return CorpusSummary(
        corpus=listing.spec.name,
        path=listing.spec.path,
        n_items=len(readable),
        per_emotion={e: emotion_counts[e] for e in sorted(emotion_counts, key=emotion_sort_key)},
        per_split={s: split_counts[s] for s in sorted(split_counts, key=_split_key)},
        speakers=len({u.speaker for u in readable if u.speaker is not None}),
        unreadable=tuple(unreadable),
        n_unlabelled=listing.n_unlabelled,
        n_repeated=listing.n_repeated,
        n_conflicting=listing.n_conflicting,
        dropped_labels=listing.dropped_labels,
        checked_audio=check_audio,
        sample_rate=sample_rate if check_audio else None,
        duration_s=duration_s,
    )


def _check(
    utterances: tuple[Utterance, ...],
    sample_rate: int,
    max_workers: int | None,
    progress: Progress | None,
) -> tuple[list[Utterance], list[Problem], float]:
    """Decode every file; return readable items, failures (in listing order) and total seconds."""

    def decode(u: Utterance) -> float | Problem:
        try:
            return len(load_audio(u.path, sample_rate)) / sample_rate
        except AudioDecodeError as exc:
            return Problem(path=u.path, reason=exc.reason, emotion=u.emotion, split=u.split)

    workers = max_workers or min(16, (os.cpu_count() or 1) + 4)
    readable: list[Utterance] = []
    failed: list[Problem] = []
    total = 0.0
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        outcomes = pool.map(decode, utterances)
        for done, (u, outcome) in enumerate(zip(utterances, outcomes, strict=True), start=1):
            if isinstance(outcome, Problem):
                failed.append(outcome)
            else:
                readable.append(u)
                total += outcome
            if progress is not None:
                progress(done, len(utterances))
    finally:
        # On an error (e.g. MissingDependencyError for a missing ffmpeg), drop queued files.
        pool.shutdown(wait=True, cancel_futures=True)
    return readable, failed, total


def _split_key(split: str) -> tuple[int, str]:
    order = {"train": 0, "dev": 1, "development": 1, "validation": 1, "evaluation": 1}
    return (order.get(split, 3 if split == NO_SPLIT else 2), split)


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.2f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"


def format_summary(summary: CorpusSummary) -> str:
    """A human-readable table: counts per emotion and split, speakers, unreadable files."""
    lines = [f"corpus    {summary.corpus}", f"path      {summary.path}"]
    checked = "readable" if summary.checked_audio else "listed (audio not checked)"
    items = f"items     {summary.n_items} {checked}"
    if summary.duration_s is not None:
        items += f", {_duration(summary.duration_s)} of audio"
    lines.append(items)
    lines.append(f"speakers  {summary.speakers}")
    if summary.n_unlabelled:
        lines.append(f"dropped   {summary.n_unlabelled} without a label (none, or no agreed one)")
    if summary.dropped_labels:
        labels = ", ".join(f"{label} {n}" for label, n in summary.dropped_labels.items())
        lines.append(
            f"dropped   {sum(summary.dropped_labels.values())} labelled outside the emotion set "
            f"({labels})"
        )
    if summary.n_repeated:
        kept = summary.n_repeated - summary.n_conflicting
        parts = [f"{kept} kept once"] if kept else []
        if summary.n_conflicting:
            parts.append(f"{summary.n_conflicting} dropped (labels differ)")
        lines.append(
            f"repeated  {summary.n_repeated} audio file(s) listed more than once: "
            + ", ".join(parts)
        )
    for title, counts in (("emotion", summary.per_emotion), ("split", summary.per_split)):
        lines.append("")
        width = max([len(title), *(len(k) for k in counts)])
        lines.append(f"{title:<{width}}  {'count':>7}")
        for key, count in counts.items():
            lines.append(f"{key:<{width}}  {count:>7}")
        lines.append(f"{'total':<{width}}  {sum(counts.values()):>7}")
    lines.append("")
    lines.append(f"unreadable  {len(summary.unreadable)}")
    for problem in summary.unreadable:
        lines.append(f"  {problem.path}: {problem.reason}")
    return "\n".join(lines)
