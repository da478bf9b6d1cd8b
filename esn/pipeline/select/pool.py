"""The identification pool: which stored utterances the selectors may learn from.

From the store's per-utterance metadata only (no statistics are read): finished items of
the label set, from one split (or all, or, in a store without splits, the part left after
a seeded held-out fraction), correctly answered only by default, each emotion truncated to
the smallest emotion's count by default, optionally capped at ``id_size`` per emotion.
Every random choice is seeded; the result lists item ids per emotion, sorted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from esn.errors import RequestError
from esn.pipeline.corpora.base import audio_key
from esn.schemas.store import STATUS_DONE

__all__ = ["PoolOptions", "choose_pool", "heldout_mask", "in_test_splits", "is_test_split",
           "pool_audio", "shares_audio"]

AUTO = "auto"
# ``--split auto``'s test data: ``test`` and numbered test sets, as MSP-Podcast's ``Test1``
# and ``Test2`` (lower-cased by the loader); development sets are neither train nor test.
_TEST_SPLIT = re.compile(r"test\d*")


def is_test_split(name: str) -> bool:
    """Whether ``--split auto`` takes split ``name`` as test data: ``test``, ``test1``..."""
    return _TEST_SPLIT.fullmatch(name) is not None


def in_test_splits(splits: Sequence[str] | np.ndarray) -> np.ndarray:
    """Which items are in a test split (``is_test_split``), from the ``split`` metadata."""
    return np.array([is_test_split(str(s)) for s in splits], dtype=bool)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PoolOptions:
    """How the identification pool is chosen (recorded in the neuron-set file).

    ``split``: a split name, ``"all"``, or ``"auto"``: ``train`` when the store has
    splits, otherwise every item outside a seeded held-out fraction ``holdout``.
    """

    split: str = AUTO
    correct_only: bool = True
    balance: bool = True
    id_size: int | None = None
    holdout: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.id_size is not None and self.id_size < 1:
            raise RequestError(f"id_size must be at least 1, got {self.id_size}")
        if not 0.0 <= self.holdout < 1.0:
            raise RequestError(f"holdout must be in [0, 1), got {self.holdout}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _unit_hash(seed: int, item: str) -> float:
    digest = hashlib.sha256(f"{seed}\0{item}".encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64


def heldout_mask(ids: Sequence[str] | np.ndarray, emotions: Sequence[str] | np.ndarray,
                 fraction: float,
                 seed: int) -> np.ndarray:
    """Seeded per-emotion held-out set: in each emotion, the ``fraction`` of items with the
    smallest hash of (seed, id). Independent of store order and of other items' fate."""
    ids_arr, emo = np.asarray(ids, dtype=object), np.asarray(emotions, dtype=object)
    held = np.zeros(len(ids_arr), dtype=bool)
    for emotion in sorted(set(emo.tolist())):
        idx = np.flatnonzero(emo == emotion)
        order = idx[np.argsort([_unit_hash(seed, ids_arr[i]) for i in idx], kind="stable")]
        held[order[: int(round(fraction * len(idx)))]] = True
    return held


def choose_pool(metadata: Mapping[str, np.ndarray], labels: Sequence[str],
                options: PoolOptions) -> dict[str, list[str]]:
    """Item ids per emotion. ``metadata`` holds ``utterance``, ``emotion``, ``split``,
    ``status`` and ``correct`` arrays (as ``ActivationStore.metadata`` returns them)."""
    ids = np.asarray(metadata["utterance"], dtype=object)
    emotion = np.asarray(metadata["emotion"], dtype=object)
    split = np.asarray(metadata["split"], dtype=object)
    keep = (np.asarray(metadata["status"]) == STATUS_DONE) & np.isin(emotion, list(labels))
    has_splits = bool((split != "").any())
    if options.split == AUTO:
        if has_splits:
            if not (split == "train").any():
                raise RequestError(
                    f"the store has splits {sorted(set(split.tolist()))} but none named "
                    "'train': choose one with --split NAME (or --split all)")
            keep &= split == "train"
        else:
            keep &= ~heldout_mask(ids, emotion, options.holdout, options.seed)
    elif options.split != "all":
        if not (split == options.split).any():
            raise RequestError(f"no utterance has split {options.split!r}; the store has "
                             f"{sorted(set(split.tolist()) - {''}) or 'no splits'}")
        keep &= split == options.split
    if options.correct_only:
        keep &= np.asarray(metadata["correct"], dtype=bool)
    per_emotion = {e: sorted(ids[keep & (emotion == e)].tolist()) for e in labels}
    empty = [e for e, items in per_emotion.items() if not items]
    if empty:
        raise RequestError(f"no identification items for {empty} (after split/correctness "
                         "filters); try --all-items or another --split")
    size = min(len(v) for v in per_emotion.values()) if options.balance else None
    if options.id_size is not None:
        smallest = min(len(v) for v in per_emotion.values())
        if options.balance and options.id_size > smallest:
            raise RequestError(f"--id-size {options.id_size} exceeds the smallest emotion's "
                             f"{smallest} identification items")
        size = options.id_size
    if size is None:
        return per_emotion
    return {e: _seeded_subset(items, size, options.seed, e) for e, items in per_emotion.items()}


def _seeded_subset(items: list[str], size: int, seed: int, emotion: str) -> list[str]:
    if len(items) <= size:
        return items
    ranked = sorted(items, key=lambda item: _unit_hash(seed, f"{emotion}\0{item}"))
    return sorted(ranked[:size])


def pool_audio(ids: Sequence[str] | np.ndarray, paths: Sequence[str] | np.ndarray,
               pool_ids: Collection[str]) -> frozenset[str]:
    """The audio files of the pool's items (as ``audio_key``s), from the identification
    store's ``utterance`` and ``path`` metadata: the neuron-set file keeps only item ids."""
    wanted = set(pool_ids)
    return frozenset(audio_key(str(path)) for item, path in zip(ids, paths, strict=True)
                     if item in wanted and path)


def shares_audio(paths: Sequence[str] | np.ndarray, pool_paths: Collection[str]) -> np.ndarray:
    """Which of ``paths`` (a store's ``path`` metadata) is an audio file of the pool
    (``pool_audio``): the same recording, whatever its utterance id or store."""
    return np.array([bool(path) and audio_key(str(path)) in pool_paths for path in paths],
                    dtype=bool)
