"""Interventions on gate neurons: deactivate (a := 0) or steer (a := (1 + alpha) a).

One mechanism serves both, and many conditions in one batch: every batch row gets, per
layer, a vector of scales over the layer's neurons (0 to deactivate, 1 + alpha to steer,
1 elsewhere), and a forward hook on the layer's gate module (``mlp.act_fn``) multiplies
the activation by it at every position, prompt and generated tokens alike. Multiplying by
exactly 1 changes no bit, so alpha = 0 and an empty mask reproduce the baseline exactly.
Layers where every scale is 1 get no hook at all.

    with intervention_hooks(adapter, Intervention.deactivate(pairs)):
        answers = adapter.generate(batch, 20)
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from esn.errors import RequestError
from esn.pipeline.models.base import ModelAdapter

__all__ = ["Intervention", "intervention_hooks", "scale_tables"]

MODES = ("deactivate", "steer")


@dataclasses.dataclass(frozen=True)
class Intervention:
    """Neurons (``(layer, neuron)`` pairs) and what to do to them; ``None`` = no intervention."""

    mode: str
    neurons: tuple[tuple[int, int], ...]
    alpha: float = 0.0
    #: Steering only: one alpha per neuron instead of ``alpha`` (e.g. a mixture of masks).
    alphas: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise RequestError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.mode == "deactivate" and (self.alpha != 0.0 or self.alphas is not None):
            raise RequestError("alpha is for steering; deactivation sets neurons to 0")
        object.__setattr__(self, "neurons", _as_pairs(self.neurons))
        if self.alphas is not None:
            if len(self.alphas) != len(self.neurons):
                raise RequestError("alphas must give one value per neuron")
            object.__setattr__(self, "alphas", tuple(float(a) for a in self.alphas))

    def scales(self) -> tuple[float, ...]:
        """The factor for each neuron: 0 (deactivate) or 1 + alpha (steer)."""
        if self.mode == "deactivate":
            return (0.0,) * len(self.neurons)
        if self.alphas is not None:
            return tuple(1.0 + a for a in self.alphas)
        return (1.0 + self.alpha,) * len(self.neurons)

    @classmethod
    def deactivate(cls, neurons: Iterable[Sequence[int]]) -> Intervention:
        return cls("deactivate", _as_pairs(neurons))

    @classmethod
    def steer(cls, neurons: Iterable[Sequence[int]], alpha: float) -> Intervention:
        return cls("steer", _as_pairs(neurons), float(alpha))

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(sorted({layer for layer, _ in self.neurons}))


def _as_pairs(neurons: Iterable[Sequence[int]]) -> tuple[tuple[int, int], ...]:
    return tuple((int(p[0]), int(p[1])) for p in neurons)


def scale_tables(rows: Sequence[Intervention | None], n_layers: int, n_neurons: int,
                 ) -> dict[int, np.ndarray]:
    """Per touched layer, ``(B, n_neurons)`` float64 scales for ``rows`` (one per batch row).

    Each layer's table is allocated once and filled with one vectorised assignment per
    (row, layer); a neuron listed twice in a row takes its last scale other than 1.
    """
    tables: dict[int, np.ndarray] = {}
    for b, row in enumerate(rows):
        if row is None or not row.neurons:
            continue
        pairs = np.asarray(row.neurons, dtype=np.int64).reshape(-1, 2)
        scales = np.asarray(row.scales(), dtype=np.float64)
        changed = scales != 1.0  # a scale of 1 is a no-op: no hook where nothing changes
        pairs, scales = pairs[changed], scales[changed]
        outside = ((pairs[:, 0] < 0) | (pairs[:, 0] >= n_layers) | (pairs[:, 1] < 0)
                   | (pairs[:, 1] >= n_neurons))
        if outside.any():
            layer, neuron = pairs[np.argmax(outside)]
            raise RequestError(f"neuron [{layer}, {neuron}] is outside {n_layers} layers "
                               f"x {n_neurons} neurons")
        flat = pairs[:, 0] * n_neurons + pairs[:, 1]
        _, from_end = np.unique(flat[::-1], return_index=True)
        last = len(flat) - 1 - from_end  # of a neuron listed twice, its last scale wins
        pairs, scales = pairs[last], scales[last]
        for layer in np.unique(pairs[:, 0]).tolist():
            mine = pairs[:, 0] == layer
            if layer not in tables:
                tables[layer] = np.ones((len(rows), n_neurons))
            tables[layer][b, pairs[mine, 1]] = scales[mine]
    return tables


@contextlib.contextmanager
def intervention_hooks(
    adapter: ModelAdapter, rows: Intervention | Sequence[Intervention | None]
) -> Iterator[dict[int, np.ndarray]]:
    """Apply interventions while the context lasts: one ``Intervention`` for every row of
    every batch (notebook use), or one per batch row (``None``: leave that row alone)."""
    listed: Sequence[Intervention | None] = [rows] if isinstance(rows, Intervention) else rows
    gates = adapter.gate_modules()
    tables = scale_tables(listed, len(gates), adapter.n_neurons)
    handles = []
    try:
        for layer, table in tables.items():
            handles.append(gates[layer].register_forward_hook(_scaler(table)))
        yield tables
    finally:
        for handle in handles:
            handle.remove()


def _scaler(table: np.ndarray):  # noqa: ANN202 - a torch hook signature
    cache: dict[torch.device, torch.Tensor] = {}

    def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        if output.device not in cache:
            cache[output.device] = torch.as_tensor(table, dtype=torch.float32,
                                                   device=output.device)
        scale = cache[output.device]
        if scale.shape[0] not in (1, output.shape[0]):
            raise RuntimeError(f"intervention rows ({scale.shape[0]}) do not match the batch "
                               f"({output.shape[0]})")
        # In float32, so that 1 + alpha is not rounded to bfloat16 first; x * 1.0 and the
        # round trip through float32 leave untouched neurons bit for bit as they were.
        return (output.to(torch.float32) * scale[:, None, :]).to(output.dtype)

    return hook
