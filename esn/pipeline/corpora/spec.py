"""Corpus spec strings (``iemocap:/data/IEMOCAP``), the loader registry, and ``load_corpus``.

Adding a corpus is one module with a ``load_<name>(root) -> LoadResult`` function plus one line
in ``CORPUS_LOADERS``.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from esn.errors import CorpusError, CorpusSpecError, CorpusWarning
from esn.pipeline.corpora.base import Loader, Problem, audio_key
from esn.pipeline.corpora.cremad import load_cremad
from esn.pipeline.corpora.emotions import (
    CANONICAL_EMOTIONS,
    apply_merge,
    emotion_sort_key,
    normalize_label,
    parse_merges,
)
from esn.pipeline.corpora.esd import load_esd
from esn.pipeline.corpora.iemocap import load_iemocap
from esn.pipeline.corpora.manifest import load_manifest
from esn.pipeline.corpora.meld import load_meld
from esn.pipeline.corpora.msp_podcast import load_msp_podcast
from esn.pipeline.corpora.ravdess import load_ravdess
from esn.pipeline.corpora.tess import load_tess
from esn.schemas.utterance import Utterance

__all__ = [
    "CORPUS_ALIASES",
    "CORPUS_LOADERS",
    "CorpusListing",
    "CorpusSpec",
    "load_corpus",
    "parse_corpus_spec",
]

CORPUS_LOADERS: dict[str, Loader] = {
    "iemocap": load_iemocap,
    "meld": load_meld,
    "msp-podcast": load_msp_podcast,
    "ravdess": load_ravdess,
    "cremad": load_cremad,
    "tess": load_tess,
    "esd": load_esd,
    "manifest": load_manifest,
}

CORPUS_ALIASES: dict[str, str] = {
    "msp_podcast": "msp-podcast",
    "msppodcast": "msp-podcast",
    "crema-d": "cremad",
    "crema_d": "cremad",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class CorpusSpec:
    """Which corpus (a ``CORPUS_LOADERS`` name) and where it lives (a folder, or a manifest)."""

    name: str
    path: str

    def __post_init__(self) -> None:
        if self.name not in CORPUS_LOADERS:
            raise CorpusSpecError(f"unknown corpus {self.name!r}; {_valid_names()}")
        if not self.path:
            raise CorpusSpecError(f"corpus {self.name!r} needs a path, e.g. {self.name}:/data/x")

    def __str__(self) -> str:
        return f"{self.name}:{self.path}"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "path": self.path}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CorpusSpec:
        return cls(name=str(data["name"]), path=str(data["path"]))


def _valid_names() -> str:
    return f"valid names: {', '.join(CORPUS_LOADERS)}"


def parse_corpus_spec(text: str | CorpusSpec) -> CorpusSpec:
    """Parse ``NAME:PATH`` (``iemocap:/data/IEMOCAP``, ``manifest:items.csv``) into a CorpusSpec.

    Names are case-insensitive; ``msp_podcast`` and ``crema-d`` are accepted aliases. The path
    is kept as written with ``~`` expanded; it is not checked here (loading does that).
    """
    if isinstance(text, CorpusSpec):
        return text
    name, sep, path = str(text).partition(":")
    name = name.strip().lower()
    if not sep:
        raise CorpusSpecError(
            f"corpus spec {text!r} is not NAME:PATH (e.g. iemocap:/data/IEMOCAP); {_valid_names()}"
        )
    name = CORPUS_ALIASES.get(name, name)
    if name not in CORPUS_LOADERS:
        raise CorpusSpecError(f"unknown corpus {name!r} in spec {text!r}; {_valid_names()}")
    path = path.strip()
    if not path:
        raise CorpusSpecError(f"corpus spec {text!r} has no path (e.g. {name}:/data/{name})")
    return CorpusSpec(name=name, path=os.path.expanduser(path))


@dataclasses.dataclass(frozen=True, kw_only=True)
class CorpusListing:
    """The utterances of a corpus after merges and filters, and the items that cannot be used.

    Attributes:
        spec: The corpus asked for.
        utterances: Usable labelled items, in loader order.
        problems: Unusable items (missing audio, unknown codes...) within the same filters.
        n_unlabelled: Items without a label, or that the corpus marks as having no agreed
            label (dropped).
        n_repeated: Audio files the corpus lists more than once (the first listing is kept).
        n_conflicting: Of those, files listed with different emotions (every listing dropped).
        dropped_labels: Labels outside the emotion set, each with the number of items dropped.
    """

    spec: CorpusSpec
    utterances: tuple[Utterance, ...]
    problems: tuple[Problem, ...] = ()
    n_unlabelled: int = 0
    n_repeated: int = 0
    n_conflicting: int = 0
    dropped_labels: Mapping[str, int] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.utterances)

    @property
    def emotions(self) -> tuple[str, ...]:
        """Emotions present, in vocabulary order."""
        return tuple(sorted({u.emotion for u in self.utterances}, key=emotion_sort_key))

    @property
    def splits(self) -> tuple[str | None, ...]:
        """Splits present (None for items without one)."""
        return tuple(sorted({u.split for u in self.utterances}, key=lambda s: (s is None, s)))

    def counts(self) -> dict[str, int]:
        """Number of utterances per emotion, in vocabulary order."""
        counter = Counter(u.emotion for u in self.utterances)
        return {e: counter[e] for e in self.emotions}


def load_corpus(
    spec: str | CorpusSpec,
    *,
    emotions: Iterable[str] | str | None = None,
    splits: Iterable[str] | str | None = None,
    merges: Iterable[str] | Mapping[str, str] | None = None,
) -> CorpusListing:
    """List a corpus: load it, apply emotion merges, keep the asked splits and emotions.

    An audio file listed more than once is kept once (its first listing), or not at all when
    its listings disagree on the emotion. A label outside esn's emotion vocabulary
    (``CANONICAL_EMOTIONS``) is dropped unless ``emotions`` names it or a merge maps to it.
    Each of these warns (``CorpusWarning``) with counts and an example; the listing keeps the
    counts.

    Args:
        spec: ``NAME:PATH`` string or a CorpusSpec.
        emotions: Emotions to keep (names or aliases, read through ``merges``; a string is
            comma-separated); None keeps all of esn's vocabulary.
        splits: Split name(s) to keep (``"none"`` for items without a split); None keeps all.
        merges: ``["excited=happy"]`` or ``{"excited": "happy"}``, applied after code mapping.

    Raises:
        CorpusSpecError: bad spec, malformed merge, or an emotion/split the corpus lacks
            (the message names what it has).
        CorpusError: missing root or label file, or a tree without the expected files.
    """
    spec = parse_corpus_spec(spec)
    merge_map = parse_merges(merges)
    wanted: list[str] | None = None
    if emotions is not None:
        names = emotions.split(",") if isinstance(emotions, str) else list(emotions)
        wanted = list(
            dict.fromkeys(apply_merge(normalize_label(e), merge_map) for e in names if e.strip())
        )
    result = CORPUS_LOADERS[spec.name](Path(spec.path))
    utterances = [
        u
        if apply_merge(u.emotion, merge_map) == u.emotion
        else dataclasses.replace(u, emotion=apply_merge(u.emotion, merge_map))
        for u in result.utterances
    ]
    problems = [
        p
        if p.emotion is None
        else dataclasses.replace(p, emotion=apply_merge(p.emotion, merge_map))
        for p in result.problems
    ]
    utterances, n_repeated, n_conflicting = _one_per_audio(utterances, spec)
    utterances, problems = _unique(utterances, problems)
    if not utterances and not problems:
        raise CorpusError(f"{spec}: no labelled utterances under {spec.path}")
    wanted_splits: list[str] | None = None
    if splits is not None:
        wanted_splits = [splits] if isinstance(splits, str) else [str(s) for s in splits]
        # Splits and emotions whose every file is missing still count as present: the
        # listing then reports those files instead of a confusing "no such split".
        present = sorted({u.split or "none" for u in utterances} | _problem_splits(problems))
        unknown = [s for s in wanted_splits if s not in present]
        if unknown:
            raise CorpusSpecError(
                f"{spec}: no split {', '.join(map(repr, unknown))}; it has: {', '.join(present)}"
            )
        utterances = [u for u in utterances if (u.split or "none") in wanted_splits]
        problems = [p for p in problems if p.split is None or p.split in wanted_splits]
    known = {*CANONICAL_EMOTIONS, *merge_map.values(), *(wanted or ())}
    utterances, problems, dropped_labels = _known_labels(utterances, problems, known, spec)
    if wanted is not None:
        present_emotions = sorted(
            {u.emotion for u in utterances} | {p.emotion for p in problems if p.emotion},
            key=emotion_sort_key,
        )
        unknown = [e for e in wanted if e not in present_emotions]
        # The labels just dropped are named too: a misspelt custom label is then visible.
        present_emotions += sorted(dropped_labels)
        if unknown:
            raise CorpusSpecError(
                f"{spec}: no utterances labelled {', '.join(map(repr, unknown))}"
                + (f" in split(s) {', '.join(wanted_splits)}" if wanted_splits else "")
                + f"; it has: {', '.join(present_emotions) or 'none'}"
            )
        utterances = [u for u in utterances if u.emotion in wanted]
        problems = [p for p in problems if p.emotion is None or p.emotion in wanted]
    return CorpusListing(
        spec=spec,
        utterances=tuple(utterances),
        problems=tuple(problems),
        n_unlabelled=result.n_unlabelled,
        n_repeated=n_repeated,
        n_conflicting=n_conflicting,
        dropped_labels=dropped_labels,
    )


def _problem_splits(problems: list[Problem]) -> set[str]:
    return {p.split for p in problems if p.split is not None}


def _unique(
    utterances: list[Utterance], problems: list[Problem]
) -> tuple[list[Utterance], list[Problem]]:
    """Keep the first utterance of each id; later ones become problems (ids key the store)."""
    seen: set[str] = set()
    kept: list[Utterance] = []
    for u in utterances:
        if u.id in seen:
            problems.append(
                Problem(
                    path=u.path, reason=f"duplicate id {u.id!r}", emotion=u.emotion, split=u.split
                )
            )
            continue
        seen.add(u.id)
        kept.append(u)
    return kept, problems


def _one_per_audio(
    utterances: list[Utterance], spec: CorpusSpec
) -> tuple[list[Utterance], int, int]:
    """The first listing of each audio file; none of a file whose listings differ in emotion.

    One recording listed twice would otherwise be two items, free to land in both the
    identification pool and the test set. Returns the kept utterances, the number of files
    listed more than once and, of those, the number dropped; warns when there are any.
    """
    keys = [audio_key(u.path) for u in utterances]
    listings: dict[str, list[Utterance]] = {}
    for key, u in zip(keys, utterances, strict=True):
        listings.setdefault(key, []).append(u)
    repeated = [key for key, items in listings.items() if len(items) > 1]
    if not repeated:
        return utterances, 0, 0
    conflicting = [k for k in repeated if len({u.emotion for u in listings[k]}) > 1]
    dropped = set(conflicting)
    kept_once = [k for k in repeated if k not in dropped]
    seen: set[str] = set()
    kept: list[Utterance] = []
    for key, u in zip(keys, utterances, strict=True):
        if key not in seen and key not in dropped:
            kept.append(u)
        seen.add(key)
    message = f"{spec}: {len(repeated)} audio file(s) listed more than once"
    if kept_once:
        first = listings[kept_once[0]]
        message += (
            f"; kept the first listing of {len(kept_once)} "
            f"(e.g. {first[0].path}, listed {len(first)} times)"
        )
    if conflicting:
        labels = ", ".join(dict.fromkeys(u.emotion for u in listings[conflicting[0]]))
        message += (
            f"; dropped every listing of {len(conflicting)} whose labels differ "
            f"(e.g. {listings[conflicting[0]][0].path}: {labels})"
        )
    # stacklevel 3: the warning points at whoever called load_corpus.
    warnings.warn(message, CorpusWarning, stacklevel=3)
    return kept, len(repeated), len(conflicting)


def _known_labels(
    utterances: list[Utterance], problems: list[Problem], known: set[str], spec: CorpusSpec
) -> tuple[list[Utterance], list[Problem], dict[str, int]]:
    """Drop items labelled outside ``known``; warn with the labels and how many items each.

    Otherwise a stray label (a typo, ``bananas``) becomes one more answer option in every
    item's prompt. Returns the kept utterances and problems, and ``{label: items dropped}``.
    """
    counts = Counter(u.emotion for u in utterances if u.emotion not in known)
    counts.update(p.emotion for p in problems if p.emotion is not None and p.emotion not in known)
    if not counts:
        return utterances, problems, {}
    dropped = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    named = [f"{label!r} ({n})" for label, n in dropped.items()]
    if len(named) > 5:
        named = [*named[:5], f"{len(named) - 5} more label(s)"]
    warnings.warn(
        f"{spec}: dropped {sum(dropped.values())} item(s) labelled {', '.join(named)}: not in "
        "esn's emotion vocabulary; name the label in --emotions to keep it, or merge it into "
        "an emotion with --merge LABEL=EMOTION",
        CorpusWarning,
        stacklevel=3,
    )
    return (
        [u for u in utterances if u.emotion in known],
        [p for p in problems if p.emotion is None or p.emotion in known],
        dropped,
    )
