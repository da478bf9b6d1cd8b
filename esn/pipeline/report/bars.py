"""Self versus cross effect per method and for the random control, with bootstrap
intervals: one figure per results folder and strength."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from esn.pipeline.report.plots import Figure, grid, new_figure

__all__ = ["bars_figure"]

SELF_COLOR, CROSS_COLOR = "#b2182b", "#2166ac"


def _errors(values: Sequence[float], intervals: Sequence[Sequence[float] | None]
            ) -> np.ndarray:
    err = np.zeros((2, len(values)))
    for i, (v, ci) in enumerate(zip(values, intervals, strict=True)):
        if ci is not None and np.isfinite(v):
            err[:, i] = [max(v - ci[0], 0.0), max(ci[1] - v, 0.0)]
    return err


def bars_figure(title: str, entries: Sequence[Mapping[str, Any]]) -> Figure:
    """``entries``: bar entries of the summary (method, self, self_ci, cross, cross_ci); the
    random control's self and cross are both the mean of its row."""
    names = [e["method"] for e in entries]
    selfs = [np.nan if e["self"] is None else e["self"] for e in entries]
    crosses = [np.nan if e["cross"] is None else e["cross"] for e in entries]
    x = np.arange(len(entries))
    fig = new_figure(max(4.5, 1.3 + 0.9 * len(entries)), 3.4, title)
    ax = grid(fig, 1, 1, left=0.8, right=0.2, bottom=0.65, top=0.45, hgap=0, vgap=0)[0][0]
    ax.bar(x - 0.2, selfs, 0.4, yerr=_errors(selfs, [e["self_ci"] for e in entries]),
           color=SELF_COLOR, capsize=3, label="self (diagonal)")
    ax.bar(x + 0.2, crosses, 0.4, yerr=_errors(crosses, [e["cross_ci"] for e in entries]),
           color=CROSS_COLOR, capsize=3, label="cross (off-diagonal)")
    for i, (s, c) in enumerate(zip(selfs, crosses, strict=True)):
        for dx, v in ((-0.2, s), (0.2, c)):
            if np.isfinite(v):
                ax.annotate(f"{v:+.1f}", (i + dx, v), ha="center", fontsize=7,
                            va="bottom" if v >= 0 else "top", xytext=(0, 2 if v >= 0 else -2),
                            textcoords="offset points")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, labels=names)
    ax.set_xlabel("method (rnd: random masks of the same size)")
    ax.set_ylabel("accuracy change (points)")
    ax.legend(fontsize=8)
    ax.margins(y=0.15)
    return fig
