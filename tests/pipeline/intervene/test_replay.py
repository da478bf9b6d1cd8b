"""Replay is exact: from stored checkpoints, the first-token logits under an intervention
equal a full forward's with the same intervention, on every tiny architecture."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import esn
from esn.pipeline.audio import load_audio
from esn.pipeline.extract import ExtractRequest, extract
from esn.pipeline.intervene import Intervention, intervention_hooks
from esn.pipeline.intervene.replay import (
    ReplayInputs,
    choose_checkpoint,
    first_token_digit,
    replay_first_logits,
)
from esn.pipeline.models import LoadOptions, load_adapter
from esn.pipeline.probe import Probe
from esn.schemas import STATUS_DONE
from esn.stores import ActivationStore

TINY = ["tiny-qwen2_5_omni", "tiny-audioflamingo3", "tiny-qwen2_audio", "tiny-voxtral",
        "tiny-kimi_audio"]
CHECKPOINTS = (0, 2, 3)  # first, a middle and the last of 4 layers


def test_choose_checkpoint() -> None:
    assert choose_checkpoint((0, 7, 14, 21), 15) == 14
    assert choose_checkpoint((0, 7, 14, 21), 7) == 7
    assert choose_checkpoint((7, 14), 3) is None


@pytest.mark.parametrize("model", TINY)
def test_replay_equals_full_forward(manifest: Path, tmp_path: Path, model: str) -> None:
    out = tmp_path / "s.zarr"
    extract(ExtractRequest(model=LoadOptions(model_id=model), corpus=f"manifest:{manifest}",
                           out=str(out), batch_size=4, utterance_chunk=4,
                           checkpoint_layers=CHECKPOINTS))
    store = ActivationStore.open(out)
    ds = esn.open_store(out)
    adapter = load_adapter(LoadOptions(model_id=model))
    probe = Probe.from_info(store.attributes.probe, store.attributes.labels)
    chunk = store.read_checkpoints(0)
    rows = [r for r in range(4) if int(ds.status[r]) == STATUS_DONE]
    # The full forward, item batch rebuilt from audio + prompt (its own padding).
    audios = [load_audio(str(ds.path.values[r])) for r in rows]
    prompts = [probe.prompt(tuple(ds.options.values[r])) for r in rows]
    full_batch = adapter.build_batch(audios, prompts)
    for layer in CHECKPOINTS:
        intervention = Intervention.deactivate(((layer, 1), (layer, 5), (3, 7)))
        with torch.no_grad(), intervention_hooks(adapter, intervention):
            full = adapter.model(**full_batch.inputs).logits[:, -1].float()
        inputs = ReplayInputs.from_checkpoints(chunk, CHECKPOINTS, layer, rows)
        replayed = replay_first_logits(adapter, inputs, intervention)
        torch.testing.assert_close(replayed, full, rtol=1e-5, atol=1e-5)
        assert torch.equal(replayed.argmax(-1), full.argmax(-1))
        steer = Intervention.steer(((3, 2), (3, 4)), 4.0)
        with torch.no_grad(), intervention_hooks(adapter, steer):
            full = adapter.model(**full_batch.inputs).logits[:, -1].float()
        torch.testing.assert_close(replay_first_logits(adapter, inputs, steer), full,
                                   rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="comes earlier"):
        replay_first_logits(adapter, ReplayInputs.from_checkpoints(chunk, CHECKPOINTS, 2, rows),
                            Intervention.deactivate(((1, 0),)))


def test_first_token_decides_only_option_numbers() -> None:
    adapter = load_adapter(LoadOptions(model_id="tiny-qwen2_5_omni"))
    tokenizer = adapter.tokenizer
    ids = [tokenizer.convert_tokens_to_ids(t) for t in ("2", "7", "sad")]
    assert first_token_digit(adapter, torch.tensor(ids), 4) == [2, None, None]
