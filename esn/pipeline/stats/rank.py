"""Mann-Whitney U per neuron: each group against the rest, normal approximation.

Ranks need every utterance of a neuron at once, so the test runs in passes over blocks of
whole neuron columns of one layer, ``(utterance, width)``, each read from the store on its
own (a rechunk of the utterance-chunked store would hold the whole array in memory). A
block costs about ``4 * 8 * n_utterances * width`` bytes (values, ranks, sorted copy, tie
counts); ``width`` is chosen to stay under ``block_bytes`` (default 1 GiB). Store chunks
hold whole layers, so each is decompressed ``ceil(n_neurons / width)`` times. With average
ranks ``R`` over all utterances that take part::

    U   = R_a - n_a (n_a + 1) / 2                    (reported, as scipy's statistic)
    mu  = n_a n_b / 2
    s   = sqrt(n_a n_b / 12 * ((n + 1) - sum(t**3 - t) / (n (n - 1))))   (t: tie sizes)
    z   = (max(U, n_a n_b - U) - mu - 0.5) / s
    p   = min(1, 2 * Normal.sf(z))

which is ``scipy.stats.mannwhitneyu(method="asymptotic", use_continuity=True)``, two-sided.
Constant neurons (``s == 0``) get ``p = NaN``.
"""

from __future__ import annotations

from collections.abc import Callable

import dask.array as da
import numpy as np
import scipy.special
import scipy.stats

__all__ = ["DEFAULT_BLOCK_BYTES", "mann_whitney_block", "neuron_block", "rank_passes",
           "run_rank_test"]

DEFAULT_BLOCK_BYTES = 2 ** 30


def neuron_block(n_utterances: int, n_columns: int, block_bytes: int) -> int:
    """Neuron columns per block so that one block's working set stays under ``block_bytes``."""
    return int(max(1, min(n_columns, block_bytes // max(1, 32 * n_utterances))))


def mann_whitney_block(x: np.ndarray, onehot: np.ndarray,
                       speakers: np.ndarray | None = None) -> np.ndarray:
    """``(utterance, column)`` values -> ``(2, group, column)``: U and p of each group vs rest.

    ``speakers`` (utterance, speaker) one-hot: remove each speaker's mean first (the block
    holds every utterance of its columns, so this needs nothing outside the block).
    """
    m = x.shape[0]
    if speakers is not None:
        x = x - speakers @ ((speakers.T @ x) / speakers.sum(0)[:, None])
    ranks = scipy.stats.rankdata(x, axis=0)
    s = np.sort(x, axis=0)
    new = np.ones_like(s, dtype=bool)
    new[1:] = s[1:] != s[:-1]
    gid = np.cumsum(new, axis=0) - 1
    cols = x.shape[1]
    counts = np.bincount((gid + np.arange(cols)[None] * m).ravel(),
                         minlength=m * cols).reshape(cols, m).astype(np.float64)
    tie = (counts ** 3 - counts).sum(1)
    n_a = onehot.sum(0)[:, None]
    n_b = m - n_a
    u = onehot.T @ ranks - n_a * (n_a + 1) / 2
    mu = n_a * n_b / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(n_a * n_b / 12 * ((m + 1) - tie[None] / (m * (m - 1))))
        z = (np.maximum(u, n_a * n_b - u) - mu - 0.5) / sd
    p = np.where(sd > 0, np.minimum(1.0, 2 * scipy.special.ndtr(-z)), np.nan)
    return np.stack([u, p])


def rank_passes(x: da.Array, block_bytes: int
                ) -> list[tuple[int, slice, da.Array]]:
    """Lazy ``(layer, neuron slice, values (utterance, width))`` passes, one per block.

    Each pass is computed on its own, so memory holds one block (plus the store chunks being
    read); the price is that a store chunk (whole layers) is decompressed once per pass
    over its layer: ``ceil(n_neurons / width)`` times.
    """
    m, n_layers, n_neurons = x.shape
    width = neuron_block(m, n_neurons, block_bytes)
    return [(layer, slice(a, min(a + width, n_neurons)), x[:, layer, a:a + width])
            for layer in range(n_layers) for a in range(0, n_neurons, width)]


def run_rank_test(passes: list[tuple[int, slice, da.Array]], shape: tuple[int, int],
                  onehot: np.ndarray, speakers: np.ndarray | None,
                  compute: Callable[[da.Array], np.ndarray]) -> np.ndarray:
    """Compute each pass and test it: ``(2, group, layer, neuron)`` U and p."""
    out = np.empty((2, onehot.shape[1], *shape))
    for layer, columns, values in passes:
        out[:, :, layer, columns] = mann_whitney_block(compute(values), onehot, speakers)
    return out
