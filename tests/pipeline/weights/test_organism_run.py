"""``esn organism train --base whisper-smollm2``: a quick run (a few clips, one epoch)
writes the checkpoint, the trained parts and a record whose accuracies are recomputed
from the checkpoint through the probe path."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from safetensors.torch import load_file

from esn.cli import main
from esn.pipeline.models import LoadOptions, load_adapter
from esn.pipeline.probe import Probe
from esn.pipeline.synth import synthesize
from esn.pipeline.weights.organism import _items, evaluate_random_order


def test_a_quick_pretrained_organism_run(tmp_path: Path) -> None:
    manifest = synthesize(tmp_path / "corpus", per_emotion_per_speaker=2, speakers=2, seed=5,
                          test_every=2)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "organism", "train", "--base", "whisper-smollm2", "--variant", "attention",
        "--corpus", str(manifest), "--out", str(out), "--epochs", "1", "--limit", "4",
        "--batch-size", "2", "--eval-limit", "5"])
    assert result.exit_code == 0, result.output
    assert "unseen speakers -" in result.output  # no speaker held out of this corpus
    record = json.loads((out / "record.json").read_text())
    assert record["format"] == "esn-pretrained-organism"
    assert record["settings"]["variant"] == "attention" and record["training"]["steps"] == 2
    assert set(record["base_weights"]) == {"whisper_base", "smollm2"}
    parts = load_file(str(out / "parts.safetensors"))
    assert any(k.startswith("multi_modal_projector.") for k in parts)
    assert any("lora_A" in k for k in parts) and not any("mlp" in k for k in parts)
    assert all("lora_" in k or "projector" in k for k in parts)  # no embeddings: a few MB
    assert sum(v.numel() for v in parts.values()) < 3_000_000  # rank 16 on q/k/v/o: 2.1 M
    adapter = load_adapter(LoadOptions(model_id=str(out / "checkpoint")))
    labels = tuple(record["corpus"]["synth"]["emotions"])
    probe = Probe(labels=labels, option_order="random", seed=1, max_new_tokens=6)
    seen = _items(manifest, lambda u: u.split == "test", 5)
    again = evaluate_random_order(adapter, seen, probe)
    assert again == record["metrics"]["seen_speakers_test"] and again["n"] == 5

    again_run = CliRunner().invoke(main, ["organism", "train", "--base", "whisper-smollm2",
                                          "--corpus", str(manifest), "--out", str(out)])
    assert again_run.exit_code == 1 and "holds a finished pretrained organism run" in (
        again_run.output)
    refused = CliRunner().invoke(main, ["organism", "train", "--base", "whisper-smollm2",
                                        "--out", str(out), "--trainable", "mlp"])
    assert refused.exit_code == 2 and "--trainable do not apply with --base" in refused.output
    wrong = CliRunner().invoke(main, ["organism", "train", "--out", str(out), "--answer",
                                      "digit"])
    assert wrong.exit_code == 2 and "--answer: only with --base" in wrong.output
