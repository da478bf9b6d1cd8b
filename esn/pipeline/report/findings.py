"""The findings the report opens with: per model, a few sentences with their numbers.

Per model, from its first study that has deactivation results on the identification store:

- baseline: UAR (mean recall over emotions, %) of that results folder with a 95% interval
  from the same stratified paired bootstrap as every effect;
- the best method: the deactivation verdict with a specific signature and the most negative
  self effect; without one, the verdict closest to one, whose self effect is most negative
  once its collateral is added (self + cross, cross the mean |off-diagonal| change: a mask
  that breaks every emotion alike scores near 0); its self, cross and random effects with
  intervals, and the verdict in one sentence;
- steering: the best method's self effect and the share of answers naming the mask's
  emotion at the largest alpha (the study's steering curve);
- transfer: the best method's self effect and gap where neurons identified on one store
  are evaluated on another;
- a caveat when the smallest emotion has fewer than ``FEW_ITEMS`` test items.

Every number is taken from the study's entries (``summary.json`` has both), so the findings
say nothing the sections below do not show.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from esn.pipeline.report.effects import Resamples, interval
from esn.pipeline.report.results import ResultsFolder

__all__ = ["FEW_ITEMS", "findings", "findings_text"]

#: Below this many test items in an emotion, the findings warn that intervals are wide.
FEW_ITEMS = 30


def _pm(value: float | None, ci: Sequence[float] | None = None) -> str:
    if value is None:
        return "–"
    text = f"{value:+.1f}"
    return text + (f" [{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci else "")


def _best(verdicts: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    if not verdicts:
        return None
    present = [v for v in verdicts if v["present"]]
    if present:
        return min(present, key=lambda v: v["self"])
    return min(verdicts, key=lambda v: v["self"] + v["cross"])


def findings(studies: Sequence[Mapping[str, Any]], transfer: Sequence[Mapping[str, Any]],
             folders: Mapping[str, ResultsFolder], resamples: Mapping[str, Resamples], *,
             label: Callable[[str], str] | None = None) -> list[dict[str, Any]]:
    """One entry per model, in the order the studies come (``label`` names stores in the
    sentences, see ``findings_text``)."""
    out = []
    for model in dict.fromkeys(s["model"] for s in studies):
        mine = [s for s in studies if s["model"] == model]
        study = next((s for s in mine if s["verdicts"]), mine[0])
        best = _best(study["verdicts"])
        rid = best["results"] if best else study["results"][0]
        folder = folders[rid]
        entry: dict[str, Any] = {"model": model, "study": study["id"], "results": rid,
                                 **_baseline(folder, resamples[rid])}
        entry["best"] = None if best is None else {
            k: best[k] for k in ("results", "method", "fraction", "self", "self_ci", "cross",
                                 "cross_ci", "rnd", "rnd_ci", "present", "text")}
        method = best["method"] if best else None
        entry["steering"] = _steering(study, method)
        entry["transfer"] = _transfer(transfer, model, method)
        few = entry["min_per_emotion"]
        entry["caveat"] = (f"{few} test items per emotion at the fewest: intervals are wide"
                           if few < FEW_ITEMS else None)
        entry["text"] = findings_text(entry, label)
        out.append(entry)
    return out


def _baseline(r: ResultsFolder, boot: Resamples) -> dict[str, Any]:
    base = r.baseline_index
    uar = 100.0 * float(np.nanmean(boot.point[base]))
    samples = 100.0 * np.nanmean(boot.boot[:, base, :], axis=-1)
    counts = [int((r.gold == e).sum()) for e in r.labels]
    return {"uar": uar, "uar_ci": interval(samples), "n_items": int(r.gold.size),
            "n_emotions": len(r.labels), "min_per_emotion": min(counts)}


def _steering(study: Mapping[str, Any], method: str | None) -> dict[str, Any] | None:
    points = [p for c in study["alpha_curves"] for p in c["points"]
              if method is None or p["method"] == method]
    if not points:
        return None
    top = max(points, key=lambda p: p["alpha"])
    return {k: top[k] for k in ("method", "alpha", "self", "target_share", "baseline_share",
                                "results")}


def _transfer(transfer: Sequence[Mapping[str, Any]], model: str, method: str | None
              ) -> list[dict[str, Any]]:
    out = []
    for t in transfer:
        if t["model"] != model or t["mode"] != "deactivate":
            continue
        for cell in t["cells"]:
            if cell["ident"] != cell["eval"] and (method is None or cell["method"] == method):
                out.append({"ident": cell["ident"], "eval": cell["eval"],
                            "method": cell["method"], "fraction": t["strength"],
                            "self": cell["self"], "gap": cell["gap"],
                            "results": cell["results"]})
    return out


def findings_text(entry: Mapping[str, Any], label: Callable[[str], str] | None = None
                  ) -> list[str]:
    """The entry's sentences (``label`` shortens store paths, default their last part)."""
    def short(store: str) -> str:
        return label(store) if label else store.rstrip("/").rsplit("/", 1)[-1]

    lines = [f"Baseline UAR {entry['uar']:.1f}%"
             + (f" [{entry['uar_ci'][0]:.1f}, {entry['uar_ci'][1]:.1f}]"
                if entry["uar_ci"] else "")
             + f" on {entry['n_items']} test items ({entry['n_emotions']} emotions; chance "
             f"{100 / entry['n_emotions']:.0f}%)."]
    best = entry["best"]
    if best is None:
        lines.append("No deactivation results on the identification store: no verdict.")
    else:
        where = f"{best['method']} at {100 * best['fraction']:.3g}% of the neurons"
        numbers = (f"own emotion {_pm(best['self'], best['self_ci'])} points, other emotions "
                   f"{best['cross']:.1f} (mean |change|), random masks "
                   + (f"{best['rnd']:.1f}" if best["rnd"] is not None else "–"))
        lines.append(f"Deactivating {where}: "
                     + ("a specific signature: " if best["present"]
                        else "no specific signature: ") + numbers + ".")
    steer = entry["steering"]
    if steer is not None:
        lines.append(f"Steering with {steer['method']} at alpha {steer['alpha']:g}: own "
                     f"emotion {_pm(steer['self'])} points; answers naming the steered "
                     f"emotion {steer['target_share']:.0f}% (baseline "
                     f"{steer['baseline_share']:.0f}%).")
    if entry["transfer"]:
        parts = [f"{short(t['ident'])} to {short(t['eval'])}: own emotion {_pm(t['self'])}, "
                 f"gap {_pm(t['gap'])}" for t in entry["transfer"]]
        lines.append(f"Transfer ({entry['transfer'][0]['method']}, neurons identified on one "
                     "store, evaluated on another): " + "; ".join(parts) + " points.")
    if entry["caveat"]:
        lines.append(f"Caveat: {entry['caveat']}.")
    return lines
