from __future__ import annotations

import pytest

from esn.errors import CorpusError
from esn.pipeline.corpora import load_tess


def test_lists_nested_tree_once(tess_tree, as_table) -> None:
    result = load_tess(tess_tree.root)
    assert as_table(result.utterances) == tess_tree.expected
    assert len(result.utterances) == 8  # the duplicated copy is not listed twice


def test_ps_is_surprise(tess_tree) -> None:
    by_id = {u.id: u for u in load_tess(tess_tree.root).utterances}
    assert (by_id["YAF_bath_ps"].raw_label, by_id["YAF_bath_ps"].emotion) == ("ps", "surprise")


def test_unknown_label_in_speaker_folder(tess_tree, wav_writer) -> None:
    wav_writer(tess_tree.root / "OAF_bored" / "OAF_back_bored.wav")
    reasons = [p.reason for p in load_tess(tess_tree.root).problems]
    assert reasons == ["unknown emotion 'bored'"]


def test_no_tess_files(tmp_path, wav_writer) -> None:
    wav_writer(tmp_path / "other" / "x.wav")
    with pytest.raises(CorpusError, match="no TESS wav files"):
        load_tess(tmp_path)
