"""What Kimi-Audio hears of a clip: discrete speech tokens and continuous Whisper features.

``SpeechFrontEnd`` is the small interface esn needs: for one 16-kHz clip, the GLM-4-Voice
speech-token ids (12.5 Hz, before Kimi's ``kimia_token_offset``) and the Whisper-large-v3
features reshaped to 12.5 Hz x 5120, one row per token. Two implementations:

- ``KimiaInferFrontEnd``: the user's installed ``kimia_infer`` (MoonshotAI/Kimi-Audio), its
  ``Glm4Tokenizer`` (``kimia_infer.models.tokenizer.glm4_tokenizer``, weights from the hub id
  ``THUDM/glm-4-voice-tokenizer`` or a ``glm-4-voice-tokenizer/`` folder in the checkpoint) and
  its ``WhisperEncoder`` (``kimia_infer.models.tokenizer.whisper_Lv3.whisper``, on the
  checkpoint's ``whisper-large-v3/`` folder), called as Kimi's own ``KimiAPromptManager``
  calls them. Both hard-code CUDA, as Kimi's code does.
- ``StandInFrontEnd``: esn's deterministic stand-in for tests and tiny checkpoints (no
  weights, no CUDA): tokens and features computed from 80-ms frames of the clip. A checkpoint
  uses it only when it holds ``esn_speech_frontend.json`` saying so (a real snapshot has no
  such file).

Per 30-s segment of L samples both give ``(L - 1) // 1280 + 1`` rows, the count Kimi's
Whisper wrapper keeps; a long clip is heard whole, segment after segment.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from esn.errors import MissingDependencyError, ModelLoadError

__all__ = ["FRONTEND_FILE", "KIMIA_INSTALL", "KimiaInferFrontEnd", "SpeechFrontEnd",
           "StandInFrontEnd", "load_frontend"]

#: The file that puts esn's stand-in front-end behind a (tiny) checkpoint.
FRONTEND_FILE = "esn_speech_frontend.json"
#: Where the GLM-4-Voice speech tokenizer comes from, as Kimi's prompt manager loads it.
GLM4_VOICE_TOKENIZER = "THUDM/glm-4-voice-tokenizer"
KIMIA_INSTALL = (
    "pip install git+https://github.com/MoonshotAI/Kimi-Audio (package kimia_infer, with its "
    "GLM-4-Voice submodule: git clone --recursive, then pip install -e .); the speech "
    f"tokenizer's weights are the hub model {GLM4_VOICE_TOKENIZER} (huggingface-cli download "
    f"{GLM4_VOICE_TOKENIZER}); a CUDA GPU is needed"
)
SAMPLE_RATE = 16000
SEGMENT_SAMPLES = 30 * SAMPLE_RATE
FRAME_SAMPLES = 1280  # one 12.5-Hz token


class SpeechFrontEnd(Protocol):
    """Discrete and continuous audio input of Kimi-Audio for one clip."""

    @property
    def identity(self) -> str:
        """What a store records of the front-end (part of the model's identity)."""

    def audio_tokens(self, clip: np.ndarray) -> list[int]:
        """GLM-4-Voice ids (0..codebook-1, no offset) of a mono 16-kHz clip."""

    def whisper_features(self, clip: np.ndarray) -> torch.Tensor:
        """``(tokens, 5120)`` float features (Whisper's 50-Hz x 1280 output, by fours)."""


@dataclasses.dataclass(frozen=True)
class StandInFrontEnd:
    """Deterministic stand-in: per 80-ms frame, the token is the frame's log-energy
    quantised into ``codebook`` bins, and the features are a fixed random projection
    (seeded) of [log-energy, zero-crossing rate, mean, 1]. Shaped like the real thing."""

    codebook: int
    feature_dim: int
    seed: int = 0

    @property
    def identity(self) -> str:
        return f"esn-stand-in(codebook={self.codebook},dim={self.feature_dim},seed={self.seed})"

    def description(self) -> dict[str, Any]:
        """What ``esn_speech_frontend.json`` holds (the width comes from the config)."""
        return {"kind": "stand-in", "codebook": self.codebook, "seed": self.seed}

    @classmethod
    def from_description(cls, spec: dict[str, Any], feature_dim: int) -> StandInFrontEnd:
        """The inverse of ``description`` (``ValueError``/``KeyError`` when it is not one)."""
        if spec.get("kind") != "stand-in":
            raise ValueError(f"unknown kind {spec.get('kind')!r}")
        return cls(codebook=int(spec["codebook"]), feature_dim=feature_dim,
                   seed=int(spec.get("seed", 0)))

    def _frames(self, clip: np.ndarray) -> np.ndarray:
        rows = []
        for start in range(0, clip.size, SEGMENT_SAMPLES):
            segment = clip[start:start + SEGMENT_SAMPLES]
            n = (segment.size - 1) // FRAME_SAMPLES + 1
            padded = np.zeros(n * FRAME_SAMPLES, dtype=np.float64)
            padded[:segment.size] = segment
            rows.append(padded.reshape(n, FRAME_SAMPLES))
        return np.concatenate(rows)

    def _measures(self, clip: np.ndarray) -> np.ndarray:
        frames = self._frames(np.asarray(clip, dtype=np.float32))
        energy = np.log10(np.mean(frames ** 2, axis=1) + 1e-8)
        crossings = np.mean(np.abs(np.diff(np.sign(frames), axis=1)) > 0, axis=1)
        return np.stack([energy, crossings, frames.mean(axis=1), np.ones(len(frames))], 1)

    def audio_tokens(self, clip: np.ndarray) -> list[int]:
        energy = self._measures(clip)[:, 0]
        bins = np.clip(((energy + 8.0) / 8.0 * self.codebook).astype(int), 0, self.codebook - 1)
        return [int(b) for b in bins]

    def whisper_features(self, clip: np.ndarray) -> torch.Tensor:
        projection = np.random.default_rng(self.seed).standard_normal((4, self.feature_dim))
        return torch.from_numpy(self._measures(clip) @ projection).float()


class KimiaInferFrontEnd:
    """``kimia_infer``'s speech tokenizer and Whisper wrapper (module docstring), loaded
    once and called per clip as ``KimiAPromptManager`` calls them."""

    def __init__(self, checkpoint: Path, tokenizer_location: str,
                 device: str | int = "cuda") -> None:
        from kimia_infer.models.tokenizer.glm4_tokenizer import Glm4Tokenizer
        from kimia_infer.models.tokenizer.whisper_Lv3.whisper import WhisperEncoder

        self.tokenizer: Any = Glm4Tokenizer(tokenizer_location).to(device)
        whisper: Any = WhisperEncoder(str(checkpoint / "whisper-large-v3"), mel_batch_size=20)
        self.whisper = whisper.to(device).bfloat16().eval()
        self._identity = f"kimia_infer(speech tokenizer {tokenizer_location})"

    @property
    def identity(self) -> str:
        return self._identity

    def audio_tokens(self, clip: np.ndarray) -> list[int]:
        tokens = self.tokenizer.tokenize(speech=torch.from_numpy(clip)[None], sr=SAMPLE_RATE)
        return [int(t) for t in tokens.reshape(-1).tolist()]

    def whisper_features(self, clip: np.ndarray) -> torch.Tensor:
        out = self.whisper.tokenize_waveform(torch.from_numpy(clip)[None])
        features: torch.Tensor = out.reshape(out.shape[0], out.shape[1] // 4, out.shape[2] * 4)
        return features[0].float().cpu()


def load_frontend(checkpoint: Path, *, feature_dim: int) -> SpeechFrontEnd:
    """The front-end of a Kimi-Audio checkpoint folder: esn's stand-in where the folder's
    ``esn_speech_frontend.json`` asks for it, else ``kimia_infer`` (a clear error names what
    to install when it is missing)."""
    marker = checkpoint / FRONTEND_FILE
    if marker.is_file():
        try:
            spec = json.loads(marker.read_text(encoding="utf-8"))
            return StandInFrontEnd.from_description(spec, feature_dim)
        except (ValueError, KeyError, TypeError) as err:
            raise ModelLoadError(f"{marker}: not an esn front-end description ({err})") from err
    if importlib.util.find_spec("kimia_infer") is None:
        raise MissingDependencyError(
            f"{checkpoint} is Kimi-Audio, whose audio input (GLM-4-Voice speech tokens and "
            f"Whisper-large-v3 features) esn takes from MoonshotAI's kimia_infer: {KIMIA_INSTALL}"
        )
    if not (checkpoint / "whisper-large-v3").is_dir():
        raise ModelLoadError(f"{checkpoint}: no whisper-large-v3/ folder (Kimi-Audio's "
                             "snapshot keeps Whisper-large-v3 there)")
    if not torch.cuda.is_available():
        raise ModelLoadError("Kimi-Audio's speech tokenizer and Whisper wrapper (kimia_infer) "
                             "run on CUDA only: use --device cuda on a machine with a GPU")
    local = checkpoint / "glm-4-voice-tokenizer"
    return KimiaInferFrontEnd(checkpoint, str(local) if local.is_dir() else GLM4_VOICE_TOKENIZER,
                              torch.cuda.current_device())
