"""A background writer, so the model never waits for compression or disk.

The extraction loop hands over finished chunks (statistics, answers, checkpoints); one
thread writes them through ``ActivationStore.write_batch`` in order. The queue is bounded,
so memory stays at a few chunks; a write error is raised in the submitting thread at the
next ``submit`` or at ``close``, and chunks already written stay written.
"""

from __future__ import annotations

import queue
import threading
import time
from types import TracebackType

from esn.errors import StoreWriteError
from esn.schemas.batch import StatsBatch
from esn.stores.activations import ActivationStore
from esn.stores.checkpoints import CheckpointChunk

__all__ = ["ChunkWriter"]

_Item = tuple[int, StatsBatch, CheckpointChunk | None]


class ChunkWriter:
    """Writes submitted chunks on one background thread; use as a context manager."""

    def __init__(self, store: ActivationStore, max_queued: int = 2) -> None:
        self._store = store
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=max_queued)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="esn-chunk-writer", daemon=True)
        self.seconds_writing = 0.0
        self.seconds_waiting = 0.0  # time the submitting thread spent blocked on a full queue
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None:
                continue  # drain without writing after a failure
            start, batch, checkpoints = item
            t0 = time.perf_counter()
            try:
                self._store.write_batch(start, batch, checkpoints)
            except OSError as exc:  # a full disk, a read-only or vanished file system
                chunk = start // self._store.layout.utterance_chunk
                where = f" ({exc.filename})" if exc.filename else ""
                error = StoreWriteError(
                    f"{self._store.url}: writing chunk {chunk} failed: "
                    f"{exc.strerror or exc}{where}; the chunks committed before it are kept "
                    "and the same command resumes")
                error.__cause__ = exc
                self._error = error
            except BaseException as exc:  # re-raised in the submitting thread
                self._error = exc
            self.seconds_writing += time.perf_counter() - t0

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, start: int, batch: StatsBatch, checkpoints: CheckpointChunk | None) -> None:
        """Queue one chunk-aligned batch; blocks only while ``max_queued`` chunks wait."""
        self._raise_if_failed()
        t0 = time.perf_counter()
        self._queue.put((start, batch, checkpoints))
        self.seconds_waiting += time.perf_counter() - t0

    def close(self) -> None:
        """Write what is queued, stop the thread, and raise a write error if one happened."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise_if_failed()

    def __enter__(self) -> ChunkWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        # The loop failed: still flush the finished chunks, but keep the loop's error.
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
