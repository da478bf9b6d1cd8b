"""Accuracy-change heatmaps: one panel per method (rows: mask source emotion, then RND;
columns: evaluated emotion), one figure per results folder and strength; and the grid of
them per model (rows: its studies or its strengths) on one shared scale."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from esn.pipeline.report.plots import (
    Figure,
    annotated_heatmap,
    colorbar,
    grid,
    label_width,
    new_figure,
    symmetric_limit,
)

__all__ = ["grid_figure", "heatmap_figure"]


def heatmap_figure(title: str, panels: Sequence[Mapping[str, Any]]) -> Figure:
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
    return fig


def grid_figure(title: str, rows: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]
                ) -> Figure:
    """The study's Figure 1: one row of panels per entry of ``rows`` (a label and its
    heatmap entries, one per method; each panel's rows are mask emotions then RND), one
    column per method, every panel on one shared diverging scale."""
    methods = list(dict.fromkeys(p["method"] for _, panels in rows for p in panels))
    matrices = [np.array(p["delta"], dtype=float) for _, panels in rows for p in panels]
    vmax = symmetric_limit(*matrices)
    all_panels = [p for _, panels in rows for p in panels]
    n_cols = max(len(p["columns"]) for p in all_panels)
    n_rows = max(len(p["rows"]) for p in all_panels)
    rows_w = label_width([r for p in all_panels for r in p["rows"]])
    cols_h = label_width([c for p in all_panels for c in p["columns"]]) * math.sin(math.pi / 6)
    names_w = label_width([label for label, _ in rows], 9) * 0.55 + 0.3
    cell_w, cell_h = 0.5, 0.32
    left, gap, right = names_w + rows_w + 0.45, rows_w + 0.2, 1.45
    bottom, top, vgap = cols_h + 0.55, 0.75, cols_h + 0.75
    panel_h = n_rows * cell_h
    fig = new_figure(left + right + len(methods) * n_cols * cell_w + (len(methods) - 1) * gap,
                     bottom + top + len(rows) * panel_h + (len(rows) - 1) * vgap, title)
    axes = grid(fig, len(rows), len(methods), left=left, right=right, bottom=bottom, top=top,
                hgap=gap, vgap=vgap)
    image = None
    for r, (label, panels) in enumerate(rows):
        by_method = {p["method"]: p for p in panels}
        for c, method in enumerate(methods):
            ax = axes[r][c]
            panel = by_method.get(method)
            if panel is None:
                ax.set_visible(False)
                continue
            image = annotated_heatmap(ax, np.array(panel["delta"], dtype=float),
                                      panel["rows"], panel["columns"], vmax=vmax, fontsize=7)
            ax.set_title(method if r == 0 else "", fontsize=10)
            ax.set_xlabel("evaluated emotion", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"{label}\nmask source", fontsize=8)
    colorbar(fig, image, "accuracy change (points)", right=1.2, bottom=bottom, top=top)
    return fig
