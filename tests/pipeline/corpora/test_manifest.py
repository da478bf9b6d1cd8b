from __future__ import annotations

import json
from pathlib import Path

import pytest

from esn.errors import CorpusError
from esn.pipeline.corpora import load_corpus, load_manifest


@pytest.fixture
def manifest_csv(tmp_path, wav_writer) -> Path:
    wav_writer(tmp_path / "audio" / "a" / "clip.wav")
    wav_writer(tmp_path / "audio" / "b" / "clip.wav")
    absolute = wav_writer(tmp_path / "elsewhere" / "x1.wav")
    wav_writer(tmp_path / "audio" / "given.wav")
    wav_writer(tmp_path / "audio" / "nolabel.wav")
    rows = [
        "path,label,speaker,split,id",
        "audio/a/clip.wav,Angry,s1,train,",
        "audio/b/clip.wav,Boredom,s2,train,",
        f"{absolute},happiness,,test,",
        "audio/given.wav,sad,s1,test,my-id",
        "audio/missing.wav,neutral,s3,test,",
        "audio/nolabel.wav,,s3,test,",
    ]
    path = tmp_path / "items.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_csv_manifest(manifest_csv, as_table) -> None:
    result = load_manifest(manifest_csv)
    assert as_table(result.utterances) == {
        "clip": ("anger", "s1", "train"),
        "clip-2": ("boredom", "s2", "train"),  # custom label kept, normalised
        "x1": ("happy", None, "test"),
        "my-id": ("sad", "s1", "test"),
    }
    assert [u.raw_label for u in result.utterances] == ["Angry", "Boredom", "happiness", "sad"]
    assert Path(result.utterances[0].path) == manifest_csv.parent / "audio" / "a" / "clip.wav"


def test_csv_manifest_problems(manifest_csv) -> None:
    result = load_manifest(manifest_csv)
    assert [(Path(p.path).name, p.reason.split(" (")[0]) for p in result.problems] == [
        ("missing.wav", "audio file not found"),
    ]
    assert result.n_unlabelled == 1  # nolabel.wav: an empty label is no label, not a problem


def test_jsonl_manifest_with_emotion_key(tmp_path, wav_writer, as_table) -> None:
    wav_writer(tmp_path / "one.wav")
    wav_writer(tmp_path / "two.wav")
    lines = [
        json.dumps({"path": "one.wav", "emotion": "surprised", "speaker": 7}),
        "",
        json.dumps({"path": "two.wav", "emotion": "calm", "split": "dev", "id": "t2"}),
        "{not json",
    ]
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = load_manifest(path)
    assert as_table(result.utterances) == {
        "one": ("surprise", "7", None),
        "t2": ("calm", None, "dev"),
    }
    assert [p.path for p in result.problems] == ["items.jsonl:4"]
    assert result.problems[0].reason.startswith("invalid JSON line")


def test_custom_labels_through_load_corpus(manifest_csv) -> None:
    listing = load_corpus(f"manifest:{manifest_csv}", emotions=["Boredom", "angry"])
    assert sorted(u.id for u in listing.utterances) == ["clip", "clip-2"]


def test_missing_columns(tmp_path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("file,emotion\nx.wav,sad\n")
    with pytest.raises(CorpusError, match="lacks path"):
        load_manifest(path)


def test_missing_manifest_and_bad_suffix(tmp_path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        load_manifest(tmp_path / "none.csv")
    (tmp_path / "x.txt").write_text("path,label\n")
    with pytest.raises(CorpusError, match=r"suffix '\.txt'"):
        load_manifest(tmp_path / "x.txt")
