"""Store schema: JSON round trips, validation messages, derived sizes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esn.errors import SchemaError
from esn.schemas import (
    SCHEMA_VERSION,
    ModelInfo,
    ProbeInfo,
    StoreAttributes,
    StoreLayout,
    utterance_digest,
)

names = st.text(alphabet="abcdefghij_", min_size=1, max_size=8)


@st.composite
def attributes(draw) -> StoreAttributes:
    labels = tuple(draw(st.lists(names, min_size=2, max_size=6, unique=True)))
    layout = StoreLayout(
        n_utterances=draw(st.integers(1, 10_000)), n_layers=draw(st.integers(1, 64)),
        n_neurons=draw(st.integers(1, 20_000)), n_options=len(labels),
        utterance_chunk=draw(st.integers(1, 256)),
        count_dtype=draw(st.sampled_from(["uint16", "uint32"])),
    )
    return StoreAttributes(
        model=ModelInfo(id=draw(names), revision=draw(st.text(max_size=8))),
        probe=ProbeInfo(template=draw(st.text(min_size=1, max_size=30)),
                        seed=draw(st.integers(0, 2**31)),
                        option_order=draw(st.sampled_from(["random", "fixed"]))),
        labels=labels, layout=layout, utterance_digest=utterance_digest(["a", "b"]),
        corpus=tuple(draw(st.lists(names, max_size=3))), versions={"esn": "0.1.0"},
        created="2026-11-27T00:00:00+00:00",
    )


@given(attributes())
def test_attributes_round_trip_through_json(attrs: StoreAttributes) -> None:
    again = StoreAttributes.from_dict(json.loads(json.dumps(attrs.to_dict())))
    assert again == attrs
    assert again.identity() == attrs.identity()


def base_dict() -> dict:
    layout = StoreLayout(n_utterances=10, n_layers=2, n_neurons=4, n_options=2)
    return StoreAttributes(
        model=ModelInfo(id="m"), probe=ProbeInfo(template="t"), labels=("a", "b"),
        layout=layout, utterance_digest="x",
    ).to_dict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(schema_version=SCHEMA_VERSION + 1), "schema version"),
        (lambda d: d.update(format="something-else"), "not an esn activation store"),
        (lambda d: d.update(labels=["a", "a"]), "labels repeat"),
        (lambda d: d.update(labels=["a", "b", "c"]), "n_options"),
        (lambda d: d["layout"].update(n_layers=0), "n_layers must be a positive integer"),
        (lambda d: d["layout"].update(count_dtype="int8"), "count_dtype"),
        (lambda d: d["probe"].update(option_order="shuffled"), "option_order"),
        (lambda d: d["model"].update(id=""), "model.id"),
        (lambda d: d.pop("model"), "'model' missing"),
        (lambda d: d["layout"].update(extra=1), "unknown keys"),
        (lambda d: d.pop("utterance_digest"), "utterance_digest"),
    ],
)
def test_malformed_attributes_name_the_problem(change, message: str) -> None:
    data = base_dict()
    change(data)
    with pytest.raises(SchemaError, match=message):
        StoreAttributes.from_dict(data)


def test_layout_chunk_arithmetic() -> None:
    layout = StoreLayout(n_utterances=10, n_layers=3, n_neurons=5, n_options=4,
                         utterance_chunk=4)
    assert layout.n_chunks == 3
    assert [layout.chunk_slice(c) for c in range(3)] == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert layout.statistics_chunks == (4, 2, 1, 5)
    with pytest.raises(SchemaError, match="chunk 3"):
        layout.chunk_slice(3)


def test_utterance_digest_depends_on_ids_and_order() -> None:
    assert utterance_digest(["a", "b"]) != utterance_digest(["b", "a"])
    assert utterance_digest(["ab"]) != utterance_digest(["a", "b"])
