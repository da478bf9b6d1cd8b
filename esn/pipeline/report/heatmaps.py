"""Accuracy-change heatmaps: one panel per method (rows: mask source emotion, then RND;
columns: evaluated emotion), one figure per results folder and strength."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from esn.pipeline.report.plots import (
    annotated_heatmap,
    colorbar,
    grid,
    label_width,
    new_figure,
    png,
    symmetric_limit,
)

__all__ = ["heatmap_figure"]


def heatmap_figure(title: str, panels: Sequence[Mapping[str, Any]]) -> bytes:
    """``panels``: heatmap entries of the summary (method, rows, columns, delta in points),
    drawn on one diverging scale centred at 0."""
    matrices = [np.array(p["delta"], dtype=float) for p in panels]
    vmax = symmetric_limit(*matrices)
    n_cols = max(len(p["columns"]) for p in panels)
    n_rows = max(len(p["rows"]) for p in panels)
    rows_w = label_width([r for p in panels for r in p["rows"]])
    cols_h = label_width([c for p in panels for c in p["columns"]]) * math.sin(math.pi / 6)
    cell_w, cell_h = 0.58, 0.36
    left, gap, right = rows_w + 0.45, rows_w + 0.2, 1.45
    bottom, top = cols_h + 0.55, 0.75
    fig = new_figure(left + right + len(panels) * n_cols * cell_w + (len(panels) - 1) * gap,
                     bottom + top + n_rows * cell_h, title)
    axes = grid(fig, 1, len(panels), left=left, right=right, bottom=bottom, top=top,
                hgap=gap, vgap=0)[0]
    image = None
    for ax, panel, matrix in zip(axes, panels, matrices, strict=True):
        image = annotated_heatmap(ax, matrix, panel["rows"], panel["columns"], vmax=vmax,
                                  fontsize=8)
        ax.set_title(panel["method"], fontsize=10)
        ax.set_xlabel("evaluated emotion")
    axes[0].set_ylabel("mask source")
    colorbar(fig, image, "accuracy change (points)", right=1.2, bottom=bottom, top=top)
    return png(fig)
