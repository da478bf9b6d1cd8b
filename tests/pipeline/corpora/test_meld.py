from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from esn.errors import CorpusError, MissingDependencyError
from esn.pipeline.corpora import load_corpus, load_meld, summarize_corpus

needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None,
    reason="ffmpeg is not on PATH (apt-get install ffmpeg); MELD clips are mp4",
)


def test_lists_all_splits_with_unique_ids(meld_tree, as_table) -> None:
    result = load_meld(meld_tree.root)
    assert as_table(result.utterances) == meld_tree.expected
    assert {u.corpus for u in result.utterances} == {"meld"}


def test_joy_is_reported_as_happy(meld_tree) -> None:
    result = load_meld(meld_tree.root)
    joy = [u for u in result.utterances if u.raw_label == "joy"]
    assert [u.emotion for u in joy] == ["happy"]


def test_missing_clip_is_a_problem(meld_tree) -> None:
    result = load_meld(meld_tree.root)
    assert [Path(p.path) for p in result.problems] == meld_tree.missing
    assert result.problems[0].split == "train"
    assert "train_sent_emo.csv:5" in result.problems[0].reason


def test_split_filter(meld_tree) -> None:
    listing = load_corpus(f"meld:{meld_tree.root}", splits=["dev"])
    assert sorted(u.id for u in listing.utterances) == ["dev_dia0_utt0", "dev_dia0_utt1"]
    assert listing.problems == ()  # the missing clip is in train


def test_csv_present_but_clip_folder_missing(meld_tree) -> None:
    shutil.rmtree(meld_tree.root / "dev_splits_complete")
    result = load_meld(meld_tree.root)
    assert not any(u.split == "dev" for u in result.utterances)
    assert any("dev_splits_complete" in p.reason for p in result.problems)


def test_no_csv_is_a_corpus_error(tmp_path) -> None:
    (tmp_path / "train_splits").mkdir()
    with pytest.raises(CorpusError, match="train/dev/test_sent_emo.csv"):
        load_meld(tmp_path)


def test_missing_column_is_a_corpus_error(meld_tree) -> None:
    (meld_tree.root / "test_sent_emo.csv").write_text("Sr No.,Utterance,Speaker\n1,hi,Joey\n")
    with pytest.raises(CorpusError, match="Emotion"):
        load_meld(meld_tree.root)


@pytest.mark.ffmpeg
@needs_ffmpeg
def test_summary_decodes_mp4_clips(meld_tree) -> None:
    corrupt = meld_tree.root / "output_repeated_splits_test" / "dia3_utt2.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x13" * 200)
    summary = summarize_corpus(f"meld:{meld_tree.root}")
    assert summary.n_items == 6
    assert summary.per_split == {"train": 3, "dev": 2, "test": 1}
    assert summary.per_emotion == {  # disgust's only clip is corrupt: listed with 0
        "anger": 1,
        "happy": 1,
        "neutral": 1,
        "sad": 1,
        "surprise": 1,
        "fear": 1,
        "disgust": 0,
    }
    assert summary.speakers == 6  # Chandler, The Interviewer, Monica, Joey, Rachel, Phoebe
    reasons = {Path(p["path"]).name: p["reason"] for p in summary.to_dict()["unreadable"]}
    assert set(reasons) == {"dia2_utt0.mp4", "dia3_utt2.mp4"}
    assert reasons["dia2_utt0.mp4"].startswith("audio file not found")
    assert reasons["dia3_utt2.mp4"].startswith("unreadable: ")


def test_summary_without_ffmpeg_says_how_to_install(meld_tree, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(MissingDependencyError, match=r"ffmpeg.*apt-get install ffmpeg"):
        summarize_corpus(f"meld:{meld_tree.root}")
    # Listing alone does not need ffmpeg.
    summary = summarize_corpus(f"meld:{meld_tree.root}", check_audio=False)
    assert summary.n_items == 7
