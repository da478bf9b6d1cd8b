"""Firing statistics computed on the device, inside the prefill forward pass.

A forward hook on every layer's gate module (``mlp.act_fn``) reduces the activation
``a: (B, L, N)`` over the valid prompt positions of each item and span at once:

    K[b, s, l, :]   = sum_t span_mask[b, s, t] * (a[b, t, :] > 0)
    sum[b, s, l, :] = sum_t span_mask[b, s, t] * a[b, t, :]          (in float32)

as two batched matrix products, so no per-token activation leaves the device. A store that
keeps no sums (``sums_dtype="none"``) skips the second product; one that keeps bfloat16 sums
gets the float32 sum rounded on the device, so half the bytes cross to the host. Only the
first call per layer with the full prompt length counts: that is the prefill; the decode
steps of ``generate`` (one position each) are ignored. Each item's numbers depend on its
own positions only (padding has mask 0), so batch composition does not change them.

As soon as the last layer's hook has run, K is cast on the device to the store's count
dtype (it cannot overflow: K <= T <= the prompt length, checked before the cast) and both
arrays start on their way to the host: on a GPU into pinned buffers, non-blocking, on a side
stream, so the copy overlaps the decode steps of ``generate``; ``host_result`` waits for it.
Two sets of pinned buffers alternate, so a batch's host arrays stay valid while the next
batch runs (the extraction copies them into its chunk arrays on another thread).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from esn.errors import SchemaError
from esn.pipeline.models.base import ProbeBatch

__all__ = ["GateStatistics", "span_masks"]


def span_masks(batch: ProbeBatch) -> torch.Tensor:
    """``(B, 2, L)`` float32 masks of the audio and the text positions that count."""
    audio = batch.valid & batch.audio
    text = batch.valid & ~batch.audio
    return torch.stack([audio, text], dim=1).to(torch.float32)


class GateStatistics:
    """Collects K and activation sums of every layer's gate during one prefill per batch.

    Usage::

        stats = GateStatistics(adapter.gate_modules(), count_dtype="uint16")
        with stats.attached():
            stats.start(batch)
            answers = adapter.generate(batch, max_new_tokens)
            k, sums = stats.result()      # (B, 2, n_layers, N) int32 and float32, on device
            k, sums = stats.host_result()  # numpy, K in uint16; valid until the 2nd next start

    ``sums_dtype`` (the store's ``layout.sums_dtype``): ``"none"`` computes no sums (both
    results' ``sums`` are ``None``); ``"bfloat16"`` hands the host the sums' bfloat16 bits
    as uint16 (``esn.stores.arrays.sums_from_store`` widens them).
    """

    def __init__(self, gate_modules: Sequence[nn.Module], count_dtype: str = "uint32",
                 sums_dtype: str = "float32") -> None:
        self._modules = list(gate_modules)
        self._count_dtype = np.dtype(count_dtype)
        self._sums_dtype = sums_dtype
        self._copy: _HostCopy | None = None
        self._masks: torch.Tensor | None = None
        self._length = 0
        self._k: torch.Tensor | None = None
        self._sums: torch.Tensor | None = None
        self._seen: list[bool] = []

    @contextlib.contextmanager
    def attached(self) -> Iterator[GateStatistics]:
        handles = [m.register_forward_hook(self._hook(i)) for i, m in enumerate(self._modules)]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()
            self._masks = None

    def start(self, batch: ProbeBatch) -> None:
        """Arm the hooks for the prefill of ``batch``."""
        self._masks = span_masks(batch)
        self._length = batch.length
        self._k = None
        self._sums = None
        self._seen = [False] * len(self._modules)
        if self._copy is not None:
            self._copy.wait()  # the copy in flight ends before a buffer set is reused

    def _hook(self, index: int):  # noqa: ANN202 - a torch hook signature
        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            masks = self._masks
            if masks is None or self._seen[index] or output.shape[1] != self._length:
                return
            self._seen[index] = True
            if self._k is None:
                b, n = output.shape[0], output.shape[-1]
                shape = (b, masks.shape[1], len(self._modules), n)
                self._k = torch.zeros(shape, dtype=torch.int32, device=output.device)
                if self._sums_dtype != "none":
                    self._sums = torch.zeros(shape, dtype=torch.float32, device=output.device)
            m = masks.to(output.device)
            # Zero the positions that do not count first: a padded row may hold NaN, and
            # 0 * NaN would leak into the sums. torch.where copies; the output stays intact.
            counted = (m.sum(dim=1) > 0).unsqueeze(-1)
            a = torch.where(counted, output, 0).to(torch.float32)
            # Counts are exact: float32 holds integers to 2**24, far above any prompt length.
            fired = (a > 0).to(torch.float32)
            self._k[:, :, index, :] = torch.bmm(m, fired).round().to(torch.int32)
            if self._sums is not None:
                self._sums[:, :, index, :] = torch.bmm(m, a)
            if all(self._seen):
                self._start_host_copy()

        return hook

    def _start_host_copy(self) -> None:
        assert self._k is not None
        if self._length > np.iinfo(self._count_dtype).max:
            raise SchemaError(f"a prompt of {self._length} positions can overflow "
                              f"{self._count_dtype} counts; create the store with "
                              "count_dtype='uint32'")
        if self._copy is None or self._copy.device != self._k.device:
            self._copy = _HostCopy(self._k.device)
        sums = self._sums
        if sums is not None and self._sums_dtype == "bfloat16":
            sums = sums.to(torch.bfloat16).view(torch.int16)  # numpy has no bfloat16
        self._copy.start(self._k.to(_TORCH_COUNT[self._count_dtype.name]), sums)

    def result(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(K, sums)`` of the last prefill (sums float32, ``None`` when none are kept);
        raises if some layer never ran."""
        if self._k is None or not all(self._seen):
            missing = [i for i, seen in enumerate(self._seen) if not seen]
            raise RuntimeError(f"the prefill did not reach the gate of layer(s) {missing}")
        return self._k, self._sums

    def host_result(self) -> tuple[np.ndarray, np.ndarray | None]:
        """``(K, sums)`` of the last prefill as numpy arrays, K in the count dtype, sums as
        the store keeps them (float32, bfloat16 bits as uint16, or ``None``). On a GPU they
        are views of pinned buffers that the ``start`` after next refills: copy what you
        keep before then."""
        self.result()  # raises if some layer never ran
        assert self._copy is not None
        k, sums = self._copy.wait()
        return k, sums.view(np.uint16) if sums is not None and sums.dtype == np.int16 else sums


_TORCH_COUNT = {"uint16": torch.uint16, "uint32": torch.uint32, "int32": torch.int32}


class _HostCopy:
    """K and sums on their way to the host. On CUDA: cast on the compute stream, copied on
    a side stream into pinned buffers (two sets used in turn, grown as batches need), one
    event to wait for."""

    SETS = 2

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._cuda = device.type == "cuda"
        self._stream = torch.cuda.Stream(device) if self._cuda else None
        self._sets: list[list[torch.Tensor] | None] = [None] * self.SETS
        self._turn = 0
        self._done: torch.cuda.Event | None = None
        self._result: tuple[np.ndarray, np.ndarray | None] | None = None

    def start(self, k: torch.Tensor, sums: torch.Tensor | None) -> None:
        tensors = [k] if sums is None else [k, sums]
        if not self._cuda:
            self._result = (k.numpy(), None if sums is None else sums.numpy())
            return
        assert self._stream is not None
        buffers = self._sets[self._turn]
        if (buffers is None or len(buffers) != len(tensors)
                or any(b.dtype != t.dtype or b.shape[1:] != t.shape[1:] or b.shape[0] < t.shape[0]
                       for b, t in zip(buffers, tensors, strict=True))):
            buffers = [torch.empty(t.shape, dtype=t.dtype, pin_memory=True) for t in tensors]
            self._sets[self._turn] = buffers
        self._turn = (self._turn + 1) % self.SETS
        hosts = [b[:t.shape[0]] for b, t in zip(buffers, tensors, strict=True)]
        ready = torch.cuda.Event()
        ready.record()  # on the compute stream, after the last layer's statistics
        with torch.cuda.stream(self._stream):
            self._stream.wait_event(ready)
            for host, t in zip(hosts, tensors, strict=True):
                host.copy_(t, non_blocking=True)
            done = torch.cuda.Event()
            done.record()
        for t in tensors:
            t.record_stream(self._stream)  # not reused by the allocator before the copy ends
        self._done = done
        self._result = (hosts[0].numpy(), hosts[1].numpy() if sums is not None else None)

    def wait(self) -> tuple[np.ndarray, np.ndarray | None]:
        if self._done is not None:
            self._done.synchronize()
            self._done = None
        assert self._result is not None
        return self._result
