"""The report's vectorised bootstrap draws the same resamples as esn's evaluate module and
gives the same effect tables and intervals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from esn.pipeline.intervene.evaluate import bootstrap_effects, effect_matrix
from esn.pipeline.report.effects import effect_tables, resample, table_delta, table_summary
from esn.pipeline.report.results import ResultsFolder

LABELS = ("anger", "happy", "sad")


def synthetic(seed: int = 0, per_emotion: tuple[int, ...] = (7, 5, 6)) -> ResultsFolder:
    """Baseline, mad x each emotion at 0.01, two random draws at 0.01, noisy answers."""
    rng = np.random.default_rng(seed)
    gold = np.array([e for e, n in zip(LABELS, per_emotion, strict=True) for _ in range(n)],
                    dtype=object)
    rng.shuffle(gold)
    names = ["baseline", *(f"mad/{e}/0.01" for e in LABELS), "rnd/rnd/0.01/draw0",
             "rnd/rnd/0.01/draw1"]
    choices = np.array([*LABELS, ""], dtype=object)
    parsed = np.where(rng.random((len(names), gold.size)) < 0.6, gold[None, :],
                      rng.choice(choices, size=(len(names), gold.size)))
    return ResultsFolder(
        path=Path("synthetic"), id="r1", name="synthetic", mode="deactivate", model="m",
        store="s", eval_store="s", labels=LABELS, gold=gold, parsed=parsed,
        conditions=tuple(names), method=("baseline", "mad", "mad", "mad", "rnd", "rnd"),
        mask=("", *LABELS, "rnd", "rnd"), strength=np.array([0.0, *[0.01] * 5]),
        context={}, sets=None, checks=())


@pytest.mark.parametrize("seed", [0, 1])
def test_same_resamples_and_intervals_as_evaluate(seed: int) -> None:
    r = synthetic(seed)
    (table,) = effect_tables(r)
    assert table.rows == (*LABELS, "rnd")
    rows = {e: r.parsed[1 + i] for i, e in enumerate(LABELS)} | {"rnd": r.parsed[4:6]}
    reference = effect_matrix(r.gold, r.parsed[0], rows, LABELS)
    boot = resample(r, n_boot=150, seed=seed)
    delta = table_delta(boot.point, r.baseline_index, table)
    np.testing.assert_allclose(delta, reference.delta)
    ci = bootstrap_effects(r.gold, r.parsed[0], rows, LABELS, n_boot=150, seed=seed)
    samples = table_delta(boot.boot, r.baseline_index, table)
    np.testing.assert_allclose(np.percentile(samples, [2.5, 97.5], axis=0), ci["delta"],
                               atol=1e-9)
    summary = table_summary(delta, table)
    assert summary["self"] == pytest.approx(reference.self_effect[:3].mean())
    assert summary["cross"] == pytest.approx(reference.cross_effect[:3].mean())
    assert summary["rnd"] == pytest.approx(reference.self_effect[3])
    off = [reference.delta[i, j] for i in range(3) for j in range(3) if i != j]
    assert summary["cross_abs"] == pytest.approx(np.abs(off).mean())
    assert summary["rnd_abs"] == pytest.approx(np.abs(reference.delta[3]).mean())
