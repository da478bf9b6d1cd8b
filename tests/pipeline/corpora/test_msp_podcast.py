from __future__ import annotations

from pathlib import Path

import pytest

from esn.errors import CorpusError
from esn.pipeline.corpora import load_corpus, load_msp_podcast


def test_lists_consensus_labels(msp_tree, as_table) -> None:
    result = load_msp_podcast(msp_tree.root)
    assert as_table(result.utterances) == msp_tree.expected
    assert result.n_unlabelled == 1  # EmoClass X


def test_unknown_speaker_is_none_and_raw_code_kept(msp_tree) -> None:
    by_id = {u.id: u for u in load_msp_podcast(msp_tree.root).utterances}
    assert by_id["MSP-PODCAST_0002_0033"].speaker is None
    assert by_id["MSP-PODCAST_0005_0001"].raw_label == "U"


def test_missing_audio_is_a_problem(msp_tree) -> None:
    result = load_msp_podcast(msp_tree.root)
    assert [Path(p.path) for p in result.problems] == msp_tree.missing
    assert (result.problems[0].emotion, result.problems[0].split) == ("fear", "train")


def test_spec_alias_and_split_filter(msp_tree) -> None:
    listing = load_corpus(f"msp_podcast:{msp_tree.root}", splits=["test1", "test2"])
    assert sorted(u.id for u in listing.utterances) == [
        "MSP-PODCAST_0004_0011",
        "MSP-PODCAST_0005_0001",
    ]
    assert listing.spec.name == "msp-podcast"


def test_missing_label_file(tmp_path) -> None:
    (tmp_path / "Audios").mkdir()
    with pytest.raises(CorpusError, match="labels_consensus.csv"):
        load_msp_podcast(tmp_path)
