"""The one streaming pass: per-emotion sums of K, T and activation sums over the pool.

The pool is a one-hot weight matrix ``W (utterance, emotion)`` (zero rows for utterances
outside it), and every aggregate is a contraction over utterances::

    K_e[s, l, n] = sum_u W[u, e] K[u, s, l, n]       (likewise act_sum, and T)

Dask evaluates them in one ``dask.compute``, so each store chunk is read and decompressed
once and reduced in place; memory stays at a few chunks whatever the store size. Chunks
holding no pool utterance are not read at all, and ``act_sum`` (two thirds of a store) is
read only when a selector needs the activation sums (``register(needs_sums=True)``; none of
the built-in ones does: they all rank by firing rates). Counts are exact: float32
within a chunk (far below 2**24), float64 across chunks (below 2**53).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import dask.array as da
import numpy as np
import xarray as xr

from esn.errors import RequestError
from esn.pipeline.dask_compute import dask_computer

__all__ = ["EmotionAggregates", "aggregate_pool", "build_aggregates"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class EmotionAggregates:
    """Per-emotion totals over the identification pool (in memory, small).

    Attributes:
        emotions: Emotion of each row.
        spans: Span of each column of the span axis.
        k: ``(emotion, span, layer, neuron)`` float64 sums of K.
        t: ``(emotion, span)`` float64 sums of T.
        act_sum: ``(emotion, span, layer, neuron)`` float64 sums of activation sums, or
            ``None`` when aggregated without them (``aggregate_pool(sums=False)``).
        n_items: ``(emotion,)`` pool items per emotion.
    """

    emotions: tuple[str, ...]
    spans: tuple[str, ...]
    k: np.ndarray
    t: np.ndarray
    act_sum: np.ndarray | None
    n_items: np.ndarray

    def over(self, span: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(k, t, act_sum)`` for one span or ``"all"``: shapes (E, L, N), (E,), (E, L, N)
        (``act_sum`` is ``None`` when aggregated without it)."""
        s = self.act_sum
        if span == "all":
            return self.k.sum(1), self.t.sum(1), None if s is None else s.sum(1)
        if span not in self.spans:
            raise RequestError(f"span must be one of {['all', *self.spans]}, got {span!r}")
        i = self.spans.index(span)
        return self.k[:, i], self.t[:, i], None if s is None else s[:, i]

    def firing_rate(self, span: str = "all") -> np.ndarray:
        """``P[e, l, n] = K_e / T_e``, the probability that a neuron fires at a position."""
        k, t, _ = self.over(span)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = k / t[:, None, None]
        return np.nan_to_num(p, nan=0.0)

    def mean_activation(self, span: str = "all") -> np.ndarray:
        """``sum_e / T_e``, the mean gate activation per valid position."""
        _, t, s = self.over(span)
        if s is None:
            raise RequestError("these aggregates were computed without the activation sums; "
                               "register the selector with needs_sums=True")
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nan_to_num(s / t[:, None, None], nan=0.0)


def _pool_weights(ds: xr.Dataset, pool: Mapping[str, Sequence[str]],
                  emotions: Sequence[str]) -> np.ndarray:
    index = {u: i for i, u in enumerate(ds.utterance.values.tolist())}
    weights = np.zeros((ds.sizes["utterance"], len(emotions)), dtype=np.float64)
    for e, emotion in enumerate(emotions):
        for item in pool.get(emotion, ()):
            weights[index[item], e] = 1.0
    return weights


def build_aggregates(
    ds: xr.Dataset, pool: Mapping[str, Sequence[str]], emotions: Sequence[str],
    *, sums: bool = True,
) -> tuple[da.Array, da.Array, da.Array | None, np.ndarray]:
    """Lazy ``(k, t, act_sum)`` Dask arrays for the pool (nothing is computed here;
    ``act_sum`` is ``None`` unless ``sums``)."""
    weights = _pool_weights(ds, pool, emotions)
    chunks = ds.K.data.chunks[0]
    bounds = np.cumsum((0, *chunks))
    needed = [i for i in range(len(chunks))
              if weights[bounds[i]:bounds[i + 1]].any()]
    if not needed:
        raise RequestError("the identification pool is empty")

    def contract(name: str, dtype: type) -> da.Array:
        data = ds[name].data
        parts = []
        for i in needed:  # only the utterance chunks that hold pool items
            block = data.blocks[i]
            w = da.from_array(weights[bounds[i]:bounds[i + 1]].astype(dtype),
                              chunks=(block.chunks[0], len(emotions)))
            parts.append(da.tensordot(w, block, axes=((0,), (0,))).astype(np.float64))
        return parts[0] if len(parts) == 1 else da.stack(parts).sum(axis=0)

    # Counts go through float32 GEMM per chunk (exact: a chunk's sum of counts stays far
    # below 2**24 = 16.7 M) and are summed across chunks in float64; activation sums are
    # reduced in float64 throughout.
    return (contract("K", np.float32), contract("T", np.float32),
            contract("act_sum", np.float64) if sums else None, weights.sum(0))



def aggregate_pool(
    ds: xr.Dataset, pool: Mapping[str, Sequence[str]], emotions: Sequence[str],
    *, scheduler: str | None = None, sums: bool = True,
) -> EmotionAggregates:
    """Compute the per-emotion aggregates in one pass over the store (``act_sum`` read
    only if ``sums``)."""
    k, t, s, n_items = build_aggregates(ds, pool, emotions, sums=sums)
    with dask_computer(scheduler) as compute:
        k_, t_, *rest = compute([k, t] if s is None else [k, t, s])
    s_ = rest[0] if rest else None
    return EmotionAggregates(
        emotions=tuple(emotions), spans=tuple(ds.span.values.tolist()), k=k_, t=t_,
        act_sum=s_, n_items=n_items.astype(np.int64),
    )
