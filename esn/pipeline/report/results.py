"""Reading ``esn intervene`` results folders for the report, and grouping them into studies.

A folder must hold ``results.zarr`` (every answer, condition x item); ``summary.json`` (its
``context`` block places the folder in a sweep), ``neuron_sets.json`` (the applied sets) and
``checks.json`` (facts measured by the caller) are optional. A study is all results of one
model whose neurons were identified on one store.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from esn.errors import EsnError, RequestError
from esn.pipeline.intervene.conditions import BASELINE
from esn.schemas.neuron_sets import NeuronSets

__all__ = ["ResultsFolder", "Study", "group_studies", "read_checks", "read_results"]

RESULTS_FORMAT = "esn-intervention-results"  # esn.pipeline.intervene.run writes these
RESULTS_VERSION = 1


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResultsFolder:
    """One results folder, its answers in memory: ``parsed`` is ``(condition, item)``."""

    path: Path
    id: str
    name: str
    mode: str
    model: str
    store: str
    eval_store: str
    labels: tuple[str, ...]
    gold: np.ndarray          # (item,) gold emotion
    parsed: np.ndarray        # (condition, item) parsed answer ("" when none)
    conditions: tuple[str, ...]
    method: tuple[str, ...]   # per condition
    mask: tuple[str, ...]     # per condition: emotion, "rnd", or a label-agnostic strategy
    strength: np.ndarray      # (condition,) alpha or mask fraction
    context: Mapping[str, Any]
    sets: NeuronSets | None
    checks: tuple[Mapping[str, Any], ...]

    @property
    def transfer(self) -> bool:
        return self.eval_store != self.store

    @property
    def sets_fraction(self) -> float | None:
        """The fraction the neuron sets were selected at."""
        if "fraction" in self.context:
            return float(self.context["fraction"])
        return self.sets.fraction if self.sets is not None else None

    @property
    def pool_size(self) -> int | None:
        """Identification-pool size per emotion: the requested ``id_size`` if any, else the
        smallest emotion's pool (the equal budget of a balanced pool)."""
        options = self.context.get("pool_options") or {}
        if options.get("id_size") is not None:
            return int(options["id_size"])
        pool = self.context.get("pool_per_emotion")
        if not pool and self.sets is not None:
            pool = {e: len(v) for e, v in self.sets.pool.get("item_ids", {}).items()}
        return min(int(v) for v in pool.values()) if pool else None

    @property
    def baseline_index(self) -> int:
        return self.conditions.index(BASELINE)

    @property
    def strengths(self) -> list[float]:
        swept = [float(s) for s, m in zip(self.strength, self.method, strict=True)
                 if m != BASELINE]
        return sorted(set(swept))


def _store_key(url: str) -> str:
    return url if "://" in url else os.path.normpath(url)


def read_checks(path: Path) -> tuple[dict[str, Any], ...]:
    """Validate a ``checks.json``: a list of ``{"name", "value", "ci", "unit", "text"}``."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RequestError(f"{path}: cannot read the checks ({exc})") from exc
    if not isinstance(data, list):
        raise RequestError(f"{path}: checks must be a JSON list of objects")
    out = []
    for i, check in enumerate(data):
        where = f"{path}: check {i}"
        if not isinstance(check, dict) or not isinstance(check.get("name"), str):
            raise RequestError(f"{where}: needs a string 'name'")
        try:
            value = float(check["value"])
            ci = check.get("ci")
            ci = None if ci is None else [float(ci[0]), float(ci[1])]
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise RequestError(f"{where}: 'value' must be a number and 'ci' [lo, hi] or "
                               f"null ({exc!r})") from exc
        out.append({"name": check["name"], "value": value, "ci": ci,
                    "unit": str(check.get("unit", "")), "text": str(check.get("text", ""))})
    return tuple(out)


def read_results(path: str | os.PathLike[str], id: str = "r1") -> ResultsFolder:
    """Read one results folder; a folder esn did not write is a ``RequestError``."""
    folder = Path(path)
    zarr_path = folder / "results.zarr"
    if not folder.is_dir():
        raise RequestError(f"{folder}: no such results folder")
    if not zarr_path.exists():
        raise RequestError(f"{folder} is not an esn results folder (no results.zarr; "
                           "esn intervene writes one)")
    try:
        ds = xr.open_zarr(zarr_path, consolidated=False)
    except Exception as exc:  # zarr raises many kinds; all mean the same thing here
        raise RequestError(f"{folder}: cannot open results.zarr ({exc})") from exc
    if ds.attrs.get("format") != RESULTS_FORMAT:
        raise RequestError(f"{folder} is not an esn results folder (results.zarr has format "
                           f"{ds.attrs.get('format')!r})")
    if ds.attrs.get("schema_version") != RESULTS_VERSION:
        raise RequestError(f"{folder}: results schema version {ds.attrs.get('schema_version')!r}"
                           f" is not supported (this esn reads {RESULTS_VERSION})")
    conditions = tuple(str(c) for c in ds.condition.values)
    if BASELINE not in conditions:
        raise RequestError(f"{folder}: results.zarr has no baseline condition")
    summary_path = folder / "summary.json"
    context: dict[str, Any] = {}
    if summary_path.exists():
        try:
            context = dict(json.loads(summary_path.read_text()).get("context", {}))
        except (json.JSONDecodeError, AttributeError) as exc:
            raise RequestError(f"{summary_path}: not an esn summary ({exc})") from exc
    sets = None
    if (folder / "neuron_sets.json").exists():
        from esn.stores.neuron_sets import read_neuron_sets

        try:
            sets = read_neuron_sets(folder / "neuron_sets.json")
        except EsnError as exc:
            raise RequestError(f"{folder / 'neuron_sets.json'}: {exc}") from exc
    checks = read_checks(folder / "checks.json") if (folder / "checks.json").exists() else ()
    store = str(context.get("store", ds.attrs.get("store", "")))
    eval_store = str(context.get("eval_store", ds.attrs.get("eval_store", store)))
    return ResultsFolder(
        path=folder, id=id, name=folder.name, mode=str(ds.attrs.get("mode", "")),
        model=str(context.get("model", ds.attrs.get("model", ""))),
        store=_store_key(store), eval_store=_store_key(eval_store),
        labels=tuple(ds.attrs["labels"]), gold=ds.emotion.values.astype(object),
        parsed=ds.parsed.values.astype(object), conditions=conditions,
        method=tuple(str(m) for m in ds.method.values),
        mask=tuple(str(m) for m in ds["mask"].values),
        strength=np.asarray(ds.strength.values, dtype=float), context=context, sets=sets,
        checks=checks,
    )


@dataclasses.dataclass(frozen=True)
class Study:
    """All results of one model whose neurons were identified on one store."""

    id: str
    model: str
    store: str
    results: tuple[ResultsFolder, ...]

    @property
    def corpus(self) -> list[str]:
        for r in self.results:
            if r.context.get("corpus"):
                return list(r.context["corpus"])
        return []

    @property
    def in_store(self) -> list[ResultsFolder]:
        return [r for r in self.results if not r.transfer]


def group_studies(results: Sequence[ResultsFolder]) -> list[Study]:
    """Studies in the order their first results folder was given."""
    groups: dict[tuple[str, str], list[ResultsFolder]] = {}
    for r in results:
        groups.setdefault((r.model, r.store), []).append(r)
    return [Study(f"s{i + 1}", model, store, tuple(members))
            for i, ((model, store), members) in enumerate(groups.items())]
