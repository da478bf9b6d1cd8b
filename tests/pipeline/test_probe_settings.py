"""A built-in model's own probe settings: used unless overridden, said in the run's first line,
a warning for an override the model was not trained for; a retrained organism by its folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from esn.cli import main
from esn.pipeline.models import LoadOptions, load_adapter
from esn.pipeline.organism.model import RECORD_FILE, WEIGHTS_DIR, organism_revision
from esn.pipeline.probe import DEFAULT_TEMPLATE
from esn.pipeline.probe_settings import GENERIC, choose_probe
from esn.schemas.store import ProbeInfo
from esn.stores import ActivationStore

RECORD = json.loads((WEIGHTS_DIR / RECORD_FILE).read_text())["probe"]


def run_extract(manifest: Path, out: Path, model: str, *extra: str) -> tuple[str, ProbeInfo]:
    result = CliRunner().invoke(main, ["extract", "--model", model, "--corpus",
                                       f"manifest:{manifest}", "--out", str(out),
                                       "--batch-size", "4", *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stderr, ActivationStore.open(out).attributes.probe


def test_the_organism_is_probed_as_it_was_trained(manifest: Path, tmp_path: Path) -> None:
    stderr, probe = run_extract(manifest, tmp_path / "s.zarr", "esn-organism")
    first = stderr.splitlines()[0]
    assert first.startswith("probe: esn-organism's own settings (option order fixed")
    assert "warning" not in stderr
    assert probe.option_order == RECORD["option_order"] == "fixed"
    assert probe.template == RECORD["template"]
    assert probe.max_new_tokens == RECORD["max_new_tokens"]


def test_an_override_it_was_not_trained_for_is_warned_about(manifest: Path,
                                                            tmp_path: Path) -> None:
    stderr, probe = run_extract(manifest, tmp_path / "s.zarr", "esn-organism",
                                "--option-order", "random")
    assert probe.option_order == "random"
    assert ("warning: esn-organism was trained with option order fixed, not random"
            in stderr)
    assert "the rest as given" in stderr.splitlines()[0]


def test_other_models_get_esn_defaults_and_no_notice(manifest: Path, tmp_path: Path) -> None:
    stderr, probe = run_extract(manifest, tmp_path / "s.zarr", "tiny-qwen2_audio",
                                "--max-new-tokens", "3")
    assert "probe:" not in stderr and "warning" not in stderr
    assert (probe.option_order, probe.template, probe.max_new_tokens) == (
        GENERIC.option_order, DEFAULT_TEMPLATE, 3)


def test_the_pretrained_organism_keeps_random_order_and_room_for_its_answer() -> None:
    settings, lines = choose_probe("esn-whisper-smollm2")
    assert settings.option_order == "random" and settings.max_new_tokens >= 6
    assert settings.template == DEFAULT_TEMPLATE
    assert lines and lines[0].startswith("probe: esn-whisper-smollm2's own settings")
    _, lines = choose_probe("esn-whisper-smollm2", template="Say {options}.")
    assert any(line.startswith("warning: esn-whisper-smollm2 was trained on another prompt")
               for line in lines)


@pytest.fixture
def retrained(tmp_path: Path) -> Path:
    """An organism folder as ``esn organism train --out DIR`` leaves it (weights + record)."""
    folder = tmp_path / "my-organism"
    shutil.copytree(WEIGHTS_DIR, folder)
    return folder


def test_a_retrained_organism_loads_by_its_folder(retrained: Path, manifest: Path,
                                                  tmp_path: Path) -> None:
    adapter = load_adapter(LoadOptions(model_id=str(retrained)))
    assert adapter.family == "qwen2_5_omni"
    assert adapter.info.id == str(retrained)
    assert adapter.info.revision == organism_revision(retrained)
    stderr, probe = run_extract(manifest, tmp_path / "s.zarr", str(retrained))
    assert stderr.splitlines()[0].startswith(f"probe: {retrained}'s own settings")
    assert probe.option_order == "fixed"
