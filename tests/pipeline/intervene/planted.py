"""A planted model: tiny-qwen2_5_omni edited so that three chosen gate neurons detect one
emotion in the audio and drive the answer towards that emotion's option number.

The circuit, built by hand:
  1. audio tower: one output channel ``K`` of its final projection becomes a linear
     detector of the target emotion's audio (Fisher discriminant of the tower's features
     on the training clips, with a threshold), large and positive on those audio tokens;
     no other neuron or attention value reads channel ``K``;
  2. decoder layer ``LAYER``: the planted gate neurons read that channel
     (gate_proj row = e_K), so they fire on the target's audio positions and not
     elsewhere; their down_proj column writes into channel ``CARRY``;
  3. decoder layer ``LAYER + 1``: attention is made uniform (keys zeroed) and carries
     channel ``CARRY`` to every later position, the last one included, as channel ``VOTE``;
  4. the LM head reads ``VOTE`` into the target option's digit.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from esn.pipeline.audio import load_audio
from esn.pipeline.models.base import ModelAdapter
from esn.pipeline.probe import Probe

LABELS = ("anger", "happy", "neutral", "sad")
TARGET = "sad"
F0 = {"anger": 520.0, "happy": 640.0, "neutral": 420.0, "sad": 130.0}
LAYER, K, CARRY, VOTE = 1, 3, 11, 17
PLANTED = ((LAYER, 7), (LAYER, 21), (LAYER, 40))


def write_corpus(root: Path, per_emotion: int = 6, seed: int = 0) -> Path:
    """Tones whose pitch marks the emotion (sad is low), with speakers and a split."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for emotion in LABELS:
        for i in range(per_emotion):
            t = np.arange(int(rng.uniform(0.8, 1.6) * 16000)) / 16000
            wave = 0.3 * np.sin(2 * np.pi * F0[emotion] * rng.uniform(0.9, 1.1) * t)
            wave += 0.01 * rng.standard_normal(t.size)
            name = f"{emotion}{i}.wav"
            sf.write(root / name, wave.astype(np.float32), 16000)
            rows.append({"path": name, "label": emotion, "speaker": f"s{i % 3}",
                         "split": "train" if i % 2 == 0 else "test"})
    with (root / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "speaker", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return root / "manifest.csv"


@torch.no_grad()
def plant(adapter: ModelAdapter, manifest: Path, *, signal: float = 2.0, vote: float = 4.0,
          carry: float = 0.1) -> None:
    """Edit ``adapter.model`` in place (see the module docstring)."""
    model = adapter.model
    tower = model.model.audio_tower if hasattr(model.model, "audio_tower") else \
        model.audio_tower
    features: list[torch.Tensor] = []
    hook = tower.proj.register_forward_pre_hook(lambda m, a: features.append(a[0]))
    probe = Probe(labels=LABELS, option_order="fixed")
    gold = []
    with (manifest.parent / manifest.name).open() as f:
        for row in csv.DictReader(f):
            audio = load_audio(str(manifest.parent / row["path"]))
            model(**adapter.build_batch([audio], [probe.prompt(LABELS)]).inputs)
            gold.append(row["label"])
    hook.remove()
    target = [f for f, g in zip(features, gold, strict=True) if g == TARGET]
    other = [f for f, g in zip(features, gold, strict=True) if g != TARGET]
    fs, fo = torch.cat(target).double(), torch.cat(other).double()
    cov = torch.cov(torch.cat([fs, fo]).T) + 1e-3 * torch.eye(fs.shape[1], dtype=torch.float64)
    direction = torch.linalg.solve(cov, fs.mean(0) - fo.mean(0))
    threshold = float((fs.mean(0) + fo.mean(0)) @ direction / 2)
    scale = signal / float((fs @ direction - threshold).abs().mean())
    tower.proj.weight[K] = (scale * direction).float()
    tower.proj.bias[K] = -scale * threshold
    layers = adapter.layers
    # Channels K, CARRY and VOTE are private to the circuit: nothing else writes them
    # (token embeddings, attention outputs, MLP outputs, the tower's other use) and nothing
    # else reads them (attention q/k/v, gates, up projections), so no other neuron
    # inherits the detector and nothing else moves the vote.
    private = [K, CARRY, VOTE]
    model.get_input_embeddings().weight[:, private] = 0.0
    tower.proj.weight[[CARRY, VOTE]] = 0.0
    tower.proj.bias[[CARRY, VOTE]] = 0.0
    for layer_module in layers:
        attn, mlp = layer_module.self_attn, layer_module.mlp
        for reader in (attn.q_proj, attn.k_proj, attn.v_proj, mlp.gate_proj, mlp.up_proj):
            reader.weight[:, private] = 0.0
        for writer in (attn.o_proj, mlp.down_proj):
            writer.weight[private] = 0.0
    for layer, neuron in PLANTED:
        mlp = layers[layer].mlp
        mlp.gate_proj.weight[neuron] = 0.0
        mlp.gate_proj.weight[neuron, K] = 4.0
        mlp.up_proj.weight[neuron] = 0.0
        mlp.up_proj.weight[neuron, K] = 1.0
        mlp.down_proj.weight[:, neuron] = 0.0
        mlp.down_proj.weight[CARRY, neuron] = carry
    attn = layers[LAYER + 1].self_attn
    attn.k_proj.weight.zero_()
    attn.k_proj.bias.zero_()
    attn.v_proj.weight.zero_()
    attn.v_proj.bias.zero_()
    attn.v_proj.weight[0, CARRY] = 1.0
    attn.o_proj.weight.zero_()
    attn.o_proj.weight[VOTE, 0] = 1.0
    digit = adapter.tokenizer.convert_tokens_to_ids(str(LABELS.index(TARGET) + 1))
    adapter.lm_head.weight[digit, VOTE] = vote
