"""``esn demo --model ID``: the study on another model, through the CLI. A built-in tiny
model stands in for a user's checkpoint: its stores, sets and results are named after the
model, it is asked with the study's random option order, and the report is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from esn.cli import main
from esn.pipeline.demo.run import DemoOptions, model_slug
from esn.stores import ActivationStore

pytestmark = pytest.mark.slow


def test_model_slugs_name_ids_and_checkpoint_folders() -> None:
    assert model_slug("organism") == "organism"
    assert model_slug("esn-whisper-smollm2") == "esn-whisper-smollm2"
    assert model_slug("/runs/org/attention/checkpoint/") == "attention-checkpoint"
    assert model_slug("Qwen/Qwen2-Audio-7B-Instruct") == "Qwen-Qwen2-Audio-7B-Instruct"
    with pytest.raises(Exception, match="distinct models"):
        DemoOptions(out=Path("x"), models=("a/checkpoint", "a/checkpoint/"))


def test_the_demo_runs_the_study_on_a_given_model(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, [
        "demo", "--model", "tiny-qwen2_audio", "--out", str(out),
        "--per-emotion-per-speaker", "4", "--fractions", "0.02,0.05", "--fraction", "0.02",
        "--alpha", "2", "--random-draws", "1", "--n-boot", "20", "--batch-size", "16",
        "--all-items",  # a random tiny model answers too few correctly to select on
        "--span", "audio"])
    assert result.exit_code == 0, result.output
    assert (out / "report" / "report.html").is_file()
    store = ActivationStore.open(out / "stores" / "tiny-qwen2_audio-a.zarr")
    assert store.attributes.probe.option_order == "random"
    assert store.attributes.model.id == "tiny-qwen2_audio"
    results = sorted(p.name for p in (out / "results" / "tiny-qwen2_audio").iterdir())
    assert {"deactivate-f0.02", "deactivate-f0.05", "steer", "transfer-a-to-b"} <= set(results)
    record = json.loads((out / "demo.json").read_text())
    assert record["options"]["models"] == ["tiny-qwen2_audio"]
    assert record["options"]["all_items"] is True
    summary = json.loads((out / "results" / "tiny-qwen2_audio" / "deactivate-f0.02" /
                          "summary.json").read_text())
    assert summary["context"]["span"] == "audio"
    assert not (out / "models").exists()  # no positive control was built

    bad = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "d2"), "--fractions",
                                    "0.02,x"])
    assert bad.exit_code == 2 and "comma-separated fractions" in bad.output
