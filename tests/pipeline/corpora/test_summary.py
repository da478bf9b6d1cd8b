from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from esn.errors import CorpusWarning
from esn.pipeline.corpora import format_summary, summarize_corpus

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"


@pytest.fixture
def damaged_cremad(cremad_tree, wav_writer) -> Path:
    """The CREMA-D tree plus one broken file of each kind."""
    folder = cremad_tree.root / "AudioWAV"
    (folder / "1010_DFA_ANG_XX.wav").write_bytes(np.random.default_rng(0).bytes(3000))
    (folder / "1011_DFA_ANG_XX.wav").write_bytes(b"")
    (folder / "1012_DFA_HAP_XX.wav").write_bytes(PNG)
    good = wav_writer(folder / "1013_DFA_SAD_XX.wav", seconds=0.5).read_bytes()
    (folder / "1013_DFA_SAD_XX.wav").write_bytes(good[:30])  # truncated inside the header
    (folder / "1016_DFA_SAD_XX.wav").write_bytes(good[:2000])  # truncated inside the data
    sf.write(folder / "1014_DFA_NEU_XX.wav", np.zeros(800, np.float32), 16000, subtype="PCM_16")
    nan = np.full(800, 0.2, np.float32)
    nan[100] = np.nan
    sf.write(folder / "1015_DFA_FEA_XX.wav", nan, 16000, subtype="FLOAT")
    return cremad_tree.root


def test_counts_for_a_clean_tree(cremad_tree) -> None:
    summary = summarize_corpus(f"cremad:{cremad_tree.root}")
    assert summary.n_items == 6
    assert summary.per_emotion == {
        "anger": 1,
        "happy": 1,
        "neutral": 1,
        "sad": 1,
        "fear": 1,
        "disgust": 1,
    }
    assert summary.per_split == {"none": 6}
    assert summary.speakers == 4  # 1001, 1002, 1003, 1091
    assert summary.unreadable == ()
    assert summary.duration_s == pytest.approx(6 * 0.05)


def test_damaged_files_are_listed_with_reasons(damaged_cremad) -> None:
    summary = summarize_corpus(f"cremad:{damaged_cremad}")
    assert summary.n_items == 6
    reasons = {Path(p.path).stem: p.reason for p in summary.unreadable}
    assert set(reasons) == {
        f"10{n}_DFA_{e}_XX"
        for n, e in [
            (10, "ANG"),
            (11, "ANG"),
            (12, "HAP"),
            (13, "SAD"),
            (14, "NEU"),
            (15, "FEA"),
            (16, "SAD"),
        ]
    }
    assert reasons["1010_DFA_ANG_XX"].startswith("unreadable: ")
    assert reasons["1011_DFA_ANG_XX"] == "empty file (0 bytes)"
    assert reasons["1012_DFA_HAP_XX"].startswith("unreadable: ")
    assert reasons["1013_DFA_SAD_XX"].startswith("unreadable: ")
    assert reasons["1014_DFA_NEU_XX"].startswith("silent (peak below")
    assert reasons["1015_DFA_FEA_XX"] == "non-finite samples (NaN/inf)"
    assert reasons["1016_DFA_SAD_XX"] == "unreadable: truncated wav (1956 of 16000 data bytes)"


def test_to_dict_is_one_json_object(damaged_cremad) -> None:
    data = json.loads(json.dumps(summarize_corpus(f"cremad:{damaged_cremad}").to_dict()))
    assert {
        "corpus",
        "path",
        "n_items",
        "per_emotion",
        "per_split",
        "speakers",
        "unreadable",
    } <= set(data)
    assert data["corpus"] == "cremad" and data["path"] == str(damaged_cremad)
    assert data["n_items"] == 6 and data["per_split"] == {"none": 6}
    assert all(set(item) == {"path", "reason"} for item in data["unreadable"])
    assert len(data["unreadable"]) == 7


def test_label_rows_without_audio_are_unreadable(msp_tree) -> None:
    summary = summarize_corpus(f"msp-podcast:{msp_tree.root}", emotions=["fear", "neutral"])
    assert summary.n_items == 1
    assert [(Path(p.path), p.reason.split(" (")[0]) for p in summary.unreadable] == [
        (msp_tree.missing[0], "audio file not found")
    ]
    assert summary.per_split == {"train": 1}
    assert summary.n_unlabelled == 1


def test_filters_merges_and_resampling(iemocap_tree) -> None:
    summary = summarize_corpus(
        f"iemocap:{iemocap_tree.root}", merges=["excited=happy"], sample_rate=22050
    )
    assert summary.per_emotion == {"anger": 1, "happy": 1, "neutral": 1, "sad": 1, "frustration": 1}
    assert summary.speakers == 4  # Ses01F, Ses01M, Ses02F, Ses02M
    assert summary.duration_s == pytest.approx(5 * 0.05, abs=1e-3)


def test_without_audio_check(damaged_cremad) -> None:
    summary = summarize_corpus(f"cremad:{damaged_cremad}", check_audio=False)
    assert summary.n_items == 13 and summary.unreadable == () and summary.duration_s is None


def test_progress_is_reported(cremad_tree) -> None:
    seen: list[tuple[int, int]] = []
    summarize_corpus(f"cremad:{cremad_tree.root}", progress=lambda d, t: seen.append((d, t)))
    assert seen == [(i, 6) for i in range(1, 7)]


def test_format_summary(damaged_cremad) -> None:
    text = format_summary(summarize_corpus(f"cremad:{damaged_cremad}"))
    assert "corpus    cremad" in text
    assert "speakers  4" in text
    assert "unreadable  7" in text
    assert "1011_DFA_ANG_XX.wav: empty file (0 bytes)" in text
    lines = text.splitlines()
    anger = next(line for line in lines if line.startswith("anger"))
    assert anger.split() == ["anger", "1"]
    assert any(line.split() == ["none", "6"] for line in lines)


def test_an_empty_label_is_unlabelled_not_unreadable(tmp_path, wav_writer) -> None:
    for name in ("a.wav", "b.wav", "blank.wav"):
        wav_writer(tmp_path / name)
    manifest = tmp_path / "items.csv"
    manifest.write_text("path,label\na.wav,anger\nb.wav,sad\nblank.wav,\n")
    summary = summarize_corpus(f"manifest:{manifest}")
    assert summary.unreadable == ()
    assert summary.n_unlabelled == 1
    assert summary.n_items == 2
    text = format_summary(summary)
    assert "dropped   1 without a label (none, or no agreed one)" in text
    assert "unreadable  0" in text


def test_an_empty_published_code_is_unlabelled(msp_tree) -> None:
    label_file = msp_tree.root / "Labels" / "labels_consensus.csv"
    with label_file.open("a") as f:
        f.write("MSP-PODCAST_0001_0008.wav,,4.2,3.8,4.0,127,Female,Train\n")
    summary = summarize_corpus(f"msp-podcast:{msp_tree.root}", check_audio=False)
    assert summary.n_unlabelled == 2  # EmoClass X and the empty one
    assert [Path(p.path) for p in summary.unreadable] == msp_tree.missing


def test_repeats_and_unknown_labels_are_counted(tmp_path, wav_writer) -> None:
    for name in ("a.wav", "b.wav", "c.wav", "d.wav"):
        wav_writer(tmp_path / name)
    manifest = tmp_path / "items.csv"
    rows = ["a.wav,anger", "b.wav,sad", "a.wav,anger", "c.wav,anger", "c.wav,sad", "d.wav,bananas"]
    manifest.write_text("path,label\n" + "\n".join(rows) + "\n")
    with pytest.warns(CorpusWarning) as caught:
        summary = summarize_corpus(f"manifest:{manifest}")
    assert [str(w.message).split(": ")[1].split(";")[0] for w in caught] == [
        "2 audio file(s) listed more than once",
        "dropped 1 item(s) labelled 'bananas' (1)",
    ]
    assert summary.n_items == 2 and summary.per_emotion == {"anger": 1, "sad": 1}
    assert (summary.n_repeated, summary.n_conflicting) == (2, 1)
    assert summary.unreadable == ()
    data = summary.to_dict()
    assert (data["n_repeated"], data["n_conflicting"]) == (2, 1)
    assert data["dropped_labels"] == {"bananas": 1}
    text = format_summary(summary)
    assert (
        "repeated  2 audio file(s) listed more than once: 1 kept once, 1 dropped (labels differ)"
        in text
    )
    assert "dropped   1 labelled outside the emotion set (bananas 1)" in text
