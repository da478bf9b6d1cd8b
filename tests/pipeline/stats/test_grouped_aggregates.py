"""Grouped aggregates and the stats graph: lazy until computed, then equal to numpy."""

from __future__ import annotations

import dask
import numpy as np
import pytest

from esn.pipeline.stats import StatsOptions, build_stats, compute_stats, grouped_aggregates
from esn.pipeline.stats.rank import neuron_block
from esn.stores import ActivationStore
from tests.pipeline.stats.conftest import values


def _raise_if_computes(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
    raise AssertionError("the graph was computed while being built")


@pytest.mark.parametrize("span", ["all", "text"])
def test_grouped_aggregates_equal_numpy(store: dict, span: str) -> None:
    with dask.config.set(scheduler=_raise_if_computes):
        agg = grouped_aggregates(store["url"], "emotion", span=span)
    done = store["done"]
    i = None if span == "all" else ("audio", "text").index(span)
    k = store["K"].astype(float)
    t = store["T"].astype(float)
    s = store["act_sum"].astype(float)
    k, t, s = (k.sum(1), t.sum(1), s.sum(1)) if i is None else (k[:, i], t[:, i], s[:, i])
    computed = agg.compute()
    for e in computed.emotion.values.tolist():
        rows = done & (store["emotion"] == e)
        g = computed.sel(emotion=e)
        np.testing.assert_allclose(g.rate.values, k[rows].sum(0) / t[rows].sum(), rtol=1e-12)
        np.testing.assert_allclose(g.activation.values, s[rows].sum(0) / t[rows].sum(),
                                   rtol=1e-6)
        np.testing.assert_allclose(g.rate_mean.values, values(store, "rate", span)[rows].mean(0),
                                   rtol=1e-12)
        np.testing.assert_allclose(g.activation_mean.values,
                                   values(store, "activation", span)[rows].mean(0), rtol=1e-6)
        assert int(g.n) == rows.sum()
    assert computed.sizes["utterance"] == done.sum()   # only finished utterances


def test_grouped_aggregates_by_speaker_and_gold_option(store: dict) -> None:
    agg = grouped_aggregates(store["url"], "speaker")
    assert "tiny" in agg.speaker.values.tolist()
    agg = grouped_aggregates(store["url"], "gold_option")
    assert agg.gold_option.values.tolist() == ["1", "2", "3", "4"]
    assert int(agg.n.sum()) == store["done"].sum()


@pytest.mark.parametrize("test", ["welch", "rank"])
def test_building_the_stats_graph_computes_nothing(store: dict, test: str) -> None:
    opened = ActivationStore.open(store["url"])
    with dask.config.set(scheduler=_raise_if_computes):
        plan = build_stats(opened, StatsOptions(test=test, within="speaker"))
    lazy = [*plan.moments.values(), *(values for _, _, values in plan.rank_passes)]
    assert len(lazy) == (2 if test == "welch" else 2 + 2)
    assert all(isinstance(a, dask.array.Array) for a in lazy)


def test_rank_blocks_hold_every_utterance_within_the_memory_bound(
        store: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from esn.pipeline.stats import rank

    shapes: list[tuple[int, ...]] = []
    real = rank.mann_whitney_block

    def spy(x: np.ndarray, *args: object) -> np.ndarray:
        shapes.append(x.shape)
        return real(x, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(rank, "mann_whitney_block", spy)
    m = int(store["done"].sum())
    assert neuron_block(m, 24, 32 * m * 5) == 5
    assert neuron_block(m, 24, 1) == 1 and neuron_block(m, 24, 10 ** 9) == 24
    ds = compute_stats(store["url"], StatsOptions(test="rank", block_bytes=32 * m * 5))
    assert ds.u.shape == (4, 2, 12)
    assert sorted(shapes) == sorted([(m, 5)] * 4 + [(m, 2)] * 2)  # per layer: 5 + 5 + 2
