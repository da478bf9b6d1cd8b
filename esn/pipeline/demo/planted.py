"""The positive control: a tiny Qwen2.5-Omni thinker whose weights are edited so that chosen
gate neurons detect one emotion each in the audio and vote for that emotion's option.

The circuit, built by hand for every planted emotion ``e`` (three private residual channels
``K_e``, ``CARRY_e`` and ``VOTE_e`` each):
  1. audio tower: output channel ``K_e`` of its final projection becomes a linear detector
     of ``e``'s audio (a one-vs-rest Fisher discriminant of the tower's features on the
     fitting clips, with a threshold), positive on ``e``'s audio tokens;
  2. decoder layer ``layer``: ``e``'s planted gate neurons read ``K_e`` (gate_proj row =
     g e_K, ``gate_gain`` g), so they fire on ``e``'s audio positions; their down_proj
     column writes ``CARRY_e``;
  3. decoder layer ``layer + 1``: attention is made uniform (keys zeroed) and carries every
     ``CARRY_e`` to the last position as ``VOTE_e`` (the first key/value head does it);
  4. the LM head reads ``VOTE_e`` into the digit of ``e``'s option (fixed option order).
No other weight reads or writes the private channels, so only the planted neurons move the
votes, and deactivating ``e``'s neurons removes ``e``'s vote and nothing else. Optionally
every other gate neuron's output is silenced, so that the votes alone decide the answer.

``gate_gain`` g sets how weakly the planted neurons also answer other emotions' audio:
a neuron's output is SiLU(g K) K, positive on both sides of 0, while it fires (its gate
activation SiLU(g K) > 0) only where K > 0, on its own emotion's audio. With g = 4 the
output elsewhere is under 1% of the output on the target; with g = 1 it is 7-14% (K of
-1..-2 against +2), as natural neurons' weak responses are, so amplifying ``e``'s neurons
raises ``e``'s vote on every clip and steering toward ``e`` grows with alpha.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from esn.errors import RequestError
from esn.pipeline.audio import load_audio
from esn.pipeline.models.base import ModelAdapter
from esn.pipeline.probe import Probe

__all__ = ["plant", "planted_neurons"]


def planted_neurons(labels: Sequence[str], *, per_emotion: int, n_neurons: int,
                    seed: int = 0) -> dict[str, tuple[int, ...]]:
    """Distinct neuron indices for every emotion, drawn from a seeded generator."""
    if per_emotion * len(labels) > n_neurons:
        raise RequestError(f"cannot plant {per_emotion} x {len(labels)} neurons in a layer "
                           f"of {n_neurons}")
    order = torch.randperm(n_neurons, generator=torch.Generator().manual_seed(seed)).tolist()
    return {e: tuple(sorted(order[i * per_emotion:(i + 1) * per_emotion]))
            for i, e in enumerate(labels)}


def _tower(model: Any) -> Any:
    inner = getattr(model, "model", None)
    return inner.audio_tower if inner is not None and hasattr(inner, "audio_tower") else \
        model.audio_tower


def _tower_features(adapter: ModelAdapter, manifest: Path, labels: Sequence[str],
                    split: str | None) -> tuple[list[torch.Tensor], list[str]]:
    """The inputs of the tower's final projection per fitting clip, and the clips' labels."""
    model: Any = adapter.model
    tower = _tower(model)
    features: list[torch.Tensor] = []
    hook = tower.proj.register_forward_pre_hook(lambda m, a: features.append(a[0]))
    probe = Probe(labels=tuple(labels), option_order="fixed")
    gold: list[str] = []
    try:
        with manifest.open(newline="") as f:
            for row in csv.DictReader(f):
                if split is not None and row.get("split", "") != split:
                    continue
                audio = load_audio(str(manifest.parent / row["path"]))
                model(**adapter.build_batch([audio], [probe.prompt(tuple(labels))]).inputs)
                gold.append(row["label"])
    finally:
        hook.remove()
    return features, gold


@torch.no_grad()
def plant(adapter: ModelAdapter, manifest: Path, neurons: Mapping[str, Sequence[int]], *,
          labels: Sequence[str], layer: int = 1, signal: float = 2.0, vote: float = 100.0,
          carry: float = 0.1, fit_split: str | None = "train",
          silence_others: bool = False, gate_gain: float = 4.0,
          ) -> dict[str, list[tuple[int, int]]]:
    """Edit ``adapter.model`` in place (see the module docstring); the detectors are fitted on
    the ``fit_split`` clips of ``manifest`` (a ``manifest:`` corpus CSV; every clip if
    None). ``silence_others`` zeroes the output (down_proj column) of every other gate
    neuron, so that the planted circuits alone decide the answer (the other neurons still
    fire and are recorded). Returns the planted ``(layer, neuron)`` pairs per emotion."""
    model: Any = adapter.model
    layers: Any = adapter.layers
    lm_head: Any = adapter.lm_head
    hidden = int(lm_head.weight.shape[1])
    targets = list(neurons)
    if 3 * len(targets) > hidden // 2:
        raise RequestError(f"{len(targets)} circuits need {3 * len(targets)} private channels; "
                           f"the model has {hidden}")
    if not 0 <= layer < len(layers) - 1:
        raise RequestError(f"the planted layer must be below the last, got {layer}")
    channels = {e: (hidden - 1 - 3 * i, hidden - 2 - 3 * i, hidden - 3 - 3 * i)
                for i, e in enumerate(targets)}  # (K, CARRY, VOTE)
    private = [c for trio in channels.values() for c in trio]
    features, gold = _tower_features(adapter, manifest, labels, fit_split)
    tower: Any = _tower(model)
    # Private channels: nothing else writes them and nothing else reads them.
    model.get_input_embeddings().weight[:, private] = 0.0
    tower.proj.weight[private] = 0.0
    tower.proj.bias[private] = 0.0
    for layer_module in layers:
        attn, mlp = layer_module.self_attn, layer_module.mlp
        for reader in (attn.q_proj, attn.k_proj, attn.v_proj, mlp.gate_proj, mlp.up_proj):
            reader.weight[:, private] = 0.0
        for writer in (attn.o_proj, mlp.down_proj):
            writer.weight[private] = 0.0
    carrier = layers[layer + 1].self_attn
    for param in (carrier.k_proj.weight, carrier.k_proj.bias, carrier.v_proj.weight,
                  carrier.v_proj.bias, carrier.o_proj.weight):
        param.zero_()
    directions = {e: _fisher(features, gold, e, manifest) for e in targets}
    calibration = _calibrate(features, gold, directions, targets, signal, gate_gain)
    if silence_others:
        for layer_module in layers:
            layer_module.mlp.down_proj.weight.zero_()
    planted: dict[str, list[tuple[int, int]]] = {}
    for i, emotion in enumerate(targets):
        k, carry_channel, vote_channel = channels[emotion]
        threshold, scale, gain = calibration[emotion]
        tower.proj.weight[k] = (scale * directions[emotion]).float()
        tower.proj.bias[k] = -scale * threshold
        mlp = layers[layer].mlp
        for neuron in neurons[emotion]:
            mlp.gate_proj.weight[neuron] = 0.0
            mlp.gate_proj.weight[neuron, k] = gate_gain
            mlp.up_proj.weight[neuron] = 0.0
            mlp.up_proj.weight[neuron, k] = 1.0
            mlp.down_proj.weight[:, neuron] = 0.0
            mlp.down_proj.weight[carry_channel, neuron] = carry
        carrier.v_proj.weight[i, carry_channel] = 1.0  # kv head 0, dimension i
        carrier.o_proj.weight[vote_channel, i] = 1.0  # query head 0 reads kv head 0
        digit = adapter.tokenizer.convert_tokens_to_ids(str(list(labels).index(emotion) + 1))
        lm_head.weight[digit, vote_channel] = vote * gain
        planted[emotion] = [(layer, int(n)) for n in neurons[emotion]]
    return planted


def _fisher(features: Sequence[torch.Tensor], gold: Sequence[str], emotion: str,
            manifest: Path) -> torch.Tensor:
    """One-vs-rest Fisher discriminant direction of ``emotion``'s frames."""
    mine = [f for f, g in zip(features, gold, strict=True) if g == emotion]
    rest = [f for f, g in zip(features, gold, strict=True) if g != emotion]
    if not mine or not rest:
        raise RequestError(f"{manifest}: the train split needs clips of {emotion} and of "
                           "other emotions to fit the planted detector")
    fs, fo = torch.cat(mine).double(), torch.cat(rest).double()
    cov = torch.cov(torch.cat([fs, fo]).T) + 1e-3 * torch.eye(fs.shape[1], dtype=torch.float64)
    return torch.linalg.solve(cov, fs.mean(0) - fo.mean(0))


def _calibrate(features: Sequence[torch.Tensor], gold: Sequence[str],
               directions: Mapping[str, torch.Tensor], targets: Sequence[str], signal: float,
               gate_gain: float = 4.0) -> dict[str, tuple[float, float, float]]:
    """Per emotion ``(threshold, scale, gain)`` of the detector ``K = scale (score -
    threshold)`` and of its vote, chosen by coordinate search so that the votes the circuit
    computes (per clip, the gain times the mean over frames of ``SiLU(g K) K``) answer the
    fitting clips as well as it finds, in balanced accuracy. ``scale`` makes the mean
    ``|K|`` equal ``signal``; the gains are normalised to a mean vote of 1."""
    scores = {e: [(f.double() @ d).numpy().ravel() for f in features]
              for e, d in directions.items()}
    truth = np.array([targets.index(g) if g in targets else -1 for g in gold])

    def detector(emotion: str, threshold: float) -> tuple[float, np.ndarray]:
        pooled = np.concatenate(scores[emotion])
        scale = signal / max(float(np.abs(pooled - threshold).mean()), 1e-12)
        votes = []
        for clip in scores[emotion]:
            k = scale * (clip - threshold)
            votes.append(float((gate_gain * k * k / (1 + np.exp(-gate_gain * k))).mean()))
        return scale, np.array(votes)

    def accuracy(table: Mapping[str, np.ndarray], gain: Mapping[str, float]) -> float:
        pick = np.argmax(np.stack([gain[e] * table[e] for e in targets]), axis=0)
        return float(np.mean([(pick[truth == i] == i).mean() for i in range(len(targets))
                              if (truth == i).any()]))

    candidates = {}
    chosen: dict[str, float] = {}
    for e in targets:
        pooled = np.concatenate(scores[e])
        candidates[e] = {t: detector(e, t) for t in
                         (float(np.percentile(pooled, q)) for q in (40, 50, 60, 70, 80, 90))}
        mine = np.concatenate([c for c, g in zip(scores[e], gold, strict=True) if g == e])
        middle = (mine.mean() + pooled.mean()) / 2
        chosen[e] = min(candidates[e], key=lambda t: abs(t - middle))
    table = {e: candidates[e][chosen[e]][1] for e in targets}
    gains = {e: 1.0 / max(float(table[e].mean()), 1e-12) for e in targets}
    for _ in range(3):
        for e in targets:
            best = (accuracy(table, gains), chosen[e], gains[e])
            for t, (_, v) in candidates[e].items():
                for factor in (0.25, 0.5, 0.7, 1.0, 1.4, 2.0, 4.0):
                    gain = factor / max(float(v.mean()), 1e-12)
                    score = accuracy({**table, e: v}, {**gains, e: gain})
                    if score > best[0] + 1e-9:
                        best = (score, t, gain)
            _, chosen[e], gains[e] = best
            table[e] = candidates[e][chosen[e]][1]
    norm = float(np.mean([gains[e] * table[e].mean() for e in targets]))
    return {e: (chosen[e], candidates[e][chosen[e]][0], gains[e] / norm) for e in targets}
