"""Small randomised stores for the statistics tests: speakers, shuffled options, constant
neurons, failed utterances and a speaker with only two utterances."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from esn.schemas import STATUS_DONE, STATUS_FAILED, ModelInfo, ProbeInfo, StatsBatch, Utterance
from esn.stores import ActivationStore

LABELS = ("anger", "happy", "neutral", "sad")


def build_store(path: Path, *, n: int = 44, n_layers: int = 2, n_neurons: int = 12,
                seed: int = 0, chunk: int = 8) -> dict:
    """Write a store and return the raw arrays, for independent recomputation in the tests."""
    rng = np.random.default_rng(seed)
    emotions = np.array([LABELS[i % 4] for i in range(n)], dtype=object)
    rng.shuffle(emotions)
    speakers = np.array(["tiny", "tiny"] + [f"s{i % 4}" for i in range(n - 2)], dtype=object)
    utterances = [Utterance(id=f"u{i:03d}", corpus="c1" if i % 3 else "c2",
                            path=f"/a/u{i:03d}.wav", emotion=str(emotions[i]),
                            raw_label=str(emotions[i]), speaker=str(speakers[i]))
                  for i in range(n)]
    t = rng.integers(5, 40, size=(n, 2)).astype(np.uint32)
    base = rng.uniform(0.05, 0.9, size=(len(LABELS), 2, n_layers, n_neurons))
    rate = base[[LABELS.index(e) for e in emotions]]
    k = rng.binomial(t[:, :, None, None], rate).astype(np.uint16)
    k[:, :, 0, 0] = 0                       # constant: never fires
    k[:, :, 0, 1] = t                       # constant: always fires
    k[:, :, 1, 2] = k[:, :, 1, 3]           # tied neurons
    act = (k * rng.uniform(0.1, 1.0, size=k.shape)).astype(np.float32)
    status = np.where(rng.uniform(size=n) < 0.12, STATUS_FAILED, STATUS_DONE).astype(np.int8)
    status[:2] = STATUS_DONE
    k[status == STATUS_FAILED] = 0
    t[status == STATUS_FAILED] = 0
    act[status == STATUS_FAILED] = 0
    options = np.array([rng.permutation(LABELS) for _ in range(n)], dtype=object)
    correct = rng.uniform(size=n) < 0.7
    ActivationStore.create(
        path, utterances=utterances, model=ModelInfo(id="synthetic"),
        probe=ProbeInfo(template="{options}"), labels=LABELS, n_layers=n_layers,
        n_neurons=n_neurons, utterance_chunk=chunk,
    ).write_batch(0, StatsBatch.build(
        K=k, T=t, act_sum=act, options=options, status=status, correct=correct,
        failure_reason=["bad" if s == STATUS_FAILED else "" for s in status]))
    done = status == STATUS_DONE
    return {"url": str(path), "emotion": emotions, "speaker": speakers, "K": k, "T": t,
            "act_sum": act, "done": done, "options": options, "correct": correct}


def values(store: dict, measure: str = "rate", span: str = "all") -> np.ndarray:
    """Per-utterance ``(utterance, layer, neuron)`` measure, float64, every utterance."""
    num = (store["K"] if measure == "rate" else store["act_sum"]).astype(np.float64)
    t = store["T"].astype(np.float64)
    if span == "all":
        num, t = num.sum(1), t.sum(1)
    else:
        i = ("audio", "text").index(span)
        num, t = num[:, i], t[:, i]
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / t[:, None, None]


@pytest.fixture
def store(tmp_path: Path) -> dict:
    return build_store(tmp_path / "s.zarr")
