from __future__ import annotations

from pathlib import Path

import pytest

from esn.errors import CorpusError
from esn.pipeline.corpora import load_iemocap
from esn.pipeline.corpora.iemocap import speaker_of


def test_lists_labelled_sentences(iemocap_tree, as_table) -> None:
    result = load_iemocap(iemocap_tree.root)
    assert as_table(result.utterances) == iemocap_tree.expected
    assert result.n_unlabelled == 1  # the xxx line


def test_raw_labels_paths_and_corpus(iemocap_tree) -> None:
    result = load_iemocap(iemocap_tree.root)
    by_id = {u.id: u for u in result.utterances}
    assert by_id["Ses01F_impro01_M001"].raw_label == "exc"
    wav = by_id["Ses02M_script01_1_F003"].path
    assert Path(wav).is_absolute()
    assert Path(wav).parts[-3:] == ("wav", "Ses02M_script01_1", "Ses02M_script01_1_F003.wav")
    assert {u.corpus for u in result.utterances} == {"iemocap"}


def test_label_without_audio_is_a_problem(iemocap_tree) -> None:
    result = load_iemocap(iemocap_tree.root)
    assert [Path(p.path) for p in result.problems] == iemocap_tree.missing
    assert "audio file not found" in result.problems[0].reason
    assert result.problems[0].emotion == "happy"


def test_speaker_is_session_plus_gender_of_last_segment() -> None:
    assert speaker_of("Ses01F_impro01_M003") == "Ses01M"
    assert speaker_of("Ses05M_script02_2_F010") == "Ses05F"


def test_missing_root_names_path_and_layout(tmp_path) -> None:
    with pytest.raises(CorpusError, match="does not exist.*Session1"):
        load_iemocap(tmp_path / "nope")


def test_tree_without_label_files(tmp_path) -> None:
    (tmp_path / "Session1" / "sentences" / "wav").mkdir(parents=True)
    with pytest.raises(CorpusError, match="no label files.*EmoEvaluation"):
        load_iemocap(tmp_path)
