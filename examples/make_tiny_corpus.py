"""Write examples/tiny: eight half-second clips and a manifest, the README's first-run corpus.

Deterministic (seeded); rerun to regenerate. The clips are tones with noise, labelled as if
they were emotional speech, so every corpus code path runs without any real data.

    python examples/make_tiny_corpus.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16_000
EMOTIONS = {"anger": 220.0, "happy": 262.0, "neutral": 180.0, "sad": 150.0}
SPEAKERS = {"spk1": 1.0, "spk2": 1.4}


def main(out: Path = Path(__file__).parent / "tiny") -> None:
    rng = np.random.default_rng(0)
    out.mkdir(parents=True, exist_ok=True)
    t = np.arange(RATE // 2) / RATE
    rows = []
    for speaker, scale in SPEAKERS.items():
        for emotion, f0 in EMOTIONS.items():
            wave = 0.3 * np.sin(2 * np.pi * f0 * scale * t) + 0.01 * rng.standard_normal(t.size)
            name = f"{speaker}_{emotion}.wav"
            sf.write(out / name, wave.astype(np.float32), RATE, subtype="PCM_16")
            split = "test" if speaker == "spk2" else "train"
            rows.append({"path": name, "label": emotion, "speaker": speaker, "split": split})
    with (out / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "speaker", "split"])
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
