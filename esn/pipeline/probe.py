"""The emotion probe: a multiple-choice question per item, and the parse of the answer.

Each item gets the candidate emotions as numbered options. With ``option_order="random"``
(the study's setting) the emotion-to-number mapping is drawn per item from the seed and
the item id, so the same item always gets the same mapping, whatever the batch or the run.

The parse cascade (``parse_answer``, the one definition; the README says the same), on the
lower-cased answer:

1. digits: each maximal run of ASCII digits ``[0-9]+`` not preceded by ``.`` (so ``"1.5"``
   reads 1), in order; the first run whose value is an option number (1..n) is the answer.
   ``"12"`` with 4 options is no option (12), never option 1; ``"9 or 1"`` is option 1.
   Only ASCII digits count: ``"²"`` and the full-width ``"３"`` are not digits (nor words).
2. else the first number word (``"one"``..``"twelve"``) that is an option number;
3. else the first emotion name or alias (two words before one: ``"neutral state"``) that
   names one of the options; else no answer (``""``).

``decided_answer`` says when a *prefix* of an answer already fixes its parse, whatever
follows: when the digit step has found an option number in a run that has ended (a
character other than a digit follows). Replay decodes until then (``esn.pipeline.intervene``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import string
from collections.abc import Sequence

import numpy as np

from esn.errors import RequestError
from esn.pipeline.corpora.emotions import normalize_label
from esn.pipeline.decoding import DECODING, describe_decoding
from esn.schemas.store import ProbeInfo

__all__ = ["DEFAULT_TEMPLATE", "Probe", "decided_answer", "parse_answer"]

DEFAULT_TEMPLATE = (
    "What emotion does the speaker express? Options: {options}. "
    "Answer with the number of the option only."
)
NUMBER_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                "eleven", "twelve")
#: A maximal run of ASCII digits not preceded by "." (``\d`` would take any Unicode digit).
_DIGITS = re.compile(r"(?<![0-9.])([0-9]+)(?![0-9])", re.ASCII)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Probe:
    """How every item is asked: the label set, the template, the option order and its seed.

    ``template`` must contain ``{options}``, which becomes ``"1. anger, 2. happy, ..."``.
    """

    labels: tuple[str, ...]
    template: str = DEFAULT_TEMPLATE
    seed: int = 0
    option_order: str = "random"
    max_new_tokens: int = 20
    max_seconds: float | None = None  # cut every clip to this (and the model's window)

    def __post_init__(self) -> None:
        labels = tuple(self.labels)
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise RequestError(f"a probe needs at least two distinct labels, got {list(labels)}")
        if len(labels) > len(NUMBER_WORDS):
            raise RequestError(f"at most {len(NUMBER_WORDS)} options are supported")
        fields = {name for _, name, _, _ in string.Formatter().parse(self.template) if name}
        if fields != {"options"}:
            raise RequestError(
                f"the probe template must use exactly the field {{options}}, found {sorted(fields)}"
            )
        if self.option_order not in ("random", "fixed"):
            raise RequestError(
                f"option_order must be 'random' or 'fixed', got {self.option_order!r}")
        if not 1 <= self.max_new_tokens <= 512:
            raise RequestError(f"max_new_tokens must be in 1..512, got {self.max_new_tokens}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise RequestError(f"max seconds must be positive, got {self.max_seconds}")
        object.__setattr__(self, "labels", labels)

    @classmethod
    def from_info(cls, info: ProbeInfo, labels: Sequence[str]) -> Probe:
        """The probe a store was made with. A store decoded otherwise than esn decodes now
        is refused (its answers are not this esn's); one without a recorded decoding (older
        than the record) is accepted."""
        if info.decoding and dict(info.decoding) != dict(DECODING):
            raise RequestError(
                f"the store's answers were made under {describe_decoding(info.decoding)}; "
                f"this esn decodes with {describe_decoding(DECODING)}")
        return cls(labels=tuple(labels), template=info.template, seed=info.seed,
                   option_order=info.option_order, max_new_tokens=info.max_new_tokens,
                   max_seconds=info.max_seconds)

    @property
    def info(self) -> ProbeInfo:
        return ProbeInfo(template=self.template, seed=self.seed,
                         option_order=self.option_order, max_new_tokens=self.max_new_tokens,
                         decoding=dict(DECODING), max_seconds=self.max_seconds)

    def options_for(self, item_id: str) -> tuple[str, ...]:
        """The emotion presented as option number i+1, for this item."""
        if self.option_order == "fixed":
            return self.labels
        digest = hashlib.sha256(f"{self.seed}\0{item_id}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        return tuple(self.labels[i] for i in rng.permutation(len(self.labels)))

    def prompt(self, options: Sequence[str]) -> str:
        listed = ", ".join(f"{i}. {label}" for i, label in enumerate(options, start=1))
        return self.template.format(options=listed)

    def parse(self, answer: str, options: Sequence[str]) -> str:
        return parse_answer(answer, options)


def parse_answer(answer: str, options: Sequence[str]) -> str:
    """The emotion an answer picks among ``options`` (option i+1 = ``options[i]``), or ``""``.

    Cascade (module docstring): the first run of ASCII digits that is an option number;
    else the first number word that is; else the first emotion name or alias that names
    one of the options.
    """
    text = answer.lower()
    for match in _DIGITS.finditer(text):
        number = int(match.group(1))
        if 1 <= number <= len(options):
            return options[number - 1]
    words = re.findall(r"[a-z]+", text)
    for word in words:
        if word in NUMBER_WORDS:
            number = NUMBER_WORDS.index(word) + 1
            if number <= len(options):
                return options[number - 1]
    wanted = set(options)
    for i, word in enumerate(words):
        pair = f"{word} {words[i + 1]}" if i + 1 < len(words) else ""
        for candidate in (pair, word):  # "neutral state", "pleasant surprise" before one word
            if candidate and normalize_label(candidate) in wanted:
                return normalize_label(candidate)
    return ""


def decided_answer(prefix: str, options: Sequence[str]) -> str | None:
    """The parse of every answer that begins with ``prefix``, when ``prefix`` already fixes
    it; ``None`` while what follows could still change it.

    Fixed only by the digit step: an option-number run that has ended inside ``prefix``
    (``"1."``, ``"1 "``, ``"3 sad"``, ``"9 or 1)"``), with no unfinished run before it.
    ``"1"`` is not fixed (it may go on to ``"12"``), nor is ``"sad"`` (a later digit wins).
    """
    text = prefix.lower()
    for match in _DIGITS.finditer(text):
        if match.end() == len(text):
            return None  # the run may continue
        number = int(match.group(1))
        if 1 <= number <= len(options):
            return options[number - 1]
    return None
