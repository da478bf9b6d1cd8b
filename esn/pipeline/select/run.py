"""``esn select``: from an activation store to neuron sets, one Dask pass, every selector."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
from collections.abc import Sequence

import numpy as np

from esn.errors import RequestError
from esn.pipeline.select.aggregate import EmotionAggregates, aggregate_pool
from esn.pipeline.select.pool import PoolOptions, choose_pool
from esn.pipeline.select.selectors import SELECTORS, SelectionContext
from esn.provenance import library_versions
from esn.schemas.neuron_sets import MethodSets, NeuronSets
from esn.stores.activations import ActivationStore

__all__ = ["SelectOptions", "select_neurons", "store_fingerprint"]

ALL = "all"


@dataclasses.dataclass(frozen=True, kw_only=True)
class SelectOptions:
    """What ``esn select`` computes: methods, mask size, emotions, span, pool, scheduler."""

    methods: tuple[str, ...] = ("lap", "lape", "mad", "conact", "rnd")
    fraction: float = 0.005
    emotions: tuple[str, ...] | None = None
    span: str = ALL
    pool: PoolOptions = dataclasses.field(default_factory=PoolOptions)
    random_draws: int = 5
    lape_percentile: float = 0.0
    seed: int = 0
    scheduler: str | None = None

    def __post_init__(self) -> None:
        unknown = [m for m in self.methods if m not in SELECTORS]
        if unknown or not self.methods:
            raise RequestError(f"unknown method(s) {unknown}; choose from {sorted(SELECTORS)}")
        if not 0 < self.fraction <= 1:
            raise RequestError(f"fraction must be in (0, 1], got {self.fraction}")
        if self.random_draws < 1:
            raise RequestError("random_draws must be at least 1")
        if not 0 <= self.lape_percentile < 1:
            raise RequestError(f"lape_percentile must be in [0, 1), got {self.lape_percentile}")


def store_fingerprint(store: ActivationStore) -> str:
    """sha256 over the store's identity and per-utterance outcomes (not the statistics)."""
    h = hashlib.sha256(json.dumps(store.attributes.identity(), sort_keys=True).encode())
    for name in ("utterance", "status", "correct", "parsed_answer"):
        values = store.metadata(name)
        h.update(name.encode())
        h.update("\0".join(map(str, values.tolist())).encode())
    return h.hexdigest()


def _pairs(indices: np.ndarray, n_neurons: int) -> tuple[tuple[int, int], ...]:
    return tuple((int(i) // n_neurons, int(i) % n_neurons) for i in indices)


def run_selectors(agg: EmotionAggregates, options: SelectOptions, budget: int,
                  n_neurons: int) -> dict[str, MethodSets]:
    """Every requested selector on the in-memory aggregates."""
    methods: dict[str, MethodSets] = {}
    for name in options.methods:
        info = SELECTORS[name]
        params = {"lape_percentile": options.lape_percentile} if name == "lape" else {}
        draws = options.random_draws if name == "rnd" else 1
        results = [info.function(agg, SelectionContext(
            budget=budget, span=options.span, seed=options.seed,
            params={**params, "draw": d})) for d in range(draws)]
        first = results[0]
        methods[name] = MethodSets(
            sets={e: _pairs(r.indices, n_neurons) for e, r in first.items()},
            scores={e: tuple(float(s) for s in r.scores) for e, r in first.items()},
            score=info.score, higher_is_better=info.higher_is_better,
            params={**params, **({"draws": draws} if name == "rnd" else {})},
            draws=tuple({e: _pairs(r.indices, n_neurons) for e, r in res.items()}
                        for res in results) if name == "rnd" else (),
        )
    return methods


def select_neurons(store_url: str, options: SelectOptions) -> tuple[NeuronSets, EmotionAggregates]:
    """Choose the pool, aggregate it in one pass, and run the selectors."""
    store = ActivationStore.open(store_url)
    labels = store.attributes.labels
    emotions = _emotions(options.emotions, labels)
    metadata = {n: store.metadata(n) for n in ("utterance", "emotion", "split", "status",
                                               "correct")}
    pool = choose_pool(metadata, emotions, options.pool)
    sums = any(SELECTORS[name].needs_sums for name in options.methods)
    if sums:
        store.require_sums("selectors " + ", ".join(
            name for name in options.methods if SELECTORS[name].needs_sums))
    agg = aggregate_pool(store.to_xarray(), pool, emotions, scheduler=options.scheduler,
                         sums=sums)  # the count-based selectors never read act_sum
    layout = store.layout
    budget = max(1, int(round(options.fraction * layout.n_layers * layout.n_neurons)))
    sets = NeuronSets(
        fraction=options.fraction, budget=budget, emotions=tuple(emotions),
        n_layers=layout.n_layers, n_neurons=layout.n_neurons, span=options.span,
        methods=run_selectors(agg, options, budget, layout.n_neurons),
        pool={"item_ids": pool, "options": options.pool.to_dict(),
              "n_items": {e: len(v) for e, v in pool.items()}},
        store={"url": store.url, "fingerprint": store_fingerprint(store),
               "model": store.attributes.model.id},
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        versions=library_versions(),
    )
    return sets, agg


def _emotions(asked: Sequence[str] | None, labels: Sequence[str]) -> list[str]:
    if asked is None:
        return list(labels)
    missing = [e for e in asked if e not in labels]
    if missing:
        raise RequestError(f"emotions {missing} are not in the store's label set {list(labels)}")
    if len(set(asked)) < 2:
        raise RequestError("selection needs at least two emotions")
    return list(asked)
