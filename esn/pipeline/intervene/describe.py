"""The self/cross table that ``esn intervene`` prints from a results folder."""

from __future__ import annotations

import json
from pathlib import Path

from esn.errors import StoreNotFoundError

__all__ = ["format_results"]


def format_results(folder: Path) -> str:
    """Per method and strength: each mask row's self, mean cross and gap (points, 95% CI)."""
    path = folder / "summary.json"
    if not path.is_file():
        raise StoreNotFoundError(f"{folder} holds no intervention results (no summary.json)")
    summary = json.loads(path.read_text())
    lines = [f"results   {folder}", f"mode      {summary['mode']}", ""]
    for table in summary["tables"]:
        lines.append(f"{table['method']} at {table['strength']:g}")
        lines.append(f"  {'mask':<12} {'self':>8} {'cross':>8} {'gap':>8}   gap 95% CI"
                     f"   {'UAR':>7}")
        ci = table["ci"]["gap"]
        for i, row in enumerate(table["rows"]):
            lines.append(
                f"  {row:<12} {table['self'][i]:8.2f} {table['cross'][i]:8.2f} "
                f"{table['gap'][i]:8.2f}   [{ci[0][i]:6.2f}, {ci[1][i]:6.2f}]"
                f"   {table['uar_change'][i]:7.2f}")
        lines.append("")
    for row in summary.get("label_agnostic", []):
        cells = ", ".join(f"{c} {d:+.1f}" for c, d in zip(row["columns"], row["delta"],
                                                          strict=True))
        lines.append(f"{row['condition']}: {cells}; UAR {row['uar_change']:+.2f}")
    if summary.get("label_agnostic"):
        lines.append("")
    lines.append(f"per-item answers: {folder / 'answers.csv'}")
    return "\n".join(lines)
