"""``synthesize``: a synthetic emotional speech corpus in the ``manifest:`` layout.

The folder gets one 16-kHz PCM-16 wav per clip, ``manifest.csv`` and ``synth.json``
(the settings and profiles). ``manifest.csv`` has the columns the manifest loader reads
(``path, label, speaker, split``; load it as ``manifest:<folder>/manifest.csv``) and then
``group`` (speaker group 0 or 1, for transfer between speaker groups: spk0, spk1 | spk2,
spk3 | spk4, spk5 ...), ``seed`` (the clip's RNG key) and every drawn clip parameter
(``f0_hz``, ``accent_st``, ``contour_st``, ``rate_sps``, ``level_db``, ``tilt``, ``breath``,
``formant_scale``, ``duration_s``) for acoustic-covariate analysis.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from esn.errors import RequestError
from esn.pipeline.synth.voice import (
    EMOTION_PROFILES,
    SAMPLE_RATE,
    ClipParams,
    draw_params,
    make_speakers,
    render,
)
from esn.stores.outputs import OutputKind, claim_output, has_json_marker, move_into_place

__all__ = ["MANIFEST_COLUMNS", "SYNTH_FORMAT", "SYNTH_OUTPUT", "SYNTH_VERSION", "read_settings",
           "synthesize"]

SYNTH_FORMAT = "esn-synth"
#: Bumped whenever the same settings would give other audio.
SYNTH_VERSION = 1
SETTINGS_FILE = "synth.json"
MANIFEST_COLUMNS: tuple[str, ...] = (
    "path", "label", "speaker", "split", "group", "seed",
    *(field.name for field in dataclasses.fields(ClipParams)),
)
#: A synth corpus is esn's when its ``synth.json`` has the synth format; overwrite removes
#: its clips (``spkS_EMOTION_III.wav``), ``manifest.csv`` and ``synth.json``, nothing else.
SYNTH_OUTPUT = OutputKind(name="synth corpus", folder=True,
                          recognise=has_json_marker(SETTINGS_FILE, "format", (SYNTH_FORMAT,)),
                          entries=("spk*_*_*.wav", "manifest.csv", SETTINGS_FILE))


def synthesize(
    out: str | Path,
    *,
    per_emotion_per_speaker: int,
    speakers: int = 4,
    seed: int = 0,
    emotions: Sequence[str] = tuple(EMOTION_PROFILES),
    test_every: int = 4,
    jitter: float = 1.0,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic corpus into ``out`` and return its ``manifest.csv``.

    Each speaker says ``per_emotion_per_speaker`` clips of each emotion; clip ``i`` of a
    (speaker, emotion) is in the test split when ``i % test_every == test_every - 1``
    (``test_every=0``: all train). A clip's audio depends only on ``seed``, its speaker,
    emotion and index, so the same settings give byte-identical files and a larger corpus
    contains a smaller one. ``jitter`` scales the per-clip parameter spread.

    Raises ``RequestError`` for bad settings, ``OutputRefusedError`` when ``out`` exists
    and is neither an empty folder nor a synth corpus, and ``StoreExistsError`` when it is
    one and ``overwrite`` is false; with ``overwrite`` the corpus's own files are replaced
    and other files in the folder stay.
    """
    settings = _check_settings(per_emotion_per_speaker, speakers, emotions, test_every, jitter)
    target = Path(out).expanduser()
    claim_output(target, SYNTH_OUTPUT, overwrite=overwrite)
    voices = make_speakers(speakers)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Not mkdtemp: its owner-only mode would stay with the corpus after the rename.
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        rows = []
        for s, voice in enumerate(voices):
            for e, emotion in enumerate(emotions):
                for i in range(per_emotion_per_speaker):
                    key = (seed, s, e, i)
                    rng = np.random.default_rng(key)
                    params = draw_params(EMOTION_PROFILES[emotion], voice, rng, jitter=jitter)
                    name = f"{voice.name}_{emotion}_{i:03d}.wav"
                    sf.write(staging / name, render(params, rng), SAMPLE_RATE, subtype="PCM_16")
                    test = test_every > 0 and i % test_every == test_every - 1
                    rows.append({
                        "path": name, "label": emotion, "speaker": voice.name,
                        "split": "test" if test else "train", "group": voice.group,
                        "seed": "-".join(map(str, key)),
                        **{k: _fmt(v) for k, v in params.to_dict().items()},
                    })
        with (staging / "manifest.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(MANIFEST_COLUMNS), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        record = {
            "format": SYNTH_FORMAT, "version": SYNTH_VERSION, "seed": seed, **settings,
            "sample_rate": SAMPLE_RATE, "n_clips": len(rows),
            "speakers": [dataclasses.asdict(v) for v in voices],
            "profiles": {e: dataclasses.asdict(EMOTION_PROFILES[e]) for e in emotions},
        }
        (staging / SETTINGS_FILE).write_text(json.dumps(record, indent=1) + "\n", "utf-8")
        move_into_place(staging, target, SYNTH_OUTPUT, last=(SETTINGS_FILE,))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target / "manifest.csv"


def read_settings(folder: str | Path) -> dict[str, Any]:
    """The ``synth.json`` record of a synth corpus folder (or of a manifest's folder)."""
    path = Path(folder)
    if path.is_file():
        path = path.parent
    record: dict[str, Any] = json.loads((path / SETTINGS_FILE).read_text("utf-8"))
    if record.get("format") != SYNTH_FORMAT:
        raise RequestError(f"{path / SETTINGS_FILE} is not an {SYNTH_FORMAT} record")
    return record


def _check_settings(per_emotion_per_speaker: int, speakers: int, emotions: Sequence[str],
                    test_every: int, jitter: float) -> dict[str, Any]:
    if per_emotion_per_speaker < 1:
        raise RequestError(f"per_emotion_per_speaker must be >= 1, got {per_emotion_per_speaker}")
    if speakers < 1:
        raise RequestError(f"speakers must be >= 1, got {speakers}")
    unknown = [e for e in emotions if e not in EMOTION_PROFILES]
    if unknown or not emotions or len(set(emotions)) != len(emotions):
        raise RequestError(
            f"emotions must be distinct names among {', '.join(EMOTION_PROFILES)}; "
            f"got {list(emotions)}"
        )
    if test_every < 0 or test_every == 1:
        raise RequestError(f"test_every must be 0 (no test split) or >= 2, got {test_every}")
    if not 0 <= jitter <= 3:
        raise RequestError(f"jitter must be in 0..3, got {jitter}")
    return {"per_emotion_per_speaker": per_emotion_per_speaker, "n_speakers": speakers,
            "emotions": list(emotions), "test_every": test_every, "jitter": jitter}


def _fmt(value: float) -> str:
    return f"{value:.6g}"
