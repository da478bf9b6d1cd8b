"""Text tables for ``esn select``: the result in short, and with ``--summary`` its views."""

from __future__ import annotations

from esn.pipeline.select.views import emotion_overlap, layer_counts, method_overlap
from esn.schemas.neuron_sets import NeuronSets

__all__ = ["format_selection", "format_summary"]


def format_selection(sets: NeuronSets) -> str:
    """One line per method and emotion: set size, busiest layers, best score."""
    n_items = sets.pool.get("n_items", {})
    lines = [
        f"budget {sets.budget} neurons per emotion ({100 * sets.fraction:g}% of "
        f"{sets.n_layers} x {sets.n_neurons}), span {sets.span}",
        "pool   " + ", ".join(f"{e} {n_items.get(e, '?')}" for e in sets.emotions),
        "",
        f"{'method':<7} {'emotion':<12} {'size':>5}  {'top layers (count)':<26} best score",
    ]
    counts = layer_counts(sets)
    for name, method in sets.methods.items():
        for emotion in sets.emotions:
            pairs = method.sets.get(emotion, ())
            per_layer = counts[name].get(emotion, [])
            busiest = sorted(range(len(per_layer)), key=lambda i: (-per_layer[i], i))[:3]
            layers = ", ".join(f"{i} ({per_layer[i]})" for i in busiest if per_layer[i])
            scores = method.scores.get(emotion, ())
            best = f"{scores[0]:.4g}" if scores and name != "rnd" else "-"
            lines.append(f"{name:<7} {emotion:<12} {len(pairs):>5}  {layers:<26} {best}")
    return "\n".join(lines)


def format_summary(sets: NeuronSets) -> str:
    """Per-layer counts per method and emotion, and Jaccard overlaps."""
    lines = ["neurons per layer"]
    counts = layer_counts(sets)
    header = "  " + f"{'method':<7} {'emotion':<12} " + " ".join(
        f"{i:>4}" for i in range(sets.n_layers))
    lines.append(header)
    for name, per_emotion in counts.items():
        for emotion, row in per_emotion.items():
            lines.append(f"  {name:<7} {emotion:<12} " + " ".join(f"{c:>4}" for c in row))
    lines += ["", "overlap between methods (Jaccard), per emotion"]
    for emotion, pairs in method_overlap(sets).items():
        cells = ", ".join(f"{a}~{b} {v:.2f}" for (a, b), v in pairs.items())
        lines.append(f"  {emotion:<12} {cells or '-'}")
    lines += ["", "overlap between emotions (Jaccard), per method"]
    for name, pairs in emotion_overlap(sets).items():
        cells = ", ".join(f"{a}~{b} {v:.2f}" for (a, b), v in pairs.items())
        lines.append(f"  {name:<7} {cells}")
    return "\n".join(lines)
