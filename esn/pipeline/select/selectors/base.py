"""The selector interface, the registry, and the one ranking rule all selectors share.

A selector maps per-emotion aggregates to, for every emotion, a ranked list of neurons
(flat indices ``layer * n_neurons + neuron``, best first) with their scores. Ranking is
global across layers, by descending key with ties broken by the lower flat index, and
every emotion gets the same budget ``k`` (fewer only where fewer neurons are eligible).
A new selector is one module that defines a function and decorates it with ``@register``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from esn.pipeline.select.aggregate import EmotionAggregates

__all__ = ["SELECTORS", "SelectionContext", "Selector", "Ranked", "rank", "register"]


@dataclasses.dataclass(frozen=True)
class Ranked:
    """One emotion's selected neurons: flat indices best first, and their scores."""

    indices: np.ndarray
    scores: np.ndarray


@dataclasses.dataclass(frozen=True, kw_only=True)
class SelectionContext:
    """What every selector gets besides the aggregates."""

    budget: int
    span: str = "all"
    seed: int = 0
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)


Selector = Callable[[EmotionAggregates, SelectionContext], dict[str, Ranked]]


@dataclasses.dataclass(frozen=True)
class SelectorInfo:
    name: str
    function: Selector
    score: str  # what the stored scores mean
    higher_is_better: bool
    needs_sums: bool = False  # reads the activation sums (else only K and T are read)


SELECTORS: dict[str, SelectorInfo] = {}


def register(name: str, *, score: str, higher_is_better: bool = True,
             needs_sums: bool = False) -> Callable[[Selector], Selector]:
    """Add a selector to the registry under ``name``; ``needs_sums``: it reads
    ``EmotionAggregates.act_sum`` (``mean_activation``), so selection reads ``act_sum``."""

    def decorate(function: Selector) -> Selector:
        if name in SELECTORS:
            raise ValueError(f"selector {name!r} is registered twice")
        SELECTORS[name] = SelectorInfo(name, function, score, higher_is_better, needs_sums)
        return function

    return decorate


def rank(key: np.ndarray, budget: int, eligible: np.ndarray | None = None) -> np.ndarray:
    """Flat indices of the ``budget`` best neurons by descending ``key`` (ties: lower index
    first; NaN last), among ``eligible`` ones. ``key`` and ``eligible`` have shape (layer,
    neuron).

    Only the candidates at or above the ``budget``-th best value are sorted (a partition
    finds it in linear time): at 7B that is a few thousand of 530 k neurons.
    """
    flat = key.ravel()
    index = np.arange(flat.size) if eligible is None else np.flatnonzero(eligible.ravel())
    negated = -flat[index]
    if 0 < budget < len(index):
        cut = np.partition(negated, budget - 1)[budget - 1]
        if not np.isnan(cut):  # else fewer than budget are numbers: sort them all
            keep = negated <= cut
            index, negated = index[keep], negated[keep]
    order = np.lexsort((index, negated))
    return index[order][:max(budget, 0)]
