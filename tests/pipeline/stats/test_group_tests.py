"""Welch, Mann-Whitney and the corrections against scipy, on small randomised stores."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.stats

from esn.errors import RequestError
from esn.pipeline.stats import StatsOptions, compute_stats
from tests.pipeline.stats.conftest import values

CONSTANT = [(0, 0), (0, 1)]


def _sides(store: dict, x: np.ndarray, group: str, by: str = "emotion",
           other: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    done = store["done"]
    labels = store[by]
    a = x[done & (labels == group)]
    b = x[done & ((labels == other) if other else (labels != group))]
    return a, b


def _cohen(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na, nb = len(a), len(b)
    pooled = ((na - 1) * a.var(0, ddof=1) + (nb - 1) * b.var(0, ddof=1)) / (na + nb - 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a.mean(0) - b.mean(0)) / np.sqrt(pooled)


def _varying(shape: tuple[int, int], measure: str = "rate") -> np.ndarray:
    mask = np.ones(shape, dtype=bool)
    for layer, neuron in CONSTANT if measure == "rate" else CONSTANT[:1]:
        mask[layer, neuron] = False
    return mask


@pytest.mark.parametrize(("measure", "span"), [("rate", "all"), ("activation", "audio")])
def test_welch_each_group_vs_rest_matches_scipy(store: dict, measure: str, span: str) -> None:
    ds = compute_stats(store["url"], StatsOptions(measure=measure, span=span))
    x = values(store, measure, span)
    assert list(ds.emotion.values) == ["anger", "happy", "neutral", "sad"]
    assert ds.t.dims == ("emotion", "layer", "neuron")
    ok = _varying(x.shape[1:], measure)
    for group in ds.emotion.values.tolist():
        a, b = _sides(store, x, group)
        ref = scipy.stats.ttest_ind(a[:, ok], b[:, ok], equal_var=False)
        g = ds.sel(emotion=group)
        np.testing.assert_allclose(g.t.values[ok], ref.statistic, rtol=1e-9)
        np.testing.assert_allclose(g.p_value.values[ok], ref.pvalue, rtol=1e-7, atol=1e-300)
        np.testing.assert_allclose(g["diff"].values, a.mean(0) - b.mean(0), atol=1e-12)
        np.testing.assert_allclose(g.effect.values[ok], _cohen(a, b)[ok], rtol=1e-9)
        assert (int(g.n), int(g.n_rest)) == (len(a), len(b))
        for values_ in (g.t, g.p_value, g.q_value, g.effect):  # constant: NaN, no crash
            assert np.isnan(values_.values[~ok]).all()
        q = scipy.stats.false_discovery_control(g.p_value.values[ok], method="bh")
        np.testing.assert_allclose(g.q_value.values[ok], q, rtol=1e-12)


def test_bonferroni(store: dict) -> None:
    ds = compute_stats(store["url"], StatsOptions(correction="bonferroni"))
    p = ds.p_value.values
    for g in range(ds.sizes["emotion"]):
        ok = ~np.isnan(p[g])
        np.testing.assert_allclose(ds.q_value.values[g][ok],
                                   np.minimum(1.0, p[g][ok] * ok.sum()), rtol=1e-12)


def test_rank_matches_scipy(store: dict) -> None:
    ds = compute_stats(store["url"], StatsOptions(test="rank", block_bytes=4000))
    x = values(store)
    ok = _varying(x.shape[1:])
    assert "u" in ds and "t" not in ds
    for group in ds.emotion.values.tolist():
        a, b = _sides(store, x, group)
        ref = scipy.stats.mannwhitneyu(a, b, method="asymptotic", use_continuity=True, axis=0)
        g = ds.sel(emotion=group)
        np.testing.assert_allclose(g.u.values, ref.statistic, rtol=1e-12)
        np.testing.assert_allclose(g.p_value.values[ok], ref.pvalue[ok], rtol=1e-9)
        assert np.isnan(g.p_value.values[~ok]).all()


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")  # scipy, 2-item group
@pytest.mark.parametrize("test", ["welch", "rank"])
def test_two_named_groups_with_a_tiny_group(store: dict, test: str) -> None:
    ds = compute_stats(store["url"], StatsOptions(by="speaker", groups=("tiny", "s1"),
                                                  test=test))
    x = values(store)
    a, b = _sides(store, x, "tiny", by="speaker", other="s1")
    assert len(a) == 2
    assert list(ds.speaker.values) == ["tiny"]
    assert ds.attrs["comparison"] == "tiny vs s1"
    ok = _varying(x.shape[1:])
    if test == "welch":
        ref = scipy.stats.ttest_ind(a[:, ok], b[:, ok], equal_var=False)
        np.testing.assert_allclose(ds.t.values[0][ok], ref.statistic, rtol=1e-9)
        np.testing.assert_allclose(ds.p_value.values[0][ok], ref.pvalue, rtol=1e-7)
    else:
        ref = scipy.stats.mannwhitneyu(a, b, method="asymptotic", axis=0)
        np.testing.assert_allclose(ds.u.values[0], ref.statistic)
        np.testing.assert_allclose(ds.p_value.values[0][ok], ref.pvalue[ok], rtol=1e-9)


@pytest.mark.parametrize("test", ["welch", "rank"])
def test_within_speaker_equals_test_on_centred_values(store: dict, test: str) -> None:
    ds = compute_stats(store["url"], StatsOptions(within="speaker", test=test))
    x = values(store)
    done = store["done"]
    centred = x.copy()
    for s in set(store["speaker"].tolist()):
        rows = done & (store["speaker"] == s)
        centred[rows] -= x[rows].mean(0)
    ok = _varying(x.shape[1:])
    for group in ds.emotion.values.tolist():
        a, b = _sides(store, centred, group)
        g = ds.sel(emotion=group)
        if test == "welch":
            ref = scipy.stats.ttest_ind(a[:, ok], b[:, ok], equal_var=False)
            np.testing.assert_allclose(g.t.values[ok], ref.statistic, rtol=1e-7)
            assert np.isnan(g.t.values[~ok]).all()
        else:
            ref = scipy.stats.mannwhitneyu(a[:, ok], b[:, ok], method="asymptotic", axis=0)
            np.testing.assert_allclose(g.u.values[ok], ref.statistic, rtol=1e-12)
            np.testing.assert_allclose(g.p_value.values[ok], ref.pvalue, rtol=1e-9)


def test_gold_option_and_correct_groupings(store: dict) -> None:
    ds = compute_stats(store["url"], StatsOptions(by="gold_option"))
    gold = np.array([list(o).index(e) + 1 for o, e in zip(store["options"], store["emotion"],
                                                        strict=True)])
    x = values(store)
    assert list(ds.gold_option.values) == ["1", "2", "3", "4"]
    for opt in ("1", "3"):
        a = x[store["done"] & (gold == int(opt))]
        b = x[store["done"] & (gold != int(opt))]
        np.testing.assert_allclose(ds["diff"].sel(gold_option=opt).values,
                                   a.mean(0) - b.mean(0), atol=1e-12)
    ds = compute_stats(store["url"], StatsOptions(by="correct"))
    assert sorted(ds.correct.values.tolist()) == ["False", "True"]


def test_bad_requests(store: dict) -> None:
    with pytest.raises(RequestError, match=r"'mood'.*available: emotion, corpus, speaker"):
        compute_stats(store["url"], StatsOptions(by="mood"))
    with pytest.raises(RequestError, match=r"group\(s\) \['calm'\]"):
        compute_stats(store["url"], StatsOptions(groups=("calm", "sad")))
    with pytest.raises(RequestError, match="two different groups"):
        StatsOptions(groups=("sad",))
    with pytest.raises(RequestError, match="test must be"):
        StatsOptions(test="anova")


def test_group_with_one_item_is_named(tmp_path) -> None:  # noqa: ANN001
    from esn.stores import ActivationStore
    from tests.pipeline.stats.conftest import build_store

    info = build_store(tmp_path / "one.zarr")   # speaker "tiny" has two utterances

    store = ActivationStore.open(info["url"], mode="r+")
    store.mark_failed([1], ["test"])
    with pytest.raises(RequestError, match=r"group 'tiny' of 'speaker' has 1 finished"):
        compute_stats(info["url"], StatsOptions(by="speaker"))


@pytest.mark.slow
def test_distributed_scheduler_gives_the_same_result(store: dict) -> None:
    from distributed import LocalCluster

    options = StatsOptions(test="rank", within="speaker", block_bytes=4000)
    threaded = compute_stats(store["url"], options)
    with LocalCluster(n_workers=1, processes=False, threads_per_worker=2,
                      dashboard_address=None) as cluster:
        other = compute_stats(store["url"], dataclasses.replace(
            options, scheduler=cluster.scheduler_address))
    for name in ("u", "p_value", "q_value", "diff", "effect"):
        np.testing.assert_allclose(other[name].values, threaded[name].values, rtol=1e-12)
