"""MAD (magnitude / mean deviation): rank by |P_e - mean over emotions of P|."""

from __future__ import annotations

import numpy as np

from esn.pipeline.select.aggregate import EmotionAggregates
from esn.pipeline.select.selectors.base import Ranked, SelectionContext, rank, register


@register("mad", score="|P_e - mean_e' P_e'|")
def mad(agg: EmotionAggregates, ctx: SelectionContext) -> dict[str, Ranked]:
    p = agg.firing_rate(ctx.span)
    deviation = np.abs(p - p.mean(axis=0, keepdims=True))
    out = {}
    for e, emotion in enumerate(agg.emotions):
        chosen = rank(deviation[e], ctx.budget)
        out[emotion] = Ranked(chosen, deviation[e].ravel()[chosen])
    return out
