"""Long audio: the store records what the model heard of each clip, ``esn extract`` says how
many clips were cut, and ``--max-seconds`` cuts where the user asks. The expectation is
always a store made from clips cut by hand (soundfile) and extracted whole."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

import esn
from esn.cli import main
from esn.errors import StoreMismatchError
from esn.pipeline.extract import ExtractRequest, extract
from esn.pipeline.models import LoadOptions
from esn.stores import ActivationStore

RATE = 16000


def write_corpus(root: Path, clips: dict[str, np.ndarray]) -> Path:
    """A manifest corpus of ``clips`` (name -> waveform), one emotion each in turn."""
    root.mkdir(parents=True)
    emotions = ("anger", "happy", "sad")
    with (root / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label"])
        writer.writeheader()
        for i, (name, wave) in enumerate(clips.items()):
            sf.write(root / f"{name}.wav", wave, RATE, subtype="FLOAT")
            writer.writerow({"path": f"{name}.wav", "label": emotions[i % 3]})
    return root / "manifest.csv"


def tone(seconds: float, f0: float, seed: int) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    noise = 0.05 * np.random.default_rng(seed).standard_normal(t.size)
    return (0.3 * np.sin(2 * np.pi * f0 * t) + noise).astype(np.float32)


def run(manifest: Path, out: Path, model: str, **kw) -> None:
    extract(ExtractRequest(model=LoadOptions(model_id=model), corpus=f"manifest:{manifest}",
                           out=str(out), batch_size=3, utterance_chunk=4, sums="float32", **kw))


def assert_same_statistics(a: Path, b: Path) -> None:
    one, two = esn.open_store(a), esn.open_store(b)
    for name in ("K", "T", "act_sum"):
        np.testing.assert_array_equal(one[name].values, two[name].values, err_msg=name)
    for name in ("raw_answer", "n_tokens", "options", "status"):
        assert one[name].values.tolist() == two[name].values.tolist(), name


def test_a_clip_past_the_window_is_heard_for_its_first_30_seconds(tmp_path: Path) -> None:
    clips = {"long": tone(35.0, 180, 0), "short": tone(3.0, 220, 1), "edge": tone(30.0, 260, 2)}
    whole = write_corpus(tmp_path / "whole", clips)
    cut = write_corpus(tmp_path / "cut", {n: w[:30 * RATE] for n, w in clips.items()})
    result = CliRunner().invoke(main, [
        "extract", "--model", "tiny-qwen2_audio", "--corpus", f"manifest:{whole}",
        "--out", str(tmp_path / "whole.zarr"), "--batch-size", "3", "--utterance-chunk", "4",
        "--sums", "float32"])
    assert result.exit_code == 0, result.output
    assert ("audio     the model hears the first 30 s of each clip; 1 of 3 done clips were "
            "longer and were cut") in result.output
    run(cut, tmp_path / "cut.zarr", "tiny-qwen2_audio")

    store = ActivationStore.open(tmp_path / "whole.zarr")
    assert store.metadata("duration").tolist() == [35.0, 3.0, 30.0]
    assert store.metadata("heard").tolist() == [30.0, 3.0, 30.0]
    assert store.metadata("truncated").tolist() == [True, False, False]
    assert_same_statistics(tmp_path / "whole.zarr", tmp_path / "cut.zarr")
    assert store.info()["audio"] == {"max_seconds": None, "truncated": 1, "longest_heard": 30.0}
    assert ActivationStore.open(tmp_path / "cut.zarr").metadata("truncated").tolist() == [
        False] * 3


def test_voxtral_hears_a_long_clip_whole(tmp_path: Path) -> None:
    manifest = write_corpus(tmp_path / "c", {"long": tone(35.0, 180, 0), "x": tone(1, 200, 1)})
    run(manifest, tmp_path / "s.zarr", "tiny-voxtral")
    store = ActivationStore.open(tmp_path / "s.zarr")
    assert store.metadata("heard").tolist() == [35.0, 1.0]
    assert not store.metadata("truncated").any()


def test_max_seconds_cuts_every_clip_there_and_is_part_of_the_store(manifest: Path,
                                                                    tmp_path: Path) -> None:
    out = tmp_path / "s.zarr"
    result = CliRunner().invoke(main, [
        "extract", "--model", "tiny-qwen2_5_omni", "--corpus", f"manifest:{manifest}",
        "--out", str(out), "--batch-size", "3", "--utterance-chunk", "4",
        "--max-seconds", "0.6", "--sums", "float32"])
    assert result.exit_code == 0, result.output
    # The fixture's clips last 0.5 1.1 (broken) 0.8 1.4 0.6 1.0 0.7 s: five are cut.
    assert "the first 0.6 s of each clip; 5 of 7 done clips were longer and were cut" in (
        result.output)
    store = ActivationStore.open(out)
    done = store.status() == 1
    assert store.attributes.probe.max_seconds == 0.6
    np.testing.assert_allclose(store.metadata("heard")[done], [0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6])
    assert store.metadata("truncated")[done].tolist() == [False, True, True, True, False, True,
                                                          True]

    hand = tmp_path / "hand"  # the same corpus, every clip cut to 9600 samples by hand
    hand.mkdir()
    for path in manifest.parent.iterdir():
        if path.suffix == ".wav" and path.name != "broken.wav":
            sf.write(hand / path.name, sf.read(path, dtype="float32")[0][:9600], RATE,
                     subtype="FLOAT")
        else:
            shutil.copy(path, hand / path.name)
    reference = tmp_path / "hand.zarr"
    CliRunner().invoke(main, [
        "extract", "--model", "tiny-qwen2_5_omni", "--corpus",
        f"manifest:{hand / 'manifest.csv'}", "--out", str(reference), "--batch-size", "3",
        "--utterance-chunk", "4", "--sums", "float32"], catch_exceptions=False)
    assert_same_statistics(out, reference)

    with pytest.raises(StoreMismatchError, match=r"probe.max_seconds: store has 0.6, asked 0.8"):
        run(manifest, out, "tiny-qwen2_5_omni", max_seconds=0.8)
    with pytest.raises(StoreMismatchError, match=r"probe.max_seconds: store has 0.6, asked None"):
        run(manifest, out, "tiny-qwen2_5_omni")


def test_a_cut_longer_than_the_window_says_the_window_wins(tmp_path: Path) -> None:
    manifest = write_corpus(tmp_path / "c", {"long": tone(31.0, 180, 0), "x": tone(1, 200, 1)})
    result = CliRunner().invoke(main, [
        "extract", "--model", "tiny-qwen2_audio", "--corpus", f"manifest:{manifest}",
        "--out", str(tmp_path / "s.zarr"), "--max-seconds", "40"])
    assert result.exit_code == 0, result.output
    assert ("warning: tiny-qwen2_audio hears at most 30 s of a clip; --max-seconds 40 cuts no "
            "more than that") in result.output
    assert "the first 30 s of each clip; 1 of 2 done clips were longer" in result.output
