"""A planted model for the intervene tests: tiny-qwen2_5_omni with three gate neurons that
detect sad audio (pure tones, sad is low) and vote for sad's option; the circuit is the
positive control's (``esn.pipeline.demo.planted``)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf

from esn.pipeline.demo.planted import plant as plant_circuits
from esn.pipeline.models.base import ModelAdapter

LABELS = ("anger", "happy", "neutral", "sad")
TARGET = "sad"
F0 = {"anger": 520.0, "happy": 640.0, "neutral": 420.0, "sad": 130.0}
LAYER = 1
PLANTED = ((LAYER, 7), (LAYER, 21), (LAYER, 40))


def write_corpus(root: Path, per_emotion: int = 6, seed: int = 0) -> Path:
    """Tones whose pitch marks the emotion (sad is low), with speakers and a split."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for emotion in LABELS:
        for i in range(per_emotion):
            t = np.arange(int(rng.uniform(0.8, 1.6) * 16000)) / 16000
            wave = 0.3 * np.sin(2 * np.pi * F0[emotion] * rng.uniform(0.9, 1.1) * t)
            wave += 0.01 * rng.standard_normal(t.size)
            name = f"{emotion}{i}.wav"
            sf.write(root / name, wave.astype(np.float32), 16000)
            rows.append({"path": name, "label": emotion, "speaker": f"s{i % 3}",
                         "split": "train" if i % 2 == 0 else "test"})
    with (root / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "speaker", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return root / "manifest.csv"


def plant(adapter: ModelAdapter, manifest: Path) -> None:
    """Plant the sad circuit (see ``esn.pipeline.demo.planted``) in ``adapter.model``."""
    plant_circuits(adapter, manifest, {TARGET: [n for _, n in PLANTED]}, labels=LABELS,
                   layer=LAYER, vote=10.0, fit_split=None)
