"""The condition grid and the engines: replay answers equal full-generation answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from esn.errors import RequestError
from esn.pipeline.intervene.conditions import BASELINE, build_conditions
from esn.pipeline.intervene.engine import answer_items
from esn.pipeline.models import LoadOptions, load_adapter
from esn.pipeline.probe import parse_answer
from esn.schemas import STATUS_DONE
from esn.stores import ActivationStore
from esn.stores.neuron_sets import read_neuron_sets

MODEL = "tiny-qwen2_5_omni"


@pytest.fixture
def store_and_sets(prepared):
    store, sets = prepared
    return ActivationStore.open(store), read_neuron_sets(sets)


def test_condition_grid(store_and_sets) -> None:
    _, sets = store_and_sets
    grid = build_conditions(sets, mode="steer", strengths=(0.5, 2.0), methods=("mad", "lap"))
    assert grid[0].method == BASELINE and grid[0].intervention is None
    named = [c.name for c in grid]
    assert len(named) == 1 + 2 * 3 * 2 + 2 * 2 and len(set(named)) == len(named)
    deact = build_conditions(sets, mode="deactivate", strengths=(sets.fraction / 2,),
                             methods=("mad",))
    cut = deact[1].intervention
    assert cut is not None and cut.neurons == sets.methods["mad"].sets["anger"][:len(cut.neurons)]
    assert len(cut.neurons) == round(sets.fraction / 2 * sets.n_layers * sets.n_neurons)
    with pytest.raises(RequestError, match="fraction"):
        build_conditions(sets, mode="deactivate", strengths=(0.5,))
    with pytest.raises(RequestError, match="not in the neuron-set file"):
        build_conditions(sets, mode="steer", methods=("nope",))


def test_auto_engine_equals_full_generation(store_and_sets) -> None:
    store, sets = store_and_sets
    adapter = load_adapter(LoadOptions(model_id=MODEL))
    # Make option numbers likely first tokens (a random tiny model rarely starts with one),
    # so that both paths run: the head does not touch the stored hidden states.
    digits = [adapter.tokenizer.convert_tokens_to_ids(str(d)) for d in range(1, 4)]
    with torch.no_grad():
        adapter.lm_head.weight[digits] *= 6.0
    items = [i for i, s in enumerate(store.status()) if s == STATUS_DONE]
    grid = build_conditions(sets, mode="steer", strengths=(8.0,), methods=("mad",),
                            random_draws=1)
    auto = answer_items(adapter, store, items, grid, engine="auto", batch_size=5)
    full = answer_items(adapter, store, items, grid, engine="full", batch_size=3)
    assert (full.engine == "full").all()
    assert set(np.unique(auto.engine)) <= {"replay", "full"}
    np.testing.assert_array_equal(auto.parsed, full.parsed)
    options = store.metadata("options")
    for answers in (auto, full):  # each answer is the parse of its own text
        assert answers.parsed.tolist() == [
            [parse_answer(answers.raw[c, p], tuple(options[i])) for p, i in enumerate(items)]
            for c in range(len(grid))]
    replayed = int((auto.engine == "replay").sum())
    # With a layer-0 checkpoint every answer is decided by replay (decoding on as needed);
    # the forced-answer tests cover the store without one, where full generation answers.
    assert 0 in store.layout.checkpoint_layers and replayed == auto.engine.size, replayed
    assert (auto.raw != auto.raw[0, 0]).any()  # not one forced answer: a model's answers
    print(f"replayed {replayed} of {auto.engine.size} answers")


def test_full_engine_baseline_is_the_extraction(store_and_sets) -> None:
    store, sets = store_and_sets
    adapter = load_adapter(LoadOptions(model_id=MODEL))
    items = [i for i, s in enumerate(store.status()) if s == STATUS_DONE]
    grid = build_conditions(sets, mode="steer", methods=("lap",))[:1]
    full = answer_items(adapter, store, items, grid, engine="full", batch_size=4)
    assert full.parsed[0].tolist() == store.metadata("parsed_answer")[items].tolist()
    assert full.raw[0].tolist() == store.metadata("raw_answer")[items].tolist()
    with pytest.raises(RequestError, match="engine"):
        answer_items(adapter, store, items, grid, engine="warp")


def test_full_engine_mixes_conditions_in_a_batch_and_answers_as_alone(store_and_sets,
                                                                      monkeypatch) -> None:
    """Rows of several conditions share a batch (each with its own intervention): the
    answers equal each condition generated alone, and each clip is decoded once."""
    from esn.pipeline import audio

    store, sets = store_and_sets
    adapter = load_adapter(LoadOptions(model_id=MODEL))
    items = [i for i, s in enumerate(store.status()) if s == STATUS_DONE]
    grid = build_conditions(sets, mode="steer", strengths=(8.0,), methods=("mad",),
                            random_draws=1)
    loads: list[str] = []
    original = audio.load_audio

    def counting(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        loads.append(str(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(audio, "load_audio", counting)
    mixed = answer_items(adapter, store, items, grid, engine="full", batch_size=4)
    monkeypatch.undo()
    assert sorted(loads) == sorted(set(loads)) and len(loads) == len(items)
    for c, condition in enumerate(grid):
        alone = answer_items(adapter, store, items, [condition], engine="full", batch_size=1)
        assert alone.raw[0].tolist() == mixed.raw[c].tolist(), condition.name
