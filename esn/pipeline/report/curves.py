"""Line plots of a summary's curve points: dose-response over alpha or mask fraction, and
effects against the identification-pool size; one line per method, the random control
dashed grey."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from esn.pipeline.report.plots import Figure, grid, method_color, new_figure

__all__ = ["curve_figure"]


def curve_figure(title: str, points: Sequence[Mapping[str, Any]], x: str, x_label: str,
                 panels: Sequence[tuple[str, str]], *, x_scale: float = 1.0,
                 reference: Mapping[str, tuple[float, str]] | None = None) -> Figure:
    """``points``: a curve's points (each with ``method``, ``x`` and the panel keys);
    ``panels``: (key, y label) per panel; ``reference``: a horizontal line per panel key."""
    from matplotlib.ticker import MaxNLocator

    fig = new_figure(4.2 * len(panels) + 0.6, 3.4, title)
    axes = grid(fig, 1, len(panels), left=0.8, right=0.2, bottom=0.6, top=0.45, hgap=0.9,
                vgap=0)[0]
    methods = list(dict.fromkeys(p["method"] for p in points))
    for ax, (key, y_label) in zip(axes, panels, strict=True):
        for method in methods:
            mine = sorted((p[x] * x_scale, p[key]) for p in points
                          if p["method"] == method and p.get(key) is not None)
            if not mine:
                continue
            xs, ys = zip(*mine, strict=True)
            ax.plot(xs, ys, marker="o", color=method_color(method), label=method,
                    linestyle="--" if method == "rnd" else "-")
        if reference and key in reference:
            value, label = reference[key]
            ax.axhline(value, color="black", linestyle=":", linewidth=1, label=label)
        ax.axhline(0, color="#999999", linewidth=0.6)
        if all(float(p[x]).is_integer() for p in points):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return fig
