"""Capture of the residual stream entering chosen decoder layers during the prefill."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["HiddenStateCapture"]


class HiddenStateCapture:
    """Forward pre-hooks on decoder layers ``indices`` keeping their input hidden state.

    Only the prefill counts (the call whose sequence length is the prompt length ``L``);
    ``states()`` returns ``(len(indices), B, L, hidden)`` on the CPU, in the model's dtype.
    """

    def __init__(self, layers: Sequence[nn.Module], indices: Sequence[int]) -> None:
        self._layers = [layers[i] for i in indices]
        self._length = 0
        self._states: list[torch.Tensor | None] = []

    @contextlib.contextmanager
    def attached(self) -> Iterator[HiddenStateCapture]:
        handles = [
            layer.register_forward_pre_hook(self._hook(i), with_kwargs=True)
            for i, layer in enumerate(self._layers)
        ]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def start(self, length: int) -> None:
        self._length = length
        self._states = [None] * len(self._layers)

    def _hook(self, index: int):  # noqa: ANN202 - a torch hook signature
        def hook(module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
            hidden = args[0] if args else kwargs["hidden_states"]
            if self._states[index] is None and hidden.shape[1] == self._length:
                self._states[index] = hidden.detach().to("cpu", copy=True)

        return hook

    def states(self) -> torch.Tensor:
        if not self._layers:
            raise RuntimeError("no checkpoint layers were asked for")
        if any(s is None for s in self._states):
            raise RuntimeError("the prefill did not reach every checkpoint layer")
        return torch.stack([s for s in self._states if s is not None])
