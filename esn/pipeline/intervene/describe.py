"""The self/cross table that ``esn intervene`` prints from a results folder."""

from __future__ import annotations

import json
from pathlib import Path

from esn.errors import StoreNotFoundError

__all__ = ["format_agreement", "format_results"]


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
    lines.extend(format_agreement(summary))
    lines.append(f"per-item answers: {folder / 'answers.csv'}")
    return "\n".join(lines)


def format_agreement(summary: dict) -> list[str]:
    """The baseline line: unintervened answers against those stored at extraction, with the
    items that differ (at most 10 shown; all are in summary.json), and a forced model."""
    lines = []
    context = summary.get("context", {})
    if context.get("forced_model"):
        lines.append("model     forced: " + "; ".join(context.get("model_differences", [])))
    agreement = summary.get("baseline_agreement")
    if agreement:
        lines.append(f"baseline  {agreement['agree']}/{agreement['n']} unintervened answers "
                     f"equal those stored at extraction ({100 * agreement['fraction']:.1f}%)")
        for row in agreement["differing"][:10]:
            lines.append(f"  differs  {row['item']}: stored {row['stored'] or '-'!s} "
                         f"({row['stored_raw']!r}), now {row['now'] or '-'!s} "
                         f"({row['now_raw']!r})")
        more = len(agreement["differing"]) - 10
        if more > 0:
            lines.append(f"  ... and {more} more (summary.json: baseline_agreement)")
        lines.append("")
    return lines
