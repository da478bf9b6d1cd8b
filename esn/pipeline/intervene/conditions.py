"""The condition grid of a sweep: baseline, each method x mask emotion x strength, and the
random controls, built from a neuron-set file."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from esn.errors import RequestError
from esn.pipeline.intervene.hooks import Intervention
from esn.schemas.neuron_sets import NeuronSets

__all__ = ["BASELINE", "MIX", "TWO_PASS", "UNION", "Condition", "build_conditions"]

BASELINE = "baseline"
RANDOM = "rnd"
UNION = "union"
TWO_PASS = "2pass"
MIX = "mix"


@dataclasses.dataclass(frozen=True)
class Condition:
    """One intervention setting: ``method`` and ``mask`` (emotion, or ``rnd``) at
    ``strength`` (alpha when steering, mask fraction when deactivating), random ``draw``."""

    method: str
    mask: str
    strength: float
    draw: int
    intervention: Intervention | None
    #: One intervention per item (by position in the evaluated item list), for conditions
    #: that depend on the item, such as 2-pass steering; overrides ``intervention``.
    per_item: tuple[Intervention | None, ...] | None = None

    def intervention_for(self, position: int) -> Intervention | None:
        return self.per_item[position] if self.per_item is not None else self.intervention

    @property
    def first_layer(self) -> int | None:
        """The earliest intervened layer over all items (``None``: nothing intervened)."""
        chosen = self.per_item if self.per_item is not None else (self.intervention,)
        layers = [layer for iv in chosen if iv is not None for layer in iv.layers]
        return min(layers) if layers else None

    @property
    def name(self) -> str:
        if self.method == BASELINE:
            return BASELINE
        draw = f"/draw{self.draw}" if self.method == RANDOM else ""
        return f"{self.method}/{self.mask}/{self.strength:g}{draw}"


def build_conditions(sets: NeuronSets, *, mode: str, strengths: Sequence[float] | None = None,
                     methods: Sequence[str] | None = None, random_draws: int | None = None,
                     union: bool = False) -> list[Condition]:
    """Baseline first, then every (method, mask emotion, strength), then the random draws.

    Deactivation strengths are mask fractions at most the file's (a set cut to its best
    neurons by score); steering strengths are alphas (default 0.5)."""
    if mode not in ("deactivate", "steer"):
        raise RequestError(f"mode must be deactivate or steer, got {mode!r}")
    chosen = [m for m in (methods or sets.methods) if m != RANDOM]
    missing = [m for m in chosen if m not in sets.methods]
    if missing:
        raise RequestError(f"methods {missing} are not in the neuron-set file "
                           f"(it has {sorted(sets.methods)})")
    if strengths is None:
        strengths = (sets.fraction,) if mode == "deactivate" else (0.5,)
    total = sets.n_layers * sets.n_neurons
    conditions = [Condition(BASELINE, "", 0.0, 0, None)]

    def make(pairs: Sequence[tuple[int, int]], strength: float) -> Intervention:
        if mode == "steer":
            return Intervention.steer(pairs, strength)
        if not 0 < strength <= sets.fraction:
            raise RequestError(f"deactivation fraction {strength} must be in (0, "
                               f"{sets.fraction}], the fraction the sets were selected at")
        return Intervention.deactivate(pairs[: max(1, int(round(strength * total)))])

    for method in chosen:
        for emotion in sets.emotions:
            for strength in strengths:
                pairs = sets.methods[method].sets.get(emotion, ())
                conditions.append(Condition(method, emotion, float(strength), 0,
                                            make(pairs, strength)))
    if union:  # label-agnostic: steer every emotion's neurons at once
        if mode != "steer":
            raise RequestError("label-agnostic union is a steering condition")
        for method in chosen:
            every = sorted({p for e in sets.emotions for p in sets.methods[method].sets.get(e, ())})
            for strength in strengths:
                conditions.append(Condition(method, UNION, float(strength), 0,
                                            Intervention.steer(every, strength)))
    if RANDOM in sets.methods and random_draws != 0:
        draws = sets.methods[RANDOM].draws or (sets.methods[RANDOM].sets,)
        first = sets.emotions[0]
        for d, draw in enumerate(draws[: random_draws or len(draws)]):
            for strength in strengths:
                conditions.append(Condition(RANDOM, RANDOM, float(strength), d,
                                            make(draw[first], strength)))
    return conditions

