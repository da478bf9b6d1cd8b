"""Lazy per-utterance measures and grouped aggregates (nothing here computes).

Per utterance ``u`` (summed over the chosen span)::

    rate[u, l, n]       = K[u, l, n] / T[u]          firing rate
    activation[u, l, n] = act_sum[u, l, n] / T[u]     mean activation per valid position

Pooled over a group ``g``: ``sum_u K / sum_u T`` (and ``sum_u act_sum / sum_u T``), which
weights utterances by their length; the per-utterance mean weights them equally.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from esn.errors import RequestError
from esn.pipeline.stats.groups import Grouping, make_grouping
from esn.stores.activations import ActivationStore

__all__ = ["MEASURES", "grouped_aggregates", "span_sums", "utterance_values"]

MEASURES: tuple[str, ...] = ("rate", "activation")


def span_sums(ds: xr.Dataset, name: str, span: str) -> xr.DataArray:
    """``name`` (K or act_sum) summed over the span axis or taken at one span, float64, lazy."""
    data = ds[name]
    data = data.sum("span", dtype=np.float64) if span == "all" else data.sel(span=span)
    return data.astype(np.float64)


def utterance_values(ds: xr.Dataset, grouping: Grouping, measure: str,
                     span: str) -> xr.DataArray:
    """Lazy ``(utterance, layer, neuron)`` float64 measure for the utterances of ``grouping``."""
    if measure not in MEASURES:
        raise RequestError(f"measure must be one of {list(MEASURES)}, got {measure!r}")
    name = "K" if measure == "rate" else "act_sum"
    if name not in ds:
        raise RequestError("the store keeps no activation sums (extracted with --sums "
                           "none): the activation measure needs them; use the rate, or "
                           "extract again with --sums bfloat16")
    values = span_sums(ds.isel(utterance=grouping.index), name, span)
    t = xr.DataArray(grouping.t, dims=("utterance",))
    out = values / t
    return out.assign_coords({grouping.by: ("utterance", grouping.labels)})


def grouped_aggregates(store: ActivationStore | str, by: str, *, span: str = "all",
                       groups: list[str] | None = None) -> xr.Dataset:
    """Lazy per-group firing rates and mean activations, pooled and per-utterance means.

    Returns an ``xarray.Dataset`` of Dask arrays: ``k``, ``act_sum`` (group, layer, neuron)
    and ``t``, ``n`` (group) sums; ``rate`` and ``activation`` pooled (sum over the group
    divided by its sum of T); ``rate_mean`` and ``activation_mean`` (means of the
    per-utterance values); and ``utterance_rate``/``utterance_activation``
    (utterance, layer, neuron) with the group label as a coordinate. Building it reads only
    metadata and T; ``.compute()`` streams the store once. A store that keeps no sums
    (``--sums none``) gives the rate variables only.
    """
    if isinstance(store, str):
        store = ActivationStore.open(store)
    grouping = make_grouping(store, by, span, groups)
    ds = store.to_xarray()
    w = xr.DataArray(grouping.one_hot(), dims=("utterance", by),
                     coords={by: list(grouping.groups)})
    sub = ds.isel(utterance=grouping.index)
    k = span_sums(sub, "K", span)
    t = xr.DataArray(grouping.t, dims=("utterance",))
    rate = utterance_values(ds, grouping, "rate", span)
    n = w.sum("utterance")
    k_g, t_g = xr.dot(w, k, dim="utterance"), w @ t
    out = xr.Dataset({
        "k": k_g, "t": t_g, "n": n, "rate": k_g / t_g,
        "rate_mean": xr.dot(w, rate.drop_vars(by), dim="utterance") / n,
        "utterance_rate": rate,
    })
    if "act_sum" in ds:
        s_g = xr.dot(w, span_sums(sub, "act_sum", span), dim="utterance")
        act = utterance_values(ds, grouping, "activation", span)
        out = out.assign({
            "act_sum": s_g, "activation": s_g / t_g,
            "activation_mean": xr.dot(w, act.drop_vars(by), dim="utterance") / n,
            "utterance_activation": act,
        })
    out.attrs = {"by": by, "span": span}
    return out


def as_dask(values: xr.DataArray) -> da.Array:
    """The Dask array behind ``values`` (wrapping a numpy one if needed)."""
    data = values.data
    return data if isinstance(data, da.Array) else da.from_array(data)
