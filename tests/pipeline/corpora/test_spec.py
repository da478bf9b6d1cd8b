from __future__ import annotations

import dataclasses
import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esn.errors import CorpusError, CorpusSpecError, CorpusWarning
from esn.pipeline.corpora import (
    CANONICAL_EMOTIONS,
    CORPUS_LOADERS,
    CorpusSpec,
    load_corpus,
    parse_corpus_spec,
)
from esn.pipeline.corpora.cremad import CREMAD_CODES
from esn.pipeline.corpora.esd import ESD_CODES
from esn.pipeline.corpora.iemocap import IEMOCAP_CODES
from esn.pipeline.corpora.meld import MELD_CODES
from esn.pipeline.corpora.msp_podcast import MSP_PODCAST_CODES
from esn.pipeline.corpora.ravdess import RAVDESS_CODES
from esn.pipeline.corpora.tess import TESS_CODES

NAMES = ["iemocap", "meld", "msp-podcast", "ravdess", "cremad", "tess", "esd", "manifest"]


def test_registry_names() -> None:
    assert list(CORPUS_LOADERS) == NAMES


@pytest.mark.parametrize(
    ("text", "name", "path"),
    [
        ("iemocap:/data/IEMOCAP", "iemocap", "/data/IEMOCAP"),
        ("MSP_Podcast:/d/msp", "msp-podcast", "/d/msp"),
        ("crema-d:/d/c", "cremad", "/d/c"),
        ("manifest:rel/items.csv", "manifest", "rel/items.csv"),
        ("esd:/a:b", "esd", "/a:b"),  # only the first colon separates
    ],
)
def test_parse(text, name, path) -> None:
    spec = parse_corpus_spec(text)
    assert spec == CorpusSpec(name=name, path=path)
    assert str(spec) == f"{name}:{path}"
    assert CorpusSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize("text", ["voxceleb:/x", "iemocap", "iemocap:", ":/x"])
def test_bad_specs_list_valid_names(text) -> None:
    with pytest.raises(CorpusSpecError) as info:
        parse_corpus_spec(text)
    message = str(info.value)
    assert "valid names" in message or "no path" in message
    if "valid names" in message:
        assert all(name in message for name in NAMES)


@given(
    name=st.sampled_from(NAMES),
    path=st.text(min_size=1).filter(lambda p: p.strip() == p and p and not p.startswith("~")),
)
def test_round_trip(name, path) -> None:
    assert parse_corpus_spec(str(CorpusSpec(name=name, path=path))) == CorpusSpec(
        name=name, path=path
    )


def test_emotion_subset(iemocap_tree) -> None:
    listing = load_corpus(f"iemocap:{iemocap_tree.root}", emotions=["angry", "sad"])
    assert sorted(u.id for u in listing.utterances) == [
        "Ses02M_script01_1_F003",
        "Ses02M_script01_1_M004",
    ]
    assert listing.problems == ()  # the missing file is labelled happy
    assert listing.emotions == ("anger", "sad")


def test_merges_then_filter(iemocap_tree) -> None:
    listing = load_corpus(
        f"iemocap:{iemocap_tree.root}",
        emotions=["happy", "anger"],
        merges=["excited=happy", "frustration=anger"],
    )
    assert listing.counts() == {"anger": 2, "happy": 1}
    by_id = {u.id: u for u in listing.utterances}
    assert (by_id["Ses01F_impro01_M001"].emotion, by_id["Ses01F_impro01_M001"].raw_label) == (
        "happy",
        "exc",
    )
    assert [p.emotion for p in listing.problems] == ["happy"]  # hap, file missing


def test_unknown_emotion_names_what_the_corpus_has(iemocap_tree) -> None:
    # happy counts as present: its only file is missing, which the listing then reports.
    has = "it has: anger, happy, neutral, sad, frustration, excited$"
    with pytest.raises(CorpusSpecError, match=rf"'contempt'.*{has}"):
        load_corpus(f"iemocap:{iemocap_tree.root}", emotions=["contempt"])


def test_unknown_split_names_what_the_corpus_has(esd_tree) -> None:
    with pytest.raises(CorpusSpecError, match="it has: evaluation, test, train"):
        load_corpus(f"esd:{esd_tree.root}", splits="dev")
    listing = load_corpus(f"esd:{esd_tree.root}", splits="test")
    assert sorted(u.id for u in listing.utterances) == ["0011_000002", "0012_001051"]


def test_missing_root_is_corpus_error(tmp_path) -> None:
    for name in NAMES:
        with pytest.raises(CorpusError, match=str(tmp_path / "absent")):
            load_corpus(f"{name}:{tmp_path / 'absent'}")


def test_emotions_as_comma_separated_string(iemocap_tree) -> None:
    listing = load_corpus(f"iemocap:{iemocap_tree.root}", emotions="anger, sad")
    assert listing.counts() == {"anger": 1, "sad": 1}


# --- one item per audio file, labels outside the emotion set -------------------------------


def write_manifest(folder, wav_writer, rows: list[tuple[str, str]]):
    """A manifest CSV of (path, label) rows; every distinct wav is written once."""
    for name, _ in rows:
        if not (folder / name).exists():
            wav_writer(folder / name)
    path = folder / "items.csv"
    path.write_text("path,label\n" + "".join(f"{name},{label}\n" for name, label in rows))
    return path


def test_a_file_listed_twice_is_one_item(tmp_path, wav_writer) -> None:
    rows = [("a.wav", "anger"), ("b.wav", "sad"), ("./a.wav", "Angry"), ("c.wav", "sad")]
    manifest = write_manifest(tmp_path, wav_writer, rows)
    a = tmp_path / "a.wav"
    with pytest.warns(CorpusWarning) as caught:
        listing = load_corpus(f"manifest:{manifest}")
    assert str(caught[0].message) == (
        f"manifest:{manifest}: 1 audio file(s) listed more than once; kept the first listing "
        f"of 1 (e.g. {a}, listed 2 times)"
    )
    assert len(caught) == 1
    assert [(u.id, u.emotion) for u in listing.utterances] == [
        ("a", "anger"),
        ("b", "sad"),
        ("c", "sad"),
    ]
    assert (listing.n_repeated, listing.n_conflicting) == (1, 0)


def test_a_file_listed_with_two_labels_is_dropped(tmp_path, wav_writer) -> None:
    rows = [
        ("a.wav", "anger"),
        ("b.wav", "sad"),
        ("a.wav", "sad"),
        ("c.wav", "neutral"),
        ("c.wav", "neutral"),
    ]
    manifest = write_manifest(tmp_path, wav_writer, rows)
    with pytest.warns(CorpusWarning) as caught:
        listing = load_corpus(f"manifest:{manifest}")
    assert str(caught[0].message) == (
        f"manifest:{manifest}: 2 audio file(s) listed more than once; kept the first listing "
        f"of 1 (e.g. {tmp_path / 'c.wav'}, listed 2 times); dropped every listing of 1 whose "
        f"labels differ (e.g. {tmp_path / 'a.wav'}: anger, sad)"
    )
    assert [u.id for u in listing.utterances] == ["b", "c"]
    assert (listing.n_repeated, listing.n_conflicting) == (2, 1)


def test_labels_that_a_merge_makes_equal_do_not_conflict(tmp_path, wav_writer) -> None:
    manifest = write_manifest(tmp_path, wav_writer, [("a.wav", "excited"), ("a.wav", "happy")])
    with pytest.warns(CorpusWarning, match="kept the first listing of 1"):
        listing = load_corpus(f"manifest:{manifest}", merges=["excited=happy"])
    assert [(u.id, u.emotion, u.raw_label) for u in listing.utterances] == [
        ("a", "happy", "excited")
    ]


def test_an_unknown_label_is_dropped_with_a_count(tmp_path, wav_writer) -> None:
    rows = [
        ("a.wav", "anger"),
        ("b.wav", "bananas"),
        ("c.wav", "sad"),
        ("d.wav", "Bananas"),
        ("e.wav", "kiwi"),
    ]
    manifest = write_manifest(tmp_path, wav_writer, rows)
    expected = (
        f"manifest:{manifest}: dropped 3 item(s) labelled 'bananas' (2), 'kiwi' (1): not in "
        "esn's emotion vocabulary; name the label in --emotions to keep it, or merge it into an "
        "emotion with --merge LABEL=EMOTION"
    )
    with pytest.warns(CorpusWarning) as caught:
        listing = load_corpus(f"manifest:{manifest}")
    assert [str(w.message) for w in caught] == [expected]
    assert listing.emotions == ("anger", "sad")  # no sixth option in the prompt
    assert dict(listing.dropped_labels) == {"bananas": 2, "kiwi": 1}
    with pytest.warns(CorpusWarning, match=r"'kiwi' \(1\)"):  # --emotions without kiwi
        chosen = load_corpus(f"manifest:{manifest}", emotions=["anger", "bananas"])
    assert chosen.counts() == {"anger": 1, "bananas": 2}


def test_a_label_named_in_emotions_or_merges_is_kept(tmp_path, wav_writer) -> None:
    rows = [("a.wav", "anger"), ("b.wav", "bananas"), ("c.wav", "sad")]
    manifest = write_manifest(tmp_path, wav_writer, rows)
    listing = load_corpus(f"manifest:{manifest}", emotions="anger,Bananas,sad")  # no warning
    assert listing.emotions == ("anger", "sad", "bananas")
    assert listing.dropped_labels == {}
    merged = load_corpus(f"manifest:{manifest}", merges=["bananas=happy"])
    assert merged.counts() == {"anger": 1, "happy": 1, "sad": 1}
    custom = load_corpus(f"manifest:{manifest}", merges=["bananas=fruit"])
    assert custom.counts() == {"anger": 1, "sad": 1, "fruit": 1}


def test_a_misspelt_custom_emotion_names_the_dropped_label(tmp_path, wav_writer) -> None:
    manifest = write_manifest(tmp_path, wav_writer, [("a.wav", "anger"), ("b.wav", "boredom")])
    with (
        pytest.warns(CorpusWarning, match="'boredom'"),
        pytest.raises(
            CorpusSpecError, match="no utterances labelled 'boredum'; it has: anger, boredom$"
        ),
    ):
        load_corpus(f"manifest:{manifest}", emotions=["anger", "boredum"])


def test_published_code_tables_stay_inside_the_vocabulary() -> None:
    # The published layouts never meet the unknown-label rule: every code maps to a
    # canonical emotion or to None (no agreed label, counted as unlabelled).
    tables = [
        IEMOCAP_CODES,
        MELD_CODES,
        MSP_PODCAST_CODES,
        RAVDESS_CODES,
        CREMAD_CODES,
        TESS_CODES,
        ESD_CODES,
    ]
    for table in tables:
        assert {e for e in table.values() if e is not None} <= set(CANONICAL_EMOTIONS)


def test_iemocap_oth_and_xxx_keep_their_meaning(iemocap_tree) -> None:
    label_file = iemocap_tree.root / "Session2" / "dialog" / "EmoEvaluation"
    label_file = label_file / "Ses02M_script01_1.txt"
    label_file.write_text(
        label_file.read_text()
        + "\n[7.0000 - 8.0000]\tSes02M_script01_1_F006\toth\t[2.0000, 2.0000, 2.0000]\n"
    )
    wav = iemocap_tree.root / "Session2" / "sentences" / "wav" / "Ses02M_script01_1"
    shutil.copyfile(wav / "Ses02M_script01_1_F003.wav", wav / "Ses02M_script01_1_F006.wav")
    listing = load_corpus(f"iemocap:{iemocap_tree.root}")  # no warning
    assert {u.id: u.emotion for u in listing.utterances}["Ses02M_script01_1_F006"] == "other"
    assert listing.n_unlabelled == 1  # the xxx line
    assert (listing.n_repeated, listing.dropped_labels) == (0, {})
