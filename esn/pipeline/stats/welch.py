"""Welch's t-test and Cohen's d per neuron from streamed per-group moments.

One pass over the utterance axis gathers, per group ``g`` and neuron, ``n_g``,
``S1_g = sum x`` and ``S2_g = sum x**2`` (a contraction with the one-hot group matrix, like
``esn select``); memory stays at a few store chunks. Values are shifted by the first
utterance's value per neuron before squaring, which keeps the sums of squares well
conditioned and makes constant neurons exactly constant (zero). For a group ``a`` against
the rest ``b`` (totals minus the group)::

    mean = S1 / n,   var = (S2 - S1**2 / n) / (n - 1)
    diff = mean_a - mean_b
    se   = sqrt(var_a / n_a + var_b / n_b)
    t    = diff / se,   df = se**4 / ((var_a/n_a)**2/(n_a-1) + (var_b/n_b)**2/(n_b-1))
    p    = 2 * StudentT(df).sf(|t|)                      (two-sided)
    d    = diff / sqrt(((n_a-1) var_a + (n_b-1) var_b) / (n_a + n_b - 2))   (Cohen's d)

With ``--within speaker`` the sums are gathered per (group, speaker) cell ``c`` and each
speaker's mean ``M_s = sum_g S1_gs / n_s`` is removed algebraically, still in one pass::

    S1_g = sum_s (S1_gs - n_gs M_s)
    S2_g = sum_s (S2_gs - 2 M_s S1_gs + n_gs M_s**2)

Variances below ``1e-20 + 1e-12 * mean(x**2)`` count as zero (rounding of centred values).
Where ``se`` is zero (both sides constant) ``t`` and ``p`` are NaN; where the pooled SD is
zero ``d`` is NaN.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import scipy.special

__all__ = ["build_moments", "centre_cells", "welch_from_moments"]


def build_moments(x: da.Array, onehot: np.ndarray) -> tuple[da.Array, da.Array]:
    """Lazy ``(S1, S2)`` of shape (group, layer, neuron) for ``x`` (utterance, layer, neuron)."""
    shifted = x - x[0]
    w = da.from_array(onehot, chunks=(x.chunks[0], onehot.shape[1]))
    s1 = da.tensordot(w, shifted, axes=((0,), (0,)))
    s2 = da.tensordot(w, shifted * shifted, axes=((0,), (0,)))
    return s1, s2


def centre_cells(n_cells: np.ndarray, s1: np.ndarray, s2: np.ndarray, *, centre: bool
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-cell sums ``(group * speaker, layer, neuron)`` -> per-group ``(n, S1, S2)``.

    ``centre`` removes each speaker's mean first (the within-speaker values' moments).
    """
    g, n_s = n_cells.shape
    s1 = s1.reshape(g, n_s, *s1.shape[1:])
    s2 = s2.reshape(g, n_s, *s2.shape[1:])
    n = n_cells[:, :, None, None]
    if centre:
        mean = s1.sum(0) / n_cells.sum(0)[:, None, None]          # (speaker, layer, neuron)
        s2 = s2 - 2 * mean * s1 + n * mean ** 2
        s1 = s1 - n * mean
    return n_cells.sum(1), s1.sum(1), s2.sum(1)


def _mean_var(n: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = n[:, None, None]
    mean = s1 / n
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.maximum(s2 - s1 * mean, 0.0) / (n - 1)
    var = np.where(var <= 1e-20 + 1e-12 * (s2 / n), 0.0, var)
    return mean, var


def welch_from_moments(n: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> dict[str, np.ndarray]:
    """Each group against the rest: ``diff``, ``effect`` (d), ``t``, ``df``, ``p_value``.

    Args:
        n: ``(group,)`` utterances per group.
        s1, s2: ``(group, layer, neuron)`` sums of (shifted) values and of their squares.
    """
    n_a, n_b = n.astype(np.float64), n.sum() - n.astype(np.float64)
    mean_a, var_a = _mean_var(n_a, s1, s2)
    mean_b, var_b = _mean_var(n_b, s1.sum(0) - s1, s2.sum(0) - s2)
    na, nb = n_a[:, None, None], n_b[:, None, None]
    diff = mean_a - mean_b
    va, vb = var_a / na, var_b / nb
    se2 = va + vb
    pooled = ((na - 1) * var_a + (nb - 1) * var_b) / (na + nb - 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(se2 > 0, diff / np.sqrt(se2), np.nan)
        df = np.where(se2 > 0, se2 ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1)), np.nan)
        effect = np.where(pooled > 0, diff / np.sqrt(pooled), np.nan)
    p = 2.0 * scipy.special.stdtr(df, -np.abs(t))
    return {"diff": diff, "effect": effect, "t": t, "df": df, "p_value": p}
