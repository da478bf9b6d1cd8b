"""The synthetic corpus: deterministic, a valid manifest corpus, classes that differ as
designed (measured on the audio, not read from the parameters) and overlap."""

from __future__ import annotations

import csv
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from esn.errors import OutputRefusedError, RequestError, StoreExistsError
from esn.pipeline.corpora.spec import load_corpus
from esn.pipeline.synth import EMOTION_PROFILES, MANIFEST_COLUMNS, read_settings, synthesize

EMOTIONS = tuple(EMOTION_PROFILES)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return synthesize(tmp_path_factory.mktemp("synth") / "c", per_emotion_per_speaker=8,
                      speakers=4, seed=0)


@pytest.fixture(scope="module")
def measured(corpus: Path) -> dict[str, np.ndarray]:
    """Per clip: label index, median F0 (yin, over loud frames), RMS level (dB) and mel
    statistics (mean and std of 40 log-mel bands)."""
    rows = list(csv.DictReader(corpus.open()))
    out: dict[str, list] = {"label": [], "f0": [], "db": [], "mel": [], "speaker": []}
    for row in rows:
        audio, rate = sf.read(corpus.parent / row["path"], dtype="float32")
        assert rate == 16000 and audio.ndim == 1 and 1.5 <= audio.size / rate <= 2.5
        frame_rms = librosa.feature.rms(y=audio, frame_length=1024, hop_length=512)[0]
        f0 = librosa.yin(audio, fmin=60, fmax=700, sr=rate, frame_length=1024, hop_length=512)
        loud = frame_rms[: f0.size] > 0.3 * frame_rms.max()
        mel = librosa.power_to_db(librosa.feature.melspectrogram(y=audio, sr=rate, n_mels=40))
        out["label"].append(EMOTIONS.index(row["label"]))
        out["f0"].append(np.median(f0[loud]))
        out["db"].append(20 * np.log10(np.sqrt(np.mean(audio.astype(np.float64) ** 2))))
        out["mel"].append(np.concatenate([mel.mean(1), mel.std(1)]))
        out["speaker"].append(int(row["speaker"].removeprefix("spk")))
    return {k: np.asarray(v) for k, v in out.items()}


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_gives_identical_bytes_and_another_seed_other_audio(tmp_path: Path) -> None:
    a = synthesize(tmp_path / "a", per_emotion_per_speaker=2, speakers=2, seed=3)
    b = synthesize(tmp_path / "b", per_emotion_per_speaker=2, speakers=2, seed=3)
    c = synthesize(tmp_path / "c", per_emotion_per_speaker=2, speakers=2, seed=4)
    assert _files(a.parent) == _files(b.parent)
    wavs = [n for n in _files(a.parent) if n.endswith(".wav")]
    assert len(wavs) == 2 * 2 * len(EMOTIONS)
    assert all(_files(a.parent)[n] != _files(c.parent)[n] for n in wavs)


def test_a_larger_corpus_contains_the_smaller_one(tmp_path: Path) -> None:
    small = synthesize(tmp_path / "s", per_emotion_per_speaker=1, speakers=1, seed=0)
    large = synthesize(tmp_path / "l", per_emotion_per_speaker=2, speakers=2, seed=0)
    for name, data in _files(small.parent).items():
        if name.endswith(".wav"):
            assert _files(large.parent)[name] == data


def test_loads_as_a_manifest_corpus_with_speakers_splits_and_groups(corpus: Path) -> None:
    listing = load_corpus(f"manifest:{corpus}")
    assert not listing.problems and len(listing) == 8 * 4 * len(EMOTIONS)
    assert set(listing.emotions) == set(EMOTIONS)
    assert {u.speaker for u in listing.utterances} == {"spk0", "spk1", "spk2", "spk3"}
    assert {u.split for u in listing.utterances} == {"train", "test"}
    test = load_corpus(f"manifest:{corpus}", splits="test")
    assert len(test) == 2 * 4 * len(EMOTIONS)  # clips 3 and 7 of each (speaker, emotion)
    rows = list(csv.DictReader(corpus.open()))
    assert tuple(rows[0]) == MANIFEST_COLUMNS
    groups = {r["speaker"]: r["group"] for r in rows}
    assert groups == {"spk0": "0", "spk1": "0", "spk2": "1", "spk3": "1"}
    settings = read_settings(corpus)
    assert settings["seed"] == 0 and settings["n_clips"] == len(rows)


def test_refuses_foreign_folders_and_needs_overwrite_for_its_own(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(OutputRefusedError, match="not an esn synth corpus"):
        synthesize(foreign, per_emotion_per_speaker=1, speakers=1, overwrite=True)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    (tmp_path / "empty").mkdir()
    manifest = synthesize(tmp_path / "empty", per_emotion_per_speaker=1, speakers=1)
    with pytest.raises(StoreExistsError):
        synthesize(tmp_path / "empty", per_emotion_per_speaker=1, speakers=1)
    synthesize(tmp_path / "empty", per_emotion_per_speaker=1, speakers=2, overwrite=True)
    assert len(list(csv.DictReader(manifest.open()))) == 2 * len(EMOTIONS)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging
    with pytest.raises(RequestError):
        synthesize(tmp_path / "x", per_emotion_per_speaker=0)
    with pytest.raises(RequestError):
        synthesize(tmp_path / "x", per_emotion_per_speaker=1, emotions=("anger", "joy"))


def test_pitch_and_level_order_the_classes_as_designed(measured) -> None:
    # Speaker-normalised F0 (semitones from the speaker's median), then the class median.
    f0 = 12 * np.log2(measured["f0"])
    for s in np.unique(measured["speaker"]):
        f0[measured["speaker"] == s] -= np.median(f0[measured["speaker"] == s])
    pitch = {e: np.median(f0[measured["label"] == i]) for i, e in enumerate(EMOTIONS)}
    level = {e: np.mean(measured["db"][measured["label"] == i]) for i, e in enumerate(EMOTIONS)}
    print("pitch (st)", pitch, "level (dB)", level)
    assert pitch["sad"] < pitch["neutral"] < min(pitch["anger"], pitch["happy"],
                                                 pitch["surprise"])
    assert pitch["neutral"] - pitch["sad"] > 1 and pitch["happy"] - pitch["neutral"] > 3
    assert level["sad"] < level["neutral"] < level["happy"] < level["anger"]
    assert level["neutral"] < level["surprise"] < level["anger"]


def test_classes_are_separable_but_overlap(measured) -> None:
    """Softmax regression on mel statistics, 4-fold cross-validated: far above chance (20%),
    far from perfect."""
    x, y = measured["mel"], measured["label"]
    rng = np.random.default_rng(0)
    folds = rng.permutation(len(y)) % 4
    correct = 0
    for k in range(4):
        train, test = folds != k, folds == k
        mean, std = x[train].mean(0), x[train].std(0) + 1e-6
        w = _fit_softmax((x[train] - mean) / std, y[train], len(EMOTIONS))
        logits = np.c_[(x[test] - mean) / std, np.ones(test.sum())] @ w
        correct += int((logits.argmax(1) == y[test]).sum())
    accuracy = correct / len(y)
    print("mel-statistics accuracy", accuracy)
    assert 0.45 < accuracy < 0.95


def _fit_softmax(x: np.ndarray, y: np.ndarray, k: int, steps: int = 500,
                 l2: float = 1e-2) -> np.ndarray:
    x = np.c_[x, np.ones(len(x))]
    w = np.zeros((x.shape[1], k))
    onehot = np.eye(k)[y]
    for _ in range(steps):
        z = x @ w
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        w -= 0.5 * (x.T @ (p - onehot) / len(x) + l2 * w)
    return w
