"""The canonical emotion vocabulary, its aliases, and user-chosen merges between emotions.

Each corpus module keeps its own code table (``ang``, ``A``, ``05``...) and maps codes to the
canonical names here; merges (``excited=happy``) are applied after that mapping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from esn.errors import CorpusSpecError

__all__ = [
    "ALIASES",
    "CANONICAL_EMOTIONS",
    "apply_merge",
    "emotion_sort_key",
    "lookup_code",
    "normalize_label",
    "parse_merges",
]

CANONICAL_EMOTIONS: tuple[str, ...] = (
    "anger",
    "happy",
    "neutral",
    "sad",
    "surprise",
    "fear",
    "disgust",
    "frustration",
    "excited",
    "calm",
    "contempt",
    "other",
)

# Common spellings of the canonical names. MELD calls happiness "joy"; the study reports that
# class as happy, so joy is an alias rather than a merge.
ALIASES: dict[str, str] = {
    "angry": "anger",
    "mad": "anger",
    "happiness": "happy",
    "joy": "happy",
    "joyful": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "ps": "surprise",
    "pleasant_surprise": "surprise",
    "pleasant_surprised": "surprise",
    "pleasant surprise": "surprise",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "disgusted": "disgust",
    "frustrated": "frustration",
    "excitement": "excited",
    "neutrality": "neutral",
    "neutral state": "neutral",
    "calmness": "calm",
    "contemptuous": "contempt",
    # Three-letter codes (IEMOCAP's, CREMA-D's lower-cased), so ``--merge exc=happy`` works.
    "ang": "anger",
    "hap": "happy",
    "neu": "neutral",
    "sur": "surprise",
    "fea": "fear",
    "dis": "disgust",
    "fru": "frustration",
    "exc": "excited",
    "oth": "other",
}

_CANONICAL_ORDER = {name: i for i, name in enumerate(CANONICAL_EMOTIONS)}


def normalize_label(label: str) -> str:
    """Map a free-text label to its canonical name; unknown labels come back normalised.

    >>> normalize_label(" Angry ")
    'anger'
    >>> normalize_label("Boredom")
    'boredom'
    """
    key = " ".join(str(label).strip().lower().split())
    if key in _CANONICAL_ORDER:
        return key
    if key in ALIASES:
        return ALIASES[key]
    underscored = key.replace(" ", "_").replace("-", "_")
    return ALIASES.get(underscored, key)


def lookup_code(code: str, table: Mapping[str, str | None]) -> str | None:
    """Look ``code`` up in a corpus code table.

    Returns the canonical emotion, or ``None`` when the table marks the code as "no agreed
    label" (IEMOCAP ``xxx``, MSP-Podcast ``X``). Raises ``KeyError`` for a code not in the table.
    """
    return table[code.strip()]


def parse_merges(merges: Iterable[str] | Mapping[str, str] | None) -> dict[str, str]:
    """Parse ``["excited=happy", "frustration=anger"]`` into ``{"excited": "happy", ...}``.

    Both sides are normalised (``joy`` is ``happy``). Chains resolve to their end
    (``a=b`` and ``b=c`` give ``a -> c``). Raises ``CorpusSpecError`` (a ``ValueError``) for an
    item without exactly one ``=``, an empty side, a source merged into two targets, or a cycle.
    """
    if merges is None:
        return {}
    pairs: list[tuple[str, str, str]] = []
    if isinstance(merges, Mapping):
        pairs = [(f"{k}={v}", str(k), str(v)) for k, v in merges.items()]
    else:
        if isinstance(merges, str):
            merges = [merges]
        for item in merges:
            text = str(item)
            if text.count("=") != 1:
                raise CorpusSpecError(
                    f"malformed emotion merge {text!r}: expected SOURCE=TARGET, e.g. excited=happy"
                )
            source, target = text.split("=")
            pairs.append((text, source, target))
    result: dict[str, str] = {}
    for text, raw_source, raw_target in pairs:
        source, target = normalize_label(raw_source), normalize_label(raw_target)
        if not source or not target:
            raise CorpusSpecError(
                f"malformed emotion merge {text!r}: both sides must name an emotion"
            )
        if source in result and result[source] != target:
            raise CorpusSpecError(
                f"emotion merge {text!r} conflicts with {source}={result[source]}"
            )
        if source != target:
            result[source] = target
    return {source: _resolve(source, result) for source in result}


def _resolve(source: str, merges: Mapping[str, str]) -> str:
    seen = [source]
    current = merges[source]
    while current in merges:
        if current in seen:
            cycle = " -> ".join([*seen, current])
            raise CorpusSpecError(f"emotion merges form a cycle: {cycle}")
        seen.append(current)
        current = merges[current]
    return current


def apply_merge(emotion: str, merges: Mapping[str, str] | None) -> str:
    """The emotion ``emotion`` becomes under ``merges`` (itself when not merged)."""
    if not merges:
        return emotion
    return merges.get(emotion, emotion)


def emotion_sort_key(emotion: str) -> tuple[int, str]:
    """Sort canonical emotions in vocabulary order, then custom labels alphabetically."""
    return (_CANONICAL_ORDER.get(emotion, len(_CANONICAL_ORDER)), emotion)
