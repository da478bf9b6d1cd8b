"""Every number the report shows, per study and per model, as plain JSON-ready dicts.

The figures and the page draw only from these dicts, so ``summary.json`` holds every number
that is shown. Percentages and accuracy changes are in points; fractions are of all decoder
neurons (0.005 = 0.5%).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from esn.pipeline.report.effects import (
    RANDOM,
    EffectTable,
    Resamples,
    effect_tables,
    interval,
    table_delta,
    table_summary,
    target_share,
)
from esn.pipeline.report.results import ResultsFolder, Study
from esn.pipeline.report.verdict import judge, verdict_text

__all__ = ["study_numbers", "transfer_numbers"]


def _num(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _tables(r: ResultsFolder, boot: Resamples) -> Iterable[tuple[EffectTable, np.ndarray,
                                                                  dict[str, np.ndarray],
                                                                  dict[str, np.ndarray]]]:
    """Per table: delta (rows, columns), point summaries and bootstrap summaries."""
    for table in effect_tables(r):
        delta = table_delta(boot.point, r.baseline_index, table)
        samples = table_delta(boot.boot, r.baseline_index, table)
        yield table, delta, table_summary(delta, table), table_summary(samples, table)


def baseline_rows(study: Study) -> list[dict[str, Any]]:
    out = []
    for r in study.results:
        base = r.parsed[r.baseline_index]
        recall = {}
        for e in r.labels:
            mine = r.gold == e
            recall[e] = _num(100.0 * (base[mine] == e).mean()) if mine.any() else None
        values = [v for v in recall.values() if v is not None]
        out.append({"results": r.id, "eval_store": r.eval_store, "n_items": int(r.gold.size),
                    "recall": recall, "uar": _num(np.mean(values)) if values else None})
    return out


def study_numbers(study: Study, resamples: Mapping[str, Resamples]) -> dict[str, Any]:
    """The numbers of one study's section (see ``esn.pipeline.report.build``)."""
    heatmaps: list[dict[str, Any]] = []
    bars: list[dict[str, Any]] = []
    verdicts: list[dict[str, Any]] = []
    points: dict[str, list[dict[str, Any]]] = {"alpha": [], "fraction": [], "id_size": []}
    for r in study.results:
        rnd_done: set[float] = set()
        for table, delta, point, sample in _tables(r, resamples[r.id]):
            heatmaps.append({"results": r.id, "mode": r.mode, "strength": table.strength,
                             "method": table.method, "rows": list(table.rows),
                             "columns": list(table.columns),
                             "delta": [[_num(v) for v in row] for row in delta]})
            has_rnd = RANDOM in table.rows
            entry = {"results": r.id, "mode": r.mode, "strength": table.strength,
                     "method": table.method}
            for key in ("self", "cross", "gap"):
                entry[key] = _num(point[key])
                entry[f"{key}_ci"] = interval(sample[key])
            bars.append(entry)
            if has_rnd and table.strength not in rnd_done:
                rnd_done.add(table.strength)
                bars.append({"results": r.id, "mode": r.mode, "strength": table.strength,
                             "method": RANDOM, "self": _num(point["rnd"]),
                             "self_ci": interval(sample["rnd"]), "cross": _num(point["rnd"]),
                             "cross_ci": interval(sample["rnd"]), "gap": None,
                             "gap_ci": None})
            if r.transfer:
                continue
            if r.mode == "deactivate":
                verdicts.append(_verdict(r, table, point, sample))
            _curve_points(points, r, table, point)
    order = {r.id: i for i, r in enumerate(study.results)}
    bars.sort(key=lambda b: (order[b["results"]], b["strength"], b["method"] == RANDOM))
    return {
        "id": study.id, "model": study.model, "store": study.store, "corpus": study.corpus,
        "results": [r.id for r in study.results],
        "baseline": baseline_rows(study),
        "checks": [{"results": r.id, **c} for r in study.results for c in r.checks],
        "heatmaps": heatmaps, "bars": bars, "verdicts": verdicts,
        "alpha_curves": _curves(points["alpha"], ("pool_size", "fraction"), "alpha"),
        "fraction_curves": _curves(points["fraction"], ("pool_size",), "fraction"),
        "id_size_curves": _curves(points["id_size"], ("mode", "strength"), "pool_size"),
        "layers": layer_numbers(study),
    }


def _verdict(r: ResultsFolder, table: EffectTable, point: Mapping[str, np.ndarray],
             sample: Mapping[str, np.ndarray]) -> dict[str, Any]:
    self_, cross = float(point["self"]), float(point["cross_abs"])
    rnd = _num(point["rnd_abs"])
    self_ci = interval(sample["self"])
    present, failed = judge(self_, self_ci, cross, rnd)
    entry = {"results": r.id, "method": table.method, "fraction": table.strength,
             "pool_size": r.pool_size, "self": self_, "self_ci": self_ci, "cross": cross,
             "cross_ci": interval(sample["cross_abs"]), "rnd": rnd,
             "rnd_ci": interval(sample["rnd_abs"]) if rnd is not None else None,
             "present": present, "failed": failed}
    entry["text"] = verdict_text(entry)
    return entry


def _curve_points(points: dict[str, list[dict[str, Any]]], r: ResultsFolder,
                  table: EffectTable, point: Mapping[str, np.ndarray]) -> None:
    """The table's points on the dose-response and identification-size curves (the random
    control as method ``rnd``, once per results folder and strength)."""
    rows = [(table.method, _num(point["self"]), _num(point["gap"]))]
    if RANDOM in table.rows and not any(
            p["results"] == r.id and p["method"] == RANDOM and p["x"] == table.strength
            for p in points["alpha" if r.mode == "steer" else "fraction"]):
        rows.append((RANDOM, _num(point["rnd"]), None))
    for method, self_, gap in rows:
        common = {"method": method, "self": self_, "results": r.id}
        if r.mode == "steer":
            if method == RANDOM:
                idx = list(table.members[table.rows.index(RANDOM)])
                share = float(np.mean([target_share(r, idx, [e] * len(idx))
                                       for e in r.labels]))
            else:
                idx = [m[0] for m, row in zip(table.members, table.rows, strict=True)
                       if row != RANDOM]
                share = target_share(r, idx, [row for row in table.rows if row != RANDOM])
            base = np.mean([target_share(r, [r.baseline_index], [e]) for e in r.labels])
            points["alpha"].append({**common, "x": table.strength, "target_share": _num(share),
                                    "baseline_share": _num(base), "pool_size": r.pool_size,
                                    "fraction": r.sets_fraction})
        else:
            points["fraction"].append({**common, "x": table.strength, "gap": gap,
                                       "pool_size": r.pool_size})
        if r.pool_size is not None:
            points["id_size"].append({**common, "x": r.pool_size, "gap": gap, "mode": r.mode,
                                      "strength": table.strength})


def _curves(points: Sequence[dict[str, Any]], keys: Sequence[str], x_name: str
            ) -> list[dict[str, Any]]:
    """Points grouped by ``keys``; a group is a curve when it has two x values or more.
    A repeated (method, x) in a group keeps its first point."""
    groups: dict[tuple[Any, ...], dict[tuple[str, float], dict[str, Any]]] = {}
    for p in points:
        group = groups.setdefault(tuple(p[k] for k in keys), {})
        group.setdefault((p["method"], p["x"]), p)
    out = []
    for key, members in groups.items():
        if len({x for _, x in members}) < 2:
            continue
        rows = []
        for p in sorted(members.values(), key=lambda p: (p["method"] == RANDOM, p["x"])):
            row = {k: v for k, v in p.items() if k not in (*keys, "x")}
            row[x_name] = p["x"]
            rows.append(row)
        out.append({**dict(zip(keys, key, strict=True)), "points": rows})
    return out


def layer_numbers(study: Study) -> list[dict[str, Any]]:
    """Per distinct neuron-set file of the study: how many of each set's neurons lie in each
    layer (counts, and shares in percent of the set)."""
    out: list[dict[str, Any]] = []
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in study.results:
        if r.sets is None:
            continue
        key = (r.sets.fraction, r.sets.store.get("fingerprint"), r.sets.created,
               tuple(sorted(r.sets.methods)))
        if key in seen:
            seen[key]["also"].append(r.id)
            continue
        sets = []
        for method, ms in r.sets.methods.items():
            for emotion in r.sets.emotions:
                pairs = ms.sets.get(emotion, ())
                layers = np.array([layer for layer, _ in pairs], dtype=int)
                counts = np.bincount(layers, minlength=r.sets.n_layers)
                share = 100.0 * counts / max(len(pairs), 1)
                sets.append({"method": method, "emotion": emotion, "n": len(pairs),
                             "counts": counts.tolist(), "share": share.tolist()})
        entry = {"results": r.id, "also": [], "fraction": r.sets.fraction,
                 "pool_size": r.pool_size, "n_layers": r.sets.n_layers, "sets": sets}
        seen[key] = entry
        out.append(entry)
    return out


def transfer_numbers(results: Sequence[ResultsFolder], resamples: Mapping[str, Resamples]
                     ) -> list[dict[str, Any]]:
    """Identification store x evaluation store matrices of mean self effect and gap, per
    model, mode and strength, where the model has a transfer result. Where several results
    fill one cell, the one with the largest identification pool is used (the first given
    among equals)."""
    out = []
    for model in dict.fromkeys(r.model for r in results):
        mine = [r for r in results if r.model == model]
        if not any(r.transfer for r in mine):
            continue
        cells: dict[tuple[str, float], dict[tuple[str, str, str], dict[str, Any]]] = {}
        order = sorted(range(len(mine)), key=lambda i: (-(mine[i].pool_size or 0), i))
        for r in (mine[i] for i in order):
            for table, _, point, _ in _tables(r, resamples[r.id]):
                group = cells.setdefault((r.mode, table.strength), {})
                group.setdefault((r.store, r.eval_store, table.method), {
                    "ident": r.store, "eval": r.eval_store, "method": table.method,
                    "self": _num(point["self"]), "gap": _num(point["gap"]), "results": r.id})
        for (mode, strength), group in cells.items():
            if not any(c["ident"] != c["eval"] for c in group.values()):
                continue
            stores = list(dict.fromkeys(s for c in group.values()
                                        for s in (c["ident"], c["eval"])))
            out.append({"model": model, "mode": mode, "strength": strength, "stores": stores,
                        "methods": list(dict.fromkeys(c["method"] for c in group.values())),
                        "cells": list(group.values())})
    return out
