"""``esn report``: results folders in, one self-contained ``report.html``, its figures as
PNG files (``figures/``) and ``summary.json`` (every number shown) out.

``summary.json``::

    {"format": "esn-report", "schema_version": 1, "title", "versions",
     "n_boot", "seed", "rule": {"text", "factor", "level"},
     "results": [{"id": "r1", "path", "name", "study", "mode", "model", "store",
                  "eval_store", "transfer", "fraction", "pool_size", "strengths",
                  "n_items", "labels", "checks"}],
     "store_labels": {store: short name},
     "studies": [{"id": "s1", "model", "store", "corpus", "results",
                  "baseline": [{"results", "eval_store", "n_items", "recall": {emotion: %},
                                "uar"}],
                  "checks": [{"results", "name", "value", "ci", "unit", "text"}],
                  "heatmaps": [{"results", "mode", "strength", "method", "rows",
                                "columns", "delta", "figure"}],
                  "bars": [{"results", "mode", "strength", "method", "self", "self_ci",
                            "cross", "cross_ci", "gap", "gap_ci", "figure"}],
                  "verdicts": [{"results", "method", "fraction", "pool_size", "self",
                                "self_ci", "cross", "cross_ci", "rnd", "rnd_ci",
                                "present", "failed", "text"}],
                  "alpha_curves": [{"pool_size", "fraction", "figure", "points": [
                      {"method", "alpha", "self", "target_share", "baseline_share",
                       "results"}]}],
                  "fraction_curves": [{"pool_size", "figure", "points": [
                      {"method", "fraction", "self", "gap", "results"}]}],
                  "id_size_curves": [{"mode", "strength", "figure", "points": [
                      {"method", "pool_size", "self", "gap", "results"}]}],
                  "layers": [{"results", "also", "fraction", "pool_size", "n_layers",
                              "figure", "sets": [{"method", "emotion", "n", "counts",
                                                  "share"}]}]}],
     "transfer": [{"model", "mode", "strength", "stores", "methods", "figure",
                   "cells": [{"ident", "eval", "method", "self", "gap", "results"}]}],
     "figures": [{"file", "kind", "study", "caption"}]}

The same results and options give the same ``summary.json`` (the time of making is on the
page only). Effects are in points; ``strength`` is the mask fraction when deactivating and
alpha when steering; the random control appears as method ``rnd``. See ``effects`` and
``verdict`` for the definitions.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from esn.errors import RequestError
from esn.pipeline.report.bars import bars_figure
from esn.pipeline.report.curves import curve_figure
from esn.pipeline.report.effects import LEVEL, resample
from esn.pipeline.report.findings import findings
from esn.pipeline.report.heatmaps import grid_figure, heatmap_figure
from esn.pipeline.report.layers import layers_figure
from esn.pipeline.report.page import relative_paths, render_page
from esn.pipeline.report.plots import Figure, png, svg
from esn.pipeline.report.results import ResultsFolder, group_studies, read_results
from esn.pipeline.report.summary import study_numbers, transfer_numbers
from esn.pipeline.report.transfer import transfer_figure
from esn.pipeline.report.verdict import FACTOR, RULE
from esn.provenance import library_versions
from esn.stores.outputs import OutputKind, claim_output, has_json_marker

__all__ = ["REPORT_FORMAT", "REPORT_OUTPUT", "REPORT_VERSION", "build_report", "report_findings"]

REPORT_FORMAT = "esn-report"
REPORT_VERSION = 1
FIGURES = "figures"
#: A report folder is esn's when its ``summary.json`` has the report format; a rebuild
#: replaces ``report.html``, ``summary.json`` and ``figures/`` (and its own temporary
#: names), nothing else.
REPORT_OUTPUT = OutputKind(
    name="report", folder=True,
    recognise=has_json_marker("summary.json", "format", (REPORT_FORMAT,)),
    entries=("report.html", "summary.json", FIGURES, "report.html.*.partial",
             "summary.json.*.partial", f"{FIGURES}.*.partial"),
)


class _Figures:
    """Rendered figures in page order: their summary entries, PNG bytes (shown on the page)
    and the same figures as SVG (for papers), by file name."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.images: dict[str, bytes] = {}
        self.vectors: dict[str, bytes] = {}

    def add(self, study: str, kind: str, caption: str, draw: Callable[..., Figure],
            *args: Any, **kwargs: Any) -> str:
        n = sum(e["kind"] == kind and e["study"] == study for e in self.entries)
        stem = f"{study or 'all'}_{kind}_{n + 1}"
        fig = draw(*args, **kwargs)
        self.images[f"{stem}.png"] = png(fig)
        self.vectors[f"{stem}.svg"] = svg(fig)
        self.entries.append({"file": f"{stem}.png", "vector": f"{stem}.svg", "kind": kind,
                             "study": study, "caption": caption})
        return f"{stem}.png"


def _strength(mode: str, strength: float) -> str:
    return f"fraction {100 * strength:.3g}%" if mode == "deactivate" else f"alpha {strength:g}"


def _store_labels(folders: Sequence[ResultsFolder]) -> dict[str, str]:
    stores = list(dict.fromkeys(s for r in folders for s in (r.store, r.eval_store)))
    short = {s: os.path.basename(s.rstrip("/")) or s for s in stores}
    clashes = {v for v in short.values() if list(short.values()).count(v) > 1}
    return {s: (s if short[s] in clashes else short[s]) for s in stores}


def _draw_study(s: dict[str, Any], folders: dict[str, ResultsFolder],
                figures: _Figures) -> None:
    sid = s["id"]

    def name(rid: str) -> str:
        return f"{rid} ({folders[rid].name})"

    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for h in s["heatmaps"]:
        groups.setdefault((h["results"], h["strength"]), []).append(h)
    for (rid, strength), panels in groups.items():
        r = folders[rid]
        what = f"{name(rid)}: {r.mode} at {_strength(r.mode, strength)}" + (
            f", evaluated on {r.eval_store}" if r.transfer else "")
        file = figures.add(sid, "heatmap", f"Accuracy change (points), {what}; rows: mask "
                           "source emotion (rnd: random masks), columns: evaluated emotion.",
                           heatmap_figure, what, panels)
        for h in panels:
            h["figure"] = file
        bars = [b for b in s["bars"] if b["results"] == rid and b["strength"] == strength]
        file = figures.add(sid, "bars", f"Self (mean diagonal) and cross (mean off-diagonal) "
                           f"effect per method with 95% bootstrap intervals, {what}.",
                           bars_figure, what, bars)
        for b in bars:
            b["figure"] = file
    for c in s["alpha_curves"]:
        what = f"pool {c['pool_size']} per emotion, sets at {100 * (c['fraction'] or 0):.3g}%"
        base = next(p["baseline_share"] for p in c["points"])
        c["figure"] = figures.add(
            sid, "alpha", f"Steering dose-response ({what}): mean self effect, and answers "
            "naming the mask's emotion among all items (rnd: any emotion, averaged), against "
            "alpha.", curve_figure, f"steering, {what}", c["points"], "alpha", "alpha",
            [("self", "mean self effect (points)"),
             ("target_share", "answers naming the target (% of items)")],
            reference={"target_share": (base, "baseline")})
    for c in s["fraction_curves"]:
        what = f"pool {c['pool_size']} per emotion"
        c["figure"] = figures.add(
            sid, "fraction", f"Deactivation dose-response ({what}): mean self effect and gap "
            "against the deactivated fraction of all decoder neurons (rnd: mean change).",
            curve_figure, f"deactivation, {what}", c["points"], "fraction",
            "mask fraction (%)",
            [("self", "mean self effect (points)"), ("gap", "self - cross (points)")],
            x_scale=100.0)
    for c in s["id_size_curves"]:
        what = f"{c['mode']} at {_strength(c['mode'], c['strength'])}"
        c["figure"] = figures.add(
            sid, "id_size", f"Identification-pool size ({what}): mean self effect and gap "
            "against the pool size per emotion.",
            curve_figure, what, c["points"], "pool_size",
            "identification pool per emotion (items)",
            [("self", "mean self effect (points)"), ("gap", "self - cross (points)")])
    for entry in s["layers"]:
        rids = [entry["results"], *entry["also"]]
        what = (f"sets at {100 * entry['fraction']:.3g}%, pool {entry['pool_size']} per "
                f"emotion, used by {', '.join(rids)}")
        entry["figure"] = figures.add(
            sid, "layers", f"Share of each selected set per decoder layer ({what}); the "
            "legend gives each set's size.", layers_figure, what, entry)


def build_report(results: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
                 title: str | None = None, n_boot: int = 1000, seed: int = 0,
                 overwrite: bool = False) -> Path:
    """Write ``report.html``, ``figures/*.png`` and ``summary.json`` into ``out`` from the
    results folders of ``esn intervene``; returns the HTML path.

    ``out`` is a new path, an empty folder or an earlier esn report, which is remade from
    the results (other files in it stay; ``overwrite`` is accepted, as by every writer, but
    an esn report needs none). Anything else is refused (``OutputRefusedError``), checked
    before any results are read."""
    if not results:
        raise RequestError("no results folders given")
    if n_boot < 1:
        raise RequestError(f"n_boot must be at least 1, got {n_boot}")
    out = Path(out)
    _check_out(out)
    paths = [Path(p) for p in results]
    repeated = {p for p in paths if paths.count(p) > 1}
    if repeated:
        raise RequestError(f"results folder given twice: {sorted(map(str, repeated))[0]}")
    folders = [read_results(p, id=f"r{i + 1}") for i, p in enumerate(paths)]
    by_id = {r.id: r for r in folders}
    resamples = {r.id: resample(r, n_boot=n_boot, seed=seed) for r in folders}
    labels = _store_labels(folders)
    figures = _Figures()
    studies = []
    for study in group_studies(folders):
        numbers = study_numbers(study, resamples)
        _draw_study(numbers, by_id, figures)
        studies.append(numbers)
    transfer = transfer_numbers(folders, resamples)
    for t in transfer:
        what = f"{t['model']}, {t['mode']} at {_strength(t['mode'], t['strength'])}"
        t["figure"] = figures.add(
            "", "transfer", f"Transfer ({what}): neurons identified on the row's store, "
            "evaluated on the column's store; mean self effect and gap per method (points).",
            transfer_figure, f"transfer, {what}", t, labels.__getitem__)
    found = findings(studies, transfer, by_id, resamples,
                     label=lambda store: labels.get(store, store))
    for entry in found:
        _draw_model(entry, studies, by_id, labels, figures)
    study_of = {rid: s["id"] for s in studies for rid in s["results"]}
    summary = {
        "format": REPORT_FORMAT, "schema_version": REPORT_VERSION,
        "title": title or "esn report",
        "versions": library_versions(), "n_boot": n_boot, "seed": seed,
        "rule": {"text": RULE, "factor": FACTOR, "level": LEVEL},
        "results": [{"id": r.id, "path": str(r.path), "name": r.name, "study": study_of[r.id],
                     "mode": r.mode, "model": r.model, "store": r.store,
                     "eval_store": r.eval_store, "transfer": r.transfer,
                     "fraction": r.sets_fraction, "pool_size": r.pool_size,
                     "strengths": r.strengths, "n_items": int(r.gold.size),
                     "labels": list(r.labels), "checks": bool(r.checks)} for r in folders],
        "store_labels": labels, "findings": found, "studies": studies,
        "transfer": transfer, "figures": figures.entries,
    }
    created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    page = render_page(summary, figures.images, created=created,
                       base=out.resolve().parent)
    _write(out, summary, page, {**figures.images, **figures.vectors})
    return out / "report.html"


def report_findings(out: str | os.PathLike[str]) -> list[str]:
    """The findings of a written report (its ``summary.json``), as lines for a terminal:
    per model its name, then its sentences."""
    summary = json.loads((Path(out) / "summary.json").read_text(encoding="utf-8"))
    rel = relative_paths(Path(out).resolve().parent)
    lines = []
    for entry in summary.get("findings", []):
        lines.append(f"{rel(entry['model'])}:")
        lines.extend(f"  {line}" for line in entry["text"])
    return lines


def _draw_model(entry: dict[str, Any], studies: Sequence[dict[str, Any]],
                folders: dict[str, ResultsFolder], labels: dict[str, str],
                figures: _Figures) -> None:
    """The model's heatmap grid (one row per study, at the best method's fraction or the
    study's first) and its best method's steering sweep (one panel per alpha)."""
    mine = [s for s in studies if s["model"] == entry["model"]]
    best = entry["best"]
    rows = []
    for s in mine:
        panels = [h for h in s["heatmaps"] if h["mode"] == "deactivate"
                  and not folders[h["results"]].transfer]
        if not panels:
            continue
        strengths = list(dict.fromkeys(h["strength"] for h in panels))
        strength = best["fraction"] if best and best["fraction"] in strengths else strengths[0]
        chosen = [h for h in panels if h["strength"] == strength]
        first = chosen[0]["results"]
        rows.append((f"{labels.get(s['store'], s['store'])}, {100 * strength:.3g}%",
                     [h for h in chosen if h["results"] == first]))
    if rows:
        entry["grid"] = figures.add(
            "", "grid", f"{entry['model']}: accuracy change (points) when the neurons of the "
            "row's mask emotion are deactivated, per evaluated emotion; one row per "
            "identification store (at the deactivated fraction shown), one column per "
            "method, RND the random masks of the same size; one colour scale.",
            grid_figure, f"{entry['model']}: deactivation", rows)
    method = best["method"] if best else None
    store = next(s["store"] for s in mine if s["id"] == entry["study"])
    steer = [h for s in mine if s["id"] == entry["study"] for h in s["heatmaps"]
             if h["mode"] == "steer" and h["method"] == method
             and not folders[h["results"]].transfer]
    if len(steer) >= 2:
        first = steer[0]["results"]
        panels = [{**h, "method": f"alpha {h['strength']:g}"}
                  for h in sorted(steer, key=lambda h: h["strength"]) if h["results"] == first]
        entry["alpha_grid"] = figures.add(
            "", "alpha_grid", f"{entry['model']}: accuracy change (points) when the neurons "
            f"of {method} are amplified by alpha (one panel per alpha); rows: the steered "
            "emotion (RND: random neurons), columns: evaluated emotion; one colour scale.",
            grid_figure, f"{entry['model']}: steering with {method}",
            [(labels.get(store, store), panels)])


def _check_out(out: Path) -> None:
    if (out / "results.zarr").exists():
        raise RequestError(f"{out} is a results folder; write the report elsewhere")
    claim_output(out, REPORT_OUTPUT, resume=True)  # an esn report is always remade


def _write(out: Path, summary: dict[str, Any], page: str, images: dict[str, bytes]) -> None:
    """Figures, then ``summary.json``, then ``report.html``, each complete before it gets
    its name, so a report that looks finished is."""
    out.mkdir(parents=True, exist_ok=True)
    tag = f".{os.getpid()}.partial"
    staging = out / f"{FIGURES}{tag}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for file, data in images.items():
        (staging / file).write_bytes(data)
    shutil.rmtree(out / FIGURES, ignore_errors=True)
    staging.rename(out / FIGURES)
    for name, text in (("summary.json", json.dumps(summary, indent=1, allow_nan=False)),
                       ("report.html", page)):
        tmp = out / f"{name}{tag}"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out / name)
