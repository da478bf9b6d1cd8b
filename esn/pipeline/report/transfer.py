"""Transfer matrices: identification store (rows) x evaluation store (columns), mean self
effect (top) and gap (bottom) per method."""

from __future__ import annotations

from collections.abc import Callable, Mapping
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

__all__ = ["transfer_figure"]


def transfer_figure(title: str, entry: Mapping[str, Any], label: Callable[[str], str]
                    ) -> Figure:
    """``entry``: a transfer entry of the summary; ``label`` names a store on the axes."""
    stores, methods = entry["stores"], entry["methods"]
    matrices: dict[str, list[np.ndarray]] = {"self": [], "gap": []}
    for method in methods:
        for key in matrices:
            m = np.full((len(stores), len(stores)), np.nan)
            for c in entry["cells"]:
                if c["method"] == method and c[key] is not None:
                    m[stores.index(c["ident"]), stores.index(c["eval"])] = c[key]
            matrices[key].append(m)
    vmax = symmetric_limit(*matrices["self"], *matrices["gap"])
    names = [label(s) for s in stores]
    names_w = label_width(names)
    cell_w, cell_h = 0.75, 0.4
    left, gap, right = names_w + 0.45, names_w + 0.25, 1.3
    bottom, top, vgap = 0.5 * names_w + 0.55, 0.75, 0.5 * names_w + 0.95
    fig = new_figure(left + right + len(methods) * len(stores) * cell_w
                     + (len(methods) - 1) * gap,
                     bottom + top + vgap + 2 * len(stores) * cell_h, title)
    axes = grid(fig, 2, len(methods), left=left, right=right, bottom=bottom, top=top,
                hgap=gap, vgap=vgap)
    image = None
    for row, key in enumerate(("self", "gap")):
        for col, method in enumerate(methods):
            ax = axes[row][col]
            image = annotated_heatmap(ax, matrices[key][col], names, names, vmax=vmax)
            ax.set_title(f"{method}: mean {key}", fontsize=10)
            ax.set_xlabel("evaluation store")
            if col == 0:
                ax.set_ylabel("identification store")
    colorbar(fig, image, "points", right=1.0, bottom=bottom, top=top)
    return fig
