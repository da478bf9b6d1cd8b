"""LAP (frequency): rank neurons by their firing rate P_e = K_e / T_e for each emotion."""

from __future__ import annotations

from esn.pipeline.select.aggregate import EmotionAggregates
from esn.pipeline.select.selectors.base import Ranked, SelectionContext, rank, register


@register("lap", score="firing rate P_e")
def lap(agg: EmotionAggregates, ctx: SelectionContext) -> dict[str, Ranked]:
    p = agg.firing_rate(ctx.span)
    out = {}
    for e, emotion in enumerate(agg.emotions):
        chosen = rank(p[e], ctx.budget)
        out[emotion] = Ranked(chosen, p[e].ravel()[chosen])
    return out
