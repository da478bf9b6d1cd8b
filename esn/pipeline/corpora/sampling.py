"""Class-balanced, seeded sampling of utterances (identification pools and test sets).

The draw depends only on the seed and the set of utterances, not on their order: items are
sorted by id first, and each emotion draws from its own random stream keyed by the seed and the
emotion's name, so adding or removing another emotion does not change an emotion's draw. A
smaller cap gives a prefix of a larger cap's choice (same seed), so pools nest.
"""

from __future__ import annotations

import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable

import numpy as np

from esn.pipeline.corpora.emotions import emotion_sort_key
from esn.schemas.utterance import Utterance

__all__ = ["balanced_sample", "class_counts"]


def class_counts(utterances: Iterable[Utterance]) -> dict[str, int]:
    """Number of utterances per emotion, in vocabulary order."""
    counts: dict[str, int] = defaultdict(int)
    for u in utterances:
        counts[u.emotion] += 1
    return {e: counts[e] for e in sorted(counts, key=emotion_sort_key)}


def balanced_sample(
    utterances: Iterable[Utterance],
    *,
    per_emotion: int | None = None,
    seed: int = 0,
    truncate: bool = True,
) -> list[Utterance]:
    """Draw a class-balanced subset of ``utterances``.

    Args:
        utterances: Candidate items (ids unique).
        per_emotion: Cap on items per emotion; None for no cap.
        seed: Seed of the numpy Generator(s); the same seed and items give the same subset.
        truncate: Cut every emotion to the smallest emotion's count (equal budget per emotion).
            When False, an emotion with fewer items than the cap keeps all of them.

    Returns:
        The chosen utterances sorted by (emotion in vocabulary order, id).

    Raises:
        ValueError: ``per_emotion`` is not a positive integer, or ids repeat.
    """
    if per_emotion is not None and (
        isinstance(per_emotion, bool) or not isinstance(per_emotion, int) or per_emotion < 1
    ):
        raise ValueError(f"per_emotion must be a positive integer or None, got {per_emotion!r}")
    items = sorted(utterances, key=lambda u: u.id)
    repeats = Counter(u.id for u in items)
    if len(repeats) != len(items):
        dupes = sorted(i for i, n in repeats.items() if n > 1)[:5]
        raise ValueError(f"utterance ids must be unique to sample; repeated: {', '.join(dupes)}")
    groups: dict[str, list[Utterance]] = defaultdict(list)
    for u in items:
        groups[u.emotion].append(u)
    if not groups:
        return []
    budget = min(len(g) for g in groups.values()) if truncate else None
    chosen: list[Utterance] = []
    for emotion in sorted(groups, key=emotion_sort_key):
        group = groups[emotion]
        k = len(group)
        if budget is not None:
            k = min(k, budget)
        if per_emotion is not None:
            k = min(k, per_emotion)
        order = _stream(seed, emotion).permutation(len(group))[:k]
        chosen.extend(sorted((group[i] for i in order), key=lambda u: u.id))
    return chosen


def _stream(seed: int, emotion: str) -> np.random.Generator:
    """A random stream of its own for each (seed, emotion)."""
    return np.random.default_rng([int(seed), zlib.crc32(emotion.encode("utf-8"))])
