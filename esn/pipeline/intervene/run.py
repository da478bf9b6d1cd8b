"""``esn intervene``: test items, the condition sweep, and the results folder.

Test items are finished utterances of the evaluation store (the identification store
unless a transfer store is given), from the test split (``auto``: ``test``, or numbered
test splits such as MSP-Podcast's ``Test1``/``Test2``, when the store has splits, else the
seeded held-out part the selection left out), class-balanced by seeded truncation, and
disjoint from the identification pool recorded in the neuron-set file (an overlap is
refused unless forced). Results go to a folder: ``results.zarr`` (an
xarray dataset over condition x item with every answer), ``answers.csv`` (one row per
condition and item), ``neuron_sets.json`` (a copy of the sets that were applied) and
``summary.json`` (effect matrices per method and strength, and a ``context`` block: model,
mode, stores and corpora, mask fraction and budget, identification-pool size), so that a
results folder is self-contained for ``esn report``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from esn.errors import EsnWarning, RequestError
from esn.pipeline.intervene.conditions import (
    BASELINE,
    MIX,
    RANDOM,
    TWO_PASS,
    UNION,
    Condition,
    build_conditions,
)
from esn.pipeline.intervene.engine import Answers, answer_items
from esn.pipeline.intervene.evaluate import bootstrap_effects, effect_matrix
from esn.pipeline.intervene.label_agnostic import (
    mix_conditions,
    option_probabilities,
    two_pass_conditions,
)
from esn.pipeline.intervene.store_model import (
    baseline_agreement,
    load_options,
    require_same_model,
)
from esn.pipeline.models import LoadOptions, ModelAdapter, load_adapter
from esn.pipeline.select.pool import heldout_mask, in_test_splits, pool_audio, shares_audio
from esn.pipeline.select.run import store_fingerprint
from esn.provenance import library_versions
from esn.schemas.neuron_sets import NeuronSets
from esn.schemas.store import STATUS_DONE
from esn.stores.activations import ActivationStore
from esn.stores.neuron_sets import read_neuron_sets, write_neuron_sets
from esn.stores.outputs import (
    OutputKind,
    OutputState,
    claim_output,
    has_zarr_format,
    remove_own,
)

__all__ = ["RESULTS_OUTPUT", "InterveneRequest", "choose_test_items", "claim_results_output",
           "intervene"]

RESULTS_FORMAT = "esn-intervention-results"
RESULTS_VERSION = 1
#: A results folder is esn's when its ``results.zarr`` has the results format; overwrite
#: removes what ``intervene`` writes (and the demo's ``checks.json``), nothing else.
RESULTS_OUTPUT = OutputKind(
    name="results folder", folder=True,
    recognise=has_zarr_format("results.zarr", (RESULTS_FORMAT,)),
    entries=("results.zarr", "neuron_sets.json", "answers.csv", "summary.json", "checks.json",
             "neuron_sets.json.*.partial", "summary.json.*.partial"),
)


def claim_results_output(out: str | os.PathLike[str], *, overwrite: bool = False) -> OutputState:
    """Check, before any work, that ``intervene`` may write its results folder at ``out``:
    new, empty or (with ``overwrite``) an earlier esn results folder. Anything else is
    refused (``OutputRefusedError``; ``StoreExistsError`` for esn's own without
    ``overwrite``)."""
    return claim_output(out, RESULTS_OUTPUT, overwrite=overwrite)


@dataclasses.dataclass(frozen=True, kw_only=True)
class InterveneRequest:
    """One sweep: which store and sets, which conditions, which items, which engine."""

    store: str
    sets: str
    out: str
    mode: str = "deactivate"
    strengths: tuple[float, ...] | None = None
    methods: tuple[str, ...] | None = None
    random_draws: int | None = None
    split: str = "auto"
    per_emotion: int | None = None
    engine: str = "auto"
    eval_store: str | None = None
    batch_size: int = 8
    n_boot: int = 1000
    seed: int = 0
    force_overlap: bool = False
    overwrite: bool = False
    label_agnostic: tuple[str, ...] = ()  # "union", "2pass", "mix" (steering only)
    temperature: float = 1.0  # of the "mix" weights
    model: LoadOptions | None = None  # default: the store's own model (store_model.py)
    device: str = "cpu"
    dtype: str = "auto"  # "auto": the store's dtype
    force_model: bool = False  # run on a model that differs from the store's (recorded)


def choose_test_items(store: ActivationStore, pool_ids: set[str], pool_options: dict[str, Any],
                      *, split: str, per_emotion: int | None, seed: int,
                      force_overlap: bool, same_store: bool,
                      pool_paths: frozenset[str]) -> list[int]:
    """Store indices of the class-balanced test items (sorted).

    A candidate whose id is in the identification pool, or whose audio file is one of
    ``pool_paths`` (``pool_audio``: the same recording under another id, or in a transfer
    store), is refused unless ``force_overlap``.
    """
    ids, emotion = store.metadata("utterance"), store.metadata("emotion")
    splits = store.metadata("split")
    keep = (store.status() == STATUS_DONE) & np.isin(emotion, store.attributes.labels)
    if split == "auto":
        if (splits != "").any():
            in_test = in_test_splits(splits)
            if not in_test.any():
                raise RequestError(
                    f"the store has splits {sorted(set(splits.tolist()) - {''})} but none "
                    "named 'test' (or test1, test2...): choose one with --split NAME")
            keep &= in_test
        elif same_store:  # the complement of the selection's held-out draw
            keep &= heldout_mask(ids, emotion, float(pool_options.get("holdout", 0.5)),
                                 int(pool_options.get("seed", 0)))
    elif split != "all":
        keep &= splits == split
    overlap = sorted(set(ids[keep].tolist()) & pool_ids)
    paths = store.metadata("path")
    shared = np.flatnonzero(keep & ~np.isin(ids, list(pool_ids))
                            & shares_audio(paths, pool_paths)).tolist()
    if (overlap or shared) and not force_overlap:
        found = [f"{len(overlap)} test item(s) are in the identification pool "
                 f"(e.g. {overlap[0]})"] if overlap else []
        if shared:
            found.append(f"{len(shared)} test item(s) share an audio file with the "
                         f"identification pool (e.g. {ids[shared[0]]}: {paths[shared[0]]})")
        raise RequestError("; ".join(found) + "; choose another split or force the overlap")
    rng = np.random.default_rng(seed)
    labels = store.attributes.labels
    per = {e: np.flatnonzero(keep & (emotion == e)) for e in labels}
    empty = [e for e, idx in per.items() if idx.size == 0]
    if empty:
        raise RequestError(f"no test items for {empty} in split {split!r}")
    size = min(idx.size for idx in per.values())
    if per_emotion is not None:
        size = min(size, per_emotion)
    chosen = [rng.choice(idx, size=size, replace=False) for idx in per.values()]
    return sorted(int(i) for i in np.concatenate(chosen))


def intervene(request: InterveneRequest, *, adapter: ModelAdapter | None = None,
              progress: Callable[[int, int], None] | None = None) -> Path:
    """Run the sweep and write the results folder; returns its path.

    ``request.out`` must be a new path, an empty folder or (with ``overwrite``) an earlier
    results folder, checked before anything runs; a user's file inside survives."""
    out = Path(request.out)
    state = claim_results_output(out, overwrite=request.overwrite)
    sets = read_neuron_sets(request.sets)
    ident = ActivationStore.open(request.store)
    if sets.store.get("fingerprint") != store_fingerprint(ident):
        raise RequestError(f"{request.sets} was not selected from {request.store} "
                           "(store fingerprints differ)")
    store = ActivationStore.open(request.eval_store) if request.eval_store else ident
    if store.attributes.model.id != ident.attributes.model.id:
        raise RequestError("transfer needs the same model: "
                           f"{store.attributes.model.id} vs {ident.attributes.model.id}")
    pool_ids = {u for items in sets.pool["item_ids"].values() for u in items}
    pool_paths = pool_audio(ident.metadata("utterance"), ident.metadata("path"), pool_ids)
    items = choose_test_items(store, pool_ids, dict(sets.pool.get("options", {})),
                              split=request.split, per_emotion=request.per_emotion,
                              seed=request.seed, force_overlap=request.force_overlap,
                              same_store=request.eval_store is None, pool_paths=pool_paths)
    unknown = set(request.label_agnostic) - {UNION, TWO_PASS, MIX}
    if unknown or (request.label_agnostic and request.mode != "steer"):
        raise RequestError(f"label-agnostic strategies are {UNION}, {TWO_PASS} and {MIX}, "
                           f"for --mode steer only (got {sorted(request.label_agnostic)})")
    conditions = build_conditions(sets, mode=request.mode, strengths=request.strengths,
                                  methods=request.methods, random_draws=request.random_draws,
                                  union=UNION in request.label_agnostic)
    if not store.attributes.probe.decoding:
        warnings.warn(
            f"{store.url} was made before esn recorded its decoding: its stored answers came "
            "from the checkpoint's generation_config (sampling off), this run decodes with "
            "esn's own greedy configuration; the baseline agreement shows what differs",
            EsnWarning, stacklevel=2)
    adapter = adapter or load_adapter(request.model or load_options(
        store.attributes.model, device=request.device, dtype=request.dtype))
    differences = []
    for checked in {id(s): s for s in (ident, store)}.values():
        differences += require_same_model(checked.attributes.model, adapter.info,
                                          force=request.force_model, store_url=checked.url)
    answers = answer_items(adapter, store, items, conditions, engine=request.engine,
                           batch_size=request.batch_size, progress=progress)
    methods = [m for m in (request.methods or sets.methods) if m != RANDOM]
    extra: list[Condition] = []
    if TWO_PASS in request.label_agnostic:  # second pass: steer what the first predicted
        extra += two_pass_conditions(sets, answers.parsed[0].tolist(),
                                     strengths=request.strengths or (0.5,), methods=methods)
    if MIX in request.label_agnostic:
        weights = option_probabilities(adapter, store, items, temperature=request.temperature,
                                       batch_size=request.batch_size)
        extra += mix_conditions(sets, weights, store.attributes.labels,
                                strengths=request.strengths or (0.5,), methods=methods)
    if extra:
        more = answer_items(adapter, store, items, extra, engine=request.engine,
                            batch_size=request.batch_size, progress=progress)
        conditions = [*conditions, *extra]
        answers = Answers(*(np.concatenate([getattr(answers, f), getattr(more, f)])
                            for f in ("raw", "parsed", "engine")))
    ds = results_dataset(store, items, conditions, answers, request)
    summary = summarize(ds, n_boot=request.n_boot, seed=request.seed)
    summary["context"] = results_context(request, sets, ident, store, items)
    summary["context"]["model_record"] = adapter.info.to_dict()
    summary["context"]["model_differences"] = sorted(set(differences))
    summary["context"]["forced_model"] = bool(request.force_model and differences)
    base = [c.name for c in conditions].index(BASELINE)
    summary["baseline_agreement"] = baseline_agreement(
        store.metadata("utterance")[list(items)], store.metadata("parsed_answer")[list(items)],
        answers.parsed[base], store.metadata("raw_answer")[list(items)], answers.raw[base])
    if state == "esn":
        remove_own(out, RESULTS_OUTPUT)
    out.mkdir(parents=True, exist_ok=True)
    # results.zarr first: its format attribute marks the folder as esn's from then on;
    # summary.json last, renamed into place: a folder with one is complete.
    ds.to_zarr(out / "results.zarr", mode="w", zarr_format=3, consolidated=False)
    write_neuron_sets(out / "neuron_sets.json", sets)
    ds[["raw", "parsed", "correct", "engine"]].to_dataframe().reset_index().to_csv(
        out / "answers.csv", index=False)
    tmp = out / f"summary.json.{os.getpid()}.partial"
    tmp.write_text(json.dumps(summary, indent=1))
    tmp.replace(out / "summary.json")
    return out


def results_context(request: InterveneRequest, sets: NeuronSets, ident: ActivationStore,
                    store: ActivationStore, items: Sequence[int]) -> dict[str, Any]:
    """What a reader of the results needs to place them in a sweep or a transfer."""
    gold = store.metadata("emotion")[list(items)]
    pool = sets.pool.get("item_ids", {})
    return {
        "model": store.attributes.model.id, "mode": request.mode, "engine": request.engine,
        "store": request.store, "eval_store": request.eval_store or request.store,
        "transfer": request.eval_store is not None,
        "corpus": list(ident.attributes.corpus), "eval_corpus": list(store.attributes.corpus),
        "fraction": sets.fraction, "budget": sets.budget, "span": sets.span,
        "n_layers": sets.n_layers, "n_neurons": sets.n_neurons,
        "pool_per_emotion": {e: len(ids) for e, ids in pool.items()},
        "pool_options": dict(sets.pool.get("options", {})),
        "test_per_emotion": {e: int((gold == e).sum()) for e in store.attributes.labels},
    }


def results_dataset(store: ActivationStore, items: Sequence[int],
                    conditions: Sequence[Condition], answers: Answers,
                    request: InterveneRequest) -> xr.Dataset:
    gold = store.metadata("emotion")[list(items)]
    correct = answers.parsed == gold[None, :]
    ds = xr.Dataset(
        {"raw": (("condition", "item"), answers.raw),
         "parsed": (("condition", "item"), answers.parsed),
         "engine": (("condition", "item"), answers.engine),
         "correct": (("condition", "item"), correct.astype(bool))},
        coords={
            "condition": np.array([c.name for c in conditions], dtype=object),
            "method": ("condition", np.array([c.method for c in conditions], dtype=object)),
            "mask": ("condition", np.array([c.mask for c in conditions], dtype=object)),
            "strength": ("condition", [c.strength for c in conditions]),
            "draw": ("condition", [c.draw for c in conditions]),
            "item": store.metadata("utterance")[list(items)],
            "emotion": ("item", gold),
        },
    )
    ds.attrs = {
        "format": RESULTS_FORMAT, "schema_version": RESULTS_VERSION, "mode": request.mode,
        "store": request.store, "eval_store": request.eval_store or request.store,
        "sets": request.sets, "engine": request.engine, "labels": list(store.attributes.labels),
        "model": store.attributes.model.id,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "versions": json.dumps(library_versions()),
    }
    return ds


def summarize(ds: xr.Dataset, *, n_boot: int, seed: int) -> dict[str, Any]:
    """Effect matrices (with bootstrap intervals) per method and strength."""
    labels = list(ds.attrs["labels"])
    gold = ds.emotion.values.astype(object)
    baseline = ds.parsed.sel(condition=BASELINE).values.astype(object)
    out: dict[str, Any] = {"labels": labels, "mode": ds.attrs["mode"], "tables": []}
    methods = [m for m in dict.fromkeys(ds.method.values.tolist()) if m not in (BASELINE,
                                                                                RANDOM)]
    swept = ds.strength.values[ds.method.values != BASELINE].tolist()
    for strength in sorted(set(swept)):
        rnd = ds.where((ds.method == RANDOM) & (ds.strength == strength), drop=True)
        for method in methods:
            rows = {}
            for emotion in labels:
                name = f"{method}/{emotion}/{strength:g}"
                if name in ds.condition.values:
                    rows[emotion] = ds.parsed.sel(condition=name).values.astype(object)
            if rnd.sizes.get("condition", 0):
                rows[RANDOM] = rnd.parsed.values.astype(object)
            m = effect_matrix(gold, baseline, rows, labels)
            ci = bootstrap_effects(gold, baseline, rows, labels, n_boot=n_boot, seed=seed)
            out["tables"].append({
                "method": method, "strength": strength, "rows": list(m.rows),
                "columns": list(m.columns), "delta": m.delta.tolist(),
                "self": m.self_effect.tolist(), "cross": m.cross_effect.tolist(),
                "gap": m.gap.tolist(), "uar_change": m.uar_change.tolist(),
                "baseline_recall": m.baseline_recall.tolist(),
                "ci": {k: v.tolist() for k, v in ci.items()},
            })
    agnostic = [str(c) for c, mask in zip(ds.condition.values, ds["mask"].values, strict=True)
                if mask in (UNION, TWO_PASS, MIX)]
    out["label_agnostic"] = []
    for name in agnostic:
        m = effect_matrix(gold, baseline, {name: ds.parsed.sel(condition=name).values.astype(
            object)}, labels)
        out["label_agnostic"].append({
            "condition": name, "columns": list(m.columns), "delta": m.delta[0].tolist(),
            "uar_change": float(m.uar_change[0])})
    return out
