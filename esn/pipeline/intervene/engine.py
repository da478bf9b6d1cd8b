"""Answers of stored items under every condition: by replay where it decides, else in full.

``replay``: from the latest hidden-state checkpoint at or below the condition's earliest
intervened layer (the baseline uses the last checkpoint), rerun the remaining layers for
many (condition, item) pairs per pass, each row with its own intervention, and take the
first token. It is the whole answer when it ends the sequence or ``max_new_tokens`` is 1.
Otherwise, with a layer-0 checkpoint, those rows decode on greedily from it
(``replay_greedy``, a KV cache) until the parse is fixed (``esn.pipeline.probe.
decided_answer``: an option number whose run of digits has ended) or the answer is complete
(end of sequence, or ``max_new_tokens``): a word such as ``"sad"`` decodes to the end,
since a later digit would win. Without a layer-0 checkpoint such items go to ``full``:
decode the audio, build the batch, and generate with the intervention. Either way the parse
is that of the full answer. Items whose stored answer (at extraction) took more than one
token, opens with a digit or is empty start straight from the layer-0 checkpoint when it
exists, since they would decode on anyway. ``engine="auto"`` does exactly that;
``"replay"`` refuses conditions it cannot replay; ``"full"`` never replays.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence

import numpy as np
import torch

from esn.errors import RequestError
from esn.pipeline.audio import listening_window, load_heard
from esn.pipeline.intervene.conditions import Condition
from esn.pipeline.intervene.hooks import intervention_hooks
from esn.pipeline.intervene.replay import (
    ReplayInputs,
    choose_checkpoint,
    is_ascii_digits,
    replay_first_logits,
    replay_greedy,
)
from esn.pipeline.models.base import ModelAdapter, ProbeBatch
from esn.pipeline.probe import Probe, decided_answer
from esn.stores.activations import ActivationStore
from esn.stores.checkpoints import CheckpointChunk

__all__ = ["Answers", "answer_items"]

ENGINES = ("auto", "replay", "full")


@dataclasses.dataclass(frozen=True)
class Answers:
    """``(condition, item)`` raw text, parsed emotion, and which engine answered."""

    raw: np.ndarray
    parsed: np.ndarray
    engine: np.ndarray


def answer_items(adapter: ModelAdapter, store: ActivationStore, items: Sequence[int],
                 conditions: Sequence[Condition], *, engine: str = "auto",
                 batch_size: int = 8, progress: Callable[[int, int], None] | None = None,
                 ) -> Answers:
    """Answers for store utterances ``items`` under each condition; ``progress(done,
    total)`` counts answered (condition, item) pairs."""
    if engine not in ENGINES:
        raise RequestError(f"engine must be one of {ENGINES}, got {engine!r}")
    probe = Probe.from_info(store.attributes.probe, store.attributes.labels)
    options = store.metadata("options")
    shape = (len(conditions), len(items))
    raw = np.full(shape, "", dtype=object)
    parsed = np.full(shape, "", dtype=object)
    used = np.full(shape, "", dtype=object)
    pending: dict[int, list[int]] = defaultdict(list)  # condition -> item positions left
    checkpoints = store.layout.checkpoint_layers
    for c, condition in enumerate(conditions):
        layer = _replay_layer(condition, checkpoints) if engine != "full" else None
        if layer is None:
            if engine == "replay":
                raise RequestError(f"{condition.name}: no checkpoint at or below its first "
                                   f"intervened layer (store has {list(checkpoints)})")
            pending[c] = list(range(len(items)))
    total = len(conditions) * len(items)

    def report() -> None:
        if progress is not None:
            progress(int((used != "").sum()), total)

    replayable = [c for c in range(len(conditions)) if c not in pending]
    if replayable:
        _replay(adapter, store, items, conditions, replayable, options, probe, batch_size,
                raw, parsed, used, pending, report)
    if pending:
        _full(adapter, store, items, conditions, pending, options, probe, batch_size,
              raw, parsed, used, report)
    return Answers(raw=raw, parsed=parsed, engine=used)


def _replay_layer(condition: Condition, checkpoints: Sequence[int]) -> int | None:
    if not checkpoints:
        return None
    first = condition.first_layer
    return max(checkpoints) if first is None else choose_checkpoint(checkpoints, first)


def _replay(adapter: ModelAdapter, store: ActivationStore, items: Sequence[int],
            conditions: Sequence[Condition], replayable: list[int], options: np.ndarray,
            probe: Probe, batch_size: int, raw: np.ndarray, parsed: np.ndarray,
            used: np.ndarray, pending: dict[int, list[int]],
            report: Callable[[], None]) -> None:
    layout = store.layout
    stops = adapter.stop_ids
    # An item answered with digits (or nothing, or more than one token) at extraction will
    # most likely need decoding on under an intervention too ("2" may go on to "23", "s" to
    # "sad"): its pairs start straight from the layer-0 checkpoint, which gives the first
    # token as well, instead of replaying the first token from layer c and then every
    # layer again.
    decodes_on = probe.max_new_tokens > 1 and 0 in layout.checkpoint_layers
    stored = store.metadata("raw_answer")
    by_chunk: dict[int, list[int]] = defaultdict(list)
    for position, item in enumerate(items):
        by_chunk[item // layout.utterance_chunk].append(position)
    for chunk, positions in sorted(by_chunk.items()):
        # To the model's device once per chunk; each batch of pairs indexes it there.
        saved: CheckpointChunk = store.read_checkpoints(chunk).to(adapter.device)
        going_on: list[tuple[int, int]] = []  # (condition, item position) to decode on
        by_layer: dict[int, list[tuple[int, int]]] = defaultdict(list)
        straight_here = {p for p in positions
                         if decodes_on and _goes_on(adapter, str(stored[items[p]]))}
        starts_straight = [p for p in positions if p in straight_here]
        replays_first = [p for p in positions if p not in straight_here]
        for c in replayable:
            layer = _replay_layer(conditions[c], layout.checkpoint_layers)
            assert layer is not None
            going_on.extend((c, p) for p in starts_straight)
            by_layer[layer].extend((c, p) for p in replays_first)
        for layer, pairs in by_layer.items():
            for first in range(0, len(pairs), batch_size):
                part = pairs[first:first + batch_size]
                rows = [items[p] - chunk * layout.utterance_chunk for _, p in part]
                inputs = ReplayInputs.from_checkpoints(saved, layout.checkpoint_layers, layer,
                                                       rows)
                logits = replay_first_logits(adapter, inputs,
                                             [conditions[c].intervention_for(p)
                                              for c, p in part])
                tokens = logits.argmax(-1).cpu().tolist()
                for (c, p), token in zip(part, tokens, strict=True):
                    text = adapter.decode(torch.tensor([token]))
                    if token in stops or probe.max_new_tokens == 1:  # the whole answer
                        raw[c, p] = text
                        parsed[c, p] = probe.parse(text, tuple(options[items[p]]))
                        used[c, p] = "replay"
                    elif decodes_on:
                        going_on.append((c, p))
                    else:
                        pending[c].append(p)
                report()
        for first in range(0, len(going_on), batch_size):
            part = going_on[first:first + batch_size]
            _decode_on(adapter, saved, layout.checkpoint_layers, chunk * layout.utterance_chunk,
                       items, conditions, part, options, probe, raw, parsed, used)
            report()


def _undecided(text: str) -> bool:
    """A first token after which the parse may still be fixed by digits: blank (a space,
    a special token) or ASCII digits (``"1"`` may go on to ``"12"`` or to ``"1."``)."""
    return text == "" or is_ascii_digits(text)


def _goes_on(adapter: ModelAdapter, answer: str) -> bool:
    """Whether a stored answer went on past its first token: empty, opening with a digit,
    or more than one token long."""
    if _undecided(answer[:1]):
        return True
    return len(adapter.encode_text(answer)) > 1


def _decode_on(adapter: ModelAdapter, saved: CheckpointChunk, checkpoint_layers: Sequence[int],
               offset: int, items: Sequence[int], conditions: Sequence[Condition],
               part: list[tuple[int, int]], options: np.ndarray, probe: Probe,
               raw: np.ndarray, parsed: np.ndarray, used: np.ndarray) -> None:
    """Greedy decoding from the layer-0 checkpoint for ``part`` (condition, item position)
    until each answer's parse is fixed or the answer complete."""
    inputs = ReplayInputs.from_checkpoints(saved, checkpoint_layers, 0,
                                           [items[p] - offset for _, p in part])
    choices = [tuple(options[items[p]]) for _, p in part]

    def enough(row: int, text: str) -> bool:
        return decided_answer(text, choices[row]) is not None

    decoded = replay_greedy(adapter, inputs, [conditions[c].intervention_for(p) for c, p in part],
                            probe.max_new_tokens, enough)
    for (c, p), row, choice in zip(part, decoded, choices, strict=True):
        text = adapter.decode(torch.tensor(row.token_ids, dtype=torch.long))
        fixed = decided_answer(text, choice)  # None: complete, and the parse is the text's
        raw[c, p] = text
        parsed[c, p] = fixed if fixed is not None else probe.parse(text, choice)
        used[c, p] = "replay"


def _full(adapter: ModelAdapter, store: ActivationStore, items: Sequence[int],
          conditions: Sequence[Condition], pending: dict[int, list[int]],
          options: np.ndarray, probe: Probe, batch_size: int, raw: np.ndarray,
          parsed: np.ndarray, used: np.ndarray, report: Callable[[], None]) -> None:
    """Generate from audio for every pending (condition, item) pair, batched as replay
    batches: rows of several conditions in one batch, each with its own intervention, in
    item order so that an item's clip is decoded once and the audio cache stays small."""
    paths = store.metadata("path")
    window = listening_window(adapter.max_audio_seconds, probe.max_seconds)  # as extracted
    audio = _AudioCache(lambda item: load_heard(str(paths[item]), adapter.sample_rate, window),
                        size=2 * batch_size)
    pairs = sorted((p, c) for c, positions in pending.items() for p in positions)
    for first in range(0, len(pairs), batch_size):
        part = pairs[first:first + batch_size]
        batch: ProbeBatch = adapter.build_batch(
            [audio.get(items[p]) for p, _ in part],
            [probe.prompt(tuple(options[items[p]])) for p, _ in part])
        rows = [conditions[c].intervention_for(p) for p, c in part]
        with torch.inference_mode(), intervention_hooks(adapter, rows):
            answers = adapter.generate(batch, probe.max_new_tokens)
        for (p, c), answer in zip(part, answers, strict=True):
            raw[c, p] = answer
            parsed[c, p] = probe.parse(answer, tuple(options[items[p]]))
            used[c, p] = "full"
        report()


class _AudioCache:
    """The last ``size`` clips decoded (least recently used goes first)."""

    def __init__(self, load: Callable[[int], np.ndarray], size: int) -> None:
        self._load, self._size = load, max(1, size)
        self._clips: OrderedDict[int, np.ndarray] = OrderedDict()

    def get(self, item: int) -> np.ndarray:
        if item in self._clips:
            self._clips.move_to_end(item)
            return self._clips[item]
        clip = self._clips[item] = self._load(item)
        while len(self._clips) > self._size:
            self._clips.popitem(last=False)
        return clip
