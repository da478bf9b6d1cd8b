from __future__ import annotations

import shutil

import pytest

from esn.errors import CorpusError
from esn.pipeline.corpora import load_esd


def test_lists_split_layout(esd_tree, as_table) -> None:
    result = load_esd(esd_tree.root)
    assert as_table(result.utterances) == esd_tree.expected
    assert {u.raw_label for u in result.utterances} == {
        "Neutral",
        "Angry",
        "Happy",
        "Sad",
        "Surprise",
    }


def test_tree_one_level_down(esd_tree, as_table) -> None:
    assert as_table(load_esd(esd_tree.root.parent).utterances) == esd_tree.expected


def test_flat_layout_has_no_split(tmp_path, wav_writer, as_table) -> None:
    wav_writer(tmp_path / "0013" / "Angry" / "0013_000351.wav")
    wav_writer(tmp_path / "0013" / "Sad" / "0013_001051.wav")
    assert as_table(load_esd(tmp_path).utterances) == {
        "0013_000351": ("anger", "0013", None),
        "0013_001051": ("sad", "0013", None),
    }


def test_unknown_emotion_folder(esd_tree, wav_writer) -> None:
    wav_writer(esd_tree.root / "0011" / "Bored" / "train" / "0011_009999.wav")
    problems = load_esd(esd_tree.root).problems
    assert [(p.reason, p.split) for p in problems] == [("unknown emotion folder 'Bored'", "train")]


def test_no_speaker_folders(tmp_path) -> None:
    (tmp_path / "notes").mkdir()
    with pytest.raises(CorpusError, match="no ESD wav files"):
        load_esd(tmp_path)


def test_missing_root(esd_tree) -> None:
    shutil.rmtree(esd_tree.root)
    with pytest.raises(CorpusError, match="does not exist"):
        load_esd(esd_tree.root)
