"""``--split auto`` on a store with published splits: ``train`` identifies, and ``test`` or
numbered test splits (MSP-Podcast's ``Test1``/``Test2``) are the test data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from esn.errors import RequestError
from esn.pipeline.intervene.run import choose_test_items
from esn.pipeline.select.pool import PoolOptions, choose_pool, is_test_split
from esn.schemas import Utterance
from esn.stores import ActivationStore
from tests.conftest import make_batch, store_kwargs

# MSP-Podcast's Split_Set, lower-cased by the loader: four items (one per emotion) each.
MSP_SPLITS = ("train", "development", "test1", "test2")


def _store(tmp_path: Path, splits: tuple[str, ...]) -> ActivationStore:
    kwargs = store_kwargs(4 * len(splits))
    labels = kwargs["labels"]
    kwargs["utterances"] = [
        Utterance(id=f"utt{i:04d}", corpus="msp-podcast", path=f"/audio/utt{i:04d}.wav",
                  emotion=labels[i % 4], raw_label=labels[i % 4], split=splits[i // 4])
        for i in range(4 * len(splits))]
    store = ActivationStore.create(tmp_path / "s.zarr", **kwargs)
    batch = make_batch(np.random.default_rng(0), 4 * len(splits), 3, 8)
    store.write_batch(0, batch)
    return store


def test_test1_and_test2_are_the_test_data_and_train_the_pool(tmp_path: Path) -> None:
    store = _store(tmp_path, MSP_SPLITS)
    meta = {name: store.metadata(name) for name in ("utterance", "emotion", "split")}
    meta["status"], meta["correct"] = store.status(), np.ones(16, dtype=bool)
    pool = choose_pool(meta, store.attributes.labels, PoolOptions(split="auto"))
    assert sorted(u for items in pool.values() for u in items) == [f"utt{i:04d}"
                                                                   for i in range(4)]
    chosen = choose_test_items(store, set(), {}, split="auto", per_emotion=None, seed=0,
                               force_overlap=False, same_store=True, pool_paths=frozenset())
    assert chosen == list(range(8, 16))  # test1 and test2, never development
    assert [store.metadata("split")[i] for i in chosen] == ["test1"] * 4 + ["test2"] * 4


def test_a_store_with_splits_but_no_test_split_names_them(tmp_path: Path) -> None:
    store = _store(tmp_path, ("train", "development"))
    with pytest.raises(RequestError, match=r"^the store has splits \['development', 'train'\] "
                       r"but none named 'test' \(or test1, test2\.\.\.\): choose one with "
                       r"--split NAME$"):
        choose_test_items(store, set(), {}, split="auto", per_emotion=None, seed=0,
                          force_overlap=False, same_store=True, pool_paths=frozenset())


@pytest.mark.parametrize(("name", "test"), [("test", True), ("test1", True), ("test12", True),
                                            ("train", False), ("development", False),
                                            ("testing", False), ("dev", False)])
def test_which_split_names_are_test_data(name: str, test: bool) -> None:
    assert is_test_split(name) is test
