from __future__ import annotations

import pytest

from esn.errors import CorpusError
from esn.pipeline.corpora import load_ravdess


def test_lists_audio_only_files(ravdess_tree, as_table) -> None:
    result = load_ravdess(ravdess_tree.root)
    assert as_table(result.utterances) == ravdess_tree.expected  # modality 02 file skipped
    assert result.problems == ()


def test_raw_label_is_the_emotion_field(ravdess_tree) -> None:
    by_id = {u.id: u for u in load_ravdess(ravdess_tree.root).utterances}
    assert by_id["03-01-05-01-02-01-01"].raw_label == "05"


def test_tree_one_level_down(ravdess_tree, as_table) -> None:
    outer = ravdess_tree.root.parent
    assert as_table(load_ravdess(outer).utterances) == ravdess_tree.expected


def test_bad_file_name_is_a_problem(ravdess_tree, wav_writer) -> None:
    wav_writer(ravdess_tree.root / "Actor_03" / "notes.wav")
    result = load_ravdess(ravdess_tree.root)
    assert [p.reason for p in result.problems] == ["not a RAVDESS file name"]


def test_empty_tree(tmp_path) -> None:
    with pytest.raises(CorpusError, match="no Actor_"):
        load_ravdess(tmp_path)
