from __future__ import annotations

import shutil

import pytest

from esn.errors import CorpusError
from esn.pipeline.corpora import load_corpus, load_cremad


def test_lists_audiowav_folder(cremad_tree, as_table) -> None:
    result = load_cremad(cremad_tree.root)
    assert as_table(result.utterances) == cremad_tree.expected
    assert {u.raw_label for u in result.utterances} == {"ANG", "HAP", "SAD", "FEA", "NEU", "DIS"}


def test_wavs_directly_under_root(cremad_tree, as_table) -> None:
    flat = cremad_tree.root.parent / "flat"
    shutil.copytree(cremad_tree.root / "AudioWAV", flat)
    assert as_table(load_cremad(flat).utterances) == cremad_tree.expected


def test_spec_alias(cremad_tree) -> None:
    assert len(load_corpus(f"crema-d:{cremad_tree.root}")) == 6


def test_bad_name_is_a_problem(cremad_tree, wav_writer) -> None:
    wav_writer(cremad_tree.root / "AudioWAV" / "1001_DFA_XYZ_XX.wav")
    wav_writer(cremad_tree.root / "AudioWAV" / "hello.wav")
    reasons = sorted(p.reason for p in load_cremad(cremad_tree.root).problems)
    assert reasons == ["not a CREMA-D file name", "unknown emotion code 'XYZ'"]


def test_no_wavs(tmp_path) -> None:
    (tmp_path / "AudioWAV").mkdir()
    with pytest.raises(CorpusError, match="no .wav files"):
        load_cremad(tmp_path)
