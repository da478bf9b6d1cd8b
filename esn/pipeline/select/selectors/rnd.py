"""RND: uniformly random neurons of the same budget, the control. Draw ``d`` for emotion
``e`` is seeded by (seed, d, e's position), so every draw is reproducible on its own."""

from __future__ import annotations

import numpy as np

from esn.pipeline.select.aggregate import EmotionAggregates
from esn.pipeline.select.selectors.base import Ranked, SelectionContext, register


def random_draw(n_total: int, budget: int, seed: int, draw: int, emotion_index: int
                ) -> np.ndarray:
    rng = np.random.default_rng([seed, draw, emotion_index])
    return rng.choice(n_total, size=min(budget, n_total), replace=False)


@register("rnd", score="none (random order)")
def rnd(agg: EmotionAggregates, ctx: SelectionContext) -> dict[str, Ranked]:
    n_total = agg.k.shape[-2] * agg.k.shape[-1]
    draw = int(ctx.params.get("draw", 0))
    out = {}
    for e, emotion in enumerate(agg.emotions):
        chosen = random_draw(n_total, ctx.budget, ctx.seed, draw, e)
        out[emotion] = Ranked(chosen, np.zeros(len(chosen)))
    return out
