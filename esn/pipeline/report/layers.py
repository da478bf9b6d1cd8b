"""Where the selected neurons sit: per method (rows) and emotion (columns), how many of the
set's neurons lie in each decoder layer, on a log scale (the study's Figure 4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from esn.pipeline.report.plots import Figure, grid, method_color, new_figure

__all__ = ["layers_figure"]


def layers_figure(title: str, entry: Mapping[str, Any]) -> Figure:
    """``entry``: a layer entry of the summary (``n_layers`` and ``sets`` with ``method``,
    ``emotion``, ``n`` and ``counts`` per layer)."""
    methods = list(dict.fromkeys(s["method"] for s in entry["sets"]))
    emotions = list(dict.fromkeys(s["emotion"] for s in entry["sets"]))
    fig = new_figure(2.3 * len(emotions) + 1.1, 1.5 * len(methods) + 1.0, title)
    axes = grid(fig, len(methods), len(emotions), left=0.85, right=0.25, bottom=0.55,
                top=0.65, hgap=0.25, vgap=0.35)
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    layers = np.arange(entry["n_layers"])
    sets = {(s["method"], s["emotion"]): s for s in entry["sets"]}
    top = max((max(s["counts"]) for s in entry["sets"] if s["counts"]), default=1)
    # Fixed ticks: a log axis's automatic minor ticks cost most of the drawing time.
    decades = [10.0 ** k for k in range(int(np.log10(max(top, 1))) + 2)]
    step = max(1, round(entry["n_layers"] / 6))
    for r, method in enumerate(methods):
        for c, emotion in enumerate(emotions):
            ax = axes[r][c]
            s = sets.get((method, emotion))
            if s is not None:
                ax.bar(layers, s["counts"], width=0.85, color=method_color(method))
                ax.text(0.98, 0.92, f"n={s['n']}", transform=ax.transAxes, ha="right",
                        va="top", fontsize=7)
            ax.set_yscale("log")
            ax.set_ylim(0.8, max(2.0, 1.6 * top))
            ax.yaxis.set_major_locator(FixedLocator(decades))
            ax.yaxis.set_minor_locator(NullLocator())
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_major_locator(FixedLocator(list(range(0, entry["n_layers"], step))))
            ax.tick_params(labelsize=7)
            if r == 0:
                ax.set_title(emotion, fontsize=9)
            if r == len(methods) - 1:
                ax.set_xlabel("decoder layer", fontsize=8)
            else:
                ax.tick_params(labelbottom=False)
            if c == 0:
                ax.set_ylabel(f"{method}\nneurons (log)", fontsize=8)
            else:
                ax.tick_params(labelleft=False)
    return fig
