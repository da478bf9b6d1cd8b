"""Views of a neuron-set file that users want: per-layer counts and set overlaps."""

from __future__ import annotations

import itertools

import numpy as np

from esn.schemas.neuron_sets import NeuronSets

__all__ = ["jaccard", "layer_counts", "method_overlap", "emotion_overlap"]


def layer_counts(sets: NeuronSets) -> dict[str, dict[str, list[int]]]:
    """method -> emotion -> number of selected neurons in each layer (the layer figure)."""
    out: dict[str, dict[str, list[int]]] = {}
    for name, method in sets.methods.items():
        out[name] = {}
        for emotion, pairs in method.sets.items():
            layers = np.array([p[0] for p in pairs], dtype=np.int64)
            out[name][emotion] = np.bincount(layers, minlength=sets.n_layers).tolist()
    return out


def jaccard(a: set, b: set) -> float:
    union = a | b
    return len(a & b) / len(union) if union else 1.0


def method_overlap(sets: NeuronSets) -> dict[str, dict[tuple[str, str], float]]:
    """emotion -> (method, method) -> Jaccard overlap of their sets for that emotion."""
    out: dict[str, dict[tuple[str, str], float]] = {}
    for emotion in sets.emotions:
        out[emotion] = {}
        for m1, m2 in itertools.combinations(sets.methods, 2):
            out[emotion][(m1, m2)] = jaccard(set(sets.methods[m1].sets.get(emotion, ())),
                                             set(sets.methods[m2].sets.get(emotion, ())))
    return out


def emotion_overlap(sets: NeuronSets) -> dict[str, dict[tuple[str, str], float]]:
    """method -> (emotion, emotion) -> Jaccard overlap of the two emotions' sets."""
    out: dict[str, dict[tuple[str, str], float]] = {}
    for name, method in sets.methods.items():
        out[name] = {(e1, e2): jaccard(set(method.sets.get(e1, ())), set(method.sets.get(e2, ())))
                     for e1, e2 in itertools.combinations(sets.emotions, 2)}
    return out
