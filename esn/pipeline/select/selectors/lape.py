"""LAPE (entropy), after Tang et al. 2024: low entropy of a neuron's firing rates across
emotions marks it as specific.

    p~_e = P_e / sum_e' P_e'       H = -sum_e p~_e ln p~_e      (0 ln 0 = 0)

Each neuron goes to its argmax emotion; each emotion takes its lowest-entropy neurons.
Neurons that never fire (sum of P = 0) carry no information and are never selected.
Optional filter of the original method (``percentile``, e.g. 0.95): keep a neuron only if
its largest P exceeds tau, the ``round(percentile * |P|)``-th smallest of all P values over
layers, neurons and emotions (``torch.kthvalue`` semantics in the original code).
"""

from __future__ import annotations

import numpy as np

from esn.pipeline.select.aggregate import EmotionAggregates
from esn.pipeline.select.selectors.base import Ranked, SelectionContext, rank, register


def lape_threshold(p: np.ndarray, percentile: float) -> float:
    """tau: the ``round(percentile * p.size)``-th smallest value of ``p`` (1-based)."""
    k = int(round(percentile * p.size))
    k = min(max(k, 1), p.size)
    return float(np.partition(p.ravel(), k - 1)[k - 1])


def entropy(p: np.ndarray) -> np.ndarray:
    """Entropy over axis 0 of the L1-normalised rates (all-zero columns get 0)."""
    total = p.sum(axis=0, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(total > 0, p / total, 0.0)
        terms = np.where(q > 0, q * np.log(q), 0.0)
    return -terms.sum(axis=0)


@register("lape", score="entropy H (lower is more specific)", higher_is_better=False)
def lape(agg: EmotionAggregates, ctx: SelectionContext) -> dict[str, Ranked]:
    p = agg.firing_rate(ctx.span)
    h = entropy(p)
    winner = np.argmax(p, axis=0)
    fires = p.sum(axis=0) > 0
    percentile = float(ctx.params.get("lape_percentile") or 0.0)
    if percentile > 0:
        fires &= p.max(axis=0) > lape_threshold(p, percentile)
    out = {}
    for e, emotion in enumerate(agg.emotions):
        chosen = rank(-h, ctx.budget, eligible=fires & (winner == e))
        out[emotion] = Ranked(chosen, h.ravel()[chosen])
    return out
