"""Which utterances enter a statistic and which group each belongs to (``--by``, ``--groups``).

Only finished utterances (status done) with at least one valid position in the chosen span
and a non-empty group label take part. Labels are strings; ``correct`` gives ``"True"`` /
``"False"`` and ``gold_option`` the option number (from 1) under which the gold emotion was
shown, ``"0"`` when it was not among the options.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from esn.errors import RequestError
from esn.schemas.store import STATUS_DONE
from esn.stores.activations import ActivationStore

__all__ = ["GROUPING_VARIABLES", "Grouping", "gold_option", "group_labels", "make_grouping"]

GROUPING_VARIABLES: tuple[str, ...] = (
    "emotion", "corpus", "speaker", "split", "correct", "parsed_answer", "gold_option")


def gold_option(options: np.ndarray, emotion: np.ndarray) -> np.ndarray:
    """``(utterance, option)`` options and gold emotions -> option number (from 1), 0 if absent."""
    hits = options == emotion[:, None]
    return np.where(hits.any(1), hits.argmax(1) + 1, 0)


def group_labels(store: ActivationStore, by: str) -> np.ndarray:
    """One string label per utterance for the grouping variable ``by``."""
    if by not in GROUPING_VARIABLES:
        raise RequestError(f"unknown grouping variable {by!r}; "
                           f"available: {', '.join(GROUPING_VARIABLES)}")
    if by == "gold_option":
        values = gold_option(store.metadata("options"), store.metadata("emotion"))
    else:
        values = store.metadata(by)
    return np.array([str(v) for v in values.tolist()], dtype=object)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Grouping:
    """The utterances that take part and their groups.

    Attributes:
        by: Name of the grouping variable (the output's first dimension).
        index: ``(m,)`` positions in the store of the utterances that take part.
        labels: ``(m,)`` group label of each of them.
        groups: Groups in output order.
        t: ``(m,)`` valid positions of each in the span.
    """

    by: str
    index: np.ndarray
    labels: np.ndarray
    groups: tuple[str, ...]
    t: np.ndarray

    def one_hot(self) -> np.ndarray:
        """``(m, group)`` float64 membership matrix."""
        return (self.labels[:, None] == np.array(self.groups, dtype=object)[None]).astype(
            np.float64)


def make_grouping(store: ActivationStore, by: str, span: str,
                  groups: Sequence[str] | None = None) -> Grouping:
    """Select the finished utterances and label them; ``groups`` limits (and orders) the groups."""
    labels = group_labels(store, by)
    t_all = np.asarray(store.read("T"), dtype=np.float64)  # small, and no Dask compute
    spans = ["audio", "text"]
    if span == "all":
        t = t_all.sum(1)
    elif span in spans:
        t = t_all[:, spans.index(span)]
    else:
        raise RequestError(f"span must be one of ['all', 'audio', 'text'], got {span!r}")
    keep = (store.status() == STATUS_DONE) & (t > 0) & (labels != "")
    present = sorted(set(labels[keep].tolist()))
    if groups is None:
        chosen = tuple(present)
    else:
        missing = [g for g in groups if g not in present]
        if missing:
            raise RequestError(f"group(s) {missing} of {by!r} have no finished utterance; "
                               f"present: {present}")
        chosen = tuple(groups)
    keep &= np.isin(labels, np.array(chosen, dtype=object))
    index = np.flatnonzero(keep)
    return Grouping(by=by, index=index, labels=labels[index], groups=chosen, t=t[index])
