"""The activation store's declared layout: dimensions, variables, attributes, version.

An activation store is a Zarr v3 group. This module declares what is in it; ``esn.stores``
reads and writes it. Schema version 1.

Dimensions
    ``utterance`` (one per corpus item), ``span`` (``audio``, ``text``: which prompt
    positions a statistic covers), ``layer`` (decoder layers), ``neuron`` (gate neurons of a
    layer's MLP, i.e. coordinates of ``mlp.act_fn`` output = SiLU(gate_proj(x))),
    ``option`` (answer options of the probe, numbered from 1).

Statistics (over the valid prompt positions of one utterance; prefill only)
    ========== =================================== ======= =====================================
    name       dims                                dtype   meaning
    ========== =================================== ======= =====================================
    K          utterance, span, layer, neuron      uint16  positions where the activation > 0
                                                           (uint32 where the layout asks)
    T          utterance, span                     uint32  valid positions (not padding/special)
    act_sum    utterance, span, layer, neuron      (sums)  sum of the activation over them
    ========== =================================== ======= =====================================

``act_sum`` is kept as ``layout.sums_dtype`` says (``esn extract --sums``): ``float32``;
``bfloat16``, the float32 sum rounded to nearest even on the device and stored as its raw
uint16 bits (readers get float32 back, exactly the rounded value); or ``none``, no
``act_sum`` array at all (no built-in selector reads the sums; the ``activation`` measure of
``esn stats`` needs them). ``sums_dtype`` came after the first stores of schema 1: a layout
without it is ``float32``, and a float32 layout leaves it out, so such a store keeps its
attributes (and fingerprint) unchanged.

Per-utterance metadata (dims ``utterance``, or ``utterance, option``)
    ============== ======= ============================================================
    utterance      str     utterance id (the index of the ``utterance`` dimension)
    corpus         str     corpus name (``iemocap``, ``manifest``...)
    path           str     audio path as listed by the corpus
    speaker        str     speaker id, ``""`` when unknown
    emotion        str     gold emotion (canonical name)
    split          str     published split, ``""`` when none
    duration       float32 seconds of decoded audio, NaN until processed
    heard          float32 seconds of it the model heard: the clip cut to the model's
                           audio window or ``probe.max_seconds``, NaN until processed
    truncated      bool    the clip was longer than what the model heard
    options        str     (utterance, option): emotion shown as option number i+1
    raw_answer     str     the model's generated text
    parsed_answer  str     emotion parsed from it, ``""`` when unparseable
    correct        bool    parsed_answer == emotion
    n_tokens       int32   prompt length in tokens (all positions, before masking)
    status         int8    0 pending, 1 done, 2 failed (``STATUS_*``)
    failure_reason str     why a failed utterance failed, ``""`` otherwise
    ============== ======= ============================================================

``heard`` and ``truncated`` came after the first stores of schema 1: a store made before
lacks both arrays and stays valid (``VariableSpec.older_stores_lack``); for it the seconds
heard are not recorded.

Group attributes (``StoreAttributes``): ``format``, ``schema_version``, ``model`` (id,
revision, adapter, dtype), ``hook_point``, ``probe`` (template, seed, option_order,
max_new_tokens, decoding: the decoding configuration, absent in stores from before esn
owned it; max_seconds: the cut a user asked for, absent when none), ``labels`` (the option
label set), ``layout`` (sizes, chunking), ``corpus`` (spec strings), ``utterance_digest``
(sha256 of the ordered utterance ids), ``versions`` (esn and library versions), ``created``
(ISO 8601 UTC).

Hidden-state checkpoints (when ``layout.checkpoint_layers`` is not empty), for replaying
layers c..N-1 later: a subgroup ``checkpoints/chunk_NNNNNN`` per utterance chunk with
``hidden`` (checkpoint_layer, utterance, position, hidden) = the residual stream entering
each checkpoint layer during the prefill (``layout.hidden_dtype``; bfloat16 is stored as its
raw uint16 bits), ``attention_mask`` (utterance, position) bool, ``positions`` (axis,
utterance, position) int32 = what the rotary embedding got (3 axes for Qwen2.5-Omni), and
``valid``/``audio`` (utterance, position) bool. Positions are left-padded to the longest
prompt of the chunk. Written before the chunk's statistics, so ``status`` commits them too.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from esn.errors import SchemaError

__all__ = [
    "DEFAULT_SUMS",
    "FORMAT_NAME",
    "GREEDY_DECODING",
    "METADATA_VARIABLES",
    "SCHEMA_VERSION",
    "SPANS",
    "STATISTICS_VARIABLES",
    "STATUS_DONE",
    "STATUS_FAILED",
    "STATUS_PENDING",
    "SUMS_DTYPES",
    "ModelInfo",
    "ProbeInfo",
    "StoreAttributes",
    "StoreLayout",
    "VariableSpec",
    "utterance_digest",
]

FORMAT_NAME = "esn-activations"
SCHEMA_VERSION = 1
SPANS: tuple[str, ...] = ("audio", "text")
STATUS_PENDING, STATUS_DONE, STATUS_FAILED = 0, 1, 2
STATUS_NAMES = {STATUS_PENDING: "pending", STATUS_DONE: "done", STATUS_FAILED: "failed"}
COUNT_DTYPES = ("uint16", "uint32")
HIDDEN_DTYPES = ("float32", "bfloat16", "float16")
#: how ``act_sum`` is kept (``StoreLayout.sums_dtype``); float32 in stores from before the choice
SUMS_DTYPES = ("none", "bfloat16", "float32")
#: what ``esn extract`` keeps unless told (README, "How much a store keeps"): no built-in
#: selector reads the sums, and without them a 7B store is a quarter of its float32 size
DEFAULT_SUMS = "none"
#: esn's decoding, as a store records it (``probe.decoding``): greedy search with every
#: sampling, penalty, n-gram, forcing and suppressing knob off, whatever the checkpoint's
#: generation_config says; eos/pad from the model, new tokens up to ``probe.max_new_tokens``.
#: ``esn.pipeline.decoding`` turns it into a transformers GenerationConfig.
GREEDY_DECODING: Mapping[str, Any] = MappingProxyType({
    "strategy": "greedy",
    "do_sample": False,
    "num_beams": 1,
    "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0,
    "length_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "bad_words_ids": None,
    "min_length": 0,
    "eos_pad": "model",
})


@dataclasses.dataclass(frozen=True, kw_only=True)
class VariableSpec:
    """One array of the store: name, dimension names, dtype (``"count"`` = the layout's count
    dtype, ``"sums"`` = what ``layout.sums_dtype`` stores)."""

    name: str
    dims: tuple[str, ...]
    dtype: str
    description: str
    #: added to schema 1 after its first stores: a store made before lacks the array and
    #: stays valid (its readers say the variable is not recorded; writers skip it)
    older_stores_lack: bool = False


STATISTICS_VARIABLES: tuple[VariableSpec, ...] = (
    VariableSpec(name="K", dims=("utterance", "span", "layer", "neuron"), dtype="count",
                 description="valid prompt positions where the gate activation is > 0"),
    VariableSpec(name="T", dims=("utterance", "span"), dtype="uint32",
                 description="valid prompt positions (not padding, not special tokens)"),
    VariableSpec(name="act_sum", dims=("utterance", "span", "layer", "neuron"), dtype="sums",
                 description="sum of the gate activation over the valid prompt positions"),
)

METADATA_VARIABLES: tuple[VariableSpec, ...] = (
    VariableSpec(name="utterance", dims=("utterance",), dtype="str", description="utterance id"),
    VariableSpec(name="corpus", dims=("utterance",), dtype="str", description="corpus name"),
    VariableSpec(name="path", dims=("utterance",), dtype="str", description="audio path"),
    VariableSpec(name="speaker", dims=("utterance",), dtype="str",
                 description="speaker id, empty when unknown"),
    VariableSpec(name="emotion", dims=("utterance",), dtype="str", description="gold emotion"),
    VariableSpec(name="split", dims=("utterance",), dtype="str",
                 description="published split, empty when none"),
    VariableSpec(name="duration", dims=("utterance",), dtype="float32",
                 description="seconds of decoded audio, NaN until processed"),
    VariableSpec(name="heard", dims=("utterance",), dtype="float32",
                 description="seconds of the clip the model heard (cut to its audio window "
                             "or probe.max_seconds), NaN until processed",
                 older_stores_lack=True),
    VariableSpec(name="truncated", dims=("utterance",), dtype="bool",
                 description="the clip was longer than what the model heard",
                 older_stores_lack=True),
    VariableSpec(name="options", dims=("utterance", "option"), dtype="str",
                 description="emotion presented as option number i+1"),
    VariableSpec(name="raw_answer", dims=("utterance",), dtype="str",
                 description="generated answer text"),
    VariableSpec(name="parsed_answer", dims=("utterance",), dtype="str",
                 description="emotion parsed from the answer, empty when unparseable"),
    VariableSpec(name="correct", dims=("utterance",), dtype="bool",
                 description="parsed answer equals the gold emotion"),
    VariableSpec(name="n_tokens", dims=("utterance",), dtype="int32",
                 description="prompt length in tokens"),
    VariableSpec(name="status", dims=("utterance",), dtype="int8",
                 description="0 pending, 1 done, 2 failed"),
    VariableSpec(name="failure_reason", dims=("utterance",), dtype="str",
                 description="why the utterance failed, empty otherwise"),
)

# Metadata known when the store is created; the rest arrives with each written chunk.
CORPUS_FIELDS: tuple[str, ...] = ("utterance", "corpus", "path", "speaker", "emotion", "split")
RESULT_FIELDS: tuple[str, ...] = (
    "duration", "heard", "truncated", "options", "raw_answer", "parsed_answer", "correct",
    "n_tokens", "failure_reason",
)


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise SchemaError(message)


def _as_str_tuple(value: Iterable[Any], name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        raise SchemaError(f"{name} must be a list of strings, not the string {value!r}")
    items = tuple(value)
    _require(all(isinstance(v, str) and v for v in items),
             f"{name} must hold non-empty strings, got {list(items)!r}")
    return items


@dataclasses.dataclass(frozen=True, kw_only=True)
class StoreLayout:
    """Sizes and chunking of a store. Statistics chunks hold whole layers of one chunk of
    ``utterance_chunk`` utterances: ``(utterance_chunk, n_spans, 1, n_neurons)``."""

    n_utterances: int
    n_layers: int
    n_neurons: int
    n_options: int
    utterance_chunk: int = 64
    count_dtype: str = "uint16"
    spans: tuple[str, ...] = SPANS
    checkpoint_layers: tuple[int, ...] = ()
    hidden_size: int = 0
    hidden_dtype: str = "float32"
    sums_dtype: str = "float32"  # act_sum: float32, bfloat16 (as uint16 bits) or none

    def __post_init__(self) -> None:
        for name in ("n_utterances", "n_layers", "n_neurons", "n_options", "utterance_chunk"):
            value = getattr(self, name)
            _require(isinstance(value, int) and not isinstance(value, bool) and value > 0,
                     f"layout.{name} must be a positive integer, got {value!r}")
        _require(self.count_dtype in COUNT_DTYPES,
                 f"layout.count_dtype must be one of {COUNT_DTYPES}, got {self.count_dtype!r}")
        object.__setattr__(self, "spans", _as_str_tuple(self.spans, "layout.spans"))
        layers = tuple(self.checkpoint_layers)
        _require(all(isinstance(c, int) and 0 <= c < self.n_layers for c in layers)
                 and list(layers) == sorted(set(layers)),
                 f"layout.checkpoint_layers must be increasing layer indices in "
                 f"0..{self.n_layers - 1}, got {list(layers)}")
        object.__setattr__(self, "checkpoint_layers", layers)
        if layers:
            _require(isinstance(self.hidden_size, int) and self.hidden_size > 0,
                     "layout.hidden_size must be positive when checkpoints are stored")
        _require(self.hidden_dtype in HIDDEN_DTYPES,
                 f"layout.hidden_dtype must be one of {HIDDEN_DTYPES}, got {self.hidden_dtype!r}")
        _require(self.sums_dtype in SUMS_DTYPES,
                 f"layout.sums_dtype must be one of {SUMS_DTYPES}, got {self.sums_dtype!r}")

    @property
    def n_chunks(self) -> int:
        return -(-self.n_utterances // self.utterance_chunk)

    @property
    def statistics_chunks(self) -> tuple[int, int, int, int]:
        return (self.utterance_chunk, len(self.spans), 1, self.n_neurons)

    @property
    def max_count(self) -> int:
        return 2**16 - 1 if self.count_dtype == "uint16" else 2**32 - 1

    def chunk_slice(self, chunk: int) -> slice:
        """Utterance indices covered by chunk number ``chunk``."""
        _require(0 <= chunk < self.n_chunks, f"chunk {chunk} outside 0..{self.n_chunks - 1}")
        start = chunk * self.utterance_chunk
        return slice(start, min(start + self.utterance_chunk, self.n_utterances))

    def shape_of(self, spec: VariableSpec) -> tuple[int, ...]:
        sizes = {"utterance": self.n_utterances, "span": len(self.spans), "layer": self.n_layers,
                 "neuron": self.n_neurons, "option": self.n_options}
        return tuple(sizes[d] for d in spec.dims)

    def dtype_of(self, spec: VariableSpec) -> str:
        """The dtype of ``spec``'s array on disk (bfloat16 sums as their uint16 bits)."""
        if spec.dtype == "count":
            return self.count_dtype
        if spec.dtype == "sums":
            return "uint16" if self.sums_dtype == "bfloat16" else "float32"
        return spec.dtype

    def holds(self, spec: VariableSpec) -> bool:
        """Does a store of this layout have ``spec``'s array? (``act_sum`` not with none.)"""
        return not (spec.dtype == "sums" and self.sums_dtype == "none")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["spans"] = list(self.spans)
        data["checkpoint_layers"] = list(self.checkpoint_layers)
        if self.sums_dtype == "float32":
            data.pop("sums_dtype")  # as in stores from before the choice: attributes unchanged
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoreLayout:
        return _from_dict(cls, data, "layout")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelInfo:
    """Which model produced the statistics."""

    id: str
    revision: str = ""
    adapter: str = ""
    dtype: str = ""
    # How it was loaded, so that interventions load the same model ("" / False in stores
    # made before these were recorded: unknown, not checked).
    attn_implementation: str = ""
    trust_remote_code: bool = False
    config_digest: str = ""  # sha256 of the model config (esn.pipeline.models.config_digest)

    def __post_init__(self) -> None:
        _require(isinstance(self.id, str) and bool(self.id), "model.id must be a non-empty string")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelInfo:
        return _from_dict(cls, data, "model")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProbeInfo:
    """How the emotion question was asked and its answer decoded.

    ``decoding`` is the decoding configuration that generated the answers; new probes get
    esn's own (``GREEDY_DECODING``, applied by ``esn.pipeline.decoding``). ``{}`` means not
    recorded: a store from before esn owned its decoding (``from_dict`` of attributes
    without the key), whose answers came from the checkpoint's generation_config with
    sampling off. It is left out of ``to_dict`` then, so such a store keeps its identity
    (and fingerprint); resuming it under a recorded decoding is refused as another run.

    ``max_seconds``: every clip was cut to its first ``max_seconds`` before the model heard
    it (``esn extract --max-seconds``), or to the model's own audio window if that is
    shorter; ``None`` (left out of ``to_dict``, as in stores from before the option): the
    model's window alone.
    """

    template: str
    seed: int = 0
    option_order: str = "random"
    max_new_tokens: int = 20
    decoding: Mapping[str, Any] = dataclasses.field(
        default_factory=lambda: dict(GREEDY_DECODING))
    max_seconds: float | None = None  # every clip cut to this; None: the model's own window

    def __post_init__(self) -> None:
        _require(isinstance(self.template, str) and bool(self.template),
                 "probe.template must be a non-empty string")
        _require(self.option_order in ("random", "fixed"),
                 f"probe.option_order must be 'random' or 'fixed', got {self.option_order!r}")
        decoding = self.decoding
        _require(isinstance(decoding, Mapping) and all(isinstance(k, str) for k in decoding),
                 f"probe.decoding must be an object with string keys, got {decoding!r}")
        _require(not decoding or isinstance(decoding.get("strategy"), str),
                 f"probe.decoding must name its strategy, got {dict(decoding)!r}")
        object.__setattr__(self, "decoding", dict(decoding))
        seconds = self.max_seconds
        _require(seconds is None or (isinstance(seconds, int | float)
                                     and not isinstance(seconds, bool) and seconds > 0),
                 f"probe.max_seconds must be a positive number or null, got {seconds!r}")
        if seconds is not None:
            object.__setattr__(self, "max_seconds", float(seconds))

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if not self.decoding:
            data.pop("decoding")  # not recorded: an older store's attributes, unchanged
        if self.max_seconds is None:
            data.pop("max_seconds")  # the model's window: as stores from before the option
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProbeInfo:
        if isinstance(data, Mapping) and "decoding" not in data:
            data = {**data, "decoding": {}}  # an older store: decoding not recorded
        return _from_dict(cls, data, "probe")


@dataclasses.dataclass(frozen=True, kw_only=True)
class StoreAttributes:
    """Everything stored in the group attributes of an activation store."""

    model: ModelInfo
    probe: ProbeInfo
    labels: tuple[str, ...]
    layout: StoreLayout
    utterance_digest: str
    corpus: tuple[str, ...] = ()
    hook_point: str = "mlp.act_fn"
    versions: Mapping[str, str] = dataclasses.field(default_factory=dict)
    created: str = ""
    batch_size: int = 0  # utterances per forward pass: it changes act_sum in the last bits
    schema_version: int = SCHEMA_VERSION
    format: str = FORMAT_NAME

    def __post_init__(self) -> None:
        _check_format_and_version(self.format, self.schema_version)
        labels = _as_str_tuple(self.labels, "labels")
        _require(len(set(labels)) == len(labels), f"labels repeat: {list(labels)!r}")
        _require(len(labels) == self.layout.n_options,
                 f"{len(labels)} labels but layout.n_options = {self.layout.n_options}")
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "corpus", tuple(self.corpus))
        object.__setattr__(self, "versions", dict(self.versions))
        _require(isinstance(self.batch_size, int) and self.batch_size >= 0,
                 f"batch_size must be a non-negative integer (0: not recorded), "
                 f"got {self.batch_size!r}")

    def identity(self) -> dict[str, Any]:
        """What must match for a rerun to resume this store rather than be refused."""
        data = self.to_dict()
        for key in ("versions", "created"):
            data.pop(key)
        return data

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "schema_version": self.schema_version,
            "model": self.model.to_dict(),
            "hook_point": self.hook_point,
            "probe": self.probe.to_dict(),
            "labels": list(self.labels),
            "layout": self.layout.to_dict(),
            "corpus": list(self.corpus),
            "utterance_digest": self.utterance_digest,
            "batch_size": self.batch_size,
            "versions": dict(self.versions),
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoreAttributes:
        _require(isinstance(data, Mapping), "store attributes must be a JSON object")
        # Format and version first: another version may differ in every other key.
        _check_format_and_version(data.get("format"), data.get("schema_version"))
        nested: dict[str, Any] = {"model": ModelInfo, "probe": ProbeInfo, "layout": StoreLayout}
        values = dict(data)
        for key, kind in nested.items():
            _require(isinstance(values.get(key), Mapping), f"store attribute {key!r} missing")
            values[key] = kind.from_dict(values[key])
        return _from_dict(cls, values, "store attributes")


def _check_format_and_version(fmt: Any, version: Any) -> None:
    _require(fmt == FORMAT_NAME,
             f"not an esn activation store (format {fmt!r}, expected {FORMAT_NAME!r})")
    _require(version == SCHEMA_VERSION,
             f"store schema version {version!r} is not supported "
             f"(this esn reads version {SCHEMA_VERSION})")


def utterance_digest(ids: Sequence[str]) -> str:
    """sha256 over the ordered utterance ids: a changed corpus or order changes it."""
    h = hashlib.sha256()
    for item in ids:
        h.update(item.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def _from_dict(cls: type, data: Mapping[str, Any], where: str) -> Any:
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    _require(not unknown, f"{where}: unknown keys {unknown}")
    try:
        return cls(**dict(data))
    except TypeError as exc:  # missing required keys
        raise SchemaError(f"{where}: {exc}") from exc
