"""Small randomised stores with planted ties and silent neurons, and their raw arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from esn.schemas import STATUS_DONE, STATUS_FAILED, ModelInfo, ProbeInfo, StatsBatch, Utterance
from esn.stores import ActivationStore

LABELS = ("anger", "happy", "neutral", "sad")


def build_store(path: Path, *, n: int = 48, n_layers: int = 3, n_neurons: int = 40,
                seed: int = 0, chunk: int = 8, splits: bool = True) -> dict:
    """Write a store and return what was written (numpy), for independent recomputation."""
    rng = np.random.default_rng(seed)
    emotions = np.array([LABELS[i % 4] for i in range(n)], dtype=object)
    rng.shuffle(emotions)
    split = np.array(["train" if rng.uniform() < 0.7 else "test" for _ in range(n)]
                     if splits else [""] * n, dtype=object)
    utterances = [Utterance(id=f"u{i:03d}", corpus="manifest", path=f"/a/u{i:03d}.wav",
                            emotion=str(emotions[i]), raw_label=str(emotions[i]),
                            speaker=f"s{i % 5}", split=split[i] or None) for i in range(n)]
    t = rng.integers(5, 40, size=(n, 2)).astype(np.uint32)
    # Emotion-dependent firing rates, so selectors have something to find.
    base = rng.uniform(0.05, 0.9, size=(len(LABELS), 2, n_layers, n_neurons))
    rate = base[[LABELS.index(e) for e in emotions]]
    k = rng.binomial(t[:, :, None, None], rate).astype(np.uint16)
    k[:, :, 0, :3] = 0                    # silent neurons: never fire for anyone
    k[:, :, 1, 5] = k[:, :, 1, 4]         # exact ties between two neurons
    k[:, :, 2, 7] = k[:, :, 1, 4]
    act = (k * rng.uniform(0.1, 1.0, size=k.shape)).astype(np.float32)
    status = np.where(rng.uniform(size=n) < 0.1, STATUS_FAILED, STATUS_DONE).astype(np.int8)
    k[status == STATUS_FAILED] = 0
    t[status == STATUS_FAILED] = 0
    act[status == STATUS_FAILED] = 0
    correct = rng.uniform(size=n) < 0.75
    store = ActivationStore.create(
        path, utterances=utterances, model=ModelInfo(id="synthetic"),
        probe=ProbeInfo(template="{options}"), labels=LABELS, n_layers=n_layers,
        n_neurons=n_neurons, utterance_chunk=chunk)
    store.write_batch(0, StatsBatch.build(
        K=k, T=t, act_sum=act, options=np.array([LABELS] * n, dtype=object), status=status,
        correct=correct, failure_reason=["bad" if s == STATUS_FAILED else "" for s in status]))
    return {"url": str(path), "ids": np.array([u.id for u in utterances], dtype=object),
            "emotion": emotions, "split": split, "K": k, "T": t, "act_sum": act,
            "status": status, "correct": correct, "n_layers": n_layers, "n_neurons": n_neurons}


@pytest.fixture
def small_store(tmp_path: Path) -> dict:
    return build_store(tmp_path / "s.zarr")
