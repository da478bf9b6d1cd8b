"""A Kimi-Audio checkpoint folder through the CLI, as a user's would go: ``esn extract --model
DIR`` writes the store that the built-in ``tiny-kimi_audio`` writes (whose statistics
test_extract.py checks against a recomputation), and select, intervene and report run on
it (through ``esn demo --model DIR``, which chains them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import esn
from esn.cli import main
from esn.pipeline.demo.run import model_slug
from esn.pipeline.models import LoadOptions, load_adapter
from esn.pipeline.models.kimi_audio.tiny import save_kimi_checkpoint
from esn.stores import ActivationStore


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    tiny = load_adapter(LoadOptions(model_id="tiny-kimi_audio"))
    return save_kimi_checkpoint(tiny.model, tiny.processor, tmp_path / "Kimi-Audio-tiny")


def test_extract_from_the_folder_equals_the_built_in_model(checkpoint: Path, manifest: Path,
                                                           tmp_path: Path) -> None:
    stores = {}
    for name, model in (("dir", str(checkpoint)), ("id", "tiny-kimi_audio")):
        out = tmp_path / f"{name}.zarr"
        result = CliRunner().invoke(main, [
            "extract", "--model", model, "--corpus", f"manifest:{manifest}", "--out", str(out),
            "--batch-size", "3", "--utterance-chunk", "4", "--checkpoint-layers", "0,2",
            "--sums", "float32"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        stores[name] = out
    a, b = esn.open_store(stores["dir"]), esn.open_store(stores["id"])
    for name in ("K", "T", "act_sum", "raw_answer", "status", "n_tokens", "options"):
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    model = ActivationStore.open(stores["dir"]).attributes.model
    assert model.adapter == "kimi_audio" and model.id == str(checkpoint)
    assert not model.trust_remote_code


@pytest.mark.slow
def test_select_intervene_and_report_run_on_the_folder(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, [
        "demo", "--model", str(checkpoint), "--out", str(out),
        "--per-emotion-per-speaker", "4", "--fractions", "0.05", "--fraction", "0.05",
        "--alpha", "2", "--random-draws", "1", "--n-boot", "20", "--batch-size", "16",
        "--all-items"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (out / "report" / "report.html").is_file()
    results = {p.name for p in (out / "results" / model_slug(str(checkpoint))).iterdir()}
    assert {"deactivate-f0.05", "steer", "transfer-a-to-b"} <= results
