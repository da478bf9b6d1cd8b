"""The report's numbers from per-item answers: effect tables, their summaries, and a
stratified paired bootstrap vectorised over resamples (pure numpy).

For one method and strength the table has one row per mask emotion plus ``rnd`` (random
masks of the same size, recalls averaged over draws), one column per evaluated emotion:

    delta[r, c] = 100 * (recall_c(answers under mask r) - recall_c(baseline))   (points)

and per method: ``self`` = mean diagonal, ``cross`` = mean off-diagonal cell (signed),
``cross_abs`` = mean absolute off-diagonal cell, ``gap`` = self - cross; the random row
gives ``rnd`` = its mean and ``rnd_abs`` = its mean absolute cell. Resamples are drawn as
``esn.pipeline.intervene.evaluate.bootstrap_effects`` draws them (the same generator calls:
per resample, per emotion in label order, ``rng.choice(stratum, len(stratum))``), so both
see the same resamples for the same seed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from esn.pipeline.intervene.conditions import BASELINE, RANDOM
from esn.pipeline.intervene.evaluate import resampled_recalls, stratified_counts
from esn.pipeline.report.results import ResultsFolder

__all__ = ["EffectTable", "Resamples", "effect_tables", "resample", "table_delta",
           "table_summary"]

LEVEL = 0.95


@dataclasses.dataclass(frozen=True)
class EffectTable:
    """Rows of one (method, strength): the condition indices whose recalls each row averages."""

    method: str
    strength: float
    rows: tuple[str, ...]
    members: tuple[tuple[int, ...], ...]
    columns: tuple[str, ...]


def effect_tables(r: ResultsFolder) -> list[EffectTable]:
    """Every (method, strength) of a results folder, methods in first-seen order; the random
    draws at a strength form the ``rnd`` row of every method's table."""
    labels = r.labels
    methods = [m for m in dict.fromkeys(r.method) if m not in (BASELINE, RANDOM)]
    out = []
    for strength in r.strengths:
        at = [i for i in range(len(r.conditions)) if r.strength[i] == strength]
        rnd = tuple(i for i in at if r.method[i] == RANDOM)
        for method in methods:
            by_mask = {r.mask[i]: i for i in at if r.method[i] == method}
            rows = [e for e in labels if e in by_mask]
            if not rows:
                continue  # only label-agnostic conditions at this strength
            members: list[tuple[int, ...]] = [(by_mask[e],) for e in rows]
            if rnd:
                rows.append(RANDOM)
                members.append(rnd)
            out.append(EffectTable(method, strength, tuple(rows), tuple(members), labels))
    return out


@dataclasses.dataclass(frozen=True)
class Resamples:
    """Per-emotion recalls of every condition: the point estimate ``(condition, emotion)``
    and ``boot`` ``(resample, condition, emotion)``."""

    point: np.ndarray
    boot: np.ndarray


def resample(r: ResultsFolder, *, n_boot: int, seed: int) -> Resamples:
    """Recalls per condition and emotion, on the items and on ``n_boot`` stratified
    resamples of them (the same resample for every condition: paired)."""
    gold = r.gold
    hit = (r.parsed == gold[None, :]).astype(float)  # (condition, item)
    strata = [np.flatnonzero(gold == e) for e in r.labels]
    point = np.full((len(r.conditions), len(r.labels)), np.nan)
    for c, s in enumerate(strata):
        if s.size:
            point[:, c] = hit[:, s].mean(axis=1)
    counts = stratified_counts(gold, r.labels, n_boot=n_boot, seed=seed)
    return Resamples(point, resampled_recalls(gold, r.parsed, r.labels, counts))


def table_delta(recalls: np.ndarray, baseline: int, table: EffectTable) -> np.ndarray:
    """``(..., rows, columns)`` accuracy change in points from recalls ``(..., condition,
    emotion)``."""
    base = recalls[..., baseline, :]
    rows = [recalls[..., list(m), :].mean(axis=-2) for m in table.members]
    return 100.0 * (np.stack(rows, axis=-2) - base[..., None, :])


def table_summary(delta: np.ndarray, table: EffectTable) -> dict[str, np.ndarray]:
    """Per-method summaries (see the module docstring) over the leading axes of ``delta``;
    ``rnd`` and ``rnd_abs`` are NaN without a random row, the others without emotion rows."""
    emotion_rows = [i for i, row in enumerate(table.rows) if row in table.columns]
    lead = delta.shape[:-2]
    nan = np.full(lead, np.nan)
    out: dict[str, np.ndarray] = {}
    if emotion_rows:
        cols = [table.columns.index(table.rows[i]) for i in emotion_rows]
        sub = delta[..., emotion_rows, :]
        diag = sub[..., np.arange(len(cols)), cols]
        off = np.ones(sub.shape[-2:], dtype=bool)
        off[np.arange(len(cols)), cols] = False
        out["self"] = diag.mean(axis=-1)
        out["cross"] = sub[..., off].mean(axis=-1)
        out["cross_abs"] = np.abs(sub[..., off]).mean(axis=-1)
        out["gap"] = out["self"] - out["cross"]
    else:
        out.update({k: nan for k in ("self", "cross", "cross_abs", "gap")})
    if RANDOM in table.rows:
        rnd = delta[..., table.rows.index(RANDOM), :]
        out["rnd"] = rnd.mean(axis=-1)
        out["rnd_abs"] = np.abs(rnd).mean(axis=-1)
    else:
        out["rnd"], out["rnd_abs"] = nan, nan
    return out


def interval(samples: np.ndarray, level: float = LEVEL) -> list[float] | None:
    """Percentile interval of bootstrap ``samples`` (``None`` when they are all NaN)."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return None
    q = [100 * (1 - level) / 2, 100 * (1 + level) / 2]
    lo, hi = np.percentile(finite, q)
    return [float(lo), float(hi)]


def target_share(r: ResultsFolder, conditions: Sequence[int], targets: Sequence[str]
                 ) -> float:
    """Percent of all items answered with the target emotion, averaged over the
    conditions (each with its own target)."""
    shares = [float((r.parsed[c] == t).mean()) for c, t in zip(conditions, targets,
                                                                  strict=True)]
    return 100.0 * float(np.mean(shares)) if shares else float("nan")
