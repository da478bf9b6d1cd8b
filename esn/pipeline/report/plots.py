"""Shared figure style: standalone matplotlib figures (Agg, no pyplot state), one colour per
method, a diverging heatmap centred at 0 with the numbers in its cells; PNG (for the page)
and SVG (for papers) bytes out."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["Figure", "annotated_heatmap", "grid", "label_width", "method_color", "new_figure",
           "png", "svg", "symmetric_limit"]

Figure = Any  # matplotlib.figure.Figure, imported lazily
DIVERGING = "RdBu"  # negative red, positive blue
_METHOD_COLORS = {"lap": "#1f77b4", "lape": "#ff7f0e", "mad": "#2ca02c", "conact": "#d62728",
                  "rnd": "#7f7f7f"}
_OTHER_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
DPI = 100


def method_color(method: str) -> str:
    if method in _METHOD_COLORS:
        return _METHOD_COLORS[method]
    return _OTHER_COLORS[sum(map(ord, method)) % len(_OTHER_COLORS)]


def new_figure(width: float, height: float, title: str = "") -> Figure:
    """A figure of ``width`` x ``height`` inches that owns an Agg canvas (no global
    backend switch, nothing kept alive by pyplot). Axes are placed by ``grid`` at fixed
    margins in inches: an automatic layout engine costs a second drawing pass per figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    if title:
        fig.suptitle(title, y=1 - 0.08 / height, va="top", fontsize=11)
    return fig


def label_width(labels: Sequence[str], fontsize: float = 10) -> float:
    """Rough width in inches of the longest label (DejaVu Sans averages 0.6 em a glyph)."""
    return 0.6 * fontsize / 72 * max((len(str(s)) for s in labels), default=1)


def grid(fig: Figure, n_rows: int, n_cols: int, *, left: float, right: float, bottom: float,
         top: float, hgap: float, vgap: float) -> list[list[Any]]:
    """``n_rows`` x ``n_cols`` axes filling the figure inside margins and gaps (inches)."""
    width, height = fig.get_size_inches()
    w = (width - left - right - hgap * (n_cols - 1)) / n_cols
    h = (height - bottom - top - vgap * (n_rows - 1)) / n_rows
    return [[fig.add_axes(((left + c * (w + hgap)) / width,
                           (height - top - (r + 1) * h - r * vgap) / height,
                           w / width, h / height)) for c in range(n_cols)]
            for r in range(n_rows)]


def colorbar(fig: Figure, image: Any, label: str, *, right: float, bottom: float,
             top: float) -> None:
    """A colour bar in the right margin: ``right`` inches from the figure's right edge."""
    width, height = fig.get_size_inches()
    ax = fig.add_axes(((width - right) / width, bottom / height, 0.14 / width,
                       (height - top - bottom) / height))
    fig.colorbar(image, cax=ax, label=label)


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def svg(fig: Figure) -> bytes:
    """The figure as SVG (vector, for papers); its text stays text, not paths."""
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "esn"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def symmetric_limit(*matrices: np.ndarray, floor: float = 1.0) -> float:
    """The colour limit of a diverging scale shared by ``matrices`` (at least ``floor``)."""
    values = [np.abs(m[np.isfinite(m)]).max() for m in matrices if np.isfinite(m).any()]
    return max([floor, *values])


def annotated_heatmap(ax: Any, matrix: np.ndarray, rows: Sequence[str],
                      columns: Sequence[str], *, vmax: float, fmt: str = "{:+.1f}",
                      fontsize: float = 9) -> Any:
    """Draw ``matrix`` with a diverging colour map centred at 0, each cell's number written
    in it (NaN cells grey with a dash); returns the image for a colour bar."""
    import matplotlib

    shown = np.ma.masked_invalid(np.asarray(matrix, dtype=float))
    cmap = matplotlib.colormaps[DIVERGING].with_extremes(bad="#dddddd")
    image = ax.imshow(shown, cmap=cmap, vmin=-vmax, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(columns)), labels=list(columns), rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), labels=list(rows))
    for i in range(len(rows)):
        for j in range(len(columns)):
            value = float(matrix[i][j])
            if not np.isfinite(value):
                ax.text(j, i, "–", ha="center", va="center", fontsize=fontsize)
                continue
            dark = abs(value) > 0.6 * vmax
            ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=fontsize,
                    color="white" if dark else "black")
    return image
