"""Where the selected neurons sit: the share of each set in each decoder layer, one panel
per method, one line per emotion."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from esn.pipeline.report.plots import grid, label_width, new_figure, png

__all__ = ["layers_figure"]


def layers_figure(title: str, entry: Mapping[str, Any]) -> bytes:
    """``entry``: a layer entry of the summary (``n_layers`` and ``sets`` with ``method``,
    ``emotion`` and ``share`` per layer in percent)."""
    methods = list(dict.fromkeys(s["method"] for s in entry["sets"]))
    emotions = list(dict.fromkeys(s["emotion"] for s in entry["sets"]))
    n_cols = min(3, len(methods))
    n_rows = -(-len(methods) // n_cols)
    legend = label_width(emotions, 9) + 0.7
    fig = new_figure(3.9 * n_cols + 0.8 + legend, 2.6 * n_rows + 0.7, title)
    axes = [ax for row in grid(fig, n_rows, n_cols, left=0.8, right=legend, bottom=0.55,
                               top=0.6, hgap=0.5, vgap=0.75) for ax in row]
    from matplotlib.ticker import MaxNLocator

    layers = np.arange(entry["n_layers"])
    colors = {e: f"C{i % 10}" for i, e in enumerate(emotions)}
    top = max((max(s["share"]) for s in entry["sets"] if s["share"]), default=1.0)
    for ax, method in zip(axes, methods, strict=False):
        for s in entry["sets"]:
            if s["method"] == method:
                ax.plot(layers, s["share"], marker=".", color=colors[s["emotion"]],
                        label=s["emotion"])
        ax.set_title(method, fontsize=10)
        ax.set_ylim(0, 1.05 * top)
        ax.grid(alpha=0.3)
        ax.set_xlabel("decoder layer")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for i, ax in enumerate(axes):
        if i % n_cols == 0:
            ax.set_ylabel("share of the set (%)")
        else:
            ax.tick_params(labelleft=False)
        if i >= len(methods):
            ax.set_visible(False)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper right", fontsize=9, title="emotion",
               bbox_to_anchor=(1.0, 1 - 0.6 / fig.get_size_inches()[1]))
    return png(fig)
