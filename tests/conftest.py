"""Shared fixtures: fixed seeds, and small activation stores with known contents; and
reading every array of a Zarr hierarchy, to compare two stores array by array."""

from __future__ import annotations

import random

import numpy as np
import pytest
import zarr

from esn.schemas import STATUS_DONE, STATUS_FAILED, ModelInfo, ProbeInfo, StatsBatch, Utterance
from esn.stores.integrity import store_arrays

LABELS = ("anger", "happy", "neutral", "sad")


@pytest.fixture(autouse=True)
def _fixed_seeds() -> None:
    random.seed(0)
    np.random.seed(0)


def make_utterances(n: int, labels: tuple[str, ...] = LABELS) -> list[Utterance]:
    return [
        Utterance(
            id=f"utt{i:04d}", corpus="manifest", path=f"/audio/utt{i:04d}.wav",
            emotion=labels[i % len(labels)], raw_label=labels[i % len(labels)],
            speaker=f"spk{i % 3}" if i % 5 else None, split="test" if i % 4 == 0 else "train",
        )
        for i in range(n)
    ]


def make_batch(
    rng: np.random.Generator, n: int, n_layers: int, n_neurons: int,
    labels: tuple[str, ...] = LABELS, fail_every: int = 0,
) -> StatsBatch:
    """A random batch obeying the invariants (K <= T), some items failed."""
    t = rng.integers(1, 60, size=(n, 2)).astype(np.uint32)
    k = rng.binomial(t[:, :, None, None], rng.uniform(size=(1, 1, n_layers, n_neurons)))
    act = (k * rng.uniform(0.1, 1.0, size=k.shape)).astype(np.float32)
    status = np.full(n, STATUS_DONE, np.int8)
    reasons = [""] * n
    if fail_every:
        for i in range(0, n, fail_every):
            status[i] = STATUS_FAILED
            reasons[i] = "unreadable: test"
            k[i], t[i], act[i] = 0, 0, 0.0
    options = np.array([rng.permutation(labels) for _ in range(n)], dtype=object)
    parsed = [str(rng.choice(labels)) for _ in range(n)]
    return StatsBatch.build(
        K=k.astype(np.uint16), T=t, act_sum=act, options=options, status=status,
        duration=rng.uniform(0.5, 4, n).astype(np.float32),
        n_tokens=rng.integers(20, 200, n).astype(np.int32),
        correct=rng.uniform(size=n) < 0.5,
        raw_answer=[f"{i % len(labels) + 1}" for i in range(n)], parsed_answer=parsed,
        failure_reason=reasons,
    )


def store_kwargs(n_utterances: int, n_layers: int = 3, n_neurons: int = 8, chunk: int = 4):
    return dict(
        utterances=make_utterances(n_utterances),
        model=ModelInfo(id="tiny-test", revision="r1", adapter="test", dtype="float32"),
        probe=ProbeInfo(template="Which emotion? {options}", seed=0),
        labels=LABELS, n_layers=n_layers, n_neurons=n_neurons, utterance_chunk=chunk,
        corpus=("manifest:/x.csv",),
    )


def arrays_of(url: object) -> dict[str, np.ndarray]:
    """Every array of the Zarr hierarchy at ``url`` (checkpoints included), by path, read
    now (a remote one without fsspec's listing cache: other processes wrote it)."""
    url = str(url)
    options = {"storage_options": {"use_listings_cache": False}} if "://" in url else {}
    group = zarr.open_group(url, mode="r", **options)
    return {path: node[...] for path, node in store_arrays(group)}


def assert_same_arrays(a: object, b: object) -> dict[str, np.ndarray]:
    """The two hierarchies hold the same arrays with the same dtypes, shapes and values
    (strings included); returns the first one's arrays."""
    left, right = arrays_of(a), arrays_of(b)
    assert sorted(left) == sorted(right) and left
    for name, x in left.items():
        y = right[name]
        assert x.dtype == y.dtype and x.shape == y.shape, name
        if x.dtype.kind in "fc":
            np.testing.assert_array_equal(x, y, err_msg=name)
        else:
            assert x.tolist() == y.tolist(), name
    return left
