"""The activation store: round trips, laziness, refusal and resume, validation, SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import dask
import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

import esn
from esn.errors import (
    SchemaError,
    StoreDamagedError,
    StoreExistsError,
    StoreMismatchError,
    StoreNotFoundError,
    StoreValidationError,
)
from esn.schemas import STATUS_DONE, STATUS_FAILED, STATUS_PENDING, ModelInfo, StatsBatch
from esn.stores import ActivationStore
from esn.stores.describe import format_info
from tests.conftest import make_batch, store_kwargs

N_UTT, N_LAYERS, N_NEURONS, CHUNK = 18, 3, 8, 4
BATCHES = [(0, 8), (8, 16), (16, 18)]


class _NoCompute:
    """A Dask scheduler that fails the test if anything is computed (xarray's idiom)."""

    def __call__(self, dsk, keys, **kwargs):
        raise AssertionError("a Dask computation ran where the graph should stay lazy")


def batches(seed: int = 1) -> list[tuple[int, StatsBatch]]:
    out = []
    for start, stop in BATCHES:
        rng = np.random.default_rng(seed * 1000 + start)
        out.append((start, make_batch(rng, stop - start, N_LAYERS, N_NEURONS, fail_every=5)))
    return out


def expected_arrays(written: list[tuple[int, StatsBatch]]) -> dict[str, np.ndarray]:
    names = ["K", "T", "act_sum", "status", "duration", "n_tokens", "correct", "options",
             "raw_answer", "parsed_answer", "failure_reason"]
    return {n: np.concatenate([getattr(b, n) for _, b in written]) for n in names}


@pytest.fixture(params=["local", "memory"])
def url(request, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "acts.zarr")
    safe = "".join(c if c.isalnum() else "-" for c in request.node.name)  # no glob characters
    return f"memory://esn-test-{os.getpid()}-{safe}"


def write_all(url: str, seed: int = 1) -> tuple[ActivationStore, list]:
    store = ActivationStore.create(url, **store_kwargs(N_UTT, N_LAYERS, N_NEURONS, CHUNK),
                                   if_exists="overwrite")
    written = batches(seed)
    for start, batch in written:
        store.write_batch(start, batch)
    return store, written


def test_round_trip_through_open_store(url: str) -> None:
    _, written = write_all(url)
    expected = expected_arrays(written)
    ds = esn.open_store(url)
    assert dict(ds.sizes) == {"utterance": N_UTT, "span": 2, "layer": N_LAYERS,
                              "neuron": N_NEURONS, "option": 4}
    assert ds.K.dtype == np.uint16 and ds.T.dtype == np.uint32 and ds.act_sum.dtype == np.float32
    np.testing.assert_array_equal(ds.K.values, expected["K"])
    np.testing.assert_array_equal(ds.T.values, expected["T"])
    np.testing.assert_array_equal(ds.act_sum.values, expected["act_sum"])
    for name in ("status", "duration", "n_tokens", "correct"):
        np.testing.assert_array_equal(ds[name].values, expected[name])
    for name in ("options", "raw_answer", "parsed_answer", "failure_reason"):
        assert ds[name].values.tolist() == expected[name].tolist()
    kw = store_kwargs(N_UTT)
    assert list(ds.utterance.values) == [u.id for u in kw["utterances"]]
    assert list(ds.emotion.values) == [u.emotion for u in kw["utterances"]]
    assert list(ds.speaker.values) == [u.speaker or "" for u in kw["utterances"]]
    assert list(ds.span.values) == ["audio", "text"]
    assert list(ds.option.values) == [1, 2, 3, 4]
    assert ds.attrs["model"]["id"] == "tiny-test"
    assert ds.attrs["labels"] == list(kw["labels"])


def test_opening_and_building_reductions_computes_nothing(url: str) -> None:
    _, written = write_all(url)
    expected = expected_arrays(written)
    with dask.config.set(scheduler=_NoCompute()):
        ds = esn.open_store(url)
        total = ds.K.sum("span")
        per_emotion = total.groupby("emotion").sum("utterance")
        rate = per_emotion / ds.T.sum("span").groupby("emotion").sum("utterance")
        done = ds.K.where(ds.status == STATUS_DONE).sum("utterance")
    # Now compute and compare with an independent numpy recomputation.
    emotions = np.array([u.emotion for u in store_kwargs(N_UTT)["utterances"]])
    k = expected["K"].astype(np.int64).sum(axis=1)
    t = expected["T"].astype(np.int64).sum(axis=1)
    for emotion in sorted(set(emotions)):
        sel = emotions == emotion
        np.testing.assert_array_equal(per_emotion.sel(emotion=emotion).values, k[sel].sum(0))
        np.testing.assert_allclose(rate.sel(emotion=emotion).values, k[sel].sum(0) / t[sel].sum())
    ok = expected["status"] == STATUS_DONE
    np.testing.assert_array_equal(done.values, expected["K"][ok].astype(np.int64).sum(0))


def test_reduction_reads_store_chunks_as_dask_chunks(url: str) -> None:
    write_all(url)
    ds = esn.open_store(url)
    assert ds.K.data.chunksize == (CHUNK, 2, 1, N_NEURONS)
    assert ds.act_sum.data.chunksize == (CHUNK, 2, 1, N_NEURONS)


def test_create_refuses_existing_store_unless_asked(url: str) -> None:
    write_all(url)
    with pytest.raises(StoreExistsError, match="overwrite"):
        ActivationStore.create(url, **store_kwargs(N_UTT, N_LAYERS, N_NEURONS, CHUNK))
    fresh = ActivationStore.create(url, **store_kwargs(N_UTT, N_LAYERS, N_NEURONS, CHUNK),
                                   if_exists="overwrite")
    assert fresh.progress().pending == N_UTT


def test_resume_keeps_matching_store_and_refuses_a_changed_run(url: str) -> None:
    store, _ = write_all(url)
    before = store.progress()
    again = ActivationStore.create(url, **store_kwargs(N_UTT, N_LAYERS, N_NEURONS, CHUNK),
                                   if_exists="resume")
    assert again.progress() == before
    changed = store_kwargs(N_UTT, N_LAYERS, N_NEURONS, CHUNK)
    changed["model"] = ModelInfo(id="another-model")
    with pytest.raises(StoreMismatchError, match="another-model"):
        ActivationStore.create(url, **changed, if_exists="resume")
    fewer = store_kwargs(N_UTT - 1, N_LAYERS, N_NEURONS, CHUNK)
    with pytest.raises(StoreMismatchError, match="utterance list differs"):
        ActivationStore.create(url, **fewer, if_exists="resume")


def test_writes_must_be_chunk_aligned_and_valid(tmp_path: Path) -> None:
    store = ActivationStore.create(tmp_path / "s.zarr",
                                   **store_kwargs(N_UTT, N_LAYERS, N_NEURONS, CHUNK))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="chunk-aligned"):
        store.write_batch(2, make_batch(rng, 4, N_LAYERS, N_NEURONS))
    with pytest.raises(ValueError, match="chunk-aligned"):
        store.write_batch(0, make_batch(rng, 3, N_LAYERS, N_NEURONS))
    bad = make_batch(rng, 4, N_LAYERS, N_NEURONS)
    k = bad.K.copy()
    k[0, 0, 0, 0] = bad.T[0, 0] + 1
    with pytest.raises(SchemaError, match="exceeds T"):
        store.write_batch(0, StatsBatch(**{**bad.__dict__, "K": k}))
    with pytest.raises(SchemaError, match="shape"):
        store.write_batch(0, make_batch(rng, 4, N_LAYERS, N_NEURONS + 1))
    assert store.progress().pending == N_UTT  # nothing was written by the refused batches


def test_read_only_store_refuses_writes(tmp_path: Path) -> None:
    url = tmp_path / "s.zarr"
    ActivationStore.create(url, **store_kwargs(N_UTT, N_LAYERS, N_NEURONS, CHUNK))
    store = ActivationStore.open(url)
    with pytest.raises(PermissionError, match="r\\+"):
        store.write_batch(0, make_batch(np.random.default_rng(0), 4, N_LAYERS, N_NEURONS))


def test_progress_pending_chunks_and_mark_failed(tmp_path: Path) -> None:
    url = tmp_path / "s.zarr"
    store = ActivationStore.create(url, **store_kwargs(N_UTT, N_LAYERS, N_NEURONS, CHUNK))
    start, batch = batches()[0]
    store.write_batch(start, batch)
    assert store.pending_chunks() == [2, 3, 4]
    store.mark_failed([9], ["silent (peak below 1e-4)"])
    status = store.status()
    assert status[9] == STATUS_FAILED and status[10] == STATUS_PENDING
    n_failed = int((batch.status == STATUS_FAILED).sum())
    assert store.progress().failed == n_failed + 1
    report = store.validate()
    assert report.ok and report.incomplete_chunks == (2,)
    assert esn.open_store(url).failure_reason.values[9] == "silent (peak below 1e-4)"


def test_validate_reports_missing_and_corrupt_chunks(tmp_path: Path) -> None:
    url = tmp_path / "s.zarr"
    store, _ = write_all(str(url))
    assert store.validate(deep=True).ok
    (url / "K" / "c" / "1" / "0" / "2" / "0").unlink()
    report = store.validate()
    assert not report.ok
    assert any("K" in p and "missing" in p and "chunk 1" in p for p in report.problems)
    with pytest.raises(StoreValidationError, match="missing"):
        report.raise_if_invalid()
    (url / "act_sum" / "c" / "2" / "0" / "0" / "0").write_bytes(b"garbage")
    assert any("act_sum" in p and "not a Blosc frame" in p
               for p in store.validate(deep=True).problems)
    # A torn status chunk: a writer redoes its chunk; a reader refuses the store.
    (url / "status" / "c" / "3").write_bytes(b"\x00\x01")
    report = store.validate()
    assert any("status/c/3 cannot be decoded" in p for p in report.problems)
    assert 3 in store.pending_chunks()
    with pytest.raises(StoreDamagedError, match="status/c/3 cannot be decoded"):
        ActivationStore.open(url).status()


def test_open_refuses_other_versions_and_non_stores(tmp_path: Path) -> None:
    url = tmp_path / "s.zarr"
    ActivationStore.create(url, **store_kwargs(N_UTT, N_LAYERS, N_NEURONS, CHUNK))
    group = zarr.open_group(str(url), mode="r+")
    group.attrs["schema_version"] = 99
    with pytest.raises(StoreValidationError, match="schema version 99"):
        esn.open_store(url)
    with pytest.raises(StoreNotFoundError, match="no activation store"):
        esn.open_store(tmp_path / "nothing.zarr")
    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    with pytest.raises(StoreValidationError, match="not a finished esn activation store"):
        esn.open_store(tmp_path / "plain.zarr")


def test_validate_reports_wrong_shapes(tmp_path: Path) -> None:
    url = tmp_path / "s.zarr"
    ActivationStore.create(url, **store_kwargs(N_UTT, N_LAYERS, N_NEURONS, CHUNK))
    group = zarr.open_group(str(url), mode="r+")
    del group["T"]
    group.create_array("T", shape=(N_UTT, 3), chunks=(CHUNK, 3), dtype="uint32",
                       dimension_names=["utterance", "span"])
    with pytest.raises(StoreValidationError, match=r"T/zarr.json: shape \(18, 3\)"):
        ActivationStore.open(url)
    report = ActivationStore.open(url, check=False).validate()
    assert any("T/zarr.json: shape" in p for p in report.problems)


def test_info_reports_sizes_progress_and_bytes(tmp_path: Path) -> None:
    store, written = write_all(str(tmp_path / "s.zarr"))
    info = store.info()
    failed = int(sum((b.status == STATUS_FAILED).sum() for _, b in written))
    assert info["progress"] == {"done": N_UTT - failed, "failed": failed, "pending": 0}
    assert info["sizes"]["neurons"] == N_LAYERS * N_NEURONS
    assert info["chunking"]["statistics_chunk_shape"] == [CHUNK, 2, 1, N_NEURONS]
    assert info["bytes"]["stored"] > 0 and info["bytes"]["raw_written"] > 0
    json.dumps(info)


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np, zarr
    sys.path.insert(0, {root!r})
    from esn.stores import ActivationStore
    from tests.stores.test_activations import (
        batches, store_kwargs, N_UTT, N_LAYERS, N_NEURONS, CHUNK)

    original = zarr.Array.__setitem__
    def killing_setitem(self, selection, value):
        # Die in the middle of the second batch: after its K chunks, before act_sum and status.
        if self.path.endswith("act_sum") and getattr(selection, "start", None) == 8:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, selection, value)
    zarr.Array.__setitem__ = killing_setitem
    store = ActivationStore.create({url!r}, **store_kwargs(N_UTT, N_LAYERS, N_NEURONS, CHUNK))
    for start, batch in batches():
        store.write_batch(start, batch)
    """
)


def test_sigkill_mid_append_then_resume_equals_one_go(tmp_path: Path) -> None:
    url = str(tmp_path / "killed.zarr")
    script = KILL_SCRIPT.format(root=str(Path(__file__).parents[2]), url=url)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    store = ActivationStore.open(url)
    report = store.validate(deep=True)
    assert report.ok, report.problems
    first_start, first = batches()[0]
    assert report.progress is not None
    assert report.progress.done + report.progress.failed == len(first)
    assert store.pending_chunks() == [2, 3, 4]

    resumed = ActivationStore.create(url, **store_kwargs(N_UTT, N_LAYERS, N_NEURONS, CHUNK),
                                     if_exists="resume")
    todo = set(resumed.pending_chunks())
    for start, batch in batches():
        if start // CHUNK in todo:
            resumed.write_batch(start, batch)
    assert resumed.progress().pending == 0

    one_go, _ = write_all(str(tmp_path / "one_go.zarr"))
    a, b = esn.open_store(url), esn.open_store(tmp_path / "one_go.zarr")
    for name in list(a.data_vars) + list(a.coords):
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    assert {k: v for k, v in a.attrs.items() if k != "created"} == {
        k: v for k, v in b.attrs.items() if k != "created"}


@st.composite
def chunked_writes(draw):
    n = draw(st.integers(1, 23))
    chunk = draw(st.integers(1, 8))
    n_chunks = -(-n // chunk)
    cuts = sorted(draw(st.sets(st.integers(1, n_chunks - 1), max_size=n_chunks - 1))) \
        if n_chunks > 1 else []
    bounds = [0, *(c * chunk for c in cuts), n]
    return n, chunk, list(zip(bounds[:-1], bounds[1:], strict=True))


@settings(max_examples=20, deadline=None)
@given(chunked_writes(), st.integers(0, 2**16))
def test_any_chunk_aligned_partition_round_trips(plan, seed: int) -> None:
    n, chunk, pieces = plan
    url = f"memory://esn-prop-{seed}-{n}-{chunk}-{len(pieces)}"
    store = ActivationStore.create(url, **store_kwargs(n, 2, 3, chunk), if_exists="overwrite")
    rng = np.random.default_rng(seed)
    written = [(a, make_batch(rng, b - a, 2, 3, fail_every=3)) for a, b in pieces]
    for start, batch in written:
        store.write_batch(start, batch)
    expected = expected_arrays(written)
    ds = esn.open_store(url)
    for name in ("K", "T", "act_sum", "status", "correct"):
        np.testing.assert_array_equal(ds[name].values, expected[name])
    assert ds.options.values.tolist() == expected["options"].tolist()
    assert store.progress().pending == 0 and store.validate(deep=True).ok


def test_all_zero_chunks_are_written_and_validate(tmp_path: Path) -> None:
    """zarr skips chunks equal to the fill value by default; a finished chunk must exist."""
    url = tmp_path / "s.zarr"
    store = ActivationStore.create(url, **store_kwargs(8, N_LAYERS, N_NEURONS, CHUNK))
    batch = make_batch(np.random.default_rng(0), 4, N_LAYERS, N_NEURONS, fail_every=1)
    assert not batch.K.any()
    store.write_batch(0, batch)
    reopened = ActivationStore.open(url, mode="r+")
    reopened.write_batch(4, batch)
    report = reopened.validate(deep=True)
    assert report.ok, report.problems
    assert reopened.progress().failed == 8


def test_a_store_from_before_heard_and_truncated_stays_usable(tmp_path: Path) -> None:
    """Stores made before esn recorded what the model heard lack both arrays: they stay
    valid, a resumed run fills the rest without them, readers say they are not recorded."""
    rng = np.random.default_rng(3)
    url = str(tmp_path / "old.zarr")
    store = ActivationStore.create(url, **store_kwargs(8))
    first = make_batch(rng, 4, 3, 8)
    store.write_batch(0, first)
    for name in ("heard", "truncated"):  # as an older esn made it
        del zarr.open_group(url, mode="r+")[name]
    old = ActivationStore.open(url, mode="r+")
    assert old.validate(deep=True).ok
    assert not old.records("heard") and old.records("duration")
    old.write_batch(4, make_batch(rng, 4, 3, 8))
    reopened = ActivationStore.open(url)
    assert reopened.progress().done == 8
    np.testing.assert_array_equal(reopened.metadata("duration")[:4], first.duration)
    with pytest.raises(StoreValidationError, match="made before esn recorded 'heard'"):
        reopened.metadata("heard")
    ds = esn.open_store(url)
    assert "heard" not in ds.coords and "duration" in ds.coords
    assert reopened.info()["audio"]["truncated"] is None
    assert "which clips were cut is not recorded" in format_info(reopened.info())
