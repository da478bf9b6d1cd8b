"""Model adapters: one per model family behind one interface, a registry, and tiny models.

``load_adapter(LoadOptions(model_id=...))`` takes a hub id, a local checkpoint directory or a
built-in tiny id (``TINY_MODELS``) and returns the family's ``ModelAdapter``.
"""

from esn.pipeline.models.audioflamingo3 import AudioFlamingo3Adapter
from esn.pipeline.models.base import ChatTemplateAdapter, LoadOptions, ModelAdapter, ProbeBatch
from esn.pipeline.models.devices import SUPPORTED_DEVICES, check_device
from esn.pipeline.models.kimi_audio import KimiAudioAdapter
from esn.pipeline.models.qwen2_5_omni import QwenOmniAdapter
from esn.pipeline.models.qwen2_audio import Qwen2AudioAdapter
from esn.pipeline.models.registry import ADAPTERS, MODEL_TYPES, load_adapter, resolve_family
from esn.pipeline.models.tiny import TINY_MODELS, TinyModel, build_tiny
from esn.pipeline.models.voxtral import VoxtralAdapter

__all__ = [
    "ADAPTERS",
    "MODEL_TYPES",
    "SUPPORTED_DEVICES",
    "TINY_MODELS",
    "AudioFlamingo3Adapter",
    "ChatTemplateAdapter",
    "KimiAudioAdapter",
    "LoadOptions",
    "ModelAdapter",
    "ProbeBatch",
    "Qwen2AudioAdapter",
    "QwenOmniAdapter",
    "TinyModel",
    "VoxtralAdapter",
    "build_tiny",
    "check_device",
    "load_adapter",
    "resolve_family",
]
