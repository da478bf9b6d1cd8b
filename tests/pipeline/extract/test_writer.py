"""The background chunk writer: order, flushing, and errors raised where they can be seen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from esn.pipeline.extract.writer import ChunkWriter
from esn.stores import ActivationStore
from tests.conftest import make_batch, store_kwargs


def test_writes_everything_submitted(tmp_path: Path) -> None:
    store = ActivationStore.create(tmp_path / "s.zarr", **store_kwargs(10, 2, 4, 4))
    rng = np.random.default_rng(0)
    batches = [make_batch(rng, n, 2, 4) for n in (4, 4, 2)]
    with ChunkWriter(store, max_queued=1) as writer:
        for start, batch in zip((0, 4, 8), batches, strict=True):
            writer.submit(start, batch, None)
    assert store.progress().pending == 0
    reread = ActivationStore.open(tmp_path / "s.zarr")  # what is on disk, in order
    for name in ("K", "T", "act_sum", "status", "n_tokens", "correct", "raw_answer",
                 "parsed_answer", "failure_reason", "options"):
        written = np.concatenate([np.asarray(getattr(b, name)) for b in batches])
        stored = reread.read(name)
        assert stored.shape == written.shape, name
        assert (stored.astype(object) == written.astype(object)).all(), name


def test_a_write_error_surfaces_and_earlier_chunks_stay(tmp_path: Path) -> None:
    store = ActivationStore.create(tmp_path / "s.zarr", **store_kwargs(10, 2, 4, 4))
    rng = np.random.default_rng(0)
    writer = ChunkWriter(store)
    writer.submit(0, make_batch(rng, 4, 2, 4), None)
    writer.submit(2, make_batch(rng, 4, 2, 4), None)  # misaligned: fails in the thread
    with pytest.raises(ValueError, match="chunk-aligned"):
        writer.close()
    assert store.pending_chunks() == [1, 2]


def test_loop_error_still_flushes_finished_chunks(tmp_path: Path) -> None:
    store = ActivationStore.create(tmp_path / "s.zarr", **store_kwargs(10, 2, 4, 4))
    with pytest.raises(RuntimeError, match="model broke"), ChunkWriter(store) as writer:
        writer.submit(0, make_batch(np.random.default_rng(0), 4, 2, 4), None)
        raise RuntimeError("model broke")
    assert store.pending_chunks() == [1, 2]
