"""The command line: help and version, `esn corpus`, `esn info` and `esn validate` output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

import esn
from esn.cli import main
from esn.stores import ActivationStore
from tests.conftest import make_batch, store_kwargs

EXAMPLE = Path(__file__).parents[1] / "examples" / "tiny"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


def test_help_and_version() -> None:
    code, out = run("--help")
    assert code == 0 and "corpus" in out and "info" in out
    code, out = run("--version")
    assert code == 0 and esn.__version__ in out


@pytest.fixture
def manifest_with_bad_files(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    shutil.copytree(EXAMPLE, root)
    (root / "empty.wav").write_bytes(b"")
    (root / "corrupt.wav").write_bytes((root / "spk1_sad.wav").read_bytes()[:30])
    (root / "picture.wav").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    sf.write(root / "silent.wav", np.zeros(8000, np.float32), 16000)
    with (root / "manifest.csv").open("a") as f:
        for name in ("empty", "corrupt", "picture", "silent"):
            f.write(f"{name}.wav,sad,spk3,test\n")
        f.write("missing.wav,happy,spk3,test\n")
    return root / "manifest.csv"


def test_corpus_json_counts_and_unreadable(manifest_with_bad_files: Path) -> None:
    code, out = run("corpus", f"manifest:{manifest_with_bad_files}", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["n_items"] == 8
    assert data["per_emotion"] == {"anger": 2, "happy": 2, "neutral": 2, "sad": 2}
    assert data["per_split"] == {"train": 4, "test": 4}
    assert data["speakers"] == 2
    reasons = {Path(u["path"]).name: u["reason"] for u in data["unreadable"]}
    assert set(reasons) == {"empty.wav", "corrupt.wav", "picture.wav", "silent.wav",
                            "missing.wav"}
    assert "empty" in reasons["empty.wav"]
    assert "silent" in reasons["silent.wav"]
    assert "not found" in reasons["missing.wav"]
    assert "unreadable" in reasons["picture.wav"] and "unreadable" in reasons["corrupt.wav"]


def test_corpus_human_output_and_filters(manifest_with_bad_files: Path) -> None:
    code, out = run("corpus", f"manifest:{manifest_with_bad_files}", "--emotions", "anger,sad",
                    "--split", "test")
    assert code == 0, out
    assert "anger" in out and "sad" in out and "happy" not in out.split("unreadable")[0]
    assert "empty.wav" in out and "silent" in out


def run_error(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stderr


def test_corpus_bad_spec_is_a_clean_error() -> None:
    code, err = run_error("corpus", "nosuchcorpus:/x")
    assert code == 1 and "iemocap" in err and "Traceback" not in err
    code, err = run_error("corpus", "ravdess:/definitely/not/here")
    assert code == 1 and "/definitely/not/here" in err


@pytest.fixture
def half_written_store(tmp_path: Path) -> Path:
    url = tmp_path / "s.zarr"
    store = ActivationStore.create(url, **store_kwargs(10, n_layers=2, n_neurons=6, chunk=4))
    store.write_batch(0, make_batch(np.random.default_rng(0), 4, 2, 6, fail_every=3))
    return url


def test_info_human_and_json(half_written_store: Path) -> None:
    code, out = run("info", str(half_written_store), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["progress"] == {"done": 2, "failed": 2, "pending": 6}
    assert data["sizes"]["utterances"] == 10 and data["sizes"]["neurons"] == 12
    assert data["model"]["id"] == "tiny-test"
    assert data["chunking"]["utterance_chunk"] == 4
    assert data["bytes"]["stored"] > 0
    code, out = run("info", str(half_written_store))
    assert code == 0
    assert "tiny-test" in out and "2 done, 2 failed, 6 left (of 10)" in out
    assert "10 utterances x 2 layers x 6 neurons" in out and "stored for" in out


def test_info_on_missing_store_is_a_clean_error(tmp_path: Path) -> None:
    code, err = run_error("info", str(tmp_path / "nope.zarr"))
    assert code == 1 and "no activation store" in err and "Traceback" not in err


def test_validate_exit_status(half_written_store: Path) -> None:
    code, out = run("validate", str(half_written_store), "--deep")
    assert code == 0 and "valid" in out
    shutil.rmtree(half_written_store / "K" / "c" / "0")
    code, out = run("validate", str(half_written_store), "--json")
    assert code == 1
    assert json.loads(out)["ok"] is False


def test_synth_then_a_short_organism_training(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["synth", "--out", str(tmp_path / "c"), "--speakers", "2",
                                  "--per-emotion-per-speaker", "4", "--test-every", "2"])
    assert result.exit_code == 0, result.output
    again = runner.invoke(main, ["synth", "--out", str(tmp_path / "c")])
    assert again.exit_code != 0 and "overwrite" in again.output
    result = runner.invoke(main, ["organism", "train", "--out", str(tmp_path / "o"),
                                  "--corpus", str(tmp_path / "c" / "manifest.csv"),
                                  "--epochs", "1", "--encoder-epochs", "1"])
    assert result.exit_code == 0, result.output
    assert "weights differ from the shipped esn-organism" in result.output
    record = json.loads((tmp_path / "o" / "organism" / "organism.json").read_text())
    assert record["training"]["epochs"] == 1 and record["training"]["weight_decay"] == 0.05
