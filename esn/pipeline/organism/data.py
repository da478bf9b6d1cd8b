"""The organism's training data: every clip of a manifest corpus through the real probe path
(adapter ``build_batch``: processor, chat template, mRoPE positions), padded to one length,
and frame-level acoustic targets for pre-training the audio encoder.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from esn.pipeline.audio import load_audio
from esn.pipeline.corpora.spec import load_corpus
from esn.pipeline.models.base import ModelAdapter
from esn.pipeline.probe import Probe
from esn.schemas.utterance import Utterance

__all__ = ["ClipData", "N_TARGETS", "PROSODY_COLUMNS", "acoustic_targets", "prepare"]

#: Per audio token: log RMS, log F0 (voiced frames), voicing, log spectral centroid.
N_TARGETS = 4
#: Clip-level prosody parameters of a synth manifest (``esn.pipeline.synth``), regressed
#: from every audio token: base F0, accent range, contour, speaking rate, level, tilt.
PROSODY_COLUMNS = ("f0_hz", "accent_st", "contour_st", "rate_sps", "level_db", "tilt")
_LOG_COLUMNS = ("f0_hz", "rate_sps")
HOP = 640  # samples per audio token at 16 kHz (25 tokens per second)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClipData:
    """N clips as padded probe inputs (left padding to one length L).

    Attributes:
        input_ids, attention_mask: ``(N, L)``.
        positions: ``(3, N, L)`` mRoPE positions (as the thinker computes them).
        audio: ``(N, L)`` bool, the audio placeholder positions.
        features: ``(N, 128, F)`` log-mel input features (zero beyond each clip's frames),
            ``feature_mask`` ``(N, F)``.
        targets: per clip, ``(n_audio_tokens, N_TARGETS)`` acoustic targets, ``voiced`` the
            matching bool mask of voiced tokens.
        prosody: ``(N, len(PROSODY_COLUMNS))`` standardised clip parameters (log for F0
            and rate), or ``None`` when the manifest lacks the columns.
        labels: ``(N,)`` class index into the probe's labels; ``split``: per clip.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    positions: torch.Tensor
    audio: torch.Tensor
    features: torch.Tensor
    feature_mask: torch.Tensor
    targets: tuple[torch.Tensor, ...]
    voiced: tuple[torch.Tensor, ...]
    prosody: torch.Tensor | None
    labels: torch.Tensor
    split: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def indices(self, split: str) -> torch.Tensor:
        return torch.tensor([i for i, s in enumerate(self.split) if s == split])


def prepare(adapter: ModelAdapter, manifest: str, probe: Probe, *,
            chunk: int = 64) -> ClipData:
    """Load ``manifest`` (a ``manifest:`` spec path) and build every clip's probe inputs."""
    listing = load_corpus(f"manifest:{manifest}", emotions=list(probe.labels))
    items: Sequence[Utterance] = listing.utterances
    prompt = probe.prompt(probe.labels)
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in
                                            ("ids", "mask", "pos", "audio", "feat", "fmask")}
    targets, voiced = [], []
    for start in range(0, len(items), chunk):
        clips = [load_audio(u.path, sample_rate=adapter.sample_rate)
                 for u in items[start:start + chunk]]
        batch = adapter.build_batch(clips, [prompt] * len(clips))
        parts["ids"].append(batch.input_ids)
        parts["mask"].append(batch.attention_mask)
        parts["pos"].append(adapter.rope_positions(batch))
        parts["audio"].append(batch.audio)
        fmask = batch.inputs["feature_attention_mask"]
        frames = int(fmask.sum(-1).max())
        parts["feat"].append(batch.inputs["input_features"][:, :, :frames])
        parts["fmask"].append(fmask[:, :frames])
        for clip, n_tokens in zip(clips, batch.audio.sum(-1).tolist(), strict=True):
            t, v = acoustic_targets(clip, int(n_tokens), adapter.sample_rate)
            targets.append(t)
            voiced.append(v)
    length = max(int(t.shape[1]) for t in parts["ids"])
    frames = max(int(t.shape[-1]) for t in parts["feat"])
    pad_id = int(adapter.tokenizer.pad_token_id)
    return ClipData(
        input_ids=torch.cat([_left(t, length, pad_id) for t in parts["ids"]]),
        attention_mask=torch.cat([_left(t, length, 0) for t in parts["mask"]]),
        positions=torch.cat([_left(t, length, 1) for t in parts["pos"]], dim=1),
        audio=torch.cat([_left(t, length, False) for t in parts["audio"]]),
        features=torch.cat([_right(t, frames) for t in parts["feat"]]),
        feature_mask=torch.cat([_right(t, frames) for t in parts["fmask"]]),
        targets=tuple(targets), voiced=tuple(voiced), prosody=_prosody(manifest, items),
        labels=torch.tensor([probe.labels.index(u.emotion) for u in items]),
        split=tuple(u.split or "" for u in items),
    )


def acoustic_targets(clip: np.ndarray, n_tokens: int, rate: int) -> tuple[torch.Tensor,
                                                                          torch.Tensor]:
    """``(n_tokens, N_TARGETS)`` targets of one clip (one row per 40-ms audio token) and the
    ``(n_tokens,)`` voiced mask (yin F0 on frames louder than 10% of the clip's peak RMS)."""
    import librosa

    audio = np.asarray(clip, dtype=np.float32)
    rms = librosa.feature.rms(y=audio, frame_length=1024, hop_length=HOP)[0]
    f0 = librosa.yin(audio, fmin=60, fmax=700, sr=rate, frame_length=1024, hop_length=HOP)
    centroid = librosa.feature.spectral_centroid(y=audio, sr=rate, n_fft=1024, hop_length=HOP)[0]
    n = min(rms.size, f0.size, centroid.size)
    voiced = rms[:n] > 0.1 * rms.max()
    table = np.stack([
        np.log10(rms[:n] + 1e-5) + 2.0,
        np.where(voiced, np.log2(f0[:n] / 160.0), 0.0),
        voiced.astype(np.float64),
        np.log2(centroid[:n] + 50.0) - 10.0,
    ], axis=1)
    if n < n_tokens:
        table = np.concatenate([table, np.repeat(table[-1:], n_tokens - n, axis=0)])
        voiced = np.concatenate([voiced, np.zeros(n_tokens - n, dtype=bool)])
    return (torch.tensor(table[:n_tokens], dtype=torch.float32),
            torch.tensor(voiced[:n_tokens]))


def _prosody(manifest: str, items: Sequence[Utterance]) -> torch.Tensor | None:
    """The items' ``PROSODY_COLUMNS`` from the manifest CSV (rows matched by audio path)."""
    path = Path(manifest)
    if path.suffix.lower() != ".csv":
        return None
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or any(c not in rows[0] for c in PROSODY_COLUMNS):
        return None
    by_path = {str((path.parent / r["path"]).resolve()): r for r in rows}
    table = np.array([[float(by_path[str(Path(u.path).resolve())][c]) for c in PROSODY_COLUMNS]
                      for u in items])
    for j, column in enumerate(PROSODY_COLUMNS):
        if column in _LOG_COLUMNS:
            table[:, j] = np.log(table[:, j])
    table = (table - table.mean(0)) / (table.std(0) + 1e-6)
    return torch.tensor(table, dtype=torch.float32)


def _left(t: torch.Tensor, length: int, value: float | bool) -> torch.Tensor:
    pad = length - t.shape[-1]
    if pad == 0:
        return t
    filler = torch.full((*t.shape[:-1], pad), value, dtype=t.dtype)
    return torch.cat([filler, t], dim=-1)


def _right(t: torch.Tensor, length: int) -> torch.Tensor:
    return torch.nn.functional.pad(t, (0, length - t.shape[-1]))
