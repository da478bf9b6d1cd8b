"""Firing statistics computed on the device, inside the prefill forward pass.

A forward hook on every layer's gate module (``mlp.act_fn``) reduces the activation
``a: (B, L, N)`` over the valid prompt positions of each item and span at once:

    K[b, s, l, :]   = sum_t span_mask[b, s, t] * (a[b, t, :] > 0)
    sum[b, s, l, :] = sum_t span_mask[b, s, t] * a[b, t, :]          (in float32)

as two batched matrix products, so no per-token activation leaves the device. Only the
first call per layer with the full prompt length counts: that is the prefill; the decode
steps of ``generate`` (one position each) are ignored. Each item's numbers depend on its
own positions only (padding has mask 0), so batch composition does not change them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

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

        stats = GateStatistics(adapter.gate_modules())
        with stats.attached():
            stats.start(batch)
            answers = adapter.generate(batch, max_new_tokens)
            k, sums = stats.result()      # (B, 2, n_layers, N) int32 and float32, on device
    """

    def __init__(self, gate_modules: Sequence[nn.Module]) -> None:
        self._modules = list(gate_modules)
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
                self._sums = torch.zeros(shape, dtype=torch.float32, device=output.device)
            assert self._sums is not None
            m = masks.to(output.device)
            # Zero the positions that do not count first: a padded row may hold NaN, and
            # 0 * NaN would leak into the sums. torch.where copies; the output stays intact.
            counted = (m.sum(dim=1) > 0).unsqueeze(-1)
            a = torch.where(counted, output, 0).to(torch.float32)
            # Counts are exact: float32 holds integers to 2**24, far above any prompt length.
            fired = (a > 0).to(torch.float32)
            self._k[:, :, index, :] = torch.bmm(m, fired).round().to(torch.int32)
            self._sums[:, :, index, :] = torch.bmm(m, a)

        return hook

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(K, sums)`` of the last prefill; raises if some layer never ran."""
        if self._k is None or self._sums is None or not all(self._seen):
            missing = [i for i, seen in enumerate(self._seen) if not seen]
            raise RuntimeError(f"the prefill did not reach the gate of layer(s) {missing}")
        return self._k, self._sums
