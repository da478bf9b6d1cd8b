"""The pretrained organism's training run (``esn organism train --base whisper-smollm2``):
corpus, training to the probe, held-out evaluation through the real probe path, and what
is saved.

The run folder holds ``corpus/`` (an ``esn synth`` corpus unless one is given),
``checkpoint/`` (the trained model, LoRA merged: ``esn extract --model DIR/checkpoint``),
``parts.safetensors`` (the trained parts alone: projector and LoRA matrices, bfloat16; the
checkpoint is rebuilt from them, so it is exactly what the parts give) and
``record.json`` (settings, corpus, seed, the sha256 of the base weights' packages, the
training log and the metrics). Accuracy is measured with the study's probe, the options in
a seeded random order per item, through ``adapter.generate`` and ``Probe.parse``: on the
speakers held out of training, on the seen speakers' test clips, and on the held-out
speakers with every decoder MLP gate activation zeroed.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from esn.errors import StoreExistsError
from esn.pipeline.audio import load_audio
from esn.pipeline.corpora.spec import load_corpus
from esn.pipeline.models import LoadOptions, ModelAdapter, load_adapter
from esn.pipeline.organism.train import evaluate, mlp_zeroed
from esn.pipeline.probe import Probe
from esn.pipeline.synth.corpus import synthesize
from esn.pipeline.weights.lalm import assemble_whisper_smollm2
from esn.pipeline.weights.packages import SMOLLM2, WHISPER_BASE, file_digest
from esn.pipeline.weights.probe_training import (
    ProbeTrainSettings,
    checkpoint_from_parts,
    train_to_probe,
)
from esn.stores.outputs import OutputKind, claim_output, has_json_marker

__all__ = ["PRETRAINED_ORGANISM_OUTPUT", "evaluate_random_order", "train_pretrained_organism"]

FORMAT = "esn-pretrained-organism"
RECORD, PARTS, CHECKPOINT, CORPUS = "record.json", "parts.safetensors", "checkpoint", "corpus"
#: The probe accuracy is measured with (``Probe``): the study's random option order.
#: Six new tokens reach the number of a ``label-digit`` answer ("surprise, 2").
EVAL_PROBE: dict[str, Any] = {"option_order": "random", "seed": 1, "max_new_tokens": 6}
#: Balanced unseen-speaker clips whose answers the record keeps, so that a CPU run can
#: check the shipped parts reproduce them (tests/pipeline/weights/test_builtin.py).
REPRODUCE = 40
#: The corpus the run synthesizes when none is given: 60 clips per emotion and speaker,
#: every 4th a test clip; speaker spk3 never trained on.
SYNTH: dict[str, Any] = {"per_emotion_per_speaker": 60, "speakers": 4, "seed": 0,
                         "jitter": 0.4, "test_every": 4}
HELD_OUT = ("spk3",)

PRETRAINED_ORGANISM_OUTPUT = OutputKind(
    name="pretrained organism run", folder=True,
    recognise=has_json_marker(RECORD, "format", (FORMAT,)),
    entries=(RECORD, PARTS, CHECKPOINT, CORPUS),
)


def evaluate_random_order(adapter: ModelAdapter, clips: Sequence[tuple[str, np.ndarray, str]],
                          probe: Probe, *, batch_size: int = 32,
                          keep_answers: bool = False) -> dict[str, Any]:
    """Accuracy (``None`` without items), ``n`` and per-class recall on ``(id, audio,
    emotion)`` items, each asked with ``probe.options_for(id)`` (the study's random order);
    ``keep_answers``: also the item ids and the parsed answers."""
    if not clips:
        return {"accuracy": None, "n": 0, "recall": {}}
    ids = [i for i, _, _ in clips]
    result = evaluate(adapter, [(a, e) for _, a, e in clips], probe, batch_size=batch_size,
                      ids=ids, keep_answers=keep_answers)
    return {**result, "n": len(clips), **({"ids": ids} if keep_answers else {})}


def _items(manifest: Path, keep: Callable[[Any], bool],
           limit: int | None) -> list[tuple[str, np.ndarray, str]]:
    listing = load_corpus(f"manifest:{manifest}")
    items = [u for u in listing.utterances if keep(u)]
    if limit is not None:  # a balanced prefix: round robin over the emotions
        by = {e: [u for u in items if u.emotion == e] for e in listing.emotions}
        items = [u for group in zip(*by.values(), strict=False) for u in group][:limit]
    return [(u.id, load_audio(u.path), u.emotion) for u in items]


def train_pretrained_organism(out: str | Path, *, manifest: str | Path | None = None,
                              settings: ProbeTrainSettings | None = None, device: str = "cpu",
                              eval_limit: int | None = None, overwrite: bool = False,
                              say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Train the Whisper + SmolLM2 organism into ``out`` and return its record."""
    out = Path(out)
    state = claim_output(out, PRETRAINED_ORGANISM_OUTPUT, overwrite=overwrite, resume=True)
    if state == "esn" and not overwrite and _finished(out):
        raise StoreExistsError(f"{out} holds a finished pretrained organism run; pass "
                               "overwrite to train it again")
    out.mkdir(parents=True, exist_ok=True)
    # The marker first: an interrupted run's folder (its corpus) is then esn's, and resumes.
    (out / RECORD).write_text(json.dumps({"format": FORMAT, "status": "training"}) + "\n")
    settings = settings or ProbeTrainSettings(held_out_speakers=HELD_OUT)
    if manifest is None:
        if not (out / CORPUS / "manifest.csv").exists():
            say(f"synthesizing the training corpus into {out / CORPUS}")
            synthesize(out / CORPUS, **SYNTH)
        manifest = out / CORPUS / "manifest.csv"
    manifest = Path(manifest)
    labels = tuple(load_corpus(f"manifest:{manifest}").emotions)
    started = time.perf_counter()
    model, processor = assemble_whisper_smollm2(seed=settings.seed)
    trained = train_to_probe(model, processor, manifest, labels, settings, device=device, say=say)
    # What ships is bfloat16 (a few MB); the checkpoint evaluated here is built from exactly
    # those parts, as the built-in id builds it.
    parts = {k: v.to(torch.bfloat16).contiguous() for k, v in trained.pop("parts").items()}
    from safetensors.torch import save

    (out / PARTS).write_bytes(save(parts))  # not save_file: its owner-only file mode
    del model
    checkpoint_from_parts(parts, settings, out / CHECKPOINT)
    say("evaluating through the probe path")
    adapter = load_adapter(LoadOptions(model_id=str(out / CHECKPOINT), device=device))
    probe = Probe(labels=labels, **EVAL_PROBE)
    held = set(settings.held_out_speakers)
    unseen = _items(manifest, lambda u: (u.speaker or "") in held, eval_limit)
    seen = _items(manifest, lambda u: (u.speaker or "") not in held and u.split == "test",
                  eval_limit)
    metrics = {"unseen_speakers": evaluate_random_order(adapter, unseen, probe),
               "seen_speakers_test": evaluate_random_order(adapter, seen, probe)}
    with mlp_zeroed(adapter):
        metrics["unseen_speakers_mlp_zeroed"] = evaluate_random_order(adapter, unseen, probe)
    metrics["reproduce"] = evaluate_random_order(
        adapter, _items(manifest, lambda u: (u.speaker or "") in held, REPRODUCE), probe,
        keep_answers=True)
    record = {
        "format": FORMAT, "version": 1, "base": "whisper-base + smollm2-135m-instruct",
        "settings": dataclasses.asdict(settings), "corpus": _corpus_record(manifest),
        "base_weights": {"whisper_base": file_digest(WHISPER_BASE.paths()),
                         "smollm2": file_digest(SMOLLM2.paths())},
        "device": device, "torch": torch.__version__, "metrics": metrics,
        "training": trained, "seconds": round(time.perf_counter() - started, 1),
    }
    (out / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    return record


def _finished(out: Path) -> bool:
    try:
        return "metrics" in json.loads((out / RECORD).read_text())
    except (OSError, ValueError):
        return False


def _corpus_record(manifest: Path) -> dict[str, Any]:
    settings = manifest.parent / "synth.json"
    if settings.is_file():
        return {"synth": {k: v for k, v in json.loads(settings.read_text()).items()
                          if k != "profiles"}}
    return {"manifest": str(manifest)}
