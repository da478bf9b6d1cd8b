from __future__ import annotations

import pytest

from esn.errors import CorpusSpecError
from esn.pipeline.corpora import CANONICAL_EMOTIONS, normalize_label, parse_merges
from esn.pipeline.corpora.cremad import CREMAD_CODES
from esn.pipeline.corpora.emotions import ALIASES, apply_merge
from esn.pipeline.corpora.esd import ESD_CODES
from esn.pipeline.corpora.iemocap import IEMOCAP_CODES
from esn.pipeline.corpora.meld import MELD_CODES
from esn.pipeline.corpora.msp_podcast import MSP_PODCAST_CODES
from esn.pipeline.corpora.ravdess import RAVDESS_CODES
from esn.pipeline.corpora.tess import TESS_CODES

TABLES = [
    IEMOCAP_CODES,
    MELD_CODES,
    MSP_PODCAST_CODES,
    RAVDESS_CODES,
    CREMAD_CODES,
    TESS_CODES,
    ESD_CODES,
]


def test_canonical_vocabulary() -> None:
    assert CANONICAL_EMOTIONS == (
        "anger",
        "happy",
        "neutral",
        "sad",
        "surprise",
        "fear",
        "disgust",
        "frustration",
        "excited",
        "calm",
        "contempt",
        "other",
    )


@pytest.mark.parametrize("table", TABLES)
def test_code_tables_map_to_canonical_names(table) -> None:
    assert {v for v in table.values() if v is not None} <= set(CANONICAL_EMOTIONS)


def test_no_label_codes() -> None:
    assert IEMOCAP_CODES["xxx"] is None and MSP_PODCAST_CODES["X"] is None


def test_aliases_point_at_canonical_names() -> None:
    assert set(ALIASES.values()) <= set(CANONICAL_EMOTIONS)


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("angry", "anger"),
        ("Happiness", "happy"),
        ("joy", "happy"),
        ("sadness", "sad"),
        ("surprised", "surprise"),
        ("ps", "surprise"),
        ("pleasant_surprise", "surprise"),
        ("Pleasant Surprise", "surprise"),
        ("fearful", "fear"),
        ("disgusted", "disgust"),
        (" NEUTRAL ", "neutral"),
        ("Boredom", "boredom"),
        ("very  Bored", "very bored"),
    ],
)
def test_normalize_label(label, expected) -> None:
    assert normalize_label(label) == expected


def test_parse_merges() -> None:
    merges = parse_merges(["excited=happy", "Frustrated = Angry"])
    assert merges == {"excited": "happy", "frustration": "anger"}
    assert apply_merge("excited", merges) == "happy"
    assert apply_merge("sad", merges) == "sad"
    assert parse_merges(None) == {} and parse_merges([]) == {}
    assert parse_merges({"joy": "happy"}) == {}  # joy already is happy
    assert parse_merges(["exc=hap", "fru=ang"]) == {"excited": "happy", "frustration": "anger"}


def test_merges_chain_to_their_end() -> None:
    assert parse_merges(["excited=happy", "happy=positive"]) == {
        "excited": "positive",
        "happy": "positive",
    }


@pytest.mark.parametrize(
    ("merges", "match"),
    [
        (["excited"], "expected SOURCE=TARGET"),
        (["a=b=c"], "expected SOURCE=TARGET"),
        (["=happy"], "both sides"),
        (["excited=happy", "excited=sad"], "conflicts"),
        (["a=b", "b=a"], "cycle"),
    ],
)
def test_malformed_merges(merges, match) -> None:
    with pytest.raises(CorpusSpecError, match=match):
        parse_merges(merges)
    with pytest.raises(ValueError):
        parse_merges(merges)
