"""Label-agnostic steering that depends on the model's own first answer, per item.

  2pass  steer the mask of the emotion the model answered without intervention;
  mix    steer every emotion's mask, each neuron by alpha times the summed weight of the
         masks it belongs to, weights = softmax(option logits / temperature) of the
         unsteered first token, mapped to emotions through the item's options.
(``union``, which needs no answer, is built with the other conditions.)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch

from esn.errors import RequestError
from esn.pipeline.audio import listening_window, load_heard
from esn.pipeline.intervene.conditions import MIX, TWO_PASS, Condition
from esn.pipeline.intervene.hooks import Intervention
from esn.pipeline.models.base import ModelAdapter
from esn.pipeline.probe import Probe
from esn.schemas.neuron_sets import NeuronSets
from esn.stores.activations import ActivationStore

__all__ = ["mix_conditions", "option_probabilities", "two_pass_conditions"]


def two_pass_conditions(sets: NeuronSets, predicted: Sequence[str], *,
                        strengths: Sequence[float], methods: Sequence[str]) -> list[Condition]:
    """Each item gets the mask of the emotion it was answered with (none if unparsed)."""
    out = []
    for method in methods:
        for strength in strengths:
            per_item = tuple(
                Intervention.steer(sets.methods[method].sets[p], strength)
                if p in sets.methods[method].sets else None for p in predicted)
            out.append(Condition(method, TWO_PASS, float(strength), 0, None, per_item))
    return out


def _digit_ids(adapter: ModelAdapter, n: int) -> list[int]:
    return [adapter.encode_text(str(i))[-1] for i in range(1, n + 1)]


@torch.no_grad()
def option_probabilities(adapter: ModelAdapter, store: ActivationStore, items: Sequence[int],
                         *, temperature: float = 1.0, batch_size: int = 8) -> np.ndarray:
    """``(item, emotion)`` softmax over the option numbers of the unsteered first token,
    ``emotion`` in the store's label order."""
    if temperature <= 0:
        raise RequestError(f"temperature must be positive, got {temperature}")
    labels = list(store.attributes.labels)
    probe = Probe.from_info(store.attributes.probe, labels)
    options, paths = store.metadata("options"), store.metadata("path")
    digits = _digit_ids(adapter, len(labels))
    window = listening_window(adapter.max_audio_seconds, probe.max_seconds)  # as extracted
    out = np.zeros((len(items), len(labels)))
    for first in range(0, len(items), batch_size):
        part = list(items[first:first + batch_size])
        batch = adapter.build_batch(
            [load_heard(str(paths[i]), adapter.sample_rate, window) for i in part],
            [probe.prompt(tuple(options[i])) for i in part])
        logits = adapter.model(**batch.inputs).logits[:, -1, digits].float()
        weights = torch.softmax(logits / temperature, dim=-1).cpu().numpy()
        for row, i in enumerate(part):
            for k, emotion in enumerate(options[i]):
                out[first + row, labels.index(emotion)] = weights[row, k]
    return out


def mix_conditions(sets: NeuronSets, weights: np.ndarray, labels: Sequence[str], *,
                   strengths: Sequence[float], methods: Sequence[str]) -> list[Condition]:
    """Per item, every mask steered by alpha x its emotion's weight (summed where masks
    overlap); ``weights`` is ``(item, emotion)`` in ``labels`` order."""
    out = []
    for method in methods:
        masks = sets.methods[method].sets
        for strength in strengths:
            per_item = []
            for row in weights:
                alpha: dict[tuple[int, int], float] = defaultdict(float)
                for k, emotion in enumerate(labels):
                    for pair in masks.get(emotion, ()):
                        alpha[pair] += strength * float(row[k])
                pairs = sorted(alpha)
                per_item.append(Intervention("steer", tuple(pairs), 0.0,
                                             tuple(alpha[p] for p in pairs)))
            out.append(Condition(method, MIX, float(strength), 0, None, tuple(per_item)))
    return out
