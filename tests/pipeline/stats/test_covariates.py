"""``esn stats --covariates`` against scipy/numpy on small random stores, a planted store
where acoustic and label neurons must be told apart, and the missing-acoustics error."""

from __future__ import annotations

from pathlib import Path

import dask
import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats as sps

from esn.cli import main
from esn.errors import RequestError
from esn.pipeline.stats import (
    DESCRIPTORS,
    StatsOptions,
    build_stats,
    compute_stats,
    read_stats,
    write_acoustics,
)
from esn.schemas import STATUS_DONE, ModelInfo, ProbeInfo, StatsBatch, Utterance
from esn.stores import ActivationStore
from tests.pipeline.stats.conftest import LABELS, values


def _random_acoustics(n: int, seed: int, nan_at: int | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {name: rng.normal(size=n) * (i + 1) + 10 * i for i, name in enumerate(DESCRIPTORS)}
    if nan_at is not None:
        out["f0_median"][nan_at] = np.nan            # unvoiced: left out of the analysis
    return out


def _partial(y: np.ndarray, g: np.ndarray, z: np.ndarray) -> float:
    z1 = np.column_stack([np.ones(len(y)), z])
    ey = y - z1 @ np.linalg.lstsq(z1, y, rcond=None)[0]
    eg = g - z1 @ np.linalg.lstsq(z1, g, rcond=None)[0]
    return float(ey @ eg / np.sqrt((ey @ ey) * (eg @ eg)))


def test_covariates_match_scipy_and_lstsq(store: dict) -> None:
    n = len(store["emotion"])
    acoustics = _random_acoustics(n, seed=3, nan_at=5)
    write_acoustics(ActivationStore.open(store["url"], mode="r+"), acoustics)
    ds = compute_stats(store["url"], StatsOptions(by="emotion", covariates=True,
                                                  spearman=True, block_bytes=2000))
    x = values(store)
    z_all = np.column_stack([acoustics[name] for name in DESCRIPTORS])
    rows = store["done"] & (store["T"].sum(1) > 0) & np.isfinite(z_all).all(1)
    x, z, emotions = x[rows], z_all[rows], store["emotion"][rows]
    k = z.shape[1]
    assert int(ds.n_covariate) == rows.sum()
    assert list(ds.covariate.values) == list(DESCRIPTORS)
    for layer in range(x.shape[1]):
        for neuron in range(x.shape[2]):
            y = x[:, layer, neuron]
            got = ds.sel(layer=layer, neuron=neuron)
            if np.ptp(y) == 0:
                assert np.isnan(got.covariate_r.values).all()
                assert np.isnan(got.partial_r.values).all()
                continue
            for j, name in enumerate(DESCRIPTORS):
                ref = sps.pearsonr(y, z[:, j])
                c = got.sel(covariate=name)
                np.testing.assert_allclose(c.covariate_r, ref.statistic, atol=1e-9)
                np.testing.assert_allclose(c.covariate_p, ref.pvalue, rtol=1e-6, atol=1e-12)
                rho = sps.spearmanr(y, z[:, j])
                np.testing.assert_allclose(c.covariate_rho, rho.statistic, atol=1e-9)
                np.testing.assert_allclose(c.covariate_rho_p, rho.pvalue, rtol=1e-6,
                                           atol=1e-12)
            for e in LABELS:
                g = (emotions == e).astype(float)
                r = _partial(y, g, z)
                t = r * np.sqrt((len(y) - 2 - k) / (1 - r * r))
                p = 2 * sps.t.sf(abs(t), len(y) - 2 - k)
                np.testing.assert_allclose(got.partial_r.sel(emotion=e), r, atol=1e-9)
                np.testing.assert_allclose(got.partial_p.sel(emotion=e), p, rtol=1e-6,
                                           atol=1e-12)
    for j in range(k):
        p = ds.covariate_p.values[j].ravel()
        ok = ~np.isnan(p)
        np.testing.assert_allclose(ds.covariate_q.values[j].ravel()[ok],
                                   sps.false_discovery_control(p[ok], method="bh"))
    assert ds.partial_q.dims == ("emotion", "layer", "neuron")


def test_covariates_two_groups_keep_first(store: dict) -> None:
    write_acoustics(ActivationStore.open(store["url"], mode="r+"),
                    _random_acoustics(len(store["emotion"]), seed=1))
    ds = compute_stats(store["url"], StatsOptions(groups=("anger", "sad"), covariates=True,
                                                  test="rank", spearman=True))
    assert list(ds.emotion.values) == ["anger"]
    assert ds.partial_r.shape == (1, 2, 12) and ds.u.shape == (1, 2, 12)
    assert ds.covariate_rho.shape == (len(DESCRIPTORS), 2, 12)
    plain = compute_stats(store["url"], StatsOptions(groups=("anger", "sad"), test="rank"))
    np.testing.assert_array_equal(ds.u.values, plain.u.values)   # same U with Spearman on


def test_covariates_from_the_command_line(store: dict, tmp_path: Path) -> None:
    url, out = store["url"], tmp_path / "cov.zarr"
    args = ["stats", "--store", url, "--out", str(out), "--covariates"]
    missing = CliRunner().invoke(main, args)
    assert missing.exit_code != 0 and f"esn acoustics --store {url}" in missing.output
    write_acoustics(ActivationStore.open(url, mode="r+"),
                    _random_acoustics(len(store["emotion"]), seed=2))
    result = CliRunner().invoke(main, [*args, "--spearman"])
    assert result.exit_code == 0, result.output
    ds = read_stats(str(out))
    assert ds.covariate_r.dims == ("covariate", "layer", "neuron")
    assert list(ds.covariate.values) == list(DESCRIPTORS)
    assert {"covariate_q", "covariate_rho", "partial_r", "partial_p", "partial_q",
            "n_covariate"} <= set(ds.data_vars)


def test_covariates_without_acoustics_is_a_clear_error(store: dict) -> None:
    with pytest.raises(RequestError, match="esn acoustics --store"):
        compute_stats(store["url"], StatsOptions(covariates=True))
    with pytest.raises(RequestError, match="within"):
        StatsOptions(covariates=True, within="speaker")
    with pytest.raises(RequestError, match="spearman needs covariates"):
        StatsOptions(spearman=True)


def test_covariate_plan_is_lazy(store: dict) -> None:
    write_acoustics(ActivationStore.open(store["url"], mode="r+"),
                    _random_acoustics(len(store["emotion"]), seed=4))
    with dask.config.set(scheduler=_no_compute):
        plan = build_stats(ActivationStore.open(store["url"]),
                           StatsOptions(covariates=True, spearman=True))
    assert {"aty", "yty"} <= set(plan.moments) and plan.covariates is not None
    assert plan.moments["aty"].shape == (1 + len(DESCRIPTORS) + 4, 2, 12)


def _no_compute(*args: object, **kwargs: object) -> None:
    raise AssertionError("building the covariate plan computed a Dask graph")


def test_planted_acoustic_neurons_are_told_apart_from_label_neurons(tmp_path: Path) -> None:
    """Neurons 0-3 follow F0 (which differs by emotion); neurons 4-7 follow anger only;
    neurons 8-11 are noise. F0 neurons correlate with F0 and have ~0 partial correlation
    with the label; label neurons keep a strong partial correlation."""
    rng = np.random.default_rng(7)
    n, n_neurons = 240, 12
    emotions = np.array([LABELS[i % 4] for i in range(n)], dtype=object)
    f0_mean = {"anger": 260.0, "happy": 230.0, "neutral": 150.0, "sad": 130.0}
    f0 = np.array([f0_mean[e] for e in emotions]) + rng.normal(0, 30, n)
    anger = (emotions == "anger").astype(float)
    rate = np.empty((n, n_neurons))
    rate[:, :4] = 0.1 + 0.6 * (f0[:, None] - 80) / 300 + rng.normal(0, 0.02, (n, 4))
    rate[:, 4:8] = 0.2 + 0.4 * anger[:, None] + rng.normal(0, 0.03, (n, 4))
    rate[:, 8:] = rng.uniform(0.2, 0.6, (n, 4))
    t = np.full((n, 2), [400, 100], dtype=np.uint32)
    k = np.round(np.clip(rate, 0, 1)[:, None, None, :] * t[:, :, None, None]).astype(np.uint16)
    utterances = [Utterance(id=f"u{i}", corpus="c", path=f"/a/{i}.wav", emotion=str(e),
                            raw_label=str(e), speaker=f"s{i % 3}")
                  for i, e in enumerate(emotions)]
    url = str(tmp_path / "planted.zarr")
    store = ActivationStore.create(url, utterances=utterances, model=ModelInfo(id="planted"),
                                   probe=ProbeInfo(template="{options}"), labels=LABELS,
                                   n_layers=1, n_neurons=n_neurons, utterance_chunk=64)
    store.write_batch(0, StatsBatch.build(
        K=k, T=t, act_sum=k.astype(np.float32), options=np.tile(np.array(LABELS), (n, 1)),
        status=np.full(n, STATUS_DONE, np.int8), correct=np.ones(n, bool),
        failure_reason=[""] * n))
    acoustics = {name: rng.normal(size=n) for name in DESCRIPTORS}
    acoustics["f0_median"] = f0
    write_acoustics(store, acoustics)
    ds = compute_stats(url, StatsOptions(covariates=True)).isel(layer=0)
    r_f0 = ds.covariate_r.sel(covariate="f0_median").values
    partial = ds.partial_r.sel(emotion="anger").values
    assert (np.abs(r_f0[:4]) > 0.9).all()
    assert (np.abs(partial[:4]) < 0.15).all()
    assert (ds.partial_q.sel(emotion="anger").values[:4] > 0.05).all()
    assert (partial[4:8] > 0.5).all()
    assert (ds.partial_q.sel(emotion="anger").values[4:8] < 1e-6).all()
    assert (np.abs(r_f0[8:]) < 0.3).all() and (np.abs(partial[8:]) < 0.3).all()
