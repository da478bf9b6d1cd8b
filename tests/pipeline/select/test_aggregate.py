"""The one streaming pass: lazy to build, each chunk read once, same on every scheduler."""

from __future__ import annotations

import collections
from pathlib import Path

import dask
import numpy as np
import pytest
import zarr.storage

import esn
from esn.pipeline.select import aggregate_pool, build_aggregates, choose_pool
from esn.pipeline.select.pool import PoolOptions
from esn.schemas import STATUS_DONE
from tests.pipeline.select.conftest import LABELS, build_store


class _NoCompute:
    def __call__(self, dsk, keys, **kwargs):
        raise AssertionError("a Dask computation ran while building the graph")


def pool_of(data: dict, **options) -> dict[str, list[str]]:
    metadata = {k: data[k] for k in ("emotion", "split", "status", "correct")}
    metadata["utterance"] = data["ids"]
    return choose_pool(metadata, LABELS, PoolOptions(**options))


def reference(data: dict, pool: dict[str, list[str]], name: str) -> np.ndarray:
    index = {u: i for i, u in enumerate(data["ids"])}
    return np.stack([data[name][[index[u] for u in pool[e]]].astype(np.float64).sum(0)
                     for e in LABELS])


def test_building_computes_nothing_and_the_result_is_exact(small_store: dict) -> None:
    pool = pool_of(small_store, split="train")
    with dask.config.set(scheduler=_NoCompute()):
        ds = esn.open_store(small_store["url"])
        k, t, s, _ = build_aggregates(ds, pool, LABELS)
    agg = aggregate_pool(ds, pool, LABELS)
    np.testing.assert_array_equal(agg.k, reference(small_store, pool, "K"))
    np.testing.assert_array_equal(agg.t, reference(small_store, pool, "T"))
    np.testing.assert_allclose(agg.act_sum, reference(small_store, pool, "act_sum"), rtol=1e-12)
    assert agg.n_items.tolist() == [len(pool[e]) for e in LABELS]
    k_a, t_a, _ = agg.over("audio")
    np.testing.assert_array_equal(k_a, agg.k[:, 0])


def test_the_pass_reads_each_needed_chunk_once(small_store: dict, monkeypatch) -> None:
    reads: collections.Counter[str] = collections.Counter()
    original = zarr.storage.LocalStore.get

    async def counting_get(self, key, *args, **kwargs):
        reads[key] += 1
        return await original(self, key, *args, **kwargs)

    ds = esn.open_store(small_store["url"])
    pool = pool_of(small_store, split="all", correct_only=False, balance=False)
    monkeypatch.setattr(zarr.storage.LocalStore, "get", counting_get)
    aggregate_pool(ds, pool, LABELS)
    chunk_reads = {k: v for k, v in reads.items() if "/c/" in k}
    n_chunks = 48 // 8
    expected = {f"{name}/c/{c}/0/{layer}/0" for name in ("K", "act_sum") for c in range(n_chunks)
                for layer in range(3)} | {f"T/c/{c}/0" for c in range(n_chunks)}
    assert set(chunk_reads) == expected
    assert set(chunk_reads.values()) == {1}


def test_chunks_without_pool_items_are_not_read(tmp_path: Path, monkeypatch) -> None:
    data = build_store(tmp_path / "s.zarr", n=48, chunk=8)
    first_chunk = set(data["ids"][:8].tolist())
    pool = {e: [u for u in v if u in first_chunk] or [] for e, v in
            pool_of(data, split="all", correct_only=False, balance=False).items()}
    reads: collections.Counter[str] = collections.Counter()
    original = zarr.storage.LocalStore.get

    async def counting_get(self, key, *args, **kwargs):
        reads[key] += 1
        return await original(self, key, *args, **kwargs)

    ds = esn.open_store(data["url"])
    monkeypatch.setattr(zarr.storage.LocalStore, "get", counting_get)
    aggregate_pool(ds, pool, LABELS)
    assert {k.split("/")[2] for k in reads if "/c/" in k} == {"0"}


@pytest.mark.slow
def test_local_cluster_with_two_processes_gives_the_same_result(small_store: dict) -> None:
    from distributed import LocalCluster

    pool = pool_of(small_store, split="train")
    ds = esn.open_store(small_store["url"])
    threaded = aggregate_pool(ds, pool, LABELS)
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                      dashboard_address=None) as cluster:
        distributed = aggregate_pool(ds, pool, LABELS, scheduler=cluster.scheduler_address)
    for name in ("k", "t", "act_sum"):
        np.testing.assert_array_equal(getattr(threaded, name), getattr(distributed, name))


def test_pool_rules(small_store: dict) -> None:
    data = small_store
    done = data["status"] == STATUS_DONE
    pool = pool_of(data, split="train")  # correct only, balanced
    sizes = {len(v) for v in pool.values()}
    assert len(sizes) == 1
    smallest = min(int((done & data["correct"] & (data["split"] == "train")
                        & (data["emotion"] == e)).sum()) for e in LABELS)
    assert sizes == {smallest}
    index = {u: i for i, u in enumerate(data["ids"])}
    for emotion, items in pool.items():
        rows = [index[u] for u in items]
        assert all(data["emotion"][r] == emotion and data["correct"][r]
                   and data["split"][r] == "train" and done[r] for r in rows)
    assert pool_of(data, split="train") == pool  # seeded: the same every time
    sized = pool_of(data, split="train", id_size=2, seed=3)
    assert all(len(v) == 2 and set(v) <= set(pool[e]) for e, v in sized.items())
    with pytest.raises(ValueError, match="exceeds"):
        pool_of(data, split="train", id_size=smallest + 1)
    with pytest.raises(ValueError, match="no utterance has split 'dev'"):
        pool_of(data, split="dev")


def test_store_without_splits_holds_out_a_seeded_fraction(tmp_path: Path) -> None:
    data = build_store(tmp_path / "s.zarr", splits=False, n=80)
    pool = pool_of(data, correct_only=False, balance=False, holdout=0.5, seed=1)
    done = data["status"] == STATUS_DONE
    for emotion in LABELS:
        n = int((data["emotion"] == emotion).sum())
        in_pool = len(pool[emotion])
        assert in_pool <= n - round(0.5 * n) and in_pool >= n - round(0.5 * n) - int(
            (~done & (data["emotion"] == emotion)).sum())
    assert pool != pool_of(data, correct_only=False, balance=False, holdout=0.5, seed=2)


def test_selection_with_every_selector_reads_no_activation_sums(small_store: dict,
                                                                 monkeypatch) -> None:
    """The built-in selectors rank by firing rates: ``esn select`` reads K and T only, and
    its sets equal those selected from aggregates that did read act_sum."""
    from esn.pipeline.select import SelectOptions, select_neurons
    from esn.pipeline.select.run import run_selectors
    from esn.pipeline.select.selectors import SELECTORS

    assert not any(info.needs_sums for info in SELECTORS.values())
    reads: collections.Counter[str] = collections.Counter()
    original = zarr.storage.LocalStore.get

    async def counting_get(self, key, *args, **kwargs):
        reads[key] += 1
        return await original(self, key, *args, **kwargs)

    options = SelectOptions(fraction=0.1, random_draws=2)
    monkeypatch.setattr(zarr.storage.LocalStore, "get", counting_get)
    sets, _ = select_neurons(small_store["url"], options)
    monkeypatch.undo()
    read_arrays = {key.split("/")[0] for key in reads if "/c/" in key}
    assert "act_sum" not in read_arrays and {"K", "T"} <= read_arrays
    pool = {e: list(v) for e, v in sets.pool["item_ids"].items()}
    full = aggregate_pool(esn.open_store(small_store["url"]), pool, LABELS, sums=True)
    budget = sets.budget
    again = run_selectors(full, options, budget, sets.n_neurons)
    for name, method in sets.methods.items():
        assert method.sets == again[name].sets, name
    with pytest.raises(Exception, match="without the activation sums"):
        aggregate_pool(esn.open_store(small_store["url"]), pool, LABELS,
                       sums=False).mean_activation()
