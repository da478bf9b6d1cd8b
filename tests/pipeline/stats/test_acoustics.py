"""``esn acoustics``: descriptors of known signals, resume after an interruption, unreadable
files, the command line, and F0 measured on ``esn synth`` clips extracted with a tiny model."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from esn.cli import main
from esn.pipeline.audio import load_audio
from esn.pipeline.stats import DESCRIPTORS, measure_acoustics, read_acoustics
from esn.schemas import STATUS_DONE, STATUS_FAILED, ModelInfo, ProbeInfo, StatsBatch, Utterance
from esn.stores import ActivationStore
from tests.pipeline.conftest import RATE, write_clip
from tests.pipeline.stats.conftest import LABELS

F0 = (110.0, 150.0, 190.0, 230.0, 270.0, 310.0, 140.0, 200.0, 260.0)
SECONDS = (0.5, 0.7, 0.6, 0.9, 0.5, 0.8, 0.6, 0.7, 0.5)


def _store(tmp_path: Path) -> tuple[str, np.ndarray]:
    """Nine clips of known F0 and length, a broken file (index 4 -> 9), and utterance 2
    failed at extraction; chunks of 4 utterances."""
    root = tmp_path / "clips"
    root.mkdir()
    utterances = []
    for i, (f0, sec) in enumerate(zip(F0, SECONDS, strict=True)):
        write_clip(root / f"c{i}.wav", sec, f0, seed=i)
        utterances.append(Utterance(id=f"c{i}", corpus="c", path=str(root / f"c{i}.wav"),
                                    emotion=LABELS[i % 4], raw_label=LABELS[i % 4]))
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00")
    utterances.append(Utterance(id="broken", corpus="c", path=str(root / "broken.wav"),
                                emotion="sad", raw_label="sad"))
    n = len(utterances)
    status = np.full(n, STATUS_DONE, np.int8)
    status[2] = STATUS_FAILED
    t = np.full((n, 2), 5, np.uint32)
    k = np.ones((n, 2, 1, 3), np.uint16)
    url = str(tmp_path / "s.zarr")
    ActivationStore.create(url, utterances=utterances, model=ModelInfo(id="m"),
                           probe=ProbeInfo(template="{options}"), labels=LABELS, n_layers=1,
                           n_neurons=3, utterance_chunk=4).write_batch(0, StatsBatch.build(
        K=k, T=t, act_sum=k.astype(np.float32), options=np.tile(np.array(LABELS), (n, 1)),
        status=status, correct=np.ones(n, bool),
        failure_reason=["x" if s == STATUS_FAILED else "" for s in status]))
    return url, status


def _counting_loader(calls: list[str], fail_after: int | None = None
                     ) -> Callable[[str], np.ndarray]:
    def load(path: str) -> np.ndarray:
        if fail_after is not None and len(calls) >= fail_after:
            raise KeyboardInterrupt     # the run is killed mid-chunk
        calls.append(Path(path).name)
        return load_audio(path, RATE)
    return load


def test_acoustics_measure_known_clips_and_resume(tmp_path: Path) -> None:
    url, status = _store(tmp_path)
    first: list[str] = []
    report = measure_acoustics(url, limit=3, loader=_counting_loader(first))
    assert (report.measured, report.failed, report.remaining) == (3, 0, 6)
    assert first == ["c0.wav", "c1.wav", "c3.wav"]           # c2 failed at extraction
    before = read_acoustics(ActivationStore.open(url))
    calls: list[str] = []
    with pytest.raises(KeyboardInterrupt):                   # dies inside chunk 1
        measure_acoustics(url, loader=_counting_loader(calls, fail_after=2))
    assert read_acoustics(ActivationStore.open(url)).acoustic_done.values.sum() == 3
    calls.clear()
    report = measure_acoustics(url, loader=_counting_loader(calls))
    assert calls == [f"c{i}.wav" for i in range(4, 9)] + ["broken.wav"]
    assert (report.measured, report.failed, report.skipped, report.remaining) == (5, 1, 3, 0)
    ds = read_acoustics(ActivationStore.open(url))
    for name in DESCRIPTORS:                                 # untouched, bit for bit
        np.testing.assert_array_equal(ds[f"acoustic_{name}"].values[[0, 1, 3]],
                                      before[f"acoustic_{name}"].values[[0, 1, 3]])
    done = ds.acoustic_done.values
    assert done.tolist() == (status == STATUS_DONE).tolist()
    assert [bool(r) for r in ds.acoustic_reason.values] == [False] * 9 + [True]
    assert np.isnan([ds[f"acoustic_{n}"].values[9] for n in DESCRIPTORS]).all()
    ok = np.flatnonzero(done)[:-1]
    f0 = np.array(F0)[ok]
    np.testing.assert_allclose(ds.acoustic_f0_median.values[ok], f0, rtol=0.03)
    np.testing.assert_allclose(ds.acoustic_duration.values[ok], np.array(SECONDS)[ok],
                               atol=1e-3)
    assert (ds.acoustic_f0_range.values[ok] < 1.0).all()      # steady tones
    assert (ds.acoustic_voiced_fraction.values[ok] > 0.7).all()
    assert np.isfinite(ds.acoustic_rms.values[ok]).all()
    assert np.isnan(ds.acoustic_f0_median.values[2])          # never measured
    calls.clear()
    assert measure_acoustics(url, loader=_counting_loader(calls)).measured == 0 and not calls


def test_acoustics_command(tmp_path: Path) -> None:
    url, _ = _store(tmp_path)
    result = CliRunner().invoke(main, ["acoustics", "--store", url])
    assert result.exit_code == 0, result.output
    assert "measured 8, unreadable 1" in result.output
    again = CliRunner().invoke(main, ["acoustics", "--store", url])
    assert "measured 0" in again.output and "already done 9" in again.output
    for check in (["validate", url], ["info", url, "--json"]):   # the extra group is harmless
        other = CliRunner().invoke(main, check)
        assert other.exit_code == 0, other.output
    missing = CliRunner().invoke(main, ["acoustics", "--store", str(tmp_path / "none.zarr")])
    assert missing.exit_code != 0 and "no activation store" in missing.output


def test_acoustics_follow_the_synth_manifest(tmp_path: Path) -> None:
    """Synth clips -> tiny-model extraction -> esn acoustics: F0 and duration as drawn."""
    from esn.pipeline.extract import ExtractRequest, extract
    from esn.pipeline.models import LoadOptions
    from esn.pipeline.synth import synthesize

    manifest = synthesize(tmp_path / "synth", per_emotion_per_speaker=1, speakers=2)
    out = tmp_path / "s.zarr"
    extract(ExtractRequest(model=LoadOptions(model_id="tiny-qwen2_5_omni"),
                           corpus=f"manifest:{manifest}", out=str(out), batch_size=8,
                           utterance_chunk=4))
    measure_acoustics(str(out))
    store = ActivationStore.open(str(out))
    ds = read_acoustics(store)
    with manifest.open(newline="") as f:
        rows = {str(manifest.parent / r["path"]): r for r in csv.DictReader(f)}
    paths = store.metadata("path")
    assert len(paths) == len(rows) >= 8 and ds.acoustic_done.values.all()
    f0 = np.array([float(rows[str(p)]["f0_hz"]) for p in paths])
    seconds = np.array([float(rows[str(p)]["duration_s"]) for p in paths])
    assert np.corrcoef(ds.acoustic_f0_median.values, f0)[0, 1] > 0.9
    np.testing.assert_allclose(ds.acoustic_duration.values, seconds, atol=0.02)


def test_a_clip_too_short_to_measure_is_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    url, _ = _store(tmp_path)

    def load(path: str) -> np.ndarray:
        y = load_audio(path, RATE)
        return y[:500] if path.endswith("c1.wav") else y

    report = measure_acoustics(url, limit=3, loader=load)
    assert (report.measured, report.failed) == (2, 1)
    ds = read_acoustics(ActivationStore.open(url))
    assert "too short" in ds.acoustic_reason.values[1]
    assert np.isnan(ds.acoustic_duration.values[1]) and ds.acoustic_done.values[1]
    assert np.isfinite(ds.acoustic_f0_median.values[[0, 3]]).all()
