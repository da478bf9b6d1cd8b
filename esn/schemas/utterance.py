"""The one utterance record every corpus loader produces and every later step consumes."""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["Utterance"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Utterance:
    """One labelled audio item of a corpus.

    Attributes:
        id: Identifier unique within its corpus (e.g. ``Ses01F_impro01_F000``).
        corpus: Corpus name as in the spec string (``iemocap``, ``meld``, ``manifest``...).
        path: Audio file path (absolute, or a URL the audio reader accepts).
        emotion: Canonical emotion name (see ``esn.pipeline.corpora.emotions``).
        raw_label: The label exactly as the corpus writes it (``exc``, ``A``, ``05``...).
        speaker: Speaker identifier, or ``None`` when the corpus does not say.
        split: Published split name (``train``, ``test``...), or ``None`` when there is none.
    """

    id: str
    corpus: str
    path: str
    emotion: str
    raw_label: str
    speaker: str | None = None
    split: str | None = None

    def __post_init__(self) -> None:
        for name in ("id", "corpus", "path", "emotion"):
            if not getattr(self, name):
                raise ValueError(f"Utterance.{name} must be a non-empty string")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Utterance:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})
