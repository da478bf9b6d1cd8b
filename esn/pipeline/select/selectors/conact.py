"""ConAct (contrast): the margin between a neuron's largest and second-largest P over
emotions, credited only to the emotion with the largest P (0 for the others). A neuron
whose top two emotions tie (margin 0) belongs to no emotion."""

from __future__ import annotations

import numpy as np

from esn.pipeline.select.aggregate import EmotionAggregates
from esn.pipeline.select.selectors.base import Ranked, SelectionContext, rank, register


@register("conact", score="P_top1 - P_top2, for the top emotion")
def conact(agg: EmotionAggregates, ctx: SelectionContext) -> dict[str, Ranked]:
    p = agg.firing_rate(ctx.span)
    ordered = np.sort(p, axis=0)
    margin = ordered[-1] - ordered[-2]
    winner = np.argmax(p, axis=0)  # first emotion among ties; a tie has margin 0 anyway
    out = {}
    for e, emotion in enumerate(agg.emotions):
        score = np.where(winner == e, margin, 0.0)
        chosen = rank(score, ctx.budget, eligible=score > 0)
        out[emotion] = Ranked(chosen, score.ravel()[chosen])
    return out
