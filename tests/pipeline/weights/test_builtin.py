"""``esn-whisper-smollm2``: the shipped parts, put on the base weights on this CPU, give the
recorded answers back, and the recorded held-out accuracy lies in the interval of the
accuracy measured here."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from esn.pipeline.models import LoadOptions, load_adapter
from esn.pipeline.probe import Probe
from esn.pipeline.synth import synthesize
from esn.pipeline.weights.builtin import (
    PRETRAINED_ID,
    SHIPPED_DIR,
    pretrained_checkpoint,
    pretrained_record,
    pretrained_revision,
)
from esn.pipeline.weights.organism import EVAL_PROBE, REPRODUCE, _items, evaluate_random_order


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_the_shipped_parts_reproduce_the_recorded_accuracy(tmp_path: Path) -> None:
    record = pretrained_record()
    assert (SHIPPED_DIR / "parts.safetensors").stat().st_size < 8_000_000  # a few MB
    synth = {k: record["corpus"]["synth"][k] for k in ("seed", "per_emotion_per_speaker",
                                                       "test_every", "jitter")}
    manifest = synthesize(tmp_path / "corpus", speakers=record["corpus"]["synth"]["n_speakers"],
                          **synth)
    adapter = load_adapter(LoadOptions(model_id=PRETRAINED_ID))
    assert adapter.info.id == PRETRAINED_ID and adapter.info.revision == pretrained_revision()
    assert adapter.family == "qwen2_audio"
    held = set(record["settings"]["held_out_speakers"])
    items = _items(manifest, lambda u: (u.speaker or "") in held, REPRODUCE)
    wanted = record["metrics"]["reproduce"]
    assert [i for i, _, _ in items] == wanted["ids"]
    labels = tuple(record["corpus"]["synth"]["emotions"])
    here = evaluate_random_order(adapter, items, Probe(labels=labels, **EVAL_PROBE),
                                 keep_answers=True)
    same = sum(a == b for a, b in zip(here["answers"], wanted["answers"], strict=True))
    assert same >= len(items) - 2, (here["answers"], wanted["answers"])
    low, high = wilson(here["accuracy"], here["n"])
    assert low <= record["metrics"]["unseen_speakers"]["accuracy"] <= high
    assert record["metrics"]["unseen_speakers"]["accuracy"] >= 0.8  # the goal


def test_the_checkpoint_is_built_once_and_keyed_by_its_sources() -> None:
    first = pretrained_checkpoint()
    stamp = (first / "config.json").stat().st_mtime_ns
    assert pretrained_checkpoint() == first
    assert (first / "config.json").stat().st_mtime_ns == stamp
    assert first.name.startswith(f"{PRETRAINED_ID}-")
    assert json.loads((first / "config.json").read_text())["model_type"] == "qwen2_audio"


def test_a_missing_parts_file_is_one_clear_error(tmp_path: Path) -> None:
    from esn.errors import ModelLoadError

    (tmp_path / "record.json").write_text(json.dumps(pretrained_record()))
    with pytest.raises(ModelLoadError, match="no trained parts"):
        pretrained_checkpoint(tmp_path)
