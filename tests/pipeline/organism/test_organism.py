"""The shipped organism: loads as ``esn-organism``, answers held-out synth items through
esn's own probe path (extract), needs its MLP neurons as its record says, and training
reproduces."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from esn.pipeline.extract import ExtractRequest, extract
from esn.pipeline.models import LoadOptions, load_adapter
from esn.pipeline.organism import (
    ORGANISM_ID,
    WEIGHTS_DIR,
    TrainSettings,
    evaluate,
    mlp_zeroed,
    organism_record,
    train_organism,
)
from esn.pipeline.probe import Probe
from esn.pipeline.synth import synthesize
from esn.stores import ActivationStore

RECORD = organism_record()
LABELS = tuple(RECORD["probe"]["labels"])


@pytest.fixture(scope="module")
def heldout(tmp_path_factory) -> Path:
    """New clips (another synth seed than training's) of the training corpus's speakers and
    jitter: 4 per emotion and speaker."""
    synth = RECORD["corpus"]["synth"]
    assert synth["seed"] != 1
    return synthesize(tmp_path_factory.mktemp("organism") / "heldout", per_emotion_per_speaker=4,
                      speakers=synth["n_speakers"], seed=1, jitter=synth["jitter"],
                      emotions=LABELS, test_every=0)


@pytest.fixture(scope="module")
def adapter():
    return load_adapter(LoadOptions(model_id=ORGANISM_ID))


def test_loads_as_a_builtin_model_with_its_weights_hash(adapter) -> None:
    digest = hashlib.sha256((WEIGHTS_DIR / "organism.safetensors").read_bytes()).hexdigest()
    assert adapter.info.revision == f"sha256:{digest[:16]}"
    assert adapter.family == "qwen2_5_omni" and adapter.model.dtype == torch.float32
    assert type(adapter.model).__name__ == "Qwen2_5OmniThinkerForConditionalGeneration"
    assert (adapter.n_layers, adapter.n_neurons) == (2, 256)
    assert (WEIGHTS_DIR / "organism.safetensors").stat().st_size < 5_000_000


def test_answers_heldout_items_through_the_probe_path(adapter, heldout: Path,
                                                      tmp_path: Path) -> None:
    report = extract(ExtractRequest(
        model=LoadOptions(model_id=ORGANISM_ID), corpus=f"manifest:{heldout}",
        out=str(tmp_path / "s.zarr"), option_order="fixed", max_new_tokens=1, batch_size=16,
    ), adapter=adapter)
    store = ActivationStore.open(tmp_path / "s.zarr")
    correct = store.metadata("correct").astype(bool)
    assert correct.size == 4 * RECORD["corpus"]["synth"]["n_speakers"] * len(LABELS)
    print("held-out accuracy", correct.mean(), dict(report.accuracy))
    assert correct.mean() >= 0.9


def test_mlp_zeroed_accuracy_is_what_the_record_says(adapter, heldout: Path) -> None:
    import csv

    from esn.pipeline.audio import load_audio

    rows = list(csv.DictReader(heldout.open()))
    clips = [(load_audio(heldout.parent / r["path"]), r["label"]) for r in rows]
    probe = Probe(labels=LABELS, option_order="fixed", max_new_tokens=1)
    with mlp_zeroed(adapter):
        zeroed = evaluate(adapter, clips, probe)["accuracy"]
    print("MLP-zeroed accuracy", zeroed, "recorded", RECORD["metrics"]["mlp_zeroed_accuracy"])
    assert abs(zeroed - RECORD["metrics"]["mlp_zeroed_accuracy"]) <= 0.1
    assert zeroed <= 0.3  # near chance (0.2) or below: the decision needs the MLP neurons
    assert evaluate(adapter, clips[:20], probe)["accuracy"] > zeroed  # hooks removed


@pytest.mark.slow
def test_training_reproduces(tmp_path: Path) -> None:
    manifest = synthesize(tmp_path / "c", per_emotion_per_speaker=2, speakers=2, seed=0,
                          test_every=2)
    settings = TrainSettings(encoder_epochs=1, epochs=2, batch_size=8)
    first = train_organism(manifest, tmp_path / "a", seed=3, settings=settings)
    second = train_organism(manifest, tmp_path / "b", seed=3, settings=settings)
    weights = [(tmp_path / d / "organism.safetensors").read_bytes() for d in ("a", "b")]
    assert weights[0] == weights[1]
    timing = ("seconds_prepare", "seconds_train")
    assert {k: v for k, v in first.items() if k not in timing} == \
        {k: v for k, v in second.items() if k not in timing}
    record = json.loads((tmp_path / "a" / "organism.json").read_text())
    assert record["training"]["seed"] == 3 and record["corpus"]["synth"]["seed"] == 0
    assert 0 <= record["metrics"]["heldout_accuracy"] <= 1
    other = train_organism(manifest, tmp_path / "c2", seed=4, settings=settings)
    assert (tmp_path / "c2" / "organism.safetensors").read_bytes() != weights[0]
    assert np.isfinite(other["train_accuracy"])
