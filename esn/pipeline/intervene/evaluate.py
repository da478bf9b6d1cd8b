"""Scores of an intervention sweep, from per-item answers only (pure numpy).

For one method and intervention strength: rows are the mask's source emotion (plus the
random control), columns the evaluated emotion. Each cell is the change in that emotion's
accuracy (recall, in points) against the no-intervention baseline on the same items:

    delta[r, c] = 100 * (recall_c(answers under mask r) - recall_c(baseline answers))
    self[r]  = delta[r, r]               cross[r] = mean of delta[r, c] over c != r
    gap[r]   = self[r] - cross[r]

The random row has no diagonal: its self is the mean over all columns. Unweighted average
recall (UAR) is the mean of the per-emotion recalls. Confidence intervals resample items
within each evaluated emotion (a stratified bootstrap, seeded), the same resample for the
baseline and the condition, so the interval is that of the paired difference.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["EffectMatrix", "bootstrap_effects", "effect_matrix", "recall", "resampled_recalls",
           "stratified_counts", "uar"]

RANDOM_ROW = "rnd"


def recall(gold: np.ndarray, predicted: np.ndarray, emotions: Sequence[str]) -> np.ndarray:
    """``(E,)`` fraction of each emotion's items answered with that emotion (NaN if none)."""
    gold, predicted = np.asarray(gold, dtype=object), np.asarray(predicted, dtype=object)
    out = np.full(len(emotions), np.nan)
    for i, emotion in enumerate(emotions):
        mine = gold == emotion
        if mine.any():
            out[i] = float((predicted[mine] == emotion).mean())
    return out


def uar(gold: np.ndarray, predicted: np.ndarray, emotions: Sequence[str]) -> float:
    return float(np.nanmean(recall(gold, predicted, emotions)))


@dataclasses.dataclass(frozen=True)
class EffectMatrix:
    """Accuracy changes (points) of one method and strength, and their summaries."""

    rows: tuple[str, ...]        # mask source emotions, then "rnd" if present
    columns: tuple[str, ...]     # evaluated emotions
    delta: np.ndarray            # (rows, columns) points
    baseline_recall: np.ndarray  # (columns,) fraction
    uar_change: np.ndarray       # (rows,) points

    @property
    def self_effect(self) -> np.ndarray:
        return np.array([self.delta[i, self.columns.index(r)] if r in self.columns
                         else float(np.mean(self.delta[i])) for i, r in enumerate(self.rows)])

    @property
    def cross_effect(self) -> np.ndarray:
        out = []
        for i, r in enumerate(self.rows):
            others = [j for j, c in enumerate(self.columns) if c != r]
            out.append(float(np.mean(self.delta[i, others])) if r in self.columns
                       else float(np.mean(self.delta[i])))
        return np.array(out)

    @property
    def gap(self) -> np.ndarray:
        return self.self_effect - self.cross_effect


def effect_matrix(gold: np.ndarray, baseline: np.ndarray,
                  conditions: Mapping[str, np.ndarray], emotions: Sequence[str]
                  ) -> EffectMatrix:
    """``conditions`` maps a row name (mask emotion or ``"rnd"``) to its answers per item;
    for ``"rnd"`` pass the answers of each draw stacked ``(draws, items)``: their recalls
    are averaged."""
    base = recall(gold, baseline, emotions)
    rows, deltas, uars = [], [], []
    for name, answers in conditions.items():
        stacked = np.atleast_2d(np.asarray(answers, dtype=object))
        recalls = np.mean([recall(gold, a, emotions) for a in stacked], axis=0)
        rows.append(name)
        deltas.append(100.0 * (recalls - base))
        uars.append(100.0 * (np.nanmean(recalls) - np.nanmean(base)))
    return EffectMatrix(rows=tuple(rows), columns=tuple(emotions), delta=np.array(deltas),
                        baseline_recall=base, uar_change=np.array(uars))


def stratified_counts(gold: np.ndarray, emotions: Sequence[str], *, n_boot: int,
                      seed: int) -> np.ndarray:
    """``(n_boot, items)``: how often each item is drawn in each resample of a stratified
    bootstrap (per resample, per emotion in order: ``rng.choice(stratum, len(stratum))``)."""
    gold = np.asarray(gold, dtype=object)
    rng = np.random.default_rng(seed)
    strata = [np.flatnonzero(gold == e) for e in emotions]
    counts = np.zeros((n_boot, gold.size))
    for b in range(n_boot):
        for stratum in strata:
            if stratum.size:
                counts[b] += np.bincount(rng.choice(stratum, size=stratum.size, replace=True),
                                         minlength=gold.size)
    return counts


def resampled_recalls(gold: np.ndarray, answers: np.ndarray, emotions: Sequence[str],
                      counts: np.ndarray) -> np.ndarray:
    """``(n_boot, ..., E)`` recalls of ``answers`` ``(..., items)`` on every resample."""
    gold = np.asarray(gold, dtype=object)
    hit = (np.asarray(answers, dtype=object) == gold).astype(float)
    out = np.full((counts.shape[0], *hit.shape[:-1], len(emotions)), np.nan)
    for c, emotion in enumerate(emotions):
        stratum = np.flatnonzero(gold == emotion)
        if stratum.size:  # a resample keeps each stratum's size
            out[..., c] = np.tensordot(counts[:, stratum], hit[..., stratum],
                                       axes=([1], [-1])) / stratum.size
    return out


def bootstrap_effects(gold: np.ndarray, baseline: np.ndarray,
                      conditions: Mapping[str, np.ndarray], emotions: Sequence[str],
                      *, n_boot: int = 1000, seed: int = 0, level: float = 0.95
                      ) -> dict[str, np.ndarray]:
    """Percentile intervals ``(2, rows, columns)`` for ``delta`` and ``(2, rows)`` for self,
    cross and gap, from a stratified paired bootstrap over items (vectorised over
    resamples: recalls are count-weighted sums, see ``stratified_counts``)."""
    counts = stratified_counts(gold, emotions, n_boot=n_boot, seed=seed)
    base = resampled_recalls(gold, baseline, emotions, counts)
    rows = list(conditions)
    delta = np.stack([100.0 * (resampled_recalls(
        gold, np.atleast_2d(np.asarray(conditions[r], dtype=object)), emotions,
        counts).mean(axis=1) - base) for r in rows], axis=1)  # (n_boot, rows, columns)
    own = [list(emotions).index(r) if r in emotions else None for r in rows]
    self_effect = np.stack([delta[:, i, c] if c is not None else delta[:, i].mean(axis=-1)
                            for i, c in enumerate(own)], axis=1)
    cross = np.stack([np.delete(delta[:, i], c, axis=-1).mean(axis=-1) if c is not None
                      else delta[:, i].mean(axis=-1) for i, c in enumerate(own)], axis=1)
    q = [100 * (1 - level) / 2, 100 * (1 + level) / 2]
    samples = {"delta": delta, "self": self_effect, "cross": cross,
               "gap": self_effect - cross}
    return {k: np.percentile(v, q, axis=0) for k, v in samples.items()}
