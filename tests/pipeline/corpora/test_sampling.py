from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esn.pipeline.corpora import balanced_sample, class_counts
from esn.schemas.utterance import Utterance


def make(counts: dict[str, int]) -> list[Utterance]:
    return [
        Utterance(
            id=f"{emotion}-{i:03d}",
            corpus="manifest",
            path=f"/a/{emotion}{i}.wav",
            emotion=emotion,
            raw_label=emotion,
        )
        for emotion, n in counts.items()
        for i in range(n)
    ]


POOL = make({"anger": 40, "happy": 25, "neutral": 60, "sad": 30})


def test_truncates_to_smallest_class() -> None:
    chosen = balanced_sample(POOL, seed=1)
    assert Counter(u.emotion for u in chosen) == {
        "anger": 25,
        "happy": 25,
        "neutral": 25,
        "sad": 25,
    }
    assert len({u.id for u in chosen}) == len(chosen)


def test_cap_per_emotion() -> None:
    chosen = balanced_sample(POOL, per_emotion=10, seed=1)
    assert class_counts(chosen) == {"anger": 10, "happy": 10, "neutral": 10, "sad": 10}


def test_no_truncation_keeps_small_classes_whole() -> None:
    chosen = balanced_sample(POOL, per_emotion=35, truncate=False, seed=1)
    assert class_counts(chosen) == {"anger": 35, "happy": 25, "neutral": 35, "sad": 30}
    assert class_counts(balanced_sample(POOL, truncate=False)) == class_counts(POOL)


def test_deterministic_and_order_independent() -> None:
    shuffled = POOL[:]
    random.Random(3).shuffle(shuffled)
    first = balanced_sample(POOL, per_emotion=12, seed=7)
    assert first == balanced_sample(shuffled, per_emotion=12, seed=7)
    assert first == balanced_sample(POOL, per_emotion=12, seed=7)


def test_different_seeds_differ() -> None:
    draws = {tuple(u.id for u in balanced_sample(POOL, per_emotion=12, seed=s)) for s in range(5)}
    assert len(draws) == 5


def test_stable_output_order() -> None:
    chosen = balanced_sample(POOL, per_emotion=5, seed=2)
    order = ["anger", "happy", "neutral", "sad"]
    assert chosen == sorted(chosen, key=lambda u: (order.index(u.emotion), u.id))


def test_smaller_cap_is_a_prefix_draw() -> None:
    small = {u.id for u in balanced_sample(POOL, per_emotion=5, seed=4)}
    large = {u.id for u in balanced_sample(POOL, per_emotion=20, seed=4)}
    assert small < large


def test_other_emotions_do_not_change_a_draw() -> None:
    with_sad = balanced_sample(POOL, per_emotion=10, seed=0, truncate=False)
    without = balanced_sample(
        [u for u in POOL if u.emotion != "sad"], per_emotion=10, seed=0, truncate=False
    )
    assert [u for u in with_sad if u.emotion != "sad"] == without


def test_bad_arguments() -> None:
    assert balanced_sample([]) == []
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="per_emotion"):
            balanced_sample(POOL, per_emotion=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unique"):
        balanced_sample(POOL + POOL[:1])


@settings(max_examples=40, deadline=None)
@given(
    counts=st.dictionaries(
        st.sampled_from(["anger", "happy", "sad", "odd"]), st.integers(1, 15), min_size=1
    ),
    cap=st.one_of(st.none(), st.integers(1, 20)),
    seed=st.integers(0, 2**32 - 1),
    shuffle_seed=st.integers(0, 1000),
)
def test_properties(counts, cap, seed, shuffle_seed) -> None:
    pool = make(counts)
    chosen = balanced_sample(pool, per_emotion=cap, seed=seed)
    expected = min(counts.values()) if cap is None else min(cap, min(counts.values()))
    assert class_counts(chosen) == {e: expected for e in class_counts(pool)}
    shuffled = pool[:]
    random.Random(shuffle_seed).shuffle(shuffled)
    assert balanced_sample(shuffled, per_emotion=cap, seed=seed) == chosen
    assert {u.id for u in chosen} <= {u.id for u in pool}
