"""Model families by name and by checkpoint ``model_type``, and ``load_adapter``.

A model id is a built-in tiny id (``TINY_MODELS``), ``esn-organism`` (the trained model
organism shipped with esn, ``esn.pipeline.organism``; a retrained one by its folder),
``esn-whisper-smollm2`` (the
pretrained organism: its trained parts ship with esn, its base weights come from registry
packages; ``esn.pipeline.weights.builtin``), a Hugging Face hub id (read from the
local cache when ``HF_HUB_OFFLINE=1``) or a local directory. Its family comes from the
``model_type`` in its ``config.json``, read as plain JSON so that no remote code runs before
the family's adapter has checked ``trust_remote_code``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from safetensors import SafetensorError

from esn.errors import EsnError, ModelLoadError
from esn.pipeline.models.audioflamingo3 import AudioFlamingo3Adapter
from esn.pipeline.models.base import LoadOptions, ModelAdapter, model_info, place_model
from esn.pipeline.models.devices import check_device
from esn.pipeline.models.kimi_audio import KimiAudioAdapter
from esn.pipeline.models.qwen2_5_omni import QwenOmniAdapter
from esn.pipeline.models.qwen2_audio import Qwen2AudioAdapter
from esn.pipeline.models.tiny import TINY_MODELS, TINY_SEED
from esn.pipeline.models.voxtral import VoxtralAdapter
from esn.pipeline.probe_settings import organism_folder

__all__ = ["ADAPTERS", "MODEL_TYPES", "load_adapter", "resolve_family"]

ADAPTERS: Mapping[str, type[ModelAdapter]] = MappingProxyType({
    cls.family: cls
    for cls in (QwenOmniAdapter, AudioFlamingo3Adapter, Qwen2AudioAdapter, VoxtralAdapter,
                KimiAudioAdapter)
})
MODEL_TYPES: Mapping[str, str] = MappingProxyType({
    model_type: cls.family for cls in ADAPTERS.values() for model_type in cls.model_types
})
#: What loading a damaged or unreadable checkpoint raises (safetensors' own error, e.g. a
#: truncated file, subclasses none of the builtins).
_LOAD_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, KeyError,
                                                 SafetensorError)
#: Families by a config's ``architectures``, for configs without a ``model_type``.
ARCHITECTURES: Mapping[str, str] = MappingProxyType({
    name: cls.family for cls in ADAPTERS.values() for name in cls.architectures
})


def load_adapter(options: LoadOptions) -> ModelAdapter:
    """Load the model named by ``options.model_id`` behind its family's adapter.

    Raises ``ModelLoadError`` for an id or path that cannot be found or read, or whose
    ``model_type`` no adapter handles, and ``MissingDependencyError`` when the family needs a
    package that is not installed. A device it cannot use (``check_device``) is refused
    before anything loads.
    """
    check_device(options.device)
    tiny = TINY_MODELS.get(options.model_id)
    if tiny is not None:
        return _load_tiny(options, tiny.family)
    if options.model_id == _organism().ORGANISM_ID:
        return _load_organism(options)
    if options.model_id == _builtin().PRETRAINED_ID:
        return _load_pretrained_organism(options)
    retrained = organism_folder(options.model_id)
    if retrained is not None:
        return _load_organism(options, retrained)
    family, commit_hash = resolve_family(options.model_id, revision=options.revision)
    adapter_cls = ADAPTERS[family]
    try:
        return adapter_cls.from_pretrained(options, commit_hash=commit_hash)
    except EsnError:
        raise
    except _LOAD_ERRORS as err:
        raise ModelLoadError(
            f"cannot load model {options.model_id!r} ({family}): {err}"
        ) from err


def resolve_family(model_id: str, *, revision: str | None = None) -> tuple[str, str | None]:
    """``(family, commit hash or None)`` of a hub id or local checkpoint directory."""
    if model_id in TINY_MODELS:
        return TINY_MODELS[model_id].family, None
    if model_id == _organism().ORGANISM_ID:
        return QwenOmniAdapter.family, None
    if model_id == _builtin().PRETRAINED_ID:
        return Qwen2AudioAdapter.family, None
    if organism_folder(model_id) is not None:
        return QwenOmniAdapter.family, None
    config, commit_hash = _read_config(model_id, revision)
    model_type = config.get("model_type")
    architectures = config.get("architectures") or []
    if not model_type and isinstance(architectures, list):
        for name in architectures:
            if name in ARCHITECTURES:
                return ARCHITECTURES[name], commit_hash
    if not isinstance(model_type, str) or model_type not in MODEL_TYPES:
        known = ", ".join(sorted(MODEL_TYPES))
        raise ModelLoadError(
            f"model {model_id!r} has model_type {model_type!r}, which no esn adapter handles "
            f"(supported: {known}; built-in tiny models: {', '.join(TINY_MODELS)})"
        )
    return MODEL_TYPES[model_type], commit_hash


def _read_config(model_id: str, revision: str | None) -> tuple[dict[str, Any], str | None]:
    from transformers.utils.hub import cached_file, extract_commit_hash

    if _looks_like_path(model_id) and not Path(model_id).expanduser().is_dir():
        raise ModelLoadError(f"model {model_id!r}: no such directory")
    location = Path(model_id).expanduser() if _looks_like_path(model_id) else model_id
    try:
        path = cached_file(location, "config.json", revision=revision)
        if path is None:
            raise OSError("config.json not found")
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # ValueError covers malformed ids and bad JSON
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        hint = (" (HF_HUB_OFFLINE is set: only models already in the local cache can be "
                "used)") if offline else ""
        raise ModelLoadError(
            f"cannot find model {model_id!r}"
            f"{'' if revision is None else f' at revision {revision!r}'}: not a local "
            f"checkpoint directory, a hub model in the cache, or a built-in model "
            f"({', '.join([*TINY_MODELS, _organism().ORGANISM_ID, _builtin().PRETRAINED_ID])})"
            f"{hint}. Cause: {err}"
        ) from err
    if not isinstance(config, dict):
        raise ModelLoadError(f"model {model_id!r}: config.json is not a JSON object")
    return config, extract_commit_hash(str(path), None)


def _looks_like_path(model_id: str) -> bool:
    return model_id.startswith((".", "/", "~")) or os.path.isabs(model_id) or (
        os.sep in model_id and Path(model_id).exists()
    )


def tiny_revision() -> str:
    """The revision recorded for built-in tiny models: their weights depend on the seed and
    on transformers' initialisation code."""
    import transformers

    return f"builtin-seed{TINY_SEED}-transformers{transformers.__version__}"


def _load_tiny(options: LoadOptions, family: str) -> ModelAdapter:
    built, processor = TINY_MODELS[options.model_id].builder()
    model: Any = built
    if options.attn_implementation:
        model.set_attn_implementation(options.attn_implementation)
    model = place_model(model, options)
    info = model_info(options, model, family=family, revision=tiny_revision())
    return ADAPTERS[family](model, processor, info)


def _organism() -> Any:
    # Imported late: the organism package itself imports the model adapters.
    from esn.pipeline.organism import model

    return model


def _load_organism(options: LoadOptions, folder: Path | None = None) -> ModelAdapter:
    """``esn-organism``: the trained weights shipped with esn (``esn.pipeline.organism``),
    or a retrained organism's folder (``esn organism train --out DIR``)."""
    organism = _organism()
    folder = folder or organism.WEIGHTS_DIR
    built, processor = organism.load_organism(folder)
    model: Any = built
    if options.attn_implementation:
        model.set_attn_implementation(options.attn_implementation)
    model = place_model(model, options)
    info = model_info(options, model, family=QwenOmniAdapter.family,
                      revision=organism.organism_revision(folder))
    return QwenOmniAdapter(model, processor, info)


def _builtin() -> Any:
    from esn.pipeline.weights import builtin

    return builtin


def _load_pretrained_organism(options: LoadOptions) -> ModelAdapter:
    """``esn-whisper-smollm2``: its checkpoint directory (built once in the cache) loaded as
    a user's Qwen2-Audio checkpoint; the store records the id and the parts' digest."""
    builtin = _builtin()
    folder = builtin.pretrained_checkpoint()
    try:
        adapter = Qwen2AudioAdapter.from_pretrained(
            dataclasses.replace(options, model_id=str(folder)), commit_hash=None)
    except _LOAD_ERRORS as err:
        raise ModelLoadError(f"cannot load {builtin.PRETRAINED_ID} from {folder}: {err}") from err
    adapter.info = dataclasses.replace(adapter.info, id=builtin.PRETRAINED_ID,
                                       revision=builtin.pretrained_revision())
    return adapter
