from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esn.errors import CorpusError, CorpusSpecError
from esn.pipeline.corpora import (
    CORPUS_LOADERS,
    CorpusSpec,
    load_corpus,
    parse_corpus_spec,
)

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
