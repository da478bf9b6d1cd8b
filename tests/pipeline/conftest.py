"""Fixtures shared by the pipeline tests: a small manifest corpus with clips of varied lengths."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

RATE = 16000
CLIPS = [  # (name, emotion, speaker, seconds): lengths differ so batches need padding
    ("a1", "anger", "s1", 0.5), ("h1", "happy", "s1", 1.1), ("s1", "sad", "s1", 0.8),
    ("a2", "anger", "s2", 1.4), ("h2", "happy", "s2", 0.6), ("s2", "sad", "s2", 1.0),
    ("a3", "anger", "s3", 0.7),
]


def write_clip(path: Path, seconds: float, f0: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    wave = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.05 * rng.standard_normal(t.size)
    sf.write(path, wave.astype(np.float32), RATE)


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    """A manifest of seven clips (anger x3, happy x2, sad x2) plus one corrupt file."""
    return write_manifest(tmp_path)


def write_manifest(folder: Path) -> Path:
    """``folder/corpus/manifest.csv``: the ``manifest`` fixture's corpus."""
    root = folder / "corpus"
    root.mkdir()
    rows = []
    for i, (name, emotion, speaker, seconds) in enumerate(CLIPS):
        write_clip(root / f"{name}.wav", seconds, 120 + 40 * i, seed=i)
        rows.append({"path": f"{name}.wav", "label": emotion, "speaker": speaker})
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00")
    rows.insert(3, {"path": "broken.wav", "label": "happy", "speaker": "s3"})
    with (root / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "speaker"])
        writer.writeheader()
        writer.writerows(rows)
    return root / "manifest.csv"


def write_repeated_corpus(root: Path, *, repeat: int, f0: float, step: float,
                          splits: bool = False) -> Path:
    """``root/manifest.csv`` over ``CLIPS`` repeated ``repeat`` times (clip ``i`` a tone of
    ``f0 + step * i`` Hz, named ``NAME-i.wav``); with ``splits``, odd clips in ``test`` and
    even ones in ``train``."""
    rows = []
    for i, (name, emotion, speaker, seconds) in enumerate(CLIPS * repeat):
        write_clip(root / f"{name}-{i}.wav", seconds, f0 + step * i, seed=i)
        row = {"path": f"{name}-{i}.wav", "label": emotion, "speaker": speaker}
        if splits:
            row["split"] = "test" if i % 2 else "train"
        rows.append(row)
    with (root / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root / "manifest.csv"
