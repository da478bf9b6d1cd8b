"""Forced answers, split into tokens as Qwen2 splits them: the replay engine, the full engine
and the parse of the decoded text agree on every one, and replay decides the answers that
begin with a digit (or a blank) by decoding on until the run of digits has ended."""

from __future__ import annotations

from pathlib import Path

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

# answer -> whether replay decides it (else the full engine answers, as it must)
FORCED = {
    "12": True,  # "1", "2", end: the run is 12, no option; replay decodes on to the end
    "1.": True, "1)": True, " 3": True, "3 sad": True, "": True,
    "²": False, "３": False,  # neither is an ASCII digit: the parse goes on to words
    "Option 2": False, "two": False, "sad": False,
    "9 or 1": False,  # 9 is no option, so the parse depends on the rest
}
CONDITIONS = [  # the first token replayed from checkpoint 2, and from checkpoint 0
    Condition("cut", "sad", 0.0, 0, Intervention.deactivate(((2, 1), (3, 5)))),
    Condition("steer", "sad", 2.0, 0, Intervention.steer(((1, 3),), 2.0)),
]


@pytest.fixture
def forced_store(manifest: Path, tmp_path: Path):
    adapter = forced_adapter()
    force(adapter, "1")
    out = tmp_path / "s.zarr"
    extract(ExtractRequest(model=LoadOptions(model_id="tiny-qwen2_audio"),
                           corpus=f"manifest:{manifest}", out=str(out), batch_size=4,
                           utterance_chunk=4, checkpoint_layers=(0, 2)), adapter=adapter)
    return adapter, ActivationStore.open(out)


def test_replay_full_and_parse_agree_on_forced_answers(forced_store) -> None:
    adapter, store = forced_store
    items = [i for i, s in enumerate(store.status()) if s == STATUS_DONE]
    options = store.metadata("options")
    for answer, by_replay in FORCED.items():
        ids = force(adapter, answer)
        text = adapter.decode(torch.tensor(ids, dtype=torch.long))
        expected = [parse_answer(text, tuple(options[i])) for i in items]
        replay = answer_items(adapter, store, items, CONDITIONS, engine="replay", batch_size=3)
        full = answer_items(adapter, store, items, CONDITIONS, engine="full", batch_size=8)
        assert (full.raw == text).all(), (answer, full.raw)  # the forcing holds
        for answers in (replay, full):
            assert answers.parsed.tolist() == [expected] * len(CONDITIONS), answer
        assert (replay.engine == ("replay" if by_replay else "full")).all(), (answer,
                                                                              replay.engine)
        print(f"{answer!r}: {text!r} -> {expected[0]!r} ({replay.engine[0, 0]})")
