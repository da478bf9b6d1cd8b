"""Causality on a planted model: neurons built to detect sad audio and vote for sad's
option are found by the selectors, and deactivating or steering them moves the answer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from esn.pipeline.extract import ExtractRequest, extract
from esn.pipeline.intervene import Intervention
from esn.pipeline.intervene.conditions import Condition
from esn.pipeline.intervene.engine import answer_items
from esn.pipeline.intervene.run import InterveneRequest, intervene
from esn.pipeline.models import LoadOptions, load_adapter
from esn.pipeline.probe import parse_answer
from esn.pipeline.select import PoolOptions, SelectOptions, select_neurons
from esn.stores import ActivationStore
from esn.stores.neuron_sets import write_neuron_sets
from tests.pipeline.intervene.planted import LABELS, PLANTED, TARGET, plant, write_corpus


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("planted")
    manifest = write_corpus(root / "corpus")
    adapter = load_adapter(LoadOptions(model_id="tiny-qwen2_5_omni"))
    plant(adapter, manifest)
    extract(ExtractRequest(model=LoadOptions(model_id="tiny-qwen2_5_omni"),
                           corpus=f"manifest:{manifest}", out=str(root / "s.zarr"),
                           option_order="fixed", max_new_tokens=1, batch_size=8,
                           utterance_chunk=8, checkpoint_layers=(0,)), adapter=adapter)
    return adapter, root


def test_selectors_find_the_planted_neurons(planted) -> None:
    _, root = planted
    budget = len(PLANTED) / (4 * 64)
    sets, _ = select_neurons(str(root / "s.zarr"), SelectOptions(
        methods=("mad", "conact"), fraction=budget, span="audio",
        pool=PoolOptions(split="train", correct_only=False, balance=False)))
    for method in ("mad", "conact"):
        assert set(sets.methods[method].sets[TARGET]) == set(PLANTED), method


def test_deactivating_removes_the_answer_and_steering_raises_it(planted) -> None:
    adapter, root = planted
    store = ActivationStore.open(root / "s.zarr")
    gold = store.metadata("emotion")
    items = list(range(len(gold)))
    conditions = [Condition("baseline", "", 0.0, 0, None),
                  Condition("planted", TARGET, 0.0, 0, Intervention.deactivate(PLANTED)),
                  Condition("planted", TARGET, 3.0, 0, Intervention.steer(PLANTED, 3.0))]
    answers = answer_items(adapter, store, items, conditions, engine="full")
    said = (answers.parsed == TARGET)[:, gold == TARGET].mean(axis=1)
    others = (answers.parsed == TARGET)[:, gold != TARGET].mean(axis=1)
    base, off, up = said
    assert 0 < base < 1 and off == 0 and up > base, said
    assert others.max() <= 1 / 18, others  # the vote is specific to the sad audio


def test_the_sweep_shows_the_self_effect(planted, tmp_path: Path) -> None:
    adapter, root = planted
    sets, _ = select_neurons(str(root / "s.zarr"), SelectOptions(
        methods=("mad", "rnd"), fraction=len(PLANTED) / 256, span="audio", random_draws=2,
        pool=PoolOptions(split="train", correct_only=False, balance=False)))
    write_neuron_sets(tmp_path / "sets.json", sets)
    request = InterveneRequest(store=str(root / "s.zarr"), sets=str(tmp_path / "sets.json"),
                               out=str(tmp_path / "res"), mode="deactivate", split="test",
                               n_boot=50)
    folder = intervene(request, adapter=adapter)
    table = json.loads((folder / "summary.json").read_text())["tables"][0]
    row = table["rows"].index(TARGET)
    assert table["delta"][row][LABELS.index(TARGET)] < -20  # sad recall falls
    assert table["gap"][row] < -20
    print("sad row:", np.round(table["delta"][row], 1), "rnd row:",
          np.round(table["delta"][table["rows"].index("rnd")], 1))


def test_replay_and_full_agree_on_the_planted_model(planted) -> None:
    adapter, root = planted
    store = ActivationStore.open(root / "s.zarr")
    options = store.metadata("options")
    items = list(range(len(store.metadata("emotion"))))
    conditions = [Condition("baseline", "", 0.0, 0, None),
                  Condition("planted", TARGET, 0.0, 0, Intervention.deactivate(PLANTED)),
                  Condition("planted", TARGET, 3.0, 0, Intervention.steer(PLANTED, 3.0))]
    auto = answer_items(adapter, store, items, conditions, engine="auto", batch_size=8)
    full = answer_items(adapter, store, items, conditions, engine="full", batch_size=8)
    assert (auto.engine == "replay").all()  # one new token: the first token is the answer
    np.testing.assert_array_equal(auto.parsed, full.parsed)
    np.testing.assert_array_equal(auto.raw, full.raw)
    for c in range(len(conditions)):
        assert full.parsed[c].tolist() == [
            parse_answer(full.raw[c, p], tuple(options[i])) for p, i in enumerate(items)]
