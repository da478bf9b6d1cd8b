"""Where extraction's probe batches are encoded: optionally in worker processes.

Encoding a batch is the model's processor: the chat template, the token ids and the audio
features, mostly Python. On a thread of the extracting process it holds the GIL that the
main thread needs to launch the model's kernels, which slowed the model by 20-30% at 7B
(``benchmarks/RESULTS.md``). ``EncoderPool`` runs the adapter's ``batch_encoder`` (a
picklable processor wrapper, installed once per worker) in spawned worker processes,
features on their CPUs; its tensors come back as numpy arrays through the pool's pipe (torch's
shared-memory tensors were 3x slower with four workers on two cores) and the batch thread
only moves them to the GPU (``ModelAdapter.probe_batch``).

``batch_workers(adapter, asked)`` decides how many: ``asked`` if given and the family has a
batch encoder, else 0 (the batch thread encodes, features on the model's GPU). Measured on
an H200 box (16 cores; Qwen2.5-Omni-7B shape, batch 32, 2 new tokens): four workers gave
the model back its time (the model stage fell from 2.35 s to 2.08 s per 256 clips, plain
``generate`` 1.60 s) but encoded a batch in 4-5 s there against 0.8 s on a 2-core CPU box,
so the run fell from 93 to 8 clips/s; the cause there is not found yet, so workers are
opt-in (``esn extract --batch-workers N``) until it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import torch
import torch.multiprocessing

from esn.pipeline.models.base import BatchEncoder, ModelAdapter

__all__ = ["EncoderPool", "batch_workers"]

_ENCODER: BatchEncoder | None = None  # in a worker process: the installed encoder


def batch_workers(adapter: ModelAdapter, asked: int | None) -> int:
    """How many encoder processes extraction uses (0: the batch thread encodes)."""
    return asked if asked and adapter.batch_encoder() is not None else 0


class EncoderPool:
    """``workers`` spawned processes that each hold ``encoder`` and encode batches on their
    CPUs (``torch_threads`` intra-op threads each)."""

    def __init__(self, encoder: BatchEncoder, workers: int, torch_threads: int = 2) -> None:
        self.workers = workers
        self._pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=torch.multiprocessing.get_context("spawn"),
            initializer=_install, initargs=(encoder, torch_threads))

    def encode(self, clips: Sequence[np.ndarray], prompts: Sequence[str]) -> dict[str, Any]:
        """The encoder's output for ``clips`` and ``prompts``, computed in a worker."""
        encoded = self._pool.submit(_encode, list(clips), list(prompts)).result()
        return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                for k, v in encoded.items()}

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> EncoderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _install(encoder: BatchEncoder, torch_threads: int) -> None:
    global _ENCODER
    torch.set_num_threads(torch_threads)
    _ENCODER = encoder


def _encode(clips: list[np.ndarray], prompts: list[str]) -> dict[str, Any]:
    assert _ENCODER is not None, "worker started without an encoder"
    return {k: v.numpy() if isinstance(v, torch.Tensor) else v
            for k, v in _ENCODER(clips, prompts, "cpu").items()}
