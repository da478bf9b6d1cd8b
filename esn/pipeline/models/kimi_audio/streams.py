"""Kimi-Audio's probe prompt as two parallel token streams, as its prompt manager builds them.

One user turn holding the question (a text message) and then the clip (an audio message),
the order of Kimi's own examples (kimia_infer ``KimiAPromptManager.get_prompt``), in text-
output mode, ending where the assistant's answer starts::

    audio stream  U  _  ... _  B  a1 ... aN  E  ct  end  A
    text stream   _  t1 ... tn _  _  ...  _  _  _   _    _

U/A: ``<|im_kimia_user_msg_start|>``/``<|im_kimia_assistant_msg_start|>``, B/E: media begin
and end, ct: ``<|im_kimia_speech_ct_id|>``, end: ``<|im_msg_end|>``, ``_``:
``<|im_kimia_text_blank|>``, a_i: speech tokens + ``kimia_token_offset``, t_i: the question's
text ids (no bos/eos). ``is_continuous_mask`` is set on a1..aN, where the Whisper features
are mixed in.

Valid positions for the statistics: the speech tokens (the audio positions) and the
question's text tokens. Positions whose only ids are markers or blanks (U, B, E, ct, end, A)
are not counted.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from esn.pipeline.models.kimi_audio.frontend import SpeechFrontEnd

__all__ = ["KimiSpecialIds", "KimiStreams", "build_streams", "encode_text", "pad_streams"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class KimiSpecialIds:
    """The marker ids of the prompt (the text tokenizer's special tokens) and the offset of
    the speech tokens (``kimia_token_offset`` of the config)."""

    msg_end: int
    media_begin: int
    media_end: int
    text_blank: int
    text_eos: int
    user_msg_start: int
    assistant_msg_start: int
    speech_ct: int
    token_offset: int

    #: The tokenizer's names of each marker, as ``kimia_infer.utils.special_tokens`` reads them.
    NAMES = {
        "msg_end": "<|im_msg_end|>", "media_begin": "<|im_media_begin|>",
        "media_end": "<|im_media_end|>", "text_blank": "<|im_kimia_text_blank|>",
        "text_eos": "<|im_kimia_text_eos|>", "user_msg_start": "<|im_kimia_user_msg_start|>",
        "assistant_msg_start": "<|im_kimia_assistant_msg_start|>",
        "speech_ct": "<|im_kimia_speech_ct_id|>",
    }

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, token_offset: int) -> KimiSpecialIds:
        ids: dict[str, int] = {}
        table = getattr(tokenizer, "special_tokens", None)
        for field, name in cls.NAMES.items():
            value = table.get(name) if isinstance(table, dict) else None
            if value is None:
                value = tokenizer.convert_tokens_to_ids(name)
            unknown = getattr(tokenizer, "unk_token_id", None)
            if not isinstance(value, int) or (unknown is not None and value == unknown):
                raise ValueError(f"the text tokenizer has no special token {name}")
            ids[field] = int(value)
        return cls(token_offset=token_offset, **ids)

    @functools.cached_property
    def markers(self) -> frozenset[int]:
        return frozenset(getattr(self, field) for field in self.NAMES)


@dataclasses.dataclass(frozen=True)
class KimiStreams:
    """One item's prompt: the two streams, the continuous mask and the features at it
    (``(mask.sum(), feature_dim)``), and which positions count (module docstring)."""

    audio_ids: list[int]
    text_ids: list[int]
    continuous: list[bool]
    features: torch.Tensor
    valid: list[bool]


def encode_text(tokenizer: Any, text: str) -> list[int]:
    """The question's ids without bos/eos: Kimi's own tokenizer takes ``bos``/``eos``
    keywords (``encode(text, bos=False, eos=False)``), a transformers one
    ``add_special_tokens``."""
    parameters = inspect.signature(tokenizer.encode).parameters
    if "bos" in parameters:
        return [int(i) for i in tokenizer.encode(text, bos=False, eos=False)]
    return [int(i) for i in tokenizer.encode(text, add_special_tokens=False)]


def build_streams(clip: np.ndarray, prompt: str, *, tokenizer: Any, frontend: SpeechFrontEnd,
                  ids: KimiSpecialIds) -> KimiStreams:
    """The streams of one question about one clip (module docstring)."""
    speech = [ids.token_offset + t for t in frontend.audio_tokens(clip)]
    features = frontend.whisper_features(clip)
    if features.shape[0] != len(speech):
        raise RuntimeError(f"the speech front-end gave {len(speech)} tokens but "
                           f"{features.shape[0]} Whisper feature rows for one clip")
    question = encode_text(tokenizer, prompt)
    blank = ids.text_blank
    n, m = len(question), len(speech)
    audio_ids = [ids.user_msg_start, *[blank] * n, ids.media_begin, *speech, ids.media_end,
                 ids.speech_ct, ids.msg_end, ids.assistant_msg_start]
    text_ids = [blank, *question, *[blank] * (m + 5)]
    continuous = [False] * (n + 2) + [True] * m + [False] * 4
    specials = ids.markers | _tokenizer_specials(tokenizer)
    valid = [c or t not in specials for c, t in zip(continuous, text_ids, strict=True)]
    return KimiStreams(audio_ids, text_ids, continuous, features, valid)


def _tokenizer_specials(tokenizer: Any) -> frozenset[int]:
    table = getattr(tokenizer, "special_tokens", None)
    if isinstance(table, dict):
        return frozenset(int(i) for i in table.values())
    return frozenset(int(i) for i in getattr(tokenizer, "all_special_ids", ()))


def pad_streams(items: Sequence[KimiStreams], *, pad_id: int, feature_dim: int
                ) -> dict[str, torch.Tensor]:
    """Left-padded batch tensors: ``input_ids``/``text_input_ids``/``attention_mask``/
    ``is_continuous_mask``/``valid`` ``(B, L)`` and ``whisper_features`` ``(B, L, D)``
    (zeros off the continuous mask)."""
    length = max(len(item.audio_ids) for item in items)
    size = len(items)
    audio = torch.full((size, length), pad_id, dtype=torch.long)
    text = torch.full((size, length), pad_id, dtype=torch.long)
    attention = torch.zeros((size, length), dtype=torch.long)
    continuous = torch.zeros((size, length), dtype=torch.bool)
    valid = torch.zeros((size, length), dtype=torch.bool)
    features = torch.zeros((size, length, feature_dim), dtype=torch.float32)
    for b, item in enumerate(items):
        start = length - len(item.audio_ids)
        audio[b, start:] = torch.tensor(item.audio_ids)
        text[b, start:] = torch.tensor(item.text_ids)
        attention[b, start:] = 1
        continuous[b, start:] = torch.tensor(item.continuous)
        valid[b, start:] = torch.tensor(item.valid)
        features[b, start:][continuous[b, start:]] = item.features.float()
    return {"input_ids": audio, "text_input_ids": text, "attention_mask": attention,
            "is_continuous_mask": continuous, "whisper_features": features, "valid": valid}
