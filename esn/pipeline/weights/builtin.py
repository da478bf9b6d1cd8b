"""``esn-whisper-smollm2``: the pretrained organism as a built-in model id.

The trained parts (projector and LoRA matrices, bfloat16) and their record ship in
``shipped/``; the base weights stay in their registry packages. The id resolves to an
ordinary checkpoint directory, built once (assemble Whisper base + SmolLM2, put the parts
in, ``save_pretrained``) under the user's cache folder and keyed by a digest of the base
weights and the parts, which then loads as any user's Qwen2-Audio checkpoint does.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from esn.errors import ModelLoadError
from esn.pipeline.weights.cache import cached_conversion
from esn.pipeline.weights.packages import SMOLLM2, WHISPER_BASE, file_digest

__all__ = ["PRETRAINED_ID", "SHIPPED_DIR", "pretrained_checkpoint", "pretrained_record",
           "pretrained_revision"]

PRETRAINED_ID = "esn-whisper-smollm2"
SHIPPED_DIR = Path(__file__).parent / "shipped"
PARTS_FILE, RECORD_FILE = "parts.safetensors", "record.json"


def pretrained_record(folder: str | Path = SHIPPED_DIR) -> dict[str, Any]:
    """The record of the shipped parts (settings, corpus, base-weight digests, metrics)."""
    path = Path(folder) / RECORD_FILE
    try:
        record: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{PRETRAINED_ID}: cannot read its record {path}: {err}") from err
    return record


def pretrained_revision(folder: str | Path = SHIPPED_DIR) -> str:
    """The revision a store records: a digest of the shipped parts."""
    parts = Path(folder) / PARTS_FILE
    return "parts-" + hashlib.sha256(parts.read_bytes()).hexdigest()[:16]


def pretrained_checkpoint(folder: str | Path = SHIPPED_DIR) -> Path:
    """The checkpoint directory of the id (built on first use; seconds afterwards)."""
    from safetensors.torch import load_file

    from esn.pipeline.weights.probe_training import ProbeTrainSettings, checkpoint_from_parts

    folder = Path(folder)
    parts_path = folder / PARTS_FILE
    if not parts_path.is_file():
        raise ModelLoadError(f"{PRETRAINED_ID}: no trained parts at {parts_path}")
    record = pretrained_record(folder)
    sources = [*WHISPER_BASE.paths(), *SMOLLM2.paths(), parts_path]
    saved = dict(record["settings"])
    settings = ProbeTrainSettings(**{**saved, "held_out_speakers": tuple(
        saved.get("held_out_speakers", ()))})

    def build(into: Path) -> None:
        checkpoint_from_parts(load_file(str(parts_path)), settings, into)

    return cached_conversion(PRETRAINED_ID, file_digest(sources), build)
