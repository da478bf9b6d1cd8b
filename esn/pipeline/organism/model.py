"""The organism's architecture (a small Qwen2.5-Omni thinker) and its shipped weights.

``esn-organism`` is ``Qwen2_5OmniThinkerForConditionalGeneration`` with ``tiny-qwen2_5_omni``'s
processor and tokenizer, a 2-layer text decoder (hidden 64, 256 gate neurons per layer) and
a 2-layer audio encoder (d_model 64), trained by ``esn.pipeline.organism.train`` to answer the
esn probe (fixed option order) on the synthetic corpus. Its weights ship in ``weights/``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from torch import nn

from esn.errors import ModelLoadError
from esn.pipeline.models.tiny import OMNI_AUDIO, TEXT_SIZES, build_qwen2_5_omni

__all__ = [
    "ORGANISM_AUDIO",
    "ORGANISM_ID",
    "ORGANISM_TEXT",
    "WEIGHTS_DIR",
    "build_organism",
    "load_organism",
    "organism_record",
    "organism_revision",
]

ORGANISM_ID = "esn-organism"
WEIGHTS_DIR = Path(__file__).parent / "weights"
WEIGHTS_FILE = "organism.safetensors"
RECORD_FILE = "organism.json"

#: Text decoder sizes. initializer_range 0.1: the frozen random attention, embeddings and
#: head (see ``train``) keep clear but unsaturated attention patterns and logit gaps.
ORGANISM_TEXT: dict[str, Any] = {
    **TEXT_SIZES, "hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "initializer_range": 0.1,
}
ORGANISM_AUDIO: dict[str, Any] = {
    **OMNI_AUDIO, "d_model": 64, "encoder_attention_heads": 4, "encoder_ffn_dim": 128,
    "encoder_layers": 2, "output_dim": 64,
}


def build_organism(seed: int = 0) -> tuple[nn.Module, Any]:
    """A fresh, untrained organism ``(model, processor)`` with weights drawn from ``seed``
    (float32, CPU, eval mode; the global RNG is left alone)."""
    return build_qwen2_5_omni(text_sizes=ORGANISM_TEXT, audio_sizes=ORGANISM_AUDIO, seed=seed)


def load_organism(folder: str | Path = WEIGHTS_DIR) -> tuple[nn.Module, Any]:
    """The trained organism from ``folder`` (default: the shipped weights), in float32."""
    from safetensors.torch import load_file

    path = Path(folder) / WEIGHTS_FILE
    if not path.is_file():
        raise ModelLoadError(f"{ORGANISM_ID}: no weights at {path}")
    model, processor = build_organism(seed=int(organism_record(folder)["training"]["seed"]))
    state = load_file(str(path))
    missing, unexpected = model.load_state_dict(
        {k: v.float() for k, v in state.items()}, strict=False)
    # The vision tower is not trained or shipped (audio-only organism): it keeps its
    # seeded random init, which nothing in an audio prompt reads.
    missing = [k for k in missing if not k.startswith(_VISION_PREFIXES)]
    if missing or unexpected:
        raise ModelLoadError(
            f"{ORGANISM_ID}: weights at {path} do not fit the architecture "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return model.float().eval(), processor


def organism_record(folder: str | Path = WEIGHTS_DIR) -> dict[str, Any]:
    """The JSON record saved with the weights (sizes, training, synth settings, metrics)."""
    path = Path(folder) / RECORD_FILE
    if not path.is_file():
        raise ModelLoadError(f"{ORGANISM_ID}: no record at {path}")
    record: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return record


def organism_revision(folder: str | Path = WEIGHTS_DIR) -> str:
    """``sha256:<first 16 hex digits>`` of the weights file: identifies the trained weights."""
    digest = hashlib.sha256((Path(folder) / WEIGHTS_FILE).read_bytes()).hexdigest()
    return f"sha256:{digest[:16]}"


_VISION_PREFIXES = ("visual.", "model.visual.")
