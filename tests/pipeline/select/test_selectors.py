"""Every selector against an independent numpy implementation of its formula, and LAPE
against the original algorithm's semantics on a worked example."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esn.pipeline.select import PoolOptions, SelectOptions, select_neurons
from esn.pipeline.select.aggregate import EmotionAggregates
from esn.pipeline.select.selectors import SELECTORS, SelectionContext
from esn.pipeline.select.selectors.lape import lape_threshold
from esn.schemas import STATUS_DONE
from tests.pipeline.select.conftest import LABELS, build_store

# -- the reference: written from DESIGN.md's formulas, sharing no code with esn ------------


def reference_rates(data: dict, pool: dict[str, list[str]]) -> np.ndarray:
    """P[e, l, n] = sum_{u in pool_e} K[u] / sum_{u in pool_e} T[u], spans summed."""
    index = {u: i for i, u in enumerate(data["ids"])}
    rates = []
    for emotion in LABELS:
        rows = [index[u] for u in pool[emotion]]
        k = data["K"][rows].astype(np.float64).sum(axis=(0, 1))
        t = data["T"][rows].astype(np.float64).sum()
        rates.append(k / t)
    return np.stack(rates)


def top(score: np.ndarray, budget: int, allowed: np.ndarray | None = None) -> list[int]:
    """Best first by score, ties to the lower flat index (a stable sort of -score)."""
    flat = score.reshape(-1)
    order = np.argsort(-flat, kind="stable")
    if allowed is not None:
        order = [i for i in order if allowed.reshape(-1)[i]]
    return [int(i) for i in order[:budget]]


def reference_sets(method: str, p: np.ndarray, budget: int) -> dict[str, list[int]]:
    out = {}
    n_e = p.shape[0]
    for e, emotion in enumerate(LABELS):
        if method == "lap":
            out[emotion] = top(p[e], budget)
        elif method == "mad":
            out[emotion] = top(np.abs(p[e] - p.sum(0) / n_e), budget)
        elif method == "conact":
            best = p.max(0)
            second = np.array([np.sort(col)[-2] for col in p.reshape(n_e, -1).T])
            margin = (best.reshape(-1) - second).reshape(best.shape)
            owner = p.argmax(0)
            score = np.where(owner == e, margin, 0.0)
            out[emotion] = top(score, budget, allowed=score > 0)
        elif method == "lape":
            total = p.sum(0)
            h = np.zeros(total.shape)
            for q in p:
                with np.errstate(divide="ignore", invalid="ignore"):
                    share = np.where(total > 0, q / total, 0)
                    h -= np.where(share > 0, share * np.log(share), 0)
            allowed = (p.argmax(0) == e) & (total > 0)
            out[emotion] = top(-h, budget, allowed=allowed)
    return out


def esn_sets(sets, method: str) -> dict[str, list[int]]:
    n = sets.n_neurons
    return {e: [layer * n + neuron for layer, neuron in pairs]
            for e, pairs in sets.methods[method].sets.items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fraction", [0.05, 0.2])
def test_selectors_equal_the_reference(tmp_path: Path, seed: int, fraction: float) -> None:
    data = build_store(tmp_path / "s.zarr", seed=seed)
    sets, agg = select_neurons(data["url"], SelectOptions(
        fraction=fraction, pool=PoolOptions(split="all", correct_only=False, balance=False)))
    pool = sets.pool["item_ids"]
    done = data["status"] == STATUS_DONE
    for emotion in LABELS:  # the pool is every finished item of the emotion
        expected = sorted(data["ids"][done & (data["emotion"] == emotion)].tolist())
        assert pool[emotion] == expected
    p = reference_rates(data, pool)
    np.testing.assert_allclose(agg.firing_rate(), p, rtol=0, atol=1e-12)
    budget = int(round(fraction * data["n_layers"] * data["n_neurons"]))
    assert sets.budget == budget
    for method in ("lap", "mad", "conact", "lape"):
        assert esn_sets(sets, method) == reference_sets(method, p, budget), method
    # Silent neurons (layer 0, neurons 0-2) are never chosen by the entropy selector.
    assert not any(pair[0] == 0 and pair[1] < 3 for s in sets.methods["lape"].sets.values()
                   for pair in s)


def test_ties_go_to_the_lower_index(tmp_path: Path) -> None:
    data = build_store(tmp_path / "s.zarr")
    sets, _ = select_neurons(data["url"], SelectOptions(
        methods=("lap",), fraction=1.0, pool=PoolOptions(split="all", correct_only=False,
                                                         balance=False)))
    ranking = esn_sets(sets, "lap")["anger"]
    n = data["n_neurons"]
    tied = [1 * n + 4, 1 * n + 5, 2 * n + 7]  # planted identical columns
    positions = [ranking.index(i) for i in tied]
    assert positions == sorted(positions) and positions[2] - positions[0] == 2


def test_random_draws_are_seeded_and_distinct(tmp_path: Path) -> None:
    data = build_store(tmp_path / "s.zarr")
    options = SelectOptions(methods=("rnd",), fraction=0.1, random_draws=3, seed=4,
                            pool=PoolOptions(split="all"))
    a, _ = select_neurons(data["url"], options)
    b, _ = select_neurons(data["url"], options)
    assert a.methods["rnd"].draws == b.methods["rnd"].draws
    draws = a.methods["rnd"].draws
    assert len(draws) == 3 and draws[0] == a.methods["rnd"].sets
    assert draws[0]["anger"] != draws[1]["anger"]
    assert all(len(set(s)) == a.budget for d in draws for s in d.values())


def worked_example() -> EmotionAggregates:
    """Three emotions, one layer of five neurons, rates chosen by hand (T = 10 each)."""
    p = np.array([
        # n0    n1    n2    n3    n4
        [0.90, 0.20, 0.00, 0.50, 0.30],   # anger
        [0.05, 0.20, 0.00, 0.50, 0.10],   # happy
        [0.05, 0.20, 0.00, 0.10, 0.60],   # sad
    ])
    k = (p * 10)[:, None, None, :]  # (emotion, span=1, layer=1, neuron)
    return EmotionAggregates(emotions=("anger", "happy", "sad"), spans=("all",), k=k,
                             t=np.full((3, 1), 10.0), act_sum=k.copy(),
                             n_items=np.ones(3, dtype=np.int64))


def test_lape_worked_example() -> None:
    agg = worked_example()
    ctx = SelectionContext(budget=5, span="all")
    result = SELECTORS["lape"].function(agg, ctx)
    # Entropies by hand: n0: q=(.9,.05,.05) -> 0.3944; n1: uniform -> ln 3 = 1.0986;
    # n2: silent -> excluded; n3: (5/11,5/11,1/11) -> 0.9348 (argmax: anger, first of tie);
    # n4: (.3,.1,.6) -> 0.8979 (sad).
    h = lambda q: -sum(x * np.log(x) for x in q if x > 0)  # noqa: E731
    assert [int(i) for i in result["anger"].indices] == [0, 3, 1]
    np.testing.assert_allclose(result["anger"].scores,
                               [h([.9, .05, .05]), h([5 / 11, 5 / 11, 1 / 11]), np.log(3)])
    assert result["happy"].indices.size == 0
    assert [int(i) for i in result["sad"].indices] == [4]
    # The original filter: tau = round(0.95 * 15) = 14th smallest of the 15 rates = 0.6;
    # only neurons with a rate above 0.6 survive: n0 (0.9). n4's 0.6 is not above it.
    assert lape_threshold(agg.firing_rate(), 0.95) == pytest.approx(0.6)
    filtered = SELECTORS["lape"].function(
        agg, SelectionContext(budget=5, params={"lape_percentile": 0.95}))
    assert [int(i) for i in filtered["anger"].indices] == [0]
    assert filtered["sad"].indices.size == 0


def test_conact_and_mad_worked_example() -> None:
    agg = worked_example()
    ctx = SelectionContext(budget=2)
    conact = SELECTORS["conact"].function(agg, ctx)
    # margins: n0 .85 (anger), n1 0 (tie), n2 0, n3 0 (anger/happy tie), n4 .3 (sad)
    assert [int(i) for i in conact["anger"].indices] == [0]
    np.testing.assert_allclose(conact["anger"].scores, [0.85])
    assert [int(i) for i in conact["sad"].indices] == [4]
    assert conact["happy"].indices.size == 0
    mad = SELECTORS["mad"].function(agg, ctx)
    # |P - mean|: anger n0 .9-1/3=.5667, n3 .5-.3667=.1333, n4 .3-1/3=.0333 -> [0, 3]
    assert [int(i) for i in mad["anger"].indices] == [0, 3]


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([0.02, 0.1, 0.5]))
def test_selectors_equal_the_reference_on_random_aggregates(seed: int, fraction: float) -> None:
    rng = np.random.default_rng(seed)
    k = rng.integers(0, 4, size=(4, 2, 2, 6)).astype(np.float64)  # small values: many ties
    t = rng.integers(3, 5, size=(4, 2)).astype(np.float64)
    agg = EmotionAggregates(emotions=LABELS, spans=("audio", "text"), k=k, t=t,
                            act_sum=k.copy(), n_items=np.ones(4, dtype=np.int64))
    p = k.sum(1) / t.sum(1)[:, None, None]
    budget = max(1, int(round(fraction * 12)))
    for method in ("lap", "mad", "conact", "lape"):
        got = SELECTORS[method].function(agg, SelectionContext(budget=budget))
        expected = reference_sets(method, p, budget)
        assert {e: [int(i) for i in r.indices] for e, r in got.items()} == expected, method


def test_rank_equals_a_full_sort_with_ties_nans_and_eligibility() -> None:
    """The partitioned ranking against sorting every neuron: descending key, ties by the
    lower flat index, NaN last, only eligible neurons; budgets from 0 to all."""
    from esn.pipeline.select.selectors import rank

    rng = np.random.default_rng(11)
    for trial in range(60):
        shape = (int(rng.integers(1, 5)), int(rng.integers(1, 40)))
        key = rng.integers(-3, 4, size=shape).astype(np.float64)  # many ties
        if trial % 3 == 0:
            key[rng.uniform(size=shape) < 0.3] = np.nan
        if trial % 4 == 1:
            key[rng.uniform(size=shape) < 0.1] = -np.inf
        eligible = rng.uniform(size=shape) < 0.7 if trial % 2 else None
        flat = key.ravel()
        order = np.lexsort((np.arange(flat.size), -flat))
        if eligible is not None:
            order = order[eligible.ravel()[order]]
        for budget in (0, 1, 3, flat.size // 2, flat.size, flat.size + 5):
            np.testing.assert_array_equal(rank(key, budget, eligible), order[:budget])
