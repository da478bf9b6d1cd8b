"""The verdict: is there a specific deactivation signature, stated plainly, by a fixed rule.

The rule is written once here and shown in the report as it is applied; it is not tuned to
any result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["FACTOR", "RULE", "judge", "verdict_text"]

FACTOR = 3.0

RULE = (
    "From the deactivation results at one mask fraction: self = mean over emotions of the "
    "accuracy change of the mask's own emotion (the heatmap diagonal); cross = mean absolute "
    "off-diagonal change; random = mean absolute change of the RND row (random masks of the "
    "same size, recalls averaged over draws). All in points, with 95% percentile intervals "
    "from a stratified paired bootstrap over test items (items resampled within each gold "
    "emotion, the same resample for the baseline and every condition; seeded). A specific "
    f"signature is present if and only if self < 0, its interval excludes 0, "
    f"|self| >= {FACTOR:g} x cross and |self| >= {FACTOR:g} x random."
)


def _fmt(value: float, ci: Sequence[float] | None) -> str:
    text = f"{value:+.2f}"
    return text + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci is not None else "")


def judge(self_: float, self_ci: Sequence[float] | None, cross: float,
          rnd: float | None) -> tuple[bool, list[str]]:
    """Whether the signature is present, and the parts of the rule that fail."""
    failed = []
    if not self_ < 0:
        failed.append(f"self ({self_:+.2f}) is not negative")
    elif self_ci is None or not self_ci[1] < 0:
        bounds = "no interval" if self_ci is None else \
            f"[{self_ci[0]:+.2f}, {self_ci[1]:+.2f}]"
        failed.append(f"the interval of self ({bounds}) does not exclude 0")
    if math.isnan(cross) or abs(self_) < FACTOR * cross:
        failed.append(f"|self| ({abs(self_):.2f}) is below {FACTOR:g} x cross "
                      f"({FACTOR * cross:.2f})")
    if rnd is None or math.isnan(rnd):
        failed.append("there is no random control to compare with")
    elif abs(self_) < FACTOR * rnd:
        failed.append(f"|self| ({abs(self_):.2f}) is below {FACTOR:g} x random "
                      f"({FACTOR * rnd:.2f})")
    return not failed, failed


def verdict_text(entry: dict[str, Any]) -> str:
    """One sentence for a verdict entry of the summary."""
    where = f"{entry['method']} at fraction {100 * entry['fraction']:.3g}%" + (
        f" (pool {entry['pool_size']} per emotion)" if entry.get("pool_size") else "")
    numbers = (f"self {_fmt(entry['self'], entry['self_ci'])}, cross "
               f"{_fmt(entry['cross'], entry['cross_ci'])}, random "
               + (_fmt(entry['rnd'], entry['rnd_ci']) if entry["rnd"] is not None
                  else "none") + " points")
    if entry["present"]:
        return f"{where}: specific signature present ({numbers})."
    return f"{where}: no specific signature, because {'; '.join(entry['failed'])} ({numbers})."
