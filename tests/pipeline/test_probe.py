"""The probe: seeded option mappings, prompt text, and the answer-parse cascade."""

from __future__ import annotations

import pytest

from esn.pipeline.probe import DEFAULT_TEMPLATE, Probe, decided_answer, parse_answer
from esn.schemas import ProbeInfo

LABELS = ("anger", "happy", "neutral", "sad", "surprise")


def test_random_mapping_is_a_seeded_per_item_permutation() -> None:
    probe = Probe(labels=LABELS, seed=3)
    first = {f"utt{i}": probe.options_for(f"utt{i}") for i in range(200)}
    assert all(sorted(o) == sorted(LABELS) for o in first.values())
    assert first == {k: Probe(labels=LABELS, seed=3).options_for(k) for k in first}
    assert len(set(first.values())) > 50  # varies per item
    other_seed = Probe(labels=LABELS, seed=4)
    assert sum(other_seed.options_for(k) != v for k, v in first.items()) > 150
    # Each emotion lands on each option number about equally often.
    counts = [sum(o[0] == label for o in first.values()) for label in LABELS]
    assert min(counts) > 20


def test_fixed_order_is_the_label_order() -> None:
    probe = Probe(labels=LABELS, option_order="fixed")
    assert probe.options_for("anything") == LABELS


def test_prompt_lists_numbered_options() -> None:
    probe = Probe(labels=("anger", "sad"), template="Options: {options}. Number only.")
    assert probe.prompt(("sad", "anger")) == "Options: 1. sad, 2. anger. Number only."
    assert "{options}" in DEFAULT_TEMPLATE


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("2", "happy"),
        ("2.", "happy"),
        ("Option 3", "neutral"),
        ("The answer is 4: sad", "sad"),
        ("9", ""),  # not an option number, and nothing else to parse
        ("9 or 1", "anger"),
        ("two", "happy"),
        ("It is Five.", "surprise"),
        ("The speaker sounds angry", "anger"),
        ("surprised!", "surprise"),
        ("neutral state", "neutral"),
        ("I cannot tell", ""),
        ("", ""),
        ("1.5", "anger"),
    ],
)
def test_parse_cascade(answer: str, expected: str) -> None:
    assert parse_answer(answer, LABELS) == expected


def test_digit_wins_over_words() -> None:
    assert parse_answer("sad, so 1", LABELS) == "anger"
    assert parse_answer("three, I mean sad", LABELS) == "neutral"


def test_info_round_trip_and_validation() -> None:
    probe = Probe(labels=LABELS, seed=7, option_order="fixed", max_new_tokens=5)
    assert Probe.from_info(probe.info, LABELS) == probe
    assert probe.info == ProbeInfo(template=DEFAULT_TEMPLATE, seed=7, option_order="fixed",
                                   max_new_tokens=5)
    with pytest.raises(ValueError, match="options"):
        Probe(labels=LABELS, template="no placeholder")
    with pytest.raises(ValueError, match="options"):
        Probe(labels=LABELS, template="{options} {other}")
    with pytest.raises(ValueError, match="distinct"):
        Probe(labels=("sad", "sad"))


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("12", ""),  # twelve is no option, and never option 1
        ("13 sad", "sad"),
        ("1.", "anger"),
        ("1)", "anger"),
        (" 3", "neutral"),
        ("3 sad", "neutral"),
        ("²", ""),  # isdigit() is True, but it is no ASCII digit
        ("３", ""),  # full-width digits are not digits
        ("x²1", "anger"),
        ("10", ""),
        ("Option 2", "happy"),
    ],
)
def test_digit_step_reads_whole_ascii_runs(answer: str, expected: str) -> None:
    assert parse_answer(answer, LABELS) == expected


@pytest.mark.parametrize(
    ("prefix", "decided"),
    [
        ("1", None),  # may become "12"
        ("12", None),
        ("1.", "anger"),
        ("1 ", "anger"),
        ("12 ", None),  # no option yet, the words or a later digit decide
        ("9 or 1", None),
        ("9 or 1)", "anger"),
        ("sad", None),
        ("", None),
        ("Option 2.", "happy"),
    ],
)
def test_decided_answer_fixes_only_ended_option_runs(prefix: str, decided: str | None) -> None:
    assert decided_answer(prefix, LABELS) == decided
    if decided is not None:  # whatever follows, the parse is the decided answer
        for tail in ("", "2", "0 sad", " angry", "5"):
            assert parse_answer(prefix + tail, LABELS) == decided
