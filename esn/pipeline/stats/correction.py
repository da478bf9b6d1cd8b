"""Multiple-comparison control over all neurons of one comparison (one group vs the rest).

NaN p-values (constant neurons) are left out of the family: ``m`` counts the others, and
their q-values stay NaN.

``bh``: Benjamini-Hochberg, ``q_(i) = min_{j >= i} p_(j) m / j`` clipped to 1 (equals
``scipy.stats.false_discovery_control(p, method="bh")``). ``bonferroni``: ``min(1, p m)``.
"""

from __future__ import annotations

import numpy as np

from esn.errors import RequestError

__all__ = ["CORRECTIONS", "adjust"]

CORRECTIONS: tuple[str, ...] = ("bh", "bonferroni")


def _bh(p: np.ndarray) -> np.ndarray:
    m = p.size
    order = np.argsort(p)
    scaled = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out


def adjust(p: np.ndarray, method: str = "bh") -> np.ndarray:
    """q-values for ``p`` of shape (group, ...): one family per group, over all other axes."""
    if method not in CORRECTIONS:
        raise RequestError(f"correction must be one of {list(CORRECTIONS)}, got {method!r}")
    q = np.full(p.shape, np.nan)
    for g in range(p.shape[0]):
        flat = p[g].ravel()
        ok = ~np.isnan(flat)
        values = flat[ok]
        adjusted = (_bh(values) if method == "bh"
                    else np.minimum(1.0, values * values.size))
        out = np.full(flat.shape, np.nan)
        out[ok] = adjusted
        q[g] = out.reshape(p[g].shape)
    return q
