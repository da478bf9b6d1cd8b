"""Forced answers, split into tokens as Qwen2 splits them: the replay engine, the full engine
and the parse of the decoded text agree on every one. With a layer-0 checkpoint replay
decides every answer, decoding on until the run of digits has ended or the answer is
complete; without one, only an answer its first token completes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from esn.pipeline.extract import ExtractRequest, extract
from esn.pipeline.intervene import Intervention
from esn.pipeline.intervene.conditions import Condition
from esn.pipeline.intervene.engine import answer_items
from esn.pipeline.models import LoadOptions
from esn.pipeline.probe import parse_answer
from esn.schemas import STATUS_DONE
from esn.stores import ActivationStore
from tests.pipeline.intervene.forced import force, forced_adapter

FORCED = (
    "12",  # "1", "2", end: the run is 12, no option; replay decodes on to the end
    "1.", "1)", " 3", "3 sad", "",
    "²", "３",  # neither is an ASCII digit: the parse goes on to words
    "Option 2", "two", "sad",
    "9 or 1",  # 9 is no option, so the parse depends on the rest
)
CONDITIONS = [  # the first token replayed from checkpoint 2, and from checkpoint 0
    Condition("cut", "sad", 0.0, 0, Intervention.deactivate(((2, 1), (3, 5)))),
    Condition("steer", "sad", 2.0, 0, Intervention.steer(((1, 3),), 2.0)),
]


def _store(manifest: Path, out: Path, checkpoint_layers: tuple[int, ...]):
    adapter = forced_adapter()
    force(adapter, "1")
    extract(ExtractRequest(model=LoadOptions(model_id="tiny-qwen2_audio"),
                           corpus=f"manifest:{manifest}", out=str(out), batch_size=4,
                           utterance_chunk=4, checkpoint_layers=checkpoint_layers),
            adapter=adapter)
    return adapter, ActivationStore.open(out)


@pytest.fixture
def forced_store(manifest: Path, tmp_path: Path):
    return _store(manifest, tmp_path / "s.zarr", (0, 2))


@pytest.mark.parametrize("checkpoint_layers", [(0, 2), (2,)])
def test_replay_full_and_parse_agree_on_forced_answers(manifest: Path, tmp_path: Path,
                                                       checkpoint_layers) -> None:
    adapter, store = _store(manifest, tmp_path / "s.zarr", checkpoint_layers)
    items = [i for i, s in enumerate(store.status()) if s == STATUS_DONE]
    options = store.metadata("options")
    for answer in FORCED:
        # Without a layer-0 checkpoint only an answer whose first token is the end (the
        # empty one) is decided by replay; the full engine answers the rest, as it must.
        by_replay = 0 in checkpoint_layers or answer == ""
        ids = force(adapter, answer)
        text = adapter.decode(torch.tensor(ids, dtype=torch.long))
        expected = [parse_answer(text, tuple(options[i])) for i in items]
        replay = answer_items(adapter, store, items, CONDITIONS, engine="auto", batch_size=3)
        full = answer_items(adapter, store, items, CONDITIONS, engine="full", batch_size=8)
        assert (full.raw == text).all(), (answer, full.raw)  # the forcing holds
        for answers in (replay, full):
            assert answers.parsed.tolist() == [expected] * len(CONDITIONS), answer
        # The steer condition acts at layer 1: without a layer-0 checkpoint it is all full.
        wanted = [["replay" if by_replay and (c == 0 or 0 in checkpoint_layers) else "full"]
                  * len(items) for c in range(len(CONDITIONS))]
        assert replay.engine.tolist() == wanted, (answer, replay.engine)
        print(f"{answer!r}: {text!r} -> {expected[0]!r} ({replay.engine[0, 0]})")


def test_items_answered_with_digits_start_from_the_layer_zero_checkpoint(forced_store,
                                                                         monkeypatch) -> None:
    """The store's answers were "1": every pair decodes on from layer 0 directly (the
    first-token replay from layer c would be thrown away), with the same answers."""
    from esn.pipeline.intervene import engine

    adapter, store = forced_store
    items = [i for i, s in enumerate(store.status()) if s == STATUS_DONE]
    force(adapter, "2")
    reference = answer_items(adapter, store, items, CONDITIONS, engine="full", batch_size=8)

    def unused(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("a digit-answered item replayed its first token from layer c")

    monkeypatch.setattr(engine, "replay_first_logits", unused)
    straight = answer_items(adapter, store, items, CONDITIONS, engine="replay", batch_size=3)
    assert straight.parsed.tolist() == reference.parsed.tolist()
    assert straight.raw.tolist() == reference.raw.tolist()
    assert (straight.engine == "replay").all()
    monkeypatch.undo()
    # An item answered with a word at extraction replays its first token from layer c.
    calls = []
    original = engine.replay_first_logits

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(engine, "replay_first_logits", counted)
    real = store.metadata
    monkeypatch.setattr(store, "metadata", lambda name: (
        np.full(len(real(name)), "sad", dtype=object) if name == "raw_answer" else real(name)))
    answer_items(adapter, store, items, CONDITIONS, engine="replay", batch_size=3)
    assert calls
