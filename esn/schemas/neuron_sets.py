"""The neuron-set file: per method and emotion, the selected neurons, versioned JSON.

    {
      "format": "esn-neuron-sets", "schema_version": 1,
      "fraction": 0.005, "budget": 2652, "emotions": ["anger", ...],
      "n_layers": 28, "n_neurons": 18944, "span": "all",
      "methods": {
        "mad": {"sets": {"anger": [[layer, neuron], ...]},      # best first
                "scores": {"anger": [0.31, ...]},
                "score": "|P_e - mean_e' P_e'|", "higher_is_better": true,
                "params": {}, "draws": []},                       # rnd: every draw's sets
        ...
      },
      "pool": {"item_ids": {"anger": ["id", ...]}, "options": {...}},
      "store": {"url": "...", "fingerprint": "sha256..."},
      "created": "...", "versions": {...}
    }
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from esn.errors import SchemaError

__all__ = ["NEURON_SETS_FORMAT", "NEURON_SETS_VERSION", "MethodSets", "NeuronSets"]

NEURON_SETS_FORMAT = "esn-neuron-sets"
NEURON_SETS_VERSION = 1

Pairs = tuple[tuple[int, int], ...]


def _pairs(value: Any, where: str, n_layers: int, n_neurons: int) -> Pairs:
    try:
        pairs = tuple((int(layer), int(neuron)) for layer, neuron in value)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"{where}: expected a list of [layer, neuron] pairs") from exc
    for layer, neuron in pairs:
        if not (0 <= layer < n_layers and 0 <= neuron < n_neurons):
            raise SchemaError(f"{where}: neuron [{layer}, {neuron}] is outside "
                              f"{n_layers} layers x {n_neurons} neurons")
    if len(set(pairs)) != len(pairs):
        raise SchemaError(f"{where}: a neuron is listed twice")
    return pairs


@dataclasses.dataclass(frozen=True, kw_only=True)
class MethodSets:
    """One selector's result: per emotion, neurons best first, and their scores."""

    sets: Mapping[str, Pairs]
    scores: Mapping[str, tuple[float, ...]]
    score: str = ""
    higher_is_better: bool = True
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    draws: tuple[Mapping[str, Pairs], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "sets": {e: [list(p) for p in pairs] for e, pairs in self.sets.items()},
            "scores": {e: list(s) for e, s in self.scores.items()},
            "score": self.score, "higher_is_better": self.higher_is_better,
            "params": dict(self.params),
            "draws": [{e: [list(p) for p in pairs] for e, pairs in d.items()}
                      for d in self.draws],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str, n_layers: int,
                  n_neurons: int) -> MethodSets:
        try:
            sets = {e: _pairs(v, f"{where}.sets.{e}", n_layers, n_neurons)
                    for e, v in data["sets"].items()}
            scores = {e: tuple(float(x) for x in v) for e, v in data["scores"].items()}
            draws = tuple({e: _pairs(v, f"{where}.draws", n_layers, n_neurons)
                           for e, v in d.items()} for d in data.get("draws", ()))
        except (KeyError, AttributeError) as exc:
            raise SchemaError(f"{where}: missing or malformed {exc}") from exc
        for e, pairs in sets.items():
            if len(scores.get(e, ())) != len(pairs):
                raise SchemaError(f"{where}: {e} has {len(pairs)} neurons but "
                                  f"{len(scores.get(e, ()))} scores")
        return cls(sets=sets, scores=scores, score=str(data.get("score", "")),
                   higher_is_better=bool(data.get("higher_is_better", True)),
                   params=dict(data.get("params", {})), draws=draws)


@dataclasses.dataclass(frozen=True, kw_only=True)
class NeuronSets:
    """A whole ``esn select`` result (see the module docstring for the JSON form)."""

    fraction: float
    budget: int
    emotions: tuple[str, ...]
    n_layers: int
    n_neurons: int
    span: str
    methods: Mapping[str, MethodSets]
    pool: Mapping[str, Any]
    store: Mapping[str, str]
    created: str = ""
    versions: Mapping[str, str] = dataclasses.field(default_factory=dict)
    schema_version: int = NEURON_SETS_VERSION
    format: str = NEURON_SETS_FORMAT

    def __post_init__(self) -> None:
        if self.format != NEURON_SETS_FORMAT:
            raise SchemaError(f"not an esn neuron-set file (format {self.format!r})")
        if self.schema_version != NEURON_SETS_VERSION:
            raise SchemaError(f"neuron-set schema version {self.schema_version!r} is not "
                              f"supported (this esn reads version {NEURON_SETS_VERSION})")
        if not 0 < self.fraction <= 1:
            raise SchemaError(f"fraction must be in (0, 1], got {self.fraction}")
        for name, method in self.methods.items():
            unknown = set(method.sets) - set(self.emotions)
            if unknown:
                raise SchemaError(f"methods.{name}: emotions {sorted(unknown)} are not in "
                                  f"{list(self.emotions)}")
            too_big = [e for e, s in method.sets.items() if len(s) > self.budget]
            if too_big:
                raise SchemaError(f"methods.{name}: {too_big} exceed the budget {self.budget}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format, "schema_version": self.schema_version,
            "fraction": self.fraction, "budget": self.budget, "emotions": list(self.emotions),
            "n_layers": self.n_layers, "n_neurons": self.n_neurons, "span": self.span,
            "methods": {n: m.to_dict() for n, m in self.methods.items()},
            "pool": dict(self.pool), "store": dict(self.store), "created": self.created,
            "versions": dict(self.versions),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NeuronSets:
        if not isinstance(data, Mapping):
            raise SchemaError("a neuron-set file must hold a JSON object")
        if data.get("format") != NEURON_SETS_FORMAT:
            raise SchemaError(f"not an esn neuron-set file (format {data.get('format')!r})")
        try:
            n_layers, n_neurons = int(data["n_layers"]), int(data["n_neurons"])
            methods = {name: MethodSets.from_dict(m, f"methods.{name}", n_layers, n_neurons)
                       for name, m in data["methods"].items()}
            return cls(
                fraction=float(data["fraction"]), budget=int(data["budget"]),
                emotions=tuple(data["emotions"]), n_layers=n_layers, n_neurons=n_neurons,
                span=str(data["span"]), methods=methods, pool=dict(data["pool"]),
                store=dict(data["store"]), created=str(data.get("created", "")),
                versions=dict(data.get("versions", {})),
                schema_version=data.get("schema_version"),  # type: ignore[arg-type]
                format=str(data["format"]),
            )
        except KeyError as exc:
            raise SchemaError(f"neuron-set file: missing key {exc}") from exc
